"""benchmarks/stats.py: percentiles."""

from __future__ import annotations

import math

from benchmarks.stats import percentile, summary_ms


def test_percentiles() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert math.isnan(percentile([], 50))
    s = summary_ms([0.1] * 9 + [1.0])
    assert s["p50"] == 100.0 and s["max"] == 1000.0 and s["n"] == 10
