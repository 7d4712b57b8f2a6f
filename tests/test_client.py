"""bridge.client against the real server, and the CLI's `say`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bridge.audio.wav import read_wav
from bridge.cli import app, word_pieces
from bridge.client import AudioChunk, BridgeClient, BridgeError, Event


def test_word_pieces_keep_leading_spaces() -> None:
    assert word_pieces("Hi there,  you.") == ["Hi", " there,", "  you."]
    assert "".join(word_pieces("a b\nc")) == "a b\nc"


async def test_speak_streams_tokens_and_returns_the_utterance(server) -> None:
    async with await BridgeClient.connect(server.ws_url) as client:
        assert client.ready["sample_rate"] == 48000
        audio = await client.speak(word_pieces("Hello from the Python client."), tokens_per_second=200)
        again = await client.speak("A second utterance.")
    assert audio.dtype == np.float32 and audio.size / 48000 > 1.0
    assert again.size / 48000 > 0.5
    assert client.errors == []


async def test_audio_iterator_ends_at_flushed(server) -> None:
    async with await BridgeClient.connect(server.ws_url, format="s16le") as client:
        await client.send_token("Counting: one, two, three.")
        await client.flush()
        chunks = [chunk async for chunk in client.audio()]
    assert chunks and all(c.dtype == np.float32 for c in chunks)
    assert np.max(np.abs(np.concatenate(chunks))) > 0.1


async def test_cancel_drops_audio_in_flight(server) -> None:
    text = "This is a long answer that goes on and on about many things. " * 6
    async with await BridgeClient.connect(server.ws_url) as client:
        await client.send_token(text)
        await client.flush()
        async for item in client.receive():
            if isinstance(item, AudioChunk):
                break
        await client.cancel()
        # Until `cancelled`, nothing stale is handed out; then the next utterance is clean.
        async for item in client.receive():
            assert not isinstance(item, AudioChunk)
            if isinstance(item, Event) and item.type == "cancelled":
                break
        audio = await client.speak("After the cancel.")
    assert audio.size / 48000 > 0.5


async def test_server_errors_are_collected(server) -> None:
    async with await BridgeClient.connect(server.ws_url) as client:
        await client.send_token("ok", pitch_shift=None)
        await client._ws.send("garbage")  # noqa: SLF001 - a raw bad frame
        audio = await client.speak(" fine.")
    assert any("invalid JSON" in e for e in client.errors)
    assert audio.size > 0


async def test_unknown_voice_fails_connect_clearly(server) -> None:
    with pytest.raises(BridgeError, match="unknown voice"):
        await BridgeClient.connect(server.ws_url, voice="nobody")


async def test_connect_to_nothing_is_a_clear_error() -> None:
    with pytest.raises(BridgeError, match="cannot connect"):
        await BridgeClient.connect("ws://127.0.0.1:9/ws/stream", open_timeout=2)


async def test_cli_say_writes_a_wav(server, tmp_path: Path) -> None:
    out = tmp_path / "say.wav"
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["say", "Written by the command line.", "-o", str(out), "--url", server.ws_url]
    )
    assert result.exit_code == 0, result.output
    audio, rate = read_wav(out)
    assert rate == 48000 and audio.size / rate > 1.0
