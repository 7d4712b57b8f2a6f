"""Wrappers around a real engine for fault injection and observation in tests.

They delegate the synthesis to the real (Piper) engine and only add what a test must
control: a failure on a marker word, a gate that holds a chunk, a chunk counter.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

from bridge.cancel import CancelToken
from bridge.tts.base import TTSEngine, TTSError


class WrappedEngine(TTSEngine):
    name = "wrapped"

    def __init__(self, inner: TTSEngine) -> None:
        self.inner = inner
        self.chunks = 0
        self.calls: list[str] = []

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    def load(self) -> None:
        self.inner.load()

    def stream(self, text: str, cancel: CancelToken) -> Iterator[np.ndarray]:
        self.calls.append(text)
        for chunk in self.inner.stream(text, cancel):
            self.chunks += 1
            yield chunk


class FailingEngine(WrappedEngine):
    """Raises TTSError for any segment containing ``marker``."""

    def __init__(self, inner: TTSEngine, marker: str = "BOOM") -> None:
        super().__init__(inner)
        self.marker = marker

    def stream(self, text: str, cancel: CancelToken) -> Iterator[np.ndarray]:
        if self.marker in text:
            raise TTSError(f"injected fault in {text!r}")
        yield from super().stream(text, cancel)


class GatedEngine(WrappedEngine):
    """Holds every chunk after the first until the test opens the gate."""

    def __init__(self, inner: TTSEngine) -> None:
        super().__init__(inner)
        self.gate = threading.Event()
        self.waiting = threading.Event()  # a worker thread is held at the gate
        self.released = threading.Event()  # ... and has since returned its chunk

    def stream(self, text: str, cancel: CancelToken) -> Iterator[np.ndarray]:
        for index, chunk in enumerate(super().stream(text, cancel)):
            if index >= 1:
                self.waiting.set()
                self.gate.wait(timeout=30)
                self.released.set()
            yield chunk
