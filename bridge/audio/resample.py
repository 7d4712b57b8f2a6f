"""Streaming resampling to the bridge's 48 kHz output, with soxr.

One :class:`StreamResampler` lives for a whole utterance, so segment after segment goes through
a single continuous filter state: the resampler adds no discontinuity at segment joins.
"""

from __future__ import annotations

import numpy as np
import soxr

from bridge.config import OUTPUT_SAMPLE_RATE

_EMPTY = np.zeros(0, dtype=np.float32)


class StreamResampler:
    """Mono float32 at ``in_rate`` → mono float32 at ``out_rate``, chunk by chunk."""

    def __init__(self, in_rate: int, out_rate: int = OUTPUT_SAMPLE_RATE, quality: str = "HQ") -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} → {out_rate}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._quality = quality
        self._stream: soxr.ResampleStream | None = None
        self._reset_stream()

    def _reset_stream(self) -> None:
        self._stream = (
            None
            if self.in_rate == self.out_rate
            else soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality=self._quality)
        )

    def push(self, audio: np.ndarray) -> np.ndarray:
        """Resample a chunk; returns what the filter can emit now (it holds back a few ms)."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if self._stream is None:
            return audio
        if audio.size == 0:
            return _EMPTY
        return self._stream.resample_chunk(audio)

    def flush(self) -> np.ndarray:
        """End of utterance: return the held-back tail and start a fresh filter state."""
        if self._stream is None:
            return _EMPTY
        tail = self._stream.resample_chunk(_EMPTY, last=True)
        self._reset_stream()
        return tail


def resample(audio: np.ndarray, in_rate: int, out_rate: int = OUTPUT_SAMPLE_RATE) -> np.ndarray:
    """Resample a whole signal at once."""
    if in_rate == out_rate:
        return np.asarray(audio, dtype=np.float32)
    return soxr.resample(np.asarray(audio, dtype=np.float32), in_rate, out_rate, quality="HQ").astype(
        np.float32, copy=False
    )
