"""Live fuzz: thousands of random frames into real sessions of a real server (the embedded
voice), every bad one answered with one error frame, and afterwards each session still speaks."""

from __future__ import annotations

import asyncio
import json
import random

import websockets

from bridge.protocol import ConfigMessage, ProtocolError, parse_client_message
from bridge.server import STATE
from bridge.session import MAX_PENDING_ERRORS
from tests.support.engines_util import wait_until
from tests.support.frame_fuzz import SEEDS, mutate

FRAMES_PER_CONNECTION = 1000
CONNECTIONS = 3
FIGURES: dict[str, int] = {}


def frames(seed: int, count: int, max_token_chars: int) -> list[tuple[str | bytes, bool]]:
    """Random frames (text mutations of valid frames, and some binary ones), each with whether
    the server must answer it with an error."""
    rng = random.Random(seed)
    out: list[tuple[str | bytes, bool]] = []
    frame = SEEDS[0]
    while len(out) < count:
        if rng.random() < 0.03:
            out.append((rng.randbytes(rng.randrange(0, 64)), True))
            continue
        frame = mutate(rng, frame if len(out) % 4 else rng.choice(SEEDS))
        if len(frame) > 2000:
            frame = rng.choice(SEEDS)
        try:
            frame.encode("utf-8")
        except UnicodeEncodeError:
            continue  # a text frame must be UTF-8: lone surrogates can only arrive as \\u escapes
        bad = False
        try:
            message = parse_client_message(frame, max_token_chars=max_token_chars)
        except ProtocolError:
            bad = True
        else:
            if isinstance(message, ConfigMessage) and message.voice:
                bad = True  # no voices are installed: "unknown voice"
        out.append((frame, bad))
    return out


async def test_live_fuzz_then_every_session_still_speaks(server_factory) -> None:
    srv = await server_factory(max_message_rate=1e6, message_burst=10**6, max_buffered_chars=10**6, heartbeat_seconds=0)
    state = srv.app[STATE]
    settings = state.settings

    async def run(seed: int) -> tuple[int, int, int]:
        sent = frames(seed, FRAMES_PER_CONNECTION, settings.limits.max_token_chars)
        expected = sum(bad for _, bad in sent)
        errors: list[str] = []
        async with websockets.connect(srv.ws_url, compression=None, max_size=None) as ws:

            async def reader() -> None:
                while True:
                    message = await ws.recv()
                    if isinstance(message, str):
                        event = json.loads(message)
                        if "error" in event:
                            errors.append(event["error"])

            reading = asyncio.create_task(reader())
            dropped_before = state.metrics.value("voice_bridge_error_frames_dropped_total")
            protocol_errors = lambda: [e for e in errors if not e.startswith(("segment ", "utterance"))]  # noqa: E731
            bad_sent = 0
            for frame, bad in sent:
                if bad:
                    # A flood, but one that reads its answers: fewer unanswered errors than the
                    # server keeps for a client that does not read (past that it drops them).
                    await wait_until(
                        lambda: bad_sent - len(protocol_errors()) < MAX_PENDING_ERRORS // 2,
                        "the server answers the bad frames",
                    )
                    bad_sent += 1
                await ws.send(frame)
            await ws.send('{"type": "cancel"}')
            # Every bad frame was answered with its own error frame; none was dropped.
            await wait_until(lambda: len(protocol_errors()) >= expected, "every bad frame is answered")
            dropped = state.metrics.value("voice_bridge_error_frames_dropped_total") - dropped_before
            assert len(protocol_errors()) == expected and dropped == 0
            reading.cancel()
            # The session still speaks, whatever the fuzz left its options at.
            await ws.send(json.dumps({"type": "config", "events": True, "format": "f32le", "voice": ""}))
            await ws.send(json.dumps({"token": "The session still speaks.", "flush": True}))
            audio = 0
            texts: list[str] = []
            while True:
                message = await asyncio.wait_for(ws.recv(), 60)
                if isinstance(message, bytes):
                    audio += len(message)
                    continue
                event = json.loads(message)
                if event.get("type") == "segment":
                    texts.append(event["text"])
                if event.get("type") == "flushed" and texts:
                    break
            assert " ".join(texts) == "The session still speaks." and audio / 4 / 48000 > 1.0
        return len(sent), expected, len(errors) - len(protocol_errors()), int(dropped)

    results = [await run(seed) for seed in range(CONNECTIONS)]  # one at a time: the drop count is per server
    FIGURES.update(
        frames=sum(r[0] for r in results),
        bad_frames=sum(r[1] for r in results),
        engine_errors=sum(r[2] for r in results),
        dropped=sum(r[3] for r in results),
    )
    print("live fuzz figures:", FIGURES)
    assert FIGURES["frames"] == FRAMES_PER_CONNECTION * CONNECTIONS
    assert FIGURES["bad_frames"] > FIGURES["frames"] // 2
    assert state.metrics.value("voice_bridge_errors_total", kind="internal") == 0
