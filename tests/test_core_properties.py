"""The per-utterance core under random interleavings of input, results, faults and cancels.

Whatever the order: nothing of an utterance from before a cancel is handed out after its
``CancelledOut``; every flush is answered by exactly one ``FlushedOut`` (unless a cancel drops
it), whose ``audio_seconds`` is the audio handed out for that utterance; no utterance passes
its limit; the core never has two commands in flight.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.cancel import Cancelled
from bridge.core import (
    AudioOut,
    CancelledOut,
    ChainResult,
    CoreConfig,
    FlushedOut,
    OpenChain,
    SessionOptions,
    StepSegment,
    UtteranceCore,
)
from bridge.tts.base import TTSError
from bridge.vc.base import VoiceError
from tests.support.property_budget import examples

FRAME = 960
LIMIT_SECONDS = 0.2  # 10 frames: random utterances reach it
FAULTS = [TTSError("tts"), VoiceError("voice"), RuntimeError("bug"), MemoryError(), Cancelled()]

WORK = st.tuples(st.just("work"), st.integers(0, 4))  # complete the command in flight with 0-4 frames
ACTIONS = st.one_of(
    st.tuples(st.just("feed"), st.sampled_from(["Hello ", "there, ", "my friend. ", "How are you? ", "Fine. "])),
    st.tuples(st.just("flush"), st.none()),
    st.tuples(st.just("cancel"), st.none()),
    st.tuples(st.just("idle"), st.none()),
    WORK,
    WORK,
    WORK,
    st.tuples(st.just("fail"), st.sampled_from(range(len(FAULTS)))),
    st.tuples(st.just("held"), st.none()),
    st.tuples(st.just("read"), st.none()),
    st.tuples(st.just("read"), st.none()),
    st.tuples(st.just("format"), st.sampled_from(["f32le", "s16le"])),
)


class Model:
    """Drives the core like the runner and checks what comes out."""

    def __init__(self, voice: str | None) -> None:
        self.options = SessionOptions(events=True, voice=voice)
        self.core = UtteranceCore(
            CoreConfig(max_utterance_seconds=LIMIT_SECONDS, idle_flush_seconds=0.2, voice_conversion=True),
            self.options,
        )
        self.now = 0.0
        self.command = None
        self.steps: dict[int, int] = {}
        self.flushes = 0  # flush() calls since the last cancel
        self.flushed = 0  # FlushedOut handed out since the last cancel
        self.samples = 0  # audio handed out in the current utterance
        self.generation = 0
        self.cancelled = False  # a CancelledOut is owed

    def hand_out(self) -> None:
        while (entry := self.core.pop_output()) is not None:
            # Never an item from before a cancel once the cancel came (the runner has emptied
            # the output queue by then and puts whatever the core hands out next).
            assert entry.generation == self.generation
            item = entry.item
            if isinstance(item, CancelledOut):
                assert self.cancelled
                self.cancelled = False
            elif isinstance(item, AudioOut):
                self.samples += item.samples
                assert self.samples <= LIMIT_SECONDS * 48000
                self.core.frames_handed(item.samples, self.now, entry.generation)
            elif isinstance(item, FlushedOut):
                assert item.audio_seconds == round(self.samples / 48000, 3)
                self.samples = 0
                self.flushed += 1
                assert self.flushed <= self.flushes

    def ask(self) -> None:
        if self.command is None:
            self.command = self.core.next_command(self.now)
        else:
            assert self.core.next_command(self.now) is None  # one at a time

    def complete(self, frames: int) -> None:
        command, self.command = self.command, None
        if command is None:
            return
        if isinstance(command, OpenChain):
            result = f"chain{self.now}"
        elif isinstance(command, StepSegment):
            count = self.steps.get(id(command.slot), 0) + 1
            self.steps[id(command.slot)] = count
            width = 4 if self.core.chain_format == "f32le" else 2
            result = ChainResult([bytes(FRAME * width)] * frames, done=count >= 3)
        else:
            width = 4 if self.core.chain_format == "f32le" else 2
            result = ChainResult([bytes(FRAME * width)] * frames, done=True)
        self.core.command_done(command, result, self.now)

    def apply(self, action: str, arg: object) -> None:
        self.now += 0.01
        core = self.core
        if action == "feed":
            core.feed(str(arg), None, self.now)
        elif action == "flush":
            core.flush(self.now)
            self.flushes += 1
        elif action == "cancel":
            core.cancel(self.now)
            self.generation = core.generation
            self.flushes = self.flushed = self.samples = 0
            self.cancelled = True
        elif action == "idle":
            core.idle_flush(self.now)
        elif action == "work":
            self.complete(int(arg))  # type: ignore[call-overload]
        elif action == "fail" and self.command is not None:
            command, self.command = self.command, None
            core.command_failed(command, FAULTS[int(arg)], self.now)  # type: ignore[call-overload]
        elif action == "held" and core.awaits_held_due:
            core.held_due(0.0, self.now)
        elif action == "read":  # the output queue has room again: what waits goes out
            self.hand_out()
        elif action == "format":
            self.options.format = arg  # type: ignore[assignment]
        core.take_notices()
        self.ask()

    def drain(self) -> None:
        for _ in range(10_000):
            self.ask()
            self.hand_out()
            if self.command is None:
                return
            self.complete(1)
        raise AssertionError("the core never ran out of work")


@settings(max_examples=examples(400), deadline=None)
@given(actions=st.lists(ACTIONS, max_size=80), voice=st.sampled_from([None, "keeper"]))
def test_any_interleaving_keeps_order_flushes_and_limits(actions, voice) -> None:
    model = Model(voice)
    for action, arg in actions:
        model.apply(action, arg)
    model.core.flush(model.now)
    model.flushes += 1
    model.drain()
    # Every flush since the last cancel was answered, and nothing is left to do.
    assert model.flushed == model.flushes and not model.cancelled
    assert not model.core.busy and model.core.buffered_chars == 0
