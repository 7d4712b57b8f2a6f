"""POST /v1/audio/speech, GET /v1/audio/voices and /v1/models, driven by the official ``openai``
package against a real server on loopback; the audio decoded with PyAV (FFmpeg)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator

import aiohttp
import numpy as np
import openai
import pytest

from bridge.cancel import CancelToken
from bridge.tts.base import TTSEngine
from tests.support.audio_decode import decode_audio
from tests.support.engines_util import WrappedEngine

TEXT = "Good morning to you all. This is the second sentence of the reply."
CONTAINER = {"wav": "wav", "mp3": "mp3", "aac": "aac", "flac": "flac", "opus": "ogg"}
RATE = {"mp3": 24000, "aac": 24000, "flac": 24000, "wav": 24000, "pcm": 24000, "opus": 48000}


def client_for(url: str, api_key: str = "unused") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key=api_key, max_retries=0, timeout=60)


def decode(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    if fmt == "pcm":
        return np.frombuffer(data, "<i2").astype(np.float32) / 32767.0, 24000
    return decode_audio(data, CONTAINER[fmt])


async def speech_bytes(client: openai.AsyncOpenAI, fmt: str, stream_format: str = "audio", **fields) -> bytes:
    args = {"model": "tts-1", "voice": "alloy", "input": TEXT, "response_format": fmt, **fields}
    async with client.audio.speech.with_streaming_response.create(stream_format=stream_format, **args) as response:
        assert response.status_code == 200
        if stream_format == "audio":
            return b"".join([chunk async for chunk in response.iter_bytes()])
        audio, done = [], None
        async for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[len("data: ") :])
            if event["type"] == "speech.audio.delta":
                assert done is None, "audio after speech.audio.done"
                audio.append(base64.b64decode(event["audio"]))
            else:
                assert event["type"] == "speech.audio.done"
                done = event
        assert done is not None and done["usage"]["input_tokens"] == len(TEXT)
        return b"".join(audio)


@pytest.mark.parametrize("stream_format", ["audio", "sse"])
@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
async def test_every_format_decodes_at_its_rate_and_length(steady, fmt: str, stream_format: str) -> None:
    client = client_for(steady.url)
    data = await speech_bytes(client, fmt, stream_format)
    audio, rate = decode(data, fmt)
    pcm, _ = decode(await speech_bytes(client, "pcm"), "pcm")
    assert rate == RATE[fmt]
    seconds, reference = audio.size / rate, pcm.size / 24000
    # The same speech in every format; codecs add at most a frame or two of padding.
    assert 2.0 < reference < 10.0
    assert abs(seconds - reference) < 0.08, (fmt, seconds, reference)
    assert np.max(np.abs(audio)) > 0.1


async def test_pcm_is_24k_s16le_like_the_wav_from_api_speak(steady) -> None:
    server = steady
    client = client_for(server.url)
    pcm = np.frombuffer(await speech_bytes(client, "pcm"), "<i2")
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/speak", json={"text": TEXT}) as response:
            from bridge.audio.wav import read_wav

            wav, rate = read_wav(await response.read())
    assert rate == 48000 and abs(pcm.size / 24000 - wav.size / 48000) < 0.005


class SecondSegmentGate(WrappedEngine):
    """Holds the synthesis of every segment after the first until the test opens the gate."""

    def __init__(self, inner: TTSEngine) -> None:
        super().__init__(inner)
        self.gate = threading.Event()
        self.later_segment_done = threading.Event()

    def stream(self, text: str, cancel: CancelToken, lead=None) -> Iterator[np.ndarray]:  # noqa: ANN001
        later = len(self.calls) >= 1
        if later:
            self.gate.wait(timeout=30)
        yield from super().stream(text, cancel, lead)
        if later:
            self.later_segment_done.set()


@pytest.mark.parametrize("stream_format", ["audio", "sse"])
@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
async def test_first_bytes_arrive_before_the_rest_is_synthesized(
    server_factory, piper_engine, fmt: str, stream_format: str
) -> None:
    engine = SecondSegmentGate(piper_engine)
    running = await server_factory(tts=engine)
    client = client_for(running.url)
    args = {"model": "tts-1", "voice": "alloy", "input": TEXT, "response_format": fmt}
    try:
        async with client.audio.speech.with_streaming_response.create(stream_format=stream_format, **args) as response:
            chunks = response.iter_bytes()
            first = await chunks.__anext__()
            # The first bytes came while the second segment was still held at the gate.
            assert first and not engine.later_segment_done.is_set()
            engine.gate.set()
            rest = b"".join([chunk async for chunk in chunks])
    finally:
        engine.gate.set()
    assert len(engine.calls) >= 2 and len(first) < len(first + rest)


async def test_speed_uses_the_engines_rate(steady) -> None:
    client = client_for(steady.url)
    normal, _ = decode(await speech_bytes(client, "pcm"), "pcm")
    fast, _ = decode(await speech_bytes(client, "pcm", speed=2.0), "pcm")
    slow, _ = decode(await speech_bytes(client, "pcm", speed=0.5), "pcm")
    # Pauses between sentences are not stretched, so speech alone halves / doubles.
    assert fast.size < 0.7 * normal.size < 0.7 * slow.size / 1.4


async def test_voices_and_models_list_what_the_server_accepts(server) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/v1/audio/voices") as response:
            voices = [v["id"] for v in (await response.json())["voices"]]
    assert "default" in voices and "piper" in voices
    models = [m.id async for m in client_for(server.url).models.list()]
    assert "tts-1" in models and "gpt-4o-mini-tts" in models
    for voice in ["piper", "default", "nova", {"id": "piper"}]:
        data = await speech_bytes(client_for(server.url), "pcm", voice=voice, input="Hi there.")
        assert len(data) > 2400


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"model": "tts-9"}, "model", "model_not_found"),
        ({"voice": "nobody"}, "voice", "invalid_value"),
        ({"input": "x" * 4097}, "input", "string_above_max_length"),
        ({"input": "   "}, "input", "invalid_value"),
        ({"response_format": "ogg"}, "response_format", "invalid_value"),
        ({"speed": 5.0}, "speed", "invalid_value"),
        ({"speed": 0.1}, "speed", "invalid_value"),
        ({"stream_format": "chunks"}, "stream_format", "invalid_value"),
    ],
)
async def test_bad_requests_get_openai_errors(server, fields: dict, param: str, code: str) -> None:
    client = client_for(server.url)
    args = {"model": "tts-1", "voice": "alloy", "input": "Hello.", **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        await client.audio.speech.create(**args)
    error = caught.value.body
    assert caught.value.status_code == 400
    assert error["param"] == param and error["code"] == code and error["type"] == "invalid_request_error"
    assert error["message"]


async def test_malformed_bodies_get_openai_errors_and_the_server_goes_on(server) -> None:
    async with aiohttp.ClientSession() as http:
        for body in [b"{nope", b"[1, 2]", json.dumps({"model": "tts-1", "voice": "alloy"}).encode()]:
            async with http.post(server.url + "/v1/audio/speech", data=body) as response:
                assert response.status == 400
                error = (await response.json())["error"]
                assert set(error) == {"message", "type", "param", "code"}
        async with http.post(server.url + "/v1/audio/speech", data=b"x" * 70000) as response:
            assert response.status == 413 and "error" in await response.json()
    assert len(await speech_bytes(client_for(server.url), "pcm", input="Still fine.")) > 2400


async def test_keys_are_required_like_the_other_routes(server_factory) -> None:
    running = await server_factory(api_keys=["sekret"])
    with pytest.raises(openai.AuthenticationError) as caught:
        await client_for(running.url, api_key="wrong").audio.speech.create(model="tts-1", voice="alloy", input="Hi.")
    assert caught.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        await client_for(running.url, api_key="wrong").models.list()
    data = await speech_bytes(client_for(running.url, api_key="sekret"), "pcm", input="Hi there.")
    assert len(data) > 2400


async def test_over_capacity_is_a_503_in_openai_shape_and_the_request_in_flight_finishes(
    server_factory, piper_engine
) -> None:
    engine = SecondSegmentGate(piper_engine)
    running = await server_factory(tts=engine, max_sessions=1)
    client = client_for(running.url)
    args = {"model": "tts-1", "voice": "alloy", "input": TEXT, "response_format": "pcm"}
    try:
        async with client.audio.speech.with_streaming_response.create(**args) as response:
            chunks = response.iter_bytes()
            first = await chunks.__anext__()
            with pytest.raises(openai.InternalServerError) as caught:
                await client.audio.speech.create(**args)
            assert caught.value.status_code == 503 and caught.value.body["code"] == "capacity"
            engine.gate.set()
            rest = b"".join([chunk async for chunk in chunks])
    finally:
        engine.gate.set()
    assert (len(first) + len(rest)) / 48000 > 2.0
