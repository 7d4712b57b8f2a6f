"""benchmarks/soak.py keeps working: a few seconds of every client behaviour."""

from __future__ import annotations

import argparse

from benchmarks.soak import BEHAVIOURS, Soak


async def test_soak_smoke(server_factory) -> None:
    srv = await server_factory(max_connections_per_ip=0, send_stall_seconds=1.0, max_message_rate=50, message_burst=100)
    args = argparse.Namespace(seconds=3.0, clients=2, max_cycles=len(BEHAVIOURS), seed=3)
    soak = Soak(srv.ws_url, srv.app, args)
    report = await soak.run()
    summary = report.summary()
    assert report.ok, summary
    assert summary["cycles_total"] >= 2 and summary["leaked_tasks"] == 0
