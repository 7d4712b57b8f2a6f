"""Pitch (f0) for RVC: RMVPE in native PyTorch, a weight-free Praat estimator, f0 helpers.

Contract of every :class:`PitchEstimator`: ``f0(audio16k)`` takes mono float audio at 16 kHz
(``N`` samples) and returns float32 Hz per 10 ms frame (hop 160), ``N // 160 + 1`` frames,
frame ``i`` centred on sample ``160 * i``; 0 marks unvoiced frames.

RMVPE (``rmvpe.pt``, the state dict of RVC's ``E2E(n_blocks=4, n_gru=1, kernel_size=(2, 2))``):
log-mel front end (128 mels, n_fft = win = 1024, hop 160, 30–8000 Hz, HTK mel scale with
Slaney area normalisation as ``librosa.filters.mel(htk=True)``, Hann window, centred STFT
with reflect padding, ``log(clamp(mel, 1e-5))``) → frames padded to a multiple of 32 →
DeepUnet → Conv2d(16→3) → BiGRU(384→2×256) → Linear(512→360) → sigmoid → salience over
360 pitch bins 20 cents apart from 1997.38 cents (≈31.7 Hz). Decoding: salience-weighted
mean of the cents of bins ``argmax ± 4``; frames whose peak salience is ≤ 0.03 are unvoiced.
The module tree below mirrors the checkpoint's key names so that it loads with
``strict=True``.

Selection (:func:`load_pitch_estimator`, settings ``rvc_pitch_method`` /
``rvc_pitch_fallback``): ``"rmvpe"`` needs ``<models_dir>/rmvpe.pt``; when it is missing and
fallback is on (the default) a warning is logged and :class:`ParselmouthPitch` is used, so
that a fresh checkout converts voices before ``voice-bridge models pull`` (with a worse
pitch track); with fallback off a :class:`~bridge.vc.base.VoiceError` says how to get the
file. A present but unreadable ``rmvpe.pt`` is always an error.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from bridge.vc.base import VoiceError
from bridge.vc.rmvpe_net import E2E, N_CLASSES, LogMel, htk_mel_filterbank
from bridge.vc.torchfile import CheckpointError, load_torch_file

log = logging.getLogger(__name__)

__all__ = [
    "E2E",
    "ParselmouthPitch",
    "PitchEstimator",
    "RMVPE",
    "f0_frames",
    "f0_to_coarse",
    "htk_mel_filterbank",
    "load_pitch_estimator",
    "shift_f0",
]

SAMPLE_RATE = 16_000
HOP = 160
F0_MIN, F0_MAX = 50.0, 1100.0


def f0_frames(num_samples: int) -> int:
    """Frames of a pitch track for ``num_samples`` at 16 kHz: ``N // 160 + 1``."""
    return num_samples // HOP + 1


@runtime_checkable
class PitchEstimator(Protocol):
    """Anything with ``f0(audio16k) -> Hz per 10 ms frame`` (see the module docstring)."""

    def f0(self, audio16k: np.ndarray) -> np.ndarray: ...


# --------------------------------------------------------------------------------------
# f0 helpers

_MEL_MIN = 1127.0 * math.log(1.0 + F0_MIN / 700.0)
_MEL_MAX = 1127.0 * math.log(1.0 + F0_MAX / 700.0)


def shift_f0(f0: np.ndarray, semitones: float) -> np.ndarray:
    """``f0 · 2^(semitones/12)``; unvoiced (0) stays 0. Returns a new float32 array."""
    return (np.asarray(f0, dtype=np.float32) * np.float32(2.0 ** (semitones / 12.0))).astype(np.float32)


