"""The benchmark suite's own logic (never a measured number): token splitting, the playback
model, percentiles, token-to-sound matching, the ramp, summaries, rendering, the CLI hook."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.metrics import (
    SegmentMark,
    Trace,
    figures,
    segments_from_blocks,
    segments_from_messages,
    stage_rtf,
    token_to_sound,
)
from benchmarks.naive_server import naive_cuts
from benchmarks.playback import simulate_playback
from benchmarks.procstats import Sample, summarise_samples
from benchmarks.ramp import Ramp, ramp_levels
from benchmarks.report import (
    README_BEGIN,
    README_END,
    plot_ftts,
    plot_ramp,
    readme_with_block,
    render_markdown,
    render_readme_block,
)
from benchmarks.stats import percentile, summary_ms
from benchmarks.suite import Options, Utterance, cuda_unavailable_reason, summarise
from benchmarks.tokens import llm_tokens, load_corpus
from benchmarks.wer import word_errors

REPO = Path(__file__).resolve().parents[2]


@given(st.text(max_size=300))
def test_tokens_rejoin_to_the_text(text: str) -> None:
    assert "".join(llm_tokens(text)) == text


def test_tokens_look_like_llm_word_pieces() -> None:
    tokens = llm_tokens("Sure! The reservation costs $1,284.56 tonight.")
    assert tokens[:3] == ["Sure", "!", " The"]
    assert tokens[3:6] == [" rese", "rvat", "ion"]  # a long word in pieces, the first keeps the space
    assert [" $", "1", ",", "284", ".", "56"] == tokens[tokens.index(" $") : tokens.index(" $") + 6]


def test_corpus_ships_enough_varied_replies() -> None:
    corpus = load_corpus()
    assert len(corpus) >= 50
    assert {"booking", "food", "sports", "directions", "numbers", "abbreviations", "markdown"} <= {r.topic for r in corpus}
    ratio = sum(len(llm_tokens(r.text)) for r in corpus) / sum(len(r.text.split()) for r in corpus)
    assert 1.1 < ratio < 1.8  # tokens per word, as BPE models stream English


def test_benchmarks_readme_describes_the_corpus_it_ships() -> None:
    # The README's description of the corpus went stale once (54 replies for 62): it is checked.
    import re

    corpus = load_corpus()
    text = (REPO / "benchmarks" / "README.md").read_text(encoding="utf-8")
    described = re.search(r"`corpus\.jsonl`, (\d+) assistant replies \(.*?\), about (\d+) words each", text, re.S)
    assert described is not None, "benchmarks/README.md no longer describes corpus.jsonl"
    assert int(described.group(1)) == len(corpus)
    mean_words = sum(len(r.text.split()) for r in corpus) / len(corpus)
    assert abs(int(described.group(2)) - mean_words) <= 5


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


def test_percentiles() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert math.isnan(percentile([], 50))
    s = summary_ms([0.1] * 9 + [1.0])
    assert s["p50"] == 100.0 and s["max"] == 1000.0 and s["n"] == 10


def test_naive_cutter_cuts_like_the_seed() -> None:
    assert naive_cuts("Sure! I can") == (["Sure!"], " I can")
    assert naive_cuts("It costs $3.") == (["It costs $3."], "")  # the seed's known price bug
    long = "word " * 50
    segments, rest = naive_cuts(long)
    assert segments and len(segments[0]) == 200


def test_word_errors_normalise_both_sides() -> None:
    assert word_errors("Hello, World!", "hello world") == (0, 2)
    assert word_errors("one two three", "one too three four") == (2, 3)
    assert word_errors("a b", "") == (2, 2)


# ----------------------------------------------------------------------------- playback end
def test_playback_reports_when_the_listener_hears_the_end() -> None:
    # 0.5 s at t=0, then 0.5 s at t=0.8 (a 300 ms stall): the last sample sounds at 1.3 s.
    report = simulate_playback([(0.0, 24000), (0.8, 24000)])
    assert report.ends_at == pytest.approx(1.3)
    assert simulate_playback([]).ends_at is None


# ----------------------------------------------------------------------------- token-to-sound


def _segment(text: str, token: int | None = None) -> dict:
    event = {"type": "segment", "text": text}
    if token is not None:
        event["token"] = token
    return event


def test_each_segment_gets_the_first_audio_after_its_announcement() -> None:
    messages = [
        (0.05, "audio", 960),  # before any segment: not attributed
        (1.0, "segment", _segment("Sure!", 2)),
        (1.2, "audio", 960),
        (1.3, "audio", 960),
        (2.0, "segment", _segment("```code```", 9)),  # nothing sounded
        (2.5, "segment", _segment("Bye.")),
        (2.9, "audio", 960),
    ]
    marks = segments_from_messages(messages)
    assert [(m.text, m.token, m.announced, m.first_audio) for m in marks] == [
        ("Sure!", 2, 1.0, 1.2),
        ("```code```", 9, 2.0, None),
        ("Bye.", None, 2.5, 2.9),
    ]


def test_token_to_sound_starts_at_the_closing_token_or_the_flush() -> None:
    trace = Trace(
        token_sent=[0.0, 0.1, 0.2, 0.3],
        flush_sent=0.4,
        audio=[(0.5, 960)],
        sample_rate=48000,
        segments=[SegmentMark("a b", 2, first_audio=0.35), SegmentMark("c", None, first_audio=0.9), SegmentMark("x", 3)],
    )
    assert token_to_sound(trace) == pytest.approx([0.25, 0.5, None])  # 0.35 − t(token 2); 0.9 − flush


def test_token_index_past_what_was_sent_is_an_error() -> None:
    trace = Trace([0.0], 0.1, [], 48000, [SegmentMark("a", 5, first_audio=1.0)])
    with pytest.raises(ValueError, match="token 5"):
        token_to_sound(trace)


def test_library_blocks_are_attributed_by_byte_offset() -> None:
    # Sentence 1 queued 1000 bytes in two puts, sentence 2 queued 600; the player re-cut them
    # into 512-byte chunks. Sentence 2's first byte (offset 1000) is in the chunk ending at 1024.
    sentences = [(1.0, "One.", 5), (1.5, "Two.", 9), (3.0, "Three.", 12)]
    puts = [(1.2, 400, 1), (1.3, 600, 1), (2.0, 600, 2)]
    chunks = [(1.21, 512), (1.31, 512), (2.01, 512), (2.02, 64)]
    marks = segments_from_blocks(sentences, puts, chunks, end_of_text=2.5)
    assert [(m.token, m.first_audio) for m in marks] == [(5, 1.21), (9, 1.31), (None, None)]


def test_figures_of_one_utterance() -> None:
    # Tokens every 100 ms; segment 1 closed by token 3 (sent at 0.2) sounds at 0.5; segment 2
    # closed by the flush (0.45) sounds at 1.0. Audio: 0.25 s at 0.5, then 0.25 s at 1.0 → one
    # 250 ms underrun.
    trace = Trace(
        token_sent=[0.0, 0.1, 0.2, 0.3, 0.4],
        flush_sent=0.45,
        audio=[(0.5, 12000), (1.0, 12000)],
        sample_rate=48000,
        segments=[SegmentMark("Hi there,", 3, 0.3, 0.5), SegmentMark("friend.", None, 0.6, 1.0)],
        stats={"first_text_to_audio_ms": 480.0},
        done=1.1,
    )
    fig = figures(trace)
    assert fig.ftts == pytest.approx(0.5)
    assert fig.text_wait == pytest.approx(0.2)
    assert fig.first_segment_t2s == pytest.approx(0.3) and fig.first_segment_text == "Hi there,"
    assert fig.t2s == pytest.approx([0.3]) and fig.t2s_flush == pytest.approx(0.55)
    assert (fig.underruns, fig.underrun_ms) == (1, pytest.approx(250.0, abs=0.5))
    assert fig.stalls == [(0.25, pytest.approx(250.0, abs=0.5))] and fig.underruns_buffered == 1
    assert fig.playback_end == pytest.approx(1.25)
    assert fig.server_ftts == pytest.approx(0.48) and fig.wall == pytest.approx(1.1)


def test_figures_without_audio_are_nan_not_a_crash() -> None:
    fig = figures(Trace([0.0, 0.1], 0.2, [], 48000))
    assert math.isnan(fig.ftts) and fig.first_segment_t2s is None and fig.underruns == 0


def test_stage_rtf_is_stage_time_over_audio_out() -> None:
    stats = [
        {"audio_seconds": 2.0, "tts_ms": 200.0, "voice_ms": 100.0, "resample_ms": 10.0, "tts_rtf": 0.09},
        {"audio_seconds": 6.0, "tts_ms": 600.0, "voice_ms": 300.0, "resample_ms": 30.0, "tts_rtf": 0.11},
        {},  # an utterance that reported nothing
    ]
    rtf = stage_rtf(stats)
    assert rtf == {"tts": 0.1, "voice": 0.05, "resample": 0.005, "total": 0.155, "engine_rtf": 0.105}
    assert stage_rtf([{}]) is None


# ----------------------------------------------------------------------------- ramp


def test_ramp_levels() -> None:
    assert ramp_levels(1) == [1]
    assert ramp_levels(8) == [1, 2, 3, 4, 6, 8]
    assert ramp_levels(10) == [1, 2, 3, 4, 6, 8, 10]
    assert ramp_levels(64) == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]
    with pytest.raises(ValueError):
        ramp_levels(0)


def _drive(ramp: Ramp, underruns_at: dict[int, int], failures_at: dict[int, int] | None = None) -> list[int]:
    ran = []
    for level in ramp.levels():
        ran.append(level)
        ramp.record(level, underruns_at.get(level, 0), (failures_at or {}).get(level, 0))
    return ran


def test_ramp_stops_after_the_first_level_with_underruns() -> None:
    ramp = Ramp(max_sessions=16)
    assert _drive(ramp, {6: 2, 8: 5}) == [1, 2, 3, 4, 6]
    assert ramp.max_clean == 4 and not ramp.capped


def test_ramp_counts_failed_sessions_as_unclean() -> None:
    ramp = Ramp(max_sessions=16)
    assert _drive(ramp, {}, {3: 1}) == [1, 2, 3]
    assert ramp.max_clean == 2


def test_ramp_when_one_session_already_underruns() -> None:
    ramp = Ramp(max_sessions=8)
    assert _drive(ramp, {1: 1}) == [1]
    assert ramp.max_clean == 0


def test_ramp_all_clean_is_capped() -> None:
    ramp = Ramp(max_sessions=4)
    assert _drive(ramp, {}) == [1, 2, 3, 4]
    assert ramp.max_clean == 4 and ramp.capped


def test_fixed_levels_all_run_whatever_their_outcome() -> None:
    ramp = Ramp(max_sessions=16, fixed_levels=[12, 12, 18])
    ran = []
    for level in ramp.levels():
        ran.append(level)
        ramp.record(level, underruns=3)
    assert ran == [12, 12, 18] and ramp.max_clean == 0


# ----------------------------------------------------------------------------- process stats


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


# ----------------------------------------------------------------------------- suite summaries


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


def test_command_line_options() -> None:
    from benchmarks.__main__ import build_parser, options_from

    quick = options_from(build_parser().parse_args(["run", "--quick", "--peers", "voice-bridge,naive"]))
    assert (quick.replies, quick.ramp_max, quick.ramp_utterances, quick.peers) == (6, 4, 1, ("voice-bridge", "naive"))
    full = options_from(build_parser().parse_args(["run", "--no-ramp", "--rate", "35"]))
    assert full.replies is None and full.ramp_peers == () and full.rate == 35.0 and full == Options(
        rate=35.0, ramp_peers=(), peers=full.peers
    )
    with pytest.raises(SystemExit, match="unknown peer"):
        options_from(build_parser().parse_args(["run", "--peers", "elevenlabs"]))


def test_rvc_peer_options_and_server(tmp_path) -> None:
    from benchmarks.__main__ import build_parser, options_from
    from benchmarks.suite import server_spec

    with pytest.raises(SystemExit, match="go together"):
        options_from(build_parser().parse_args(["run", "--rvc-voice", "bench"]))
    with pytest.raises(SystemExit, match="no voice 'bench'"):
        options_from(build_parser().parse_args(["run", "--rvc-models", str(tmp_path), "--rvc-voice", "bench"]))
    (tmp_path / "voices" / "bench").mkdir(parents=True)
    options = options_from(build_parser().parse_args(["run", "--rvc-models", str(tmp_path), "--rvc-voice", "bench"]))
    spec = server_spec("voice-bridge-rvc", options)
    assert spec.name == "voice-bridge-rvc" and spec.command[-2:] == ["--voice", "bench"]
    from benchmarks.client import BENCH_SERVER_ENV

    assert spec.env == {**BENCH_SERVER_ENV, "VOICE_BRIDGE_MODELS_DIR": str(tmp_path.resolve())}


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
    assert (settings.tts, settings.device, settings.default_voice) == ("soprano", "cuda", voice)
    assert (settings.host, settings.port, settings.log_level) == ("127.0.0.1", 8123, "WARNING")
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


# ----------------------------------------------------------------------------- RealtimeTTS lines
def test_realtimetts_driver_line_becomes_a_trace() -> None:
    from benchmarks.peers.realtimetts import trace_of

    line = {
        "token_sent": [10.0, 10.1, 10.2],
        "end_of_text": 10.25,
        "sentences": [[10.15, "Hi there.", 2], [10.3, "Bye.", 3]],
        "puts": [[10.4, 4410, 1], [10.6, 2000, 2]],
        "chunks": [[10.41, 4096], [10.42, 314], [10.61, 2000]],
        "done": 10.7,
        "sample_rate": 22050,
        "sample_width": 2,
    }
    trace = trace_of(line)
    assert trace.audio == [(10.41, 2048), (10.42, 157), (10.61, 1000)]  # samples of 16-bit audio
    assert [(m.token, m.first_audio) for m in trace.segments] == [(2, 10.41), (None, 10.61)]
    fig = figures(trace)
    assert fig.ftts == pytest.approx(0.41) and fig.t2s == pytest.approx([0.31]) and fig.t2s_flush == pytest.approx(0.36)


def test_a_one_letter_tail_joins_the_piece_before_it() -> None:
    # 9 letters → "brea" "kfas" "t": the "t" joins "kfas" (it once landed on the wrong piece,
    # turning "breakfast" into "kfastkfas" in every replay).
    assert llm_tokens(" breakfast") == [" brea", "kfast"]
    assert "".join(llm_tokens("AAAAAAAAB")) == "AAAAAAAAB"


# ----------------------------------------------------------------------------- the naive peer's events
class _FakeEngine:
    """Stands in for Piper: 10 ms of silence per character, at Piper's rate."""

    sample_rate = 22050

    def synthesize(self, text: str):  # type: ignore[no-untyped-def]
        import numpy as np

        return np.zeros(len(text) * 220, dtype=np.float32)


