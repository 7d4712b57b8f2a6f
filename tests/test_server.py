"""The real server on loopback, driven by a real websockets client."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass

import aiohttp
import numpy as np
import pytest
import websockets

from bridge.audio.formats import decode_pcm
from bridge.audio.wav import read_wav
from bridge.cli import word_pieces
from bridge.server import STATE
from bridge.session import Session
from tests.support.engines_util import AcceleratedTone, StubConverter, ToneEngine, wait_until
from tests.support.ws_client import LONG_REPLY, REPLY, read_utterance, recv_json

async def test_seed_style_client_gets_audio_and_no_text_frames(server) -> None:
    # Exactly like the seed's example: tokens with pitch_shift, a flush, then read binary frames.
    async with websockets.connect(server.ws_url, compression=None) as ws:
        for token in word_pieces(REPLY):
            await ws.send(json.dumps({"token": token, "pitch_shift": 0}))
        await ws.send(json.dumps({"flush": True}))
        frames: list[bytes | str] = []
        while True:
            try:
                frames.append(await asyncio.wait_for(ws.recv(), 2.0))  # the seed waits for quiet
            except TimeoutError:
                break
    assert frames and all(isinstance(f, bytes) for f in frames)
    audio = np.concatenate([decode_pcm(f, "f32le") for f in frames])  # type: ignore[arg-type]
    assert 3.0 < audio.size / 48000 < 12.0
    assert np.max(np.abs(audio)) <= 1.0 and np.max(np.abs(audio)) > 0.1
    assert all(len(f) == 3840 for f in frames[:-1])


async def test_events_mode_orders_ready_segments_audio_flushed(server) -> None:
    async with websockets.connect(server.ws_url + "?events=1", compression=None) as ws:
        ready = await recv_json(ws)
        assert ready["type"] == "ready"
        assert ready["sample_rate"] == 48000 and ready["format"] == "f32le" and ready["channels"] == 1
        for token in word_pieces(REPLY):
            await ws.send(json.dumps({"token": token}))
        await ws.send(json.dumps({"flush": True}))
        frames, events = await read_utterance(ws)
        kinds = [e["type"] for e in events]
        assert kinds[0] == "segment"  # a segment event precedes the first audio
        assert kinds[-1] == "flushed" and "_audio" in kinds
        spoken = " ".join(e["text"] for e in events if e["type"] == "segment")
        assert spoken.split() == REPLY.split()
        assert events[-1]["audio_seconds"] == pytest.approx(sum(len(f) for f in frames) / 4 / 48000, abs=0.01)
        # Segments cut while tokens streamed name the token that completed them, in order;
        # the last one was completed by the flush and names none.
        tokens = [e.get("token") for e in events if e["type"] == "segment"]
        sent = len(word_pieces(REPLY))
        assert tokens[-1] is None and all(t is not None for t in tokens[:-1])
        assert tokens[:-1] == sorted(tokens[:-1]) and 1 <= tokens[0] <= 4 and tokens[-2] <= sent
        stats = events[-1]["stats"]
        assert stats["tokens"] == sent and 0 < stats["tts_rtf"] < 1 and stats["tts_ms"] > 0
        assert stats["audio_seconds"] == events[-1]["audio_seconds"]
        # A second utterance on the same session works the same way.
        await ws.send(json.dumps({"token": "And one more thing.", "flush": True}))
        frames2, events2 = await read_utterance(ws)
        assert frames2 and events2[0]["type"] == "segment"
        assert " ".join(e["text"] for e in events2 if e["type"] == "segment") == "And one more thing."


async def test_config_message_turns_events_on_and_sets_format(server) -> None:
    async with websockets.connect(server.ws_url, compression=None) as ws:
        await ws.send(json.dumps({"type": "config", "events": True, "format": "s16le"}))
        ready = await recv_json(ws)
        assert ready["type"] == "ready" and ready["format"] == "s16le"
        await ws.send(json.dumps({"token": "Sixteen bits, please.", "flush": True}))
        frames, _ = await read_utterance(ws)
    assert all(len(f) == 960 * 2 for f in frames[:-1])
    audio = np.concatenate([decode_pcm(f, "s16le") for f in frames])
    assert np.max(np.abs(audio)) > 0.1


@dataclass
class SentFrames:
    """What one session's sender has handed its socket, counted on the server."""

    started: int = 0  # send_bytes calls begun
    finished: int = 0  # ... and returned: the frame is in the transport or the kernel
    bytes_started: int = 0
    bytes_finished: int = 0
    #: ``started``/``bytes_started`` when the sender began sending the `cancelled` event.
    at_cancelled_event: tuple[int, int] | None = None


