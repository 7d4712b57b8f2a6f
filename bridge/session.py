"""One WebSocket session and the state the server shares between sessions.

A :class:`Session` is the thin asyncio layer around one client: it parses each message with
:mod:`bridge.protocol`, feeds its :class:`~bridge.pipeline.SessionPipeline`, and runs the task
that drains the pipeline's output queue into the socket. That sender awaits the socket's
drain, so a client that reads slowly fills its own output queue and pauses its own synthesis;
nothing else waits on it. :class:`ServerState` holds what the sessions of one server share:
settings, engines, admission control, metrics. The routes that create sessions live in
:mod:`bridge.server`.
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import logging
import struct
import termios
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from bridge import __version__
from bridge.audio.formats import OpusFraming, WireFormat, is_pcm_format
from bridge.capacity import CapacityReport, compute_key
from bridge.config import OUTPUT_SAMPLE_RATE, Settings
from bridge.engines import Engines
from bridge.limits import (
    IDLE,
    INTERNAL,
    RATE,
    SESSION_TIME,
    STALLED,
    Admission,
    ClientAddress,
    CloseReason,
    TokenBucket,
    buffered_text,
)
from bridge.load import ServerLoad
from bridge.logs import SessionLog
from bridge.metrics import Metrics, QueueSnapshot
from bridge.pipeline import (
    AudioOut,
    CancelledOut,
    ErrorOut,
    FlushedOut,
    SegmentOut,
    SessionOptions,
    SessionPipeline,
    WordsOut,
)
from bridge.protocol import (
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
    words_event,
)
from bridge.wire import WireEncoder
from bridge.words import HeardTracker

#: Session lines log under the server's name, as they did before the session had its own module.
log = logging.getLogger("bridge.server")

#: aiohttp's WebSocket writer waits for the socket to drain after this many bytes (default 256 KiB).
WRITER_LIMIT = 32 * 1024
#: How long a close handshake may take before the connection is dropped.
CLOSE_TIMEOUT = 3.0
#: Error frames a session may have waiting unsent; more are dropped (a client sending garbage
#: and reading nothing must not grow the queue).
MAX_PENDING_ERRORS = 32


@dataclass
class ServerState:
    """What the sessions of one server share; one per application (``app[STATE]``)."""

    settings: Settings
    engines: Engines
    sessions: dict[str, Session] = field(default_factory=dict)
    session_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    started: float = field(default_factory=time.time)
    metrics: Metrics = field(default_factory=Metrics)
    admission: Admission = field(init=False)
    client_address: ClientAddress = field(init=False)
    load: ServerLoad = field(init=False)
    draining: bool = False

    def __post_init__(self) -> None:
        self.load = ServerLoad.from_settings(self.settings.capacity)
        self.metrics.compute = self.load
        # Simultaneous starts are spaced by the measured cost of the default voice (a stand-in
        # without models, as route listings use, has no start slots).
        if hasattr(self.engines, "cost_per_audio_second"):
            self.engines.cost_per_audio_second = lambda: self.load.cost(self.voice_key(None))
        # A model job that starts while the queue is momentarily empty still has the other
        # utterances under way to compete with (a burst of starts arrives a few ms apart).
        executor = getattr(self.engines, "executor", None)
        if executor is not None:
            executor.expected_clients = lambda: max(0, self.utterances_under_way() - 1)
        self.metrics.watch_load(self.capacity_report)
        headroom = self.load_headroom if self.settings.capacity.admission else None
        self.admission = Admission(self.settings.sessions.max_sessions, self.settings.limits.max_connections_per_ip, headroom)
        self.client_address = ClientAddress(self.settings.limits.trusted_proxies)

    # ------------------------------------------------------------------ measured capacity
    def voice_key(self, voice: str | None) -> str:
        """The compute key of a session speaking ``voice`` (None: the default voice)."""
        voice = voice or self.settings.rvc.default_voice
        return compute_key(self.engines.tts.name, voice if voice and self.engines.voice is not None else None)

    def open_keys(self) -> list[str]:
        """One compute key per admitted session; /api/speak requests speak their voice, counted
        as the default's (they are short)."""
        keys = [self.voice_key(s.pipeline.options.voice) for s in list(self.sessions.values())]
        return keys + [self.voice_key(None)] * max(0, self.admission.active - len(keys))

    def utterances_under_way(self) -> int:
        """Sessions with an utterance begun (text received) and not yet finished. Any thread may
        ask: the sessions are copied in one step under the GIL."""
        return sum(1 for session in tuple(self.sessions.values()) if session.pipeline.clock.first_text is not None)

    def load_headroom(self) -> int:
        """More listeners of the default voice the measured compute carries now."""
        return self.load.headroom(self.open_keys(), self.voice_key(None))

    def capacity_report(self) -> CapacityReport:
        return self.load.report(self.open_keys(), self.voice_key(None))

    def client_of(self, request: web.BaseRequest) -> str | None:
        """The client's address (X-Forwarded-For when the peer is a trusted proxy)."""
        return self.client_address(request.remote, request.headers.get("X-Forwarded-For"))

    def queue_snapshot(self) -> QueueSnapshot:
        """Queue depths of every session, for ``/metrics``."""
        snap = QueueSnapshot(sessions=len(self.sessions), capacity=self.admission.capacity)
        for session in list(self.sessions.values()):
            pipeline = session.pipeline
            snap.output_seconds.append(pipeline.output.samples / OUTPUT_SAMPLE_RATE)
            snap.work_segments += pipeline.queued_segments
            snap.buffered_chars += pipeline.buffered_chars
            sent = session.buffered_bytes()
            snap.send_buffer_bytes.append(sent["transport"] + sent["kernel"])
        snap.model_queue = self.engines.executor.queued
        return snap