async def test_naive_server_names_the_closing_token_like_the_bridge() -> None:
    import json as _json

    from aiohttp import WSMsgType, web
    from aiohttp.test_utils import TestClient, TestServer

    from benchmarks.naive_server import ENGINE, handle

    app = web.Application()
    app[ENGINE] = _FakeEngine()  # type: ignore[assignment]
    app.router.add_get("/ws/stream", handle)
    async with TestClient(TestServer(app)) as client:
        ws = await client.ws_connect("/ws/stream?events=1")
        assert _json.loads((await ws.receive()).data)["type"] == "ready"
        for token in ["Sure", "!", " I", " can"]:
            await ws.send_str(_json.dumps({"token": token}))
        await ws.send_str(_json.dumps({"flush": True}))
        seen: list = []
        while True:
            msg = await ws.receive()
            if msg.type == WSMsgType.BINARY:
                if seen and seen[-1] != "audio":
                    seen.append("audio")
                continue
            event = _json.loads(msg.data)
            if event["type"] == "flushed":
                stats = event["stats"]
                break
            seen.append((event["text"], event.get("token")))
        await ws.close()
    assert seen == [("Sure!", 2), "audio", (" I can", None), "audio"]
    assert stats["tokens"] == 4 and stats["audio_seconds"] > 0 and "first_text_to_audio_ms" in stats