@dataclass
class CancelSeen:
    """The session's state around ``SessionPipeline.cancel()``."""

    queued_samples: int = 0  # audio in the output queue when the cancel arrived
    finished: int = 0  # frames whose sending had completed when the cancel had been handled
    bytes_finished: int = 0


def observe_sends(session: Session) -> SentFrames:
    """Count the frames ``session``'s sender hands its socket (instance attributes shadow the
    WebSocket's methods; the server's code is unchanged)."""
    sent = SentFrames()
    send_bytes, send_str = session.ws.send_bytes, session.ws.send_str

    async def counting_send_bytes(data: bytes, compress: int | None = None) -> None:
        sent.started += 1
        sent.bytes_started += len(data)
        await send_bytes(data, compress)
        sent.finished += 1
        sent.bytes_finished += len(data)

    async def noting_send_str(data: str, compress: int | None = None) -> None:
        if json.loads(data).get("type") == "cancelled":
            sent.at_cancelled_event = (sent.started, sent.bytes_started)
        await send_str(data, compress)

    session.ws.send_bytes = counting_send_bytes  # type: ignore[method-assign]
    session.ws.send_str = noting_send_str  # type: ignore[method-assign]
    return sent


def observe_cancel(session: Session, sent: SentFrames) -> CancelSeen:
    """Snapshot the queue before the pipeline's cancel and the sender's counts once it returned."""
    seen = CancelSeen()
    cancel = session.pipeline.cancel

    async def observed_cancel(*args: float | None) -> None:
        seen.queued_samples = session.pipeline.output.samples
        await cancel(*args)
        seen.finished = sent.finished
        seen.bytes_finished = sent.bytes_finished

    session.pipeline.cancel = observed_cancel  # type: ignore[method-assign]
    return seen


async def test_cancel_mid_utterance_stops_audio_within_one_frame(server_factory) -> None:
    # A tone voice (about 30 s for LONG_REPLY) keeps the test cheap; the server, its sender and
    # the pipeline are the real ones.
    srv = await server_factory(ToneEngine(seconds_per_word=0.5, chunk_delay=0.002), send_stall_seconds=120.0)
    state = srv.app[STATE]
    frame_bytes = 48000 * state.settings.audio.frame_ms // 1000 * 4
    async with websockets.connect(srv.ws_url + "?events=1", compression=None) as ws:
        ready = await recv_json(ws)
        session = state.sessions[ready["session"]]
        sent = observe_sends(session)
        seen = observe_cancel(session, sent)
        for token in word_pieces(LONG_REPLY):
            await ws.send(json.dumps({"token": token}))
        await ws.send(json.dumps({"flush": True}))
        received_before = 0
        while received_before == 0:
            message = await asyncio.wait_for(ws.recv(), 30)
            if isinstance(message, bytes):
                received_before += len(message)
        # Read nothing more until the server's output queue holds seconds of audio: kernel and
        # client buffers are full, the sender waits on the socket, the worker on the queue.
        # A cancel that let the queue drain would now send hundreds of frames.
        await wait_until(lambda: session.pipeline.output.samples >= 2 * 48000, "the output queue holds 2 s")
        await ws.send(json.dumps({"type": "cancel"}))
        received_after = 0
        while True:
            message = await asyncio.wait_for(ws.recv(), 30)
            if isinstance(message, bytes):
                received_after += len(message)
                continue
            event = json.loads(message)
            if event["type"] == "cancelled":
                break
            assert event["type"] == "segment"
        assert seen.queued_samples >= 2 * 48000  # what the cancel had to drop
        assert sent.at_cancelled_event is not None
        started_before_cancelled, bytes_before_cancelled = sent.at_cancelled_event
        # The server: at most the one frame it was sending when the cancel was handled went
        # out after it (every other frame had been handed to the socket before the cancel).
        assert started_before_cancelled - seen.finished <= 1
        # The client: what it got between its cancel and `cancelled` is exactly what the server
        # had sent before `cancelled`, and no more than what was already in flight when the
        # cancel was handled (transport, kernel and client buffers) plus that one frame.
        assert received_after == bytes_before_cancelled - received_before
        assert received_after <= seen.bytes_finished - received_before + frame_bytes
        # Nothing of the old utterance follows `cancelled`, and no flushed comes for it.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 1.0)
        assert sent.started == started_before_cancelled
        # The session continues cleanly.
        await ws.send(json.dumps({"token": "New topic.", "flush": True}))
        frames, events = await read_utterance(ws)
        assert events[0]["type"] == "segment"
        assert " ".join(e["text"] for e in events if e["type"] == "segment") == "New topic."
        assert frames


