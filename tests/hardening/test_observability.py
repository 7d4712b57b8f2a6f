"""/metrics (Prometheus, one registry per app) and session ids on every session log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import aiohttp
import numpy as np
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from bridge.cancel import CancelToken
from bridge.logs import JsonFormatter, SessionFilter
from bridge.server import STATE
from tests.support.engines_util import RaisingEngine, wait_until
from tests.support.ws_client import read_utterance, recv_json


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/metrics") as response:
            assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_cover_sessions_latency_stages_queues_and_errors(server_factory) -> None:
    srv = await server_factory(capacity_cores=64.0)  # the static cap, not the compute, bounds capacity here
    other = await server_factory()  # its own registry: nothing of srv's shows there
    async with websockets.connect(srv.ws_url + "?events=1", compression=None) as ws:
        await recv_json(ws)
        await ws.send("not json")
        await ws.send(b"\x00binary")
        await ws.send(json.dumps({"token": "Metrics, please. Two sentences of them.", "flush": True}))
        frames, events = await read_utterance(ws)
        during = await scrape(srv.url)
    segments = sum(1 for e in events if e["type"] == "segment")
    assert value(during, "voice_bridge_sessions") == 1 and value(during, "voice_bridge_sessions_opened_total") == 1
    assert value(during, "voice_bridge_capacity") == srv.app[STATE].settings.sessions.max_sessions - 1
    assert value(during, "voice_bridge_ftts_seconds_count") == 1
    assert 0 < value(during, "voice_bridge_ftts_seconds_sum") < 10
    assert value(during, "voice_bridge_segment_latency_seconds_count") == segments
    assert value(during, "voice_bridge_stage_rtf_count", stage="tts") == 1
    assert value(during, "voice_bridge_stage_rtf_count", stage="resample") == 1
    assert value(during, "voice_bridge_stage_seconds_total", stage="tts") > 0
    assert value(during, "voice_bridge_audio_seconds_total") == pytest.approx(events[-1]["audio_seconds"], abs=0.01)
    assert value(during, "voice_bridge_utterances_total") == 1
    assert value(during, "voice_bridge_errors_total", kind="protocol") == 1
    assert value(during, "voice_bridge_errors_total", kind="binary") == 1
    assert value(during, "voice_bridge_messages_total") == 3
    for stat in ("sum", "max"):
        assert ("voice_bridge_output_queue_seconds", (("stat", stat),)) in during
        assert ("voice_bridge_send_buffer_bytes", (("stat", stat),)) in during
    for name in ("voice_bridge_work_queue_segments", "voice_bridge_buffered_text_chars", "voice_bridge_model_queue"):
        assert (name, ()) in during
    after = await scrape(srv.url)
    for _ in range(50):
        if value(after, "voice_bridge_sessions") == 0:
            break
        after = await scrape(srv.url)
    assert value(after, "voice_bridge_sessions") == 0
    assert value(after, "voice_bridge_sessions_closed_total", reason="client") == 1
    untouched = await scrape(other.url)
    assert value(untouched, "voice_bridge_sessions_opened_total") == 0
    assert value(untouched, "voice_bridge_ftts_seconds_count") == 0


class LoggingEngine(RaisingEngine):
    """Logs from inside the model thread, then fails on the marker."""

    def stream(self, text: str, cancel: CancelToken, lead=None) -> Iterator[np.ndarray]:  # noqa: ANN001
        logging.getLogger("bridge.tts.test").info("engine working", extra={"chars": len(text)})
        yield from super().stream(text, cancel)


async def test_every_session_log_line_carries_the_session(server_factory, piper_engine, caplog) -> None:
    engine = LoggingEngine(piper_engine, lambda: RuntimeError("injected"), after_chunks=1)
    srv = await server_factory(engine)
    caplog.handler.addFilter(SessionFilter())
    with caplog.at_level(logging.INFO, logger="bridge"):
        async with websockets.connect(srv.ws_url + "?events=1", compression=None) as ws:
            ready = await recv_json(ws)
            await ws.send(json.dumps({"token": "Fine words first. Then BOOM in the engine. Then fine again.", "flush": True}))
            await read_utterance(ws)
            await ws.send(json.dumps({"token": "A long reply to cancel part way through it, with many words. " * 3, "flush": True}))
            while not isinstance(await ws.recv(), bytes):
                pass
            await ws.send(json.dumps({"type": "cancel"}))
            while (await recv_json(ws))["type"] != "cancelled":
                pass
        await wait_until(lambda: any(r.getMessage() == "session closed" for r in caplog.records), "the session closed")
    session = ready["session"]
    records = [r for r in caplog.records if r.name.startswith("bridge")]
    messages = {r.getMessage() for r in records}
    assert {"session opened", "engine working", "pipeline fault", "cancelled", "session closed"} <= messages
    missing = [(r.name, r.getMessage()) for r in records if getattr(r, "session", None) != session]
    assert missing == []
    by_message = {r.getMessage(): r for r in records}
    # The call's own fields are kept next to the session (a plain LoggerAdapter drops them).
    assert by_message["session opened"].peer == "127.0.0.1"
    assert by_message["cancelled"].dropped_samples >= 0
    assert by_message["engine working"].threadName.startswith("model")  # a worker thread, still tagged
    assert by_message["session closed"].reason == "client"
    line = json.loads(JsonFormatter().format(by_message["pipeline fault"]))
    assert line["session"] == session and "RuntimeError" in line["exc"]