# ----------------------------------------------------------------------------- rendering


def _payload() -> dict:
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


def test_markdown_shows_every_peer_and_why_one_did_not_run() -> None:
    md = render_markdown(_payload())
    assert "| voice-bridge | 210 ms | 380 ms | 398 ms | 150 ms | 420 ms | 300 ms | 1 (1/2) | 42 ms | 3 |" in md
    assert "| realtimetts | skipped: no RealtimeTTS environment |" in md
    assert "| voice-bridge | 40 ms | 120 ms | 35 ms | 60 ms | 4 ms | 0.080 | 0.000 | 0.004 | 31 % | 321 MiB | — |" in md
    assert "| 4 | 8 | 800 ms | 1,200 ms | 2 (1) | 20 ms | — | 0 | — | — | — |" in md  # older results: no gap spread or cost
    assert "**Note:** shared machine: timings inflated" in md and "## Definitions" in md


def test_readme_block_renders_and_replaces_only_between_the_markers() -> None:
    block = render_readme_block(_payload(), "details: `benchmarks/results/x.md`")
    assert block.startswith(README_BEGIN) and block.rstrip().endswith(README_END)
    assert "| voice-bridge | 210 ms |" in block and "2 corpus replies at 70 tokens/s, one session" in block
    readme = f"# Title\n\n## Benchmarks\n\n{README_BEGIN}\nold table\n{README_END}\n\n## After\n"
    updated = readme_with_block(readme, block)
    assert updated.startswith("# Title\n\n## Benchmarks\n\n") and updated.endswith(f"{README_END}\n\n## After\n")
    assert "old table" not in updated and readme_with_block(updated, block) == updated  # idempotent
    with pytest.raises(ValueError, match="markers"):
        readme_with_block("# no markers\n", block)


