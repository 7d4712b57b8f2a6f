"""One session's ordered pipeline: text in, output items (audio frames and events) out.

    feed()/flush()/cancel()  ──►  segmenter  ──►  work queue  ──►  worker task
                                                                    │ one chunk at a time,
                                                                    │ in the model executor
                                                                    ▼
                                            OutputQueue (bounded in seconds of audio)  ──►  sender

* Order: one worker task per session takes segments in order; segment N+1 synthesizes while
  segment N's audio is still waiting to be sent, up to the output queue's bound.
* Backpressure: when the output queue holds ``output_queue_seconds`` of audio, the worker waits
  before computing the next chunk. A slow reader therefore pauses its own synthesis and nobody
  else's, and memory per session stays bounded.
* Cancel: a generation counter. Everything queued is dropped at once, the engine sees its
  cancel token between chunks, and whatever a worker thread was computing when the cancel came
  is discarded when it returns. No audio from before a cancel is ever queued after it.
* Faults: any exception while synthesizing or converting one segment (an engine's TTSError or
  VoiceError, a bug, running out of memory) becomes an ``ErrorOut`` and the session goes on
  with the next segment; out of memory also frees what the engines can free. Nothing here is
  shared between sessions but the engines, so one session's fault stays in that session.
* Limits: an utterance stops (``ErrorOut``, the rest of it dropped until its flush) once it has
  made ``max_utterance_seconds`` of audio; :attr:`SessionPipeline.buffered_chars` tells the
  server how much text waits for synthesis.

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
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from bridge.audio.chain import AudioChain
from bridge.audio.framing import BYTES_PER_SAMPLE, PcmFormat
from bridge.audio.pauses import PauseConfig
from bridge.cancel import Cancelled, CancelToken
from bridge.capacity import compute_key
from bridge.config import OUTPUT_SAMPLE_RATE, Settings
from bridge.engines import Engines, is_out_of_memory
from bridge.listener import ListenerClock
from bridge.logs import SessionLog
from bridge.normalize import segment_notes, session_normalizer
from bridge.scheduler import DeadlinePolicy
from bridge.segmenter import Segment, Segmenter, SegmenterConfig
from bridge.tts.base import TTSError
from bridge.vc.base import VoiceError
from bridge.workers import cores_for_this_call

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- output items
@dataclass(frozen=True, slots=True)
class AudioOut:
    """One binary frame of PCM in the session's format.

    ``first_text`` is set on the first frame of an utterance only: when (``perf_counter``) the
    utterance's first text arrived, so whoever sends the frame can measure first token → sound.
    """

    data: bytes
    samples: int
    first_text: float | None = None


@dataclass(frozen=True, slots=True)
class SegmentOut:
    """A segment is about to sound (sent before its first audio).

    ``token`` is the 1-based index, within the utterance, of the token whose arrival completed
    the segment (None when the flush completed it): with it a client measures token-to-sound.
    """

    id: int
    text: str
    token: int | None = None
    #: What normalization did with text the voice cannot read: ``{"transliterated": [{"text",
    #: "as"}], "skipped": [{"text"}]}`` (empty when nothing).
    notes: dict[str, list[dict[str, str]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FlushedOut:
    """Everything up to a flush has been handed out; ``stats`` are the utterance's timings."""

    segments: int
    audio_seconds: float
    stats: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CancelledOut:
    pass


@dataclass(frozen=True, slots=True)
class ErrorOut:
    message: str
    kind: str = "error"


OutputItem = AudioOut | SegmentOut | FlushedOut | CancelledOut | ErrorOut


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


# ----------------------------------------------------------------------------- work items
@dataclass(frozen=True, slots=True)
class _SegmentWork:
    generation: int
    segment: Segment
    id: int
    pitch_shift: float | None
    token: int | None
    cut_at: float


@dataclass(frozen=True, slots=True)
class _FlushWork:
    generation: int


@dataclass
class SessionOptions:
    """What a client may change about its session."""

    events: bool = False
    voice: str | None = None
    pitch_shift: float = 0.0
    format: PcmFormat = "f32le"
    #: Speaking rate for engines that take one (``TTSEngine.supports_speed``); 1.0: the voice's own.
    speed: float = 1.0


