"""The per-utterance core on its own: a fake clock (plain floats) and fake results.

No threads, sockets, models or sleeps: every test drives :class:`bridge.core.UtteranceCore`
by hand, as the asyncio runner does, and checks the commands and output items it hands out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from bridge.cancel import Cancelled
from bridge.core import (
    AudioOut,
    CancelledOut,
    ChainResult,
    Command,
    ConvertHeld,
    CoreConfig,
    ErrorOut,
    Fault,
    FinishUtterance,
    FlushedOut,
    FreeMemory,
    LimitReached,
    OpenChain,
    OutputItem,
    SegmentLatency,
    SegmentOut,
    SessionOptions,
    StepSegment,
    StepTiming,
    StopEngine,
    UtteranceCore,
)
from bridge.scheduler import DeadlinePolicy
from bridge.tts.base import TTSError
from bridge.vc.base import VoiceError

FRAME = 960  # 20 ms at 48 kHz
POLICY = DeadlinePolicy(first_audio_target=0.1, boundary_grace=0.15)


def frames(count: int, fmt: str = "f32le", samples: int = FRAME) -> list[bytes]:
    return [bytes(samples * (4 if fmt == "f32le" else 2))] * count


def make_core(options: SessionOptions | None = None, **config: Any) -> UtteranceCore:
    config.setdefault("deadlines", POLICY)
    return UtteranceCore(CoreConfig(**config), options or SessionOptions(events=True))


@dataclass
class Driver:
    """Plays the runner: executes each command with a fake result at a fake time, hands every
    output item out at once, and records what went by."""

    core: UtteranceCore
    now: float = 100.0
    #: Steps per segment (each gives ``frames_per_step`` frames; the last one ends it).
    steps_per_segment: int = 2
    frames_per_step: int = 2
    tail_frames: int = 1
    step_seconds: float = 0.01
    commands: list[Command] = field(default_factory=list)
    items: list[OutputItem] = field(default_factory=list)

    def result(self, command: Command) -> Any:
        if isinstance(command, OpenChain):
            return f"chain-{len(self.commands)}"
        if isinstance(command, StepSegment):
            if command.start is not None:
                command.slot.stream = 0  # what the runner keeps there: the engine's stream
            command.slot.stream += 1
            return ChainResult(
                frames(self.frames_per_step, self.core.chain_format),
                done=command.slot.stream >= self.steps_per_segment,
                timing=StepTiming(tts_seconds=0.005, tts_audio_seconds=0.04),
            )
        if isinstance(command, ConvertHeld):
            return ChainResult(frames(1, self.core.chain_format), done=True)
        if isinstance(command, FinishUtterance):
            return ChainResult(frames(self.tail_frames, self.core.chain_format), done=True)
        return None

    def hand_out(self) -> list[OutputItem]:
        out = []
        while (entry := self.core.pop_output()) is not None:
            out.append(entry.item)
            if isinstance(entry.item, AudioOut):
                self.core.frames_handed(entry.item.samples, self.now, entry.generation)
        self.items += out
        return out

    def step(self, fail: BaseException | None = None) -> Command | None:
        """Ask for one command and complete it (``fail``: with that exception)."""
        self.hand_out()
        command = self.core.next_command(self.now)
        self.hand_out()
        if command is None:
            return None
        self.commands.append(command)
        self.hand_out()
        self.now += self.step_seconds
        if fail is not None:
            self.core.command_failed(command, fail, self.now)
        else:
            self.core.command_done(command, self.result(command), self.now)
        self.hand_out()
        return command

    def run(self) -> list[OutputItem]:
        """Complete commands until the core has nothing to do; the items handed out."""
        start = len(self.items)
        while self.step() is not None:
            pass
        return self.items[start:]


def audio_samples(items: list[OutputItem]) -> int:
    return sum(i.samples for i in items if isinstance(i, AudioOut))


# ----------------------------------------------------------------------------- order
def test_segments_are_spoken_in_order_and_the_flush_ends_the_utterance() -> None:
    driver = Driver(make_core())
    core = driver.core
    core.feed("Hello there, my friend. How are you today?", None, driver.now)
    core.flush(driver.now)
    items = driver.run()
    kinds = [type(c).__name__ for c in driver.commands]
    assert kinds == ["OpenChain"] + ["StepSegment"] * 6 + ["FinishUtterance"]
    segments = [i for i in items if isinstance(i, SegmentOut)]
    assert [s.text for s in segments] == ["Hello there,", "my friend.", "How are you today?"]
    assert [s.id for s in segments] == [1, 2, 3]
    assert [s.token for s in segments] == [1, 1, None]  # the flush completed the last one
    # Each segment's event comes before its audio; the FlushedOut comes last and counts all.
    assert isinstance(items[0], SegmentOut)
    positions = [items.index(s) for s in segments]
    assert all(isinstance(items[p + 1], AudioOut) for p in positions)
    flushed = items[-1]
    assert isinstance(flushed, FlushedOut) and flushed.segments == 3
    assert flushed.audio_seconds == pytest.approx(audio_samples(items) / 48000)
    assert flushed.audio_seconds == pytest.approx((3 * 2 * 2 + 1) * 0.02)
    assert flushed.stats["tokens"] == 1 and flushed.stats["tts_ms"] == pytest.approx(30.0)
    # The first frame carries when the first text came; no other frame does.
    audio = [i for i in items if isinstance(i, AudioOut)]
    assert audio[0].first_text == 100.0 and all(a.first_text is None for a in audio[1:])
    assert not core.busy and core.chain is None


def test_the_first_step_begins_the_segment_and_later_steps_carry_its_stream() -> None:
    driver = Driver(make_core(), steps_per_segment=3)
    driver.core.feed("One two three", None, driver.now)
    driver.core.flush(driver.now)
    driver.run()
    steps = [c for c in driver.commands if isinstance(c, StepSegment)]
    assert [s.start is not None for s in steps] == [True, False, False, True, False, False]
    # One slot per segment, handed to each of its steps.
    assert [s.slot for s in steps[:3]] == [steps[0].slot] * 3 and steps[3].slot is not steps[0].slot
    assert {s.chain for s in steps} == {"chain-1"}  # the chain the open returned


def test_no_segment_events_unless_asked() -> None:
    driver = Driver(make_core(SessionOptions(events=False)))
    driver.core.feed("Hello there. How are you?", None, driver.now)
    driver.core.flush(driver.now)
    items = driver.run()
    assert not any(isinstance(i, SegmentOut) for i in items)
    assert isinstance(items[-1], FlushedOut) and items[-1].segments == 2


def test_one_command_at_a_time() -> None:
    core = make_core()
    core.feed("Hello there, my friend.", None, 1.0)
    command = core.next_command(1.0)
    assert isinstance(command, OpenChain)
    assert core.next_command(1.0) is None  # the open is in flight
    with pytest.raises(RuntimeError, match="FreeMemory was not the command in flight"):
        core.command_done(FreeMemory(0, 1.0), None, 1.1)
    core.command_done(command, "chain", 1.1)
    assert isinstance(core.next_command(1.1), StepSegment)


def test_a_flush_with_nothing_said_ends_the_utterance_at_once() -> None:
    core = make_core()
    core.flush(1.0)
    assert core.next_command(1.0) is None
    items = core.take_outputs()
    assert len(items) == 1 and isinstance(items[0], FlushedOut)
    assert items[0].segments == 0 and items[0].audio_seconds == 0


def test_busy_buffered_and_queued_follow_the_work() -> None:
    driver = Driver(make_core())
    core = driver.core
    assert not core.busy and core.buffered_chars == 0
    core.feed("One two three four", None, driver.now)  # "One two" is cut (fast path)
    assert core.busy and core.queued == 1
    assert core.segmenter.buffered_chars > 0
    assert core.buffered_chars == len("One two") + core.segmenter.buffered_chars
    driver.step()  # opens the chain: the segment is taken from the queue
    assert core.queued == 0 and core.buffered_chars == core.segmenter.buffered_chars and core.busy
    core.flush(driver.now)
    assert core.queued == 2  # "three four" and the flush
    driver.run()
    assert not core.busy and core.buffered_chars == 0


def test_pitch_applies_from_the_next_segment() -> None:
    driver = Driver(make_core())
    core = driver.core
    fresh = make_core()
    fresh.feed("Hello there. And", None, 1.0)
    fresh.command_done(fresh.next_command(1.0), "chain", 1.0)
    assert fresh.next_command(1.0).start.pitch_shift is None  # no pitch asked: the chain's own
    core.feed("", 3.0, driver.now)  # a config message: pitch only
    assert core.options.pitch_shift == 3.0 and core.clock.tokens == 0
    core.feed("Hello there, my friend.", None, driver.now)
    core.flush(driver.now)
    driver.run()
    opened = driver.commands[0]
    assert isinstance(opened, OpenChain) and opened.pitch_shift == 3.0
    starts = [c.start for c in driver.commands if isinstance(c, StepSegment) and c.start is not None]
    assert [s.pitch_shift for s in starts] == [3.0, None]


# ----------------------------------------------------------------------------- deadlines
def test_commands_carry_the_deadline_of_the_listener() -> None:
    driver = Driver(make_core(), steps_per_segment=2, frames_per_step=5, step_seconds=0.02)
    core = driver.core
    core.feed("Hello there, my friend. And", None, 100.0)  # both segments cut at 100.0
    opened = driver.step()
    # Before the first audio: the first-audio target after the segment was cut.
    assert isinstance(opened, OpenChain) and opened.deadline == pytest.approx(100.1)
    first = driver.step()
    assert isinstance(first, StepSegment) and first.deadline == pytest.approx(100.1)
    # 5 frames (0.1 s) handed at 100.04: the listener runs dry at 100.14.
    assert core.listener.runs_dry_at == pytest.approx(100.14)
    second = driver.step()
    assert isinstance(second, StepSegment) and second.deadline == pytest.approx(100.14)
    # A new segment's first step, its listener with 0.18 s left at 100.06 (more than the grace):
    # due when the listener runs dry, less what this session's segment starts take (0.05 s
    # assumed, moved halfway to the first one's measured 5 ms): the latest moment it can start.
    assert core.start_step_seconds == pytest.approx(0.0275)
    third = driver.step()
    assert isinstance(third, StepSegment) and third.start is not None
    assert third.deadline == pytest.approx(100.24 - 0.0275)
    core.flush(driver.now)
    while not isinstance(finish := driver.step(), FinishUtterance):
        assert finish is not None
    # Its deadline: when the listener ran dry before the tail (one frame) was handed out.
    assert finish.deadline == pytest.approx(core.listener.runs_dry_at - 0.02)


def test_each_utterance_has_its_own_listener() -> None:
    driver = Driver(make_core())
    core = driver.core
    core.feed("Hello there.", None, driver.now)
    core.flush(driver.now)
    driver.run()
    first = driver.commands[0]
    fed_at = driver.now
    core.feed("Again now.", None, fed_at)
    core.flush(driver.now)
    driver.run()
    second = [c for c in driver.commands if isinstance(c, OpenChain)][1]
    assert second.listener is not first.listener and second.listener is core.listener
    assert first.listener.handed_seconds > 0
    # Its first audio is due by the first-audio target, whatever the old listener had left.
    assert second.deadline == pytest.approx(fed_at + 0.1)


def test_frames_handed_after_a_cancel_do_not_move_the_new_listener() -> None:
    core = make_core()
    core.feed("Hello there. And", None, 1.0)
    core.frames_handed(FRAME, 1.0, generation=core.generation)
    assert core.listener.handed_seconds == pytest.approx(0.02)
    old = core.generation
    core.cancel(1.1)
    core.frames_handed(FRAME, 1.2, generation=old)
    assert core.listener.handed_seconds == 0


# ----------------------------------------------------------------------------- cancel
def test_cancel_drops_queued_work_and_a_result_in_flight() -> None:
    driver = Driver(make_core())
    core = driver.core
    core.feed("Hello there, my friend. How are you today?", None, driver.now)
    driver.step()  # open
    driver.step()  # first step of segment 1: audio out
    step = core.next_command(driver.now)
    assert isinstance(step, StepSegment)
    core.take_outputs()
    core.take_notices()
    core.cancel(driver.now)
    assert core.take_outputs() == [CancelledOut()]
    assert StopEngine() in core.take_notices()
    assert not core.busy and core.buffered_chars == 0 and core.clock.samples == 0
    # The step that was computing comes back: stale, dropped.
    core.command_done(step, ChainResult(frames(3), done=False), driver.now)
    assert core.take_outputs() == [] and core.next_command(driver.now) is None
    # A fresh utterance: a new chain, ids go on, the flush counts only this utterance.
    core.feed("Fresh start.", None, driver.now)
    core.flush(driver.now)
    items = driver.run()
    opened = [c for c in driver.commands if isinstance(c, OpenChain)]
    assert len(opened) == 2 and opened[1].generation == core.generation == 1
    assert [i.text for i in items if isinstance(i, SegmentOut)] == ["Fresh start."]
    assert isinstance(items[-1], FlushedOut) and items[-1].segments == 1
    assert items[-1].audio_seconds == pytest.approx(audio_samples(items) / 48000)


def test_a_failure_after_a_cancel_is_not_reported() -> None:
    core = make_core()
    core.feed("Hello there. And", None, 1.0)
    opened = core.next_command(1.0)
    core.cancel(1.0)
    core.take_outputs()
    core.command_failed(opened, RuntimeError("late"), 1.1)
    assert core.take_outputs() == [] and not [n for n in core.take_notices() if isinstance(n, Fault)]


def test_output_entries_carry_their_generation() -> None:
    driver = Driver(make_core())
    core = driver.core
    core.feed("Hello there. And", None, driver.now)
    command = core.next_command(driver.now)
    core.command_done(command, "chain", driver.now)
    step = core.next_command(driver.now)
    core.command_done(step, ChainResult(frames(2), done=False), driver.now)
    entry = core.pop_output()
    assert entry is not None and entry.generation == 0  # SegmentOut
    core.cancel(driver.now)
    entry = core.pop_output()
    assert entry is not None and entry.item == CancelledOut() and entry.generation == 1
    assert core.pop_output() is None  # the old frames are gone


# ----------------------------------------------------------------------------- limits
def test_the_utterance_limit_stops_it_and_drops_the_rest_until_its_flush() -> None:
    driver = Driver(make_core(max_utterance_seconds=0.05), steps_per_segment=1, frames_per_step=2, tail_frames=0)
    core = driver.core
    core.feed("Hello there, my friend. How are you today? ", None, driver.now)
    core.flush(driver.now)
    items = driver.run()
    errors = [i for i in items if isinstance(i, ErrorOut)]
    assert len(errors) == 1 and errors[0].kind == "utterance_limit" and "0.05 s" in errors[0].message
    assert audio_samples(items) == 2 * FRAME  # a third frame would pass 0.05 s
    # After the limit nothing is asked of the engine; the flush still ends it, without a tail.
    steps = [c for c in driver.commands if isinstance(c, StepSegment)]
    assert len(steps) == 2
    assert not any(isinstance(c, FinishUtterance) for c in driver.commands)
    assert isinstance(items[-1], FlushedOut) and items[-1].audio_seconds == pytest.approx(0.04)
    notices = core.take_notices()
    assert LimitReached(0.05) in notices and StopEngine() in notices
    # The next utterance is whole.
    core.feed("Short.", None, driver.now)
    core.flush(driver.now)
    second = driver.run()
    assert not any(isinstance(i, ErrorOut) for i in second) and audio_samples(second) == 2 * FRAME


def test_a_tail_over_the_limit_is_cut_and_the_utterance_still_ends() -> None:
    driver = Driver(make_core(max_utterance_seconds=0.1), steps_per_segment=1, frames_per_step=3, tail_frames=4)
    driver.core.feed("Short.", None, driver.now)
    driver.core.flush(driver.now)
    items = driver.run()
    assert [type(i).__name__ for i in items][-2:] == ["ErrorOut", "FlushedOut"]
    assert audio_samples(items) == 5 * FRAME


# ----------------------------------------------------------------------------- timers
def test_idle_flush_speaks_the_buffered_tail_and_keeps_the_utterance_open() -> None:
    driver = Driver(make_core(idle_flush_seconds=0.5))
    core = driver.core
    core.feed("A reply", None, 1.0)
    assert core.idle_flush_at == pytest.approx(1.5)
    core.feed(" that stops", None, 1.2)
    assert core.idle_flush_at == pytest.approx(1.7)  # every token re-arms it
    driver.now = 1.2
    driver.run()
    said = [i.text for i in driver.items if isinstance(i, SegmentOut)]
    core.idle_flush(1.7)
    assert core.idle_flush_at is None
    items = driver.run()
    said += [i.text for i in items if isinstance(i, SegmentOut)]
    assert " ".join(said).split() == "A reply that stops".split()
    assert not any(isinstance(i, FlushedOut) for i in driver.items)  # the utterance stays open
    assert core.chain is not None
    core.idle_flush(2.0)  # not armed: nothing happens
    assert core.queued == 0


def test_flush_and_cancel_disarm_the_idle_flush() -> None:
    core = make_core(idle_flush_seconds=0.5)
    core.feed("Some words", None, 1.0)
    core.flush(1.1)
    assert core.idle_flush_at is None
    core.feed("More words", None, 2.0)
    core.cancel(2.1)
    assert core.idle_flush_at is None
    never = make_core()  # idle_flush_seconds 0: never armed
    never.feed("Some words", None, 1.0)
    assert never.idle_flush_at is None


def test_held_speech_is_converted_when_it_is_due_and_not_before() -> None:
    driver = Driver(make_core())
    core = driver.core
    core.feed("Hello there, my friend.", None, driver.now)
    driver.run()  # both segments spoken; the utterance stays open
    assert core.awaits_held_due
    core.held_due(0.3, 200.0)
    assert core.held_due_at == pytest.approx(200.3)
    assert core.next_command(200.2) is None
    held = core.next_command(200.3)
    assert isinstance(held, ConvertHeld) and held.chain == core.chain
    assert held.deadline == pytest.approx(core.listener.runs_dry_at)
    core.command_done(held, ChainResult(frames(1), done=False), 200.35)
    again = core.next_command(200.35)  # more is ready: convert it before anything else
    assert isinstance(again, ConvertHeld) and again.chain == core.chain
    assert again.deadline == pytest.approx(core.listener.runs_dry_at)
    core.command_done(again, ChainResult(frames(1), done=True), 200.4)
    assert core.next_command(200.4) is None and core.awaits_held_due
    # The rest was not ready after all (the blocks refilled the listener): its due time is
    # asked anew, and it is converted then.
    core.held_due(0.0, 200.5)
    third = core.next_command(200.5)
    core.command_done(third, ChainResult(frames(1), done=False), 200.55)
    fourth = core.next_command(200.55)
    assert isinstance(fourth, ConvertHeld)
    core.command_done(fourth, ChainResult([], done=True, idle=True), 200.6)
    assert core.awaits_held_due  # not stalled: only a block asked for by its due time can stall
    core.held_due(0.2, 200.6)
    assert core.next_command(200.7) is None
    assert isinstance(core.next_command(200.8), ConvertHeld)
    assert sum(1 for i in core.take_outputs() if isinstance(i, AudioOut)) == 3


def test_new_text_goes_before_held_speech() -> None:
    driver = Driver(make_core())
    core = driver.core
    core.feed("Hello there, my friend.", None, driver.now)
    driver.run()
    core.held_due(0.0, driver.now)
    core.feed(" And more. ", None, driver.now)
    assert isinstance(core.next_command(driver.now), StepSegment)
    assert core.held_due_at is None


def test_held_speech_that_gives_nothing_waits_for_new_input() -> None:
    driver = Driver(make_core())
    core = driver.core
    core.feed("Hello there, my friend.", None, driver.now)
    driver.run()
    core.held_due(None, driver.now)
    assert core.held_due_at is None and core.next_command(driver.now + 10) is None
    core.held_due(0.0, driver.now)
    held = core.next_command(driver.now)
    # A small block converted may give no whole frame yet: the next one is still waited for.
    core.command_done(held, ChainResult([], done=True), driver.now)
    assert core.awaits_held_due
    core.held_due(0.0, driver.now)
    held = core.next_command(driver.now)
    core.command_done(held, ChainResult([], done=True, idle=True), driver.now)
    assert not core.awaits_held_due  # no spinning on a block that is not there
    core.feed(" Next one. And", None, driver.now)
    driver.run()
    assert core.awaits_held_due


def test_a_remainder_left_after_held_blocks_is_timed_again_not_stalled() -> None:
    # Held speech converts in ladder sizes; a remainder under the step is not ready when the
    # block before it is out (the listener's buffer was just refilled) but falls due later.
    driver = Driver(make_core())
    core = driver.core
    core.feed("Hello there, my friend.", None, driver.now)
    driver.run()
    core.held_due(0.0, 200.0)
    held = core.next_command(200.0)
    core.command_done(held, ChainResult(frames(1), done=False), 200.05)
    again = core.next_command(200.05)
    assert isinstance(again, ConvertHeld)
    core.command_done(again, ChainResult([], done=True), 200.06)  # the remainder: not yet due
    assert core.awaits_held_due  # asks the chain when it is due, instead of waiting for input
    core.held_due(0.4, 200.06)
    assert core.next_command(200.2) is None
    assert isinstance(core.next_command(200.46), ConvertHeld)


def test_no_held_speech_without_an_open_chain() -> None:
    core = make_core()
    assert not core.awaits_held_due
    core.held_due(0.0, 1.0)
    assert core.next_command(1.0) is None


# ----------------------------------------------------------------------------- faults
def test_an_engine_error_skips_its_segment_and_keeps_the_chain() -> None:
    driver = Driver(make_core(), steps_per_segment=1)
    core = driver.core
    core.feed("Hello there, my friend. How are you today?", None, driver.now)
    core.flush(driver.now)
    driver.step()  # open
    driver.step(fail=TTSError("no voice for this"))
    items = driver.run()
    errors = [i for i in driver.items if isinstance(i, ErrorOut)]
    assert errors == [ErrorOut("segment 1: no voice for this", "tts")]
    assert sum(isinstance(c, OpenChain) for c in driver.commands) == 1
    assert isinstance(items[-1], FlushedOut) and items[-1].segments == 3
    assert [n.kind for n in core.take_notices() if isinstance(n, Fault)] == ["tts"]


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        (RuntimeError("kaput"), "internal", "segment 1: internal error (RuntimeError)"),
        (MemoryError(), "oom", "segment 1: out of memory on the synthesis device; skipped"),
    ],
)
def test_an_unexpected_fault_drops_the_chain_and_the_rest_is_spoken(error, kind, message) -> None:
    driver = Driver(make_core(), steps_per_segment=1)
    core = driver.core
    core.feed("Hello there, my friend.", None, driver.now)
    core.flush(driver.now)
    driver.step()
    driver.step(fail=error)
    assert core.chain is None  # its state is unknown
    items = driver.run()
    assert [i for i in driver.items if isinstance(i, ErrorOut)] == [ErrorOut(message, kind)]
    kinds = [type(c).__name__ for c in driver.commands]
    assert kinds.count("OpenChain") == 2  # a fresh chain for the next segment
    if kind == "oom":  # memory is freed before anything else
        assert kinds[2] == "FreeMemory" and kinds.count("FreeMemory") == 1
    else:
        assert "FreeMemory" not in kinds
    assert [i.text for i in items if isinstance(i, SegmentOut)] == ["my friend."]
    assert isinstance(items[-1], FlushedOut)


def test_a_fault_in_the_tail_is_reported_then_flushed() -> None:
    driver = Driver(make_core(), steps_per_segment=1)
    core = driver.core
    core.feed("Two words.", None, driver.now)
    core.flush(driver.now)
    while True:
        command = core.next_command(driver.now)
        assert command is not None
        if isinstance(command, FinishUtterance):
            core.command_failed(command, RuntimeError("tail failed"), driver.now)
            break
        core.command_done(command, driver.result(command), driver.now)
    items = core.take_outputs()
    assert [type(i).__name__ for i in items][-2:] == ["ErrorOut", "FlushedOut"]
    assert items[-2] == ErrorOut("utterance: internal error (RuntimeError)", "internal")
    assert not core.busy


def test_a_cancelled_engine_ends_its_segment_quietly() -> None:
    driver = Driver(make_core(), steps_per_segment=1)
    core = driver.core
    core.feed("Hello there, my friend.", None, driver.now)
    driver.step()
    driver.step(fail=Cancelled())
    assert not any(isinstance(i, ErrorOut) for i in driver.items)
    assert core.chain is not None


def test_a_voice_that_will_not_load_falls_back_to_the_bare_voice() -> None:
    options = SessionOptions(events=True, voice="broken")
    driver = Driver(make_core(options, voice_conversion=True, default_voice="keeper"))
    core = driver.core
    core.feed("Hello there.", None, driver.now)
    core.flush(driver.now)
    opened = driver.step(fail=VoiceError("voice 'broken' is not a checkpoint"))
    assert isinstance(opened, OpenChain) and opened.voice == "broken"
    items = driver.run()
    retry = driver.commands[1]
    assert isinstance(retry, OpenChain) and retry.voice is None  # the bare voice
    assert driver.items[0] == ErrorOut("voice 'broken' is not a checkpoint", "voice")
    assert options.voice is None
    assert [i.text for i in items if isinstance(i, SegmentOut)] == ["Hello there."]
    assert Fault("voice") in core.take_notices()
    # The next utterance uses the default voice again.
    core.feed("Again.", None, driver.now)
    core.flush(driver.now)
    driver.run()
    assert [c.voice for c in driver.commands if isinstance(c, OpenChain)][-1] == "keeper"


def test_no_voice_without_voice_conversion() -> None:
    core = make_core(SessionOptions(voice="keeper"), default_voice="keeper", voice_conversion=False)
    core.feed("Hello there. And", None, 1.0)
    command = core.next_command(1.0)
    assert isinstance(command, OpenChain) and command.voice is None


# ----------------------------------------------------------------------------- formats
def test_samples_are_counted_in_the_chains_format_when_the_session_changes_it() -> None:
    """A config message may change the format mid-utterance: the chain keeps encoding the
    format it was opened with until the utterance ends, so its frames count by that width."""
    options = SessionOptions(events=True, format="f32le")
    driver = Driver(make_core(options), steps_per_segment=1, frames_per_step=5, tail_frames=0)
    core = driver.core
    core.feed("Hello there, my friend.", None, driver.now)
    driver.step()  # open, as f32le
    driver.step()
    options.format = "s16le"  # {"type": "config", "format": "s16le"}
    core.flush(driver.now)
    items = driver.run()
    audio = [i for i in driver.items if isinstance(i, AudioOut)]
    assert all(a.samples == FRAME and len(a.data) == FRAME * 4 for a in audio)
    assert isinstance(items[-1], FlushedOut) and items[-1].audio_seconds == pytest.approx(10 * 0.02)
    # The next utterance opens its chain in the new format and counts by it.
    core.feed("Next.", None, driver.now)
    core.flush(driver.now)
    second = driver.run()
    assert [c.format for c in driver.commands if isinstance(c, OpenChain)] == ["f32le", "s16le"]
    assert all(a.samples == FRAME and len(a.data) == FRAME * 2 for a in second if isinstance(a, AudioOut))
    assert second[-1].audio_seconds == pytest.approx(5 * 0.02)


# ----------------------------------------------------------------------------- stats
def test_segment_latency_is_measured_from_the_cut_to_its_first_audio() -> None:
    driver = Driver(make_core(), step_seconds=0.05)
    core = driver.core
    core.feed("Hello there, my friend.", None, 100.0)
    core.flush(100.0)
    driver.run()
    latencies = [n.seconds for n in core.take_notices() if isinstance(n, SegmentLatency)]
    assert latencies == pytest.approx([0.1, 0.2])  # open + first step; then 3 more steps later
    flushed = [i for i in driver.items if isinstance(i, FlushedOut)][0]
    assert flushed.stats["segment_latency_ms_max"] == pytest.approx(200.0)
    assert flushed.stats["first_text_to_audio_ms"] == pytest.approx(100.0)


def test_close_stops_everything() -> None:
    core = make_core()
    core.feed("Hello there. And", None, 1.0)
    core.close()
    assert core.next_command(1.0) is None and not core.busy and core.take_outputs() == []


def test_a_segment_starts_with_the_sessions_speed_and_its_listener() -> None:
    options = SessionOptions(speed=1.5)
    driver = Driver(make_core(options))
    core = driver.core
    core.feed("Hello there. And", None, driver.now)
    driver.step()  # open
    first = core.next_command(driver.now)
    assert isinstance(first, StepSegment) and first.start is not None
    assert first.start.speed == 1.5 and first.start.listener is core.listener


def test_the_engine_speaks_the_normalized_text_and_the_event_keeps_the_original() -> None:
    from bridge.normalize import normalizer_for

    normalize = normalizer_for(enabled=True, date_order="mdy", foreign_text="transliterate", lexicon={}, languages=("en",))
    driver = Driver(make_core(normalize=normalize))
    core = driver.core
    core.feed("Tickets cost $12.50 today.", None, driver.now)
    core.flush(driver.now)
    items = driver.run()
    starts = [c for c in driver.commands if isinstance(c, StepSegment) and c.start is not None]
    events = [i for i in items if isinstance(i, SegmentOut)]
    assert "".join(e.text for e in events).replace(" ", "") == "Tickets cost $12.50 today.".replace(" ", "")
    spoken = " ".join(s.text for s in starts)
    assert "$" not in spoken and "twelve" in spoken.lower()


# ----------------------------------------------------------------------------- pinned details
def test_utterance_stats_are_summed_and_rounded_as_reported() -> None:
    from bridge.core import UtteranceClock

    clock = UtteranceClock(first_text=10.0, first_audio=10.08321, tokens=7, samples=48000 * 3 // 2 + 17)
    clock.add(StepTiming(tts_seconds=0.10004, tts_audio_seconds=0.5, voice_seconds=0.02024, resample_seconds=0.00312))
    clock.add(StepTiming(tts_seconds=0.05050, tts_audio_seconds=0.25, voice_seconds=0.01, resample_seconds=0.001))
    clock.segment_latencies += [0.0412, 0.09876]
    assert clock.stats() == {
        "tokens": 7,
        "audio_seconds": 1.5,
        "tts_ms": 150.5,
        "voice_ms": 30.2,
        "resample_ms": 4.1,
        "tts_rtf": 0.2007,
        "first_text_to_audio_ms": 83.2,
        "segment_latency_ms_max": 98.8,
    }
    bare = UtteranceClock(first_text=1.0)
    assert bare.stats() == {
        "tokens": 0, "audio_seconds": 0.0, "tts_ms": 0.0, "voice_ms": 0.0, "resample_ms": 0.0, "tts_rtf": 0.0
    }
    assert "first_text_to_audio_ms" not in UtteranceClock(first_audio=1.0).stats()


@pytest.mark.parametrize(
    ("error", "report"),
    [
        (TTSError("bad text"), ("tts", "segment 3: bad text")),
        (VoiceError("bad block"), ("voice", "segment 3: bad block")),
        (MemoryError(), ("oom", "segment 3: out of memory on the synthesis device; skipped")),
        (KeyError("x"), ("internal", "segment 3: internal error (KeyError)")),
    ],
)
def test_fault_reports(error, report) -> None:
    from bridge.core import fault_report

    assert fault_report(error, "segment 3") == report


def test_out_of_memory_frees_memory_first_and_the_notice_says_where() -> None:
    driver = Driver(make_core(), steps_per_segment=1)
    core = driver.core
    core.feed("Hello there, my friend.", None, driver.now)
    driver.step()
    error = MemoryError()
    driver.step(fail=error)
    assert core.take_notices() == [Fault("oom", "segment 1", error)]
    command = core.next_command(123.0)
    assert command == FreeMemory(0, 123.0)


def test_the_first_audio_is_due_after_the_cut_not_after_the_ask() -> None:
    core = make_core()
    core.feed("Hello there. And", None, 10.0)
    opened = core.next_command(10.5)  # asked later (another command was in flight, say)
    assert isinstance(opened, OpenChain) and opened.deadline == pytest.approx(10.1)
    core.command_done(opened, "chain", 10.6)
    step = core.next_command(10.6)
    assert isinstance(step, StepSegment) and step.deadline == pytest.approx(10.1)
    assert step.start is not None and step.start.boundary.value == "sentence" and step.chain == "chain"


def test_counts_follow_each_utterance() -> None:
    driver = Driver(make_core())
    core = driver.core
    core.feed("Hello there, my friend. How", None, driver.now)
    assert core.buffered_chars == len("Hello there,") + len("my friend.") + core.segmenter.buffered_chars
    core.flush(driver.now)
    first = driver.run()
    assert first[-1].segments == 3
    core.feed("Again now.", None, driver.now)
    core.flush(driver.now)
    second = driver.run()
    assert second[-1].segments == 1 and core.clock.segments == 0  # a fresh clock after the flush
    core.feed("Hello there. And", None, driver.now)
    driver.step()
    driver.step()
    assert core.clock.segments == 1


def test_notices_accumulate_until_taken() -> None:
    driver = Driver(make_core(max_utterance_seconds=0.02), steps_per_segment=1, frames_per_step=2)
    core = driver.core
    core.feed("Hello there. And", None, driver.now)
    driver.step()
    driver.step()  # over the limit
    core.cancel(driver.now)
    core.cancel(driver.now)
    notices = core.take_notices()
    assert [type(n).__name__ for n in notices] == [
        "SegmentLatency", "StopEngine", "LimitReached", "StopEngine", "UtteranceCancelled", "StopEngine", "UtteranceCancelled"
    ]
    assert core.generation == 2 and core.take_notices() == []


def test_nothing_is_asked_after_close() -> None:
    core = make_core()
    core.close()
    core.feed("Hello there. And", None, 1.0)
    core.flush(1.0)
    assert core.closed and core.next_command(1.0) is None


def test_an_open_that_fails_otherwise_loses_the_segment_and_keeps_the_voice() -> None:
    options = SessionOptions(events=True, voice="keeper")
    driver = Driver(make_core(options, voice_conversion=True))
    core = driver.core
    core.feed("Hello there, my friend. And", None, driver.now)
    error = RuntimeError("no")
    driver.step(fail=error)
    assert driver.items == [ErrorOut("segment 1: internal error (RuntimeError)", "internal")]
    assert core.take_notices() == [Fault("internal", "segment 1", error)]
    assert options.voice == "keeper"
    reopened = driver.step()
    assert isinstance(reopened, OpenChain) and reopened.voice == "keeper"
    assert core.chain_voice == "keeper"


def test_segment_events_carry_what_normalization_did_with_foreign_text() -> None:
    from bridge.normalize import normalizer_for

    normalize = normalizer_for(enabled=True, date_order="mdy", foreign_text="skip", lexicon={}, languages=("en",))
    driver = Driver(make_core(normalize=normalize))
    driver.core.feed("Say 안녕하세요 now.", None, driver.now)
    driver.core.flush(driver.now)
    items = driver.run()
    notes = [i.notes for i in items if isinstance(i, SegmentOut) and i.notes]
    assert notes == [{"skipped": [{"text": "안녕하세요"}]}]
    plain = Driver(make_core())
    plain.core.feed("Hello there.", None, plain.now)
    plain.core.flush(plain.now)
    assert [i.notes for i in plain.run() if isinstance(i, SegmentOut)] == [{}]


def test_held_speech_that_fails_is_reported_and_the_chain_dropped() -> None:
    driver = Driver(make_core())
    core = driver.core
    core.feed("Hello there, my friend.", None, driver.now)
    driver.run()
    core.held_due(0.0, driver.now)
    held = core.next_command(driver.now)
    assert isinstance(held, ConvertHeld)
    error = VoiceError("block failed")
    core.command_failed(held, error, driver.now)
    assert core.take_outputs() == [ErrorOut("held speech: block failed", "voice")]
    assert Fault("voice", "held speech", error) in core.take_notices()
    assert core.chain is None and core.next_command(driver.now) is None
    # A cancelled conversion says nothing.
    core.feed(" And more. Then", None, driver.now)
    driver.run()
    core.held_due(0.0, driver.now)
    held = core.next_command(driver.now)
    core.command_failed(held, Cancelled(), driver.now)
    assert core.take_outputs() == [] and core.chain is not None and core.next_command(driver.now) is None


@pytest.mark.parametrize("ending", ["flush", "cancel", "limit"])
def test_no_held_conversion_carries_over_into_the_next_utterance(ending) -> None:
    driver = Driver(make_core(max_utterance_seconds=0.3 if ending == "limit" else 0.0), steps_per_segment=1)
    core = driver.core
    core.feed("Hello there, my friend.", None, driver.now)
    driver.run()
    core.held_due(0.0, driver.now)
    held = core.next_command(driver.now)
    if ending == "limit":
        core.command_done(held, ChainResult(frames(20), done=False), driver.now)  # over the limit
        core.flush(driver.now)
    else:
        core.command_done(held, ChainResult(frames(1), done=False), driver.now)  # more is ready...
        core.flush(driver.now) if ending == "flush" else core.cancel(driver.now)
    driver.run()
    core.feed("Next one here. And", None, driver.now)
    driver.run()
    # The new utterance's segments are spoken; nothing is converted before it is due.
    assert core.chain is not None and core.next_command(driver.now) is None


def test_the_first_audio_may_come_from_the_tail() -> None:
    driver = Driver(make_core(), steps_per_segment=1, frames_per_step=0, tail_frames=2, step_seconds=0.05)
    core = driver.core
    core.feed("Hi.", None, 10.0)
    driver.now = 10.0
    core.flush(10.0)
    items = driver.run()
    finish = [c for c in driver.commands if isinstance(c, FinishUtterance)]
    assert len(finish) == 1 and finish[0].chain == "chain-1"
    assert items[-1].stats["first_text_to_audio_ms"] == pytest.approx(150.0)


def test_the_first_audio_may_come_from_held_speech() -> None:
    driver = Driver(make_core(), steps_per_segment=1, frames_per_step=0)
    core = driver.core
    core.feed("Hi there. And", None, 10.0)
    driver.now = 10.0
    driver.run()
    core.held_due(0.0, 10.5)
    held = core.next_command(10.5)
    core.command_done(held, ChainResult(frames(1), done=True), 10.7)
    assert core.clock.first_audio == 10.7


def test_tokens_and_segments_are_counted() -> None:
    driver = Driver(make_core())
    core = driver.core
    for token in ["Hello ", "there, ", "my ", "friend. ", "And"]:
        core.feed(token, None, driver.now)
    driver.run()
    assert core.clock.tokens == 5 and core.clock.segments == 2


def test_a_segment_start_is_measured_by_all_its_parts_and_only_starts_count() -> None:
    core = make_core()
    core.feed("Hello there, my friend. And", None, 100.0)
    opened = core.next_command(100.0)
    assert isinstance(opened, OpenChain)
    core.command_done(opened, "chain", 100.0)
    start = core.next_command(100.0)
    assert isinstance(start, StepSegment) and start.start is not None
    parts = StepTiming(tts_seconds=0.01, voice_seconds=0.02, resample_seconds=0.004)
    core.command_done(start, ChainResult(frames(5, core.chain_format), done=False, timing=parts), 100.05)
    # Half way from the 0.05 s assumed to the 34 ms the step took (engine, voice, resampling).
    assert core.start_step_seconds == pytest.approx(0.042)
    more = core.next_command(100.05)
    assert isinstance(more, StepSegment) and more.start is None
    core.command_done(more, ChainResult(frames(5, core.chain_format), done=True, timing=StepTiming(tts_seconds=0.5)), 100.1)
    assert core.start_step_seconds == pytest.approx(0.042)  # a step inside a segment: not a start


def test_no_boundary_grace_where_the_fragment_was_cut_between_two_words() -> None:
    # "The best | way to cook …": the listener hears no pause between the two segments, so the
    # second one's first step is due when the first runs dry, without the boundary grace.
    driver = Driver(
        make_core(deadlines=DeadlinePolicy(first_audio_target=0.1, boundary_grace=0.25)),
        steps_per_segment=1,
        frames_per_step=5,
        step_seconds=0.02,
    )
    core = driver.core
    core.feed("The best way to cook salmon is slow. Then serve it. And", None, 100.0)
    assert isinstance(driver.step(), OpenChain)
    fragment = driver.step()
    assert isinstance(fragment, StepSegment) and fragment.text == "The best"
    # The fragment's 0.1 s went out at 100.04: the listener runs dry at 100.14.
    next_segment = driver.step()
    assert isinstance(next_segment, StepSegment) and next_segment.text.startswith("way to")
    # (Less what a segment start takes here: 27.5 ms, see the test above.)
    assert next_segment.deadline == pytest.approx(100.14 - 0.0275)
    # After a segment that ended at a sentence, the grace applies again (dry at 100.24, asked
    # for at 100.06: 0.18 s left, less than this core's grace).
    after_pause = driver.step()
    assert isinstance(after_pause, StepSegment) and after_pause.text == "Then serve it."
    # Two starts measured by then (5 ms each): the estimate went 0.05 → 0.0275 → 0.01625.
    assert after_pause.deadline == pytest.approx(100.24 + 0.25 - 0.01625)


def test_an_utterances_first_audio_is_due_at_its_start_slot_asked_once() -> None:
    asked: list[float] = []

    def start_slot(wanted: float) -> float:
        asked.append(wanted)
        return wanted + 0.5  # others started just before: this start comes later

    driver = Driver(make_core(start_slot=start_slot), steps_per_segment=2, frames_per_step=5, step_seconds=0.02)
    core = driver.core
    core.feed("Hello there, my friend. And", None, 100.0)
    opened = driver.step()
    assert isinstance(opened, OpenChain) and opened.deadline == pytest.approx(100.6)
    first = driver.step()
    assert isinstance(first, StepSegment) and first.deadline == pytest.approx(100.6)
    assert asked == [pytest.approx(100.1)]
    # The slot is a deadline, not a hold: the audio came at 100.04, before it (this machine had
    # time), and from then on the listener decides, as without slots.
    second = driver.step()
    assert isinstance(second, StepSegment) and second.deadline == pytest.approx(100.14)
    core.flush(driver.now)
    driver.run()
    # The next utterance asks for a slot of its own.
    core.feed("Again now.", None, driver.now)
    core.flush(driver.now)
    again = driver.step()
    assert isinstance(again, OpenChain) and len(asked) == 2
    assert again.deadline == pytest.approx(asked[1] + 0.5)


def test_a_start_slot_never_makes_the_first_audio_due_sooner() -> None:
    driver = Driver(make_core(start_slot=lambda wanted: wanted - 5.0))
    driver.core.feed("Hello there, my friend.", None, 100.0)
    opened = driver.step()
    assert isinstance(opened, OpenChain) and opened.deadline == pytest.approx(100.1)
