"""One loaded voice and the conversion chain it runs on a window of audio.

Chain for one window of 16 kHz audio (:meth:`RVCVoice.convert_window`)::

    content features (ContentEncoder, 50 fps; v1 256-d, v2 768-d)
      → index retrieval (FeatureIndex.blend, index_rate), at 50 fps
      → 2× nearest upsample to 100 fps, padded/trimmed to len(audio) // 160 frames
      → pitch: f0 (Hz, shifted) → coarse bins; protect (voiceless frames keep un-retrieved features)
      → synthesizer at the model rate (32/40/48 kHz), optionally only a slice of frames
      → RMS mix (output loudness follows the input's by 1 − rms_mix_rate)

A voice holds its synthesizer (one per voice) and the device's shared models
(:mod:`bridge.vc.device_models`); it is only read during inference, so streams of many
sessions share it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bridge.vc.checkpoint import (
    CheckpointError,
    MissingIndexError,
    VoiceCheckpoint,
    build_from_checkpoint,
    read_checkpoint,
)
from bridge.vc.device_models import DeviceModels
from bridge.vc.layout import CONTENT_WINDOW_16K, HOP_16K, ConversionParams, StreamLayout
from bridge.vc.noise import NoiseTape, noise_seed
from bridge.vc.pitch import f0_to_coarse, shift_f0
from bridge.vc.signal import rms_mix
from bridge.vc.synthesizer import Synthesizer

log = logging.getLogger(__name__)


class RVCVoice:
    """One voice on one device: synthesizer + optional feature index + the shared models."""

    def __init__(
        self,
        name: str,
        synthesizer: Synthesizer,
        checkpoint: VoiceCheckpoint,
        models: DeviceModels,
        index: Any | None = None,
    ) -> None:
        self.name = name
        self.synth = synthesizer
        self.models = models
        self.index = index
        self.version = checkpoint.version
        self.f0 = checkpoint.f0
        self.sample_rate = checkpoint.sample_rate
        self.hop = checkpoint.hop_length
        self.speakers = checkpoint.speakers
        self.description = checkpoint.describe()
        if self.hop * 100 != self.sample_rate:
            raise CheckpointError(checkpoint.path, f"hop {self.hop} does not give 100 frames/s at {self.sample_rate} Hz")
        self.inter_channels = int(self.synth.inter_channels)
        if index is not None and getattr(index, "dim", None) not in (None, checkpoint.content_dim):
            raise CheckpointError(
                getattr(index, "path", None) or checkpoint.path,
                f"index holds {index.dim}-d features but the voice is {self.version} ({checkpoint.content_dim}-d)",
            )

    @property
    def device(self) -> torch.device:
        return self.models.device

    # ---- pitch ---------------------------------------------------------------------------

    def estimate_f0(self, audio16k: np.ndarray) -> np.ndarray:
        """Raw f0 (Hz, 0 = unvoiced) for ``len(audio) // 160 + 1`` frames."""
        with self.models.autocast_context():
            f0 = self.models.pitch.f0(np.ascontiguousarray(audio16k, dtype=np.float32))
        f0 = np.asarray(f0, dtype=np.float32)
        want = len(audio16k) // HOP_16K + 1
        if len(f0) < want:
            f0 = np.pad(f0, (0, want - len(f0)))
        return f0[:want]

    # ---- the chain -----------------------------------------------------------------------

    def _features(self, audio16k: np.ndarray, frames: int, f0: np.ndarray | None, params: ConversionParams) -> torch.Tensor:
        """Content features at 100 fps for ``frames`` frames, retrieval and protect applied."""
        models = self.models
        x = torch.from_numpy(np.ascontiguousarray(audio16k, dtype=np.float32)).to(models.device)
        with models.autocast_context():
            feats = models.content.extract(x, self.version)  # [1, F, C], 50 fps
        feats = feats.to(device=models.device, dtype=models.dtype)
        raw = None
        if self.index is not None and params.index_rate > 0:
            use_protect = self.f0 and f0 is not None and params.protect < 0.5
            raw = feats if use_protect else None
            blended = self.index.blend(feats[0].float().cpu().numpy(), params.index_rate)
            feats = torch.from_numpy(np.ascontiguousarray(blended, dtype=np.float32)).to(models.device, models.dtype)[None]
        feats = _upsample_frames(feats, frames)
        if raw is not None:
            raw = _upsample_frames(raw, frames)
            voiced = torch.from_numpy(f0[:frames] > 0).to(models.device)
            mask = torch.where(voiced, 1.0, params.protect).to(feats.dtype)[None, :, None]
            feats = feats * mask + raw * (1 - mask)
        return feats

    def convert_window(
        self,
        audio16k: np.ndarray,
        f0: np.ndarray | None,
        params: ConversionParams,
        *,
        head: int | None = None,
        length: int | None = None,
        phase: float = 0.0,
        noise: NoiseTape | None = None,
        first_frame: int = 0,
    ) -> np.ndarray:
        """Convert one window of 16 kHz audio; return frames ``[head, head+length)`` (all
        frames without ``head``) at the model rate, RMS-mixed.

        ``f0``: shifted f0 (Hz) per frame of the window (at least ``len // 160`` values).
        ``phase``: excitation phase (cycles) at frame ``head`` (at 0 without ``head``).
        ``noise``/``first_frame``: noise tape and the absolute frame of the window start.
        """
        frames = len(audio16k) // HOP_16K
        if frames < 3 or len(audio16k) < CONTENT_WINDOW_16K:
            raise ValueError(f"window too short: {len(audio16k)} samples")
        models = self.models
        device = models.device
        if self.f0:
            if f0 is None:
                raise ValueError("this voice needs f0")
            f0 = np.asarray(f0[:frames], dtype=np.float32)
        feats = self._features(audio16k, frames, f0 if self.f0 else None, params)
        lengths = torch.tensor([frames], device=device)
        sid = torch.tensor([params.speaker_id], device=device)
        first = 0 if head is None else head
        count = frames if head is None else int(length)
        kwargs: dict[str, Any] = {"noise_scale": params.noise_scale}
        if noise is not None and params.noise_scale:
            kwargs["z_noise"] = noise.frames(first_frame, frames).to(device)
        if self.f0:
            pitch = torch.from_numpy(f0_to_coarse(f0)).to(device)[None]
            pitchf = torch.from_numpy(f0).to(device)[None]
            kwargs["source_noise_scale"] = 1.0 if params.source_noise else 0.0
            kwargs["phase"] = phase
            if noise is not None and params.source_noise:
                kwargs["source_noise"] = noise.samples(first_frame + first, count).to(device)
            args: tuple[Any, ...] = (feats, lengths, pitch, pitchf, sid)
        else:
            args = (feats, lengths, sid)
        with torch.inference_mode(), models.autocast_context():
            if head is None:
                audio = self.synth.infer(*args, **kwargs)[0]
            else:
                audio = self.synth.infer(*args, head, count, **kwargs)[0]
        out = audio[0, 0].float().cpu().numpy()
        return rms_mix(out, audio16k, first, count, self.hop, params.rms_mix_rate)

    def convert(
        self,
        audio16k: np.ndarray,
        params: ConversionParams,
        *,
        pitch_shift: float = 0.0,
        layout: StreamLayout | None = None,
    ) -> np.ndarray:
        """Whole-utterance conversion (the reference that streaming matches away from the edges).

        The utterance gets the stream's silence before it (``layout.lead``) and zero right
        padding, is converted
        in one window, and is returned at the model rate, ``len · rate / 16000`` samples long.
        Memory grows with the square of the length (attention): meant for short utterances.
        """
        layout = layout or StreamLayout()
        audio16k = np.asarray(audio16k, dtype=np.float32)
        n = len(audio16k)
        frames = -(-n // HOP_16K)
        tail = layout.crossfade + layout.search + layout.lookahead + 2
        lead = layout.lead
        padded = np.concatenate(
            [np.zeros(lead * HOP_16K, np.float32), audio16k,
             np.zeros((frames + tail) * HOP_16K - n, np.float32)]
        )  # fmt: skip
        noise = NoiseTape(noise_seed(params.seed), self.inter_channels, self.hop)
        with self.models.compute:
            f0 = shift_f0(self.estimate_f0(padded), pitch_shift) if self.f0 else None
            out = self.convert_window(padded, f0, params, noise=noise, first_frame=-lead)
        start = lead * self.hop
        return out[start : start + round(n * self.hop / HOP_16K)]


def _upsample_frames(feats: torch.Tensor, frames: int) -> torch.Tensor:
    """50 → 100 fps (nearest), then exactly ``frames`` frames (repeat the last if short)."""
    feats = feats.repeat_interleave(2, dim=1)
    if feats.shape[1] < frames:
        feats = torch.cat([feats, feats[:, -1:].expand(-1, frames - feats.shape[1], -1)], dim=1)
    return feats[:, :frames]


def load_voice(
    name: str,
    pth: Path,
    models: DeviceModels,
    *,
    index_path: Path | None = None,
    use_index: bool = True,
    require_index: bool = False,
    fold: bool = True,
) -> RVCVoice:
    """Read a voice file (and its index) and build it on ``models``' device."""
    ckpt = read_checkpoint(pth)
    if index_path is not None and not Path(index_path).is_file():
        raise MissingIndexError(index_path, "the configured feature index does not exist")
    if index_path is None and require_index:
        raise MissingIndexError(pth, "no .index file next to the voice, and rvc_require_index is set")
    index = None
    if index_path is not None and use_index:
        from bridge.vc.retrieval import FeatureIndex

        index = FeatureIndex.load(index_path)
    synth = build_from_checkpoint(ckpt, models.device, models.dtype, fold=fold)
    voice = RVCVoice(name, synth, ckpt, models, index)
    log.info(
        "voice %s: %s %s %d Hz%s%s", name, ckpt.version, "f0" if ckpt.f0 else "nono", ckpt.sample_rate,
        f", index {Path(index_path).name}" if index is not None else "", f" on {models.device}",
    )  # fmt: skip
    return voice
