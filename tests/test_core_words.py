"""bridge/core.py, word timings: WordsOut before the audio it times, offsets, heard's inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from bridge.core import (
    AudioOut,
    CancelledOut,
    ChainResult,
    Command,
    FlushedOut,
    OpenChain,
    SessionOptions,
    StepSegment,
    WordsOut,
)
from bridge.words import TimedSpan, WordTime, word_spans
from tests.test_core import Driver, make_core


@dataclass
class TimingDriver(Driver):
    """Step k of a segment times its word k at [k / 8, k / 8 + 1 / 16) seconds of the chain."""

    silent: str = ""  # a segment text whose engine says nothing at all

    def result(self, command: Command) -> Any:
        result = super().result(command)
        if not isinstance(command, StepSegment):
            return result
        spans = word_spans(command.text)
        step = command.slot.stream - 1
        if command.text == self.silent:
            return ChainResult([], done=result.done)
        timed = () if step >= len(spans) else (TimedSpan(*spans[step], step * 0.125, step * 0.125 + 0.0625),)
        return ChainResult(result.frames, done=result.done, words=timed)


def words_of(items: list[Any]) -> list[WordTime]:
    return [w for i in items if isinstance(i, WordsOut) for w in i.words]


def test_words_come_before_the_frames_of_the_step_that_timed_them() -> None:
    driver = TimingDriver(make_core(SessionOptions(words=True)), steps_per_segment=2)
    driver.core.feed("One two.", None, driver.now)
    driver.core.flush(driver.now)
    items = driver.run()
    kinds = [type(i).__name__ for i in items]
    assert kinds[:3] == ["WordsOut", "AudioOut", "AudioOut"] and kinds[3] == "WordsOut"
    assert words_of(items) == [WordTime("One", 0.0, 0.0625), WordTime("two.", 0.125, 0.1875)]
    assert all(i.segment == 1 for i in items if isinstance(i, WordsOut))


def test_no_words_unless_asked_and_events_time_them_for_heard() -> None:
    driver = TimingDriver(make_core(SessionOptions()))
    driver.core.feed("One two.", None, driver.now)
    driver.core.flush(driver.now)
    assert not words_of(driver.run())
    driver = TimingDriver(make_core(SessionOptions(events=True)))
    driver.core.feed("One two.", None, driver.now)
    driver.core.flush(driver.now)
    assert [w.text for w in words_of(driver.run())] == ["One", "two."]


def test_a_segment_that_said_nothing_keeps_its_words_after_the_last_one() -> None:
    driver = TimingDriver(make_core(SessionOptions(words=True)), steps_per_segment=2, silent="Quiet.")
    driver.core.feed("One two. Quiet. ", None, driver.now)
    driver.core.flush(driver.now)
    words = words_of(driver.run())
    assert [w.text for w in words] == ["One", "two.", "Quiet."]
    assert words[-1].start == words[-1].end == words[1].end  # not back at the utterance's start


def test_a_chain_opened_mid_utterance_offsets_its_words_by_the_audio_before_it() -> None:
    driver = TimingDriver(make_core(SessionOptions(words=True)), steps_per_segment=2)
    core = driver.core
    core.feed("One two. Three four. ", None, driver.now)
    core.flush(driver.now)
    while not core.clock.samples:
        driver.step()
    core.chain = None  # as after an unexpected fault: the next segment opens a new chain
    items = driver.run()
    opened = [c for c in driver.commands if isinstance(c, OpenChain)]
    assert len(opened) == 2
    later = [w for w in words_of(driver.items) if w.text in ("Three", "four.")]
    base = later[0].start
    assert base > 0  # the new chain's time 0 is where the audio before it ended
    assert later[1].start == pytest.approx(base + 0.125)
    assert isinstance(items[-1], FlushedOut)


def test_cut_says_the_limit_ended_the_flush_and_cancel_carries_the_played_position() -> None:
    driver = TimingDriver(
        make_core(SessionOptions(words=True), max_utterance_seconds=0.05),
        steps_per_segment=1,
        frames_per_step=3,  # 60 ms: over the limit
        tail_frames=0,
    )
    driver.core.feed("One two three four.", None, driver.now)
    driver.core.flush(driver.now)
    items = driver.run()
    assert isinstance(items[-1], FlushedOut) and items[-1].cut
    assert sum(i.samples for i in items if isinstance(i, AudioOut)) <= 0.05 * 48000
    driver.frames_per_step = 2  # 40 ms: within it
    driver.core.feed("Whole.", None, driver.now)
    driver.core.flush(driver.now)
    assert not driver.run()[-1].cut
    driver.core.feed("More text here.", None, driver.now)
    driver.step()
    driver.core.cancel(driver.now, 1.25)
    assert driver.hand_out()[-1] == CancelledOut(1.25)
