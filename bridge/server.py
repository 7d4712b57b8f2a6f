"""The HTTP + WebSocket server (aiohttp): ``/ws/stream``, ``/api/speak``, ``/health``, ``/ready``,
``/metrics``, and the ``/demo`` page.

A thin asyncio layer: protocol parsing lives in :mod:`bridge.protocol`, one client's session
(its receive handling and the sender draining its output queue) in :mod:`bridge.session`, the
audio path in :mod:`bridge.pipeline`, access rules in :mod:`bridge.auth`, limits in
:mod:`bridge.limits`, metrics in :mod:`bridge.metrics`. This module admits connections, runs
each session's receive loop, serves the HTTP routes, and starts and stops the server.

What a slow reader can make the server hold is bounded at every stage: the output queue
(``output_queue_seconds`` of audio), aiohttp's writer (it drains every ``WRITER_LIMIT`` bytes),
the transport's buffer (asyncio's 64 KiB high-water mark) and the kernel's send buffer
(``socket_send_buffer_bytes``, which also turns off the kernel's growth of it up to megabytes).
A client that reads nothing for ``send_stall_seconds`` while audio waits is closed, and a
janitor task closes idle and over-long sessions.

Shutdown (SIGTERM/SIGINT): stop listening, refuse new sessions, let in-flight utterances finish
within ``shutdown_timeout_seconds``, close the rest with 1001, exit.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import signal
import socket
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from aiohttp import WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bridge import __version__, openai_speech
from bridge.accelerator import accelerators_in_use
from bridge.audio.formats import decode_pcm, is_pcm_format
from bridge.audio.wav import wav_bytes
from bridge.auth import Access, access_middleware, redact_access_log, warn_if_exposed
from bridge.config import OUTPUT_SAMPLE_RATE, Settings
from bridge.engines import Engines
from bridge.limits import SHUTTING_DOWN
from bridge.logs import current_session
from bridge.metrics import Metrics
from bridge.normalize import normalizer as normalize
from bridge.pipeline import AudioOut, ErrorOut, FlushedOut, SessionOptions, SessionPipeline, WordsOut
from bridge.protocol import PITCH_SHIFT_LIMIT
from bridge.session import CLOSE_TIMEOUT, STATE, WRITER_LIMIT, ServerState, Session, SessionWebSocket
from bridge.words import WordTime

__all__ = ["STATE", "ServerState", "Session", "create_app", "serve"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The browser demo (``GET /demo``) and its assets (``/static/...``).
STATIC_DIR = Path(__file__).parent / "static"

JANITOR = web.AppKey("janitor", asyncio.Task)
#: The Wyoming listener, when ``wyoming_port`` is set (bridge/wyoming_server.py).
WYOMING = web.AppKey("wyoming", object)


class SpeakRequest(BaseModel):
    """Body of ``POST /api/speak``."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    voice: str | None = None
    pitch_shift: float = Field(0.0, ge=-PITCH_SHIFT_LIMIT, le=PITCH_SHIFT_LIMIT, allow_inf_nan=False)
    #: Answer with JSON holding the WAV (base64) and its word timings instead of the bare WAV.
    words: bool = False

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is blank")
        return value


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in {"1", "true", "yes", "on"}


