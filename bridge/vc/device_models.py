"""The content encoder and pitch estimator, shared by every voice on one device.

Models are only read during inference, so one instance per (device, precision, weights) serves
every voice and every session (:func:`shared_device_models`). A per-device semaphore bounds how
many blocks run at once (``rvc_device_concurrency``; on a CPU one at a time is fastest).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from bridge.vc.base import VoiceError

log = logging.getLogger(__name__)


class ContentModel(Protocol):
    def extract(self, audio16k: torch.Tensor, version: str) -> torch.Tensor: ...


class PitchModel(Protocol):
    def f0(self, audio16k: np.ndarray) -> np.ndarray: ...


class DeviceModels:
    """The content encoder and pitch estimator shared by every voice on one device.

    Both are loaded lazily, once (guarded by a lock); ``compute`` bounds how many blocks run
    at once on the device.
    """

    def __init__(
        self,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        *,
        autocast: torch.dtype | None = None,
        content_loader: Callable[[], ContentModel] | None = None,
        pitch_loader: Callable[[], PitchModel] | None = None,
        concurrency: int = 1,
    ) -> None:
        self.device = device
        self.dtype = dtype
        self.autocast = autocast
        self._content_loader = content_loader
        self._pitch_loader = pitch_loader
        self._content: ContentModel | None = None
        self._pitch: PitchModel | None = None
        self._lock = threading.Lock()
        self.compute = threading.BoundedSemaphore(max(1, concurrency))

    @property
    def content(self) -> ContentModel:
        return self._loaded("_content", self._content_loader, "content encoder")

    @property
    def pitch(self) -> PitchModel:
        return self._loaded("_pitch", self._pitch_loader, "pitch estimator")

    def _loaded(self, attr: str, loader: Callable[[], Any] | None, what: str) -> Any:
        """``self.<attr>``, loaded on first use, once however many threads ask at the same time."""
        model = getattr(self, attr)
        if model is None:
            with self._lock:
                model = getattr(self, attr)
                if model is None:
                    if loader is None:
                        raise VoiceError(f"no {what} configured")
                    model = loader()
                    setattr(self, attr, model)
        return model

    def autocast_context(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)

    def close(self) -> None:
        with self._lock:
            self._content = None
            self._pitch = None


_SHARED_LOCK = threading.Lock()
_SHARED_MODELS: dict[tuple[Any, ...], DeviceModels] = {}


def shared_device_models(
    device: torch.device,
    dtype: torch.dtype,
    autocast: torch.dtype | None,
    content_path: Path,
    pitch_method: str,
    models_dir: Path,
    *,
    pitch_fallback: bool = True,
    concurrency: int = 1,
) -> DeviceModels:
    """One :class:`DeviceModels` per (device, precision, weights): converters share them."""
    key = (str(device), dtype, autocast, str(content_path), pitch_method, str(models_dir))
    with _SHARED_LOCK:
        models = _SHARED_MODELS.get(key)
        if models is None:

            def content() -> ContentModel:
                from bridge.vc.content import ContentEncoder

                log.info("loading content encoder %s on %s", content_path, device)
                return ContentEncoder.load(content_path, device, dtype)

            def pitch() -> PitchModel:
                from bridge.vc.pitch import load_pitch_estimator

                return load_pitch_estimator(pitch_method, models_dir, device, fallback=pitch_fallback)

            models = DeviceModels(
                device, dtype, autocast=autocast, content_loader=content, pitch_loader=pitch, concurrency=concurrency
            )
            _SHARED_MODELS[key] = models
        return models
