"""One session's pipeline, the asyncio layer: text in, output items (audio frames and events) out.

    feed()/flush()/cancel() ──► UtteranceCore (bridge/core.py: pure, decides everything)
                                  │ commands, each with a deadline        ▲ results, "frames handed"
                                  ▼                                       │
                                ModelWorkers (bridge/workers.py: earliest deadline first, all sessions)
                                  │ frames
                                  ▼
                                OutputQueue (bounded in seconds of audio) ──► sender

:class:`SessionPipeline` only moves data: the client's text, flushes and cancels into the core;
the core's commands to the model workers (``submit_by`` their deadline) and their results back;
the core's output items into the :class:`OutputQueue`; the core's notices into the log and the
metrics. What the behaviour is (order, cancel, limits, faults, when held speech is due) is the
core's decision and is tested there without threads; what is left here is waiting:

* Order: one runner task per session asks the core for one command at a time, so segment N+1
  synthesizes while segment N's audio is still waiting to be sent, up to the queue's bound.
* Backpressure: the runner hands every item of a result to the output queue before it asks for
  the next command; when the queue holds ``output_queue_seconds`` of audio, that waits. A slow
  reader therefore pauses its own synthesis and nobody else's, and memory stays bounded.
* Cancel: the core moves to a new generation; the runner empties the output queue, queues the
  ``CancelledOut``, and cancels the engine's token. A frame that waited for room through a
  cancel is dropped, a result that comes back after it is stale. No audio from before a cancel
  is ever queued after it.
* Timers: the idle flush (``idle_flush_ms``) and speech the voice stage holds between segments
  (converted when the listener would otherwise run dry) wake the runner at the core's times.

Nothing here touches a socket: the server, ``/api/speak`` and the benchmarks consume
:meth:`SessionPipeline.next_output` the same way.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from bridge.audio.chain import AudioChain
from bridge.audio.pauses import PauseConfig
from bridge.cancel import CancelToken
from bridge.capacity import compute_key
from bridge.config import OUTPUT_SAMPLE_RATE, AudioSettings, SchedulerSettings, SegmenterSettings, Settings
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
    UtteranceCancelled,
    UtteranceClock,
    UtteranceCore,
    WordsOut,
)
from bridge.engines import Engines
from bridge.listener import ListenerClock
from bridge.logs import SessionLog
from bridge.normalize import session_normalizer
from bridge.scheduler import DeadlinePolicy
from bridge.segmenter import SegmenterConfig
from bridge.tts.base import SpokenWord, TTSEngine
from bridge.words import TimedSpan, estimate_spoken_words
from bridge.workers import cores_for_this_call

__all__ = [
    "AudioOut",
    "CancelledOut",
    "ErrorOut",
    "FlushedOut",
    "OutputItem",
    "OutputQueue",
    "PipelineObserver",
    "SegmentOut",
    "SessionOptions",
    "SessionPipeline",
    "StepTiming",
    "UtteranceClock",
    "WordsOut",
]

log = logging.getLogger(__name__)


class OutputQueue:
    """FIFO of output items that holds at most ``max_samples`` of audio before ``put`` waits."""

    def __init__(self, max_samples: int) -> None:
        self.max_samples = max_samples
        self._items: collections.deque[OutputItem] = collections.deque()
        self._samples = 0
        self._bytes = 0
        self._errors = 0
        self._changed = asyncio.Condition()

    @property
    def samples(self) -> int:
        """Audio samples waiting to be sent."""
        return self._samples

    @property
    def audio_bytes(self) -> int:
        """Bytes of PCM waiting to be sent."""
        return self._bytes

    @property
    def errors(self) -> int:
        """Error items waiting to be sent."""
        return self._errors

    def _count(self, item: OutputItem, sign: int) -> None:
        if isinstance(item, AudioOut):
            self._samples += sign * item.samples
            self._bytes += sign * len(item.data)
        elif isinstance(item, ErrorOut):
            self._errors += sign

    def __len__(self) -> int:
        return len(self._items)

    async def put(self, item: OutputItem, still_valid: Callable[[], bool] | None = None) -> bool:
        """Append ``item``, first waiting for room if it is audio.

        ``still_valid`` is checked again after the wait: a frame that waited through a cancel
        must not land behind it. Returns whether the item was queued.
        """
        async with self._changed:
            if isinstance(item, AudioOut):
                await self._changed.wait_for(lambda: self._samples < self.max_samples)
                if still_valid is not None and not still_valid():
                    return False
            self._count(item, 1)
            self._items.append(item)
            self._changed.notify_all()
            return True

    async def put_urgent(self, item: OutputItem) -> None:
        """Put a non-audio item at the head of the queue (feedback on bad input)."""
        if isinstance(item, AudioOut):
            raise TypeError("audio is never urgent: it must stay in order")
        async with self._changed:
            self._count(item, 1)
            self._items.appendleft(item)
            self._changed.notify_all()

    async def get(self) -> OutputItem:
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._items))
            item = self._items.popleft()
            self._count(item, -1)
            self._changed.notify_all()
            return item

    async def clear(self) -> int:
        """Drop everything queued (cancel); returns the audio samples dropped."""
        async with self._changed:
            dropped = self._samples
            self._items.clear()
            self._samples = self._bytes = self._errors = 0
            self._changed.notify_all()
            return dropped


class PipelineObserver(Protocol):
    """What a pipeline reports as it goes (:class:`bridge.metrics.Metrics` implements it)."""

    def observe_segment_latency(self, seconds: float) -> None: ...

    def observe_compute(self, key: str, cpu_seconds: float, audio_seconds: float) -> None:
        """One model step: ``cpu_seconds`` of CPU time (its worker thread's ``time.thread_time``,
        or the process's while the call ran alone: :func:`step_cpu_clock`) made
        ``audio_seconds`` of output audio, for the voice ``key`` (:func:`bridge.capacity.compute_key`).
        Feeds the measured capacity."""
        ...

    def error(self, kind: str) -> None: ...


def segmenter_config(settings: SegmenterSettings) -> SegmenterConfig:
    return SegmenterConfig(
        max_chars=settings.segment_max_chars,
        first_min_words=settings.first_segment_min_words,
        first_max_words=settings.first_segment_max_words,
        pause_min_chars=settings.pause_min_chars,
        second_min_words=settings.second_segment_min_words,
        skip_code_blocks=settings.skip_code_blocks,
    )


def deadline_policy(settings: SchedulerSettings) -> DeadlinePolicy:
    return DeadlinePolicy(
        first_audio_target=settings.first_audio_target_ms / 1000,
        boundary_grace=settings.boundary_grace_ms / 1000,
    )


def core_config(settings: Settings, engines: Engines, max_utterance_seconds: float) -> CoreConfig:
    return CoreConfig(
        segmenter=segmenter_config(settings.segmenter),
        deadlines=deadline_policy(settings.scheduler),
        max_utterance_seconds=max_utterance_seconds,
        idle_flush_seconds=settings.segmenter.idle_flush_ms / 1000,
        default_voice=settings.rvc.default_voice,
        voice_conversion=engines.voice is not None,
        normalize=session_normalizer(settings.normalize, engines.tts),
    )


def pause_config(settings: AudioSettings) -> PauseConfig:
    return PauseConfig(
        sentence_ms=settings.sentence_pause_ms,
        clause_ms=settings.clause_pause_ms,
        word_ms=settings.word_pause_ms,
        fade_ms=settings.fade_ms,
    )


class SessionPipeline:
    """Text → segments → speech → voice → 48 kHz frames, for one session, in order."""

    def __init__(
        self,
        engines: Engines,
        options: SessionOptions | None = None,
        *,
        session_id: str = "-",
        observer: PipelineObserver | None = None,
        max_utterance_seconds: float | None = None,
    ) -> None:
        self.engines = engines
        self.settings = engines.settings
        self.options = options or SessionOptions()
        self.session_id = session_id
        self.observer = observer
        self.log = SessionLog(log, {"session": session_id})
        if max_utterance_seconds is None:
            max_utterance_seconds = self.settings.limits.max_utterance_seconds
        self.core = UtteranceCore(core_config(self.settings, engines, max_utterance_seconds), self.options)
        self._pauses = pause_config(self.settings.audio)
        self.output = OutputQueue(int(self.settings.sessions.output_queue_seconds * OUTPUT_SAMPLE_RATE))
        self._cancel = CancelToken()
        self._wake = asyncio.Event()
        self._delivering = asyncio.Lock()
        self._idle_timer: asyncio.TimerHandle | None = None
        #: What this session's model steps cost is recorded under (the engine, and its voice).
        self._compute_key = compute_key(engines.tts.name, None)
        self.closed = False
        self._task = asyncio.create_task(self._run(), name=f"pipeline-{session_id}")

    # ------------------------------------------------------------------ control (event loop)
    @property
    def busy(self) -> bool:
        """True while text is queued, being synthesized, or an utterance is open."""
        return self.core.busy

    @property
    def buffered_chars(self) -> int:
        """Text received but not yet synthesizing: in the segmenter, and cut into queued segments."""
        return self.core.buffered_chars

    @property
    def queued_segments(self) -> int:
        return self.core.queued

    @property
    def clock(self) -> UtteranceClock:
        """The current utterance's timings."""
        return self.core.clock

    @property
    def listener(self) -> ListenerClock:
        """The current utterance's listener clock."""
        return self.core.listener

    def feed(self, text: str, pitch_shift: float | None = None) -> None:
        """Append text (a token). Completed segments start synthesizing at once."""
        self.core.feed(text, pitch_shift, time.perf_counter())
        self._arm_idle_flush()
        self._wake.set()

    def flush(self) -> None:
        """Speak everything buffered; a ``FlushedOut`` follows the last audio."""
        self.core.flush(time.perf_counter())
        self._arm_idle_flush()
        self._wake.set()

    async def cancel(self, played_seconds: float | None = None) -> None:
        """Drop buffered text and all audio not yet handed out; stop the model work now.
        ``played_seconds``: the client's playback position, passed on in the ``CancelledOut``."""
        self.core.cancel(time.perf_counter(), played_seconds)
        self._arm_idle_flush()
        self._handle_notices()
        dropped = await self.output.clear()
        await self._deliver()  # the CancelledOut, at once (whatever the runner is waiting on)
        self.log.info("cancelled", extra={"dropped_samples": dropped})
        self._wake.set()

    async def next_output(self) -> OutputItem:
        return await self.output.get()

    async def close(self) -> None:
        """Stop everything for good (disconnect). Model work in flight is abandoned."""
        if self.closed:
            return
        self.closed = True
        self.core.close()
        self._arm_idle_flush()
        self._cancel.cancel()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    def _arm_idle_flush(self) -> None:
        """(Re)arm the idle flush timer at the core's time for it (or disarm it)."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        at = self.core.idle_flush_at
        if at is not None:
            delay = max(0.0, at - time.perf_counter())
            self._idle_timer = asyncio.get_running_loop().call_later(delay, self._idle_flush)

    def _idle_flush(self) -> None:
        self._idle_timer = None
        self.core.idle_flush(time.perf_counter())
        self._wake.set()

    # ------------------------------------------------------------------ the runner task
    async def _run(self) -> None:
        core = self.core
        while True:
            self._wake.clear()  # before looking: input that comes while we deliver wakes us
            now = time.perf_counter()
            if core.awaits_held_due:
                core.held_due(self._held_due_in(core.chain), now)
            command = core.next_command(now)
            # Items the decision made (a segment's event before its first step, a FlushedOut).
            await self._deliver()
            if command is None:
                await self._sleep(core.wakeup_at)
                continue
            await self._carry_out(command)
            del command  # nothing here may keep an abandoned engine stream alive
            await self._deliver()  # all of it queued before the next step: backpressure

    async def _carry_out(self, command: Command) -> None:
        """Execute ``command`` and tell the core how it went."""
        try:
            result = await self._execute(command)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the core reports it; one bad segment must not end the session
            self.core.command_failed(command, exc, time.perf_counter())
        else:
            if isinstance(command, OpenChain):
                voice = command.voice if result.voice is not None else None
                self._compute_key = compute_key(self.engines.tts.name, voice)
            elif isinstance(result, ChainResult):  # spent, even when a cancel makes it stale
                self._observe_compute(result)
            self.core.command_done(command, result, time.perf_counter())
        self._handle_notices()

    def _observe_compute(self, result: ChainResult) -> None:
        """Report one model step's CPU time and the audio it made (measured capacity)."""
        if self.observer is not None:
            self.observer.observe_compute(
                self._compute_key, result.timing.cpu_seconds, result.samples / OUTPUT_SAMPLE_RATE
            )

    def _held_due_in(self, chain: AudioChain) -> float | None:
        """When the chain's held speech is due (a cheap read; no model work is in flight)."""
        try:
            return chain.held_due_in()
        except Exception:  # noqa: BLE001 - never let the runner die: the flush converts it anyway
            self.log.exception("asking for held speech failed")
            return None

    async def _sleep(self, until: float | None) -> None:
        """Wait for new input, or until ``until`` (perf_counter seconds)."""
        if until is None:
            await self._wake.wait()
            return
        try:
            await asyncio.wait_for(self._wake.wait(), max(0.0, until - time.perf_counter()))
        except TimeoutError:
            pass

    async def _deliver(self) -> None:
        """Hand the core's output items to the output queue, in order, waiting for room."""
        core = self.core
        async with self._delivering:
            while (entry := core.pop_output()) is not None:
                generation, item = entry.generation, entry.item
                queued = await self.output.put(item, lambda: core.generation == generation)
                if queued and isinstance(item, AudioOut):
                    core.frames_handed(item.samples, time.perf_counter(), generation)

    async def _execute(self, command: Command) -> Any:
        """Run ``command`` on a model worker by its deadline; its result for the core."""
        if isinstance(command, OpenChain):
            return await self._in_executor(self._open_chain, command, deadline=command.deadline)
        if isinstance(command, StepSegment):
            return await self._in_executor(_step, command, self.engines.tts, self._cancel, deadline=command.deadline)
        if isinstance(command, ConvertHeld):
            return await self._in_executor(_convert_held, command.chain, deadline=command.deadline)
        if isinstance(command, FinishUtterance):
            return await self._in_executor(_finish, command.chain, deadline=command.deadline)
        if isinstance(command, FreeMemory):
            try:
                await self._in_executor(self.engines.free_memory, deadline=command.deadline)
            except Exception:  # noqa: BLE001 - freeing is best effort
                self.log.exception("freeing memory failed")
            return None
        raise TypeError(f"unknown command {command!r}")

    async def _in_executor(self, fn, *args, deadline: float | None = None):  # type: ignore[no-untyped-def]
        """Run ``fn`` on a model worker, by ``deadline`` (perf_counter seconds; None: now)."""
        # The copied context carries the session id into the worker thread's log lines.
        context = contextvars.copy_context()
        executor = self.engines.executor
        submit_by = getattr(executor, "submit_by", None)
        if submit_by is None:
            return await asyncio.get_running_loop().run_in_executor(executor, context.run, fn, *args)
        when = time.perf_counter() if deadline is None else deadline
        return await asyncio.wrap_future(submit_by(when, context.run, fn, *args))

    def _open_chain(self, command: OpenChain) -> AudioChain:
        """Worker thread: the utterance's audio chain (with its voice stream, if any)."""
        voice_stream = None
        if command.voice is not None and self.engines.voice is not None:
            voice_stream = self.engines.voice.open_stream(
                command.voice, self.engines.tts.sample_rate, command.pitch_shift, listener=command.listener
            )
        frame_samples = max(1, OUTPUT_SAMPLE_RATE * self.settings.audio.frame_ms // 1000)
        return AudioChain(
            self.engines.tts.sample_rate,
            frame_samples=frame_samples,
            fmt=command.format,
            pauses=self._pauses,
            voice=voice_stream,
        )

    def _handle_notices(self) -> None:
        """The core's notices: engine stops, logs, metrics."""
        for notice in self.core.take_notices():
            if isinstance(notice, StopEngine):
                self._cancel.cancel()
                self._cancel = CancelToken()
            elif isinstance(notice, SegmentLatency):
                if self.observer is not None:
                    self.observer.observe_segment_latency(notice.seconds)
            elif isinstance(notice, Fault):
                self._log_fault(notice)
                if self.observer is not None:
                    self.observer.error(notice.kind)
            elif isinstance(notice, LimitReached):
                self.log.warning("utterance limit reached", extra={"seconds": notice.seconds})
                if self.observer is not None:
                    self.observer.error("utterance_limit")
            elif isinstance(notice, UtteranceCancelled):
                pass  # cancel() logs it with what the output queue dropped

    def _log_fault(self, fault: Fault) -> None:
        exc, where = fault.error, fault.where
        if exc is None or where is None:
            return
        if fault.kind == "oom":
            self.log.error("out of memory", extra={"where": where, "error": f"{type(exc).__name__}: {exc}"[:300]})
        elif fault.kind == "tts":
            self.log.warning("segment failed", extra={"where": where, "error": str(exc)})
        elif fault.kind == "voice":
            self.log.warning("voice conversion failed", extra={"where": where, "error": str(exc)})
        else:
            self.log.error("pipeline fault", exc_info=(type(exc), exc, exc.__traceback__), extra={"where": where})


# ----------------------------------------------------------------------------- worker threads
@dataclass
class _SegmentSteps:
    """One segment's engine stream, and whether it has ended (its trailing pause pushed).

    With word timings: ``words`` is where the engine appends its timed words (engine samples)
    and ``placed`` how many of them are already placed in the chain's output."""

    chunks: Iterator[np.ndarray]
    ended: bool = False
    text: str = ""
    words: list[SpokenWord] | None = None
    placed: int = 0
    placed_end: float | None = None  # where the last placed word ends
    estimated: bool = False  # the words the engine did not time were estimated


def _place_words(run: _SegmentSteps, chain: AudioChain) -> list[TimedSpan]:
    """Worker thread: the engine's timed words placed in the chain's output, once pause
    shaping knows the segment's shift (before any of its audio goes out)."""
    placed: list[TimedSpan] = []
    if run.words is None:
        return placed
    while run.placed < len(run.words):
        word = run.words[run.placed]
        start, end = chain.stream_seconds(word.start), chain.stream_seconds(word.end)
        if start is None or end is None:
            break
        placed.append(TimedSpan(word.start_char, word.end_char, start, end))
        run.placed += 1
        run.placed_end = end
    return placed


def _estimate_rest(run: _SegmentSteps, chain: AudioChain) -> list[TimedSpan]:
    """Worker thread, once the segment has ended: the words the engine did not time (all of
    them for an engine without alignments), estimated over its measured sound (``bridge.words``)."""
    if run.words is None or not run.ended or run.estimated:
        return []
    run.estimated = True
    sound = chain.segment_sound
    if sound is None:
        return []
    begin = sound[0] if run.placed_end is None else min(max(sound[0], run.placed_end), sound[1])
    return estimate_spoken_words(run.text, begin, sound[1], after=run.placed)


def step_cpu_clock() -> Callable[[], float]:
    """The clock a model step's CPU time is read from, in its worker thread: the thread's own
    (``time.thread_time``), or the whole process's (``time.process_time``) while the call runs
    alone on the workers. Then an engine may spread it over every core on threads of its own
    (Piper's wide sessions), which the thread's clock would not see (the meter read 10 % short
    at one session, 2 % with this: benchmarks/results/2026-12-03-capacity.md); alone, nothing
    else but the event loop spends the process's CPU meanwhile."""
    return time.process_time if cores_for_this_call() > 1 else time.thread_time


def _step(command: StepSegment, engine: TTSEngine, cancel: CancelToken) -> ChainResult:
    """Worker thread: one step of a segment, then back to the event loop with its frames.

    The first step begins the segment on the chain and opens the engine's stream. A step
    converts a block the voice stage holds ready, if it holds one (so each block goes out as
    soon as it is converted), else advances the engine one chunk through the chain. The
    segment is done when the engine has ended and the voice stage holds nothing ready.
    """
    cpu_clock = step_cpu_clock()
    cpu_before = cpu_clock()
    chain: AudioChain = command.chain
    start = command.start
    if start is not None:
        chain.begin_segment(start.boundary, start.pitch_shift)
        options: dict[str, Any] = {"speed": start.speed} if start.speed != 1.0 and engine.supports_speed else {}
        if engine.paces_chunks and start.listener is not None:
            listener = start.listener
            options["lead"] = lambda: listener.buffered(time.perf_counter())
        words: list[SpokenWord] | None = [] if start.words else None
        if words is not None and engine.reports_words:
            options["words"] = words
        command.slot.stream = _SegmentSteps(iter(engine.stream(command.text, cancel, **options)), text=command.text, words=words)
    run: _SegmentSteps = command.slot.stream
    voice_before, resample_before, samples_before = chain.voice_seconds, chain.resample_seconds, chain.samples_out
    chunk = None
    tts = 0.0
    placed: list[TimedSpan] = []
    if chain.voice_ready():
        frames = chain.convert_pending()
    elif run.ended:
        frames = []
    else:
        started = time.perf_counter()
        try:
            chunk = next(run.chunks)
        except StopIteration:
            chunk = None
        tts = time.perf_counter() - started
        if chunk is None:
            run.ended = True
            placed = _place_words(run, chain)  # before the segment's end resets pause shaping
            frames = chain.end_segment()
        else:
            frames = chain.push(chunk)
            placed = _place_words(run, chain)
    estimated = _estimate_rest(run, chain)
    timing = StepTiming(
        tts_seconds=tts,
        tts_audio_seconds=0.0 if chunk is None else chunk.size / engine.sample_rate,
        voice_seconds=chain.voice_seconds - voice_before,
        resample_seconds=chain.resample_seconds - resample_before,
        cpu_seconds=cpu_clock() - cpu_before,
    )
    return ChainResult(
        frames,
        run.ended and not chain.voice_ready(),
        timing,
        chain.samples_out - samples_before,
        words=tuple(placed),
        estimated_words=tuple(estimated),
    )


def _convert_held(chain: AudioChain) -> ChainResult:
    """Worker thread: one block of the speech the voice stage held back, if it is ready now."""
    if not chain.voice_ready():
        return ChainResult([], True, idle=True)
    return _chain_call(chain, chain.convert_pending, lambda: not chain.voice_ready())


def _finish(chain: AudioChain) -> ChainResult:
    """Worker thread: the end of the utterance, every stage drained."""
    return _chain_call(chain, chain.finish, lambda: True)


def _chain_call(chain: AudioChain, fn: Callable[[], list[bytes]], done: Callable[[], bool]) -> ChainResult:
    """Worker thread: ``fn()`` on the chain, timed (stages and its CPU time: :func:`step_cpu_clock`)."""
    cpu_clock = step_cpu_clock()
    cpu_before = cpu_clock()
    voice_before, resample_before, samples_before = chain.voice_seconds, chain.resample_seconds, chain.samples_out
    frames = fn()
    timing = StepTiming(
        voice_seconds=chain.voice_seconds - voice_before,
        resample_seconds=chain.resample_seconds - resample_before,
        cpu_seconds=cpu_clock() - cpu_before,
    )
    return ChainResult(frames, done(), timing, chain.samples_out - samples_before)
