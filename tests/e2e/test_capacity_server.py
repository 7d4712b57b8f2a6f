"""Measured capacity on a real server: real Piper, real sessions over loopback WebSockets.

The cores are set small (half a core) so that capacity comes after a handful of sessions, and
the window short so that a finished utterance leaves it soon; the cost per audio second is
what the server measures while the sessions speak (the prior is set far off, so a capacity
that followed it would show). Waits are on conditions, with generous deadlines.
"""

from __future__ import annotations

import asyncio
import math

import aiohttp
import pytest
import websockets

from bridge.server import STATE
from tests.support.capacity import CAPACITY_SETTINGS, PRIOR, SENTENCES, fill_to_capacity, get_json, speak


async def test_ready_turns_503_at_the_measured_capacity(server_factory) -> None:
    server = await server_factory(max_sessions=32, **CAPACITY_SETTINGS)
    _, health = await get_json(server.url + "/health")
    assert health["load"]["warming_up"] == ["piper"] and health["load"]["capacity_sessions"] == math.floor(0.425 / PRIOR)
    sessions, load = await fill_to_capacity(server)
    try:
        # The cost was measured, not the prior; capacity is what it says the usable cores carry.
        cost = load["cost_per_audio_second"]["piper"]
        assert load["warming_up"] == [] and cost > 2 * PRIOR
        # The last session may have been admitted at a slightly lower cost than its own speech
        # then measured: capacity may read one below the sessions that are open.
        assert load["capacity_sessions"] == math.floor(0.425 / cost + 1e-6)
        assert load["capacity_sessions"] in (len(sessions), len(sessions) - 1)
        assert load["committed_cores"] == pytest.approx(len(sessions) * cost, rel=1e-3)
        assert load["load_ratio"] == pytest.approx(load["committed_cores"] / 0.425, rel=1e-3)
        assert load["headroom_sessions"] == 0
        _, ready = await get_json(server.url + "/ready")
        assert ready["reason"] == "at capacity" and ready["sessions"] == len(sessions) < ready["max_sessions"]
        # A new session is turned away with 1013; /api/speak with 503 and Retry-After.
        async with websockets.connect(server.ws_url, compression=None) as refused:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(refused.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        assert "capacity" in closed.value.rcvd.reason
        async with aiohttp.ClientSession() as http, http.post(server.url + "/api/speak", json={"text": "Hi."}) as response:
            assert response.status == 503 and response.headers["Retry-After"]
        # /metrics exports the same figures.
        async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as response:
            text = await response.text()
        assert f"voice_bridge_capacity_sessions {float(load['capacity_sessions'])}" in text
        assert 'voice_bridge_cost_per_audio_second{key="piper"}' in text
        metrics = server.app[STATE].metrics
        assert metrics.value("voice_bridge_compute_seconds_total", key="piper") > 0
        assert metrics.value("voice_bridge_compute_audio_seconds_total", key="piper") > 1.0  # past the warm-up
        assert "voice_bridge_load_ratio " in text and "voice_bridge_load_cores 0.0" in text
        assert server.app[STATE].metrics.value("voice_bridge_refused_total", reason="load") == 2
        # The open sessions carry on (being "not ready" touches none of them), and when sessions
        # end there is room again: with the cost unchanged, capacity - 1 open leave room for one.
        for ws in sessions:
            await asyncio.wait_for(await ws.ping(), 30)
        while len(sessions) > load["capacity_sessions"] - 1:
            await sessions.pop().close()
        for _ in range(600):
            if len(server.app[STATE].sessions) == len(sessions):
                break
            await asyncio.sleep(0.05)
        status, ready = await get_json(server.url + "/ready")
        assert status == 200 and ready["capacity"] == 1
    finally:
        for ws in sessions:
            await ws.close()


async def test_load_is_measured_while_sessions_speak(server_factory) -> None:
    """While a session speaks, the window holds its model work: load_cores is its CPU per wall
    second, and the process's own CPU is reported beside it."""
    server = await server_factory(capacity_cores=2.0, capacity_window_seconds=30.0, capacity_warmup_audio_seconds=0.5)
    async with websockets.connect(server.ws_url + "?events=1", compression=None) as ws:
        await asyncio.wait_for(ws.recv(), 30)
        await speak(ws, " ".join(SENTENCES))
        _, health = await get_json(server.url + "/health")
    load = health["load"]
    cost = load["cost_per_audio_second"]["piper"]
    assert 0 < cost < 1  # embedded Piper: well under real time
    assert 0 < load["load_cores"] and load["process_cores"] is not None and load["process_cores"] > 0
    assert load["usable_cores"] == pytest.approx(1.7) and load["capacity_sessions"] == math.floor(1.7 / cost + 1e-6)
    assert health["capacity"] == min(health["max_sessions"] - health["sessions"], load["headroom_sessions"])
