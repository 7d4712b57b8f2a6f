"""What the model workers run on a session's audio chain, in their threads, for the runner
(:class:`bridge.pipeline.SessionPipeline`): a segment's step, held speech converted, the
utterance finished, each timed into a :class:`~bridge.core.ChainResult`.

Moved out of :mod:`bridge.pipeline`; no logic changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from bridge.audio.chain import AudioChain
from bridge.cancel import CancelToken
from bridge.core import ChainResult, StepSegment, StepTiming
from bridge.tts.base import SpokenWord, TTSEngine
from bridge.words import TimedSpan, estimate_spoken_words
from bridge.workers import cores_for_this_call


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
