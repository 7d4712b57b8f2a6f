"""The contract between the pipeline and a text-to-speech engine.

An engine turns one segment of text into speech as a stream of float32 chunks at its own
sample rate. ``stream`` is a *blocking* generator: the pipeline runs it in a worker thread and
pulls one chunk at a time, so an engine that can produce audio before the whole segment is
synthesized (Piper's chunked decoder, Soprano's token loop) gets its first chunk to the listener
early. Engines check the :class:`~bridge.cancel.CancelToken` between chunks.

Engines are loaded once at start-up and shared by every session, so ``stream`` must be safe to
call from several threads at once (or serialise internally).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bridge.cancel import CancelToken


@dataclass(frozen=True, slots=True)
class SpokenWord:
    """Where one word of the engine's text sounds: ``text[start_char:end_char]`` (a run of
    non-space characters) fills samples ``[start, end)`` of the segment's speech, counted from
    the first sample the engine yields for the segment."""

    start_char: int
    end_char: int
    start: int
    end: int


class TTSError(RuntimeError):
    """An engine could not synthesize a segment (bad text, model fault). The session goes on."""


class TTSEngine(ABC):
    """Text → speech, streamed in chunks of mono float32 in [-1, 1] at :attr:`sample_rate`."""

    #: Short name used in settings (``tts = "piper"``) and in ``/health``.
    name: ClassVar[str]
    #: Whether :meth:`stream` takes ``speed=`` (a speaking rate the model itself applies, as
    #: Piper's length scale; engines without one ignore OpenAI's ``speed``).
    supports_speed: ClassVar[bool] = False
    #: Whether :meth:`stream` sizes its chunks by the listener's ``lead`` (see :meth:`stream`).
    paces_chunks: ClassVar[bool] = False
    #: Whether :meth:`stream` takes ``words=`` (a list it appends :class:`SpokenWord` s to, each
    #: before the chunk that holds the word's first sample; every word of the text once, in
    #: order). Engines without alignments get estimated word times from the pipeline instead.
    reports_words: ClassVar[bool] = False

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """The rate of the chunks :meth:`stream` yields."""

    @abstractmethod
    def load(self) -> None:
        """Load weights and warm up (first-call costs paid here, not by the first listener). Blocking."""

    @abstractmethod
    def stream(
        self, text: str, cancel: CancelToken, lead: Callable[[], float] | None = None
    ) -> Iterator[np.ndarray]:
        """Yield the speech for ``text`` as 1-D float32 chunks. Blocking; runs in a worker thread.

        Yields nothing for text with nothing to say (empty, punctuation only). Raises
        :class:`TTSError` for a fault confined to this text; checks ``cancel`` between chunks and
        simply stops when it is set. ``lead`` (optional, asked between chunks): the seconds of
        audio the session's listener still has; an engine may make larger, cheaper chunks when
        the listener has plenty (Piper does), or ignore it.
        """

    def synthesize(self, text: str) -> np.ndarray:
        """The whole segment at once (tests, ``/api/speak``, the naive baseline)."""
        chunks = list(self.stream(text, CancelToken()))
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages the voice speaks (``en-us``, ``ja`` …): text normalization writes words
        for these and romanizes (or skips) any script they cannot read. Default: English."""
        return ("en",)

    def info(self) -> dict[str, Any]:
        """What ``/health`` reports about this engine."""
        return {"name": self.name, "sample_rate": self.sample_rate, "languages": list(self.languages)}

    def close(self) -> None:
        """Release resources (threads, GPU memory). Default: nothing to release."""
