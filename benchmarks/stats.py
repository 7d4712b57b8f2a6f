"""Percentiles and summaries, one definition for every benchmark."""

from __future__ import annotations

import numpy as np


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100), linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def summary_ms(values_s: list[float]) -> dict[str, float]:
    """p50/p90/p99/mean/max in milliseconds of values given in seconds."""
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "p50": round(percentile(ms, 50), 1),
        "p90": round(percentile(ms, 90), 1),
        "p99": round(percentile(ms, 99), 1),
        "mean": round(float(np.mean(ms)), 1) if ms else float("nan"),
        "max": round(max(ms), 1) if ms else float("nan"),
    }
