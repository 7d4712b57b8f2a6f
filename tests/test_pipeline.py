"""One session's pipeline runner without a socket: order, flush, cancel, backpressure, timers.

Most tests use a fake engine (tests/support/fake_engines.py): what the runner does is move data between
the core (tested alone in tests/test_core.py), the model workers and the output queue, and that
needs no model. Two tests keep the real embedded voice end to end.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Iterator

import pytest

from bridge.cli import word_pieces
from bridge.engines import Engines
from bridge.pipeline import (
    AudioOut,
    CancelledOut,
    ErrorOut,
    FlushedOut,
    SegmentOut,
    SessionOptions,
    SessionPipeline,
)
from tests.support.engines_util import WrappedEngine, wait_until
from tests.support.fake_engines import FakeEngine, FakeVoices, fake_engines
from tests.support.pipeline_io import audio_of, collect_until_flushed

REPLY = (
    "Sure! The museum opens at 9:30 a.m. on weekdays, and tickets cost $12.50 for adults. "
    "Children under five get in free."
)


@pytest.fixture
def engines_of() -> Iterator:  # type: ignore[type-arg]
    """Engines around fake models (shut down after the test)."""
    created: list[Engines] = []

    def make(*args, **kwargs) -> Engines:  # type: ignore[no-untyped-def]
        engines = fake_engines(*args, **kwargs)
        created.append(engines)
        return engines

    yield make
    for engines in created:
        engines.executor.shutdown(wait=True)


async def settled(pipeline: SessionPipeline) -> None:
    """Wait until the runner has nothing in flight (a liveness wait, never the assertion)."""
    await wait_until(lambda: not pipeline.core.in_flight, "the runner has no command in flight")


# ----------------------------------------------------------------------------- real Piper
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



# ----------------------------------------------------------------------------- fake engine
async def test_segments_in_order_with_their_text_and_token(engines_of) -> None:
    engine = FakeEngine()
    pipeline = SessionPipeline(engines_of(engine), SessionOptions(events=True))
    try:
        tokens = ["Hello ", "there, ", "my ", "friend. ", "How ", "are ", "you?"]
        for token in tokens:
            pipeline.feed(token)
        pipeline.flush()
        items = await collect_until_flushed(pipeline)
    finally:
        await pipeline.close()
    segments = [i for i in items if isinstance(i, SegmentOut)]
    assert [s.text for s in segments] == ["Hello there,", "my friend.", "How are you?"] == engine.calls
    assert [s.id for s in segments] == [1, 2, 3]
    assert [s.token for s in segments] == [3, 5, None]
    assert isinstance(items[0], SegmentOut)
    # 7 words of 0.2 s each, at 48 kHz; the flush counts them all.
    audio = audio_of(items)
    flushed = items[-1]
    assert isinstance(flushed, FlushedOut) and flushed.segments == 3
    assert flushed.audio_seconds == pytest.approx(audio.size / 48000, abs=1e-3)
    assert audio.size / 48000 > 1.0
    frames = [i for i in items if isinstance(i, AudioOut)]
    assert all(len(f.data) == 960 * 4 for f in frames[:-1])
    assert frames[0].first_text is not None and all(f.first_text is None for f in frames[1:])


async def test_no_events_unless_asked(engines_of) -> None:
    pipeline = SessionPipeline(engines_of(), SessionOptions(events=False))
    try:
        pipeline.feed("Hello there. How are you?")
        pipeline.flush()
        items = await collect_until_flushed(pipeline)
    finally:
        await pipeline.close()
    assert not any(isinstance(i, SegmentOut) for i in items)
    assert audio_of(items).size > 0


async def test_cancel_drops_everything_even_a_chunk_in_flight(engines_of) -> None:
    engine = FakeEngine(gate_from=1)
    pipeline = SessionPipeline(engines_of(engine), SessionOptions(events=True))
    try:
        pipeline.feed("The first sentence is here and it is rather long, so it takes a while. Another sentence.")
        # Wait until a worker thread is inside the engine, holding the second chunk.
        await asyncio.get_running_loop().run_in_executor(None, engine.waiting.wait, 30)
        await pipeline.cancel()
        engine.gate.set()
        await asyncio.get_running_loop().run_in_executor(None, engine.released.wait, 30)
        # The next item after whatever was queued is CancelledOut, and nothing old follows it,
        # not even the chunk that was computing: the runner dropped it when it came back.
        item = await asyncio.wait_for(pipeline.next_output(), 10)
        assert isinstance(item, CancelledOut)
        await settled(pipeline)
        assert len(pipeline.output) == 0 and not pipeline.busy
        # The abandoned engine stream is closed, not kept alive (closed on a worker thread after
        # the runner dropped its result: a liveness wait, which fails if it never happens).
        await wait_until(lambda: engine.active == 0, "the abandoned engine stream is closed")
        # The session goes on with a clean utterance.
        engine.gate_from = None
        pipeline.feed("Fresh start.")
        pipeline.flush()
        items = await collect_until_flushed(pipeline)
        texts = [i.text for i in items if isinstance(i, SegmentOut)]
        assert texts == ["Fresh start."]
        assert audio_of(items).size / 48000 == pytest.approx(0.4, abs=0.05)
        # The flushed event counts this utterance only, not the cancelled one.
        assert items[-1].segments == 1
    finally:
        engine.gate.set()
        await pipeline.close()


async def test_a_frame_waiting_for_room_through_a_cancel_is_dropped(engines_of) -> None:
    pipeline = SessionPipeline(engines_of(output_queue_seconds=0.2), SessionOptions(events=True))
    try:
        pipeline.feed("many words " * 40)
        pipeline.flush()
        # Nobody reads: the runner waits for room with a frame in hand.
        await wait_until(
            lambda: pipeline.output.samples >= pipeline.output.max_samples and not pipeline.core.in_flight,
            "the runner waits for room",
        )
        await pipeline.cancel()
        assert [await pipeline.next_output()] == [CancelledOut()]
        await settled(pipeline)
        assert len(pipeline.output) == 0
        pipeline.feed("Fresh start.")
        pipeline.flush()
        items = await collect_until_flushed(pipeline)
        assert [i.text for i in items if isinstance(i, SegmentOut)] == ["Fresh start."]
    finally:
        await pipeline.close()


async def test_backpressure_pauses_synthesis_and_bounds_memory(engines_of) -> None:
    engine = FakeEngine()
    pipeline = SessionPipeline(engines_of(engine, output_queue_seconds=0.5))
    try:
        pipeline.feed("This sentence is here to make a long reply that takes many seconds to say. " * 4)
        pipeline.flush()
        limit = pipeline.output.max_samples
        # Nobody reads: synthesis must stop once the queue holds its bound; the runner then
        # waits for room with no model work asked for.
        await wait_until(
            lambda: pipeline.output.samples >= limit and not pipeline.core.in_flight, "the queue is full"
        )
        stalled_at = engine.chunks
        for _ in range(100):  # let every other task run: nothing may move
            await asyncio.sleep(0)
        assert engine.chunks == stalled_at and not pipeline.core.in_flight
        assert pipeline.engines.executor.queued == 0
        # Bounded: at most one step's frames past the limit (a 0.05 s chunk, one frame of slack).
        assert pipeline.output.samples < limit + 2400 + 960
        # Reading resumes synthesis and everything arrives, nothing dropped.
        items = await collect_until_flushed(pipeline)
        assert engine.chunks > stalled_at
        assert audio_of(items).size / 48000 == pytest.approx(4 * 15 * 0.2, abs=0.05)  # 15 words, 4 times
    finally:
        await pipeline.close()


async def test_idle_flush_speaks_a_stalled_tail(engines_of) -> None:
    pipeline = SessionPipeline(engines_of(idle_flush_ms=50), SessionOptions(events=True))
    try:
        pipeline.feed("A reply that stops")
        texts: list[str] = []
        while " ".join(texts).split() != "A reply that stops".split():
            item = await asyncio.wait_for(pipeline.next_output(), 30)
            assert not isinstance(item, FlushedOut)  # the utterance stays open
            if isinstance(item, SegmentOut):
                texts.append(item.text)
    finally:
        await pipeline.close()


async def test_held_speech_goes_out_when_due_without_a_flush(engines_of) -> None:
    voices = FakeVoices()
    pipeline = SessionPipeline(engines_of(voice=voices), SessionOptions(events=True, voice="keeper"))
    try:
        pipeline.feed("Hello there, my friend. And")  # two segments; the voice holds their speech
        samples = 0
        while samples < 48000 * 0.7:  # most of 4 words of 0.2 s (pauses trimmed), no flush
            item = await asyncio.wait_for(pipeline.next_output(), 30)
            assert not isinstance(item, FlushedOut)
            if isinstance(item, AudioOut):
                samples += item.samples
        assert voices.streams[0].converted_held >= 1
        pipeline.flush()
        rest = await collect_until_flushed(pipeline)
        assert isinstance(rest[-1], FlushedOut)
    finally:
        await pipeline.close()


async def test_a_voice_that_will_not_load_falls_back_to_the_bare_voice(engines_of) -> None:
    voices = FakeVoices()
    options = SessionOptions(events=True, voice="broken")
    pipeline = SessionPipeline(engines_of(voice=voices), options)
    try:
        pipeline.feed("Hello there.")
        pipeline.flush()
        items = await collect_until_flushed(pipeline)
    finally:
        await pipeline.close()
    assert items[0] == ErrorOut("voice 'broken' could not be loaded", "voice")
    assert voices.opened == ["broken"] and options.voice is None
    assert audio_of(items).size / 48000 == pytest.approx(0.4, abs=0.05)


async def test_a_format_change_mid_utterance_counts_by_the_chains_format(engines_of) -> None:
    """#22: a config message switching to s16le in the middle of an utterance: its frames are
    still f32le (the chain's format) and are counted as such; the next utterance is s16le."""
    options = SessionOptions(format="f32le")
    pipeline = SessionPipeline(engines_of(), options)
    try:
        pipeline.feed("Hello there, my friend. How are you today")
        first = await asyncio.wait_for(pipeline.next_output(), 30)
        assert isinstance(first, AudioOut)
        options.format = "s16le"  # what the session does on {"type": "config", "format": "s16le"}
        pipeline.flush()
        items = [first, *await collect_until_flushed(pipeline)]
        frames = [i for i in items if isinstance(i, AudioOut)]
        assert all(f.samples * 4 == len(f.data) for f in frames)
        seconds = sum(len(f.data) for f in frames) / 4 / 48000
        assert seconds == pytest.approx(8 * 0.2, abs=0.05)
        assert items[-1].audio_seconds == pytest.approx(seconds, abs=1e-3)
        assert items[-1].stats["audio_seconds"] == pytest.approx(seconds, abs=1e-3)
        pipeline.feed("Next one.")
        pipeline.flush()
        second = await collect_until_flushed(pipeline)
        frames = [i for i in second if isinstance(i, AudioOut)]
        assert all(f.samples * 2 == len(f.data) for f in frames)
        assert second[-1].audio_seconds == pytest.approx(0.4, abs=0.05)
    finally:
        await pipeline.close()


async def test_close_stops_the_worker(engines_of) -> None:
    engine = FakeEngine(gate_from=1)
    pipeline = SessionPipeline(engines_of(engine))
    pipeline.feed("Some words to say before the client vanishes.")
    await asyncio.get_running_loop().run_in_executor(None, engine.waiting.wait, 30)
    await pipeline.close()
    engine.gate.set()
    assert pipeline._task.done()  # noqa: SLF001
    assert pipeline.closed and not pipeline.busy
    # The worker thread returns its step to nobody; the engine stream is closed once it has.
    await asyncio.get_running_loop().run_in_executor(None, engine.released.wait, 30)
    pipeline.engines.executor.shutdown(wait=True)
    await wait_until(lambda: engine.active == 0, "the abandoned engine stream is closed")


async def test_the_utterance_limit_cuts_the_utterance_and_still_flushes(engines_of) -> None:
    pipeline = SessionPipeline(engines_of(), SessionOptions(events=True), max_utterance_seconds=1.0)
    try:
        pipeline.feed("one two three four five six seven eight nine ten. " * 2)
        pipeline.flush()
        items = await collect_until_flushed(pipeline)
        errors = [i for i in items if isinstance(i, ErrorOut)]
        assert [e.kind for e in errors] == ["utterance_limit"]
        assert audio_of(items).size / 48000 <= 1.0
        pipeline.feed("Short one.")
        pipeline.flush()
        second = await collect_until_flushed(pipeline)
        assert not any(isinstance(i, ErrorOut) for i in second)
        assert audio_of(second).size / 48000 == pytest.approx(0.4, abs=0.05)
    finally:
        await pipeline.close()


async def test_a_flush_with_nothing_said_is_answered(engines_of) -> None:
    pipeline = SessionPipeline(engines_of())
    try:
        pipeline.flush()
        item = await asyncio.wait_for(pipeline.next_output(), 30)
        assert item == FlushedOut(segments=0, audio_seconds=0.0, stats=item.stats)
    finally:
        await pipeline.close()


async def test_each_model_step_reports_its_cost_under_its_voice(engines_of) -> None:
    observed: list[tuple[str, float, float]] = []
    observer = types.SimpleNamespace(
        observe_segment_latency=lambda seconds: None,
        observe_compute=lambda key, cpu, audio: observed.append((key, cpu, audio)),
        error=lambda kind: None,
    )
    voices = FakeVoices()
    bare = SessionPipeline(engines_of(), SessionOptions(), observer=observer)
    voiced = SessionPipeline(engines_of(voice=voices), SessionOptions(voice="keeper"), observer=observer)
    try:
        for pipeline in (bare, voiced):
            pipeline.feed("Hello there, my friend.")
            pipeline.flush()
            items = await collect_until_flushed(pipeline)
            key = "fake" if pipeline is bare else "fake+rvc:keeper"
            steps = [o for o in observed if o[0] == key]
            assert len(steps) > 4 and all(cpu >= 0 for _, cpu, _ in steps)
            assert sum(audio for _, _, audio in steps) == pytest.approx(audio_of(items).size / 48000, abs=1e-3)
    finally:
        await bare.close()
        await voiced.close()


async def test_the_engine_gets_the_speed_and_the_listeners_lead(engines_of) -> None:
    engine = FakeEngine()
    pipeline = SessionPipeline(engines_of(engine), SessionOptions(speed=2.0))
    try:
        pipeline.feed("Hello there, my friend.")
        pipeline.flush()
        items = await collect_until_flushed(pipeline)
    finally:
        await pipeline.close()
    assert engine.speeds == [2.0, 2.0]
    assert audio_of(items).size / 48000 == pytest.approx(0.4, abs=0.05)  # 4 words at twice the rate
    # The first segment starts before any audio (no lead); the second with the first's audio out.
    assert engine.leads[0] == 0.0 and engine.leads[1] is not None and engine.leads[1] > 0
