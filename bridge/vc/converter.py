"""The voice stage: voices found in a folder, loaded once per device, streams opened on them.

:class:`RVCConverter` is what the server holds (:class:`~bridge.vc.base.VoiceConverter`): it
resolves the device, precision and per-device defaults once, shares the device's models
(:mod:`bridge.vc.device_models`) and voices (:mod:`bridge.vc.cache`) between sessions, and opens
one :class:`~bridge.vc.stream.RVCStream` per session.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bridge.cancel import CancelToken
from bridge.config import EngineSettings, RVCSettings
from bridge.listener import ListenerClock
from bridge.vc.base import VoiceConverter, VoiceError
from bridge.vc.cache import VoiceCache
from bridge.vc.device import DeviceDefaults, resolve_device, resolve_precision
from bridge.vc.device_models import DeviceModels, shared_device_models
from bridge.vc.layout import HOP_16K, SR_16K, ConversionParams, StreamLayout
from bridge.vc.pacing import BlockPacer
from bridge.vc.signal import mono
from bridge.vc.stream import RVCStream
from bridge.vc.voice import RVCVoice, load_voice


class RVCConverter(VoiceConverter):
    """The RVC stage: voices from ``<voices dir>/<name>/`` on one device, shared by sessions.

    ``models`` replaces the shared per-device models (tests and benchmarks inject stubs or
    randomly initialised full-size models through it).
    """

    def __init__(self, rvc: RVCSettings, engines: EngineSettings, *, models: DeviceModels | None = None) -> None:
        self.rvc = rvc
        self.voices_dir = rvc.voices_folder(engines.models_dir)
        device = models.device if models is not None else resolve_device(engines.device)
        defaults = DeviceDefaults.for_device(device)
        self.pitch_method = defaults.pitch_method if rvc.pitch_method == "auto" else rvc.pitch_method
        if models is None:
            dtype, autocast = resolve_precision(rvc.precision, device)
            from bridge.vc.content import default_content_model_path

            content_path = rvc.content_model or default_content_model_path(engines.models_dir)
            models = shared_device_models(
                device, dtype, autocast, Path(content_path), self.pitch_method, engines.models_dir,
                pitch_fallback=rvc.pitch_fallback, concurrency=rvc.device_concurrency,
            )  # fmt: skip
        self.models = models
        if rvc.threads > 0 and models.device.type == "cpu":
            torch.set_num_threads(rvc.threads)
        self.params = ConversionParams(
            index_rate=rvc.index_rate,
            protect=rvc.protect,
            rms_mix_rate=rvc.rms_mix_rate,
            noise_scale=rvc.noise_scale,
            speaker_id=rvc.speaker_id,
        )
        block_seconds = defaults.block_seconds if rvc.block_seconds is None else rvc.block_seconds
        first_block_seconds = (
            defaults.first_block_seconds if rvc.first_block_seconds is None else rvc.first_block_seconds
        )
        self.layout = StreamLayout.from_seconds(
            block=block_seconds,
            crossfade=rvc.crossfade_seconds,
            context=defaults.context_seconds if rvc.context_seconds is None else rvc.context_seconds,
            lookahead=rvc.lookahead_seconds,
            start_context=rvc.start_context_seconds,
            step=rvc.block_step_seconds,
            first_block=min(first_block_seconds, block_seconds),
        )
        self.paced = rvc.paced_blocks
        self.require_index = rvc.require_index
        self.fold = rvc.fold_weight_norm
        self.cache = VoiceCache(rvc.voice_cache, self._load_voice)

    # ---- voices ----------------------------------------------------------------------------

    def voices(self) -> list[str]:
        if not self.voices_dir.is_dir():
            return []
        return sorted(
            d.name for d in self.voices_dir.iterdir() if d.is_dir() and not d.name.startswith(".") and any(d.glob("*.pth"))
        )

    def voice_files(self, name: str) -> tuple[Path, Path | None]:
        """The voice's ``.pth`` and its ``.index`` (``added_*`` preferred), or VoiceError."""
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise VoiceError(f"bad voice name {name!r}")
        directory = self.voices_dir / name
        if not directory.is_dir():
            known = ", ".join(self.voices()) or "none"
            raise VoiceError(f"unknown voice {name!r} (voices in {self.voices_dir}: {known})")
        pths = sorted(directory.glob("*.pth"))
        if not pths:
            raise VoiceError(f"voice {name!r}: no .pth file in {directory}")
        if len(pths) > 1:
            raise VoiceError(f"voice {name!r}: {len(pths)} .pth files in {directory} ({', '.join(p.name for p in pths)}); keep one")
        indexes = sorted(
            (p for p in directory.glob("*.index") if not p.name.startswith("trained_")),
            key=lambda p: (not p.name.startswith("added_"), p.name),
        )
        return pths[0], (indexes[0] if indexes else None)

    def load_voice(self, name: str) -> RVCVoice:
        """The voice from the cache, loading it (once) if needed."""
        return self.cache.get(name)

    def _load_voice(self, name: str) -> RVCVoice:
        pth, index_path = self.voice_files(name)
        return load_voice(
            name, pth, self.models, index_path=index_path, use_index=self.params.index_rate > 0,
            require_index=self.require_index, fold=self.fold,
        )  # fmt: skip

    # ---- streams ---------------------------------------------------------------------------

    def open_stream(
        self,
        voice: str,
        input_rate: int,
        pitch_shift: float = 0.0,
        *,
        cancel: CancelToken | None = None,
        params: ConversionParams | None = None,
        layout: StreamLayout | None = None,
        listener: ListenerClock | None = None,
    ) -> RVCStream:
        """A stream into ``voice``. ``listener``: the session's listener clock, which paced
        blocks are sized by (see bridge.vc.pacing); None: the stream keeps one of its own."""
        loaded = self.load_voice(voice)
        params = params or self.params
        if not 0 <= params.speaker_id < loaded.speakers:
            raise VoiceError(f"voice {voice!r} has {loaded.speakers} speaker(s); speaker id {params.speaker_id} is out of range")
        layout = layout or self.layout
        pacer = None
        if self.paced:
            pacer = BlockPacer(
                layout.first_block or layout.block, layout.block, layout.context, step=layout.step, listener=listener
            )
        return RVCStream(
            loaded, input_rate, pitch_shift=pitch_shift, params=params, layout=layout, cancel=cancel, pacer=pacer
        )

    def convert(
        self, voice: str, audio: np.ndarray, input_rate: int, pitch_shift: float = 0.0,
        *, params: ConversionParams | None = None,
    ) -> tuple[np.ndarray, int]:  # fmt: skip
        """Whole-utterance conversion (short clips): ``(audio at the model rate, rate)``."""
        loaded = self.load_voice(voice)
        x = mono(audio)
        if input_rate != SR_16K:
            import soxr

            x = soxr.resample(x, input_rate, SR_16K, quality="HQ").astype(np.float32)
        out = loaded.convert(x, params or self.params, pitch_shift=pitch_shift, layout=self.layout)
        return out, loaded.sample_rate

    def warm(self, voice: str) -> None:
        # A short clip through the whole chain loads the voice, the content encoder and the
        # pitch estimator, and runs each once (first calls allocate and pick kernels).
        self.convert(voice, np.zeros(SR_16K // 2, np.float32), SR_16K)
        # Then one streaming block of each size the streams will use: kernels are set up per
        # input shape, and a set-up in the middle of an utterance is a gap (StreamLayout.step).
        loaded = self.load_voice(voice)
        for size in self.warm_sizes():
            stream = RVCStream(loaded, SR_16K, params=self.params, layout=replace(self.layout, first_block=size))
            stream.push(np.zeros((size + self.layout.latency_frames) * HOP_16K, np.float32))

    def warm_sizes(self) -> tuple[int, ...]:
        """The block sizes :meth:`warm` runs (setting ``rvc_warm_block_sizes``)."""
        mode = self.rvc.warm_block_sizes
        if mode == "auto":
            per_size = self.models.device.type == "cpu" and self.models.autocast == torch.bfloat16
            mode = "all" if per_size else "edges"
        if mode == "all":
            return self.layout.sizes
        return tuple(sorted({self.layout.block_at(0), self.layout.block}))

    def info(self) -> dict[str, Any]:
        return {
            "voices": self.voices(),
            "loaded": {v.name: v.description for v in self.cache},
            "device": str(self.models.device),
            "dtype": str(self.models.dtype).removeprefix("torch."),
            "autocast": str(self.models.autocast).removeprefix("torch.") if self.models.autocast else None,
            "pitch_method": self.pitch_method,
            "block_ms": self.layout.block * 10,
            "context_ms": self.layout.context * 10,
            "first_block_ms": self.layout.block_at(0) * 10,
            "block_step_ms": self.layout.step * 10,
            "start_context_ms": self.layout.lead * 10,
            "paced_blocks": self.paced,
            "latency_ms": (self.layout.block_at(0) + self.layout.latency_frames) * 10,
        }

    def close(self) -> None:
        self.cache.clear()
