"""Offline stand-ins for the two outside services, for the tests and the latency benchmark.

* :class:`RecordingVoiceClient` plays like ``discord.VoiceClient``: it runs discord.py's own
  ``AudioPlayer`` thread and the real libopus encoder, and records each packet the player hands
  to ``send_audio_packet`` with its time, instead of encrypting and sending it over UDP.
* :class:`FakeChatServer` is an OpenAI-compatible ``/v1/chat/completions`` on loopback
  (aiohttp) that streams a scripted reply at a set token rate, or fails in a chosen way.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import discord
from aiohttp import web
from discord import opus
from discord.player import AudioPlayer


# ----------------------------------------------------------------------------- voice
@dataclass(frozen=True, slots=True)
class Packet:
    time: float  # perf_counter when the player handed it over
    opus: bytes
    pcm: bytes | None  # the PCM frame it was encoded from; None for the player's Opus silence
    source: Any = None  # the AudioSource of the player that sent it
    tick: int = -1  # the player's loop count when it sent it: 0, 1, 2… one per 20 ms of its schedule

    @property
    def silent(self) -> bool:
        """Player silence (Opus) or an all-zero PCM frame."""
        return self.pcm is None or not any(self.pcm)


class _SpeakingRecorder:
    def __init__(self) -> None:
        self.states: list[Any] = []

    async def speak(self, state: Any) -> None:
        self.states.append(state)


class RecordingVoiceClient:
    """A connected voice client without Discord: the real player thread and Opus encoder.

    ``AudioPlayer`` needs ``send_audio_packet``, ``is_connected``, ``wait_until_connected``,
    ``timeout``, an async ``ws.speak`` and ``client.loop``; ``play``/``stop``/``pause``/``resume``/
    ``source`` mirror ``discord.VoiceClient`` so the cog's code cannot tell the difference.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, *, keep_pcm: bool = True) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self.client = SimpleNamespace(loop=self.loop)
        self.ws = _SpeakingRecorder()
        self.timeout = 2.0
        self.keep_pcm = keep_pcm
        self.encoder: opus.Encoder | None = None
        self.packets: list[Packet] = []
        self.plays: list[float] = []  # perf_counter of each play()
        self._connected = threading.Event()
        self._connected.set()
        self._player: AudioPlayer | None = None
        self._lock = threading.Lock()

    # -- what AudioPlayer calls (player thread)
    def is_connected(self) -> bool:
        return self._connected.is_set()

    def wait_until_connected(self, timeout: float | None = 30.0) -> bool:
        return self._connected.wait(timeout)

    def send_audio_packet(self, data: bytes, *, encode: bool = True) -> None:
        now = time.perf_counter()
        player = threading.current_thread()  # the AudioPlayer
        source = getattr(player, "source", None)
        tick = getattr(player, "loops", -1)
        if encode:
            assert self.encoder is not None
            encoded = self.encoder.encode(data, self.encoder.SAMPLES_PER_FRAME)
            pcm = bytes(data) if self.keep_pcm else b"\x01"
        else:
            encoded, pcm = bytes(data), None
        with self._lock:
            self.packets.append(Packet(now, encoded, pcm, source, tick))

    # -- what the bot calls (event loop)
    def play(
        self,
        source: discord.AudioSource,
        *,
        after: Callable[[Exception | None], Any] | None = None,
        **encoder: Any,
    ) -> None:
        if not self.is_connected():
            raise discord.ClientException("Not connected to voice.")
        if self.is_playing():
            raise discord.ClientException("Already playing audio.")
        if not source.is_opus():
            self.encoder = opus.Encoder(**encoder)
        self.plays.append(time.perf_counter())
        self._player = AudioPlayer(source, self, after=after)  # type: ignore[arg-type]
        self._player.start()

    def is_playing(self) -> bool:
        return self._player is not None and self._player.is_playing()

    def is_paused(self) -> bool:
        return self._player is not None and self._player.is_paused()

    def stop(self) -> None:
        if self._player is not None:
            self._player.stop()
            self._player = None

    def pause(self) -> None:
        if self._player is not None:
            self._player.pause()

    def resume(self) -> None:
        if self._player is not None:
            self._player.resume()

    @property
    def source(self) -> discord.AudioSource | None:
        return self._player.source if self._player is not None else None

    def disconnect_now(self) -> None:
        """Simulate losing the voice connection (the player gives up after ``timeout``)."""
        self._connected.clear()

    async def disconnect(self, *, force: bool = False) -> None:
        self.stop()
        self._connected.clear()

    # -- reading the record
    def snapshot(self) -> list[Packet]:
        with self._lock:
            return list(self.packets)

    def clear(self) -> None:
        with self._lock:
            self.packets.clear()