def test_plots_are_written(tmp_path) -> None:  # type: ignore[no-untyped-def]
    plot_ftts(_payload(), tmp_path / "ftts.png")
    plot_ramp(_payload(), tmp_path / "ramp.png")
    for name in ("ftts.png", "ramp.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("readme", ["README.md", "benchmarks/README.md"])
def test_readmes_hold_the_block_of_the_newest_committed_result(readme: str) -> None:
    """Both READMEs show exactly what ``python -m benchmarks readme --update`` writes from the
    newest comparison in benchmarks/results: a new run without the update fails here."""
    import json as _json

    from benchmarks.__main__ import newest_result

    results = REPO / "benchmarks" / "results"
    if not any(results.glob("*-compare.json")):
        pytest.skip("no committed results yet")
    newest = newest_result(results)
    block = render_readme_block(_json.loads(newest.read_text()), f"details: `benchmarks/results/{newest.stem}.md`")
    assert block.count("| voice-bridge |") == 1 and README_END in block
    text = (REPO / readme).read_text(encoding="utf-8")
    assert text.count(README_BEGIN) == 1 and text.count(README_END) == 1
    shown = text[text.index(README_BEGIN) : text.index(README_END) + len(README_END)] + "\n"
    assert shown == block, f"{readme} is stale: run `python -m benchmarks readme --update {readme}`"


def test_bench_command_is_wired_into_the_cli(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json as _json

    from typer.testing import CliRunner

    from bridge.cli import app

    result_file = tmp_path / "2026-11-22-compare.json"
    result_file.write_text(_json.dumps(_payload()))
    out = CliRunner().invoke(app, ["bench", "readme", str(result_file)])
    assert out.exit_code == 0, out.output
    assert out.output.startswith(README_BEGIN) and "| voice-bridge | 210 ms |" in out.output


def test_playback_says_where_each_stall_happened() -> None:
    # 60 ms of audio, a 12 ms gap, then the rest: the stall is at 0.06 s of audio, 12 ms long;
    # a listener with a 100 ms buffer hears no gap.
    arrivals = [(0.0, 2880), (0.072, 9600), (0.2, 9600)]
    report = simulate_playback(arrivals)
    assert report.stalls == ((0.06, 12.0),)
    assert simulate_playback(arrivals, prebuffer_s=0.1).underruns == 0


def test_summary_locates_the_underruns() -> None:
    utterances = [
        _utterance(underruns=1, underrun_ms=12.0, stalls=[(0.06, 12.0)], underruns_buffered=0),
        _utterance(underruns=2, underrun_ms=330.0, stalls=[(0.5, 30.0), (4.0, 300.0)], underruns_buffered=1),
    ]
    s = summarise(utterances)
    assert s["underruns_first_second"] == 2 and s["underruns_buffered"] == 1
    assert s["stall_position_s"]["p50"] == pytest.approx(0.5) and s["stall_length_ms"]["max"] == 300.0
    md = render_markdown({**_payload(), "peers": {"voice-bridge": {"status": "ok", "summary": s, "utterances": []}}})
    assert "| voice-bridge | 3 | 2 | 0.50 s | 30 ms | 300 ms | 1 |" in md


def test_render_command_rewrites_markdown_and_plots(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json as _json

    from benchmarks.__main__ import main as bench_main

    result = tmp_path / "2026-11-22-x.json"
    result.write_text(_json.dumps(_payload()))
    assert bench_main(["render", str(result), "--note", "quiet machine"]) == 0
    assert "**Note:** quiet machine" in (tmp_path / "2026-11-22-x.md").read_text()
    assert (tmp_path / "2026-11-22-x-ftts.png").exists() and (tmp_path / "2026-11-22-x-ramp.png").exists()


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
