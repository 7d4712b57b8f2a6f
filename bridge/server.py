"""The HTTP + WebSocket server (aiohttp): ``/ws/stream``, ``/api/speak``, ``/health``, ``/ready``.

A thin asyncio layer: protocol parsing lives in :mod:`bridge.protocol`, the audio path in
:mod:`bridge.pipeline`. Each WebSocket session runs two tasks: the receive loop (this module)
and a sender that drains the session's output queue into the socket. The sender awaits the
socket's drain, so a client that reads slowly fills its own output queue and pauses its own
synthesis; nothing else waits on it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bridge import __version__
from bridge.audio.framing import decode_pcm
from bridge.audio.wav import wav_bytes
from bridge.config import OUTPUT_SAMPLE_RATE, Settings
from bridge.engines import Engines
from bridge.pipeline import (
    AudioOut,
    CancelledOut,
    ErrorOut,
    FlushedOut,
    SegmentOut,
    SessionOptions,
    SessionPipeline,
)
from bridge.protocol import (
    PITCH_SHIFT_LIMIT,
    CancelMessage,
    ConfigMessage,
    FlushMessage,
    ProtocolError,
    TokenMessage,
    cancelled_event,
    error_frame,
    flushed_event,
    parse_client_message,
    ready_event,
    segment_event,
)

log = logging.getLogger(__name__)

#: Close code when the server is at capacity (RFC 6455 1013 "try again later").
CLOSE_TRY_AGAIN_LATER = 1013

#: The browser demo (``GET /demo``) and its assets (``/static/...``).
STATIC_DIR = Path(__file__).parent / "static"


@dataclass
class ServerState:
    settings: Settings
    engines: Engines
    sessions: dict[str, Session] = field(default_factory=dict)
    session_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    started: float = field(default_factory=time.time)


STATE = web.AppKey("state", ServerState)


class SpeakRequest(BaseModel):
    """Body of ``POST /api/speak``."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    voice: str | None = None
    pitch_shift: float = Field(0.0, ge=-PITCH_SHIFT_LIMIT, le=PITCH_SHIFT_LIMIT, allow_inf_nan=False)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is blank")
        return value