def _limit_send_buffer(request: web.BaseRequest, size: int) -> None:
    """Cap the kernel's send buffer of this connection (and stop it growing by itself)."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if size and sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        except OSError as exc:
            log.debug("cannot set SO_SNDBUF", extra={"error": str(exc)})


async def ws_stream(request: web.Request) -> web.WebSocketResponse:
    state = request.app[STATE]
    settings = state.settings
    ws = SessionWebSocket(
        compress=False,
        max_msg_size=settings.limits.max_message_bytes,
        heartbeat=settings.limits.heartbeat_seconds or None,
        writer_limit=WRITER_LIMIT,
        timeout=CLOSE_TIMEOUT,
    )
    ws.max_bytes = settings.limits.max_message_bytes
    await ws.prepare(request)
    _limit_send_buffer(request, settings.limits.socket_send_buffer_bytes)
    peer = state.client_of(request)
    refusal = state.admission.admit(peer)
    if refusal is not None:
        state.metrics.refused.labels(refusal.kind).inc()
        log.info("session refused", extra={"peer": peer, "reason": refusal.kind})
        await ws.close(code=refusal.code, message=refusal.reason.encode())
        return ws
    fmt = request.query.get("format", settings.audio.output_format)
    framing = request.query.get("opus_framing")
    options = SessionOptions(
        events=_flag(request.query.get("events")),
        words=_flag(request.query.get("words")),
        voice=settings.rvc.default_voice,
        format=fmt if is_pcm_format(fmt) else settings.audio.output_format,
    )
    session_id = f"s{next(state.session_ids)}"
    context = current_session.set(session_id)  # the session's tasks inherit it: their log lines say so
    session = Session(state, ws, session_id, options, request)
    if fmt == "opus":  # ?format=opus[&opus_framing=raw]
        session.choose_format("opus", "raw" if framing == "raw" else "ogg")
    state.sessions[session_id] = session
    state.metrics.sessions_opened.inc()
    session.log.info("session opened", extra={"peer": peer, "events": options.events})
    try:
        if options.events:
            await session.send_ready()
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                session.log.info("websocket error", extra={"error": str(ws.exception())})
                break
            reason = await session.receive(msg)
            if reason is not None:
                session.log.warning("closing session", extra={"reason": reason.kind, "code": reason.code})
                await session.close_socket(reason)
                break
            # Let the sender and other sessions run between messages: a burst already in the
            # socket buffer would otherwise be handled in one go, starving everything else.
            await asyncio.sleep(0)
    finally:
        del state.sessions[session_id]
        await session.close()
        session.abort_if_stuck()
        state.admission.release(peer)
        closed_by = session.closing.kind if session.closing is not None else "client"
        state.metrics.sessions_closed.labels(closed_by).inc()
        session.log.info(
            "session closed",
            extra={
                "reason": closed_by,
                "code": ws.close_code,
                "seconds": round(asyncio.get_running_loop().time() - session.opened, 1),
            },
        )
        current_session.reset(context)
    return ws


async def _unless_client_leaves(request: web.BaseRequest, work: Awaitable[T]) -> T:
    """Run ``work``, cancelling it if the HTTP client disconnects meanwhile."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.2)
            if done:
                return task.result()
            transport = request.transport
            if transport is None or transport.is_closing():
                task.cancel()
                raise ConnectionResetError("client disconnected")
    finally:
        if not task.done():
            task.cancel()
            try:
                await task
            except BaseException:  # noqa: BLE001 - we are leaving anyway
                pass


