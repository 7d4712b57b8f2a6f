"""Graceful shutdown of a real server process: SIGTERM mid-utterance.

Asserted: every session closes 1001, the utterance in flight is finished, a long one is cut, the
process exits 0 and logs "stopped". How long that took is a figure (printed; recorded in
benchmarks/results/*-hardening.md), not an assertion: the machine is shared.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import pytest
import websockets

from tests.support.server_process import start_server_process
from tests.support.ws_client import LONG_REPLY, recv_json

DEADLINE = 3.0
PLAY_UNTIL = DEADLINE - 1.5  # seconds after SIGTERM the long listener plays in real time
FIGURES: dict[str, float] = {}


async def test_sigterm_mid_utterance_closes_1001_within_the_deadline(tmp_path: Path) -> None:
    process, port, logs = await start_server_process(tmp_path, shutdown_timeout=DEADLINE)
    url = f"ws://127.0.0.1:{port}/ws/stream?events=1"
    try:
        long_ws = await websockets.connect(url, compression=None)
        short_ws = await websockets.connect(url, compression=None)
        idle_ws = await websockets.connect(url, compression=None)
        for ws in (long_ws, short_ws, idle_ws):
            await recv_json(ws)
        await long_ws.send(json.dumps({"token": LONG_REPLY + " " + LONG_REPLY, "flush": True}))  # ~40 s
        while not isinstance(await asyncio.wait_for(long_ws.recv(), 60), bytes):
            pass  # mid-utterance now
        await short_ws.send(json.dumps({"token": "A short reply.", "flush": True}))
        while not isinstance(await asyncio.wait_for(short_ws.recv(), 60), bytes):
            pass  # its first audio: the short utterance is in flight
        process.send_signal(signal.SIGTERM)
        signalled = time.perf_counter()

        async def until_closed(
            ws: websockets.ClientConnection, realtime: bool = False
        ) -> tuple[int | None, str, bool, float]:
            flushed = False
            try:
                while True:
                    message = await asyncio.wait_for(ws.recv(), 30)
                    if isinstance(message, str) and json.loads(message)["type"] == "flushed":
                        flushed = True
                    elif realtime and isinstance(message, bytes) and time.perf_counter() - signalled < PLAY_UNTIL:
                        # A listener playing it (so it cannot be over early). The server cuts
                        # in-flight work at DEADLINE - its close budget and aborts what is still
                        # unsent at DEADLINE; a player that never reads ahead would meet its close
                        # frame behind seconds of audio in the socket buffers. So 1.5 s
                        # before the deadline it reads what is left at once, as a client that
                        # buffers ahead does, and must then see the 1001.
                        await asyncio.sleep(len(message) / 4 / 48000)
            except websockets.exceptions.ConnectionClosed as exc:
                rcvd = exc.rcvd
                return (rcvd.code if rcvd else None), (rcvd.reason if rcvd else ""), flushed, time.perf_counter() - signalled

        closes = await asyncio.gather(until_closed(long_ws, realtime=True), until_closed(short_ws), until_closed(idle_ws))
        # No new sessions meanwhile: the listening socket is closed.
        with pytest.raises((OSError, websockets.exceptions.InvalidStatus, websockets.exceptions.InvalidMessage)):
            await websockets.connect(url, open_timeout=2)
        await asyncio.wait_for(process.wait(), DEADLINE + 60)  # a hang guard, not a bound
        exited = time.perf_counter() - signalled
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    for code, reason, _, _ in closes:
        assert (code, reason) == (1001, "server shutting down")
    assert closes[1][2], "the short utterance in flight at SIGTERM was not finished"
    assert not closes[0][2], "a 40 s utterance played in real time cannot have finished within the deadline"
    assert process.stderr is not None
    tail = [json.loads(line) for line in (await process.stderr.read()).splitlines() if line.startswith(b"{")]
    assert any(entry["message"] == "stopped" for entry in tail)
    FIGURES.update(close_seconds=max(c[3] for c in closes), exit_seconds=exited)
    print("shutdown figures:", {k: round(v, 2) for k, v in FIGURES.items()})
