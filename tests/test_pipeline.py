"""One session's pipeline without a socket: order, flush, cancel, backpressure, faults."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from bridge.audio.framing import decode_pcm
from bridge.cli import word_pieces
from bridge.pipeline import (
    AudioOut,
    CancelledOut,
    ErrorOut,
    FlushedOut,
    OutputItem,
    SegmentOut,
    SessionOptions,
    SessionPipeline,
)
from tests.engines_util import FailingEngine, GatedEngine, WrappedEngine

REPLY = (
    "Sure! The museum opens at 9:30 a.m. on weekdays, and tickets cost $12.50 for adults. "
    "Children under five get in free."
)


async def collect_until_flushed(pipeline: SessionPipeline, timeout: float = 60) -> list[OutputItem]:
    items: list[OutputItem] = []
    while True:
        item = await asyncio.wait_for(pipeline.next_output(), timeout)
        items.append(item)
        if isinstance(item, FlushedOut):
            return items


def audio_of(items: list[OutputItem]) -> np.ndarray:
    frames = [decode_pcm(i.data, "f32le") for i in items if isinstance(i, AudioOut)]
    return np.concatenate(frames) if frames else np.zeros(0, np.float32)


async def test_tokens_then_flush_give_audio_then_flushed(engines_factory) -> None:
    pipeline = SessionPipeline(engines_factory(), SessionOptions(events=True))
    try:
        for token in word_pieces(REPLY):
            pipeline.feed(token)
        pipeline.flush()
        items = await collect_until_flushed(pipeline)
    finally:
        await pipeline.close()
    audio = audio_of(items)
    assert 4.0 < audio.size / 48000 < 15.0
    frames = [i for i in items if isinstance(i, AudioOut)]
    assert all(len(f.data) == 960 * 4 for f in frames[:-1])  # 20 ms frames, only the last is short
    segments = [i for i in items if isinstance(i, SegmentOut)]
    assert len(segments) >= 3
    assert [s.id for s in segments] == sorted(s.id for s in segments)
    # Every segment event comes before audio of that segment: the first item is a segment event.
    assert isinstance(items[0], SegmentOut)
    flushed = items[-1]
    assert isinstance(flushed, FlushedOut) and flushed.segments == len(segments)
    assert flushed.audio_seconds == pytest.approx(audio.size / 48000, abs=0.01)


async def test_no_events_unless_asked(engines_factory) -> None:
    pipeline = SessionPipeline(engines_factory(), SessionOptions(events=False))
    try:
        pipeline.feed("Hello there. How are you?")
        pipeline.flush()
        items = await collect_until_flushed(pipeline)
    finally:
        await pipeline.close()
    assert not any(isinstance(i, SegmentOut) for i in items)


async def test_first_segment_starts_before_the_text_is_complete(engines_factory) -> None:
    engine = WrappedEngine(engines_factory().tts)
    pipeline = SessionPipeline(engines_factory(engine))
    try:
        for token in word_pieces("The hotel on Main Street has rooms"):
            pipeline.feed(token)
        item = await asyncio.wait_for(pipeline.next_output(), 30)  # no flush yet
        assert isinstance(item, AudioOut)
        assert engine.calls and len(engine.calls[0].split()) <= 3
    finally:
        await pipeline.close()


async def test_a_failing_segment_reports_and_the_rest_is_spoken(engines_factory) -> None:
    engine = FailingEngine(engines_factory().tts)
    pipeline = SessionPipeline(engines_factory(engine), SessionOptions(events=True))
    try:
        pipeline.feed("This part is fine. But this one goes BOOM today. And this part is fine too.")
        pipeline.flush()
        items = await collect_until_flushed(pipeline)
    finally:
        await pipeline.close()
    errors = [i for i in items if isinstance(i, ErrorOut)]
    assert len(errors) == 1 and "injected fault" in errors[0].message
    assert any("fine too" in c for c in engine.calls)
    assert audio_of(items).size / 48000 > 1.5


async def test_cancel_drops_everything_even_a_chunk_in_flight(engines_factory) -> None:
    engine = GatedEngine(engines_factory().tts)
    pipeline = SessionPipeline(engines_factory(engine), SessionOptions(events=True))
    try:
        pipeline.feed("The first sentence is here and it is rather long, so it takes a while. Another sentence.")
        # Wait until a worker thread is inside the engine, holding the second chunk.
        await asyncio.get_running_loop().run_in_executor(None, engine.waiting.wait, 30)
        await pipeline.cancel()
        engine.gate.set()
        await asyncio.get_running_loop().run_in_executor(None, engine.released.wait, 30)
        # The next item after whatever was queued is CancelledOut, and nothing old follows it.
        item = await asyncio.wait_for(pipeline.next_output(), 10)
        assert isinstance(item, CancelledOut)
        await asyncio.sleep(0.3)  # give a stale chunk every chance to sneak in
        assert len(pipeline.output) == 0
        # The session goes on with a clean utterance.
        pipeline.feed("Fresh start.")
        pipeline.flush()
        items = await collect_until_flushed(pipeline)
        texts = [i.text for i in items if isinstance(i, SegmentOut)]
        assert texts == ["Fresh start."]
        assert audio_of(items).size > 0
        # The flushed event counts this utterance only, not the cancelled one.
        assert items[-1].segments == 1
    finally:
        engine.gate.set()
        await pipeline.close()


async def test_backpressure_pauses_synthesis_and_bounds_memory(engines_factory) -> None:
    base = engines_factory()
    engine = WrappedEngine(base.tts)
    engines = engines_factory(engine, output_queue_seconds=0.5)
    pipeline = SessionPipeline(engines)
    long_text = " ".join(["This sentence is here to make a long reply that takes many seconds to say."] * 8)
    try:
        pipeline.feed(long_text)
        pipeline.flush()
        limit = pipeline.output.max_samples
        # Nobody reads: synthesis must stall once the queue holds its bound.
        for _ in range(200):
            await asyncio.sleep(0.05)
            if pipeline.output.samples >= limit:
                break
        assert pipeline.output.samples >= limit
        stalled_at = engine.chunks
        await asyncio.sleep(0.5)
        assert engine.chunks <= stalled_at + 1  # at most the chunk already in flight
        # Bounded: the queue never holds much more than its limit (one chunk's frames at most).
        assert pipeline.output.samples < limit + 192 * 256 * 48000 // 22050 + 960
        # Reading resumes synthesis and everything arrives, nothing dropped.
        items = await collect_until_flushed(pipeline, timeout=120)
        assert engine.chunks > stalled_at
        assert audio_of(items).size / 48000 > 20
    finally:
        await pipeline.close()


async def test_idle_flush_speaks_a_stalled_tail(engines_factory) -> None:
    pipeline = SessionPipeline(engines_factory(idle_flush_ms=100), SessionOptions(events=True))
    try:
        pipeline.feed("A reply that stops")
        item = await asyncio.wait_for(pipeline.next_output(), 30)
        assert isinstance(item, SegmentOut)
        # The fast path may have cut the first words already; the rest comes after the idle flush.
        texts = [item.text]
        while " ".join(texts).split() != "A reply that stops".split():
            nxt = await asyncio.wait_for(pipeline.next_output(), 30)
            if isinstance(nxt, SegmentOut):
                texts.append(nxt.text)
    finally:
        await pipeline.close()


async def test_close_stops_the_worker(engines_factory) -> None:
    pipeline = SessionPipeline(engines_factory())
    pipeline.feed("Some words to say before the client vanishes.")
    await pipeline.close()
    assert pipeline._task.done()  # noqa: SLF001
