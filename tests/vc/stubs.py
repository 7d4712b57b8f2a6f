"""Deterministic stand-ins for the content encoder and pitch estimator, and test audio.

Both stubs are *local*: a content frame depends only on its own 400 samples and an f0
value only on the 25 ms around it. With a position-wise prior encoder (0 attention layers)
the whole chain then has a finite reach, so streaming can be checked for exact equality
with whole-utterance conversion, not just similarity.
"""

from __future__ import annotations

import numpy as np
import torch


class LocalContent:
    """``extract``: frames of 400 samples every 320 → fixed random projection → tanh."""

    def __init__(self, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.proj = {
            "v1": torch.randn(400, 256, generator=g) / 2.0,
            "v2": torch.randn(400, 768, generator=g) / 2.0,
        }
        self.calls = 0

    def extract(self, audio16k: torch.Tensor, version: str) -> torch.Tensor:
        self.calls += 1
        x = torch.as_tensor(audio16k).float().reshape(-1)
        frames = x.unfold(0, 400, 320)  # [(N-400)//320+1, 400]
        return torch.tanh(frames @ self.proj[version])[None]


class LocalPitch:
    """``f0``: voiced where the 400-sample RMS around frame k·160 exceeds 0.02."""

    def __init__(self, frame_multiple: int | None = None) -> None:
        self.calls = 0
        self.lengths: list[int] = []
        if frame_multiple:
            self.frame_multiple = frame_multiple  # like RMVPE, which pads to 32 frames

    def f0(self, audio16k: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.lengths.append(len(audio16k))
        x = np.asarray(audio16k, dtype=np.float64)
        n = len(x) // 160 + 1
        cs = np.concatenate(([0.0], np.cumsum(x * x)))
        centers = np.arange(n) * 160
        lo = np.clip(centers - 200, 0, len(x))
        hi = np.clip(centers + 200, 0, len(x))
        rms = np.sqrt((cs[hi] - cs[lo]) / 400)
        f0 = np.clip(90.0 + 900.0 * rms, 60.0, 600.0)
        return np.where(rms > 0.02, f0, 0.0).astype(np.float32)


def speech_like(seconds: float = 1.6, rate: int = 16_000, seed: int = 0) -> np.ndarray:
    """Harmonic 'syllables' with gliding pitch, a pause, and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 130 + 40 * np.sin(2 * np.pi * 1.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 2.2 * t), 0, None) ** 0.5
    envelope[(t > 0.55 * seconds) & (t < 0.65 * seconds)] = 0.0
    x = 0.25 * envelope * voice + 0.01 * rng.standard_normal(len(t)) * envelope
    return x.astype(np.float32)


def record_blocks(monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """Every block size the RVC streams convert from now on, in order (a spy on
    ``RVCStream._convert_block``; the conversion itself is unchanged)."""
    from bridge.vc.rvc import RVCStream

    blocks: list[int] = []
    convert_block = RVCStream._convert_block

    def spy(self: RVCStream, block: int):  # type: ignore[no-untyped-def]
        blocks.append(block)
        return convert_block(self, block)

    monkeypatch.setattr(RVCStream, "_convert_block", spy)
    return blocks
