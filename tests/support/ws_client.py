"""A bare websockets client's view of the bridge: sample replies, and reading events and an
utterance's frames off the socket (the server, hardening and deploy tests drive it this way)."""

from __future__ import annotations

import asyncio
import json

import websockets

REPLY = "Sure! Your table for two is booked at 7:45 tonight. Dr. Patel will meet you at the door."
LONG_REPLY = " ".join(
    [
        "Here is the plan for your trip.",
        "On Monday you fly to Lisbon, and the flight leaves at 8:15 in the morning.",
        "On Tuesday you take the train to Porto, which takes about three hours.",
        "On Wednesday there is a guided tour of the old town and the river.",
        "On Thursday you are free to explore the wine cellars on your own.",
    ]
)


async def recv_json(ws: websockets.ClientConnection, timeout: float = 30) -> dict:
    while True:
        message = await asyncio.wait_for(ws.recv(), timeout)
        if isinstance(message, str):
            return json.loads(message)


async def read_utterance(ws: websockets.ClientConnection, timeout: float = 60) -> tuple[list[bytes], list[dict]]:
    """Everything up to and including the `flushed` event (events mode)."""
    frames: list[bytes] = []
    events: list[dict] = []
    while True:
        message = await asyncio.wait_for(ws.recv(), timeout)
        if isinstance(message, bytes):
            frames.append(message)
            events.append({"type": "_audio"})
        else:
            event = json.loads(message)
            events.append(event)
            if event.get("type") == "flushed":
                return frames, events
