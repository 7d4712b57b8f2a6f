"""The baseline: a naive server of the same protocol and voice, as the seed project works.

It appends tokens to a buffer, cuts at the last of ``. ! ? , ;`` (or at 200 characters, or on
flush), synthesizes each cut whole with the same Piper voice (no chunked decoding, no
first-fragment fast path), resamples each cut to 48 kHz on its own, and sends it in 20 ms
frames. It speaks the seed protocol plus the events the benchmark reads (``ready``, ``segment`` with
the closing token's index, ``flushed`` with stage timings), with the same meaning as the
bridge's, so both are measured by the same client code.

    python -m benchmarks.naive_server --port 8766
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time

import numpy as np
from aiohttp import WSMsgType, web

from bridge.audio.formats import sample_count
from bridge.audio.framing import Framer
from bridge.audio.resample import resample
from bridge.tts.piper import PiperEngine

ENGINE = web.AppKey("engine", PiperEngine)
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


class Utterance:
    """Per-utterance counters, reported in ``flushed`` like the bridge's ``stats``."""

    def __init__(self) -> None:
        self.tokens = 0
        self.first_text: float | None = None
        self.first_audio: float | None = None
        self.samples = 0
        self.tts = 0.0
        self.tts_audio = 0.0
        self.resample = 0.0

    def stats(self) -> dict[str, float]:
        out = {
            "tokens": self.tokens,
            "audio_seconds": round(self.samples / 48000, 3),
            "tts_ms": round(self.tts * 1000, 1),
            "voice_ms": 0.0,
            "resample_ms": round(self.resample * 1000, 1),
            "tts_rtf": round(self.tts / self.tts_audio, 4) if self.tts_audio else 0.0,
        }
        if self.first_text is not None and self.first_audio is not None:
            out["first_text_to_audio_ms"] = round((self.first_audio - self.first_text) * 1000, 1)
        return out


async def handle(request: web.Request) -> web.WebSocketResponse:
    engine = request.app[ENGINE]
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    events = request.query.get("events") == "1"
    queue: asyncio.Queue[tuple[str, int | None] | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    utterance = Utterance()
    segment_ids = 0

    def synthesize(text: str) -> tuple[np.ndarray, float, float, float]:
        started = time.perf_counter()
        audio = engine.synthesize(text)
        tts = time.perf_counter() - started
        out = resample(audio, engine.sample_rate)
        return out, tts, audio.size / engine.sample_rate, time.perf_counter() - started - tts

    async def worker() -> None:
        nonlocal utterance, segment_ids
        while True:
            item = await queue.get()
            if item is None:
                if events:
                    await ws.send_str(json.dumps({"type": "flushed", "stats": utterance.stats()}))
                utterance = Utterance()
                continue
            text, token = item
            segment_ids += 1
            if events:
                event = {"type": "segment", "id": segment_ids, "text": text}
                if token is not None:
                    event["token"] = token
                await ws.send_str(json.dumps(event))
            audio, tts, tts_audio, resample_s = await loop.run_in_executor(None, synthesize, text)
            utterance.tts += tts
            utterance.tts_audio += tts_audio
            utterance.resample += resample_s
            framer = Framer(FRAME, "f32le")
            for frame in framer.push(audio) + framer.flush():
                if utterance.first_audio is None:
                    utterance.first_audio = time.perf_counter()
                utterance.samples += sample_count(frame, framer.fmt)
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
            if data.get("token"):
                if utterance.first_text is None:
                    utterance.first_text = time.perf_counter()
                utterance.tokens += 1
                segments, buffer = naive_cuts(buffer + data["token"])
                for segment in segments:
                    queue.put_nowait((segment, utterance.tokens))
            if data.get("flush"):
                if buffer.strip():
                    queue.put_nowait((buffer, None))
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
    app[ENGINE] = engine
    app.router.add_get("/ws/stream", handle)
    app.router.add_get("/health", lambda request: web.json_response({"status": "ok"}))
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
