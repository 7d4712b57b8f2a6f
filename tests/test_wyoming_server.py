"""The Wyoming TTS service, driven by the ``wyoming`` package's own AsyncTcpClient against a
real server on loopback (the embedded Piper voice)."""

from __future__ import annotations

import asyncio
import json

import jiwer
import numpy as np
import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from bridge.server import STATE, WYOMING
from tests.conftest import transcribe
from tests.support.engines_util import wait_until

FIRST = "The kitchen lights are now on."
SECOND = " I also turned the heating up to twenty degrees."


@pytest.fixture
async def wyoming_port(server_factory) -> int:
    running = await server_factory(wyoming_port=0)
    return running.app[WYOMING].port


async def next_event(client: AsyncTcpClient, timeout: float = 60) -> Event:
    event = await asyncio.wait_for(client.read_event(), timeout)
    assert event is not None, "the server closed the connection"
    return event


async def read_audio(client: AsyncTcpClient, until: str = AudioStop.is_type.__name__) -> tuple[np.ndarray, list[Event]]:
    """Events up to audio-stop: (the audio as float32, every event read)."""
    events: list[Event] = []
    parts: list[bytes] = []
    while True:
        event = await next_event(client)
        events.append(event)
        if AudioChunk.is_type(event.type):
            chunk = AudioChunk.from_event(event)
            assert (chunk.rate, chunk.width, chunk.channels) == (48000, 2, 1)
            parts.append(chunk.audio)
        if AudioStop.is_type(event.type):
            break
    audio = np.frombuffer(b"".join(parts), "<i2").astype(np.float32) / 32767.0
    return audio, events


async def test_describe_lists_the_voices_and_streaming(wyoming_port: int) -> None:
    async with AsyncTcpClient("127.0.0.1", wyoming_port) as client:
        await client.write_event(Describe().event())
        info = Info.from_event(await next_event(client))
    (program,) = info.tts
    assert program.supports_synthesize_streaming and program.installed
    assert {"default", "piper"} <= {voice.name for voice in program.voices}


async def test_plain_synthesize_answers_start_chunks_stop(wyoming_port: int, whisper) -> None:
    async with AsyncTcpClient("127.0.0.1", wyoming_port) as client:
        await client.write_event(Synthesize(text=FIRST + SECOND, voice=SynthesizeVoice(name="piper")).event())
        audio, events = await read_audio(client)
    start = AudioStart.from_event(events[0])
    assert (start.rate, start.width, start.channels) == (48000, 2, 1)
    assert not any(Error.is_type(e.type) for e in events)
    assert 3.0 < audio.size / 48000 < 12.0 and np.max(np.abs(audio)) > 0.1
    heard = transcribe(whisper, audio, 48000)
    assert jiwer.wer("the kitchen lights are now on i also turned the heating up to twenty degrees", _words(heard)) < 0.2


def _words(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split()).replace("20", "twenty")


async def test_streaming_synthesis_speaks_as_the_text_arrives(wyoming_port: int, whisper) -> None:
    async with AsyncTcpClient("127.0.0.1", wyoming_port) as client:
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="default")).event())
        for word in FIRST.split(" "):
            await client.write_event(SynthesizeChunk(text=word + " ").event())
        # Audio for the first sentence comes before the rest of the text is even sent.
        first = await next_event(client)
        assert AudioStart.is_type(first.type)
        assert AudioChunk.is_type((await next_event(client)).type)
        for word in SECOND.split(" "):
            await client.write_event(SynthesizeChunk(text=word + " ").event())
        # What a streaming client also sends, for servers without streaming: ignored here.
        await client.write_event(Synthesize(text=FIRST + SECOND).event())
        await client.write_event(SynthesizeStop().event())
        audio, events = await read_audio(client)
        assert SynthesizeStopped.is_type((await next_event(client)).type)
        # The connection serves another request afterwards.
        await client.write_event(Synthesize(text="Done.").event())
        again, _ = await read_audio(client)
    assert not any(Error.is_type(e.type) or AudioStart.is_type(e.type) for e in events)
    heard = transcribe(whisper, audio, 48000)
    assert 2.0 < audio.size / 48000 < 12.0 and again.size > 4800
    assert jiwer.wer("i also turned the heating up to twenty degrees", _words(heard).split("on ", 1)[-1]) < 0.3


async def error_of(client: AsyncTcpClient) -> Error:
    event = await next_event(client)
    assert Error.is_type(event.type), event
    return Error.from_event(event)