# ----------------------------------------------------------------------------- sessions
class Session:
    """One WebSocket client: options, its pipeline, and the task sending its output."""

    def __init__(self, state: ServerState, ws: web.WebSocketResponse, session_id: str, options: SessionOptions) -> None:
        self.state = state
        self.ws = ws
        self.id = session_id
        self.options = options
        self.pipeline = SessionPipeline(state.engines, options, session_id=session_id)
        self.log = logging.LoggerAdapter(log, {"session": session_id})
        self._ready_sent = False
        self.sender = asyncio.create_task(self._send_loop(), name=f"sender-{session_id}")

    async def send_ready(self) -> None:
        if self._ready_sent:
            return
        self._ready_sent = True
        engines = self.state.engines
        await self.ws.send_str(
            ready_event(
                session=self.id,
                version=__version__,
                sample_rate=OUTPUT_SAMPLE_RATE,
                channels=1,
                format=self.options.format,
                frame_ms=self.state.settings.frame_ms,
                tts=engines.tts.name,
                voice=self.options.voice,
                voices=engines.voices(),
            )
        )

    async def _send_loop(self) -> None:
        ws = self.ws
        try:
            while not ws.closed:
                item = await self.pipeline.next_output()
                if isinstance(item, AudioOut):
                    await ws.send_bytes(item.data)
                elif isinstance(item, ErrorOut):
                    await ws.send_str(error_frame(item.message))
                elif not self.options.events:
                    continue  # seed-compatible clients get audio and errors only
                elif isinstance(item, SegmentOut):
                    await ws.send_str(segment_event(item.id, item.text, item.token))
                elif isinstance(item, FlushedOut):
                    await ws.send_str(
                        flushed_event(segments=item.segments, audio_seconds=item.audio_seconds, stats=item.stats)
                    )
                elif isinstance(item, CancelledOut):
                    await ws.send_str(cancelled_event())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        except Exception:
            self.log.exception("sender failed")

    async def report_error(self, message: str) -> None:
        await self.pipeline.output.put_urgent(ErrorOut(message))

    async def handle_text(self, data: str) -> None:
        try:
            message = parse_client_message(data)
        except ProtocolError as exc:
            await self.report_error(str(exc))
            return
        if isinstance(message, TokenMessage):
            self.pipeline.feed(message.token, message.pitch_shift)
            if message.flush:
                self.pipeline.flush()
        elif isinstance(message, FlushMessage):
            self.pipeline.flush()
        elif isinstance(message, CancelMessage):
            await self.pipeline.cancel()
        elif isinstance(message, ConfigMessage):
            await self._configure(message)

    async def _configure(self, message: ConfigMessage) -> None:
        if message.voice is not None:
            voice = message.voice or None
            if voice is not None:
                available = self.state.engines.voices()
                if not available:
                    await self.report_error(f"unknown voice {voice!r}: no voice conversion voices are installed")
                    return
                if voice not in available:
                    await self.report_error(f"unknown voice {voice!r}; available: {', '.join(available)}")
                    return
            self.options.voice = voice
        if message.pitch_shift is not None:
            self.pipeline.feed("", message.pitch_shift)
        if message.format is not None:
            self.options.format = message.format
        if message.events is not None:
            self.options.events = message.events
            if message.events:
                await self.send_ready()

    async def close(self) -> None:
        await self.pipeline.close()
        self.sender.cancel()
        try:
            await self.sender
        except asyncio.CancelledError:
            pass


# ----------------------------------------------------------------------------- handlers
def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in {"1", "true", "yes", "on"}


