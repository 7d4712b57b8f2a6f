"""Slow and stalled readers: bounded memory per session, other sessions unaffected, and a
client that stops reading for too long is dropped.

Bounds here are in bytes and samples (what a session may hold); times and RSS are figures,
printed with -s and recorded in benchmarks/results/*-hardening.md, never asserted.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import psutil
import pytest
import websockets

from bridge.server import STATE
from tests.support.engines_util import ToneEngine, wait_until
from tests.support.ws_client import LONG_REPLY, REPLY, read_utterance, recv_json

#: Figures for the report (printed with -s; the soak benchmark prints its own).
FIGURES: dict[str, float] = {}


async def never_reading_client(url: str) -> websockets.ClientConnection:
    """A client that reads nothing after the handshake: a tiny kernel receive buffer, and the
    websockets library told to stop reading after one queued frame."""
    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return await websockets.connect(url, sock=sock, compression=None, max_queue=1)


SLOW_CLIENTS = 5
#: Slow clients opened before RSS is measured: by then both model threads have grown their buffers.
WARM_CLIENTS = 2


async def test_never_reading_clients_are_bounded_and_others_get_their_audio(server_factory) -> None:
    srv = await server_factory(heartbeat_seconds=0, send_stall_seconds=120)
    state = srv.app[STATE]
    process = psutil.Process()
    slow_clients: list[websockets.ClientConnection] = []
    sessions = []
    peak = {"queue": 0, "transport": 0, "kernel": 0, "total": 0}

    def sample() -> None:
        for session in sessions:
            held = session.buffered_bytes()
            for key in ("queue", "transport", "kernel"):
                peak[key] = max(peak[key], held[key])
            peak["total"] = max(peak["total"], sum(held.values()))

    async def watch() -> None:
        while True:
            sample()
            await asyncio.sleep(0.02)

    async def open_slow_client() -> None:
        known = set(state.sessions)
        slow = await never_reading_client(srv.ws_url + "?events=1")
        slow_clients.append(slow)
        await slow.send(json.dumps({"token": LONG_REPLY + " " + LONG_REPLY, "flush": True}))  # ~40 s of speech
        await wait_until(lambda: set(state.sessions) - known, "the slow client's session is open")
        session = state.sessions[next(iter(set(state.sessions) - known))]
        sessions.append(session)
        # Wait until its synthesis has stalled: the queue is full and the sender waits on the socket.
        limit = session.pipeline.output.max_samples
        await wait_until(
            lambda: session.pipeline.output.samples >= limit and session.send_blocked_since is not None,
            "a slow session fills its queue",
            timeout=60,
        )

    watcher = asyncio.create_task(watch())
    try:
        # The first slow clients also grow the model threads' buffers (onnxruntime arenas, tens
        # of MB, once per thread); RSS per slow client is measured over the ones after them.
        for _ in range(WARM_CLIENTS):
            await open_slow_client()
        rss_first = process.memory_info().rss
        for _ in range(SLOW_CLIENTS - WARM_CLIENTS):
            await open_slow_client()
        rss_per_client = (process.memory_info().rss - rss_first) / (SLOW_CLIENTS - WARM_CLIENTS)
        # A normal client, meanwhile: prompt and complete.
        started = time.perf_counter()
        async with websockets.connect(srv.ws_url + "?events=1", compression=None) as ws:
            await recv_json(ws)
            await ws.send(json.dumps({"token": REPLY, "flush": True}))
            first_audio = None
            frames: list[bytes] = []
            events: list[dict] = []
            while True:
                message = await asyncio.wait_for(ws.recv(), 30)
                if isinstance(message, bytes):
                    first_audio = first_audio or time.perf_counter() - started
                    frames.append(message)
                    continue
                events.append(json.loads(message))
                if events[-1]["type"] == "flushed":
                    break
        total = time.perf_counter() - started
        spoken = " ".join(e["text"] for e in events if e["type"] == "segment")
        assert spoken.split() == REPLY.split()
        audio_seconds = sum(len(f) for f in frames) / 4 / 48000
        assert events[-1]["audio_seconds"] == pytest.approx(audio_seconds, abs=0.01) and audio_seconds > 4
        assert first_audio is not None  # how soon, and how fast: figures below
        # The slow sessions stayed paused and bounded the whole time.
        sample()
        for session in sessions:
            assert session.pipeline.output.samples < session.pipeline.output.max_samples + 48000
    finally:
        watcher.cancel()
        for slow in slow_clients:
            slow.transport.abort()
    bytes_per_second = 48000 * 4
    FIGURES.update(
        slow_clients=SLOW_CLIENTS,
        peak_held_bytes_per_client=peak["total"],
        peak_held_seconds_per_client=peak["total"] / bytes_per_second,
        peak_queue_bytes=peak["queue"],
        peak_transport_bytes=peak["transport"],
        peak_kernel_bytes=peak["kernel"],
        rss_growth_bytes_per_client=rss_per_client,
        normal_first_audio_seconds=first_audio,
        normal_total_seconds=total,
        normal_audio_seconds=audio_seconds,
    )
    print("slow reader figures:", {k: round(v, 3) for k, v in FIGURES.items()})
    assert peak["total"] / bytes_per_second <= 10.0, peak
    assert peak["kernel"] <= 2 * 131072 + 65536 and peak["transport"] <= 256 * 1024, peak
    # They are cleaned up once gone.
    await wait_until(lambda: not state.sessions, "the slow sessions are gone")
    assert not state.sessions and state.admission.active == 0


async def test_a_stalled_reader_is_closed_and_the_slot_freed(server_factory) -> None:
    srv = await server_factory(ToneEngine(chunk_delay=0.0), heartbeat_seconds=0, send_stall_seconds=0.5)
    state = srv.app[STATE]
    slow = await never_reading_client(srv.ws_url)
    try:
        await slow.send(json.dumps({"token": "word " * 400, "flush": True}))  # two minutes of tone
        await wait_until(
            lambda: state.metrics.value("voice_bridge_sessions_closed_total", reason="stalled"),
            "the stalled reader is closed",
        )
        assert state.metrics.value("voice_bridge_sessions_closed_total", reason="stalled") == 1
        await wait_until(lambda: not state.sessions and not state.admission.active, "its slot is freed")
        assert not state.sessions and state.admission.active == 0
        # The socket was dropped rather than left holding unsent audio: the client sees the end.
        slow_reader_done = False
        try:
            while True:
                await asyncio.wait_for(slow.recv(), 30)
        except websockets.exceptions.ConnectionClosed:
            slow_reader_done = True
        assert slow_reader_done
    finally:
        slow.transport.abort()
    # A reading client on the same server is never considered stalled.
    async with websockets.connect(srv.ws_url + "?events=1", compression=None) as ws:
        await recv_json(ws)
        await ws.send(json.dumps({"token": "word " * 30, "flush": True}))
        frames, events = await read_utterance(ws)
        assert events[-1]["audio_seconds"] == pytest.approx(9.0, abs=0.1)
