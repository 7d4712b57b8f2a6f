"""One guild's session with the voice-bridge server: connect with backoff, route the stream.

A guild has one bridge session (its voice and pitch are session options on the server) and
plays one utterance at a time, so the link holds one *sink*: the :class:`StreamSource` of the
utterance playing now. A pump task reads the session's stream in order and

* feeds audio to the sink, and stops reading while the sink is full — the client's bounded
  queue then fills, the socket is no longer read, and the server's sender blocks, which pauses
  synthesis for this session (``bridge.pipeline.OutputQueue``);
* ends the sink at ``flushed``;
* after :meth:`cancel`, ignores everything up to the server's ``cancelled`` (the client already
  drops the stale audio; a stale ``flushed`` must not end the next utterance);
* fails the sink with :class:`BridgeLost` if the connection drops. The next request reconnects.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from typing import Any

from bridge.client import AudioChunk, BridgeClient, BridgeError, Event
from bots.discord.errors import BridgeLost, BridgeUnavailable
from bots.discord.settings import DiscordSettings
from bots.discord.source import OpusStreamSource, StreamSource

log = logging.getLogger(__name__)

#: Frames (20 ms each) the bridge client may queue between the socket and the pump. Small, so
#: that backpressure reaches the server quickly and memory stays bounded.
CLIENT_QUEUE_FRAMES = 25


def backoff_delays(first: float, cap: float, retries: int) -> list[float]:
    """Delays before each retry: ``first``, doubling, never above ``cap``."""
    return [min(cap, first * 2**i) for i in range(retries)]


class BridgeLink:
    """The bridge session of one guild. All methods run on the event loop."""

    def __init__(
        self, settings: DiscordSettings, *, voice: str | None = None, pitch: float = 0.0, name: str = "-"
    ) -> None:
        self.settings = settings
        self.voice = voice
        self.pitch = pitch
        self.log = logging.LoggerAdapter(log, {"guild": name})
        self._client: BridgeClient | None = None
        self._pump: asyncio.Task[None] | None = None
        self._sink: StreamSource | None = None
        self._pending_cancels = 0
        #: One future per cancel sent, resolved with its ``cancelled`` event (what was heard).
        self._cancel_waiters: collections.deque[asyncio.Future[dict[str, Any]]] = collections.deque()
        self._connect_lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.errors: list[str] = []  # server error events for the current sink
        self.first_chunk_at: float | None = None  # perf_counter of the current sink's first audio
        self.last_flushed: dict[str, Any] = {}  # the last `flushed` event (segments, audio_seconds)

    # ------------------------------------------------------------------ connection
    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def voices(self) -> list[str]:
        """Voices the server offers (known once connected)."""
        if self._client is None:
            return []
        return list(self._client.ready.get("voices") or [])

    @property
    def session_id(self) -> str | None:
        return None if self._client is None else self._client.ready.get("session")

    async def connect(self) -> BridgeClient:
        """The live client, connecting first if needed: up to ``1 + bridge_retries`` attempts
        with exponential backoff; :class:`BridgeUnavailable` when all fail."""
        if self._client is not None:
            return self._client
        async with self._connect_lock:
            if self._client is not None:
                return self._client
            s = self.settings
            delays = [0.0, *backoff_delays(s.bridge_backoff, s.bridge_backoff_max, s.bridge_retries)]
            last = ""
            for attempt, delay in enumerate(delays, 1):
                if delay:
                    await asyncio.sleep(delay)
                try:
                    client = await self._open()
                except BridgeError as exc:
                    last = str(exc)
                    if "unknown voice" in last and self.voice is not None:
                        # The server was restarted without that voice: keep talking, in its default.
                        self.log.warning("voice no longer offered; using the default", extra={"voice": self.voice})
                        self.voice = None
                        with contextlib.suppress(BridgeError):
                            client = await self._open()
                            return self._attach(client)
                    self.log.warning("bridge connect failed", extra={"attempt": attempt, "error": last})
                    continue
                return self._attach(client)
            raise BridgeUnavailable(f"{s.bridge_url}: {last}")

    async def _open(self) -> BridgeClient:
        s = self.settings
        return await BridgeClient.connect(
            s.bridge_url,
            api_key=s.bridge_api_key.get_secret_value() if s.bridge_api_key else None,
            voice=self.voice,
            pitch_shift=self.pitch,
            format="opus" if s.bridge_audio == "opus" else "f32le",
            decode=False,  # Opus packets go to Discord as they are
            queue_frames=CLIENT_QUEUE_FRAMES,
            open_timeout=s.bridge_connect_timeout,
        )

    def _attach(self, client: BridgeClient) -> BridgeClient:
        self._client = client
        self._pending_cancels = 0
        for waiter in self._cancel_waiters:  # a new connection: those cancels got no answer
            if not waiter.done():
                waiter.set_result({})
        self._cancel_waiters.clear()
        self.connections += 1
        self._pump = asyncio.create_task(self._run_pump(client), name="bridge-pump")
        self.log.info("bridge connected", extra={"session": client.ready.get("session"), "voices": len(self.voices)})
        return client

    def _require(self) -> BridgeClient:
        if self._client is None:
            raise BridgeLost("not connected")
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.abort()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        if client is not None:
            await client.close()

    # ------------------------------------------------------------------ utterances
    async def begin(self, sink: StreamSource) -> None:
        """Connect if needed and make ``sink`` the destination of the stream's audio."""
        await self.connect()
        previous, self._sink = self._sink, sink
        if previous is not None and previous is not sink:
            previous.abort()
        self.errors = []
        self.first_chunk_at = None

    async def send_token(self, text: str) -> None:
        try:
            await self._require().send_token(text)
        except BridgeError as exc:
            raise BridgeLost(str(exc)) from None

    async def flush(self) -> None:
        try:
            await self._require().flush()
        except BridgeError as exc:
            raise BridgeLost(str(exc)) from None

    async def cancel(self, played_seconds: float | None = None) -> asyncio.Future[dict[str, Any]] | None:
        """Drop the current utterance on both sides; the link is ready for the next at once.

        ``played_seconds``: how much of the utterance the player played. Returns a future of
        the server's ``cancelled`` event (``heard``: the words whose start was played), or
        None when there was no connection to cancel on.
        """
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.abort()
        client = self._client
        if client is None:
            return None
        self._pending_cancels += 1
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._cancel_waiters.append(waiter)
        try:
            await client.cancel(played_seconds)
        except BridgeError as exc:  # the connection is gone: nothing left to cancel there
            self.log.info("cancel not sent", extra={"error": str(exc)})
            self._cancel_waiters.remove(waiter)
            return None
        return waiter

    async def configure(self, *, voice: str | None = None, pitch: float | None = None) -> None:
        """Change voice ('' = the server's default) and/or pitch; kept for reconnects."""
        message: dict[str, Any] = {}
        if voice is not None:
            self.voice = voice or None
            message["voice"] = voice
        if pitch is not None:
            self.pitch = pitch
            message["pitch_shift"] = pitch
        if self._client is not None and message:
            try:
                await self._client.configure(**message)
            except BridgeError as exc:
                self.log.info("configure not sent; applied on reconnect", extra={"error": str(exc)})

    # ------------------------------------------------------------------ the pump
    async def _run_pump(self, client: BridgeClient) -> None:
        try:
            async for item in client.receive():
                if isinstance(item, AudioChunk):
                    await self._on_audio(item)
                else:
                    self._on_event(item)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("bridge pump failed")
        finally:
            if self._client is client:
                self._client = None
                sink, self._sink = self._sink, None
                if sink is not None:
                    sink.fail(BridgeLost("the bridge connection closed"))
                self.log.warning("bridge connection lost")
                closing = asyncio.get_running_loop().create_task(client.close())
                self._closing.add(closing)  # keep a reference until it is done
                closing.add_done_callback(self._closing.discard)

    async def _on_audio(self, chunk: AudioChunk) -> None:
        sink = self._sink
        if sink is None or self._pending_cancels:
            return  # nothing is playing (a stale frame of a cancelled utterance)
        if self.first_chunk_at is None:
            self.first_chunk_at = time.perf_counter()
        if isinstance(sink, OpusStreamSource) and chunk.packet is not None:
            sink.feed_packet(chunk.packet)
        else:
            sink.feed(chunk.samples)
        if sink.full:
            await sink.wait_for_room()  # backpressure: stop reading the socket until it drains

    def _on_event(self, event: Event) -> None:
        if event.type == "cancelled":
            self._pending_cancels = max(0, self._pending_cancels - 1)
            if self._cancel_waiters:
                waiter = self._cancel_waiters.popleft()
                if not waiter.done():
                    waiter.set_result(event.data)
        elif self._pending_cancels:
            return  # belongs to a cancelled utterance
        elif event.type == "flushed":
            self.last_flushed = event.data
            sink, self._sink = self._sink, None
            if sink is not None:
                sink.finish()
        elif event.type == "error":
            message = str(event.data.get("error", "error"))
            self.errors.append(message)
            self.log.warning("bridge error", extra={"error": message})
