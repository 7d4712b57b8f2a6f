"""A compare result as benchmarks/suite.py writes it, for the report and command-line tests."""

from __future__ import annotations


def compare_payload() -> dict:
    """A compare result: voice-bridge ran, realtimetts was skipped, and a four-level ramp."""
    summary = {
        "utterances": 2,
        "ftts_ms": {"n": 2, "p50": 210.4, "p90": 380.0, "p99": 398.0, "mean": 250.0, "max": 400.0},
        "t2s_ms": {"n": 6, "p50": 150.0, "p90": 420.0, "p99": 500.0, "mean": 200.0, "max": 510.0},
        "t2s_flush_ms": {"n": 2, "p50": 300.0, "p90": 330.0, "p99": 333.0, "mean": 300.0, "max": 333.0},
        "text_wait_ms": {"n": 2, "p50": 40.0, "p90": 50.0, "p99": 50.0, "mean": 40.0, "max": 50.0},
        "engine_first_chunk_ms": {"n": 2, "p50": 120.0, "p90": 130.0, "p99": 130.0, "mean": 120.0, "max": 130.0},
        "overhead_ms": {"n": 2, "p50": 35.0, "p90": 60.0, "p99": 60.0, "mean": 40.0, "max": 60.0},
        "transport_ms": {"n": 2, "p50": 4.0, "p90": 6.0, "p99": 6.0, "mean": 4.0, "max": 6.0},
        "underruns": 1, "underrun_ms": 42.0, "utterances_with_underruns": 1, "audio_seconds": 9.0,
        "rtf": {"tts": 0.08, "voice": 0.0, "resample": 0.004, "total": 0.084},
        "process": {"cpu_mean_pct": 31.0, "cpu_peak_pct": 90.0, "rss_start_mib": 300.0, "rss_peak_mib": 321.0},
    }
    return {
        "benchmark": "compare",
        "date": "2026-11-22T10:00:00",
        "note": "shared machine: timings inflated",
        "machine": {"cores": 2, "cpu": "Test CPU", "python": "3.11", "loadavg": [0.1, 0.1, 0.1], "gpu": None},
        "settings": {"replies": 2, "rate": 70.0, "start_mode": "sessions started together"},
        "peers": {
            "voice-bridge": {"status": "ok", "description": "ours", "summary": summary,
                             "utterances": [{"ftts_ms": 210.4}, {"ftts_ms": 380.0}]},
            "realtimetts": {"status": "skipped", "reason": "no RealtimeTTS environment", "description": "peer"},
        },
        "ramp": {
            "voice-bridge": {"status": "ok", "mode": "together", "max_clean": 3, "capped": False, "levels": [
                {"sessions": n, "utterances": 2 * n, "ftts_ms": {"p50": 200.0 * n, "p90": 300.0 * n}, "underruns": u,
                 "underrun_ms": 10.0 * u, "utterances_with_underruns": min(u, 1), "failures": 0, "process": None}
                for n, u in ((1, 0), (2, 0), (3, 0), (4, 2))]},
        },
    }
