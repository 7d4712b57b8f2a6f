"""Servers under test, started as subprocesses, and the client that replays tokens into them.

A session is one WebSocket connection (``?events=1``) that speaks one utterance after another,
as a chat bot does: tokens at a fixed rate, a flush, then everything until ``flushed``. Every
message is time-stamped on arrival; :mod:`benchmarks.metrics` turns that into figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import websockets

from benchmarks.metrics import Trace, segments_from_messages
from bridge.audio.formats import sample_count

#: The repository this benchmark belongs to: servers run its code, not an installed copy.
REPO = Path(__file__).resolve().parent.parent
OUTPUT_RATE = 48_000


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server of the ``/ws/stream`` protocol."""

    name: str
    command: list[str]  # "{port}" is replaced
    env: dict[str, str] | None = None
    description: str = ""

    def argv(self, port: int) -> list[str]:
        return [part.format(port=port) for part in self.command]


#: The ramp looks for where the machine runs out, so the server must not refuse sessions first
#: (its measured-capacity admission would close the levels past it with 1013).
BENCH_SERVER_ENV = {"VOICE_BRIDGE_CAPACITY_ADMISSION": "false"}


def bridge_server(name: str = "voice-bridge", *extra: str, env: dict[str, str] | None = None, description: str = "") -> ServerSpec:
    return ServerSpec(
        name,
        [sys.executable, "-m", "bridge", "serve", "--host", "127.0.0.1", "--port", "{port}", "--log-level", "WARNING", *extra],
        {**BENCH_SERVER_ENV, **(env or {})},
        description or "this project: streaming segmenter with first-fragment fast path, chunked Piper decoding",
    )


def naive_server() -> ServerSpec:
    return ServerSpec(
        "naive",
        [sys.executable, "-m", "benchmarks.naive_server", "--host", "127.0.0.1", "--port", "{port}"],
        None,
        "the seed's behaviour: cut at . ! ? , ; or 200 characters, synthesize each cut whole",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(spec: ServerSpec) -> dict[str, str]:
    """The server's environment: this repository first on PYTHONPATH, plus the spec's variables."""
    env = {**os.environ, **(spec.env or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return env


@dataclass
class RunningServer:
    spec: ServerSpec
    process: subprocess.Popen[bytes]
    ws_url: str
    health: dict[str, Any]


class ServerFailed(RuntimeError):
    pass


@asynccontextmanager
async def running_server(spec: ServerSpec, *, startup_timeout: float = 120.0):
    """Start ``spec`` on a free loopback port, wait for /health "ok", stop it on exit."""
    port = free_port()
    process = subprocess.Popen(
        spec.argv(port), env=server_env(spec), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    health: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + startup_timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if process.poll() is not None:
                    err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                    tail = " | ".join(err.strip().splitlines()[-3:])
                    raise ServerFailed(f"{spec.name} exited with {process.returncode}: {tail}")
                try:
                    async with http.get(url + "/health") as response:
                        if response.status == 200:
                            health = await response.json()
                            if health.get("status") == "ok":
                                break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerFailed(f"{spec.name} did not become healthy in {startup_timeout:.0f} s")
                await asyncio.sleep(0.1)
        yield RunningServer(spec, process, f"ws://127.0.0.1:{port}/ws/stream", health)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


class Session:
    """One connection; :meth:`speak` replays one utterance and returns its :class:`Trace`."""

    def __init__(self, ws: Any, ready: dict[str, Any]) -> None:
        self.ws = ws
        self.ready = ready
        self.sample_rate = int(ready.get("sample_rate", OUTPUT_RATE))

    @classmethod
    @asynccontextmanager
    async def open(cls, ws_url: str, *, timeout: float = 60.0, query: str = "events=1"):
        async with websockets.connect(f"{ws_url}?{query}", compression=None, max_size=None, open_timeout=timeout) as ws:
            while True:
                message = await asyncio.wait_for(ws.recv(), timeout)
                if isinstance(message, str) and json.loads(message).get("type") == "ready":
                    yield cls(ws, json.loads(message))
                    return

    async def speak(
        self,
        tokens: list[str],
        rate: float,
        *,
        keep_audio: list[bytes] | None = None,
        keep_events: list[tuple[int, dict[str, Any]]] | None = None,
        timeout: float = 180.0,
    ) -> Trace:
        """``keep_audio`` gets the audio messages, ``keep_events`` every event as (samples of
        audio received before it, event)."""
        ws = self.ws
        messages: list[tuple[float, str, Any]] = []
        audio: list[tuple[float, int]] = []
        sent: list[float] = []
        stats: dict[str, Any] = {}
        errors: list[str] = []
        done = asyncio.Event()

        async def receive() -> None:
            async for message in ws:
                now = time.perf_counter()
                if isinstance(message, bytes):
                    samples = sample_count(message, "f32le")
                    audio.append((now, samples))
                    messages.append((now, "audio", samples))
                    if keep_audio is not None:
                        keep_audio.append(message)
                    continue
                event = json.loads(message)
                if keep_events is not None:
                    keep_events.append((sum(samples for _, samples in audio), event))
                kind = event.get("type")
                if kind == "segment":
                    messages.append((now, "segment", event))
                elif kind == "error":
                    errors.append(str(event.get("error")))
                elif kind == "flushed":
                    stats.update(event.get("stats") or {})
                    done.set()
                    return

        receiver = asyncio.create_task(receive())
        try:
            start = time.perf_counter()
            for index, token in enumerate(tokens):
                delay = start + index / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await ws.send(json.dumps({"token": token}))
                sent.append(time.perf_counter())
            await ws.send(json.dumps({"flush": True}))
            flush_sent = time.perf_counter()
            await asyncio.wait_for(done.wait(), timeout)
            await receiver
        finally:
            if not receiver.done():
                receiver.cancel()
        if errors and not audio:
            raise ServerFailed("; ".join(errors))
        return Trace(
            token_sent=sent,
            flush_sent=flush_sent,
            audio=audio,
            sample_rate=self.sample_rate,
            segments=segments_from_messages(messages),
            stats=stats,
            done=time.perf_counter(),
        )