async def test_bad_events_get_error_events_and_the_connection_goes_on(wyoming_port: int) -> None:
    async with AsyncTcpClient("127.0.0.1", wyoming_port) as client:
        await client.write_event(SynthesizeChunk(text="orphan").event())
        assert (await error_of(client)).code == "not_streaming"
        await client.write_event(SynthesizeStop().event())
        assert (await error_of(client)).code == "not_streaming"
        await client.write_event(Synthesize(text="   ").event())
        assert (await error_of(client)).code == "empty_text"
        await client.write_event(Event(type="synthesize", data={"txt": "no text field"}))
        assert (await error_of(client)).code == "invalid_event"
        await client.write_event(Synthesize(text="Hello.", voice=SynthesizeVoice(name="nobody")).event())
        error = await error_of(client)
        assert "unknown voice" in error.text and "piper" in error.text
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeStart().event())
        assert (await error_of(client)).code == "already_streaming"
        await client.write_event(SynthesizeChunk(text="x" * 5000).event())
        assert (await error_of(client)).code == "token_too_long"
        await client.write_event(SynthesizeChunk(text="Still speaking.").event())
        await client.write_event(SynthesizeStop().event())
        audio, _ = await read_audio(client)
        assert SynthesizeStopped.is_type((await next_event(client)).type)
        await client.write_event(Describe().event())
        assert Info.is_type((await next_event(client)).type)
    assert audio.size > 4800


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"this is not json\n", "invalid_event"),
        (b'["a list"]\n', "invalid_event"),
        (json.dumps({"type": "audio-chunk", "payload_length": 10**9}).encode() + b"\n", "too_large"),
    ],
)
async def test_a_malformed_line_gets_an_error_then_close_and_others_are_unaffected(
    wyoming_port: int, line: bytes, code: str
) -> None:
    async with AsyncTcpClient("127.0.0.1", wyoming_port) as bystander:
        await bystander.write_event(SynthesizeStart().event())
        await bystander.write_event(SynthesizeChunk(text="Nothing is lost here.").event())
        reader, writer = await asyncio.open_connection("127.0.0.1", wyoming_port)
        writer.write(line)
        await writer.drain()
        header = json.loads(await asyncio.wait_for(reader.readline(), 30))
        assert header["type"] == "error"
        data = json.loads(await reader.readexactly(header["data_length"]))
        assert data["code"] == code
        assert await asyncio.wait_for(reader.read(), 30) == b""  # then closed
        writer.close()
        await bystander.write_event(SynthesizeStop().event())
        audio, events = await read_audio(bystander)
        assert SynthesizeStopped.is_type((await next_event(bystander)).type)
    assert audio.size / 48000 > 0.8 and not any(Error.is_type(e.type) for e in events)


async def test_admission_is_shared_with_the_websocket_sessions(server_factory) -> None:
    import websockets

    running = await server_factory(wyoming_port=0, max_sessions=1)
    port = running.app[WYOMING].port
    async with AsyncTcpClient("127.0.0.1", port) as client:
        async with websockets.connect(running.ws_url) as ws:
            await ws.send(json.dumps({"type": "config", "events": True}))
            assert json.loads(await ws.recv())["type"] == "ready"  # the one slot is taken
            await client.write_event(Synthesize(text="Hello there.").event())
            error = await error_of(client)
            assert error.code == "refused" and "capacity" in error.text
            await client.write_event(SynthesizeStart().event())
            assert (await error_of(client)).code == "refused"
            await client.write_event(SynthesizeChunk(text="Ignored.").event())
            await client.write_event(SynthesizeStop().event())
            assert SynthesizeStopped.is_type((await next_event(client)).type)
        await wait_until(lambda: running.app[STATE].admission.active == 0, "the WebSocket's slot is released")
        await client.write_event(Synthesize(text="Hello there.").event())
        audio, events = await read_audio(client)
    assert AudioStart.is_type(events[0].type) and audio.size > 4800


def test_serve_takes_wyoming_port_and_it_is_off_by_default(monkeypatch, tmp_path) -> None:
    import os

    from typer.testing import CliRunner

    from bridge.cli import app

    for name in list(os.environ):
        if name.startswith("VOICE_BRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("bridge.cli.setup_logging", lambda *args, **kwargs: None)
    seen = []

    async def fake_serve(settings, engines=None, **kwargs) -> None:  # noqa: ANN001, ANN003
        seen.append(settings)

    monkeypatch.setattr("bridge.server.serve", fake_serve)
    assert CliRunner().invoke(app, ["serve", "--wyoming-port", "10200"]).exit_code == 0
    assert CliRunner().invoke(app, ["serve"]).exit_code == 0
    assert [s.wyoming.port for s in seen] == [10200, None]
    bad = CliRunner().invoke(app, ["serve", "--wyoming-port", "70000"])
    assert bad.exit_code == 2 and "wyoming_port" in bad.output
