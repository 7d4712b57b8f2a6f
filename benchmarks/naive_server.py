"""The baseline: a naive server of the same protocol and voice, as the seed project works.

It appends tokens to a buffer, cuts at the last of ``. ! ? , ;`` (or at 200 characters, or on
flush), synthesizes each cut whole with the same Piper voice (no chunked decoding, no
first-fragment fast path), resamples each cut to 48 kHz on its own, and sends it in 20 ms
frames. It speaks the seed protocol plus the ``events``/``flushed`` extension so the benchmark
can tell when an utterance ended.

    python -m benchmarks.naive_server --port 8766
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging

from aiohttp import WSMsgType, web

from bridge.audio.framing import Framer
from bridge.audio.resample import resample
from bridge.tts.piper import PiperEngine

DELIMITERS = ".!?,;。、"
MAX_CHARS = 200
FRAME = 960


def naive_cuts(buffer: str) -> tuple[list[str], str]:
    """Cut at the last delimiter in the buffer, or at MAX_CHARS: (segments, rest)."""
    segments = []
    while True:
        last = max(buffer.rfind(d) for d in DELIMITERS)
        if last >= 0:
            segments.append(buffer[: last + 1])
            buffer = buffer[last + 1 :]
            continue
        if len(buffer) > MAX_CHARS:
            segments.append(buffer[:MAX_CHARS])
            buffer = buffer[MAX_CHARS:]
            continue
        return [s for s in segments if s.strip()], buffer


async def handle(request: web.Request) -> web.WebSocketResponse:
    engine: PiperEngine = request.app["engine"]
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    events = request.query.get("events") == "1"
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        while True:
            text = await queue.get()
            if text is None:
                if events:
                    await ws.send_str(json.dumps({"type": "flushed"}))
                continue
            audio = await loop.run_in_executor(None, engine.synthesize, text)
            framer = Framer(FRAME, "f32le")
            for frame in framer.push(resample(audio, engine.sample_rate)) + framer.flush():
                await ws.send_bytes(frame)

    task = asyncio.create_task(worker())
    if events:
        await ws.send_str(json.dumps({"type": "ready", "sample_rate": 48000}))
    buffer = ""
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "token" in data:
                segments, buffer = naive_cuts(buffer + data["token"])
                for segment in segments:
                    queue.put_nowait(segment)
            if data.get("flush"):
                if buffer.strip():
                    queue.put_nowait(buffer)
                buffer = ""
                queue.put_nowait(None)
    finally:
        task.cancel()
    return ws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    engine = PiperEngine(streaming=False)
    engine.load()
    app = web.Application()
    app["engine"] = engine
    app.router.add_get("/ws/stream", handle)
    app.router.add_get("/health", lambda request: web.json_response({"status": "ok"}))
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
