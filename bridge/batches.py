"""Reading a :class:`~bridge.pipeline.SessionPipeline`'s output in batches, for the surfaces
that re-frame its audio (the OpenAI speech API, Wyoming): one item waited for, then whatever is
already queued, so that a batch of 20 ms frames costs one encoder call (or one event), not one
per frame, while a consumer that keeps up still gets each frame as soon as it is made."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bridge.pipeline import FlushedOut, OutputItem, SessionPipeline

#: Most items in one batch (50 frames: one second of audio).
MAX_BATCH = 50


async def output_batches(pipeline: SessionPipeline) -> AsyncIterator[list[OutputItem]]:
    """Batches of output items up to and including the next ``FlushedOut``."""
    while True:
        batch = [await pipeline.next_output()]
        while len(pipeline.output) and not isinstance(batch[-1], FlushedOut) and len(batch) < MAX_BATCH:
            batch.append(await pipeline.next_output())
        yield batch
        if isinstance(batch[-1], FlushedOut):
            return
