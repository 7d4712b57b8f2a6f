"""Measurements on real audio used by several tests: click detection and word error rate."""

from __future__ import annotations

import numpy as np

from benchmarks.wer import normalise_words, word_errors  # noqa: F401  (one WER definition for tests and benchmarks)


def find_clicks(audio: np.ndarray, rate: int, *, ratio: float = 8.0, floor: float = 0.01) -> list[int]:
    """Sample indices where the waveform jumps far more sharply than its surroundings.

    A click is a discontinuity: the second difference spikes at one point while the 5 ms around
    it stays smooth. Speech transients (plosives, fricatives) raise the second difference over a
    stretch, so they are not flagged. ``ratio`` is spike height over local RMS; ``floor`` ignores
    spikes too small to hear.
    """
    audio = np.asarray(audio, dtype=np.float64)
    if audio.size < 3:
        return []
    d2 = np.abs(np.diff(audio, 2))
    half = max(2, int(rate * 0.005))
    padded = np.pad(d2**2, half, mode="edge")
    csum = np.concatenate([[0.0], np.cumsum(padded)])
    window = 2 * half + 1
    local = np.sqrt((csum[window:] - csum[:-window]) / window)[: d2.size]
    # An isolated spike of height h in silence-like surroundings scores sqrt(window) (~22 at
    # 48 kHz); speech transients spread over the window score a few units.
    suspects = np.flatnonzero((d2 > floor) & (d2 > ratio * np.maximum(local, 1e-12)))
    # Merge neighbours into one click each.
    clicks: list[int] = []
    for index in suspects:
        if not clicks or index - clicks[-1] > half:
            clicks.append(int(index) + 1)
    return clicks

