"""The contract between the pipeline and the voice-conversion stage.

A :class:`VoiceConverter` is loaded once per process and shared by all sessions. Each session
utterance opens a :class:`VoiceStream`, which holds the per-session state that streaming
conversion needs (left context, pitch cache, crossfade tail) so that speech converted chunk by
chunk, across segment boundaries, joins without clicks. Every method of a stream is blocking
and runs in a worker thread; one stream is only ever used by one thread at a time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from bridge.listener import ListenerClock


class VoiceError(RuntimeError):
    """Voice conversion failed for this input (unknown voice, bad checkpoint, model fault)."""


class VoiceStream(ABC):
    """Converts one session's speech, as it arrives, into the character's voice."""

    @property
    @abstractmethod
    def output_rate(self) -> int:
        """Sample rate of the arrays :meth:`push` and :meth:`flush` return."""

    @abstractmethod
    def push(self, audio: np.ndarray) -> np.ndarray:
        """Take mono float32 speech at the rate the stream was opened with; return what is ready."""

    @abstractmethod
    def flush(self) -> np.ndarray:
        """End of utterance: return everything still held back. The stream may be reused after."""

    def set_pitch_shift(self, semitones: float) -> None:
        """Change the pitch shift for audio pushed from now on."""

    def ready(self) -> bool:
        """Whether input already pushed holds work that ``push`` (of no new audio) would turn
        into output now. A stream may convert one block per ``push`` so that each block goes
        out as soon as it is ready; the caller then pushes nothing until this is false."""
        return False

    def input_paused(self) -> None:
        """No more input for a while (a segment ended; the next may wait for text). New input
        ends the pause. Default: nothing to do."""

    def output_delay_seconds(self) -> float:
        """How much later than it went in a sound comes out, on the stream's own timeline (not
        the time conversion takes): word timings shift by it. A stream whose output sample ``n``
        holds input time ``n / rate`` (RVC's blocks and crossfades keep that) says 0."""
        return 0.0

    def held_due_in(self) -> float | None:
        """While input is paused: seconds until the input held back (for a larger block) must
        be converted so the listener does not run dry; then ``ready`` turns true. None: nothing
        held, or nothing to wait for."""
        return None


class VoiceConverter(ABC):
    """Loads voices and opens per-session streams."""

    @abstractmethod
    def voices(self) -> list[str]:
        """Names of the voices that :meth:`open_stream` accepts."""

    @abstractmethod
    def open_stream(
        self, voice: str, input_rate: int, pitch_shift: float = 0.0, *, listener: ListenerClock | None = None
    ) -> VoiceStream:
        """A new stream converting speech at ``input_rate`` into ``voice``. Raises VoiceError.
        ``listener``: the session's listener clock, for streams that pace their work by it."""

    def warm(self, voice: str) -> None:
        """Load ``voice`` and the models it shares before the first session needs them, so
        that a server's default voice costs no start-up time in the first utterance."""

    def info(self) -> dict[str, Any]:
        return {"voices": self.voices()}

    def close(self) -> None:
        """Release models and device memory."""
