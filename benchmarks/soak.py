"""Soak: many clients, good and bad, against one server on loopback for a bounded time.

Each worker loops over client behaviours picked at random (seeded):

* ``normal``   streams a reply from the corpus as LLM-like tokens (70/s) and reads everything;
               FTTS (first token sent → first audio received) and completeness are recorded;
* ``cancel``   starts a reply, cancels once audio flows, then speaks a short one;
* ``vanish``   starts a long reply and drops the connection mid-synthesis (no close frame);
* ``stall``    starts a long reply and reads nothing for a while, then drops the connection;
* ``garbage``  sends random malformed frames, then checks the session still speaks;
* ``flood``    sends messages past the rate limit and expects a 1008 close.

Meanwhile the server is sampled (sessions, tasks, threads, RSS, bytes held per session). At the
end the server must return to where it started: no sessions, tasks or threads left, its slots
free. Bounded in time (``--seconds``) and count (``--max-cycles``); loopback only: the server runs
in this process on 127.0.0.1.

    python -m benchmarks.soak --seconds 120 --clients 6
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import websockets
from aiohttp import web

from benchmarks.stats import summary_ms
from benchmarks.tokens import load_corpus
from bridge.audio.formats import sample_count
from bridge.cli import word_pieces
from bridge.config import OUTPUT_SAMPLE_RATE, Settings
from bridge.engines import Engines
from bridge.logs import setup_logging
from bridge.server import STATE, create_app

BEHAVIOURS = {"normal": 5, "cancel": 2, "vanish": 2, "stall": 1, "garbage": 1, "flood": 1}
LONG = (
    "Here is the plan for your trip. On Monday you fly to Lisbon, and the flight leaves at 8:15 in the "
    "morning. On Tuesday you take the train to Porto, which takes about three hours. On Wednesday there "
    "is a guided tour of the old town and the river."
)


@dataclass
class Report:
    seconds: float = 0.0
    clients: int = 0
    cycles: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    ftts_s: list[float] = field(default_factory=list)
    closes: Counter[str] = field(default_factory=Counter)
    garbage_frames: int = 0
    peak_sessions: int = 0
    peak_rss_mb: float = 0.0
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_timeline_mb: list[float] = field(default_factory=list)
    peak_held_bytes_per_session: int = 0
    leaked_tasks: int = 0
    leaked_threads: int = 0
    leaked_sessions: int = 0
    leaked_slots: int = 0
    metrics: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out["cycles"], out["closes"] = dict(self.cycles), dict(self.closes)  # asdict garbles Counters
        out["ftts_ms"] = summary_ms(self.ftts_s)
        del out["ftts_s"]
        out["cycles_total"] = sum(self.cycles.values())
        out["ok"] = self.ok
        return out

    @property
    def ok(self) -> bool:
        leaks = self.leaked_tasks or self.leaked_threads or self.leaked_sessions or self.leaked_slots
        return not self.failures and not leaks and bool(self.cycles)


def _garbage(rng: random.Random) -> str | bytes:
    pick = rng.randrange(8)
    if pick == 0:
        return rng.randbytes(rng.randrange(1, 64))
    if pick == 1:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(1, 40)))
    if pick == 2:
        return json.dumps({"token": rng.choice([1, None, [], {}, True])})
    if pick == 3:
        return '{"token": "x", "pitch_shift": %s}' % rng.choice(["NaN", "1e400", "99", '"up"', "1" + "0" * 5000])
    if pick == 4:
        return json.dumps({"type": rng.choice(["dance", "config", 7, ""]), "voice": "nobody", "format": "mp3"})
    if pick == 5:
        return '{"token": "\\ud800"}'
    if pick == 6:
        return "[" * rng.randrange(1, 2000)
    return json.dumps({"flush": rng.choice([False, "yes", 0])})


class Soak:
    def __init__(self, url: str, app: web.Application, args: argparse.Namespace) -> None:
        self.url = url
        self.app = app
        self.args = args
        self.report = Report(clients=args.clients)
        self.replies = [r.text for r in load_corpus()]
        self.deadline = time.monotonic() + args.seconds
        self.cycles_left = args.max_cycles

    # ------------------------------------------------------------------ behaviours
    async def _read_until_flushed(self, ws: websockets.ClientConnection, started: float | None = None) -> float:
        audio = 0
        first: float | None = None
        while True:
            message = await asyncio.wait_for(ws.recv(), 60)
            if isinstance(message, bytes):
                audio += len(message)
                if first is None and started is not None:
                    first = time.perf_counter() - started
                    self.report.ftts_s.append(first)
            elif json.loads(message).get("type") == "flushed":
                return sample_count(audio, "f32le") / OUTPUT_SAMPLE_RATE

    async def normal(self, rng: random.Random) -> None:
        text = rng.choice(self.replies)
        async with websockets.connect(self.url + "?events=1", compression=None) as ws:
            await ws.recv()  # ready
            started = time.perf_counter()
            reader = asyncio.create_task(self._read_until_flushed(ws, started))
            for token in word_pieces(text):
                await ws.send(json.dumps({"token": token}))
                await asyncio.sleep(1 / 70)
            await ws.send(json.dumps({"flush": True}))
            seconds = await reader
            if seconds < 0.5:
                raise AssertionError(f"normal: only {seconds:.2f} s of audio")

    async def cancel(self, rng: random.Random) -> None:
        async with websockets.connect(self.url + "?events=1", compression=None) as ws:
            await ws.recv()
            await ws.send(json.dumps({"token": LONG, "flush": True}))
            while not isinstance(await asyncio.wait_for(ws.recv(), 60), bytes):
                pass
            await ws.send(json.dumps({"type": "cancel"}))
            while True:
                message = await asyncio.wait_for(ws.recv(), 60)
                if isinstance(message, str) and json.loads(message)["type"] == "cancelled":
                    break
            await ws.send(json.dumps({"token": "Short and sweet.", "flush": True}))
            if await self._read_until_flushed(ws) < 0.5:
                raise AssertionError("cancel: no audio after the cancel")

    async def vanish(self, rng: random.Random) -> None:
        ws = await websockets.connect(self.url, compression=None)
        await ws.send(json.dumps({"token": LONG, "flush": True}))
        for _ in range(rng.randrange(1, 30)):
            await asyncio.wait_for(ws.recv(), 60)
        ws.transport.abort()

    async def stall(self, rng: random.Random) -> None:
        # A small receive buffer, and the library told to stop reading: the server feels it at once.
        host, port = self.url.removeprefix("ws://").split("/")[0].rsplit(":", 1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, int(port)))
        sock.setblocking(False)
        ws = await websockets.connect(self.url, sock=sock, compression=None, max_queue=1)
        await ws.send(json.dumps({"token": LONG + " " + LONG, "flush": True}))
        stall = getattr(self.args, "stall_seconds", 2.0)
        await asyncio.sleep(rng.uniform(0.5, 2 * stall + 2.0))  # reads nothing meanwhile
        ws.transport.abort()

    async def garbage(self, rng: random.Random) -> None:
        async with websockets.connect(self.url, compression=None, max_size=None) as ws:
            count = rng.randrange(20, 200)
            for _ in range(count):
                await ws.send(_garbage(rng))
            self.report.garbage_frames += count
            await ws.send(json.dumps({"type": "cancel"}))
            await ws.send(json.dumps({"type": "config", "events": True, "format": "f32le"}))
            await ws.send(json.dumps({"token": "Still speaking.", "flush": True}))
            if await self._read_until_flushed(ws) < 0.3:
                raise AssertionError("garbage: the session stopped speaking")

    async def flood(self, rng: random.Random) -> None:
        settings: Settings = self.app[STATE].settings
        async with websockets.connect(self.url, compression=None) as ws:
            try:
                for _ in range(settings.limits.message_burst + int(settings.limits.max_message_rate) + 100):
                    await ws.send('{"type": "config", "format": "f32le"}')
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            except websockets.exceptions.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                self.report.closes[f"flood:{code}"] += 1
                if code != 1008:
                    raise AssertionError(f"flood: closed with {code}, not 1008") from None

    # ------------------------------------------------------------------ running
    async def worker(self, index: int) -> None:
        rng = random.Random(self.args.seed * 1000 + index)
        names = list(getattr(self.args, "behaviours", None) or BEHAVIOURS)
        weights = [BEHAVIOURS[n] for n in names]
        while time.monotonic() < self.deadline and self.cycles_left > 0:
            self.cycles_left -= 1
            name = rng.choices(names, weights)[0]
            try:
                await getattr(self, name)(rng)
            except Exception as exc:  # noqa: BLE001 - every failure is reported
                self.report.failures.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
            self.report.cycles[name] += 1

    async def sample(self) -> None:
        state = self.app[STATE]
        process = psutil.Process()
        next_mark = time.monotonic()
        while True:
            if time.monotonic() >= next_mark:  # RSS every tenth of the run: growth or a plateau?
                self.report.rss_timeline_mb.append(round(process.memory_info().rss / 2**20, 1))
                next_mark += max(1.0, self.args.seconds / 10)
            self.report.peak_sessions = max(self.report.peak_sessions, len(state.sessions))
            self.report.peak_rss_mb = max(self.report.peak_rss_mb, process.memory_info().rss / 2**20)
            for session in list(state.sessions.values()):
                held = sum(session.buffered_bytes().values())
                self.report.peak_held_bytes_per_session = max(self.report.peak_held_bytes_per_session, held)
            await asyncio.sleep(0.1)

    async def run(self) -> Report:
        state = self.app[STATE]
        gc.collect()
        tasks_before = len(asyncio.all_tasks())
        threads_before = {t.name for t in threading.enumerate() if not t.name.startswith("model")}
        self.report.rss_start_mb = psutil.Process().memory_info().rss / 2**20
        started = time.monotonic()
        sampler = asyncio.create_task(self.sample())
        await asyncio.gather(*(self.worker(i) for i in range(self.args.clients)))
        self.report.seconds = round(time.monotonic() - started, 1)
        for _ in range(200):  # let the server notice the last disconnects
            if not state.sessions and not state.admission.active:
                break
            await asyncio.sleep(0.05)
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        gc.collect()
        self.report.rss_end_mb = psutil.Process().memory_info().rss / 2**20
        self.report.leaked_sessions = len(state.sessions)
        self.report.leaked_slots = state.admission.active
        self.report.leaked_tasks = max(0, len(asyncio.all_tasks()) - tasks_before)
        threads_after = {t.name for t in threading.enumerate() if not t.name.startswith("model")}
        self.report.leaked_threads = len(threads_after - threads_before)
        metrics = state.metrics
        for reason in ("client", "stalled", "rate", "idle", "internal", "buffered"):
            self.report.closes[reason] = int(metrics.value("voice_bridge_sessions_closed_total", reason=reason))
        self.report.metrics = {
            "messages": metrics.value("voice_bridge_messages_total"),
            "errors_protocol": metrics.value("voice_bridge_errors_total", kind="protocol"),
            "errors_internal": metrics.value("voice_bridge_errors_total", kind="internal"),
            "error_frames_dropped": metrics.value("voice_bridge_error_frames_dropped_total"),
            "audio_seconds": round(metrics.value("voice_bridge_audio_seconds_total"), 1),
            "utterances": metrics.value("voice_bridge_utterances_total"),
        }
        if self.report.metrics["errors_internal"]:
            self.report.failures.append(f"{self.report.metrics['errors_internal']:g} internal errors")
        return self.report


async def soak(args: argparse.Namespace) -> Report:
    """Run a server with the embedded voice on 127.0.0.1 and soak it."""
    settings = Settings().unchecked(
        host="127.0.0.1", port=0, send_stall_seconds=args.stall_seconds, max_connections_per_ip=0
    )
    engines = Engines.from_settings(settings)
    await asyncio.get_running_loop().run_in_executor(None, engines.load)
    app = create_app(settings, engines)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
    try:
        return await Soak(f"ws://127.0.0.1:{port}/ws/stream", app, args).run()
    finally:
        await runner.cleanup()
        engines.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="How long to soak (at most 3600).")
    parser.add_argument("--clients", type=int, default=4, help="Concurrent client workers (at most 64).")
    parser.add_argument("--max-cycles", type=int, default=2000, help="Client cycles in all, at most.")
    parser.add_argument("--stall-seconds", type=float, default=2.0, help="The server's send_stall_seconds.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--behaviours", type=lambda v: [b for b in v.split(",") if b in BEHAVIOURS], help="Only these (comma-separated)."
    )
    parser.add_argument("--out", type=Path, help="Write the JSON report here too.")
    parser.add_argument("--log-level", default="ERROR", help="The server's log level (WARNING shows every close).")
    args = parser.parse_args(argv)
    setup_logging(args.log_level.upper())
    args.seconds = min(max(args.seconds, 1.0), 3600.0)
    args.clients = min(max(args.clients, 1), 64)
    report = asyncio.run(soak(args))
    text = json.dumps(report.summary(), indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