@dataclass
class UtteranceClock:
    """Timings of the current utterance (``time.perf_counter``), for metrics and benchmarks."""

    first_text: float | None = None
    first_audio: float | None = None
    segments: int = 0
    tokens: int = 0
    samples: int = 0
    #: Segment cut → its first audio frame queued, per segment (seconds).
    segment_latencies: list[float] = field(default_factory=list)
    tts_seconds: float = 0.0
    tts_audio_seconds: float = 0.0
    voice_seconds: float = 0.0
    resample_seconds: float = 0.0

    def stats(self) -> dict[str, float]:
        audio = self.samples / OUTPUT_SAMPLE_RATE
        stats = {
            "tokens": self.tokens,
            "audio_seconds": round(audio, 3),
            "tts_ms": round(self.tts_seconds * 1000, 1),
            "voice_ms": round(self.voice_seconds * 1000, 1),
            "resample_ms": round(self.resample_seconds * 1000, 1),
            "tts_rtf": round(self.tts_seconds / self.tts_audio_seconds, 4) if self.tts_audio_seconds else 0.0,
        }
        if self.first_text is not None and self.first_audio is not None:
            stats["first_text_to_audio_ms"] = round((self.first_audio - self.first_text) * 1000, 1)
        if self.segment_latencies:
            stats["segment_latency_ms_max"] = round(max(self.segment_latencies) * 1000, 1)
        return stats


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


def segmenter_config(settings: Settings) -> SegmenterConfig:
    return SegmenterConfig(
        max_chars=settings.segment_max_chars,
        first_min_words=settings.first_segment_min_words,
        first_max_words=settings.first_segment_max_words,
        pause_min_chars=settings.pause_min_chars,
        skip_code_blocks=settings.skip_code_blocks,
    )


def deadline_policy(settings: Settings) -> DeadlinePolicy:
    return DeadlinePolicy(
        first_audio_target=settings.first_audio_target_ms / 1000,
        boundary_grace=settings.boundary_grace_ms / 1000,
    )


