"""benchmarks/ramp.py: the session ramp (levels, where it stops)."""

from __future__ import annotations

import pytest

from benchmarks.ramp import Ramp, ramp_levels


def test_ramp_levels() -> None:
    assert ramp_levels(1) == [1]
    assert ramp_levels(8) == [1, 2, 3, 4, 6, 8]
    assert ramp_levels(10) == [1, 2, 3, 4, 6, 8, 10]
    assert ramp_levels(64) == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]
    with pytest.raises(ValueError):
        ramp_levels(0)


def _drive(ramp: Ramp, underruns_at: dict[int, int], failures_at: dict[int, int] | None = None) -> list[int]:
    ran = []
    for level in ramp.levels():
        ran.append(level)
        ramp.record(level, underruns_at.get(level, 0), (failures_at or {}).get(level, 0))
    return ran


def test_ramp_stops_after_the_first_level_with_underruns() -> None:
    ramp = Ramp(max_sessions=16)
    assert _drive(ramp, {6: 2, 8: 5}) == [1, 2, 3, 4, 6]
    assert ramp.max_clean == 4 and not ramp.capped


def test_ramp_counts_failed_sessions_as_unclean() -> None:
    ramp = Ramp(max_sessions=16)
    assert _drive(ramp, {}, {3: 1}) == [1, 2, 3]
    assert ramp.max_clean == 2


def test_ramp_when_one_session_already_underruns() -> None:
    ramp = Ramp(max_sessions=8)
    assert _drive(ramp, {1: 1}) == [1]
    assert ramp.max_clean == 0


def test_ramp_all_clean_is_capped() -> None:
    ramp = Ramp(max_sessions=4)
    assert _drive(ramp, {}) == [1, 2, 3, 4]
    assert ramp.max_clean == 4 and ramp.capped


def test_fixed_levels_all_run_whatever_their_outcome() -> None:
    ramp = Ramp(max_sessions=16, fixed_levels=[12, 12, 18])
    ran = []
    for level in ramp.levels():
        ran.append(level)
        ramp.record(level, underruns=3)
    assert ran == [12, 12, 18] and ramp.max_clean == 0
