"""benchmarks/suite.py: summaries, the GPU peer's server and its skipped row, the engine probe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.report import render_markdown
from benchmarks.suite import Options, Utterance, cuda_unavailable_reason, summarise
from tests.benchmarks.payloads import compare_payload


def _utterance(**fields) -> Utterance:
    base = dict(
        reply=0, topic="t", session=0, tokens=10, ftts_ms=200.0, text_wait_ms=50.0, first_segment_t2s_ms=150.0,
        first_segment_text="Sure!", t2s_ms=[150.0, 300.0], t2s_flush_ms=400.0, server_ftts_ms=190.0,
        audio_seconds=3.0, underruns=0, underrun_ms=0.0, wall_ms=3000.0,
        stats={"audio_seconds": 3.0, "tts_ms": 300.0, "voice_ms": 0.0, "resample_ms": 3.0},
    )
    return Utterance(**{**base, **fields})


def test_summary_defines_overhead_and_transport() -> None:
    utterances = [
        _utterance(engine_first_chunk_ms=120.0),
        _utterance(ftts_ms=400.0, first_segment_t2s_ms=350.0, engine_first_chunk_ms=250.0, underruns=2, underrun_ms=80.0),
        _utterance(engine_first_chunk_ms=None),  # not probed: left out of the overhead
    ]
    s = summarise(utterances, {"cpu_mean_pct": 50.0})
    assert s["overhead_ms"]["n"] == 2 and s["overhead_ms"]["p50"] == pytest.approx(65.0)  # (30 + 100) / 2
    assert s["transport_ms"]["p50"] == pytest.approx(10.0)
    assert s["ftts_ms"]["p50"] == 200.0 and s["t2s_ms"]["n"] == 6
    assert (s["underruns"], s["underrun_ms"], s["utterances_with_underruns"]) == (2, 80.0, 1)
    assert s["rtf"]["tts"] == pytest.approx(0.1) and s["process"] == {"cpu_mean_pct": 50.0}
    assert "wer" not in s
    scored = summarise([_utterance(wer_errors=1, wer_words=10), _utterance(wer_errors=0, wer_words=30)])
    assert scored["wer"] == 0.025


class _Done:
    def __init__(self, code: int) -> None:
        self.returncode = code


def test_gpu_mode_skips_with_a_reason_without_cuda() -> None:
    assert cuda_unavailable_reason(runner=lambda *a, **k: _Done(0)) is None
    assert "CUDA is not available" in cuda_unavailable_reason(runner=lambda *a, **k: _Done(3))
    assert "torch is not installed" in cuda_unavailable_reason(runner=lambda *a, **k: _Done(4))

    def broken(*a, **k):
        raise OSError("no python")

    assert "could not check" in cuda_unavailable_reason(runner=broken)


@pytest.mark.parametrize("voice", [None, "bench"])
def test_gpu_peer_starts_soprano_on_cuda_with_or_without_a_voice(voice: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The voice-bridge-gpu peer's command line, read back by the bridge's own CLI: the server it
    would start gets Soprano on CUDA, and the RVC voice only when one was given."""
    import asyncio
    import os
    import sys

    from typer.testing import CliRunner

    import bridge.cli
    import bridge.server
    from benchmarks.suite import gpu_description, server_spec

    spec = server_spec("voice-bridge-gpu", Options(gpu=True, gpu_voice=voice))
    assert spec.name == "voice-bridge-gpu" and spec.env == {"VOICE_BRIDGE_CAPACITY_ADMISSION": "false"}
    argv = spec.argv(8123)
    assert argv[:4] == [sys.executable, "-m", "bridge", "serve"]
    started: list[Any] = []

    async def fake_serve(settings: Any, engines: Any = None, *, ready: asyncio.Event | None = None) -> None:
        started.append(settings)

    monkeypatch.setattr(bridge.server, "serve", fake_serve)
    monkeypatch.setattr(bridge.cli, "setup_logging", lambda *args, **kwargs: None)
    for variable in [v for v in os.environ if v.startswith("VOICE_BRIDGE_")]:  # only the argv counts
        monkeypatch.delenv(variable)
    result = CliRunner().invoke(bridge.cli.app, argv[3:])
    assert result.exit_code == 0, result.output
    [settings] = started
    assert (settings.engines.tts, settings.engines.device, settings.rvc.default_voice) == ("soprano", "cuda", voice)
    assert (settings.server.host, settings.server.port, settings.server.log_level) == ("127.0.0.1", 8123, "WARNING")
    # The row says what ran: an RVC voice only when there was one.
    assert spec.description == gpu_description(Options(gpu_voice=voice))
    assert ("RVC" in spec.description) == (voice is not None) and "Soprano" in spec.description
    if voice:
        assert repr(voice) in spec.description


