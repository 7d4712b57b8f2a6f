"""The models a server process holds: one TTS engine, an optional voice converter, and the
model workers where all model work runs, most urgent first (never on the event loop)."""

from __future__ import annotations

import gc
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge.config import Settings
from bridge.scheduler import StartSlots
from bridge.tts.base import TTSEngine
from bridge.vc.base import VoiceConverter, VoiceError
from bridge.workers import ModelWorkers, available_cores

log = logging.getLogger(__name__)


def create_tts(settings: Settings) -> TTSEngine:
    """The engine named by ``settings.engines.tts`` (not yet loaded), built from its section."""
    if settings.engines.tts == "piper":
        from bridge.tts.piper import PiperEngine

        return PiperEngine.from_settings(settings.piper)
    if settings.engines.tts == "soprano":
        from bridge.tts.soprano import SopranoEngine  # type: ignore[import-not-found,unused-ignore]

        return SopranoEngine.from_settings(settings.soprano, settings.engines)
    raise ValueError(f"unknown TTS engine {settings.engines.tts!r}")


def create_voice_converter(settings: Settings) -> VoiceConverter | None:
    """The RVC stage, when voices are installed and the RVC extra is available; else None."""
    voices_dir = settings.rvc.voices_folder(settings.engines.models_dir)
    has_voices = voices_dir.is_dir() and any(p.is_dir() for p in voices_dir.iterdir())
    if not has_voices and settings.rvc.default_voice is None:
        return None
    try:
        from bridge.vc.converter import RVCConverter  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        log.warning("voices are installed but the RVC stage is unavailable: %s", exc)
        return None
    return RVCConverter(settings.rvc, settings.engines)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` means memory ran out: MemoryError, torch's (CUDA) OutOfMemoryError, or
    an allocation failure reported as text (onnxruntime, CUDA runtime errors)."""
    if isinstance(exc, MemoryError):
        return True
    if any(cls.__name__ == "OutOfMemoryError" for cls in type(exc).__mro__):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "failed to allocate memory" in text


def free_accelerator_memory() -> None:
    """Return cached GPU memory to the device (torch's caching allocator), if torch is in use."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and cuda.is_available() and cuda.is_initialized():
        cuda.empty_cache()


@dataclass
class Engines:
    """Everything model-related, shared by all sessions."""

    settings: Settings
    tts: TTSEngine
    voice: VoiceConverter | None = None
    executor: ModelWorkers = field(init=False)
    loaded: bool = False
    #: The CPU seconds a second of the default voice's audio costs (the server sets it to its
    #: measured cost, :mod:`bridge.load`); spaces simultaneous starts (:meth:`start_slot`).
    cost_per_audio_second: Callable[[], float] | None = None
    start_slots: StartSlots = field(init=False)

    def __post_init__(self) -> None:
        scheduler = self.settings.scheduler
        self.executor = ModelWorkers(
            scheduler.synthesis_workers or available_cores(), name="model", nice=scheduler.worker_nice
        )
        self.start_slots = StartSlots(scheduler.start_burst or self.executor.workers + 1)
        self._slots_lock = threading.Lock()

    def start_spacing(self) -> float:
        """Seconds between the first-audio deadlines of utterances starting together beyond the
        burst: the setting, else what ``start_audio_seconds`` of audio costs on the workers."""
        scheduler = self.settings.scheduler
        if scheduler.start_spacing_ms:
            return scheduler.start_spacing_ms / 1000
        measured = self.cost_per_audio_second
        cost = measured() if measured is not None else self.settings.capacity.prior_cost_per_audio_second
        return cost * scheduler.start_audio_seconds / self.executor.workers

    def start_slot(self, wanted: float) -> float:
        """An utterance's first-audio deadline, for one that wants ``wanted`` (any session's
        thread may ask)."""
        spacing = self.start_spacing()
        with self._slots_lock:
            return self.start_slots.slot(wanted, spacing)

    @classmethod
    def from_settings(cls, settings: Settings) -> Engines:
        return cls(settings=settings, tts=create_tts(settings), voice=create_voice_converter(settings))

    def load(self) -> None:
        """Load and warm every model. Blocking: call it from a thread at start-up."""
        self.tts.load()
        voice = self.settings.rvc.default_voice
        if self.voice is not None and voice:
            try:
                self.voice.warm(voice)
            except Exception as exc:  # noqa: BLE001 - not fatal: sessions get the error and the bare voice
                log.warning(
                    "default voice %r could not be loaded: %s", voice, exc, exc_info=not isinstance(exc, VoiceError)
                )
        self.loaded = True

    def free_memory(self) -> None:
        """After an out-of-memory fault: collect garbage, let engines drop caches, empty the
        GPU cache. Blocking (a full collection): run it in the executor."""
        gc.collect()
        for engine in (self.tts, self.voice):
            free = getattr(engine, "free_memory", None)
            if callable(free):
                free()
        free_accelerator_memory()

    def voices(self) -> list[str]:
        return self.voice.voices() if self.voice is not None else []

    def info(self) -> dict[str, Any]:
        return {
            "loaded": self.loaded,
            "tts": self.tts.info(),
            "voice_conversion": self.voice.info() if self.voice is not None else None,
            # The setting ("auto" …); /health's top-level "device" is what the engines resolved.
            "device_setting": self.settings.engines.device,
        }

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.tts.close()
        if self.voice is not None:
            self.voice.close()
