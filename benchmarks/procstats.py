"""CPU and memory of the process under test (a server, or the RealtimeTTS driver).

A thread samples the process and its children with psutil every ``interval`` seconds while a
benchmark phase runs. CPU is in percent of one core (200 % = both cores of a 2-core machine
busy), summed over the process tree; memory is resident set size, summed likewise.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sample:
    at: float
    cpu_seconds: float  # user + system, cumulative, whole tree
    rss_bytes: int


def summarise_samples(samples: list[Sample]) -> dict[str, float] | None:
    """Mean and peak CPU % (of one core) between samples, start and peak RSS in MiB."""
    if len(samples) < 2:
        return None
    rates = []
    for before, after in zip(samples, samples[1:], strict=False):
        span = after.at - before.at
        if span > 0:
            rates.append(max(0.0, after.cpu_seconds - before.cpu_seconds) / span * 100)
    span = samples[-1].at - samples[0].at
    mean = max(0.0, samples[-1].cpu_seconds - samples[0].cpu_seconds) / span * 100 if span > 0 else 0.0
    mib = 1024 * 1024
    return {
        "cpu_mean_pct": round(mean, 1),
        "cpu_seconds": round(max(0.0, samples[-1].cpu_seconds - samples[0].cpu_seconds), 2),
        "cpu_peak_pct": round(max(rates), 1) if rates else 0.0,
        "rss_start_mib": round(samples[0].rss_bytes / mib, 1),
        "rss_peak_mib": round(max(s.rss_bytes for s in samples) / mib, 1),
    }


@dataclass
class ProcessSampler:
    """``with ProcessSampler(pid) as sampler: ...`` then ``sampler.summary()``."""

    pid: int
    interval: float = 0.25
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _tree_sample(self) -> Sample | None:
        import psutil

        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return None
        cpu = 0.0
        rss = 0
        for proc in procs:
            try:
                times = proc.cpu_times()
                cpu += times.user + times.system + getattr(times, "children_user", 0.0) + getattr(times, "children_system", 0.0)
                rss += proc.memory_info().rss
            except psutil.Error:
                continue
        return Sample(time.perf_counter(), cpu, rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self._tree_sample()
            if sample is not None:
                self.samples.append(sample)
            self._stop.wait(self.interval)

    def __enter__(self) -> ProcessSampler:
        self._thread = threading.Thread(target=self._run, name="procstats", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        final = self._tree_sample()
        if final is not None:
            self.samples.append(final)

    def summary(self) -> dict[str, float] | None:
        return summarise_samples(self.samples)
