"""Block pacing: each block sized to be converted before the listener runs out of audio."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.cancel import CancelToken
from bridge.vc.pacing import BlockPacer
from bridge.vc.rvc import RVCStream, StreamLayout

from .stubs import record_blocks
from .streaming import EXACT, HOP40, SEEDED, interior, stream_all


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_first_block_is_the_minimum_until_a_block_is_timed() -> None:
    pacer = BlockPacer(min_frames=60, max_frames=200, context_frames=50, clock=FakeClock())
    assert pacer.next_frames() == 60
    pacer.listener.handed(0.6, pacer.clock())
    assert pacer.next_frames() == 60  # no measured rate yet


def test_blocks_fit_the_audio_the_listener_still_has() -> None:
    clock = FakeClock()
    pacer = BlockPacer(min_frames=60, max_frames=200, context_frames=50, safety=0.8, clock=clock)
    pacer.converted(110, 0.55)  # 60 frames + 50 of context: 0.005 s per window frame (RTF ≈ 0.9)
    pacer.listener.handed(0.6, pacer.clock())
    # 0.6 s left: 0.48 s of budget = 96 window frames = 46 new frames → the minimum.
    assert pacer.next_frames() == 60
    pacer.listener.handed(1.4, pacer.clock())  # 2.0 s out, nothing played yet: 1.6 s budget = 320 frames → capped
    assert pacer.next_frames() == 200
    clock.now += 1.0  # 1.0 s played: 1.0 s left → 0.8 s budget = 160 - 50 = 110 frames
    assert pacer.buffered_seconds() == pytest.approx(1.0)
    assert pacer.next_frames() == 110
    clock.now += 5.0  # the listener ran dry: never below the minimum
    assert pacer.buffered_seconds() == 0.0 and pacer.next_frames() == 60


def test_rate_is_learned_and_restart_forgets_the_buffer_only() -> None:
    clock = FakeClock()
    pacer = BlockPacer(min_frames=24, max_frames=50, context_frames=100, smoothing=0.5, clock=clock)
    pacer.converted(124, 1.24)  # 0.01 s/frame
    pacer.converted(150, 0.45)  # 0.003 s/frame → average 0.0065
    assert pacer.rate == pytest.approx(0.0065)
    pacer.listener.handed(3.0, pacer.clock())
    assert pacer.next_frames() == 50
    pacer.restart()
    assert pacer.buffered_seconds() == 0.0 and pacer.next_frames() == 24 and pacer.rate == pytest.approx(0.0065)


def test_frames_are_even_and_bad_limits_refused() -> None:
    clock = FakeClock()
    pacer = BlockPacer(min_frames=2, max_frames=500, context_frames=0, safety=1.0, clock=clock)
    pacer.converted(10, 0.1)
    pacer.listener.handed(0.33, pacer.clock())
    assert pacer.next_frames() % 2 == 0
    with pytest.raises(ValueError):
        BlockPacer(min_frames=10, max_frames=4, context_frames=0)
    with pytest.raises(ValueError):
        BlockPacer(min_frames=2, max_frames=4, context_frames=0, safety=0)


def test_paced_stream_hands_out_one_block_per_push_and_the_same_audio(voices, speech) -> None:
    voice = voices["local"]
    whole = stream_all(voice, speech, EXACT, SEEDED)
    layout = StreamLayout(block=34, crossfade=4, context=40, lookahead=40, dec_pad=12, first_block=6)
    pacer = BlockPacer(layout.first_block, layout.block, layout.context)
    stream = RVCStream(voice, 16000, params=SEEDED, layout=layout, pacer=pacer)
    parts = [stream.push(speech)]  # everything at once: one block out, the rest waits
    assert len(parts[0]) == 6 * HOP40
    pushes = 1
    while stream.ready():
        block = stream.push(np.zeros(0, np.float32))
        assert 0 < len(block) <= layout.block * HOP40
        parts.append(block)
        pushes += 1
    parts.append(stream.flush())
    paced = np.concatenate(parts)
    assert pushes > 2 and len(paced) == len(whole)
    inner = interior(whole, EXACT, HOP40)
    assert np.max(np.abs(paced[inner] - whole[inner])) < 1e-4


def test_cancelled_paced_stream_stops(voices, speech) -> None:
    cancel = CancelToken()
    layout = StreamLayout(block=20, context=40, lookahead=4, first_block=6)
    stream = RVCStream(voices["local"], 16000, params=SEEDED, layout=layout, cancel=cancel,
                       pacer=BlockPacer(6, 20, 40))  # fmt: skip
    stream.push(speech)
    assert stream.ready()
    cancel.cancel()
    from bridge.cancel import Cancelled

    with pytest.raises(Cancelled):
        stream.push(np.zeros(0, np.float32))


def test_a_listener_that_ran_dry_resumes_with_the_next_audio() -> None:
    clock = FakeClock()
    pacer = BlockPacer(min_frames=60, max_frames=200, context_frames=50, safety=1.0, clock=clock)
    pacer.converted(110, 0.33)  # 0.003 s per window frame
    pacer.listener.handed(0.6, pacer.clock())
    clock.now += 2.0  # the listener played 0.6 s and then waited 1.4 s
    assert pacer.buffered_seconds() == 0.0
    pacer.listener.handed(0.6, pacer.clock())  # it plays this from now: 0.6 s ahead, not 0.6 - 1.4
    assert pacer.buffered_seconds() == pytest.approx(0.6)
    assert pacer.next_frames() == 150  # 0.6 s / 0.003 = 200 window frames - 50 context


def test_the_wait_for_the_compute_slot_comes_off_the_budget() -> None:
    # Other streams' blocks hold the (one) compute slot: that wait does not grow with the
    # block, so it is learned apart and taken off the time the next block may use.
    clock = FakeClock()
    alone = BlockPacer(min_frames=20, max_frames=400, context_frames=50, safety=1.0, clock=clock)
    shared = BlockPacer(min_frames=20, max_frames=400, context_frames=50, safety=1.0, clock=clock)
    alone.converted(110, 0.33)
    shared.converted(110, 0.33, waited=0.3)
    assert alone.rate == shared.rate == pytest.approx(0.003) and shared.wait == pytest.approx(0.3)
    alone.listener.handed(0.9, alone.clock())
    shared.listener.handed(0.9, shared.clock())
    assert alone.next_frames() == 250  # 0.9 s / 0.003 − 50
    assert shared.next_frames() == 150  # (0.9 − 0.3) s / 0.003 − 50
    shared.converted(110, 0.33, waited=0.0)  # the others went quiet: the wait fades
    assert shared.wait == pytest.approx(0.15)
    shared.converted(0, 0.0)  # a degenerate timing never makes the rate zero
    assert shared.rate > 0 and shared.next_frames() >= 20


def test_held_speech_goes_out_when_input_pauses(voices, speech) -> None:
    # A large buffer makes the pacer ask for a large block; when the segment ends with less
    # than that held, the stream converts what it has before the listener would run dry,
    # without waiting for the next segment.
    voice = voices["local"]
    clock = FakeClock()
    layout = StreamLayout(block=60, crossfade=4, context=40, lookahead=4, dec_pad=2, first_block=6, step=2)
    pacer = BlockPacer(layout.first_block, layout.block, layout.context, safety=1.0, clock=clock)
    stream = RVCStream(voice, 16000, params=SEEDED, layout=layout, pacer=pacer)
    first = stream.push(speech[: 30 * 160])  # 30 frames: the 6-frame first block goes out
    assert len(first) == 6 * HOP40
    pacer.listener.handed(10.0, pacer.clock())  # the listener is far ahead now: the pacer wants the largest block
    assert pacer.next_frames() == 60 and not stream.ready()  # 30 − 6 − 9 = 15 frames held
    assert stream.held_due_in() is None  # input is not paused: more speech is coming
    stream.input_paused()
    # It may wait for the next segment while the listener has plenty; it is due when what
    # is left of the buffer only just covers its conversion.
    due = stream.held_due_in()
    assert due is not None and 9.5 < due < 10.06 and not stream.ready()  # 10.06 s buffered
    clock.now += due
    assert stream.held_due_in() == 0.0 and stream.ready()
    held = stream.push(np.zeros(0, np.float32))
    assert len(held) == 14 * HOP40  # the even part of what is held (not 60, not 6)
    assert not stream.ready()
    stream.input_paused()
    stream.push(speech[30 * 160 : 40 * 160])  # new input ends the pause
    assert not stream.ready()


def test_layouts_keep_the_first_block_within_the_blocks_and_the_lead_even() -> None:
    with pytest.raises(ValueError):
        StreamLayout(block=20, first_block=40)
    assert StreamLayout(context=40, dec_pad=3, start_context=0).lead == 4


def test_block_sizes_keep_to_a_few_warm_sizes() -> None:
    # Each new block size costs a kernel set-up on its first call: growing, paced, held and
    # tail blocks all keep to multiples of the step (and the first and full block).
    layout = StreamLayout(block=100, context=40, first_block=30, step=20)
    assert layout.sizes == (20, 30, 40, 60, 80, 100)
    assert [layout.block_at(f) for f in (0, 30, 60, 90, 150)] == [30, 30, 60, 80, 100]
    assert [layout.fit(n) for n in (4, 25, 59, 60, 99, 140)] == [4, 20, 40, 60, 80, 100]
    assert [layout.cover(n) for n in (1, 4, 25, 59, 100, 141)] == [20, 20, 30, 60, 100, 142]
    with pytest.raises(ValueError):
        StreamLayout(step=3)
    clock = FakeClock()
    pacer = BlockPacer(30, 100, 40, step=20, clock=clock)
    pacer.converted(70, 0.07)  # 1 ms per window frame
    pacer.listener.handed(1.0, pacer.clock())
    # The budget fits 0.8 s / 1 ms - 40 = 760 frames → the full block; less audio, less block.
    assert pacer.next_frames() == 100
    clock.now += 0.9  # 0.1 s left: 80 - 40 = 40 frames
    assert pacer.next_frames() == 40
    clock.now += 0.005  # 0.095 s left: 76 - 40 = 36 → 20 would be below the minimum: 30
    assert pacer.next_frames() == 30
    with pytest.raises(ValueError):
        BlockPacer(30, 100, 40, step=5)


def test_held_speech_goes_out_in_warm_sizes(voices, speech, monkeypatch) -> None:
    layout = StreamLayout(block=60, crossfade=4, context=40, lookahead=4, dec_pad=2, first_block=30, step=20)
    clock = FakeClock()
    pacer = BlockPacer(layout.first_block, layout.block, layout.context, step=layout.step, clock=clock)
    stream = RVCStream(voices["local"], 16000, params=SEEDED, layout=layout, pacer=pacer)
    sizes = record_blocks(monkeypatch)
    first = stream.push(speech[: (30 + layout.latency_frames) * 160])
    assert sizes == [30] and len(first) == 30 * HOP40
    pacer.rate, pacer.wait = 0.0001, 0.0  # a fixed cost (0.1 ms per window frame), not this machine's
    pacer.converted = lambda *_: None  # type: ignore[method-assign]
    stream.push(speech[(30 + layout.latency_frames) * 160 : (84 + layout.latency_frames) * 160])
    assert sizes == [30] and stream._held_frames() == 54  # the pacer wants 60: held
    stream.input_paused()
    for _ in range(200):  # 1 s of the listener playing: what is held goes out before it runs dry
        clock.now += 0.005
        if stream.ready():
            stream.push(np.zeros(0, np.float32))
    assert sizes == [30, 40, 14]  # a warm size, then the remainder below the step as it is


def test_before_the_first_audio_held_speech_waits_for_a_whole_first_block(voices, speech) -> None:
    # A short first segment must not go out as a shorter first block: the listener would
    # have less audio than the next block takes to convert.
    layout = StreamLayout(block=60, crossfade=4, context=40, lookahead=4, dec_pad=2, first_block=30)
    pacer = BlockPacer(layout.first_block, layout.block, layout.context, clock=FakeClock())
    stream = RVCStream(voices["local"], 16000, params=SEEDED, layout=layout, pacer=pacer)
    assert len(stream.push(speech[: 25 * 160])) == 0  # 25 frames < 30 + 9
    stream.input_paused()
    assert stream.held_due_in() is None and not stream.ready()