def f0_to_coarse(f0: np.ndarray) -> np.ndarray:
    """Hz → RVC's 255 pitch bins (int64): 1 = unvoiced, 50 Hz → 1, 1100 Hz → 255.

    ``mel = 1127·ln(1 + f0/700)``; voiced: ``(mel − mel(50))·254/(mel(1100) − mel(50)) + 1``,
    clipped to [1, 255] and rounded to nearest (``rint``).
    """
    mel = 1127.0 * np.log1p(np.asarray(f0, dtype=np.float64) / 700.0)
    voiced = mel > 0
    mel[voiced] = (mel[voiced] - _MEL_MIN) * 254.0 / (_MEL_MAX - _MEL_MIN) + 1.0
    return np.rint(np.clip(mel, 1.0, 255.0)).astype(np.int64)




_CENTS = 20.0 * np.arange(N_CLASSES) + 1997.3794084376191


def decode_salience(salience: np.ndarray, threshold: float = 0.03) -> np.ndarray:
    """``[T, 360]`` salience → Hz: weighted mean of cents over argmax ± 4; peak ≤ threshold → 0."""
    sal = np.asarray(salience, dtype=np.float32)
    if sal.shape[0] == 0:
        return np.zeros(0, dtype=np.float32)
    center = sal.argmax(axis=1)
    padded = np.pad(sal, ((0, 0), (4, 4)))
    cents = np.pad(_CENTS, (4, 4))
    idx = center[:, None] + np.arange(9)[None, :]  # argmax-4 .. argmax+4 in padded coordinates
    window = np.take_along_axis(padded, idx, axis=1).astype(np.float64)
    weight = window.sum(axis=1)
    mean_cents = (window * cents[idx]).sum(axis=1) / np.maximum(weight, 1e-12)
    f0 = 10.0 * 2.0 ** (mean_cents / 1200.0)
    f0[sal.max(axis=1) <= threshold] = 0.0
    return f0.astype(np.float32)


def _as_audio(audio16k: np.ndarray) -> np.ndarray:
    x = np.asarray(audio16k, dtype=np.float32)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1:
        raise ValueError(f"expected mono audio of shape [N], got {x.shape}")
    return x


class RMVPE:
    """RMVPE pitch estimator (:class:`PitchEstimator`). Thread-safe: read-only inference."""

    def __init__(self, model: E2E, device: torch.device | str = "cpu", *, threshold: float = 0.03,
                 dtype: torch.dtype = torch.float32) -> None:
        self.device = torch.device(device)
        self.dtype = dtype
        self.threshold = threshold
        self.model = model.to(device=self.device, dtype=dtype).eval()
        self.mel = LogMel().to(self.device).eval()

    @classmethod
    def load(cls, path: Path | str, device: torch.device | str = "cpu", *, threshold: float = 0.03,
             dtype: torch.dtype = torch.float32) -> RMVPE:
        """Load ``rmvpe.pt`` (a plain E2E state dict) strictly. Raises VoiceError naming the file."""
        path = Path(path)
        if not path.is_file():
            raise VoiceError(f"RMVPE weights not found: {path} (run `voice-bridge models pull rmvpe.pt`)")
        try:
            sd = load_torch_file(path)
        except CheckpointError as exc:
            raise VoiceError(f"cannot load RMVPE: {exc}") from exc
        if isinstance(sd, dict) and isinstance(sd.get("model"), dict):
            sd = sd["model"]
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise VoiceError(f"{path}: not an RMVPE state dict")
        model = E2E()
        try:
            model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
        except RuntimeError as exc:
            raise VoiceError(f"{path}: weights do not fit RMVPE E2E(4, 1, (2, 2)): {str(exc)[:400]}") from exc
        return cls(model, device, threshold=threshold, dtype=dtype)

    @classmethod
    def from_random(cls, device: torch.device | str = "cpu", *, threshold: float = 0.03, **arch: int) -> RMVPE:
        """Random weights; full size unless ``arch`` overrides E2E arguments (tests)."""
        return cls(E2E(**arch), device, threshold=threshold)

    def salience(self, audio16k: np.ndarray) -> torch.Tensor:
        """``[N]`` audio → ``[N // 160 + 1, 360]`` float32 salience on the CPU."""
        x = torch.from_numpy(_as_audio(audio16k)).to(self.device)
        with torch.inference_mode():
            mel = self.mel(x[None])  # [1, 128, T]
            frames = mel.shape[-1]
            mult = self.model.time_multiple
            pad = (-frames) % mult
            if pad:
                mel = F.pad(mel, (0, pad))
            hidden = self.model(mel.to(self.dtype))[0, :frames]
        return hidden.float().cpu()

    def f0(self, audio16k: np.ndarray) -> np.ndarray:
        if _as_audio(audio16k).shape[0] == 0:
            return np.zeros(1, dtype=np.float32)
        return decode_salience(self.salience(audio16k).numpy(), self.threshold)


