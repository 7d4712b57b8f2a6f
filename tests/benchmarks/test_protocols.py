"""benchmarks.protocols: its tables render from a payload, and its encoder-cost figure runs."""

from __future__ import annotations

from benchmarks.protocols import FORMATS, encoder_cost, markdown


def test_markdown_renders_every_section() -> None:
    row = {"first_byte_ms_p50": 150.0, "total_ms_p50": 4000.0, "first_over_total_p50": 0.04, "bytes_p50": 1234}
    payload = {
        "date": "2026-12-03T09:00:00",
        "replies": 5,
        "machine": {"cores": 2, "cpu": "test cpu", "loadavg": [1.0, 1.0, 1.0]},
        "opus_bitrate": 64000,
        "openai": {f"{fmt}/audio": row for fmt in FORMATS},
        "wyoming": {"plain": {"first_chunk_ms_p50": 120.0, "total_ms_p50": 4000.0, "first_over_total_p50": 0.03}},
        "wire": {"f32le": {"kbit_per_s": 1536.0, "vs_f32le": 1.0}, "opus-raw": {"kbit_per_s": 78.8, "vs_f32le": 0.051}},
        "encoders": {"opus-raw (WebSocket, Discord)": {"cpu_seconds_per_audio_second_p50": 0.0085}},
    }
    text = markdown(payload)
    assert "| mp3/audio | 150 ms | 4,000 ms | 0.04 | 1,234 B |" in text
    assert "| plain | 120 ms |" in text and "| opus-raw | 78.8 | 0.051 |" in text
    assert "64 kbit/s" in text and "0.0085" in text


def test_encoder_cost_measures_each_encoder() -> None:
    costs = encoder_cost(seconds=0.5, repeats=1)
    assert {"opus-raw (WebSocket, Discord)", "opus-ogg (WebSocket)", "mp3 (OpenAI)", "pcm (OpenAI)"} <= set(costs)
    assert all(row["cpu_seconds_per_audio_second_p50"] >= 0 for row in costs.values())
