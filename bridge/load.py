"""The server's side of :mod:`bridge.capacity`: the meter behind a lock, read with the clock and
the process's CPU time.

Model steps report from the event loop or from worker threads (``observe``), admission asks for
the headroom on the event loop, ``/health`` and ``/metrics`` read a report; the lock keeps the
meter's sums whole between them. The process's own CPU time (``time.process_time``: model work,
the event loop, everything) is sampled at each report: the ground truth beside the model load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from bridge.capacity import CapacityConfig, CapacityReport, LoadMeter, machine_cores
from bridge.config import CapacitySettings


def capacity_config(settings: CapacitySettings, cores: float | None = None) -> CapacityConfig:
    return CapacityConfig(
        cores=cores if cores is not None else machine_cores(settings.cores),
        margin=settings.margin,
        window_seconds=settings.window_seconds,
        prior_cost=settings.prior_cost_per_audio_second,
        warmup_audio_seconds=settings.warmup_audio_seconds,
        half_life_audio_seconds=settings.cost_half_life_audio_seconds,
    )


class ServerLoad:
    """One server's load meter (thread-safe)."""

    def __init__(
        self,
        config: CapacityConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        process_cpu: Callable[[], float] = time.process_time,
    ) -> None:
        started = clock()
        self.meter = LoadMeter(config, start=started)
        self._clock = clock
        self._process_cpu = process_cpu
        self._lock = threading.Lock()
        self.meter.sample_process(started, process_cpu())

    @classmethod
    def from_settings(cls, settings: CapacitySettings) -> ServerLoad:
        return cls(capacity_config(settings))

    def observe(self, key: str, cpu_seconds: float, audio_seconds: float) -> None:
        now = self._clock()
        with self._lock:
            self.meter.record(key, cpu_seconds, audio_seconds, now)

    def cost(self, key: str) -> float:
        """CPU seconds per second of audio for ``key``, measured (the prior while warming up)."""
        with self._lock:
            return self.meter.cost(key)

    def headroom(self, open_keys: Iterable[str], new_key: str) -> int:
        keys = list(open_keys)
        now = self._clock()
        with self._lock:
            return self.meter.headroom(keys, new_key, now)

    def report(self, open_keys: Iterable[str], default_key: str) -> CapacityReport:
        keys = list(open_keys)
        now, cpu = self._clock(), self._process_cpu()
        with self._lock:
            self.meter.sample_process(now, cpu)
            return self.meter.report(keys, default_key, now)
