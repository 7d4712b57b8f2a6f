"""One session's utterance state, decided without I/O: inputs in, commands and output items out.

The split follows python-websockets, whose ``Protocol`` takes bytes in (``receive_data``) and
hands events and bytes out (``events_received``, ``data_to_send``) while a thin asyncio layer
owns the socket. Here :class:`UtteranceCore` takes what happens to a session in, each with the
time it happened:

* text, flush, idle flush and cancel from the client (:meth:`~UtteranceCore.feed`,
  :meth:`~UtteranceCore.flush`, :meth:`~UtteranceCore.idle_flush`, :meth:`~UtteranceCore.cancel`);
* the outcome of the model work it asked for (:meth:`~UtteranceCore.command_done`,
  :meth:`~UtteranceCore.command_failed`), and when the voice stage will hold speech back
  (:meth:`~UtteranceCore.held_due`);
* audio frames reaching the output queue (:meth:`~UtteranceCore.frames_handed`), which moves
  the listener clock the deadlines are computed from;

and hands out what to do next: one :data:`Command` at a time for the model workers (open the
audio chain, step a segment, convert held speech, finish the utterance, free memory; each with
its deadline and its generation) and the :data:`OutputItem` s for the client, in order, plus
:data:`Notice` s for the runner's logs and metrics.

Everything that decides lives here: the segmenter, the queue of segments and flushes, the
generation counter that makes a result arriving after a cancel harmless, the utterance limit,
the utterance's timings, the listener clock, pending pitch, segment ids and the chain's life.
The audio chain and the engine's stream are opaque objects passed back and forth: only the
runner (:mod:`bridge.pipeline`) calls them, in the model workers. Pure: no asyncio, no threads,
no clock reads, no logging; time is passed in (``time.perf_counter`` seconds in the server).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge.audio.formats import PcmFormat, sample_count
from bridge.cancel import Cancelled
from bridge.config import OUTPUT_SAMPLE_RATE
# The plain data types live in bridge.core_items (what the core hands out) and bridge.core_commands
# (what it asks the workers to do, what they give back, the notices); they stay importable from here.
from bridge.core_commands import (  # noqa: F401 (re-exported)
    ChainResult, Command, ConvertHeld, EngineSlot, Fault, FinishUtterance, FreeMemory, LimitReached, Notice, OpenChain,
    SegmentLatency, SegmentStart, StepSegment, StopEngine, UtteranceCancelled, fault_report,
)
from bridge.core_items import (  # noqa: F401 (re-exported)
    AudioOut, CancelledOut, ErrorOut, FlushedOut, OutputEntry, OutputItem, SegmentOut, SessionOptions, StepTiming,
    UtteranceClock, WordsOut,
)
from bridge.listener import ListenerClock
from bridge.normalize import NormalizedText, segment_notes
from bridge.scheduler import DeadlinePolicy
from bridge.segmenter import Boundary, Segment, Segmenter, SegmenterConfig
from bridge.tts.base import TTSError
from bridge.vc.base import VoiceError
from bridge.words import SegmentWords


# ----------------------------------------------------------------------------- the core
#: How far each measured segment start moves the session's estimate (an exponential average).
START_STEP_SMOOTHING = 0.5


@dataclass(frozen=True, slots=True)
class CoreConfig:
    """The settings the core decides by."""

    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    deadlines: DeadlinePolicy = field(default_factory=DeadlinePolicy)
    #: An utterance stops after this much audio (0: no limit).
    max_utterance_seconds: float = 0.0
    #: Text that waits this long without a new token is spoken (0: never).
    idle_flush_seconds: float = 0.0
    #: The voice of sessions that name none.
    default_voice: str | None = None
    #: Whether voices can be opened at all (a voice-conversion stage is loaded).
    voice_conversion: bool = False
    #: The text normalization (:mod:`bridge.normalize`, pure) a segment's text goes through on
    #: its way to the engine; the segment event keeps the original. None: the text as cut.
    normalize: Callable[[str], NormalizedText] | None = None
    #: Shared by all sessions: an utterance's first-audio deadline for the one it would have
    #: (:class:`bridge.scheduler.StartSlots`, later while many utterances start at once).
    #: Asked once per utterance. None: no spacing.
    start_slot: Callable[[float], float] | None = None


@dataclass(frozen=True, slots=True)
class _SegmentWork:
    segment: Segment
    id: int
    pitch_shift: float | None
    token: int | None
    cut_at: float


@dataclass(frozen=True, slots=True)
class _FlushWork:
    pass


@dataclass
class _Speaking:
    """The segment being spoken."""

    work: _SegmentWork
    started: bool = False  # its SegmentOut went out and its first step was asked for
    first: bool = True  # no audio of it yet
    text: str = ""  # what the engine speaks (normalized), set when it starts
    slot: EngineSlot = field(default_factory=EngineSlot)
    words: SegmentWords | None = None  # its words' times, when they are wanted
    #: The listener reaches this segment at a pause (the segment before it ended at a sentence
    #: or pause mark), not inside a sentence cut between two words.
    at_pause: bool = True


class UtteranceCore:
    """The state of one session's utterances (see the module docstring)."""

    def __init__(self, config: CoreConfig, options: SessionOptions | None = None) -> None:
        self.config = config
        self.options = options or SessionOptions()
        self.segmenter = Segmenter(config.segmenter)
        #: Bumped by every cancel: commands and output items of an older generation are stale.
        self.generation = 0
        self.clock = UtteranceClock()
        #: The utterance's listener, as the scheduler and the voice stage's pacing see it.
        self.listener = ListenerClock()
        #: The open audio chain (opaque), or None between utterances.
        self.chain: Any = None
        #: The chain's voice (None: bare) and PCM format, fixed while it is open.
        self.chain_voice: str | None = None
        self.chain_format: PcmFormat = self.options.format
        #: When speech the voice stage holds between segments must be converted (None: no need).
        self.held_due_at: float | None = None
        #: When the buffered text is spoken if no token comes first (None: not armed).
        self.idle_flush_at: float | None = None
        #: The utterance reached its limit: everything up to its flush is dropped.
        self.over = False
        self.closed = False
        self._max_samples = int(config.max_utterance_seconds * OUTPUT_SAMPLE_RATE) or None
        self._work: collections.deque[_SegmentWork | _FlushWork] = collections.deque()
        self._queued_chars = 0
        self._segment_ids = 0
        self._segments_in_utterance = 0
        self._pending_pitch: float | None = None
        self._speaking: _Speaking | None = None
        self._open_bare = False  # the chosen voice failed to load: open the bare voice
        self._converting_held = False  # convert the next held block before anything else
        self._held_stalled = False  # held speech was due but gave nothing: wait for new input
        self._held_fell_due = False  # the ConvertHeld in flight was asked for by its due time
        self._free_memory = False
        self._chain_base = 0.0  # where the open chain's output starts in the utterance (seconds)
        self._cut = False  # the utterance limit stopped the utterance
        self._words_end = 0.0  # where the utterance's timed words so far ended (seconds)
        #: The last segment started ended between two words (each utterance's first segment sets
        #: it before its second reads it; the first is due by the first-audio target anyway).
        self._cut_between_words = False
        #: What this session's segment starts (first steps) took, smoothed: their deadlines are
        #: that much before the listener runs dry, so the long first step starts in time.
        self.start_step_seconds = config.deadlines.start_step_seconds
        #: The first-audio deadline the start slots gave, and the listener (utterance) it is for.
        self._start_due: tuple[ListenerClock, float] | None = None
        #: The command the runner is executing: (its id, its generation). Not the command
        #: itself: a cancelled utterance's engine stream must not live on through it.
        self._in_flight: tuple[int, int] | None = None
        self._outputs: collections.deque[OutputEntry] = collections.deque()
        self._notices: list[Notice] = []

    # ------------------------------------------------------------------ what the runner reads
    @property
    def busy(self) -> bool:
        """True while text is queued, a segment is being spoken or an utterance is open."""
        in_flight = self._in_flight is not None and self._in_flight[1] == self.generation
        return bool(self._work) or self.chain is not None or self._speaking is not None or in_flight

    @property
    def buffered_chars(self) -> int:
        """Text received but not yet synthesizing: in the segmenter, and cut into queued segments."""
        return self.segmenter.buffered_chars + self._queued_chars

    @property
    def queued(self) -> int:
        """Segments and flushes waiting their turn."""
        return len(self._work)

    @property
    def in_flight(self) -> bool:
        """Whether the runner is executing a command (its result not yet reported)."""
        return self._in_flight is not None

    @property
    def awaits_held_due(self) -> bool:
        """Whether the core, idle with an open chain, wants to know when held speech is due
        (the runner then asks the chain and calls :meth:`held_due`)."""
        return (
            self._in_flight is None
            and self.chain is not None
            and not self.over
            and not self._work
            and self._speaking is None
            and not self._converting_held
            and not self._held_stalled
        )

    @property
    def wakeup_at(self) -> float | None:
        """When the core, idle, will have work without new input: held speech falling due."""
        if self._in_flight is not None or self.chain is None or self.over:
            return None
        return self.held_due_at

    def pop_output(self) -> OutputEntry | None:
        """The next output item, oldest first (None: nothing to hand out)."""
        return self._outputs.popleft() if self._outputs else None

    def take_outputs(self) -> list[OutputItem]:
        """All output items waiting, oldest first."""
        items = [entry.item for entry in self._outputs]
        self._outputs.clear()
        return items

    def take_notices(self) -> list[Notice]:
        """What happened for the logs and metrics since the last call."""
        notices, self._notices = self._notices, []
        return notices

    # ------------------------------------------------------------------ inputs: the client
    def feed(self, text: str, pitch_shift: float | None, now: float) -> None:
        """A token (and a pitch change for the next segment). Completed segments queue at once."""
        if pitch_shift is not None:
            self.options.pitch_shift = pitch_shift
            self._pending_pitch = pitch_shift
        if not text:
            return
        if self.clock.first_text is None:
            self.clock.first_text = now
        self.clock.tokens += 1
        self._enqueue(self.segmenter.feed(text), now, self.clock.tokens)
        if self.config.idle_flush_seconds > 0:
            self.idle_flush_at = now + self.config.idle_flush_seconds

    def flush(self, now: float) -> None:
        """Speak everything buffered; a ``FlushedOut`` follows the utterance's last audio."""
        self.idle_flush_at = None
        self._enqueue(self.segmenter.flush(), now)
        self._work.append(_FlushWork())

    def idle_flush(self, now: float) -> None:
        """No token came for ``idle_flush_seconds``: speak what is buffered but keep the
        utterance open (no ``FlushedOut``). Nothing happens unless it is armed."""
        if self.idle_flush_at is None:
            return
        self.idle_flush_at = None
        self._enqueue(self.segmenter.flush(), now)

    def cancel(self, now: float, played_seconds: float | None = None) -> None:
        """Drop the buffered text, the queued work and every output item not yet handed out;
        a fresh utterance follows. A command in flight comes back stale and is dropped.
        ``played_seconds``: the client's playback position, passed on in the ``CancelledOut``."""
        self._reset_utterance()
        self._notices += [StopEngine(), UtteranceCancelled()]
        self._emit(CancelledOut(played_seconds))

    def close(self) -> None:
        """The session ended: nothing more is asked for or handed out."""
        self._reset_utterance()
        self.closed = True

    def _reset_utterance(self) -> None:
        self.generation += 1
        self.idle_flush_at = None
        self.segmenter.reset()
        self._work.clear()
        self._queued_chars = 0
        self.over = False
        self._cut = False
        self._words_end = 0.0
        self.chain = None  # a fresh utterance: no voice context or resampler tail carried over
        self.held_due_at = None
        self._speaking = None
        self._open_bare = self._converting_held = self._held_stalled = False
        self._segments_in_utterance = 0
        self.clock = UtteranceClock()
        self.listener = ListenerClock()  # a fresh one: the old chain's pacer keeps the old
        self._outputs.clear()

    def _enqueue(self, segments: list[Segment], now: float, token: int | None = None) -> None:
        for segment in segments:
            self._segment_ids += 1
            self._queued_chars += len(segment)
            self._work.append(_SegmentWork(segment, self._segment_ids, self._pending_pitch, token, now))
            self._pending_pitch = None
            self._held_stalled = False

    # ------------------------------------------------------------------ inputs: the runner
    def held_due(self, due_in: float | None, now: float) -> None:
        """The chain holds speech that must be converted within ``due_in`` seconds of ``now``
        (None: nothing held, or nothing to wait for)."""
        self.held_due_at = None if due_in is None else now + max(0.0, due_in)

    def frames_handed(self, samples: int, now: float, generation: int) -> None:
        """A frame of ``samples`` (48 kHz) reached the output queue at ``now``."""
        if generation == self.generation:
            self.listener.handed(samples / OUTPUT_SAMPLE_RATE, now)

    def next_command(self, now: float) -> Command | None:
        """The next piece of model work, or None: one is in flight, or there is nothing to do
        (new input, or :attr:`held_due_at` passing, changes that)."""
        if self._in_flight is not None or self.closed:
            return None
        command = self._decide(now)
        self._in_flight = None if command is None else (id(command), command.generation)
        return command

    def command_done(self, command: Command, result: Any, now: float) -> None:
        """``command`` returned ``result`` at ``now`` (see each command for its result)."""
        self._settle(command)
        if command.generation != self.generation:
            return  # a cancel came meanwhile: whatever it made is dropped
        if isinstance(command, OpenChain):
            self.chain = result
            self._chain_base = self.clock.samples / OUTPUT_SAMPLE_RATE
            self.chain_voice = command.voice
            self.chain_format = command.format
            self._open_bare = False
        elif isinstance(command, StepSegment):
            if command.start is not None:
                timing = result.timing
                took = timing.tts_seconds + timing.voice_seconds + timing.resample_seconds
                self.start_step_seconds += START_STEP_SMOOTHING * (took - self.start_step_seconds)
            self._stepped(result, now)
        elif isinstance(command, ConvertHeld):
            self.clock.add(result.timing)
            self._converting_held = self._emit_frames(result.frames, now) and not result.done
            if result.idle and self._held_fell_due:
                # It fell due, yet the voice stage had nothing ready: wait for new input rather
                # than ask again and again. (After a block the rest may just not be due yet:
                # the block's audio refilled the listener; then its due time is asked anew.)
                self._held_stalled = True
        elif isinstance(command, FinishUtterance):
            self.clock.add(result.timing)
            self._emit_frames(result.frames, now)
            self._flushed()

    def command_failed(self, command: Command, exc: BaseException, now: float) -> None:
        """``command`` raised ``exc`` at ``now``: report it; the session goes on."""
        self._settle(command)
        if command.generation != self.generation:
            return
        if isinstance(command, OpenChain):
            speaking = self._speaking
            if isinstance(exc, VoiceError) and command.voice is not None:
                # The voice would not load: say so, and speak with the engine's bare voice.
                self._emit(ErrorOut(str(exc), "voice"))
                self._notices.append(Fault("voice"))
                self.options.voice = None
                self._open_bare = True
                return
            self._speaking = None
            assert speaking is not None  # a chain is only opened for a segment
            self._fault(exc, f"segment {speaking.work.id}")
        elif isinstance(command, StepSegment):
            self._speaking = None
            if isinstance(exc, Cancelled):
                return
            if not isinstance(exc, TTSError | VoiceError):
                self.chain = None  # the chain's state is unknown after an unexpected fault
            self._fault(exc, f"segment {command.segment_id}")
        elif isinstance(command, ConvertHeld):
            self._converting_held = False
            if isinstance(exc, Cancelled):
                return
            self.chain = None
            self._fault(exc, "held speech")
        elif isinstance(command, FinishUtterance):
            self._fault(exc, "utterance")
            self._flushed()  # the client still learns that the utterance ended

    def _settle(self, command: Command) -> None:
        if self._in_flight is None or self._in_flight[0] != id(command):
            raise RuntimeError(f"{type(command).__name__} was not the command in flight")
        self._in_flight = None

    # ------------------------------------------------------------------ deciding
    def _due(
        self, now: float, *, cut_at: float | None = None, segment_start: bool = False, lasts: float = 0.0
    ) -> float:
        due = self.config.deadlines.deadline(
            self.listener, now, cut_at=cut_at, segment_start=segment_start, lasts=lasts
        )
        slot = self.config.start_slot
        if slot is None or self.listener.runs_dry_at is not None:
            return due
        # Before the utterance's first audio: its start slot, asked for once.
        if self._start_due is None or self._start_due[0] is not self.listener:
            self._start_due = (self.listener, slot(due))
        return max(due, self._start_due[1])

    def _voice(self) -> str | None:
        if self._open_bare or not self.config.voice_conversion:
            return None
        return self.options.voice or self.config.default_voice

    def _decide(self, now: float) -> Command | None:
        generation = self.generation
        if self._free_memory:
            self._free_memory = False
            return FreeMemory(generation, now)
        while True:
            speaking = self._speaking
            if speaking is not None:
                work = speaking.work
                if self.chain is None:
                    self.listener = ListenerClock()  # a new utterance: it starts with its first audio
                    self.held_due_at = None
                    return OpenChain(
                        generation,
                        self._due(now, cut_at=work.cut_at),
                        self._voice(),
                        self.options.pitch_shift,
                        self.options.format,
                        self.listener,
                    )
                start = None
                if not speaking.started:
                    speaking.started = True
                    speaking.at_pause = not self._cut_between_words
                    self._cut_between_words = work.segment.boundary == Boundary.WORD
                    self._segments_in_utterance += 1
                    self.clock.segments += 1
                    text = str(work.segment)
                    normalized = self.config.normalize(text) if self.config.normalize is not None else None
                    speaking.text = normalized.spoken if normalized is not None else text
                    if self.options.events:
                        notes = segment_notes(normalized) if normalized is not None else {}
                        self._emit(SegmentOut(work.id, text, work.token, notes))
                    if self.options.times_words:
                        speaking.words = SegmentWords(
                            normalized or NormalizedText(text, text), offset=self._chain_base, after=self._words_end
                        )
                    start = SegmentStart(
                        work.segment.boundary,
                        work.pitch_shift,
                        self.options.speed,
                        self.listener,
                        words=speaking.words is not None,
                    )
                return StepSegment(
                    generation,
                    # The boundary grace only where the listener hears a pause: a fragment cut
                    # between two words must run on without one.
                    self._due(
                        now,
                        cut_at=work.cut_at,
                        segment_start=speaking.first and speaking.at_pause,
                        lasts=self.start_step_seconds if start is not None else 0.0,
                    ),
                    self.chain,
                    work.id,
                    speaking.text,
                    start,
                    speaking.slot,
                )
            if self._converting_held and self.chain is not None and not self.over:
                self._held_fell_due = False
                return ConvertHeld(generation, self._due(now), self.chain)
            self._converting_held = False
            if not self._work:
                due = self.held_due_at
                if due is not None and due <= now and self.chain is not None and not self.over:
                    self.held_due_at = None
                    self._converting_held = self._held_fell_due = True
                    return ConvertHeld(generation, self._due(now), self.chain)
                return None
            work_item = self._work.popleft()
            self.held_due_at = None
            if isinstance(work_item, _SegmentWork):
                self._queued_chars = max(0, self._queued_chars - len(work_item.segment))
                if not self.over:
                    self._speaking = _Speaking(work_item)
                continue
            chain, self.chain = self.chain, None
            if chain is not None and not self.over:
                return FinishUtterance(generation, self._due(now), chain)
            self._flushed()

    def _stepped(self, result: ChainResult, now: float) -> None:
        speaking = self._speaking
        if speaking is None:  # cannot happen: a step is only asked for while speaking
            return
        self.clock.add(result.timing)
        words = speaking.words
        if words is not None:
            timed = words.add(result.words) + words.add(result.estimated_words, estimated=True)
            if result.done:
                timed += words.finish()
            self._words_end = words.last_end
            if timed:
                self._emit(WordsOut(speaking.work.id, tuple(timed)))
        if speaking.first and result.frames:
            speaking.first = False
            latency = now - speaking.work.cut_at
            self.clock.segment_latencies.append(latency)
            self._notices.append(SegmentLatency(latency))
        if not self._emit_frames(result.frames, now) or result.done:
            self._speaking = None

    def _emit_frames(self, frames: list[bytes], now: float) -> bool:
        """Hand out frames of the chain's format; False once the utterance limit stopped it."""
        for frame in frames:
            samples = sample_count(frame, self.chain_format)
            if self._max_samples is not None and self.clock.samples + samples > self._max_samples:
                self._stop_utterance(self._max_samples / OUTPUT_SAMPLE_RATE)
                return False
            first_text = None
            if self.clock.first_audio is None:
                self.clock.first_audio = now
                first_text = self.clock.first_text
            self.clock.samples += samples
            self._emit(AudioOut(frame, samples, first_text))
        return True

    def _stop_utterance(self, limit: float) -> None:
        """``max_utterance_seconds`` (``limit``) reached: stop the engine, drop the rest up to the flush."""
        self.over = True
        self._cut = True
        self.held_due_at = None
        self._speaking = None
        self._converting_held = False
        self._notices += [StopEngine(), LimitReached(limit)]
        self._emit(
            ErrorOut(f"utterance too long: stopped after {limit:g} s of audio (max_utterance_seconds)", "utterance_limit")
        )

    def _fault(self, exc: BaseException, where: str) -> None:
        kind, message = fault_report(exc, where)
        if kind == "oom":
            self._free_memory = True
        self._notices.append(Fault(kind, where, exc))
        self._emit(ErrorOut(message, kind))

    def _flushed(self) -> None:
        seconds = self.clock.samples / OUTPUT_SAMPLE_RATE
        self._emit(
            FlushedOut(
                segments=self._segments_in_utterance,
                audio_seconds=round(seconds, 3),
                stats=self.clock.stats(),
                cut=self._cut,
            )
        )
        self._segments_in_utterance = 0
        self.over = False
        self._cut = False
        self._words_end = 0.0
        self.chain = None
        self.held_due_at = None
        self._converting_held = self._held_stalled = False
        self.clock = UtteranceClock()

    def _emit(self, item: OutputItem) -> None:
        self._outputs.append(OutputEntry(self.generation, item))
