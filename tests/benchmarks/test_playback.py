"""benchmarks/playback.py: the listener model (a 20 ms player with a prebuffer): stalls, underruns, the end."""

from __future__ import annotations

import pytest

from benchmarks.playback import simulate_playback


def test_playback_without_gaps() -> None:
    # 20 ms frames arriving every 10 ms: never runs dry.
    arrivals = [(i * 0.01, 960) for i in range(100)]
    report = simulate_playback(arrivals)
    assert (report.underruns, report.underrun_ms) == (0, 0.0)
    assert report.audio_seconds == pytest.approx(2.0)


def test_playback_counts_a_stall() -> None:
    # 0.5 s of audio at t=0, the next frame only at t=0.8: one 300 ms underrun.
    arrivals = [(0.0, 24000), (0.8, 960), (0.81, 960)]
    report = simulate_playback(arrivals)
    assert report.underruns == 1 and report.underrun_ms == pytest.approx(300.0, abs=0.5)


def test_playback_prebuffer_absorbs_jitter() -> None:
    arrivals = [(0.0, 960), (0.05, 960)]  # 30 ms late
    assert simulate_playback(arrivals).underruns == 1
    assert simulate_playback(arrivals, prebuffer_s=0.05).underruns == 0


def test_playback_ignores_sub_millisecond_timer_noise() -> None:
    arrivals = [(0.0, 960), (0.0205, 960)]
    assert simulate_playback(arrivals).underruns == 0


def test_playback_reports_when_the_listener_hears_the_end() -> None:
    # 0.5 s at t=0, then 0.5 s at t=0.8 (a 300 ms stall): the last sample sounds at 1.3 s.
    report = simulate_playback([(0.0, 24000), (0.8, 24000)])
    assert report.ends_at == pytest.approx(1.3)
    assert simulate_playback([]).ends_at is None


def test_playback_says_where_each_stall_happened() -> None:
    # 60 ms of audio, a 12 ms gap, then the rest: the stall is at 0.06 s of audio, 12 ms long;
    # a listener with a 100 ms buffer hears no gap.
    arrivals = [(0.0, 2880), (0.072, 9600), (0.2, 9600)]
    report = simulate_playback(arrivals)
    assert report.stalls == ((0.06, 12.0),)
    assert simulate_playback(arrivals, prebuffer_s=0.1).underruns == 0
