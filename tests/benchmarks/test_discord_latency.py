"""benchmarks/discord_latency.py: the Discord figure's harness imports and renders."""

from __future__ import annotations

import pytest


def test_discord_latency_benchmark_imports_and_renders(tmp_path) -> None:
    # The Discord figure's harness must keep working as the suite it borrows from changes.
    pytest.importorskip("discord")
    from benchmarks import discord_latency

    summary = {
        "first_token_to_packet_ms": {"p50": 120.0, "p90": 150.0, "p99": 190.0},
        "first_token_to_bridge_audio_ms": {"p50": 60.0},
        "bridge_audio_to_packet_ms": {"p50": 60.0},
        "underruns": 0,
        "replies_with_underruns": 0,
        "underrun_ms": 0.0,
    }
    info = {"cores": 2, "cpu": "test CPU", "gpu": None}
    text = discord_latency.markdown(70.0, {"default": summary}, 20, info)
    assert "**120 ms**" in text and "2 CPU cores (test CPU), no GPU" in text
    stem = discord_latency.write_results("x", {"summary": {"default": summary}}, text, tmp_path)
    assert stem.with_suffix(".md").read_text() == text and stem.with_suffix(".json").is_file()
