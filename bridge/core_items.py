"""What :class:`bridge.core.UtteranceCore` hands out and keeps per session: the output items
for the client (:data:`OutputItem`), the session's options and the utterance's timings.

Plain data, no logic that decides; moved out of :mod:`bridge.core` (which re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.audio.formats import PcmFormat
from bridge.config import OUTPUT_SAMPLE_RATE
from bridge.words import WordTime

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
class WordsOut:
    """The times of words of segment ``segment`` (sent before the audio they describe):
    seconds from the first sample of the utterance's audio (:mod:`bridge.words`)."""

    segment: int
    words: tuple[WordTime, ...]


@dataclass(frozen=True, slots=True)
class FlushedOut:
    """Everything up to a flush has been handed out; ``stats`` are the utterance's timings.
    ``cut``: the utterance limit stopped it early."""

    segments: int
    audio_seconds: float
    stats: dict[str, float] = field(default_factory=dict)
    cut: bool = False


@dataclass(frozen=True, slots=True)
class CancelledOut:
    """A cancel dropped the rest of the utterance. ``played_seconds``: the client's playback
    position it sent with the cancel (None: it sent none)."""

    played_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class ErrorOut:
    message: str
    kind: str = "error"


OutputItem = AudioOut | SegmentOut | WordsOut | FlushedOut | CancelledOut | ErrorOut


@dataclass(frozen=True, slots=True)
class OutputEntry:
    """An output item and the generation it belongs to (stale once a cancel moved on)."""

    generation: int
    item: OutputItem


# ----------------------------------------------------------------------------- session data
@dataclass
class SessionOptions:
    """What a client may change about its session."""

    events: bool = False
    voice: str | None = None
    pitch_shift: float = 0.0
    format: PcmFormat = "f32le"
    #: Speaking rate for engines that take one (``TTSEngine.supports_speed``); 1.0: the voice's own.
    speed: float = 1.0
    #: Word timing events (``words``); the core also times words while ``events`` is on, for
    #: what was heard at a cancel.
    words: bool = False

    @property
    def times_words(self) -> bool:
        """Whether segments' words are timed (:class:`WordsOut`)."""
        return self.words or self.events


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

    def add(self, timing: StepTiming) -> None:
        self.tts_seconds += timing.tts_seconds
        self.tts_audio_seconds += timing.tts_audio_seconds
        self.voice_seconds += timing.voice_seconds
        self.resample_seconds += timing.resample_seconds


@dataclass(frozen=True, slots=True)
class StepTiming:
    """Where one step's time went (seconds) and how much engine audio it made."""

    tts_seconds: float = 0.0
    tts_audio_seconds: float = 0.0
    voice_seconds: float = 0.0
    resample_seconds: float = 0.0
    #: The worker thread's CPU time for the whole step (``time.thread_time``).
    cpu_seconds: float = 0.0
