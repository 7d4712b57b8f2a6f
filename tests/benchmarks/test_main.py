"""benchmarks/__main__.py: the command line (`python -m benchmarks`): options and the render command."""

from __future__ import annotations

import pytest

from benchmarks.suite import Options
from tests.benchmarks.payloads import compare_payload


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


def test_render_command_rewrites_markdown_and_plots(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json as _json

    from benchmarks.__main__ import main as bench_main

    result = tmp_path / "2026-11-22-x.json"
    result.write_text(_json.dumps(compare_payload()))
    assert bench_main(["render", str(result), "--note", "quiet machine"]) == 0
    assert "**Note:** quiet machine" in (tmp_path / "2026-11-22-x.md").read_text()
    assert (tmp_path / "2026-11-22-x-ftts.png").exists() and (tmp_path / "2026-11-22-x-ramp.png").exists()
