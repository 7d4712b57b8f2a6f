"""The compose ``scale`` profile's Traefik in front of two real bridges on loopback, one of them
at its measured capacity: the next session lands on the other.

The balancer is the real binary with the checked-in static file and the replicas' labels
(tests/support/traefik.py, as tests/deploy/test_docker.py runs it); the bridges run real Piper, and the
full one got there by real sessions speaking (its cost per audio second measured, not set).
"""

from __future__ import annotations

import asyncio
import json

import websockets

from tests.support.capacity import CAPACITY_SETTINGS, fill_to_capacity, get_json, open_session
from tests.support.traefik import sessions_of, until_sessions


async def test_a_session_one_replica_refuses_lands_on_the_other(server_factory, balancer) -> None:
    replicas = {r.url: r for r in [await server_factory(**CAPACITY_SETTINGS) for _ in range(2)]}
    full, other = list(replicas)
    lb = await balancer([full, other])
    sessions, load = await fill_to_capacity(replicas[full])
    try:
        assert load["headroom_sessions"] == 0 and load["capacity_sessions"] in (len(sessions), len(sessions) - 1)
        on_full = len(sessions)
        status, ready = await get_json(other + "/ready")
        assert status == 200 and ready["capacity"] > 0
        await lb.until({full: "DOWN", other: "UP"})
        before = sessions_of(replicas)
        for index in range(2):  # each new session, through the balancer, lands on the other replica
            ws = await open_session(lb.url)
            sessions.append(ws)
            await until_sessions(replicas, {full: before[full], other: before[other] + index + 1})
        # Audio flows through the proxied session on the replica with room.
        await ws.send(json.dumps({"token": "Hello from the other replica."}))
        await ws.send(json.dumps({"flush": True}))
        kinds: list[str] = []
        while "flushed" not in kinds:
            message = await asyncio.wait_for(ws.recv(), 60)
            kinds.append("audio" if isinstance(message, bytes) else json.loads(message)["type"])
        assert "audio" in kinds
        # The full replica itself still turns a direct session away (1013).
        async with websockets.connect(full.replace("http://", "ws://") + "/ws/stream", compression=None) as direct:
            try:
                await asyncio.wait_for(direct.recv(), 10)
                raise AssertionError("the full replica accepted a session")
            except websockets.ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1013
        # When sessions on the full replica end, it takes sessions again.
        while on_full > load["capacity_sessions"] - 1:
            await sessions.pop(0).close()
            on_full -= 1
        for _ in range(600):
            status, _ = await get_json(full + "/ready")
            if status == 200:
                break
            await asyncio.sleep(0.05)
        assert status == 200, (await get_json(full + "/health"))[1]
        # (The other replica's own state is its business now: its sessions have measured its cost.)
        for _ in range(600):
            if (await lb.statuses()).get(full) == "UP":
                break
            await asyncio.sleep(0.05)
        assert (await lb.statuses()).get(full) == "UP", await lb.statuses()
    finally:
        for ws in sessions:
            await ws.close()
