"""Capacity that is measured: how much compute a second of audio costs, how much is in use, and
whether one more listener still fits in real time.

Pure bookkeeping (no asyncio, threads or clock reads: every call takes ``now``); the server's
thin layer (:mod:`bridge.load`) feeds it and the admission control asks it.

* **Cost per audio second**, per compute key (``"piper"``, ``"piper+rvc:alice"``): the pipeline
  reports each model step as "C CPU-seconds made A seconds of audio". The estimate is the ratio
  of exponentially decayed sums, decayed by audio made (so old measurements weigh half after
  ``half_life_audio_seconds`` of newer audio, however busy the server is). Until a key has made
  ``warmup_audio_seconds`` of audio it costs the prior, a conservative guess.
* **Load**: CPU-seconds of model work per second of wall time over a sliding window.
* **Committed demand**: what the open sessions need when they all speak at once, in real time:
  one listener consumes one second of audio per second, so a session of key K needs cost(K)
  cores. An idle session (its LLM thinking) uses nothing now but will.
* **Decision**: the demand is the larger of the committed demand and the measured load (the
  measurement catches a cost the estimate lags behind, or work ahead of the listeners); one more
  listener of the default key is admitted while demand + cost(default) stays within the usable
  cores, ``cores × (1 − margin)``.

Cores: the CPUs this process may run on (``sched_getaffinity``), fewer when a cgroup quota
(Docker's ``cpus``, a Kubernetes CPU limit) says so, or the ``capacity_cores`` setting.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: Float slack so that demand exactly at the usable cores still admits.
_EPSILON = 1e-9


def compute_key(tts: str, voice: str | None) -> str:
    """The key a model step's cost is recorded under: the TTS engine, and the RVC voice when
    the audio goes through one (``"piper"``, ``"piper+rvc:alice"``)."""
    return f"{tts}+rvc:{voice}" if voice else tts


# ----------------------------------------------------------------------------- cores
def cgroup_v2_cores(cpu_max: str) -> float | None:
    """Cores a cgroup v2 ``cpu.max`` line allows (``"200000 100000"`` → 2.0; ``"max …"`` → None)."""
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def cgroup_v1_cores(quota: str, period: str) -> float | None:
    """Cores cgroup v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` allow (quota -1: no limit)."""
    try:
        q, p = float(quota.strip()), float(period.strip())
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def machine_cores(
    setting: float = 0.0,
    *,
    affinity: Callable[[], int] | None = None,
    read: Callable[[Path], str | None] | None = None,
) -> float:
    """The cores this process may use: ``setting`` when non-zero, else the CPUs it may run on,
    capped by a cgroup CPU quota when there is one. ``affinity`` and ``read`` are seams for tests.
    """
    if setting > 0:
        return setting

    def read_file(path: Path) -> str | None:
        try:
            return path.read_text()
        except OSError:
            return None

    read = read or read_file
    if affinity is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
    else:
        cpus = affinity()
    cores = float(max(1, cpus))
    limits: list[float | None] = []
    if (v2 := read(Path("/sys/fs/cgroup/cpu.max"))) is not None:
        limits.append(cgroup_v2_cores(v2))
    quota, period = read(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")), read(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))
    if quota is not None and period is not None:
        limits.append(cgroup_v1_cores(quota, period))
    for limit in limits:
        if limit is not None:
            cores = min(cores, limit)
    return cores


# ----------------------------------------------------------------------------- measurements
@dataclass
class KeyCost:
    """One key's decayed sums (CPU-seconds, audio seconds) and all the audio it has made."""

    cpu: float = 0.0
    audio: float = 0.0
    measured_audio: float = 0.0
    steps: int = 0

    def add(self, cpu_seconds: float, audio_seconds: float, half_life: float) -> None:
        decay = 0.5 ** (audio_seconds / half_life) if half_life > 0 else 1.0
        self.cpu = self.cpu * decay + cpu_seconds
        self.audio = self.audio * decay + audio_seconds
        self.measured_audio += audio_seconds
        self.steps += 1


@dataclass
class WorkWindow:
    """CPU-seconds reported in the last ``seconds`` of wall time (fewer when the meter started
    less than ``seconds`` ago: then the time since ``start``, at least a second)."""

    seconds: float
    start: float = -math.inf
    _events: deque[tuple[float, float]] = field(default_factory=deque)
    _sum: float = 0.0

    def add(self, now: float, cpu_seconds: float) -> None:
        self._events.append((now, cpu_seconds))
        self._sum += cpu_seconds
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - self.seconds:
            self._sum -= self._events.popleft()[1]
        if not self._events:
            self._sum = 0.0  # no float residue once empty

    def cores(self, now: float) -> float:
        """CPU-seconds per wall second over the window."""
        self._expire(now)
        span = min(self.seconds, max(now - self.start, min(1.0, self.seconds)))
        return max(0.0, self._sum) / span


@dataclass
class CpuRate:
    """A cumulative CPU clock (the process's own) sampled now and then, as cores in use over at
    least the last ``seconds`` (the rate since the newest sample that old, else the oldest)."""

    seconds: float
    _samples: deque[tuple[float, float]] = field(default_factory=deque)

    def sample(self, now: float, cpu_total: float) -> float | None:
        """Record ``cpu_total`` at ``now``; the cores used since the reference sample (None
        until two samples lie apart)."""
        while len(self._samples) >= 2 and self._samples[1][0] <= now - self.seconds:
            self._samples.popleft()
        self._samples.append((now, cpu_total))
        t0, c0 = self._samples[0]
        if now - t0 <= 0:
            return None
        return max(0.0, (cpu_total - c0) / (now - t0))


# ----------------------------------------------------------------------------- the meter
@dataclass(frozen=True, slots=True)
class CapacityConfig:
    """The settings the meter works with (``capacity_*`` in :mod:`bridge.config`)."""

    cores: float
    margin: float = 0.15
    window_seconds: float = 10.0
    prior_cost: float = 0.25
    warmup_audio_seconds: float = 2.0
    half_life_audio_seconds: float = 60.0

    @property
    def usable_cores(self) -> float:
        return self.cores * (1.0 - self.margin)


@dataclass(frozen=True, slots=True)
class CapacityReport:
    """The meter at one moment, as ``/health`` and ``/metrics`` show it."""

    cores: float
    usable_cores: float
    #: CPU-seconds per audio second, per key measured so far (the prior for keys still warming up).
    cost_per_audio_second: dict[str, float]
    #: Keys whose cost is still the prior.
    warming_up: list[str]
    default_key: str
    default_cost: float
    #: Model CPU-seconds per wall second over the window.
    load_cores: float
    #: What the open sessions need when all speak in real time.
    committed_cores: float
    #: max(committed, load): what admission weighs.
    demand_cores: float
    #: demand ÷ usable cores; 1.0: the usable cores are all spoken for.
    load_ratio: float
    #: Listeners of the default key the usable cores carry in real time.
    capacity_sessions: int
    #: How many more such listeners fit now.
    headroom_sessions: int
    open_sessions: int
    #: The process's own CPU per wall second (model work plus the event loop), when known.
    process_cores: float | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "cores": round(self.cores, 3),
            "usable_cores": round(self.usable_cores, 3),
            "cost_per_audio_second": {k: round(v, 4) for k, v in self.cost_per_audio_second.items()},
            "warming_up": self.warming_up,
            "default_key": self.default_key,
            "load_cores": round(self.load_cores, 4),
            "committed_cores": round(self.committed_cores, 4),
            "demand_cores": round(self.demand_cores, 4),
            "load_ratio": round(self.load_ratio, 4),
            "capacity_sessions": self.capacity_sessions,
            "headroom_sessions": self.headroom_sessions,
        }
        out["process_cores"] = None if self.process_cores is None else round(self.process_cores, 4)
        return out


def headroom(usable_cores: float, demand_cores: float, cost: float) -> int:
    """Listeners of cost ``cost`` that still fit beside ``demand_cores`` in ``usable_cores``."""
    spare = usable_cores - demand_cores
    if spare < -_EPSILON:
        return 0
    if cost <= 0:
        return 1_000_000  # free work: only the static cap applies
    return max(0, math.floor((max(0.0, spare) + _EPSILON) / cost))


class LoadMeter:
    """Cost per audio second per key, the model load over a window, and the admission decision."""

    def __init__(self, config: CapacityConfig, start: float = -math.inf) -> None:
        self.config = config
        self.costs: dict[str, KeyCost] = {}
        self.window = WorkWindow(config.window_seconds, start)
        self.process = CpuRate(config.window_seconds)
        self._process_cores: float | None = None

    # ------------------------------------------------------------------ inputs
    def record(self, key: str, cpu_seconds: float, audio_seconds: float, now: float) -> None:
        """One model step: ``cpu_seconds`` of compute made ``audio_seconds`` of audio at ``now``."""
        cpu = max(0.0, cpu_seconds)
        audio = max(0.0, audio_seconds)
        self.costs.setdefault(key, KeyCost()).add(cpu, audio, self.config.half_life_audio_seconds)
        self.window.add(now, cpu)

    def sample_process(self, now: float, cpu_total: float) -> None:
        """The process's cumulative CPU time (``time.process_time``) at ``now``."""
        self._process_cores = self.process.sample(now, cpu_total)

    # ------------------------------------------------------------------ estimates
    def cost(self, key: str) -> float:
        """CPU-seconds per audio second of ``key``: measured once warmed up, else the prior."""
        if self._warming(key):
            return self.config.prior_cost
        entry = self.costs[key]
        return entry.cpu / entry.audio

    def load_cores(self, now: float) -> float:
        return self.window.cores(now)

    def committed_cores(self, open_keys: Iterable[str]) -> float:
        return sum(self.cost(key) for key in open_keys)

    def headroom(self, open_keys: Iterable[str], new_key: str, now: float) -> int:
        """How many more listeners of ``new_key`` fit beside the open sessions (0: refuse)."""
        demand = max(self.committed_cores(open_keys), self.load_cores(now))
        return headroom(self.config.usable_cores, demand, self.cost(new_key))

    def admits(self, open_keys: Iterable[str], new_key: str, now: float) -> bool:
        """Whether one more listener of ``new_key`` keeps the demand within the usable cores."""
        return self.headroom(open_keys, new_key, now) >= 1

    def report(self, open_keys: Iterable[str], default_key: str, now: float) -> CapacityReport:
        keys = list(open_keys)
        usable = self.config.usable_cores
        load = self.load_cores(now)
        committed = self.committed_cores(keys)
        demand = max(committed, load)
        default_cost = self.cost(default_key)
        costs = {key: self.cost(key) for key in sorted({*self.costs, default_key})}
        return CapacityReport(
            cores=self.config.cores,
            usable_cores=usable,
            cost_per_audio_second=costs,
            warming_up=[k for k in costs if self._warming(k)],
            default_key=default_key,
            default_cost=default_cost,
            load_cores=load,
            committed_cores=committed,
            demand_cores=demand,
            load_ratio=demand / usable if usable > 0 else math.inf,
            capacity_sessions=headroom(usable, 0.0, default_cost),
            headroom_sessions=headroom(usable, demand, default_cost),
            open_sessions=len(keys),
            process_cores=self._process_cores,
        )

    def _warming(self, key: str) -> bool:
        entry = self.costs.get(key)
        return entry is None or entry.measured_audio < self.config.warmup_audio_seconds or entry.audio <= 0
