"""Real sessions that load a real server to its measured capacity (shared by the capacity tests)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import websockets

PRIOR = 0.01  # CPU-s per audio-s: would let 42 listeners onto half a core
CAPACITY_SETTINGS = {
    "capacity_cores": 0.5,
    "capacity_margin": 0.15,
    "capacity_window_seconds": 1.0,
    "capacity_warmup_audio_seconds": 1.0,
    "capacity_prior_cost_per_audio_second": PRIOR,
}
SENTENCES = [
    "The first listener asks about the weather tomorrow.",
    "Another one wants to hear a short story.",
    "A third voice reads the news of the day.",
    "Someone else is waiting for a recipe.",
]


async def get_json(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.json()


async def speak(ws: websockets.ClientConnection, text: str) -> None:
    """Say ``text`` and read until the utterance is flushed."""
    await ws.send(json.dumps({"token": text}))
    await ws.send(json.dumps({"flush": True}))
    while True:
        message = await asyncio.wait_for(ws.recv(), 60)
        if isinstance(message, str) and json.loads(message)["type"] == "flushed":
            return


async def settled_load(url: str) -> dict[str, Any]:
    """/health's load once no model work is left in the window (a liveness wait)."""
    for _ in range(600):
        _, health = await get_json(url + "/health")
        if health["load"]["load_cores"] == 0:
            return health["load"]
        await asyncio.sleep(0.05)
    raise AssertionError(f"the load never settled: {health['load']}")


async def open_session(url: str) -> websockets.ClientConnection:
    ws = await websockets.connect(url + "?events=1", compression=None)
    assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "ready"
    return ws


async def fill_to_capacity(server: Any) -> tuple[list[websockets.ClientConnection], dict[str, Any]]:
    """Open sessions that each speak a sentence until /ready says 503; checks /ready against the
    measured cost at every step. The sessions (still open) and the load at capacity."""
    sessions: list[websockets.ClientConnection] = []
    for count in range(1, 40):
        ws = await open_session(server.ws_url)
        sessions.append(ws)
        await speak(ws, SENTENCES[count % len(SENTENCES)])
        load = await settled_load(server.url)
        status, ready = await get_json(server.url + "/ready")
        cost = load["cost_per_audio_second"]["piper"]
        fits = (count + 1) * cost <= load["usable_cores"] + 1e-6
        assert (status == 200) is fits and ready["ready"] is fits, (count, load, ready)
        assert ready["capacity"] == load["headroom_sessions"]
        if not fits:
            return sessions, load
    raise AssertionError("never reached capacity")
