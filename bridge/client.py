"""Async Python client for ``/ws/stream`` (on the ``websockets`` library).

    async with await BridgeClient.connect("ws://127.0.0.1:8765/ws/stream") as client:
        for token in ["Hel", "lo ", "there."]:
            await client.send_token(token)
        await client.flush()
        async for chunk in client.audio():      # float32 arrays at 48 kHz, until `flushed`
            play(chunk)

The client turns events on, so the end of an utterance is the server's ``flushed`` event, never
a timeout guess. Received items wait in a bounded queue: a consumer that stops reading stops
the socket being read, and the pressure reaches the server, which pauses synthesis.
After :meth:`BridgeClient.cancel`, audio still in flight from before the cancel is dropped
until the server's ``cancelled`` event arrives.

Word timings are opt-in (``connect(words=True)``): :meth:`BridgeClient.receive` then yields a
:class:`Words` item before the audio it times (seconds from the utterance's first sample, so a
player needs no clock of its own), :meth:`BridgeClient.speak_timed` returns the audio with its
words, and :attr:`BridgeClient.words` lists the current utterance's words. What the listener heard
when the reply was cut comes with every ``cancelled`` (:meth:`BridgeClient.interrupt` returns it
as :class:`Heard`); a client that plays from a buffer passes ``played_seconds`` to cut it where
playback really was.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection

from bridge.audio.formats import WireFormat, decode_pcm

log = logging.getLogger(__name__)

DEFAULT_URL = "ws://127.0.0.1:8765/ws/stream"


class BridgeError(RuntimeError):
    """The server reported an error, or the connection failed."""


@dataclass(frozen=True)
class AudioChunk:
    samples: np.ndarray  # float32 mono at 48 kHz
    packet: bytes | None = None  # the Opus packet these samples were decoded from (format "opus")


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Word:
    """One written word and when it sounds: seconds from the first sample of the utterance's
    audio (``estimated``: an engine without alignments, times shared out by a rule)."""

    text: str
    start: float
    end: float
    segment: int = 0
    estimated: bool = False

    def as_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {"text": self.text, "start": self.start, "end": self.end, "segment": self.segment}
        if self.estimated:
            item["estimated"] = True
        return item


@dataclass(frozen=True)
class Words:
    """A ``words`` event: the timed words of segment ``segment``, before its audio."""

    segment: int
    words: tuple[Word, ...]

    @classmethod
    def from_event(cls, data: dict[str, Any]) -> Words:
        segment = int(data.get("segment", 0))
        words = tuple(
            Word(str(w["text"]), float(w["start"]), float(w["end"]), segment, bool(w.get("estimated", False)))
            for w in data.get("words", [])
        )
        return cls(segment, words)


@dataclass(frozen=True)
class Heard:
    """What the listener heard of a reply that was cut: the words whose start was played
    (``text``) and how much of the utterance's audio that was (``seconds``)."""

    text: str
    seconds: float

    @classmethod
    def from_event(cls, data: dict[str, Any]) -> Heard:
        return cls(str(data.get("heard", "")), float(data.get("heard_seconds", 0.0)))


@dataclass(frozen=True)
class Spoken:
    """One utterance: its 48 kHz audio and its timed words (empty unless words are on)."""

    audio: np.ndarray
    words: list[Word]


Received = AudioChunk | Event | Words


