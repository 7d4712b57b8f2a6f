"""Wrappers around a real engine for fault injection and observation in tests.

They delegate the synthesis to the real (Piper) engine and only add what a test must
control: a failure on a marker word, a gate that holds a chunk, a chunk counter. Besides: a
deterministic tone voice, stand-ins that only report their device, and a condition wait.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from bridge.cancel import CancelToken
from bridge.tts.base import TTSEngine, TTSError
from bridge.vc.base import VoiceConverter, VoiceError, VoiceStream


class WrappedEngine(TTSEngine):
    name = "wrapped"

    def __init__(self, inner: TTSEngine) -> None:
        self.inner = inner
        self.chunks = 0
        self.calls: list[str] = []
        self.active = 0  # streams begun and not yet ended or closed
        self._lock = threading.Lock()

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    def load(self) -> None:
        self.inner.load()

    def stream(self, text: str, cancel: CancelToken, lead=None) -> Iterator[np.ndarray]:  # noqa: ANN001
        self.calls.append(text)
        with self._lock:
            self.active += 1
        try:
            for chunk in self.inner.stream(text, cancel):
                self.chunks += 1
                yield chunk
        finally:
            with self._lock:
                self.active -= 1


class FailingEngine(WrappedEngine):
    """Raises TTSError for any segment containing ``marker``."""

    def __init__(self, inner: TTSEngine, marker: str = "BOOM") -> None:
        super().__init__(inner)
        self.marker = marker

    def stream(self, text: str, cancel: CancelToken, lead=None) -> Iterator[np.ndarray]:  # noqa: ANN001
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

    def stream(self, text: str, cancel: CancelToken, lead=None) -> Iterator[np.ndarray]:  # noqa: ANN001
        for index, chunk in enumerate(super().stream(text, cancel)):
            if index >= 1:
                self.waiting.set()
                self.gate.wait(timeout=30)
                self.released.set()
            yield chunk


class RaisingEngine(WrappedEngine):
    """Raises ``make_error()`` (any exception) for segments containing ``marker``, after
    ``after_chunks`` chunks of real audio (0: before any)."""

    def __init__(self, inner: TTSEngine, make_error, marker: str = "BOOM", after_chunks: int = 0) -> None:  # type: ignore[no-untyped-def]
        super().__init__(inner)
        self.make_error = make_error
        self.marker = marker
        self.after_chunks = after_chunks
        self.raised = 0

    def stream(self, text: str, cancel: CancelToken, lead=None) -> Iterator[np.ndarray]:  # noqa: ANN001
        if self.marker not in text:
            yield from super().stream(text, cancel)
            return
        for index, chunk in enumerate(super().stream(text, cancel)):
            if index >= self.after_chunks:
                break
            yield chunk
        self.raised += 1
        raise self.make_error()


class ToneEngine(TTSEngine):
    """A cheap stand-in voice: a tone of ``seconds_per_word`` per word, in chunks that each take
    ``chunk_delay`` seconds of (GIL-free) sleep, checking the cancel token between chunks.
    For tests about the server's plumbing that must not spend CPU on real synthesis."""

    name = "tone"

    def __init__(self, seconds_per_word: float = 0.3, chunk_seconds: float = 0.1, chunk_delay: float = 0.01) -> None:
        self.seconds_per_word = seconds_per_word
        self.chunk_seconds = chunk_seconds
        self.chunk_delay = chunk_delay
        self.started = 0
        self.finished = 0
        self.active = 0
        self.chunks = 0
        self._lock = threading.Lock()

    @property
    def sample_rate(self) -> int:
        return 24000

    def load(self) -> None:
        pass

    def stream(self, text: str, cancel: CancelToken, lead=None) -> Iterator[np.ndarray]:  # noqa: ANN001
        import time

        with self._lock:
            self.started += 1
            self.active += 1
        try:
            total = int(len(text.split()) * self.seconds_per_word * self.sample_rate)
            step = int(self.chunk_seconds * self.sample_rate)
            t = np.arange(step, dtype=np.float32) / self.sample_rate
            done = 0
            while done < total:
                if cancel.cancelled:
                    return
                time.sleep(self.chunk_delay)
                n = min(step, total - done)
                with self._lock:
                    self.chunks += 1
                yield (0.3 * np.sin(2 * np.pi * 220 * (t[:n] + done / self.sample_rate))).astype(np.float32)
                done += n
        finally:
            with self._lock:
                self.active -= 1
                self.finished += 1


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``condition``: a liveness wait, never the assertion (the limit only guards a hang)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.01)


class AcceleratedTone(ToneEngine):
    """A tone voice that says it runs on ``device`` (None: not resolved yet, as Soprano before
    it has loaded)."""

    def __init__(self, device: str | None) -> None:
        super().__init__()
        self.device = device

    def info(self) -> dict[str, Any]:
        return {**super().info(), "device": self.device}


class StubConverter(VoiceConverter):
    """A voice conversion stage that only reports where it runs."""

    def __init__(self, device: str) -> None:
        self.device = device

    def voices(self) -> list[str]:
        return ["alice"]

    def open_stream(self, voice: str, input_rate: int, pitch_shift: float = 0.0, *, listener=None) -> VoiceStream:
        raise VoiceError("not for streaming")

    def info(self) -> dict[str, Any]:
        return {**super().info(), "device": self.device}
