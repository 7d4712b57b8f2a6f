"""Reading a SessionPipeline's output the way the server does: up to an utterance's `flushed`,
and the audio in it decoded (for the pipeline and fault tests)."""

from __future__ import annotations

import asyncio

import numpy as np

from bridge.audio.formats import decode_pcm
from bridge.pipeline import AudioOut, FlushedOut, OutputItem, SessionPipeline


async def collect_until_flushed(pipeline: SessionPipeline, timeout: float = 60) -> list[OutputItem]:
    items: list[OutputItem] = []
    while True:
        item = await asyncio.wait_for(pipeline.next_output(), timeout)
        items.append(item)
        if isinstance(item, FlushedOut):
            return items


def audio_of(items: list[OutputItem], fmt: str = "f32le") -> np.ndarray:
    frames = [decode_pcm(i.data, fmt) for i in items if isinstance(i, AudioOut)]  # type: ignore[arg-type]
    return np.concatenate(frames) if frames else np.zeros(0, np.float32)