class BridgeClient:
    """One session with a voice-bridge server."""

    def __init__(self, ws: ClientConnection, fmt: WireFormat, queue_frames: int) -> None:
        self._ws = ws
        self.format: WireFormat = fmt
        self._opus: Any = None  # bridge.audio.decode.OpusPacketDecoder, made on first use
        self.decode = True  # decode Opus packets (False: hand them through only)
        self.ready: dict[str, Any] = {}
        self.errors: list[str] = []
        # Items carry the cancel epoch they were read in; see cancel() and _next().
        self._queue: asyncio.Queue[tuple[int, Received] | None] = asyncio.Queue(maxsize=queue_frames)
        self._epoch = 0  # cancels sent
        self._acked = 0  # `cancelled` events received
        self._reader: asyncio.Task[None] | None = None
        self._closed = False
        #: The current utterance's timed words (``words=True``), cleared after its end is read.
        self.words: list[Word] = []
        #: What was heard at the last ``cancelled`` (or cut ``flushed``), once it arrived.
        self.heard: Heard | None = None
        self._utterance_ended = False

    @classmethod
    async def connect(
        cls,
        url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        voice: str | None = None,
        pitch_shift: float | None = None,
        format: WireFormat = "f32le",
        decode: bool = True,
        queue_frames: int = 512,
        open_timeout: float = 10.0,
        words: bool = False,
    ) -> BridgeClient:
        """Connect, turn events on, apply the options and wait for the server's ``ready``.

        ``words=True``: the server sends word timings (:class:`Words` items in :meth:`receive`,
        :attr:`words`, :meth:`speak_timed`); off by default, so nothing new arrives unasked.

        ``format="opus"``: the server sends raw 20 ms Opus packets (a quarter of s16le's bytes or
        less), decoded here; each chunk also carries its packet, to hand through (Discord) without
        decoding. ``decode=False`` with ``format="opus"``: chunks carry only their packet (empty samples).
        """
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        try:
            ws = await websockets.connect(
                url,
                additional_headers=headers,
                compression=None,
                max_size=4 * 1024 * 1024,
                open_timeout=open_timeout,
            )
        except (OSError, websockets.exceptions.WebSocketException) as exc:
            raise BridgeError(f"cannot connect to {url}: {exc}") from exc
        client = cls(ws, format, queue_frames)
        client.decode = decode
        config: dict[str, Any] = {"type": "config", "events": True, "format": format}
        if format == "opus":
            config["opus_framing"] = "raw"
        if voice is not None:
            config["voice"] = voice
        if pitch_shift is not None:
            config["pitch_shift"] = pitch_shift
        if words:
            config["words"] = True
        await ws.send(json.dumps(config))
        client._reader = asyncio.create_task(client._read(), name="bridge-client-reader")
        while True:  # the ready event; errors about the options come first if any
            item = await client._next()
            if item is None:
                raise BridgeError("connection closed before the server was ready")
            if isinstance(item, Event) and item.type == "ready":
                client.ready = item.data
                break
            if isinstance(item, Event) and item.type == "error":
                await client.close()
                raise BridgeError(item.data.get("error", "error"))
        return client

    async def __aenter__(self) -> BridgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ sending
    async def _send(self, obj: dict[str, Any]) -> None:
        try:
            await self._ws.send(json.dumps(obj, ensure_ascii=False))
        except websockets.exceptions.ConnectionClosed as exc:
            raise BridgeError(f"connection closed: {exc}") from exc

    async def send_token(self, text: str, pitch_shift: float | None = None) -> None:
        message: dict[str, Any] = {"token": text}
        if pitch_shift is not None:
            message["pitch_shift"] = pitch_shift
        await self._send(message)

    async def flush(self) -> None:
        """Ask the server to speak everything buffered; the utterance ends with ``flushed``."""
        await self._send({"flush": True})

    async def configure(
        self, *, voice: str | None = None, pitch_shift: float | None = None, format: WireFormat | None = None
    ) -> None:
        """New options; a new ``format`` applies from the next utterance (the server's rule)."""
        message: dict[str, Any] = {"type": "config"}
        if voice is not None:
            message["voice"] = voice
        if pitch_shift is not None:
            message["pitch_shift"] = pitch_shift
        if format is not None:
            message["format"] = format
            if format == "opus":
                message["opus_framing"] = "raw"
            self.format = format
        await self._send(message)

    async def cancel(self, played_seconds: float | None = None) -> None:
        """Stop now: the server drops its buffers; audio already in flight is dropped here.

        ``played_seconds``: how much of the utterance's audio was really played (a client that
        buffers); the server's ``cancelled`` then says what was heard up to there, not up to
        what it sent. Read it from the ``cancelled`` event, or use :meth:`interrupt`.

        Queued audio is dropped at once; events stay queued (an ``error`` or the ``cancelled``
        of an earlier cancel must not be lost). Audio read before the server's ``cancelled``
        is never handed out, even a frame the reader was holding while the queue was full.
        """
        self._epoch += 1
        kept: list[tuple[int, Received] | None] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None or not isinstance(item[1], AudioChunk):
                kept.append(item)
        for item in kept:
            self._queue.put_nowait(item)
        message: dict[str, Any] = {"type": "cancel"}
        if played_seconds is not None:
            message["played_seconds"] = max(0.0, float(played_seconds))
        await self._send(message)

    async def interrupt(self, played_seconds: float | None = None) -> Heard:
        """:meth:`cancel`, then read up to the server's ``cancelled`` and return what was heard.

        For a caller that is also the reader of this client (nothing else consumes
        :meth:`receive` / :meth:`audio` meanwhile): the items before ``cancelled`` are dropped.
        """
        await self.cancel(played_seconds)
        while True:
            item = await self._next()
            if item is None:
                raise BridgeError("connection closed before the server confirmed the cancel")
            if isinstance(item, Event) and item.type == "cancelled":
                return Heard.from_event(item.data)

    # ------------------------------------------------------------------ receiving
    async def _read(self) -> None:
        try:
            async for message in self._ws:
                if isinstance(message, bytes):
                    if self._acked < self._epoch:
                        continue  # sent before a cancel the server has not confirmed yet
                    await self._queue.put((self._epoch, self._chunk(message)))
                    continue
                try:
                    obj = json.loads(message)
                except json.JSONDecodeError:
                    log.warning("server sent invalid JSON: %.80s", message)
                    continue
                kind = obj.get("type") or ("error" if "error" in obj else "unknown")
                if kind == "error":
                    self.errors.append(str(obj.get("error")))
                if kind == "cancelled":
                    self._acked = min(self._acked + 1, self._epoch)
                if kind == "words":
                    await self._queue.put((self._epoch, Words.from_event(obj)))
                    continue
                await self._queue.put((self._epoch, Event(kind, obj)))
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)
            # A consumer blocked on a full queue must still learn the connection ended.
            if self._queue.full():
                await self._queue.put(None)

    def _chunk(self, message: bytes) -> AudioChunk:
        if self.format != "opus":
            return AudioChunk(decode_pcm(message, self.format))
        if not self.decode:
            return AudioChunk(np.zeros(0, np.float32), packet=message)
        if self._opus is None:
            from bridge.audio.decode import OpusPacketDecoder

            self._opus = OpusPacketDecoder()
        return AudioChunk(self._opus.decode(message), packet=message)

    async def _next(self) -> Received | None:
        while True:
            entry = await self._queue.get()
            if entry is None:
                return None
            epoch, item = entry
            if isinstance(item, AudioChunk | Words) and epoch != self._epoch:
                continue  # read before a cancel (it waited on a full queue while cancel ran)
            self._note(item)
            return item

    def _note(self, item: Received) -> None:
        """Keep the current utterance's words, and what was heard when one was cut."""
        if isinstance(item, Words):
            if self._utterance_ended:
                self.words = []
                self._utterance_ended = False
            self.words.extend(item.words)
        elif isinstance(item, Event) and item.type in ("flushed", "cancelled"):
            self._utterance_ended = True
            if "heard" in item.data:
                self.heard = Heard.from_event(item.data)

    async def receive(self) -> AsyncIterator[Received]:
        """Every audio chunk and event, in order, until the connection closes."""
        while True:
            item = await self._next()
            if item is None:
                return
            yield item

    async def audio(self) -> AsyncIterator[np.ndarray]:
        """Audio of the current utterance, up to its ``flushed`` (or ``cancelled``) event."""
        while True:
            item = await self._next()
            if item is None:
                raise BridgeError("connection closed before the utterance ended")
            if isinstance(item, AudioChunk):
                yield item.samples
            elif isinstance(item, Event) and item.type in ("flushed", "cancelled"):
                return

    async def speak(
        self,
        tokens: str | Iterable[str] | AsyncIterable[str],
        *,
        tokens_per_second: float | None = None,
    ) -> np.ndarray:
        """Send tokens (optionally paced like an LLM), flush, and return the whole utterance."""
        collected: list[np.ndarray] = []

        async def collect() -> None:
            async for chunk in self.audio():
                collected.append(chunk)

        collector = asyncio.create_task(collect())
        try:
            await self._send_tokens(tokens, tokens_per_second)
            await self.flush()
            await collector
        finally:
            if not collector.done():
                collector.cancel()
        return np.concatenate(collected) if collected else np.zeros(0, np.float32)

    async def speak_timed(
        self,
        tokens: str | Iterable[str] | AsyncIterable[str],
        *,
        tokens_per_second: float | None = None,
    ) -> Spoken:
        """:meth:`speak`, also returning the utterance's timed words (connect with ``words=True``)."""
        self.words = []
        self._utterance_ended = False
        audio = await self.speak(tokens, tokens_per_second=tokens_per_second)
        return Spoken(audio, list(self.words))

    async def _send_tokens(
        self, tokens: str | Iterable[str] | AsyncIterable[str], tokens_per_second: float | None
    ) -> None:
        interval = 1.0 / tokens_per_second if tokens_per_second else 0.0
        if isinstance(tokens, str):
            tokens = [tokens]
        if isinstance(tokens, AsyncIterable):
            async for token in tokens:
                await self.send_token(token)
            return
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index, token in enumerate(tokens):
            if interval:
                delay = start + index * interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self.send_token(token)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
