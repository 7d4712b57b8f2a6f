"""What :class:`bridge.core.UtteranceCore` asks the model workers to do (:data:`Command`),
what they give back (:class:`ChainResult`), and the notices it hands the runner (:data:`Notice`).

Plain data, no logic that decides; moved out of :mod:`bridge.core` (which re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge.audio.formats import PcmFormat
from bridge.core_items import StepTiming
from bridge.engines import is_out_of_memory
from bridge.listener import ListenerClock
from bridge.segmenter import Boundary
from bridge.tts.base import TTSError
from bridge.vc.base import VoiceError
from bridge.words import TimedSpan

# ----------------------------------------------------------------------------- commands
@dataclass(frozen=True, slots=True)
class SegmentStart:
    """What the first step of a segment sets up: the chain's pause shaping and pitch, and the
    engine's stream of the segment's text (at ``speed``, paced by ``listener``'s lead)."""

    boundary: Boundary
    pitch_shift: float | None
    speed: float = 1.0
    listener: ListenerClock | None = None
    #: Time the segment's words (``ChainResult.words``).
    words: bool = False


@dataclass(frozen=True, slots=True)
class OpenChain:
    """Open the utterance's audio chain; the result is the chain (opaque to the core)."""

    generation: int
    deadline: float
    #: The RVC voice; None: the engine's bare voice.
    voice: str | None
    pitch_shift: float
    format: PcmFormat
    #: The utterance's listener clock, for a voice stage that paces its blocks by it.
    listener: ListenerClock


@dataclass(eq=False)
class EngineSlot:
    """Where the runner keeps a segment's engine stream between its steps (opaque to the core).

    The core owns the slot for as long as the segment is spoken and lets go of it when the
    segment ends or is dropped, so an abandoned stream is closed then; results never carry it.
    """

    stream: Any = None


@dataclass(frozen=True, slots=True)
class StepSegment:
    """One step of a segment through the chain (result: :class:`ChainResult`)."""

    generation: int
    deadline: float
    chain: Any
    segment_id: int
    #: The text the engine speaks (normalized).
    text: str
    #: Set on the segment's first step: begin it on the chain and open the engine's stream.
    start: SegmentStart | None
    #: The segment's engine stream (the first step puts it there).
    slot: EngineSlot


@dataclass(frozen=True, slots=True)
class ConvertHeld:
    """Convert what the voice stage holds between segments, if it is ready (:class:`ChainResult`,
    ``done`` when nothing more is ready)."""

    generation: int
    deadline: float
    chain: Any


@dataclass(frozen=True, slots=True)
class FinishUtterance:
    """Drain the chain at the end of the utterance (:class:`ChainResult`)."""

    generation: int
    deadline: float
    chain: Any


@dataclass(frozen=True, slots=True)
class FreeMemory:
    """Memory ran out: let the engines free what they can (result ignored)."""

    generation: int
    deadline: float


Command = OpenChain | StepSegment | ConvertHeld | FinishUtterance | FreeMemory


@dataclass(frozen=True, slots=True)
class ChainResult:
    """What a step on the chain gave: frames in the chain's format, whether the segment (or
    the held speech) is done, where the time went, and how many 48 kHz samples the chain made
    (``samples_out``; the frames' count by the chain's format, up to a partial frame)."""

    frames: list[bytes] = field(default_factory=list)
    done: bool = True
    timing: StepTiming = field(default_factory=StepTiming)
    samples: int = 0
    #: ConvertHeld only: the voice stage had nothing ready, so nothing was converted. (A block
    #: that was converted may still give no frame: the framer keeps what fills no whole frame.)
    idle: bool = False
    #: StepSegment with ``words``: spoken words placed in the chain's output by this step,
    #: from the engine's alignment, and by the estimate rule (``bridge.words``).
    words: tuple[TimedSpan, ...] = ()
    estimated_words: tuple[TimedSpan, ...] = ()


# ----------------------------------------------------------------------------- notices
@dataclass(frozen=True, slots=True)
class SegmentLatency:
    """A segment's first audio came ``seconds`` after the segment was cut."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Fault:
    """Something failed and was reported to the client as an ``ErrorOut`` of ``kind``.

    ``where`` and ``error`` are for the log; ``where`` is None for a fault that is only counted
    (a refused voice: the message says it all).
    """

    kind: str
    where: str | None = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class LimitReached:
    """The utterance reached ``max_utterance_seconds``; the rest of it is dropped."""

    seconds: float


@dataclass(frozen=True, slots=True)
class StopEngine:
    """Engine work of the current stream is no longer wanted (cancel, utterance limit)."""


@dataclass(frozen=True, slots=True)
class UtteranceCancelled:
    """A cancel dropped the utterance (the runner logs it with what the output queue dropped)."""


Notice = SegmentLatency | Fault | LimitReached | StopEngine | UtteranceCancelled


def fault_report(exc: BaseException, where: str) -> tuple[str, str]:
    """(kind, message) of the ``ErrorOut`` for a fault confined to ``where``."""
    if is_out_of_memory(exc):
        return "oom", f"{where}: out of memory on the synthesis device; skipped"
    if isinstance(exc, TTSError):
        return "tts", f"{where}: {exc}"
    if isinstance(exc, VoiceError):
        return "voice", f"{where}: {exc}"
    return "internal", f"{where}: internal error ({type(exc).__name__})"
