"""Every abuse limit, live (the bookkeeping alone: tests/test_limits.py): a clear error frame
where the session can go on, a close with a code and a reason where it cannot, and HTTP statuses
for /api/speak."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import websockets

from bridge.server import STATE
from tests.support.engines_util import ToneEngine, wait_until
from tests.support.ws_client import read_utterance, recv_json


# ----------------------------------------------------------------------------- live
async def closed_with(ws: websockets.ClientConnection, timeout: float = 10) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    assert info.value.rcvd is not None, "closed without a close frame"
    return info.value.rcvd.code, info.value.rcvd.reason


async def test_message_too_big_closes_1009_with_a_reason(server_factory) -> None:
    srv = await server_factory(max_message_bytes=4096)
    async with websockets.connect(srv.ws_url, compression=None, max_size=None) as ws:
        await ws.send(json.dumps({"token": "x" * 5000}))
        code, reason = await closed_with(ws)
    assert code == 1009 and "too big" in reason and "4096" in reason


async def test_huge_token_is_an_error_and_the_session_goes_on(server_factory) -> None:
    srv = await server_factory(max_token_chars=100)
    async with websockets.connect(srv.ws_url + "?events=1", compression=None) as ws:
        await recv_json(ws)
        await ws.send(json.dumps({"token": "word " * 50}))
        error = await recv_json(ws)
        assert error["type"] == "error" and "token too long" in error["error"] and "limit 100" in error["error"]
        await ws.send(json.dumps({"token": "Still fine.", "flush": True}))
        frames, events = await read_utterance(ws)
        assert frames and [e["text"] for e in events if e["type"] == "segment"] == ["Still fine."]


async def test_too_much_buffered_text_closes_1008(server_factory) -> None:
    # A client that streams text far faster than it can be spoken, and never reads the audio.
    srv = await server_factory(ToneEngine(chunk_delay=0.05), max_buffered_chars=2000, output_queue_seconds=0.5)
    async with websockets.connect(srv.ws_url, compression=None) as ws:
        for _ in range(200):
            try:
                await ws.send(json.dumps({"token": "Some more words to say. "}))
            except websockets.exceptions.ConnectionClosed:
                break
        code, reason = await closed_with(ws)
    assert code == 1008 and "too much text waiting" in reason


async def test_one_word_without_spaces_counts_as_buffered_text(server_factory) -> None:
    # Text with no space in it is one word still being received: it counts all the same.
    srv = await server_factory(ToneEngine(chunk_delay=0.05), max_buffered_chars=2000)
    async with websockets.connect(srv.ws_url, compression=None) as ws:
        await ws.send(json.dumps({"token": "x" * 1500}))
        await ws.send(json.dumps({"token": "x" * 1500}))
        code, reason = await closed_with(ws, timeout=30)
    assert code == 1008 and reason == "too much text waiting for synthesis (3000 > 2000 characters)"


async def test_message_flood_closes_1008(server_factory) -> None:
    srv = await server_factory(max_message_rate=20, message_burst=50)
    async with websockets.connect(srv.ws_url, compression=None) as ws:
        for _ in range(60):
            try:
                await ws.send('{"type": "config", "format": "f32le"}')
            except websockets.exceptions.ConnectionClosed:
                break
        code, reason = await closed_with(ws)
    assert code == 1008 and reason == "message rate limit exceeded"


async def test_paced_messages_stay_under_the_rate(server_factory) -> None:
    srv = await server_factory(max_message_rate=100, message_burst=10)
    async with websockets.connect(srv.ws_url, compression=None) as ws:
        for _ in range(30):
            await ws.send('{"type": "config", "format": "f32le"}')
            await asyncio.sleep(0.02)
        await ws.send(json.dumps({"type": "config", "events": True}))
        assert (await recv_json(ws))["type"] == "ready"


async def test_connections_per_address(server_factory) -> None:
    # Clients behind a trusted proxy (this loopback peer), named by X-Forwarded-For.
    srv = await server_factory(max_connections_per_ip=2, trusted_proxies=["127.0.0.1"])
    client = {"X-Forwarded-For": "198.51.100.23"}
    other = {"X-Forwarded-For": "198.51.100.24"}
    async with websockets.connect(srv.ws_url, additional_headers=client) as a, websockets.connect(
        srv.ws_url, additional_headers=client
    ):
        async with websockets.connect(srv.ws_url, additional_headers=client) as c:
            code, reason = await closed_with(c)
        assert code == 1008 and "too many connections" in reason
        async with aiohttp.ClientSession() as http:
            async with http.post(srv.url + "/api/speak", json={"text": "Hi."}, headers=client) as response:
                assert response.status == 429
        async with websockets.connect(srv.ws_url + "?events=1", additional_headers=other) as d:
            assert (await recv_json(d))["type"] == "ready"  # another client is not affected
        async with websockets.connect(srv.ws_url + "?events=1") as local:
            assert (await recv_json(local))["type"] == "ready"  # the proxy's own address is loopback
        await a.send(json.dumps({"type": "config", "events": True}))
        assert (await recv_json(a))["type"] == "ready"
    # Closed sessions give their slots back.
    await wait_until(lambda: not srv.app[STATE].admission.active, "the closed sessions give their slots back")
    assert not srv.app[STATE].admission.per_ip
    async with websockets.connect(srv.ws_url + "?events=1", additional_headers=client) as again:
        assert (await recv_json(again))["type"] == "ready"


async def test_capacity_shows_in_health_and_speak_gets_503(server_factory) -> None:
    srv = await server_factory(max_sessions=1)
    async with aiohttp.ClientSession() as http:
        async with http.get(srv.url + "/health") as response:
            body = await response.json()
            assert body["capacity"] == 1 and body["accepting"] is True
        async with websockets.connect(srv.ws_url):
            await wait_until(lambda: srv.app[STATE].admission.active == 1, "the session is admitted")
            async with http.get(srv.url + "/health") as response:
                body = await response.json()
                assert body["capacity"] == 0 and body["accepting"] is False and body["sessions"] == 1
            async with http.post(srv.url + "/api/speak", json={"text": "Hi."}) as response:
                assert response.status == 503 and response.headers["Retry-After"]
        async with http.post(srv.url + "/api/speak", data=b'{"text": "' + b"x" * 70_000 + b'"}') as response:
            assert response.status == 413


async def test_ready_is_503_while_draining(server_factory) -> None:
    # SIGTERM sets the admission to closing: slots are free, but a balancer must stop sending.
    srv = await server_factory(max_sessions=4)
    admission = srv.app[STATE].admission
    async with aiohttp.ClientSession() as http:
        async with http.get(srv.url + "/ready") as response:
            assert response.status == 200 and (await response.json())["capacity"] == 4
        admission.closing = True
        try:
            async with http.get(srv.url + "/ready") as response:
                body = await response.json()
                assert response.status == 503 and body["ready"] is False and body["capacity"] == 0
            async with http.get(srv.url + "/health") as response:
                body = await response.json()
                assert body["capacity"] == 0 and body["accepting"] is False
        finally:
            admission.closing = False


async def test_idle_sessions_are_closed_1000(server_factory) -> None:
    srv = await server_factory(idle_timeout_seconds=0.4)
    async with websockets.connect(srv.ws_url) as ws:
        code, reason = await closed_with(ws, timeout=30)
    assert (code, reason) == (1000, "idle timeout")


async def test_a_session_that_speaks_is_not_idle(server_factory) -> None:
    srv = await server_factory(ToneEngine(seconds_per_word=0.2, chunk_delay=0.02), idle_timeout_seconds=0.5)
    async with websockets.connect(srv.ws_url + "?events=1", compression=None) as ws:
        await recv_json(ws)
        # ~4 s of audio made over ~1 s: longer than the idle timeout, yet never idle.
        await ws.send(json.dumps({"token": "word " * 20, "flush": True}))
        frames, events = await read_utterance(ws)
        assert events[-1]["type"] == "flushed" and events[-1]["audio_seconds"] == pytest.approx(4.0, abs=0.1)


async def test_session_time_limit_closes_1008(server_factory) -> None:
    srv = await server_factory(max_session_seconds=0.5)
    async with websockets.connect(srv.ws_url) as ws:
        for _ in range(20):
            try:
                await ws.send('{"type": "config", "format": "f32le"}')  # busy, yet over time
            except websockets.exceptions.ConnectionClosed:
                break
            await asyncio.sleep(0.05)
        code, reason = await closed_with(ws, timeout=30)
    assert (code, reason) == (1008, "session time limit reached")


async def test_utterance_limit_cuts_the_utterance_not_the_session(server_factory) -> None:
    srv = await server_factory(ToneEngine(seconds_per_word=0.5, chunk_delay=0.0), max_utterance_seconds=2.0)
    async with websockets.connect(srv.ws_url + "?events=1", compression=None) as ws:
        await recv_json(ws)
        await ws.send(json.dumps({"token": "one two three four five six seven eight nine ten. " * 3, "flush": True}))
        frames, events = await read_utterance(ws)
        errors = [e for e in events if e["type"] == "error"]
        assert len(errors) == 1 and "utterance too long" in errors[0]["error"]
        assert sum(len(f) for f in frames) / 4 / 48000 <= 2.0
        assert events[-1]["type"] == "flushed"
        # The next utterance is whole.
        await ws.send(json.dumps({"token": "Short one.", "flush": True}))
        frames, events = await read_utterance(ws)
        assert not [e for e in events if e["type"] == "error"]
        assert sum(len(f) for f in frames) / 4 / 48000 == pytest.approx(1.0, abs=0.3)


async def test_speak_audio_is_capped(server_factory) -> None:
    srv = await server_factory(ToneEngine(seconds_per_word=0.5, chunk_delay=0.0), speak_max_seconds=3.0)
    async with aiohttp.ClientSession() as http:
        async with http.post(srv.url + "/api/speak", json={"text": "word " * 30}) as response:
            assert response.status == 200
            assert "utterance too long" in response.headers["X-Voice-Bridge-Errors"]
            body = await response.read()
    assert (len(body) - 44) / 2 / 48000 <= 3.0