async def test_interrupt_is_an_alias_of_cancel(server) -> None:
    async with websockets.connect(server.ws_url + "?events=1", compression=None) as ws:
        await recv_json(ws)
        await ws.send(json.dumps({"token": LONG_REPLY, "flush": True}))
        await ws.send(json.dumps({"interrupt": True}))
        while True:
            message = await asyncio.wait_for(ws.recv(), 30)
            if isinstance(message, str) and json.loads(message)["type"] == "cancelled":
                break
        # The audio stops with `cancelled`: everything after it is the next utterance, frame for
        # frame (its `flushed` counts its own audio; a frame of the old one would be extra).
        await ws.send(json.dumps({"token": "New topic.", "flush": True}))
        frames, events = await read_utterance(ws)
        assert [e["text"] for e in events if e["type"] == "segment"] == ["New topic."]
        assert sum(len(f) for f in frames) / 4 / 48000 == pytest.approx(events[-1]["audio_seconds"], abs=0.01)


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        '{"token": 42}',
        '{"type": "dance"}',
        '{"token": "x", "pitch_shift": 99}',
        '{"token": "x", "pitch_shift": NaN}',
        '{"type": "config", "voice": "nobody"}',
        b"\x00\x01binary",
    ],
)
async def test_bad_input_gets_an_error_and_the_session_goes_on(server, frame: str | bytes) -> None:
    async with websockets.connect(server.ws_url, compression=None) as ws:
        await ws.send(frame)
        error = await recv_json(ws)
        assert set(error) >= {"error"} and error["error"]
        await ws.send(json.dumps({"type": "config", "events": True}))
        assert (await recv_json(ws))["type"] == "ready"
        await ws.send(json.dumps({"token": "Still here.", "flush": True}))
        frames, _ = await read_utterance(ws)
        assert frames


async def test_api_speak_returns_a_48k_wav(server) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/speak", json={"text": REPLY}) as response:
            assert response.status == 200
            assert response.content_type == "audio/wav"
            audio, rate = read_wav(await response.read())
    assert rate == 48000 and 3.0 < audio.size / rate < 12.0 and np.max(np.abs(audio)) > 0.1