async def ws_stream(request: web.Request) -> web.WebSocketResponse:
    state = request.app[STATE]
    settings = state.settings
    ws = web.WebSocketResponse(compress=False, max_msg_size=1024 * 1024)
    await ws.prepare(request)
    if len(state.sessions) >= settings.max_sessions:
        await ws.close(code=CLOSE_TRY_AGAIN_LATER, message=b"server at capacity, try again later")
        return ws
    fmt = request.query.get("format", settings.output_format)
    options = SessionOptions(
        events=_flag(request.query.get("events")),
        voice=settings.default_voice,
        format=fmt if fmt in ("f32le", "s16le") else settings.output_format,
    )
    session_id = f"s{next(state.session_ids)}"
    session = Session(state, ws, session_id, options)
    state.sessions[session_id] = session
    session.log.info("session opened", extra={"peer": request.remote, "events": options.events})
    try:
        if options.events:
            await session.send_ready()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await session.handle_text(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await session.report_error("binary frames are not accepted: send JSON text frames")
            elif msg.type == WSMsgType.ERROR:
                session.log.warning("websocket error", extra={"error": str(ws.exception())})
                break
    finally:
        del state.sessions[session_id]
        await session.close()
        session.log.info("session closed")
    return ws


async def speak(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        body = SpeakRequest.model_validate(await request.json())
    except ValidationError as exc:
        return web.json_response({"error": exc.errors(include_url=False, include_context=False)}, status=400)
    except ValueError as exc:
        return web.json_response({"error": f"invalid JSON: {exc}"}, status=400)
    voice = body.voice or None
    if voice is not None and voice not in state.engines.voices():
        return web.json_response({"error": f"unknown voice {voice!r}"}, status=400)
    audio, errors = await render(state.engines, body.text, voice=voice, pitch_shift=body.pitch_shift)
    if errors and audio.size == 0:
        return web.json_response({"error": "; ".join(errors)}, status=422)
    return web.Response(body=wav_bytes(audio, OUTPUT_SAMPLE_RATE), content_type="audio/wav")


async def render(
    engines: Engines, text: str, *, voice: str | None = None, pitch_shift: float = 0.0
) -> tuple[np.ndarray, list[str]]:
    """Speak a whole text through the same pipeline the WebSocket uses; (48 kHz audio, errors)."""
    pipeline = SessionPipeline(engines, SessionOptions(voice=voice, pitch_shift=pitch_shift), session_id="speak")
    chunks: list[np.ndarray] = []
    errors: list[str] = []
    try:
        pipeline.feed(text)
        pipeline.flush()
        while True:
            item = await pipeline.next_output()
            if isinstance(item, AudioOut):
                chunks.append(decode_pcm(item.data, "f32le"))
            elif isinstance(item, ErrorOut):
                errors.append(item.message)
            elif isinstance(item, FlushedOut):
                break
    finally:
        await pipeline.close()
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return audio, errors


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    settings = state.settings
    sessions = len(state.sessions)
    return web.json_response(
        {
            "status": "ok" if state.engines.loaded else "loading",
            "version": __version__,
            "engines": state.engines.info(),
            "device": settings.device,
            "sessions": sessions,
            "max_sessions": settings.max_sessions,
            "capacity": max(0, settings.max_sessions - sessions),
            "uptime_seconds": round(time.time() - state.started, 1),
        }
    )


async def ready(request: web.Request) -> web.Response:
    """Readiness for a load balancer: 200 while this replica can take a new session, else 503.

    Not ready while the engines load or when every session slot is taken (a new WebSocket would
    be closed with 1013), so a balancer that health-checks ``/ready`` sends new sessions to
    another replica; the sessions already open here carry on either way.
    """
    state = request.app[STATE]
    settings = state.settings
    sessions = len(state.sessions)
    capacity = max(0, settings.max_sessions - sessions)
    loaded = state.engines.loaded
    body: dict[str, Any] = {
        "ready": loaded and capacity > 0,
        "engines_loaded": loaded,
        "sessions": sessions,
        "max_sessions": settings.max_sessions,
        "capacity": capacity,
    }
    if not loaded:
        body["reason"] = "engines loading"
    elif capacity == 0:
        body["reason"] = "at capacity"
    return web.json_response(body, status=200 if body["ready"] else 503)


async def demo_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "demo.html")


async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("demo")


# ----------------------------------------------------------------------------- app
def create_app(settings: Settings, engines: Engines | None = None) -> web.Application:
    """The aiohttp application. Engines are loaded (in a thread) at start-up if not yet loaded."""
    app = web.Application(client_max_size=1024 * 1024)
    state = ServerState(settings=settings, engines=engines or Engines.from_settings(settings))
    app[STATE] = state
    app.router.add_get("/ws/stream", ws_stream)
    app.router.add_post("/api/speak", speak)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/", index)
    app.router.add_get("/demo", demo_page)
    app.router.add_static("/static/", STATIC_DIR)

    async def load_engines(app: web.Application) -> None:
        if not state.engines.loaded:
            started = time.perf_counter()
            await asyncio.get_running_loop().run_in_executor(None, state.engines.load)
            log.info("engines loaded", extra={"seconds": round(time.perf_counter() - started, 2)})

    async def close_sessions(app: web.Application) -> None:
        for session in list(state.sessions.values()):
            await session.ws.close(code=1001, message=b"server shutting down")

    app.on_startup.append(load_engines)
    app.on_shutdown.append(close_sessions)
    return app


async def serve(settings: Settings, engines: Engines | None = None, *, ready: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM."""
    app = create_app(settings, engines)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []  # noqa: SLF001 - to report port 0's pick
    port = sockets[0].getsockname()[1] if sockets else settings.port
    log.info("listening", extra={"url": f"ws://{settings.host}:{port}/ws/stream"})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread / not supported
            pass
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await runner.cleanup()
        app[STATE].engines.close()