@pytest.mark.parametrize("voice", [None, "bench"])
async def test_a_skipped_gpu_row_describes_the_run_that_was_asked_for(
    voice: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import benchmarks.suite as suite

    payloads: list[dict[str, Any]] = []

    def keep(name: str, payload: dict[str, Any], out_dir: Path = tmp_path) -> Path:
        payloads.append(payload)
        return tmp_path / name

    monkeypatch.setattr(suite, "cuda_unavailable_reason", lambda *a, **k: "CUDA is not available on this machine")
    monkeypatch.setattr(suite, "write_results", keep)
    options = Options(replies=1, peers=(), ramp_peers=(), gpu=True, gpu_voice=voice, out_dir=tmp_path)
    await suite.run_suite(options)
    [payload] = payloads
    row = payload["peers"]["voice-bridge-gpu"]
    assert row["status"] == "skipped" and "CUDA is not available" in row["reason"]
    assert row["description"] == suite.gpu_description(options)
    assert ("RVC" in row["description"]) == (voice is not None)


def test_summary_locates_the_underruns() -> None:
    utterances = [
        _utterance(underruns=1, underrun_ms=12.0, stalls=[(0.06, 12.0)], underruns_buffered=0),
        _utterance(underruns=2, underrun_ms=330.0, stalls=[(0.5, 30.0), (4.0, 300.0)], underruns_buffered=1),
    ]
    s = summarise(utterances)
    assert s["underruns_first_second"] == 2 and s["underruns_buffered"] == 1
    assert s["stall_position_s"]["p50"] == pytest.approx(0.5) and s["stall_length_ms"]["max"] == 300.0
    md = render_markdown({**compare_payload(), "peers": {"voice-bridge": {"status": "ok", "summary": s, "utterances": []}}})
    assert "| voice-bridge | 3 | 2 | 0.50 s | 30 ms | 300 ms | 1 |" in md


def test_engine_probe_fills_stored_utterances(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import benchmarks.suite as suite
    from benchmarks.engine_probe import first_chunk_times

    calls: list[str] = []

    def fake_probe(kind: str):  # type: ignore[no-untyped-def]
        timings = iter([0.5, 0.2, 0.3, 0.4] * 10)  # warm-up, then repeats: the best is kept

        def probe(text: str) -> float:
            calls.append(f"{kind}:{text}")
            return next(timings)

        return probe

    monkeypatch.setattr(suite, "make_probe", fake_probe)
    peers = {
        "voice-bridge": {"status": "ok", "utterances": [{"first_segment_text": "Sure!"}, {"first_segment_text": None}]},
        "naive": {"status": "failed", "utterances": []},
    }
    with suite.Progress(console=suite.console, disable=True) as progress:
        suite.probe_engines(peers, 3, progress)
    assert peers["voice-bridge"]["utterances"][0]["engine_first_chunk_ms"] == 200.0
    assert "engine_first_chunk_ms" not in peers["voice-bridge"]["utterances"][1]
    assert all(c.startswith("streaming:") for c in calls)
    assert first_chunk_times(lambda text: {"a": 0.1}.get(text, 0.0), ["a", "a", " "], repeats=2) == {"a": 0.1}
