"""benchmarks/procstats.py: process CPU and memory samples."""

from __future__ import annotations

from benchmarks.procstats import Sample, summarise_samples


def test_process_samples_summarise_to_cpu_percent_of_one_core() -> None:
    mib = 1024 * 1024
    samples = [Sample(0.0, 10.0, 100 * mib), Sample(1.0, 10.5, 150 * mib), Sample(2.0, 12.0, 120 * mib)]
    assert summarise_samples(samples) == {
        "cpu_mean_pct": 100.0,  # 2 s of CPU in 2 s of wall
        "cpu_seconds": 2.0,
        "cpu_peak_pct": 150.0,
        "rss_start_mib": 100.0,
        "rss_peak_mib": 150.0,
    }
    assert summarise_samples(samples[:1]) is None


def test_process_sampler_reads_this_process() -> None:
    import os

    from benchmarks.procstats import ProcessSampler

    with ProcessSampler(os.getpid(), interval=0.01) as sampler:
        sum(i * i for i in range(200_000))
    summary = sampler.summary()
    assert summary is not None and summary["rss_peak_mib"] > 10