STATE = web.AppKey("state", ServerState)


class SessionWebSocket(web.WebSocketResponse):
    """aiohttp's WebSocket, closing 1009 with a reason (its reader closes without one)."""

    max_bytes = 0

    async def close(self, *, code: int = 1000, message: bytes = b"", drain: bool = True) -> bool:
        if code == 1009 and not message:
            message = f"message too big (limit {self.max_bytes} bytes)".encode()
        return await super().close(code=code, message=message, drain=drain)


def _kernel_unsent(sock: Any) -> int:
    """Bytes in a TCP socket's send queue (Linux SIOCOUTQ), 0 when unknown."""
    try:
        return struct.unpack("I", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
    except (OSError, ValueError, AttributeError):
        return 0


class Session:
    """One WebSocket client: options, its pipeline, and the task sending its output."""

    def __init__(
        self,
        state: ServerState,
        ws: web.WebSocketResponse,
        session_id: str,
        options: SessionOptions,
        request: web.BaseRequest | None = None,
    ) -> None:
        self.state = state
        self.ws = ws
        self.id = session_id
        self.options = options
        self.request = request
        self.pipeline = SessionPipeline(state.engines, options, session_id=session_id, observer=state.metrics)
        self.log = SessionLog(log, {"session": session_id})
        settings = state.settings
        self._loop = asyncio.get_running_loop()
        self.opened = self.last_activity = self._loop.time()
        #: When the sender began waiting for the socket (None: not waiting).
        self.send_blocked_since: float | None = None
        self.rate = TokenBucket(settings.limits.max_message_rate, settings.limits.message_burst)
        #: Why the server is closing this session (None: it is not, or the client closed it).
        self.closing: CloseReason | None = None
        self._closer: asyncio.Task[None] | None = None
        self._ready_sent = False
        #: What the binary frames hold (bridge/wire.py); the pipeline makes PCM either way.
        self.wire_format: WireFormat = options.format
        self.opus_framing: OpusFraming = "ogg"
        #: The Opus encoder while ``wire_format`` is opus (made in a worker thread when needed).
        self.wire: WireEncoder | None = None
        #: A format chosen during an utterance: (format, framing), applied when the next one starts.
        self._wire_next: tuple[WireFormat, OpusFraming] | None = None
        #: What the client received of the current utterance (for ``heard``).
        self.heard = HeardTracker(OUTPUT_SAMPLE_RATE)
        self.sender = asyncio.create_task(self._send_loop(), name=f"sender-{session_id}")

    # ------------------------------------------------------------------ state
    @property
    def active(self) -> bool:
        """Work in flight: text being synthesized, audio waiting or being sent."""
        return self.pipeline.busy or len(self.pipeline.output) > 0 or self.send_blocked_since is not None

    def buffered_bytes(self) -> dict[str, int]:
        """Bytes this session holds on the server: its output queue, the transport's buffer,
        the kernel's send queue."""
        transport = self.request.transport if self.request is not None else None
        writer = transport.get_write_buffer_size() if transport is not None else 0
        sock = transport.get_extra_info("socket") if transport is not None else None
        return {
            "queue": self.pipeline.output.audio_bytes,
            "transport": writer,
            "kernel": _kernel_unsent(sock) if sock is not None else 0,
        }

    def overdue(self, now: float) -> CloseReason | None:
        """A limit this session has run past at ``now`` (the janitor closes it), or None."""
        settings = self.state.settings
        if settings.limits.max_session_seconds and now - self.opened > settings.limits.max_session_seconds:
            return SESSION_TIME
        if self.send_blocked_since is not None and now - self.send_blocked_since > settings.limits.send_stall_seconds:
            return STALLED
        if (
            settings.limits.idle_timeout_seconds
            and now - self.last_activity > settings.limits.idle_timeout_seconds
            and not self.active
        ):
            return IDLE
        return None

    # ------------------------------------------------------------------ sending
    async def send_ready(self) -> None:
        if self._ready_sent:
            return
        self._ready_sent = True
        engines = self.state.engines
        settings = self.state.settings
        await self.ws.send_str(
            ready_event(
                session=self.id,
                version=__version__,
                sample_rate=OUTPUT_SAMPLE_RATE,
                channels=1,
                format=self.wire_format,
                **({"opus_framing": self.opus_framing, "opus_bitrate": settings.audio.opus_bitrate} if self.wire_format == "opus" else {}),
                frame_ms=settings.audio.frame_ms,
                tts=engines.tts.name,
                voice=self.options.voice,
                voices=engines.voices(),
                words=self.options.words,
                limits={
                    "max_message_bytes": settings.limits.max_message_bytes,
                    "max_token_chars": settings.limits.max_token_chars,
                    "max_buffered_chars": settings.limits.max_buffered_chars,
                    "max_message_rate": settings.limits.max_message_rate,
                    "message_burst": settings.limits.message_burst,
                    "max_utterance_seconds": settings.limits.max_utterance_seconds,
                },
            )
        )

    def choose_format(self, fmt: WireFormat | None = None, framing: OpusFraming | None = None) -> None:
        """Binary frames as ``fmt`` (``framing`` for Opus) from the next utterance on, or now if
        none is under way: the frames of one utterance never change format midway."""
        current_fmt, current_framing = self._wire_next or (self.wire_format, self.opus_framing)
        fmt = fmt or current_fmt
        self._wire_next = (fmt, framing or current_framing)
        self.options.format = fmt if is_pcm_format(fmt) else "f32le"  # Opus is encoded from full precision
        if not self.active:
            self._apply_format()

    def _apply_format(self) -> None:
        if self._wire_next is None:
            return
        chosen, self._wire_next = self._wire_next, None
        if chosen != (self.wire_format, self.opus_framing):
            self.wire_format, self.opus_framing = chosen
            self.wire = None  # a new encoder (a new Ogg stream) for the new choice

    async def _send_audio(self, item: AudioOut) -> None:
        if item.first_text is not None:  # an utterance starts: a format chosen during the last applies
            self._apply_format()
        if self.wire_format != "opus":
            await self._send(self.ws.send_bytes(item.data))
            return
        if self.wire is None:
            self.wire = await asyncio.to_thread(WireEncoder, self.opus_framing, self.state.settings.audio.opus_bitrate)
        for frame in await asyncio.to_thread(self.wire.encode, [(item.data, item.samples)]):
            await self._send(self.ws.send_bytes(frame))

    async def _end_audio(self) -> None:
        """An utterance ended: send its last, padded Opus frame."""
        if self.wire is not None:
            for frame in await asyncio.to_thread(self.wire.end_utterance):
                await self._send(self.ws.send_bytes(frame))

    async def _send(self, send: Awaitable[None]) -> None:
        self.send_blocked_since = self._loop.time()
        try:
            await send
        finally:
            self.send_blocked_since = None
            self.last_activity = self._loop.time()

    async def _send_loop(self) -> None:
        ws = self.ws
        metrics = self.state.metrics
        try:
            while not ws.closed:
                item = await self.pipeline.next_output()
                if isinstance(item, AudioOut):
                    await self._send_audio(item)
                    self.heard.audio(item.samples)
                    if item.first_text is not None:
                        metrics.observe_ftts(time.perf_counter() - item.first_text)
                    continue
                if isinstance(item, WordsOut):
                    self.heard.words(item.words)
                    if self.options.words:
                        words = [word.as_json() for word in item.words]
                        await self._send(ws.send_str(words_event(item.segment, words)))
                    continue
                heard: dict[str, object] = {}
                if isinstance(item, FlushedOut | CancelledOut):
                    if self.options.times_words and (isinstance(item, CancelledOut) or item.cut):
                        played = item.played_seconds if isinstance(item, CancelledOut) else None
                        heard = self.heard.report(played)
                    if isinstance(item, FlushedOut) and not item.cut:
                        self.heard.finish()  # the client may still be playing it
                    else:
                        self.heard.reset()
                if isinstance(item, FlushedOut):
                    metrics.observe_utterance(item.stats)
                    await self._end_audio()
                elif isinstance(item, CancelledOut) and self.wire is not None:
                    self.wire.drop_pending()
                if isinstance(item, ErrorOut):
                    await self._send(ws.send_str(error_frame(item.message)))
                elif not self.options.events and not (self.options.words and isinstance(item, CancelledOut)):
                    continue  # seed-compatible clients get audio and errors only
                elif isinstance(item, SegmentOut):
                    await self._send(ws.send_str(segment_event(item.id, item.text, item.token, item.notes)))
                elif isinstance(item, FlushedOut):
                    await self._send(
                        ws.send_str(
                            flushed_event(
                                segments=item.segments, audio_seconds=item.audio_seconds, stats=item.stats, **heard
                            )
                        )
                    )
                elif isinstance(item, CancelledOut):
                    await self._send(ws.send_str(cancelled_event(**heard)))
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away; the receive loop ends the session
        except Exception:
            self.log.exception("sender failed")
            metrics.error("send")
            self.terminate(INTERNAL)

    # ------------------------------------------------------------------ receiving
    async def report_error(self, message: str, kind: str = "protocol") -> None:
        self.state.metrics.error(kind)
        if self.pipeline.output.errors >= MAX_PENDING_ERRORS:
            self.state.metrics.error_frames_dropped.inc()  # the client is not reading them
            return
        await self.pipeline.output.put_urgent(ErrorOut(message, kind))

    async def receive(self, msg: Any) -> CloseReason | None:
        """Handle one WebSocket message; the reason to close the session, if it must end."""
        self.last_activity = self._loop.time()
        self.state.metrics.messages.inc()
        if not self.rate.take():
            return RATE
        try:
            if msg.type == WSMsgType.TEXT:
                return await self.handle_text(msg.data)
            if msg.type == WSMsgType.BINARY:
                await self.report_error("binary frames are not accepted: send JSON text frames", "binary")
        except Exception as exc:  # a bug handling one message must not end the session
            self.log.exception("message handling failed")
            await self.report_error(f"internal error ({type(exc).__name__})", "internal")
        return None

    async def handle_text(self, data: str) -> CloseReason | None:
        settings = self.state.settings
        try:
            message = parse_client_message(data, max_token_chars=settings.limits.max_token_chars)
        except ProtocolError as exc:
            await self.report_error(str(exc), exc.kind)
            return None
        if isinstance(message, TokenMessage):
            buffered = self.pipeline.buffered_chars + len(message.token)
            if buffered > settings.limits.max_buffered_chars:
                return buffered_text(buffered, settings.limits.max_buffered_chars)
            self.pipeline.feed(message.token, message.pitch_shift)
            if message.flush:
                self.pipeline.flush()
        elif isinstance(message, FlushMessage):
            self.pipeline.flush()
        elif isinstance(message, CancelMessage):
            await self.pipeline.cancel(message.played_seconds)
        elif isinstance(message, ConfigMessage):
            await self._configure(message)
        return None

    async def _configure(self, message: ConfigMessage) -> None:
        """Apply a config message. A bad voice is reported and keeps the current voice; the
        message's other fields still take effect (nothing else is lost)."""
        if message.voice is not None:
            voice = message.voice or None
            problem = self._unknown_voice(voice) if voice is not None else None
            if problem is not None and message.events and not self._ready_sent:
                # The first config of a session: its error must come before `ready`, so that
                # a client waiting for `ready` knows its voice was refused.
                self.state.metrics.error("unknown_voice")
                await self.ws.send_str(error_frame(problem))
            elif problem is not None:
                await self.report_error(problem, "unknown_voice")
            else:
                self.options.voice = voice
        if message.pitch_shift is not None:
            self.pipeline.feed("", message.pitch_shift)
        if message.format is not None or message.opus_framing is not None:
            self.choose_format(message.format, message.opus_framing)
        if message.words is not None:
            self.options.words = message.words
        if message.events is not None:
            self.options.events = message.events
            if message.events:
                await self.send_ready()

    def _unknown_voice(self, voice: str) -> str | None:
        available = self.state.engines.voices()
        if not available:
            return f"unknown voice {voice!r}: no voice conversion voices are installed"
        if voice not in available:
            return f"unknown voice {voice!r}; available: {', '.join(available)}"
        return None

    # ------------------------------------------------------------------ closing
    def terminate(self, reason: CloseReason) -> None:
        """Close this session from outside its receive loop (janitor, sender, shutdown)."""
        if self.closing is None:
            self.closing = reason
            self._closer = asyncio.create_task(self.close_socket(reason), name=f"close-{self.id}")

    async def close_socket(self, reason: CloseReason) -> None:
        """Send the close frame with ``reason``, wait for the reply a little, then drop the
        connection if anything is still stuck in it (a client that does not read)."""
        self.closing = self.closing or reason
        timeout = 0.5 if reason is STALLED else CLOSE_TIMEOUT
        try:
            await asyncio.wait_for(self.ws.close(code=reason.code, message=reason.reason.encode()), timeout)
        except (TimeoutError, asyncio.TimeoutError, ConnectionError):
            pass
        self.abort_if_stuck(force=reason is STALLED)

    def abort_if_stuck(self, force: bool = False) -> None:
        """Abort the TCP connection if unsent data would keep it open (a peer that reads nothing)."""
        transport = self.request.transport if self.request is not None else None
        if transport is not None and (force or transport.get_write_buffer_size() > 0):
            transport.abort()

    async def close(self) -> None:
        if self.heard.active and self.options.times_words:
            self.log.info("session closed mid-utterance", extra=self.heard.report())
        await self.pipeline.close()
        self.sender.cancel()
        try:
            await self.sender
        except asyncio.CancelledError:
            pass
        if self._closer is not None and asyncio.current_task() is not self._closer:
            try:
                await asyncio.wait_for(asyncio.shield(self._closer), CLOSE_TIMEOUT)
            except (TimeoutError, asyncio.TimeoutError):
                self.abort_if_stuck(force=True)


# ----------------------------------------------------------------------------- handlers
