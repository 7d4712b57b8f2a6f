"""Signal helpers of the voice stage: RVC's RMS mix, the SOLA join and its sin² fades, mono input."""

from __future__ import annotations

import numpy as np

from bridge.vc.base import VoiceError
from bridge.vc.layout import HOP_16K

#: Output RMS floor of the RMS mix: near-silent decoder hiss is not raised to the input's loudness.
RMS_FLOOR = 1e-3


def frame_rms(x: np.ndarray, centers: np.ndarray, frame: int) -> np.ndarray:
    """RMS of ``x`` over ``frame`` samples centred on each of ``centers`` (zeros outside ``x``)."""
    cs = np.concatenate(([0.0], np.cumsum(np.square(x, dtype=np.float64))))
    lo = np.clip(centers - frame // 2, 0, len(x))
    hi = np.clip(centers + frame // 2, 0, len(x))
    return np.sqrt(np.maximum(cs[hi] - cs[lo], 0.0) / frame)


def rms_mix(
    out: np.ndarray, audio16k: np.ndarray, first_frame: int, frames: int, hop: int, rate: float
) -> np.ndarray:
    """RVC's RMS mix: scale ``out`` (``frames`` frames at the model rate) by
    ``rms_in^(1−rate) · rms_out^(rate−1)``; ``rms_in`` is measured on ``audio16k`` frames
    ``first_frame…`` with its real neighbours. 40 ms frames, 10 ms hop, linear in between.

    This is the realtime GUI's formula (``gui_v1.py``), not the WebUI pipeline's
    ``change_rms`` (1 s frames every 0.5 s, floor 1e-6): frames of 1 s cannot follow syllables
    inside a 0.24–2 s block and would make a block's gain depend on where the block boundaries
    fall (streamed output would no longer match whole-utterance output), and the 1e-3 floor
    keeps near-silent decoder hiss from being raised to the input's loudness.
    """
    if rate >= 1.0 or frames <= 0:
        return out
    k = np.arange(frames + 1)
    rms_in = frame_rms(audio16k, (first_frame + k) * HOP_16K, 4 * HOP_16K)
    rms_out = frame_rms(out, k * hop, 4 * hop)
    pos = np.arange(frames * hop) / hop
    rms_in = np.interp(pos, k, rms_in)
    rms_out = np.maximum(np.interp(pos, k, rms_out), RMS_FLOOR)
    gain = np.power(rms_in, 1.0 - rate) * np.power(rms_out, rate - 1.0)
    return (out * gain).astype(np.float32)


def fade_in_window(n: int) -> np.ndarray:
    """sin² ramp from 0 to 1 over ``n`` samples (RVC's ``fade_in_window``)."""
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    return (np.sin(0.5 * np.pi * np.linspace(0.0, 1.0, n)) ** 2).astype(np.float32)


def sola_offset(tail: np.ndarray, head: np.ndarray, search: int) -> int:
    """Offset in ``[0, search]`` where ``head`` best continues ``tail`` (normalised correlation)."""
    n = len(tail)
    if n == 0 or search <= 0 or not np.any(tail):
        return 0
    seg = head[: n + search].astype(np.float64)
    nom = np.correlate(seg, tail.astype(np.float64), mode="valid")
    energy = np.concatenate(([0.0], np.cumsum(seg * seg)))
    den = np.sqrt(energy[n:] - energy[:-n] + 1e-8)
    return int(np.argmax(nom / den))


def mono(audio: np.ndarray) -> np.ndarray:
    """``audio`` as contiguous mono float32 (channels averaged), or VoiceError."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1) if x.shape[1] <= 2 else x.mean(axis=0)
    if x.ndim != 1:
        raise VoiceError(f"expected mono audio, got shape {np.shape(audio)}")
    return np.ascontiguousarray(x)