class ParselmouthPitch:
    """Weight-free pitch with Praat's autocorrelation method (``To Pitch (ac)``).

    Same settings as RVC's ``pm`` method: 10 ms step, voicing threshold 0.6, 50–1100 Hz.
    Praat's frames are resampled onto this module's grid (frame ``i`` at ``i · 10 ms``) by
    nearest frame; frames outside Praat's analysis range (the first/last ~30 ms) are 0.
    """

    def __init__(self, *, pitch_floor: float = F0_MIN, pitch_ceiling: float = F0_MAX,
                 voicing_threshold: float = 0.6) -> None:
        import parselmouth  # noqa: F401 - fail at construction, not on first use

        self.pitch_floor, self.pitch_ceiling = pitch_floor, pitch_ceiling
        self.voicing_threshold = voicing_threshold

    def f0(self, audio16k: np.ndarray) -> np.ndarray:
        import parselmouth

        x = _as_audio(audio16k)
        out = np.zeros(f0_frames(x.shape[0]), dtype=np.float32)
        if x.shape[0] < 3 * SAMPLE_RATE / self.pitch_floor:
            return out  # shorter than one analysis window
        sound = parselmouth.Sound(x.astype(np.float64), sampling_frequency=SAMPLE_RATE)
        try:
            pitch = sound.to_pitch_ac(time_step=HOP / SAMPLE_RATE, voicing_threshold=self.voicing_threshold,
                                      pitch_floor=self.pitch_floor, pitch_ceiling=self.pitch_ceiling)
        except parselmouth.PraatError as exc:
            log.debug("praat pitch failed on %d samples: %s", x.shape[0], exc)
            return out
        values = np.nan_to_num(pitch.selected_array["frequency"], nan=0.0)
        times = pitch.xs()
        if len(values) == 0:
            return out
        step = HOP / SAMPLE_RATE
        idx = np.rint((np.arange(out.shape[0]) * step - times[0]) / step).astype(np.int64)
        ok = (idx >= 0) & (idx < len(values))
        out[ok] = values[idx[ok]]
        return out


def load_pitch_estimator(method: str, models_dir: Path, device: torch.device | str = "cpu", *,
                         fallback: bool = True) -> PitchEstimator:
    """The estimator for ``method`` ("rmvpe" or "parselmouth").

    "rmvpe" loads ``<models_dir>/rmvpe.pt``; if the file is missing and ``fallback`` is
    true (setting ``rvc_pitch_fallback``), logs a warning and returns :class:`ParselmouthPitch`,
    otherwise raises :class:`~bridge.vc.base.VoiceError`.
    """
    method = method.lower().strip()
    if method == "parselmouth":
        return ParselmouthPitch()
    if method != "rmvpe":
        raise VoiceError(f"unknown pitch method {method!r} (expected 'rmvpe' or 'parselmouth')")
    path = Path(models_dir) / "rmvpe.pt"
    if not path.exists():
        if fallback:
            log.warning("%s is missing: using parselmouth pitch instead (run `voice-bridge models pull "
                        "rmvpe.pt` for RMVPE)", path)
            return ParselmouthPitch()
        raise VoiceError(f"RMVPE weights not found: {path} (run `voice-bridge models pull rmvpe.pt`, "
                         "or set rvc_pitch_method = \"parselmouth\")")
    return RMVPE.load(path, device)
