"""Segment N+1 synthesizes while segment N's audio is still waiting to be sent.

The pipeline's worker queues a segment's frames and goes on to the next segment without
waiting for the sender (only the output queue's bound stops it). Were it to wait, every segment
boundary would cost the listener the next segment's time to first audio: a gap in the speech.

Each test holds the listener after the first audio frame, with most of segment 1 unconsumed,
and waits for the engine to be asked for segment 2. No timing is asserted: the wait is for an
event, and what is checked is the order of events (segment 2's synthesis began while segment
1 still had frames to hand out).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

from bridge.pipeline import AudioOut, FlushedOut, OutputItem, SegmentOut, SessionOptions, SessionPipeline
from tests.support.engines_util import WrappedEngine, wait_until

#: Several segments (the first, cut early by the fast path, is "Good morning,"), each less
#: than the output queue's 4 s of speech, so segment 1's frames fit in the queue unread.
TEXT = (
    "Good morning, and welcome back. Your train to Porto leaves at nine from platform four. "
    "Bring your ticket and a warm jacket."
)


async def next_audio(pipeline: SessionPipeline) -> list[OutputItem]:
    """Items up to and including the next audio frame."""
    items: list[OutputItem] = []
    while not items or not isinstance(items[-1], AudioOut):
        items.append(await asyncio.wait_for(pipeline.next_output(), 30))
    return items


async def rest_of_utterance(pipeline: SessionPipeline) -> list[OutputItem]:
    items: list[OutputItem] = []
    while not items or not isinstance(items[-1], FlushedOut):
        items.append(await asyncio.wait_for(pipeline.next_output(), 30))
    return items


def frames_before_segment(items: list[Any], segment_id: int) -> int:
    """Audio frames handed out before ``segment_id``'s announcement."""
    for index, item in enumerate(items):
        if isinstance(item, SegmentOut) and item.id == segment_id:
            return sum(isinstance(i, AudioOut) for i in items[:index])
    raise AssertionError(f"no segment {segment_id} in the output")


async def test_segment_two_synthesizes_while_segment_one_waits_to_be_sent(engines_factory, piper_engine) -> None:
    engine = WrappedEngine(piper_engine)
    pipeline = SessionPipeline(engines_factory(engine), SessionOptions(events=True))
    try:
        pipeline.feed(TEXT)
        pipeline.flush()
        head = await next_audio(pipeline)  # the listener has segment 1's first frame, then stalls
        first = [i for i in head if isinstance(i, SegmentOut)]
        assert [s.id for s in first] == [1] and engine.calls[0] == first[0].text
        await wait_until(lambda: len(engine.calls) >= 2, "the engine is asked for segment 2")
        rest = await rest_of_utterance(pipeline)
    finally:
        await pipeline.close()
    segments = [i for i in head + rest if isinstance(i, SegmentOut)]
    assert [s.text for s in segments] == engine.calls and len(segments) >= 2
    # Segment 1 still had frames to hand out when segment 2's synthesis began.
    assert frames_before_segment(rest, 2) >= 1
    assert isinstance(rest[-1], FlushedOut) and rest[-1].segments == len(segments)


async def test_without_room_in_the_queue_segment_two_waits(engines_factory, piper_engine) -> None:
    """The control: with room for one frame, the worker is held inside segment 1 and cannot
    reach segment 2 before the listener reads on; the probe above tells the two cases apart."""
    engine = WrappedEngine(piper_engine)
    pipeline = SessionPipeline(engines_factory(engine, output_queue_seconds=0.02), SessionOptions(events=True))
    try:
        pipeline.feed(TEXT)
        pipeline.flush()
        await next_audio(pipeline)
        # The worker waits on the full queue with segment 1's next frame; given time, it would
        # still not move on (it cannot: the queue does not empty while nobody reads).
        await wait_until(lambda: pipeline.output.samples >= pipeline.output.max_samples, "the queue is full")
        await asyncio.sleep(0.5)
        assert len(engine.calls) == 1
        rest = await rest_of_utterance(pipeline)
    finally:
        await pipeline.close()
    assert isinstance(rest[-1], FlushedOut) and len(engine.calls) == rest[-1].segments >= 2


async def test_over_the_socket_segment_two_synthesizes_while_segment_one_is_unread(server_factory, piper_engine) -> None:
    engine = WrappedEngine(piper_engine)
    srv = await server_factory(engine)
    async with websockets.connect(srv.ws_url + "?events=1", compression=None) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "ready"
        await ws.send(json.dumps({"token": TEXT, "flush": True}))
        received: list[Any] = []
        while not received or not isinstance(received[-1], bytes):
            received.append(await asyncio.wait_for(ws.recv(), 30))
        await wait_until(lambda: len(engine.calls) >= 2, "the engine is asked for segment 2")
        while not (isinstance(received[-1], str) and json.loads(received[-1])["type"] == "flushed"):
            received.append(await asyncio.wait_for(ws.recv(), 30))
    events = [json.loads(m) for m in received if isinstance(m, str)]
    segment_ids = [e["id"] for e in events if e["type"] == "segment"]
    second = next(i for i, m in enumerate(received) if isinstance(m, str) and json.loads(m).get("id") == segment_ids[1])
    # Frames of segment 1 reached the client after segment 2's synthesis had begun.
    assert sum(isinstance(m, bytes) for m in received[:second]) >= 2
    assert [e["text"] for e in events if e["type"] == "segment"] == engine.calls