async def speak(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    peer = state.client_of(request)
    refusal = state.admission.admit(peer)
    if refusal is not None:
        state.metrics.refused.labels(refusal.kind).inc()
        status = 429 if refusal.kind == "per_ip" else 503
        return web.json_response({"error": refusal.reason}, status=status, headers={"Retry-After": "1"})
    context = current_session.set(f"speak{next(state.session_ids)}")
    try:
        return await _speak(request, state)
    finally:
        state.admission.release(peer)
        current_session.reset(context)


async def _speak(request: web.Request, state: ServerState) -> web.StreamResponse:
    try:
        body = SpeakRequest.model_validate(await request.json())
    except ValidationError as exc:
        return web.json_response({"error": exc.errors(include_url=False, include_context=False, include_input=False)}, status=400)
    except (ValueError, RecursionError) as exc:
        return web.json_response({"error": f"invalid JSON: {exc}"[:300]}, status=400)
    voice = body.voice or None
    if voice is not None and voice not in state.engines.voices():
        return web.json_response({"error": f"unknown voice {voice!r}"}, status=400)
    words: list[WordTime] | None = [] if body.words else None
    try:
        audio, errors = await _unless_client_leaves(
            request,
            render(
                state.engines,
                body.text,
                voice=voice,
                pitch_shift=body.pitch_shift,
                session_id=current_session.get() or "speak",
                metrics=state.metrics,
                max_seconds=min(state.settings.limits.max_utterance_seconds, state.settings.limits.speak_max_seconds),
                words=words,
            ),
        )
    except ConnectionResetError:
        log.info("speak request abandoned by the client")
        return web.Response(status=499)
    if errors and audio.size == 0:
        return web.json_response({"error": "; ".join(errors)}, status=422)
    headers = {"X-Voice-Bridge-Errors": "; ".join(errors)[:500].encode("ascii", "replace").decode()} if errors else None
    if words is not None:
        return web.json_response(speak_with_words(audio, words, errors), headers=headers)
    return web.Response(body=wav_bytes(audio, OUTPUT_SAMPLE_RATE), content_type="audio/wav", headers=headers)


async def render(
    engines: Engines,
    text: str,
    *,
    voice: str | None = None,
    pitch_shift: float = 0.0,
    session_id: str = "speak",
    metrics: Metrics | None = None,
    max_seconds: float | None = None,
    words: list[WordTime] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Speak a whole text through the same pipeline the WebSocket uses; (48 kHz audio, errors).

    ``max_seconds`` caps the audio (the rest is cut, with an error in the list). ``words``: a
    list the utterance's timed words are appended to (the words are timed only when given).
    """
    pipeline = SessionPipeline(
        engines,
        SessionOptions(voice=voice, pitch_shift=pitch_shift, words=words is not None),
        session_id=session_id,
        observer=metrics,
        max_utterance_seconds=max_seconds,
    )
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
            elif isinstance(item, WordsOut) and words is not None:
                words.extend(item.words)
            elif isinstance(item, FlushedOut):
                if metrics is not None:
                    metrics.observe_utterance(item.stats)
                break
    finally:
        await pipeline.close()
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return audio, errors


def speak_with_words(audio: np.ndarray, words: list[WordTime], errors: list[str]) -> dict[str, Any]:
    """The ``"words": true`` answer of ``/api/speak``: one JSON document, the shape of the
    ``/with-timestamps`` answers of hosted TTS APIs: the WAV as base64, and its words as the
    WebSocket's ``words`` events give them (seconds from the WAV's first sample)."""
    return {
        "audio_base64": base64.b64encode(wav_bytes(audio, OUTPUT_SAMPLE_RATE)).decode("ascii"),
        "content_type": "audio/wav",
        "sample_rate": OUTPUT_SAMPLE_RATE,
        "audio_seconds": round(audio.size / OUTPUT_SAMPLE_RATE, 3),
        "words": [word.as_json() for word in words],
        "errors": errors,
    }


def devices_in_use(engines_info: dict[str, Any]) -> dict[str, str | None]:
    """The device each model stage runs on, as the engine resolved it (``Engines.info()``).

    The ``device`` setting may say ``auto``, which tells an operator nothing about whether the
    GPU is in use; the engines know what ``auto`` became. An engine that runs on an accelerator
    names it in its ``info()`` (Soprano, RVC); one that names no device at all runs on the CPU
    (Piper: an onnxruntime session with the CPU provider only). None: the stage is absent, or
    its engine has not resolved its device yet (Soprano before it has loaded).
    """

    def device_of(info: Any) -> str | None:
        if not isinstance(info, dict):
            return None
        if "device" not in info:
            return "cpu"
        device = info["device"]
        return str(device) if device else None

    return {
        "tts": device_of(engines_info.get("tts")),
        "voice_conversion": device_of(engines_info.get("voice_conversion")),
    }


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    settings = state.settings
    sessions = len(state.sessions)
    if state.draining:
        status = "draining"
    else:
        status = "ok" if state.engines.loaded else "loading"
    engines_info = state.engines.info()
    devices = devices_in_use(engines_info)
    in_use = list(dict.fromkeys(d for d in devices.values() if d is not None))  # distinct, TTS first
    capacity = state.admission.capacity
    return web.json_response(
        {
            "status": status,
            "version": __version__,
            "engines": engines_info,
            # What the models run on ("cpu", "cuda", "cuda, cpu" when the stages differ), not
            # the setting ("auto"); null until the engines have resolved it.
            "device": ", ".join(in_use) or None,
            "devices": devices,
            # The GPUs among them, by vendor: api "cuda" (NVIDIA) or "rocm" (AMD), whose torch
            # builds both call the device "cuda"; the card's name, arch and memory from torch.
            "accelerators": accelerators_in_use(in_use),
            "device_setting": settings.engines.device,
            "sessions": sessions,
            "max_sessions": settings.sessions.max_sessions,
            "capacity": capacity,
            "accepting": state.engines.loaded and capacity > 0,
            # Measured capacity (bridge/capacity.py): cores, cost per audio second per voice,
            # load, load ratio, and how many listeners the cores carry in real time.
            "load": state.capacity_report().as_dict(),
            "uptime_seconds": round(time.time() - state.started, 1),
        }
    )


async def ready(request: web.Request) -> web.Response:
    """Readiness for a load balancer: 200 while this replica can take a new session, else 503.

    Not ready while the engines load, when every session slot is taken, or when one more
    listener would push the measured demand past the usable cores (a new WebSocket would be
    closed with 1013 either way: "at capacity"), so a balancer that health-checks ``/ready`` sends new sessions to
    another replica; the sessions already open here carry on either way.
    """
    state = request.app[STATE]
    settings = state.settings
    sessions = len(state.sessions)
    # Admission counts WebSocket sessions and /api/speak requests, and is 0 while draining.
    capacity = state.admission.capacity
    loaded = state.engines.loaded
    body: dict[str, Any] = {
        "ready": loaded and capacity > 0,
        "engines_loaded": loaded,
        "sessions": sessions,
        "max_sessions": settings.sessions.max_sessions,
        "capacity": capacity,
    }
    if not loaded:
        body["reason"] = "engines loading"
    elif state.draining:
        body["reason"] = "shutting down"
    elif capacity == 0:
        body["reason"] = "at capacity"
    return web.json_response(body, status=200 if body["ready"] else 503)


async def demo_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "demo.html")


async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("demo")


async def metrics(request: web.Request) -> web.Response:
    body, content_type = request.app[STATE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": content_type})


# ----------------------------------------------------------------------------- housekeeping
async def janitor(state: ServerState) -> None:
    """Close sessions past their time, idle ones, and clients that stopped reading."""
    settings = state.settings
    periods = [settings.limits.send_stall_seconds, settings.limits.idle_timeout_seconds, settings.limits.max_session_seconds]
    tick = max(0.05, min([1.0, *(p / 4 for p in periods if p)]))
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(tick)
        now = loop.time()
        for session in list(state.sessions.values()):
            reason = session.overdue(now)
            if reason is not None and session.closing is None:
                session.log.warning("closing session", extra={"reason": reason.kind, "code": reason.code})
                session.terminate(reason)


async def shutdown_sessions(state: ServerState, timeout: float) -> None:
    """Refuse new sessions, let in-flight work finish within ``timeout``, close the rest 1001."""
    state.draining = True
    state.admission.closing = True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    close_budget = min(CLOSE_TIMEOUT, timeout / 3)
    while loop.time() < deadline - close_budget and any(s.active for s in state.sessions.values()):
        await asyncio.sleep(0.05)
    sessions = list(state.sessions.values())
    for session in sessions:
        session.terminate(SHUTTING_DOWN)
    closers = [s._closer for s in sessions if s._closer is not None]  # noqa: SLF001
    if closers:
        await asyncio.wait(closers, timeout=max(0.1, deadline - loop.time()))
    for session in sessions:
        session.abort_if_stuck(force=not session.ws.closed)


# ----------------------------------------------------------------------------- app
def create_app(settings: Settings, engines: Engines | None = None) -> web.Application:
    """The aiohttp application. Engines are loaded (in a thread) at start-up if not yet loaded."""
    state = ServerState(settings=settings, engines=engines or Engines.from_settings(settings))
    access = Access(settings.access)
    app = web.Application(
        client_max_size=settings.limits.max_message_bytes,
        middlewares=[access_middleware(access, lambda reason: state.metrics.refused.labels(reason).inc())],
    )
    app[STATE] = state
    state.metrics.watch_queues(state.queue_snapshot)
    app.router.add_get("/ws/stream", ws_stream)
    app.router.add_post("/api/speak", speak)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index)
    app.router.add_get("/demo", demo_page)
    openai_speech.add_routes(app)  # /v1/audio/speech, /v1/audio/voices, /v1/models
    app.router.add_static("/static/", STATIC_DIR)

    async def load_engines(app: web.Application) -> None:
        if not state.engines.loaded:
            started = time.perf_counter()
            await asyncio.get_running_loop().run_in_executor(None, state.engines.load)
            log.info("engines loaded", extra={"seconds": round(time.perf_counter() - started, 2)})

    async def warm_normalizer(app: web.Application) -> None:
        await asyncio.get_running_loop().run_in_executor(None, normalize.warm, settings.normalize, state.engines.tts)

    async def start_janitor(app: web.Application) -> None:
        app[JANITOR] = asyncio.create_task(janitor(state), name="janitor")

    async def stop_janitor(app: web.Application) -> None:
        task = app.get(JANITOR)
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def close_sessions(app: web.Application) -> None:
        await shutdown_sessions(state, timeout=min(CLOSE_TIMEOUT, settings.limits.shutdown_timeout_seconds))

    async def start_wyoming(app: web.Application) -> None:
        from bridge.wyoming_server import WyomingService

        service = WyomingService(state, settings.server.host, settings.wyoming.port or 0)
        await service.start()
        app[WYOMING] = service

    async def stop_wyoming(app: web.Application) -> None:
        service = app.get(WYOMING)
        if service is not None:
            await service.stop()  # type: ignore[attr-defined]

    app.on_startup.append(load_engines)
    app.on_startup.append(warm_normalizer)
    app.on_startup.append(start_janitor)
    app.on_shutdown.append(close_sessions)
    app.on_cleanup.append(stop_janitor)
    if settings.wyoming.port is not None:
        app.on_startup.append(start_wyoming)
        app.on_shutdown.append(stop_wyoming)
    return app


async def serve(settings: Settings, engines: Engines | None = None, *, ready: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM, then shut down gracefully within ``shutdown_timeout_seconds``."""
    warn_if_exposed(settings.server.host, settings.access)
    redact_access_log()
    app = create_app(settings, engines)
    state = app[STATE]
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.server.host, settings.server.port)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []  # noqa: SLF001 - to report port 0's pick
    port = sockets[0].getsockname()[1] if sockets else settings.server.port
    log.info("listening", extra={"url": f"ws://{settings.server.host}:{port}/ws/stream"})
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
        started = loop.time()
        log.info("shutting down", extra={"sessions": len(state.sessions), "deadline_seconds": settings.limits.shutdown_timeout_seconds})
        for running in list(runner.sites):
            server = getattr(running, "_server", None)
            if server is not None:
                server.close()  # stop listening; open connections carry on
        await shutdown_sessions(state, settings.limits.shutdown_timeout_seconds)
        await runner.cleanup()
        state.engines.close()
        log.info("stopped", extra={"seconds": round(loop.time() - started, 2)})
