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
from collections.abc import Callable
from typing import Any, Protocol

from bridge.audio.chain import AudioChain
from bridge.cancel import CancelToken
from bridge.capacity import compute_key
from bridge.chain_steps import _convert_held, _finish, _step, step_cpu_clock  # noqa: F401 (re-exported)
from bridge.config import OUTPUT_SAMPLE_RATE
from bridge.core import (
    AudioOut,
    CancelledOut,
    ChainResult,
    Command,
    ConvertHeld,
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
from bridge.stage_configs import core_config, deadline_policy, pause_config, segmenter_config  # noqa: F401 (re-exported)

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