# ----------------------------------------------------------------------------- LLM
_PIECES = re.compile(r"\s*\S+")


def word_tokens(text: str) -> list[str]:
    """Word pieces with their leading space, as chat models stream them."""
    return _PIECES.findall(text)


@dataclass
class Script:
    """What the fake server does for one request."""

    tokens: list[str] = field(default_factory=list)
    rate: float = 70.0  # tokens per second; 0: all at once
    status: int = 200
    error_body: Any = None  # JSON body for a non-200 status
    error_after: int | None = None  # send an error event after this many tokens
    stall_after: int | None = None  # stop sending (connection open) after this many tokens
    stall_seconds: float = 3600.0
    first_delay: float = 0.0  # before the first token (model "thinking")
    send_finish: bool = True  # a final chunk with finish_reason "stop"
    send_done: bool = True  # data: [DONE]
    split_bytes: bool = False  # write each event in two halves, cut mid-line (and mid-UTF-8 where possible)
    stream: bool = True  # False: answer with one JSON body (a server ignoring stream: true)
    keepalive_comments: bool = False


@dataclass
class ServedRequest:
    body: dict[str, Any]
    headers: dict[str, str]
    received: float
    first_token_sent: float | None = None
    last_token_sent: float | None = None
    finished: bool = False
    disconnected: bool = False


class FakeChatServer:
    """``POST /v1/chat/completions`` streaming :class:`Script` replies; ``GET /v1/models``.

    ``script`` is used for every request unless ``scripts`` (a queue) has one waiting.
    """

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script(tokens=word_tokens("Hello there, nice to meet you."))
        self.scripts: list[Script] = []
        self.requests: list[ServedRequest] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self, port: int = 0) -> FakeChatServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        # Cancel a handler when its client goes (like a real LLM server stops generating).
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeChatServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        served = ServedRequest(await request.json(), dict(request.headers), time.perf_counter())
        self.requests.append(served)
        script = self.scripts.pop(0) if self.scripts else self.script
        if script.status != 200:
            return web.json_response(script.error_body or {"error": {"message": "fake failure"}}, status=script.status)
        if not script.stream:
            text = "".join(script.tokens)
            return web.json_response({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        try:
            await self._stream(response, script, served)
        except (ConnectionResetError, asyncio.CancelledError):
            served.disconnected = True
            raise
        return response

    async def _stream(self, response: web.StreamResponse, script: Script, served: ServedRequest) -> None:
        async def send(obj: Any) -> None:
            data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
            payload = f"data: {data}\n\n".encode()
            if script.split_bytes and len(payload) > 4:
                cut = _awkward_cut(payload)
                await response.write(payload[:cut])
                await asyncio.sleep(0.005)  # make the two halves separate reads
                await response.write(payload[cut:])
            else:
                await response.write(payload)

        def chunk(content: str | None = None, finish: str | None = None, role: bool = False) -> dict[str, Any]:
            delta: dict[str, Any] = {"role": "assistant"} if role else {}
            if content is not None:
                delta["content"] = content
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "model": "fake",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        if script.keepalive_comments:
            await response.write(b": keep-alive\n\n")
        await send(chunk(role=True, content=""))
        if script.first_delay:
            await asyncio.sleep(script.first_delay)
        loop = asyncio.get_running_loop()
        start = loop.time()
        interval = 1.0 / script.rate if script.rate else 0.0
        for index, token in enumerate(script.tokens):
            if script.stall_after is not None and index == script.stall_after:
                await asyncio.sleep(script.stall_seconds)
            if script.error_after is not None and index == script.error_after:
                await send({"error": {"message": "the model crashed", "type": "server_error"}})
                return
            if interval:
                delay = start + index * interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await send(chunk(content=token))
            now = time.perf_counter()
            if served.first_token_sent is None:
                served.first_token_sent = now
            served.last_token_sent = now
            if script.keepalive_comments:
                await response.write(b": ping\r\n\r\n")
        if script.send_finish:
            await send(chunk(finish="stop"))
        if script.send_done:
            await send("[DONE]")
        served.finished = True
        await response.write_eof()


def _awkward_cut(payload: bytes) -> int:
    """A cut inside a multi-byte UTF-8 character if there is one, else mid-JSON."""
    for index, byte in enumerate(payload):
        if 0x80 <= byte < 0xC0 and index > 0:  # a continuation byte
            return index
    return max(1, len(payload) // 2)
