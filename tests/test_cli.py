"""bridge/cli.py: ``voice-bridge serve --tts …`` (the flag reaches the settings and picks the
engine), ``say`` against a real server, and the word pieces the CLI streams.

The server itself is replaced by a stand-in that records the settings it was given, so no
socket is opened and no real model is loaded; the last test loads a tiny random Soprano
folder (``soprano_model.py``) to show the chosen engine is the one that speaks.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bridge.audio.wav import read_wav
from bridge.cli import app, word_pieces
from bridge.config import Settings
from bridge.engines import create_tts


@pytest.fixture
def serve_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Run ``voice-bridge serve ARGS`` and return the Settings the server would have started with.

    Isolated from the machine: no ``VOICE_BRIDGE_*`` variables, no ``voice-bridge.toml`` (the
    working directory is a fresh one), logging left alone.
    """
    for name in list(os.environ):
        if name.startswith("VOICE_BRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("bridge.cli.setup_logging", lambda *args, **kwargs: None)
    seen: list[Settings] = []

    async def fake_serve(settings: Settings, engines: Any = None, **kwargs: Any) -> None:
        seen.append(settings)

    monkeypatch.setattr("bridge.server.serve", fake_serve)

    def run(*args: str, env: dict[str, str] | None = None) -> Settings:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        result = CliRunner().invoke(app, ["serve", *args])
        assert result.exit_code == 0, result.output
        assert len(seen) == 1, "serve did not reach the server exactly once"
        return seen.pop()

    return run


def test_tts_flag_selects_soprano(serve_settings, tmp_path: Path) -> None:
    settings = serve_settings("--tts", "soprano", "--device", "cpu", "--port", "0")
    assert (settings.engines.tts, settings.engines.device, settings.server.port) == ("soprano", "cpu", 0)
    pytest.importorskip("torch")
    from bridge.tts.soprano import SopranoEngine

    engine = create_tts(settings)
    assert isinstance(engine, SopranoEngine)
    assert engine.device_setting == "cpu"
    assert engine.model_dir == Path("models") / "soprano"  # models_dir default, relative to the cwd
    assert engine._scheduler is None  # chosen, not loaded: serve loads engines in the background


def test_without_the_flag_the_default_engine_is_piper(serve_settings) -> None:
    settings = serve_settings()
    assert settings.engines.tts == "piper"
    pytest.importorskip("piper")
    assert type(create_tts(settings)).__name__ == "PiperEngine"


def test_flag_overrides_the_environment(serve_settings) -> None:
    assert serve_settings(env={"VOICE_BRIDGE_TTS": "soprano"}).engines.tts == "soprano"
    assert serve_settings("--tts", "piper").engines.tts == "piper"


def test_flag_overrides_the_config_file(serve_settings, tmp_path: Path) -> None:
    (tmp_path / "voice-bridge.toml").write_text('tts = "soprano"\n')
    assert serve_settings().engines.tts == "soprano"  # the file is read…
    assert serve_settings("--tts", "piper").engines.tts == "piper"  # …and the flag wins over it


def test_serve_tts_soprano_speaks_with_a_tiny_model(serve_settings, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("soprano")
    from tests.support.soprano_model import build_model_dir

    from bridge.cancel import CancelToken

    folder = build_model_dir(tmp_path / "soprano-tiny", "chain", chain_length=8)
    settings = serve_settings(
        "--tts", "soprano", "--device", "cpu", env={"VOICE_BRIDGE_SOPRANO_MODEL_DIR": str(folder)}
    )
    engine = create_tts(settings)
    try:
        engine.load()
        info = engine.info()
        assert (info["name"], info["device"], info["sample_rate"]) == ("soprano", "cpu", 32_000)
        assert info["model_dir"] == str(folder)
        samples = sum(chunk.audio.size for chunk in engine.iter_chunks("Hello there.", CancelToken()))
        assert samples > 0
    finally:
        engine.close()


def test_a_bad_value_is_a_usage_error_not_a_traceback(serve_settings, monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["serve", "--tts", "foo"])
    assert result.exit_code == 2 and result.exception is not None and not isinstance(result.exception, ValueError)
    assert "invalid settings" in result.output and "tts" in result.output and "'foo'" in result.output
    assert "Traceback" not in result.output
    # The same for a bad environment variable, named by its setting.
    monkeypatch.setenv("VOICE_BRIDGE_PORT", "eighty")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2 and "port" in result.output and "'eighty'" in result.output


# ----------------------------------------------------------------------------- say
def test_word_pieces_keep_leading_spaces() -> None:
    assert word_pieces("Hi there,  you.") == ["Hi", " there,", "  you."]
    assert "".join(word_pieces("a b\nc")) == "a b\nc"


async def test_cli_say_writes_a_wav(server, tmp_path: Path) -> None:
    out = tmp_path / "say.wav"
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["say", "Written by the command line.", "-o", str(out), "--url", server.ws_url]
    )
    assert result.exit_code == 0, result.output
    audio, rate = read_wav(out)
    assert rate == 48000 and audio.size / rate > 1.0


async def test_cli_say_writes_word_timings_and_subtitles(server, tmp_path: Path) -> None:
    text = "Hello there. It cost $3.14 a night."
    out, words, vtt, srt = (tmp_path / name for name in ("say.wav", "words.json", "say.vtt", "say.srt"))
    for subtitles in (vtt, srt):
        args = ["say", text, "-o", str(out), "--url", server.ws_url, "--words", str(words), "--subtitles", str(subtitles)]
        result = await asyncio.to_thread(CliRunner().invoke, app, args)
        assert result.exit_code == 0, result.output
    audio, rate = read_wav(out)
    document = json.loads(words.read_text())
    assert [w["text"] for w in document["words"]] == text.split()
    assert document["audio_seconds"] == pytest.approx(audio.size / rate, abs=0.001)
    assert all(0 <= w["start"] <= w["end"] <= audio.size / rate for w in document["words"])
    first, second = (w for w in document["words"] if w["text"] in ("Hello", "It"))
    assert vtt.read_text().startswith("WEBVTT")
    assert "Hello there.\n" in vtt.read_text() and "It cost $3.14 a night.\n" in vtt.read_text()
    assert srt.read_text().startswith("1\n00:00:")
    assert f"{_srt_time(first['start'])} --> " in srt.read_text()
    assert f"\n2\n{_srt_time(second['start'])} --> " in srt.read_text()


def _srt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    return f"00:00:{millis // 1000:02d},{millis % 1000:03d}"
