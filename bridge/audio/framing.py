"""PCM framing: float32 audio → fixed-duration binary frames in the session's wire format.

Pure and stateful per utterance: samples that do not fill a frame wait for the next push; the
last, shorter frame goes out at :meth:`Framer.flush`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

PcmFormat = Literal["f32le", "s16le"]

BYTES_PER_SAMPLE: dict[str, int] = {"f32le": 4, "s16le": 2}


def encode_pcm(audio: np.ndarray, fmt: PcmFormat) -> bytes:
    """Mono float32 in [-1, 1] → little-endian bytes. Clips; NaN becomes silence."""
    audio = np.nan_to_num(np.asarray(audio, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    audio = np.clip(audio, -1.0, 1.0)
    if fmt == "f32le":
        return audio.astype("<f4", copy=False).tobytes()
    if fmt == "s16le":
        return np.round(audio * 32767.0).astype("<i2").tobytes()
    raise ValueError(f"unknown PCM format {fmt!r}")


def decode_pcm(data: bytes, fmt: PcmFormat) -> np.ndarray:
    """Little-endian bytes → mono float32 (copying, so unaligned buffers are fine)."""
    if fmt == "f32le":
        return np.frombuffer(data, dtype="<f4").astype(np.float32)
    if fmt == "s16le":
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767.0
    raise ValueError(f"unknown PCM format {fmt!r}")


class Framer:
    """Cuts a float32 stream into frames of ``frame_samples`` samples, encoded as ``fmt``."""

    def __init__(self, frame_samples: int, fmt: PcmFormat = "f32le") -> None:
        if frame_samples <= 0:
            raise ValueError("frame_samples must be positive")
        if fmt not in BYTES_PER_SAMPLE:
            raise ValueError(f"unknown PCM format {fmt!r}")
        self.frame_samples = frame_samples
        self.fmt: PcmFormat = fmt
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, audio: np.ndarray) -> list[bytes]:
        """Frames completed by this audio (each exactly ``frame_samples`` long)."""
        if audio.size:
            self._pending = np.concatenate([self._pending, np.asarray(audio, dtype=np.float32)])
        count = self._pending.size // self.frame_samples
        if count == 0:
            return []
        cut = count * self.frame_samples
        whole, self._pending = self._pending[:cut], self._pending[cut:]
        return [encode_pcm(frame, self.fmt) for frame in whole.reshape(count, self.frame_samples)]

    def flush(self) -> list[bytes]:
        """The last, possibly short, frame (nothing if no samples wait)."""
        if self._pending.size == 0:
            return []
        frame, self._pending = self._pending, np.zeros(0, dtype=np.float32)
        return [encode_pcm(frame, self.fmt)]

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