def pause_config(settings: Settings) -> PauseConfig:
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
        self._segmenter = Segmenter(segmenter_config(self.settings))
        self._normalize = session_normalizer(self.settings, engines.tts)
        self._pauses = pause_config(self.settings)
        self._work: asyncio.Queue[_SegmentWork | _FlushWork] = asyncio.Queue()
        self.output = OutputQueue(int(self.settings.output_queue_seconds * OUTPUT_SAMPLE_RATE))
        self._generation = 0
        self._cancel = CancelToken()
        self._chain: AudioChain | None = None
        self._chain_voice: str | None = None
        self._compute_key = compute_key(engines.tts.name, None)
        self._segment_ids = 0
        self._segments_in_utterance = 0
        self._pending_pitch: float | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._queued_chars = 0
        if max_utterance_seconds is None:
            max_utterance_seconds = getattr(self.settings, "max_utterance_seconds", 0.0)
        self._max_samples = int(max_utterance_seconds * OUTPUT_SAMPLE_RATE) or None
        self._utterance_over = False  # the utterance hit max_utterance_seconds: skip to its flush
        self.clock = UtteranceClock()
        #: The utterance's listener, as the scheduler and the voice stage's pacing see it.
        self.listener = ListenerClock()
        self._deadlines = deadline_policy(self.settings)
        self.closed = False
        self._task = asyncio.create_task(self._run(), name=f"pipeline-{session_id}")

    # ------------------------------------------------------------------ control (event loop)
    @property
    def busy(self) -> bool:
        """True while text is buffered, queued or being synthesized."""
        return bool(self._work.qsize()) or self._chain is not None

    @property
    def buffered_chars(self) -> int:
        """Text received but not yet synthesizing: in the segmenter, and cut into queued segments."""
        return self._segmenter.buffered_chars + self._queued_chars

    @property
    def queued_segments(self) -> int:
        return self._work.qsize()

    def feed(self, text: str, pitch_shift: float | None = None) -> None:
        """Append text (a token). Completed segments start synthesizing at once."""
        if pitch_shift is not None:
            self.options.pitch_shift = pitch_shift
            self._pending_pitch = pitch_shift
        if not text:
            return
        if self.clock.first_text is None:
            self.clock.first_text = time.perf_counter()
        self.clock.tokens += 1
        self._enqueue(self._segmenter.feed(text), self.clock.tokens)
        self._arm_idle_flush()

    def flush(self) -> None:
        """Speak everything buffered; a ``FlushedOut`` follows the last audio."""
        self._disarm_idle_flush()
        self._enqueue(self._segmenter.flush())
        self._work.put_nowait(_FlushWork(self._generation))

    async def cancel(self) -> None:
        """Drop buffered text and all audio not yet handed out; stop the model work now."""
        self._disarm_idle_flush()
        self._generation += 1
        self._cancel.cancel()
        self._cancel = CancelToken()
        self._segmenter.reset()
        while not self._work.empty():
            self._work.get_nowait()
        self._queued_chars = 0
        self._utterance_over = False
        self._chain = None  # a fresh utterance: no voice context or resampler tail carried over
        self._segments_in_utterance = 0
        self.clock = UtteranceClock()
        self.listener = ListenerClock()  # a fresh one: the old chain's pacer keeps the old
        dropped = await self.output.clear()
        await self.output.put(CancelledOut())
        self.log.info("cancelled", extra={"dropped_samples": dropped})

    async def next_output(self) -> OutputItem:
        return await self.output.get()

    async def close(self) -> None:
        """Stop everything for good (disconnect). Model work in flight is abandoned."""
        if self.closed:
            return
        self.closed = True
        self._disarm_idle_flush()
        self._generation += 1
        self._cancel.cancel()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    def _enqueue(self, segments: list[Segment], token: int | None = None) -> None:
        now = time.perf_counter()
        for segment in segments:
            self._segment_ids += 1
            self._queued_chars += len(segment)
            self._work.put_nowait(
                _SegmentWork(self._generation, segment, self._segment_ids, self._pending_pitch, token, now)
            )
            self._pending_pitch = None

    def _arm_idle_flush(self) -> None:
        delay = self.settings.idle_flush_ms
        if not delay:
            return
        self._disarm_idle_flush()
        self._idle_timer = asyncio.get_running_loop().call_later(delay / 1000, self._idle_flush)

    def _disarm_idle_flush(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _idle_flush(self) -> None:
        # Speak what is buffered, but keep the utterance open (no FlushedOut).
        self._idle_timer = None
        self._enqueue(self._segmenter.flush())

    # ------------------------------------------------------------------ worker
    async def _next_work(self) -> _SegmentWork | _FlushWork:
        """The next segment or flush; while waiting for it, speech the voice stage holds back
        from the last segment goes out when the listener would otherwise run dry."""
        while True:
            chain = self._chain
            due = chain.held_due_in() if chain is not None and not self._utterance_over else None
            if due is None or not self._work.empty():
                return await self._work.get()
            try:
                return await asyncio.wait_for(self._work.get(), due)
            except TimeoutError:
                await self._convert_held(chain)

    async def _convert_held(self, chain: AudioChain) -> None:
        generation = self._generation
        while chain is self._chain and generation == self._generation and chain.voice_ready():
            try:
                started = chain.voice_seconds, chain.resample_seconds
                frames, cpu = await self._in_executor(_thread_timed, chain.convert_pending, deadline=self._due())
            except Cancelled:
                return
            except Exception as exc:  # as in a segment: report it, the session goes on
                if generation == self._generation:
                    self._chain = None
                    await self._report_fault(exc, "held speech")
                return
            self.clock.voice_seconds += chain.voice_seconds - started[0]
            self.clock.resample_seconds += chain.resample_seconds - started[1]
            self._observe_compute(cpu, frames)
            if not await self._emit_frames(frames, generation):
                return

    async def _run(self) -> None:
        while True:
            work = await self._next_work()
            if isinstance(work, _SegmentWork):
                self._queued_chars = max(0, self._queued_chars - len(work.segment))
            if work.generation != self._generation:
                continue
            try:
                if isinstance(work, _SegmentWork):
                    await self._speak(work)
                else:
                    await self._finish(work)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad segment must not end the session
                self._chain = None  # its state is unknown after an unexpected fault
                await self._report_fault(exc, "utterance" if isinstance(work, _FlushWork) else f"segment {work.id}")
                if isinstance(work, _FlushWork) and work.generation == self._generation:
                    await self._flushed()  # the client still learns that the utterance ended

    async def _report_fault(self, exc: BaseException, where: str) -> None:
        """A fault confined to one segment: tell the client, count it, and carry on."""
        if is_out_of_memory(exc):
            kind, message = "oom", f"{where}: out of memory on the synthesis device; skipped"
            self.log.error("out of memory", extra={"where": where, "error": f"{type(exc).__name__}: {exc}"[:300]})
            try:
                await self._in_executor(self.engines.free_memory)
            except Exception:  # noqa: BLE001 - freeing is best effort
                self.log.exception("freeing memory failed")
        elif isinstance(exc, TTSError):
            kind, message = "tts", f"{where}: {exc}"
            self.log.warning("segment failed", extra={"where": where, "error": str(exc)})
        elif isinstance(exc, VoiceError):
            kind, message = "voice", f"{where}: {exc}"
            self.log.warning("voice conversion failed", extra={"where": where, "error": str(exc)})
        else:
            kind, message = "internal", f"{where}: internal error ({type(exc).__name__})"
            self.log.error("pipeline fault", exc_info=(type(exc), exc, exc.__traceback__), extra={"where": where})
        if self.observer is not None:
            self.observer.error(kind)
        await self.output.put(ErrorOut(message, kind))

    def _new_chain(self) -> AudioChain:
        voice_stream = None
        voice = self.options.voice or self.settings.default_voice
        if voice and self.engines.voice is not None:
            voice_stream = self.engines.voice.open_stream(
                voice, self.engines.tts.sample_rate, self.options.pitch_shift, listener=self.listener
            )
        self._chain_voice = voice
        self._compute_key = compute_key(self.engines.tts.name, voice if voice_stream is not None else None)
        frame_samples = max(1, OUTPUT_SAMPLE_RATE * self.settings.frame_ms // 1000)
        return AudioChain(
            self.engines.tts.sample_rate,
            frame_samples=frame_samples,
            fmt=self.options.format,
            pauses=self._pauses,
            voice=voice_stream,
        )

    def _due(self, *, cut_at: float | None = None, segment_start: bool = False) -> float:
        """The deadline of this session's next piece of model work (see bridge.scheduler)."""
        return self._deadlines.deadline(
            self.listener, time.perf_counter(), cut_at=cut_at, segment_start=segment_start
        )

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

    def _observe_compute(self, cpu_seconds: float, frames: list[bytes]) -> None:
        """Report one model step's CPU time and the audio it made (measured capacity)."""
        if self.observer is not None:
            samples = sum(len(frame) for frame in frames) // BYTES_PER_SAMPLE[self.options.format]
            self.observer.observe_compute(self._compute_key, cpu_seconds, samples / OUTPUT_SAMPLE_RATE)

    async def _emit_frames(self, frames: list[bytes], generation: int) -> bool:
        """Queue frames (waiting for room); False once a cancel has made them stale."""
        per_sample = BYTES_PER_SAMPLE[self.options.format]
        for frame in frames:
            if generation != self._generation or self._utterance_over:
                return False
            samples = len(frame) // per_sample
            if self._max_samples is not None and self.clock.samples + samples > self._max_samples:
                await self._stop_utterance()
                return False
            first_text = None
            if self.clock.first_audio is None:
                self.clock.first_audio = time.perf_counter()
                first_text = self.clock.first_text
            self.clock.samples += samples
            if not await self.output.put(AudioOut(frame, samples, first_text), lambda: generation == self._generation):
                return False
            self.listener.handed(samples / OUTPUT_SAMPLE_RATE, time.perf_counter())
        return generation == self._generation

    async def _stop_utterance(self) -> None:
        """``max_utterance_seconds`` reached: stop the engine, drop the rest up to the flush."""
        self._utterance_over = True
        self._cancel.cancel()
        self._cancel = CancelToken()
        limit = self._max_samples / OUTPUT_SAMPLE_RATE if self._max_samples else 0
        self.log.warning("utterance limit reached", extra={"seconds": limit})
        if self.observer is not None:
            self.observer.error("utterance_limit")
        await self.output.put(
            ErrorOut(f"utterance too long: stopped after {limit:g} s of audio (max_utterance_seconds)", "utterance_limit")
        )

    async def _speak(self, work: _SegmentWork) -> None:
        if self._utterance_over:
            return
        generation, token = work.generation, self._cancel
        if self._chain is None:
            self.listener = ListenerClock()  # a new utterance: its listener starts with its first audio
            due = self._due(cut_at=work.cut_at)
            try:
                self._chain = await self._in_executor(self._new_chain, deadline=due)
            except VoiceError as exc:
                await self.output.put(ErrorOut(str(exc), "voice"))
                if self.observer is not None:
                    self.observer.error("voice")
                self.options.voice = None
                self._chain = await self._in_executor(self._new_chain, deadline=due)
        if generation != self._generation:
            return
        chain = self._chain
        self._segments_in_utterance += 1
        self.clock.segments += 1
        spoken = self._normalize(str(work.segment))
        if self.options.events:
            await self.output.put(SegmentOut(work.id, str(work.segment), work.token, segment_notes(spoken)))
        chain.begin_segment(work.segment.boundary, work.pitch_shift)
        tts, speed, listener = self.engines.tts, self.options.speed, self.listener
        options: dict[str, Any] = {"speed": speed} if speed != 1.0 and tts.supports_speed else {}
        if tts.paces_chunks:
            options["lead"] = lambda: listener.buffered(time.perf_counter())
        steps = _SegmentSteps(tts.stream(spoken.spoken, token, **options))
        first = True
        while True:
            due = self._due(cut_at=work.cut_at, segment_start=first)
            try:
                frames, done, timing = await self._in_executor(
                    _step, steps, chain, self.engines.tts.sample_rate, deadline=due
                )
            except Cancelled:
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any fault in one segment: report it, go on with the next
                if generation == self._generation and not isinstance(exc, TTSError | VoiceError):
                    self._chain = None  # the chain's state is unknown after an unexpected fault
                if generation == self._generation:
                    await self._report_fault(exc, f"segment {work.id}")
                return
            self._observe_compute(timing.cpu_seconds, frames)
            if generation == self._generation:
                self.clock.tts_seconds += timing.tts_seconds
                self.clock.tts_audio_seconds += timing.tts_audio_seconds
                self.clock.voice_seconds += timing.voice_seconds
                self.clock.resample_seconds += timing.resample_seconds
            if first and frames and generation == self._generation:
                first = False
                latency = time.perf_counter() - work.cut_at
                self.clock.segment_latencies.append(latency)
                if self.observer is not None:
                    self.observer.observe_segment_latency(latency)
            if not await self._emit_frames(frames, generation) or done:
                return

    async def _finish(self, work: _FlushWork) -> None:
        chain, self._chain = self._chain, None
        over, self._utterance_over = self._utterance_over, False
        if chain is not None and not over:
            frames, cpu = await self._in_executor(_thread_timed, chain.finish, deadline=self._due())
            self._observe_compute(cpu, frames)
            if not await self._emit_frames(frames, work.generation):
                if work.generation != self._generation:
                    return
                self._utterance_over = False  # the tail hit the utterance limit: still end it
        await self._flushed()

    async def _flushed(self) -> None:
        seconds = self.clock.samples / OUTPUT_SAMPLE_RATE
        segments = self._segments_in_utterance
        self._segments_in_utterance = 0
        self._utterance_over = False
        await self.output.put(FlushedOut(segments=segments, audio_seconds=round(seconds, 3), stats=self.clock.stats()))
        self.clock = UtteranceClock()


@dataclass(frozen=True, slots=True)
class StepTiming:
    """Where one step's time went (seconds) and how much engine audio it made."""

    tts_seconds: float
    tts_audio_seconds: float
    voice_seconds: float
    resample_seconds: float
    #: CPU time for the whole step (:func:`step_cpu_clock`).
    cpu_seconds: float = 0.0


@dataclass
class _SegmentSteps:
    """One segment's engine stream, and whether it has ended (its trailing pause pushed)."""

    chunks: Iterator[np.ndarray]
    ended: bool = False


def _step(run: _SegmentSteps, chain: AudioChain, tts_rate: int) -> tuple[list[bytes], bool, StepTiming]:
    """Worker thread: one step of a segment, then back to the event loop with its frames.

    A step converts a block the voice stage holds ready, if it holds one (so each block goes
    out as soon as it is converted), else advances the engine one chunk through the chain. The
    segment is done when the engine has ended and the voice stage holds nothing ready.
    """
    cpu_clock = step_cpu_clock()
    cpu_before = cpu_clock()
    voice_before, resample_before = chain.voice_seconds, chain.resample_seconds
    chunk = None
    tts = 0.0
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
            frames = chain.end_segment()
        else:
            frames = chain.push(chunk)
    timing = StepTiming(
        tts_seconds=tts,
        tts_audio_seconds=0.0 if chunk is None else chunk.size / tts_rate,
        voice_seconds=chain.voice_seconds - voice_before,
        resample_seconds=chain.resample_seconds - resample_before,
        cpu_seconds=cpu_clock() - cpu_before,
    )
    return frames, run.ended and not chain.voice_ready(), timing


def step_cpu_clock() -> Callable[[], float]:
    """The clock a model step's CPU time is read from, in its worker thread: the thread's own
    (``time.thread_time``), or the whole process's (``time.process_time``) while the call runs
    alone on the workers. Then an engine may spread it over every core on threads of its own
    (Piper's wide sessions), which the thread's clock would not see; alone, nothing else but the
    event loop spends the process's CPU meanwhile."""
    return time.process_time if cores_for_this_call() > 1 else time.thread_time


def _thread_timed(fn: Callable[[], list[bytes]]) -> tuple[list[bytes], float]:
    """Worker thread: ``fn()`` and the CPU time spent on it (:func:`step_cpu_clock`)."""
    clock = step_cpu_clock()
    started = clock()
    frames = fn()
    return frames, clock() - started
