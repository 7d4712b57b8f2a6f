"""The RVC stage inside the real server: a voice installed in ``models/voices/<name>/``, loaded
through ``RVCConverter.from_settings`` (a tiny HuBERT in the Hugging Face layout, parselmouth
pitch, a faiss index), selected per session over the WebSocket and over ``/api/speak``.

The voice's weights are random, so these tests check the plumbing, not the timbre: audio of
the right length arrives, it is not the bare TTS audio, bad voices are refused or reported
without ending the session, and cancel still drops everything at once.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from bridge.audio.wav import read_wav
from bridge.cli import word_pieces
from bridge.client import BridgeClient, Event
from bridge.engines import Engines, create_voice_converter
from bridge.vc.rvc import RVCConverter

from tests.conftest import make_settings, start_server

TEXT = "The lighthouse keeper counted ships until the fog rolled in."


@pytest.fixture
async def voice_server(models_dir: Path, deterministic_piper):
    settings = make_settings(models_dir=models_dir, rvc_pitch_method="parselmouth", rvc_block_seconds=0.3)
    voice = create_voice_converter(settings)
    assert isinstance(voice, RVCConverter)
    engines = Engines(settings=settings, tts=deterministic_piper, voice=voice)
    engines.loaded = True
    running, runner = await start_server(engines)
    yield running
    await runner.cleanup()
    engines.executor.shutdown(wait=True)


async def test_health_and_ready_list_the_installed_voices(voice_server) -> None:
    async with aiohttp.ClientSession() as http, http.get(voice_server.url + "/health") as response:
        health = await response.json()
    assert health["engines"]["voice_conversion"]["voices"] == ["broken", "keeper"]
    async with await BridgeClient.connect(voice_server.ws_url, voice="keeper") as client:
        assert client.ready["voice"] == "keeper"
        assert "keeper" in client.ready["voices"]


async def test_a_session_speaks_in_the_voice(voice_server) -> None:
    async with await BridgeClient.connect(voice_server.ws_url) as bare_client:
        bare = await bare_client.speak(word_pieces(TEXT))
    async with await BridgeClient.connect(voice_server.ws_url, voice="keeper", pitch_shift=3) as client:
        converted = await client.speak(word_pieces(TEXT), tokens_per_second=100)
        assert client.errors == []
    # RVC keeps time: the converted utterance lasts as long as the speech it converted.
    assert abs(converted.size - bare.size) / bare.size < 0.05
    assert np.all(np.isfinite(converted)) and np.abs(converted).max() <= 1.0
    assert np.sqrt(np.mean(converted**2)) > 1e-4
    # …and it is another signal, not the TTS audio passed through.
    n = min(bare.size, converted.size)
    correlation = np.corrcoef(bare[:n], converted[:n])[0, 1]
    assert abs(correlation) < 0.5


async def test_voice_and_pitch_can_change_between_utterances(voice_server) -> None:
    async with await BridgeClient.connect(voice_server.ws_url, voice="keeper") as client:
        first = await client.speak("Fog on the water.")
        await client.configure(pitch_shift=-5)
        second = await client.speak("Fog on the water.")
        await client.configure(voice="")
        bare = await client.speak("Fog on the water.")
        assert client.errors == []
    n = min(first.size, second.size)
    assert not np.allclose(first[:n], second[:n], atol=1e-3)
    assert abs(bare.size - first.size) / first.size < 0.1


async def test_broken_voice_is_reported_and_the_session_goes_on(voice_server) -> None:
    async with await BridgeClient.connect(voice_server.ws_url, voice="broken") as client:
        audio = await client.speak("Still speaking.")
        assert any("broken" in e for e in client.errors), client.errors
        # The words were not lost: the session fell back to the bare voice.
        assert audio.size / 48000 > 0.5
        again = await client.speak("And again.")
    assert again.size / 48000 > 0.4


async def test_unknown_voice_is_refused_by_name_and_the_rest_of_the_config_applies(voice_server) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(voice_server.ws_url) as ws:
        await ws.send_str(json.dumps({"type": "config", "voice": "keeper"}))
        await ws.send_str(json.dumps({"type": "config", "events": True, "voice": "nobody", "format": "s16le"}))
        # The refusal comes before `ready`: a client waiting for `ready` knows its voice was refused.
        error = json.loads((await ws.receive(timeout=10)).data)
        ready = json.loads((await ws.receive(timeout=10)).data)
        await ws.send_str(json.dumps({"token": "Fog.", "flush": True}))
        audio_bytes = 0
        while True:
            message = await ws.receive(timeout=60)
            if message.type == aiohttp.WSMsgType.BINARY:
                audio_bytes += len(message.data)
            elif json.loads(message.data).get("type") == "flushed":
                break
    assert "nobody" in error["error"] and "keeper" in error["error"], error
    # events and format took effect; the voice chosen before stays.
    assert ready["type"] == "ready" and ready["voice"] == "keeper" and ready["format"] == "s16le"
    assert audio_bytes > 0 and audio_bytes % 2 == 0


async def test_speak_endpoint_converts(voice_server) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(voice_server.url + "/api/speak", json={"text": TEXT}) as response:
            assert response.status == 200
            bare, rate = read_wav(await response.read())
        async with http.post(voice_server.url + "/api/speak", json={"text": TEXT, "voice": "keeper"}) as response:
            assert response.status == 200
            converted, rate2 = read_wav(await response.read())
    assert rate == rate2 == 48000
    assert abs(converted.size - bare.size) / bare.size < 0.05
    n = min(bare.size, converted.size)
    assert abs(np.corrcoef(bare[:n], converted[:n])[0, 1]) < 0.5


async def test_cancel_drops_converted_audio_at_once(voice_server) -> None:
    async with await BridgeClient.connect(voice_server.ws_url, voice="keeper") as client:
        await client.send_token(TEXT + " " + TEXT)
        await client.flush()
        first = None
        async for item in client.receive():
            if not isinstance(item, Event):
                first = item
                break
        assert first is not None
        await client.cancel()
        # Until `cancelled`, no stale converted audio is handed out; then the session is clean.
        async for item in client.receive():
            assert isinstance(item, Event), "converted audio after the cancel"
            if item.type == "cancelled":
                break
        audio = await asyncio.wait_for(client.speak("Back again."), timeout=60)
    assert audio.size / 48000 > 0.3


def test_start_up_warms_the_default_voice(models_dir: Path, deterministic_piper, caplog) -> None:
    settings = make_settings(models_dir=models_dir, rvc_pitch_method="parselmouth", default_voice="keeper")
    engines = Engines(settings=settings, tts=deterministic_piper, voice=create_voice_converter(settings))
    engines.load()
    assert engines.loaded and list(engines.voice.info()["loaded"]) == ["keeper"]
    # A default voice that cannot load is reported, and the server still starts.
    settings = make_settings(models_dir=models_dir, rvc_pitch_method="parselmouth", default_voice="broken")
    engines = Engines(settings=settings, tts=deterministic_piper, voice=create_voice_converter(settings))
    with caplog.at_level("WARNING", logger="bridge.engines"):
        engines.load()
    assert engines.loaded and "broken" in caplog.text
    assert engines.voice.info()["loaded"] == {}
