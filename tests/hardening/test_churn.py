"""Clients that vanish mid-synthesis: hundreds of connect/disconnect cycles leave no session,
task, thread, slot or synthesis behind; an abandoned /api/speak request stops its synthesis.

Leaks are counted (tasks, threads, sessions, slots, engine streams); RSS growth is a figure
(printed with -s, recorded in benchmarks/results/*-hardening.md), not an assertion.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import threading

import aiohttp
import psutil
import pytest
import websockets

from bridge.server import STATE
from tests.support.engines_util import ToneEngine, WrappedEngine, wait_until
from tests.support.ws_client import LONG_REPLY

CYCLES = 200
FIGURES: dict[str, float] = {}


def threads() -> tuple[int, int]:
    """(model worker threads, all other threads): a pool's threads start lazily, up to its size."""
    names = [t.name for t in threading.enumerate()]
    model = sum(1 for n in names if n.startswith("model"))
    return model, len(names) - model


def session_tasks() -> list[asyncio.Task]:
    prefixes = ("pipeline-", "sender-", "close-")
    return [t for t in asyncio.all_tasks() if t.get_name().startswith(prefixes) and not t.done()]


async def settle(condition, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    """Poll until ``condition`` holds (the timeout only guards a hang); whether it holds."""
    try:
        await wait_until(condition, "settled", timeout=timeout)
    except AssertionError:
        pass
    return bool(condition())


async def test_disconnects_mid_synthesis_leak_nothing(server_factory, piper_engine) -> None:
    engine = WrappedEngine(piper_engine)
    srv = await server_factory(engine, heartbeat_seconds=0)
    state = srv.app[STATE]
    rng = random.Random(2026)

    async def cycle(index: int) -> bool:
        """One client: start a long utterance, vanish at some point of it. True if audio had
        started flowing when it left (certainly mid-synthesis)."""
        ws = await websockets.connect(srv.ws_url, compression=None)
        await ws.send(json.dumps({"token": LONG_REPLY, "flush": True}))
        mode = index % 4
        heard = False
        if mode == 1 or mode == 2:
            await asyncio.wait_for(ws.recv(), 30)  # the first frame: synthesis is under way
            heard = True
            for _ in range(rng.randrange(0, 40) if mode == 2 else 0):
                await asyncio.wait_for(ws.recv(), 30)
        elif mode == 3:
            await asyncio.sleep(rng.uniform(0, 0.05))
        if index % 2:
            await ws.close()  # a polite close frame
        else:
            ws.transport.abort()  # vanishes: TCP reset, no close frame
        return heard

    # Warm up (model threads exist, first allocations done), then count.
    await cycle(1)
    assert await settle(lambda: not state.sessions and not session_tasks())
    gc.collect()
    _, threads_before = threads()
    tasks_before = len(asyncio.all_tasks())
    rss_before = psutil.Process().memory_info().rss

    heard = 0
    for index in range(CYCLES):
        heard += await cycle(index)
    assert await settle(lambda: not state.sessions and not session_tasks()), (len(state.sessions), session_tasks())
    # Synthesis stopped with the sessions: past the chunk each was computing when its client
    # left (model calls cannot be interrupted), every engine stream has ended or been closed.
    # (Had the 200 long utterances gone on, that would be minutes of synthesis, not seconds.)
    gc.collect()
    assert await settle(lambda: engine.active == 0), f"{engine.active} streams still open for sessions that are gone"
    chunks = engine.chunks
    gc.collect()
    leaked_tasks = len(asyncio.all_tasks()) - tasks_before
    model_threads, others = threads()
    leaked_threads = others - threads_before
    rss_growth = psutil.Process().memory_info().rss - rss_before
    FIGURES.update(
        cycles=CYCLES, mid_audio=heard, leaked_tasks=leaked_tasks, leaked_threads=leaked_threads, rss_growth_mb=rss_growth / 2**20
    )
    print("churn figures:", {k: round(v, 2) for k, v in FIGURES.items()})
    assert heard >= CYCLES // 2
    assert leaked_tasks == 0 and leaked_threads == 0
    assert len(state.engines.executor._threads) == state.engines.executor.workers  # noqa: SLF001 - no thread per session
    assert state.admission.active == 0 and not state.admission.per_ip
    assert state.metrics.value("voice_bridge_sessions") == 0
    assert state.metrics.value("voice_bridge_sessions_opened_total") == CYCLES + 1
    closed = sum(
        state.metrics.value("voice_bridge_sessions_closed_total", reason=r) for r in ("client", "stalled", "internal")
    )
    assert closed == CYCLES + 1
    assert state.metrics.value("voice_bridge_sessions_closed_total", reason="internal") == 0
    assert engine.chunks == chunks and engine.active == 0
    # And the server still speaks.
    async with websockets.connect(srv.ws_url + "?events=1", compression=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"token": "Still here after all that.", "flush": True}))
        got_audio = False
        while True:
            message = await asyncio.wait_for(ws.recv(), 30)
            if isinstance(message, bytes):
                got_audio = True
            elif json.loads(message)["type"] == "flushed":
                break
        assert got_audio


async def test_an_abandoned_speak_request_stops_its_synthesis(server_factory) -> None:
    engine = ToneEngine(seconds_per_word=0.5, chunk_delay=0.05)  # 100 words: ~25 s of work
    srv = await server_factory(engine)
    state = srv.app[STATE]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as http:
        with pytest.raises(asyncio.TimeoutError):
            await http.post(srv.url + "/api/speak", json={"text": "word " * 100})
    assert await settle(lambda: engine.active == 0 and state.admission.active == 0)
    assert engine.started >= 1
    # Stopped, not finished: the whole request is 500 chunks (100 words × 0.5 s in 0.1 s chunks,
    # 25 s of work); the client left after 0.5 s.
    assert engine.chunks < 500, engine.chunks
    assert engine.finished == engine.started  # and each segment's stream was closed
