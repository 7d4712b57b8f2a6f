"""The ``voice-bridge`` command line: ``serve``, ``say``, ``models``, ``bench``."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError

from bridge import __version__
from bridge.config import Settings, documented_name, load_settings, setting_help
from bridge.logs import setup_logging

app = typer.Typer(add_completion=False, no_args_is_help=True, help="LLM tokens in, a character's voice out, live.")
log = logging.getLogger("bridge.cli")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"voice-bridge {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """voice-bridge: a WebSocket server that speaks LLM tokens as they arrive."""


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help=setting_help("host"))] = None,
    port: Annotated[Optional[int], typer.Option(help=setting_help("port"))] = None,
    tts: Annotated[Optional[str], typer.Option(help=setting_help("tts") + " piper or soprano.")] = None,
    device: Annotated[Optional[str], typer.Option(help=setting_help("device"))] = None,
    voice: Annotated[Optional[str], typer.Option(help=setting_help("default_voice"))] = None,
    log_level: Annotated[Optional[str], typer.Option(help=setting_help("log_level") + " DEBUG, INFO, WARNING…")] = None,
    wyoming_port: Annotated[Optional[int], typer.Option(help=setting_help("wyoming_port"))] = None,
) -> None:
    """Start the server (settings: VOICE_BRIDGE_* variables and voice-bridge.toml)."""
    from bridge.server import serve as run_server

    settings = settings_or_exit(
        host=host, port=port, tts=tts, device=device, default_voice=voice, log_level=log_level, wyoming_port=wyoming_port
    )
    setup_logging(settings.server.log_level, settings.server.log_json)
    asyncio.run(run_server(settings))


def settings_or_exit(**overrides: object) -> Settings:
    """The settings, or a one-line-per-problem message and exit code 2 (a usage error) when an
    option, a ``VOICE_BRIDGE_*`` variable or the config file holds a bad value."""
    try:
        return load_settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = documented_name(Settings, error["loc"]) or "settings"
            lines.append(f"  {name}: {error['msg']} (got {error.get('input')!r})")
        typer.echo("invalid settings:\n" + "\n".join(lines), err=True)
        raise typer.Exit(2) from None


_WORD_PIECES = re.compile(r"\s*\S+")


def word_pieces(text: str) -> list[str]:
    """Split text the way LLMs stream it: word pieces carrying their leading space."""
    return _WORD_PIECES.findall(text)


@app.command()
def say(
    text: Annotated[str, typer.Argument(help="What to say.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="WAV file to write (48 kHz).")] = Path("out.wav"),
    url: Annotated[str, typer.Option(help="Server WebSocket URL.")] = "ws://127.0.0.1:8765/ws/stream",
    voice: Annotated[Optional[str], typer.Option(help="RVC voice.")] = None,
    pitch_shift: Annotated[Optional[float], typer.Option(help="Semitones, -24…24.")] = None,
    rate: Annotated[float, typer.Option(help="Tokens per second to send (0: all at once).")] = 70.0,
    api_key: Annotated[Optional[str], typer.Option(envvar="VOICE_BRIDGE_API_KEY", help="API key.")] = None,
    words: Annotated[
        Optional[Path], typer.Option("--words", help="Also write the word timings here (JSON, seconds in the WAV).")
    ] = None,
    subtitles: Annotated[
        Optional[Path], typer.Option("--subtitles", help="Also write subtitles here: WebVTT, or SRT for a .srt name.")
    ] = None,
) -> None:
    """Stream TEXT to a running server as LLM-like tokens and write what comes back."""
    import json

    from bridge.audio.wav import write_wav
    from bridge.client import BridgeClient, BridgeError
    from bridge.config import OUTPUT_SAMPLE_RATE

    timed = words is not None or subtitles is not None

    async def run() -> float:
        async with await BridgeClient.connect(
            url, api_key=api_key, voice=voice, pitch_shift=pitch_shift, words=timed
        ) as client:
            spoken = await client.speak_timed(word_pieces(text), tokens_per_second=rate or None)
            for message in client.errors:
                typer.echo(f"server error: {message}", err=True)
        write_wav(output, spoken.audio, OUTPUT_SAMPLE_RATE)
        seconds = spoken.audio.size / OUTPUT_SAMPLE_RATE
        if words is not None:
            document = {"audio": str(output), "audio_seconds": round(seconds, 3), "words": [w.as_json() for w in spoken.words]}
            words.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
            typer.echo(f"wrote {words} ({len(spoken.words)} words)")
        if subtitles is not None:
            from bridge.subtitles import write_subtitles

            cues = write_subtitles(subtitles, spoken.words)
            typer.echo(f"wrote {subtitles} ({cues} cues)")
        return seconds

    try:
        seconds = asyncio.run(run())
    except BridgeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"wrote {output} ({seconds:.2f} s at 48 kHz)")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    """The latency benchmark suite: `voice-bridge bench run` (all peers), `bench run --quick`, `bench readme`.

    Same as `python -m benchmarks ...` from a checkout; `voice-bridge bench --help` for options.
    """
    import sys

    repo = Path(__file__).resolve().parent.parent
    if (repo / "benchmarks" / "__main__.py").is_file() and str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    try:
        from benchmarks.__main__ import main as bench_main  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        typer.echo(f"the benchmark suite ships with the source checkout (benchmarks/), not the wheel: {exc}", err=True)
        raise typer.Exit(1) from exc
    raise typer.Exit(bench_main(list(ctx.args) or ["--help"]))


def _mount_optional() -> None:
    try:
        from bridge.cli_models import app as models_app  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return
    app.add_typer(models_app, name="models", help="Download and list model weights and voices.")


_mount_optional()
