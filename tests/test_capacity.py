"""The measured capacity as pure functions: the meter, the cores, the admission decision.

A fake clock throughout (``now`` is passed in): no sleeps, no threads, no models.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.capacity import (
    CapacityConfig,
    CpuRate,
    LoadMeter,
    WorkWindow,
    cgroup_v1_cores,
    cgroup_v2_cores,
    compute_key,
    headroom,
    machine_cores,
)
from bridge.config import Settings
from bridge.limits import Admission
from bridge.load import ServerLoad, capacity_config


def meter(**overrides: float) -> LoadMeter:
    config = {"cores": 2.0, "margin": 0.15, "window_seconds": 10.0, "prior_cost": 0.25,
              "warmup_audio_seconds": 2.0, "half_life_audio_seconds": 60.0, **overrides}
    return LoadMeter(CapacityConfig(**config))


def speak(m: LoadMeter, key: str, cost: float, audio_seconds: float, start: float, step: float = 0.1) -> float:
    """Report ``audio_seconds`` of audio made at ``cost`` CPU-s per audio-s, one step per
    ``step`` seconds of audio (a step every 10 ms of wall time); the time after the last step."""
    now = start
    for _ in range(round(audio_seconds / step)):
        now += 0.01
        m.record(key, cost * step, step, now)
    return now


# ----------------------------------------------------------------------------- keys and cores
def test_compute_keys_name_the_engine_and_the_rvc_voice() -> None:
    assert compute_key("piper", None) == "piper"
    assert compute_key("piper", "alice") == "piper+rvc:alice"
    assert compute_key("soprano", "") == "soprano"


@pytest.mark.parametrize(
    ("line", "cores"),
    [("200000 100000", 2.0), ("150000 100000\n", 1.5), ("max 100000", None), ("garbage", None), ("0 100000", None)],
)
def test_cgroup_v2_quota(line: str, cores: float | None) -> None:
    assert cgroup_v2_cores(line) == cores


def test_cgroup_v1_quota() -> None:
    assert cgroup_v1_cores("50000\n", "100000\n") == 0.5
    assert cgroup_v1_cores("-1", "100000") is None


def test_machine_cores_are_the_affinity_capped_by_a_quota_unless_set() -> None:
    files = {Path("/sys/fs/cgroup/cpu.max"): "150000 100000"}
    assert machine_cores(affinity=lambda: 4, read=files.get) == 1.5
    assert machine_cores(affinity=lambda: 4, read={}.get) == 4.0
    assert machine_cores(affinity=lambda: 1, read=files.get) == 1.0  # the quota never adds cores
    v1 = {Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"): "-1", Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"): "100000"}
    assert machine_cores(affinity=lambda: 3, read=v1.get) == 3.0
    assert machine_cores(0.5, affinity=lambda: 4, read=files.get) == 0.5
    assert machine_cores() >= 1.0  # this machine, for real


# ----------------------------------------------------------------------------- cost per audio second
def test_cost_is_the_prior_until_a_voice_has_made_the_warm_up_audio() -> None:
    m = meter(prior_cost=0.25, warmup_audio_seconds=2.0)
    assert m.cost("piper") == 0.25
    now = speak(m, "piper", 0.1, 1.5, 0.0)
    assert m.cost("piper") == 0.25  # 1.5 s of audio: still warming up
    speak(m, "piper", 0.1, 1.0, now)
    assert m.cost("piper") == pytest.approx(0.1)
    assert m.cost("piper+rvc:alice") == 0.25  # each key on its own


def test_steps_without_audio_still_count_their_compute() -> None:
    m = meter(warmup_audio_seconds=0.0, half_life_audio_seconds=1e9)
    m.record("piper+rvc:alice", 0.3, 0.0, 1.0)  # the voice stage held the block back
    m.record("piper+rvc:alice", 0.3, 1.0, 2.0)  # ... and released it
    assert m.cost("piper+rvc:alice") == pytest.approx(0.6)


def test_cost_follows_a_change_with_the_half_life_in_audio() -> None:
    m = meter(half_life_audio_seconds=10.0, warmup_audio_seconds=0.0)
    now = speak(m, "piper", 0.1, 100.0, 0.0)
    assert m.cost("piper") == pytest.approx(0.1)
    now = speak(m, "piper", 0.3, 10.0, now)  # the machine got slower: one half-life of new audio
    assert m.cost("piper") == pytest.approx(0.2, abs=0.01)  # halfway there
    speak(m, "piper", 0.3, 60.0, now)
    assert m.cost("piper") == pytest.approx(0.3, abs=0.01)


# ----------------------------------------------------------------------------- load over a window
def test_load_is_compute_per_wall_second_over_the_window() -> None:
    window = WorkWindow(seconds=10.0)
    for second in range(10):
        window.add(100.0 + second, 0.5)  # half a core's work each second
    assert window.cores(109.5) == pytest.approx(0.5)
    assert window.cores(114.5) == pytest.approx(0.25)  # the first five seconds have left it
    assert window.cores(200.0) == 0.0


def test_a_young_window_divides_by_the_time_since_the_start() -> None:
    window = WorkWindow(seconds=10.0, start=100.0)
    window.add(101.5, 0.8)
    window.add(102.0, 0.2)
    assert window.cores(102.0) == pytest.approx(0.5)  # 1 CPU-s in the 2 s since the start
    assert window.cores(105.0) == pytest.approx(0.2)
    early = WorkWindow(seconds=10.0, start=100.0)
    early.add(100.1, 0.3)
    assert early.cores(100.2) == pytest.approx(0.3)  # at least a second


def test_process_cpu_rate_spans_at_least_the_window() -> None:
    rate = CpuRate(seconds=10.0)
    assert rate.sample(0.0, 5.0) is None
    assert rate.sample(5.0, 10.0) == pytest.approx(1.0)
    assert rate.sample(10.0, 12.0) == pytest.approx(0.7)  # (12 - 5) / 10, from the first sample
    # From the newest sample at least 10 s old (t = 5): (12.6 - 10) / 11.
    assert rate.sample(16.0, 12.6) == pytest.approx(2.6 / 11)


# ----------------------------------------------------------------------------- the decision
def test_headroom_is_what_still_fits_in_the_usable_cores() -> None:
    assert headroom(1.7, 0.0, 0.1) == 17
    assert headroom(1.7, 1.6, 0.1) == 1  # exactly at the usable cores still fits
    assert headroom(1.7, 1.65, 0.1) == 0
    assert headroom(1.7, 2.0, 0.1) == 0
    assert headroom(1.7, 0.0, 0.0) > 1000  # free work: only max_sessions caps it


def test_one_more_listener_is_admitted_while_it_fits_within_the_margin() -> None:
    m = meter(cores=2.0, margin=0.15, warmup_audio_seconds=0.0)
    now = speak(m, "piper", 0.125, 4.0, 0.0)
    now += 20  # the burst has left the window: only the committed demand is left
    usable = 2.0 * 0.85
    for open_sessions in range(20):
        fits = (open_sessions + 1) * 0.125 <= usable + 1e-9
        assert m.admits(["piper"] * open_sessions, "piper", now) is fits, open_sessions
    report = m.report(["piper"] * 13, "piper", now)
    assert report.capacity_sessions == 13 and report.headroom_sessions == 0
    assert report.committed_cores == pytest.approx(1.625) and report.load_cores == 0.0
    assert report.load_ratio == pytest.approx(1.625 / usable)


def test_margin_keeps_cores_free() -> None:
    tight, loose = meter(margin=0.5, warmup_audio_seconds=0.0), meter(margin=0.0, warmup_audio_seconds=0.0)
    for m in (tight, loose):
        speak(m, "piper", 0.1, 4.0, 0.0)
    assert tight.report([], "piper", 100.0).capacity_sessions == 10
    assert loose.report([], "piper", 100.0).capacity_sessions == 20


def test_measured_load_refuses_when_work_outruns_the_estimate() -> None:
    """Two sessions synthesizing far ahead of their listeners (a burst of text): the cores are
    busy now though the two only need 0.2 cores in real time, and the measured load decides."""
    m = meter(cores=2.0, margin=0.15, window_seconds=10.0, warmup_audio_seconds=0.0)
    now = speak(m, "piper", 0.1, 4.0, 0.0) + 20
    for second in range(10):
        m.record("piper", 1.65, 16.5, now + second)  # 16.5 s of audio at 0.1 each second
    now += 9.5
    assert m.cost("piper") == pytest.approx(0.1)
    assert m.committed_cores(["piper"] * 2) == pytest.approx(0.2)
    assert not m.admits(["piper"] * 2, "piper", now)
    assert m.report(["piper"] * 2, "piper", now).load_ratio > 0.9
    assert m.admits(["piper"] * 2, "piper", now + 30)  # the window has passed


def test_rvc_sessions_weigh_their_own_cost() -> None:
    m = meter(cores=2.0, margin=0.0, warmup_audio_seconds=0.0)
    now = speak(m, "piper", 0.1, 4.0, 0.0)
    now = speak(m, "piper+rvc:alice", 0.8, 4.0, now) + 20
    rvc = "piper+rvc:alice"
    assert m.headroom([rvc], "piper", now) == 12  # (2 - 0.8) / 0.1
    assert m.headroom([rvc, rvc], "piper", now) == 4  # (2 - 1.6) / 0.1
    assert not m.admits([rvc, rvc, *["piper"] * 4], "piper", now)
    assert m.headroom(["piper"] * 12, rvc, now) == 1 and not m.admits(["piper"] * 13, rvc, now)
    report = m.report(["piper+rvc:alice"], "piper", now)
    assert report.cost_per_audio_second == {"piper": pytest.approx(0.1), "piper+rvc:alice": pytest.approx(0.8)}


def test_before_any_measurement_the_prior_decides() -> None:
    m = meter(cores=1.0, margin=0.0, prior_cost=0.25)
    report = m.report([], "piper", 0.0)
    assert report.capacity_sessions == 4 and report.warming_up == ["piper"]
    assert m.admits(["piper"] * 3, "piper", 0.0) and not m.admits(["piper"] * 4, "piper", 0.0)


# ----------------------------------------------------------------------------- admission
def test_admission_refuses_with_1013_when_the_compute_is_spoken_for() -> None:
    room = [2]
    admission = Admission(max_sessions=3, max_per_ip=0, headroom=lambda: room[0])
    assert admission.capacity == 2
    assert admission.admit("a") is None
    room[0] = 0
    refusal = admission.admit("b")
    assert refusal is not None and (refusal.code, refusal.kind) == (1013, "load")
    assert admission.capacity == 0 and admission.active == 1
    room[0] = 5  # the static cap stays hard
    assert admission.admit("b") is None and admission.admit("c") is None
    assert admission.capacity == 0 and admission.admit("d").kind == "capacity"
    admission.closing = True
    assert admission.capacity == 0


def test_server_load_feeds_the_meter_from_settings_with_a_fake_clock() -> None:
    settings = Settings(capacity_cores=1.0, capacity_margin=0.2, capacity_window_seconds=2.0,
                        capacity_warmup_audio_seconds=1.0, capacity_prior_cost_per_audio_second=0.5)
    clock, cpu = [0.0], [10.0]
    load = ServerLoad(capacity_config(settings.capacity), clock=lambda: clock[0], process_cpu=lambda: cpu[0])
    assert load.report([], "piper").capacity_sessions == 1  # 0.8 usable cores / the prior 0.5
    for _ in range(20):
        clock[0] += 0.05
        load.observe("piper", 0.01, 0.1)  # 0.1 CPU-s per audio-s
    clock[0], cpu[0] = 1.0, 10.5
    report = load.report([], "piper")
    assert report.cost_per_audio_second == {"piper": pytest.approx(0.1)}
    assert report.capacity_sessions == 8 and report.usable_cores == pytest.approx(0.8)
    assert report.load_cores == pytest.approx(0.2)  # 0.2 CPU-s in the 1 s since the start (window: 2 s)
    assert report.process_cores == pytest.approx(0.5)
    clock[0] = 5.0
    assert load.headroom(["piper"] * 7, "piper") == 1 and load.headroom(["piper"] * 8, "piper") == 0
