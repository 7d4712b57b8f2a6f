"""Fake engines for the pipeline runner's tests: no models, no sleeps.

The runner (bridge/pipeline.py) only moves data between the core, the model workers and the
output queue; these stand-ins make that movement observable and controllable: a tone engine
that counts its chunks and can hold one at a gate, and a voice stage that holds speech between
segments until the runner asks when it is due.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from bridge.cancel import CancelToken
from bridge.config import Settings
from bridge.engines import Engines
from bridge.listener import ListenerClock
from bridge.tts.base import TTSEngine
from bridge.vc.base import VoiceConverter, VoiceError, VoiceStream


class FakeEngine(TTSEngine):
    """``seconds_per_word`` of a quiet tone per word, in chunks of ``chunk_seconds``; checks the
    cancel token between chunks. ``gate_from``: chunks from this index on wait for :attr:`gate`."""

    name = "fake"
    supports_speed = True
    paces_chunks = True

    def __init__(self, seconds_per_word: float = 0.2, chunk_seconds: float = 0.05, gate_from: int | None = None) -> None:
        self.seconds_per_word = seconds_per_word
        self.chunk_seconds = chunk_seconds
        self.gate_from = gate_from
        self.gate = threading.Event()
        self.waiting = threading.Event()  # a worker thread is held at the gate
        self.released = threading.Event()  # ... and has since gone on
        self.calls: list[str] = []
        self.chunks = 0
        self.active = 0  # streams open (started and neither ended nor closed)
        self.leads: list[float | None] = []  # the listener's lead when each stream started
        self.speeds: list[float] = []

    @property
    def sample_rate(self) -> int:
        return 24000

    def load(self) -> None:
        pass

    def stream(
        self, text: str, cancel: CancelToken, lead: Callable[[], float] | None = None, speed: float = 1.0
    ) -> Iterator[np.ndarray]:
        self.calls.append(text)
        self.leads.append(lead() if lead is not None else None)
        self.speeds.append(speed)
        total = int(len(text.split()) * self.seconds_per_word / speed * self.sample_rate)
        step = int(self.chunk_seconds * self.sample_rate)
        self.active += 1
        try:
            for index, start in enumerate(range(0, total, step)):
                if cancel.cancelled:
                    return
                if self.gate_from is not None and index >= self.gate_from:
                    self.waiting.set()
                    self.gate.wait(timeout=30)
                    self.released.set()
                self.chunks += 1
                yield np.full(min(step, total - start), 0.1, np.float32)
        finally:
            self.active -= 1  # also when the stream is dropped half-way (closed)


class HoldingStream(VoiceStream):
    """Passes speech through unchanged, except that once input pauses (a segment ended) it
    holds what came since, until the runner has asked when that is due (it says: now)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.held: list[np.ndarray] = []
        self.paused = False
        self.asked = False
        self.converted_held = 0

    @property
    def output_rate(self) -> int:
        return self.rate

    def push(self, audio: np.ndarray) -> np.ndarray:
        if audio.size:
            self.paused = self.asked = False
            self.held.append(audio)  # held until the segment ends and is due, or the flush
            return np.zeros(0, np.float32)
        if self.ready():
            self.converted_held += 1
            return self.flush()
        return np.zeros(0, np.float32)

    def flush(self) -> np.ndarray:
        out = np.concatenate(self.held) if self.held else np.zeros(0, np.float32)
        self.held = []
        return out

    def input_paused(self) -> None:
        self.paused = True

    def held_due_in(self) -> float | None:
        if not (self.paused and self.held):
            return None
        self.asked = True
        return 0.0

    def ready(self) -> bool:
        return self.paused and self.asked and bool(self.held)


class FakeVoices(VoiceConverter):
    """Voices ``keeper`` (a :class:`HoldingStream`) and ``broken`` (refuses to load)."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.streams: list[HoldingStream] = []

    def voices(self) -> list[str]:
        return ["broken", "keeper"]

    def open_stream(
        self, voice: str, input_rate: int, pitch_shift: float = 0.0, *, listener: ListenerClock | None = None
    ) -> VoiceStream:
        self.opened.append(voice)
        if voice != "keeper":
            raise VoiceError(f"voice {voice!r} could not be loaded")
        stream = HoldingStream(input_rate)
        self.streams.append(stream)
        return stream


def fake_engines(tts: TTSEngine | None = None, voice: VoiceConverter | None = None, **overrides: Any) -> Engines:
    settings = Settings().unchecked(port=0, **overrides)
    engines = Engines(settings=settings, tts=tts or FakeEngine(), voice=voice)
    engines.loaded = True
    return engines