async def test_api_speak_with_words_returns_the_wav_and_its_word_timings(server) -> None:
    text = "It cost $3.14 a night. The keeper paid it gladly."
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/speak", json={"text": text, "words": True}) as response:
            assert response.status == 200 and response.content_type == "application/json"
            answer = await response.json()
    audio, rate = read_wav(base64.b64decode(answer["audio_base64"]))
    assert rate == answer["sample_rate"] == 48000 and answer["content_type"] == "audio/wav"
    assert answer["audio_seconds"] == pytest.approx(audio.size / rate, abs=0.001)
    words = answer["words"]
    assert [w["text"] for w in words] == text.split() and answer["errors"] == []
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and all(0 <= w["start"] <= w["end"] <= audio.size / rate for w in words)
    # The first word starts where the WAV's sound starts (within a 20 ms frame).
    loud = np.flatnonzero(np.abs(audio) > 0.02)
    assert abs(words[0]["start"] - loud[0] / rate) < 0.1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"text": "hi", "words": "maybe"}, "words"),
        ({"text": ""}, "text"),
        ({"text": "   "}, "blank"),
        ({"words": "hi"}, "text"),
        ({"text": "hi", "pitch_shift": 30}, "pitch_shift"),
        ({"text": "hi", "voice": "nobody"}, "unknown voice"),
    ],
)
async def test_api_speak_rejects_bad_bodies(server, body: dict, fragment: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/speak", json=body) as response:
            assert response.status == 400
            assert fragment in json.dumps(await response.json())
        async with http.post(server.url + "/api/speak", data=b"{nope") as response:
            assert response.status == 400


async def test_health_reports_engines_and_sessions(server) -> None:
    async with aiohttp.ClientSession() as http:
        async with websockets.connect(server.ws_url):
            await wait_until(lambda: server.app[STATE].sessions, "the session is admitted")
            async with http.get(server.url + "/health") as response:
                body = await response.json()
    assert response.status == 200
    assert body["status"] == "ok"
    assert body["engines"]["tts"]["name"] == "piper" and body["engines"]["tts"]["streaming"] is True
    # Capacity: the static cap, or fewer when the measured compute carries fewer (bridge/capacity.py).
    assert body["sessions"] >= 1
    assert body["capacity"] == min(body["max_sessions"] - body["sessions"], body["load"]["headroom_sessions"])
    assert body["load"]["cores"] >= 1 and body["load"]["capacity_sessions"] >= 1
    assert body["version"]
    # The device in use, not the setting: `auto` became the CPU (Piper runs on onnxruntime's CPU
    # provider), and there is no voice conversion stage.
    assert body["device_setting"] == "auto"
    assert body["device"] == "cpu" and body["devices"] == {"tts": "cpu", "voice_conversion": None}


@pytest.mark.parametrize(
    ("tts_device", "voice_device", "device", "devices"),
    [
        ("cuda:0", "cuda:0", "cuda:0", {"tts": "cuda:0", "voice_conversion": "cuda:0"}),
        ("cuda:0", "cpu", "cuda:0, cpu", {"tts": "cuda:0", "voice_conversion": "cpu"}),
        ("cuda", None, "cuda", {"tts": "cuda", "voice_conversion": None}),
        (None, None, None, {"tts": None, "voice_conversion": None}),
    ],
)
async def test_health_reports_the_devices_the_engines_resolved(
    server_factory, tts_device: str | None, voice_device: str | None, device: str | None, devices: dict
) -> None:
    srv = await server_factory(AcceleratedTone(tts_device), device="auto")
    if voice_device is not None:
        srv.app[STATE].engines.voice = StubConverter(voice_device)
    async with aiohttp.ClientSession() as http:
        async with http.get(srv.url + "/health") as response:
            body = await response.json()
    assert response.status == 200
    assert (body["device"], body["devices"], body["device_setting"]) == (device, devices, "auto")


async def test_over_capacity_is_closed_with_1013(server_factory) -> None:
    small = await server_factory(max_sessions=1)
    async with websockets.connect(small.ws_url):
        await wait_until(lambda: small.app[STATE].admission.active == 1, "the first session is admitted")
        async with websockets.connect(small.ws_url) as second:
            with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
                await asyncio.wait_for(second.recv(), 10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1013


async def test_disconnect_mid_synthesis_frees_the_session(server) -> None:
    def pipeline_tasks() -> int:
        return sum(1 for t in asyncio.all_tasks() if t.get_name().startswith(("pipeline-", "sender-")))

    before = pipeline_tasks()
    for _ in range(5):
        ws = await websockets.connect(server.ws_url, compression=None)
        await ws.send(json.dumps({"token": LONG_REPLY, "flush": True}))
        await asyncio.wait_for(ws.recv(), 30)  # synthesis is under way
        await ws.close()
    state = server.app[STATE]
    await wait_until(lambda: not state.sessions and pipeline_tasks() == before, "the sessions are freed")
    assert state.sessions == {} and pipeline_tasks() == before
    assert state.admission.active == 0


async def test_the_workers_count_the_other_utterances_under_way_as_competing(server) -> None:
    """A job that starts while the queue is momentarily empty (the first of a burst of starts)
    still sizes its first chunk for the other utterances whose work arrives moments later."""
    state = server.app[STATE]
    expected = state.engines.executor.expected_clients
    assert expected is not None
    async with websockets.connect(server.ws_url + "?events=1") as first, websockets.connect(server.ws_url + "?events=1") as second:
        await wait_until(lambda: len(state.sessions) >= 2, "both sessions are admitted")
        assert state.utterances_under_way() == 0 and expected() == 0
        await first.send(json.dumps({"token": "Hello"}))
        await wait_until(lambda: state.utterances_under_way() == 1, "the first utterance begins")
        assert expected() == 0  # the caller itself is not its own competitor
        await second.send(json.dumps({"token": "Good"}))
        await wait_until(lambda: state.utterances_under_way() == 2, "the second utterance begins")
        assert expected() == 1
        for ws in (first, second):
            await ws.send(json.dumps({"flush": True}))
            await read_utterance(ws)
        await wait_until(lambda: state.utterances_under_way() == 0, "both utterances are over")
        assert expected() == 0
