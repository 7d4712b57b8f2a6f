"""bridge/session.py, word timings and what was heard, on a real server on loopback (real Piper).

``words`` events are opt-in (``?words=1`` or ``{"type": "config", "words": true}``) and come
before the audio they time; ``cancelled`` (and a ``flushed`` that the utterance limit cut short)
says what was heard: the words whose start lies within the audio the client had received when
the audio stopped, or within what it says it played. A client that asks for nothing sees
nothing new.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import websockets

from bridge.cli import word_pieces
from bridge.server import STATE
from tests.support.engines_util import wait_until

REPLY = (
    "The lighthouse keeper counted ships until the fog rolled in. Then he climbed the stairs, "
    "lit the lamp, and watched the beam sweep over the water. It cost $3.14 a night to run."
)
RATE = 48_000
F32 = 4


async def send_reply(ws: Any, text: str = REPLY, *, flush: bool = True) -> None:
    for piece in word_pieces(text):
        await ws.send(json.dumps({"token": piece}))
    if flush:
        await ws.send(json.dumps({"flush": True}))


async def read_until(ws: Any, kind: str) -> tuple[list[dict[str, Any]], int, list[tuple[int, dict[str, Any]]]]:
    """Read until an event of ``kind``: (all events, audio bytes, (bytes received before, event)
    for each event)."""
    events: list[dict[str, Any]] = []
    received = 0
    seen: list[tuple[int, dict[str, Any]]] = []
    while True:
        message = await asyncio.wait_for(ws.recv(), 120)
        if isinstance(message, bytes):
            received += len(message)
            continue
        event = json.loads(message)
        events.append(event)
        seen.append((received, event))
        if event["type"] == kind:
            return events, received, seen


def word_list(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [w for e in events if e["type"] == "words" for w in e["words"]]


def heard_by_events(words: list[dict[str, Any]], seconds: float) -> str:
    return " ".join(w["text"] for w in words if w["start"] < seconds)


@pytest.mark.parametrize("ask", ["query", "config"])
async def test_words_come_before_their_audio_every_word_once(steady, ask: str) -> None:
    url = steady.ws_url + ("?words=1&events=1" if ask == "query" else "?events=1")
    async with websockets.connect(url, compression=None) as ws:
        if ask == "config":
            await ws.send(json.dumps({"type": "config", "words": True}))
        await send_reply(ws)
        events, received, seen = await read_until(ws, "flushed")
    words = word_list(events)
    assert [w["text"] for w in words] == REPLY.split()
    assert all(set(w) == {"text", "start", "end"} for w in words)  # real timings: not estimated
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)
    total = received / F32 / RATE
    assert all(0 <= w["start"] <= w["end"] <= total for w in words)
    # Each words event arrived before any of the audio it times.
    for before, event in seen:
        if event["type"] == "words":
            assert before / F32 / RATE <= event["words"][0]["start"]
            segment_ids = [e["id"] for e in events if e["type"] == "segment"]
            assert event["segment"] in segment_ids
    flushed = events[-1]
    assert "heard" not in flushed  # a flush that was not cut says nothing of it


async def test_a_client_that_never_asks_sees_nothing_new(steady) -> None:
    # The same text with events on says how much audio the utterance has.
    async with websockets.connect(steady.ws_url + "?events=1", compression=None) as ws:
        await send_reply(ws, "Hello there. It cost $3.14 today.")
        events, _, _ = await read_until(ws, "flushed")
    assert not word_list(events) and {e["type"] for e in events} == {"ready", "segment", "flushed"}
    expected = round(events[-1]["audio_seconds"] * RATE * F32)
    async with websockets.connect(steady.ws_url, compression=None) as ws:
        await send_reply(ws, "Hello there. It cost $3.14 today.")
        received = 0
        while received < expected - 2 * F32:  # (audio_seconds is rounded to the millisecond)
            message = await asyncio.wait_for(ws.recv(), 60)
            assert isinstance(message, bytes), message  # the seed protocol: audio only
            received += len(message)
        await ws.send(json.dumps({"type": "cancel"}))  # also after a cancel: no text frame
        with pytest.raises(TimeoutError):
            message = await asyncio.wait_for(ws.recv(), 1.0)
            assert not isinstance(message, str), message


async def test_cancel_reports_the_words_whose_start_the_client_received(steady) -> None:
    state = steady.app[STATE]
    async with websockets.connect(steady.ws_url + "?words=1&events=1", compression=None) as ws:
        ready = json.loads(await ws.recv())
        assert ready["words"] is True  # the ready event says word timings are on
        session = state.sessions[ready["session"]]
        await send_reply(ws)
        events: list[dict[str, Any]] = []
        received = 0
        while received < RATE * F32:  # one second of audio, then stop reading for a while
            message = await asyncio.wait_for(ws.recv(), 60)
            if isinstance(message, bytes):
                received += len(message)
            else:
                events.append(json.loads(message))
        # The server now holds audio it could not send yet: the cancel cuts the reply short.
        await wait_until(lambda: session.pipeline.output.samples >= RATE // 2, "the output queue holds audio")
        await ws.send(json.dumps({"type": "cancel"}))
        more, more_bytes, _ = await read_until(ws, "cancelled")
    events += more
    received += more_bytes
    cancelled = events[-1]
    seconds = received / F32 / RATE
    assert cancelled["heard_seconds"] == pytest.approx(seconds, abs=0.001)
    words = word_list(events)
    assert cancelled["heard"] == heard_by_events(words, seconds)
    assert 0 < len(cancelled["heard"].split()) < len(REPLY.split())
    assert REPLY.startswith(cancelled["heard"])


async def test_cancel_with_the_played_position_cuts_heard_there(steady) -> None:
    async with websockets.connect(steady.ws_url + "?words=1", compression=None) as ws:
        await send_reply(ws)
        events: list[dict[str, Any]] = []
        received = 0
        while received < 2 * RATE * F32:
            message = await asyncio.wait_for(ws.recv(), 60)
            if isinstance(message, bytes):
                received += len(message)
            else:
                events.append(json.loads(message))
        await ws.send(json.dumps({"type": "cancel", "played_seconds": 1.1}))
        more, _, _ = await read_until(ws, "cancelled")  # a words-only client gets `cancelled` too
    events += more
    cancelled = events[-1]
    assert cancelled["heard_seconds"] == 1.1
    assert cancelled["heard"] == heard_by_events(word_list(events), 1.1)
    assert cancelled["heard"] and REPLY.startswith(cancelled["heard"])


async def test_a_played_position_that_is_not_a_number_is_refused(steady) -> None:
    async with websockets.connect(steady.ws_url + "?words=1", compression=None) as ws:
        await ws.send(json.dumps({"type": "cancel", "played_seconds": -1}))
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert error["type"] == "error" and "played_seconds" in error["error"]


async def test_a_flush_cut_by_the_utterance_limit_says_what_was_heard(server_factory, deterministic_piper) -> None:
    srv = await server_factory(deterministic_piper, max_utterance_seconds=2.0)
    async with websockets.connect(srv.ws_url + "?words=1&events=1", compression=None) as ws:
        await send_reply(ws)
        events, received, _ = await read_until(ws, "flushed")
    flushed = events[-1]
    seconds = received / F32 / RATE
    assert seconds <= 2.0
    assert flushed["heard_seconds"] == pytest.approx(seconds, abs=0.001)
    assert flushed["heard"] == heard_by_events(word_list(events), seconds)
    assert 0 < len(flushed["heard"].split()) < len(REPLY.split())


async def test_a_session_closed_mid_utterance_logs_what_was_heard(steady, caplog) -> None:
    caplog.set_level(logging.INFO, logger="bridge.server")
    async with websockets.connect(steady.ws_url + "?words=1", compression=None) as ws:
        await send_reply(ws, flush=False)  # the utterance stays open, whatever the server sent
        received = 0
        while received < RATE * F32:
            message = await asyncio.wait_for(ws.recv(), 60)
            received += len(message) if isinstance(message, bytes) else 0

    def logged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage() == "session closed mid-utterance"]

    await wait_until(lambda: bool(logged()), "the session logged what was heard", timeout=300)
    record = logged()[0]
    assert record.heard_seconds >= received / F32 / RATE - 0.001  # type: ignore[attr-defined]
    assert REPLY.startswith(record.heard) and record.heard  # type: ignore[attr-defined]
