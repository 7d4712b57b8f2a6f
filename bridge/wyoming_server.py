"""Wyoming, Home Assistant's voice protocol: the bridge as a streaming TTS service on TCP.

``voice-bridge serve --wyoming-port 10200`` (off by default: ``wyoming_port``). Events are the
``wyoming`` package's own (``wyoming.info``, ``wyoming.tts``, ``wyoming.audio``, ``wyoming.error``),
served with its :class:`~wyoming.server.AsyncTcpServer` and :class:`~wyoming.server.AsyncEventHandler`:

* ``describe`` → ``info``: one TTS program with this server's voices (as ``/v1/audio/voices``)
  and ``supports_synthesize_streaming: true``;
* ``synthesize {text, voice?}`` → ``audio-start``, ``audio-chunk``s (48 kHz s16le mono), ``audio-stop``;
* ``synthesize-start {voice?}``, ``synthesize-chunk {text}`` × N, ``synthesize-stop`` → audio
  as each segment of the arriving text is spoken (one ``audio-start`` … ``audio-stop``), then
  ``synthesize-stopped``; the full ``synthesize`` a streaming client also sends for older servers
  is ignored while a stream is open.

Every request runs through a :class:`~bridge.pipeline.SessionPipeline` on the shared engines and
is admitted like a WebSocket session (``max_sessions``, ``max_connections_per_ip``); text limits
are ``max_token_chars`` per chunk and ``max_buffered_chars`` per request, events larger than
``max_message_bytes`` are refused. Bad input gets an ``error`` event (``text``, ``code``) and the
connection goes on, except for a line that is not an event at all (the stream's framing is
lost: error, then close). Wyoming has no authentication: listen where only trusted hosts (Home
Assistant) can reach the port.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler, AsyncTcpServer
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from bridge import __version__
from bridge.batches import output_batches
from bridge.config import OUTPUT_SAMPLE_RATE
from bridge.logs import SessionLog
from bridge.openai_speech import resolve_voice, voice_names
from bridge.pipeline import AudioOut, ErrorOut, FlushedOut, SessionOptions, SessionPipeline
from bridge.session import ServerState

log = logging.getLogger(__name__)

ATTRIBUTION = Attribution(name="voice-bridge", url="https://github.com/voice-bridge/voice-bridge")
#: Language the voices report (the embedded Piper voice is US English).
LANGUAGES = ["en_US"]
#: 16-bit mono PCM at the bridge's output rate.
AUDIO_FORMAT = {"rate": OUTPUT_SAMPLE_RATE, "width": 2, "channels": 1}


def describe(state: ServerState) -> Info:
    """The ``info`` event: one TTS program, this server's voices, streaming supported."""
    voices = [
        TtsVoice(
            name=name,
            attribution=ATTRIBUTION,
            installed=True,
            description=f"voice-bridge voice {name}",
            version=__version__,
            languages=LANGUAGES,
        )
        for name in voice_names(state)
    ]
    program = TtsProgram(
        name="voice-bridge",
        attribution=ATTRIBUTION,
        installed=True,
        description="LLM text to a character's voice, streamed (voice-bridge)",
        version=__version__,
        voices=voices,
        supports_synthesize_streaming=True,
    )
    return Info(tts=[program])


class BadEvent(ValueError):
    """A line that is not a Wyoming event, or one over the size limit; ``code`` for the error event."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


async def read_event(reader: asyncio.StreamReader, max_bytes: int) -> Event | None:
    """One event (JSON header line, ``data_length`` bytes of JSON, ``payload_length`` bytes),
    None at the end of the stream; :class:`BadEvent` for anything malformed or too large."""
    try:
        line = await reader.readline()
    except ValueError:  # longer than the reader's line limit
        raise BadEvent("event header line too long", "too_large") from None
    if not line:
        return None
    try:
        header = json.loads(line)
    except (ValueError, RecursionError):
        raise BadEvent("not a Wyoming event: expected one JSON object per line", "invalid_event") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise BadEvent("not a Wyoming event: the header needs a string 'type'", "invalid_event")
    data = header.get("data") or {}
    lengths = [header.get("data_length") or 0, header.get("payload_length") or 0]
    if not isinstance(data, dict) or not all(isinstance(n, int) and n >= 0 for n in lengths):
        raise BadEvent("bad 'data', 'data_length' or 'payload_length'", "invalid_event")
    if sum(lengths) > max_bytes:
        raise BadEvent(f"event too large ({sum(lengths)} bytes; limit {max_bytes})", "too_large")
    data_length, payload_length = lengths
    try:
        if data_length:
            extra = json.loads(await reader.readexactly(data_length))
            if not isinstance(extra, dict):
                raise BadEvent("event data must be a JSON object", "invalid_event")
            data = {**data, **extra}
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None
    except (ValueError, RecursionError):
        raise BadEvent("event data is not valid JSON", "invalid_event") from None
    return Event(type=header["type"], data=data, payload=payload)


@dataclass
class _Request:
    """One synthesis (plain or streamed) on a connection."""

    pipeline: SessionPipeline | None
    streaming: bool
    chars: int = 0
    sender: asyncio.Task[None] | None = field(default=None, repr=False)


class WyomingHandler(AsyncEventHandler):
    """One Wyoming connection (Home Assistant opens one per synthesis)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: ServerState, number: int) -> None:
        super().__init__(reader, writer)
        self.state = state
        peer = writer.get_extra_info("peername")
        self.peer: str | None = peer[0] if isinstance(peer, tuple) else None
        self.id = f"wyoming{number}"
        self.log = SessionLog(log, {"session": self.id})
        self._request: _Request | None = None

    # ------------------------------------------------------------------ connection
    async def run(self) -> None:
        """As the package's loop, but reading with size limits, and answering a malformed
        event with an ``error`` event (then closing: the stream's framing is lost)."""
        self._is_running = True
        try:
            while self._is_running:
                try:
                    event = await read_event(self.reader, self.state.settings.limits.max_message_bytes)
                except BadEvent as exc:
                    self.log.info("bad wyoming event", extra={"error": str(exc)})
                    await self.error(str(exc), exc.code)
                    break
                if event is None or not await self.handle_event(event):
                    break
        except ConnectionError:
            pass
        finally:
            await self.disconnect()
            self.writer.close()

    async def disconnect(self) -> None:
        await self._end_request()

    async def error(self, text: str, code: str) -> None:
        self.state.metrics.error(f"wyoming_{code}")
        try:
            await self.write_event(Error(text=text[:300], code=code).event())
        except ConnectionError:
            pass

    # ------------------------------------------------------------------ events
    async def handle_event(self, event: Event) -> bool:
        try:
            return await self._handle(event)
        except (KeyError, TypeError, ValueError) as exc:  # a known event with bad fields
            await self.error(f"bad {event.type} event: {type(exc).__name__}: {exc}", "invalid_event")
            return True

    async def _handle(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(describe(self.state).event())
        elif Ping.is_type(event.type):
            await self.write_event(Pong(text=Ping.from_event(event).text).event())
        elif SynthesizeStart.is_type(event.type):
            await self._start_stream(SynthesizeStart.from_event(event).voice)
        elif SynthesizeChunk.is_type(event.type):
            await self._stream_text(_text(event))
        elif SynthesizeStop.is_type(event.type):
            await self._stop_stream()
        elif Synthesize.is_type(event.type):
            synthesize = Synthesize(text=_text(event), voice=SynthesizeVoice.from_dict(event.data.get("voice") or {}))
            if self._request is not None and self._request.streaming:
                return True  # the copy of the streamed text sent for servers without streaming
            await self._synthesize(synthesize)
        # Other events (ASR, wake, …) are for other services: ignored, as Wyoming servers do.
        return True

    def _open(self, voice: SynthesizeVoice | None, streaming: bool) -> _Request | str:
        """Admit a request and open its pipeline; what is wrong, if it cannot start."""
        name = voice.name if voice is not None else None
        session_voice = None
        if name:
            session_voice, problem = resolve_voice(self.state, name)
            if problem is not None:
                return problem
        refusal = self.state.admission.admit(self.peer)
        if refusal is not None:
            self.state.metrics.refused.labels(refusal.kind).inc()
            return refusal.reason
        settings = self.state.settings
        pipeline = SessionPipeline(
            self.state.engines,
            SessionOptions(voice=session_voice, format="s16le"),
            session_id=self.id,
            observer=self.state.metrics,
            max_utterance_seconds=settings.limits.max_utterance_seconds,
        )
        return _Request(pipeline, streaming)

    async def _end_request(self) -> None:
        request, self._request = self._request, None
        if request is None or request.pipeline is None:
            return
        if request.sender is not None and not request.sender.done():
            request.sender.cancel()
            try:
                await request.sender
            except (asyncio.CancelledError, ConnectionError):
                pass
        await request.pipeline.close()
        self.state.admission.release(self.peer)

    async def _synthesize(self, synthesize: Synthesize) -> None:
        text = synthesize.text
        if not text.strip():
            await self.error("synthesize needs text", "empty_text")
            return
        if len(text) > self.state.settings.limits.max_buffered_chars:
            await self.error(f"text too long: {len(text)} characters (limit {self.state.settings.limits.max_buffered_chars})", "text_too_long")
            return
        request = self._open(synthesize.voice, streaming=False)
        if isinstance(request, str):
            await self.error(request, "refused")
            return
        self._request = request
        try:
            assert request.pipeline is not None
            request.pipeline.feed(text)
            request.pipeline.flush()
            await self._send_audio(request.pipeline, stopped=False)
        finally:
            await self._end_request()

    async def _start_stream(self, voice: SynthesizeVoice | None) -> None:
        if self._request is not None:
            await self.error("a synthesis is already open on this connection", "already_streaming")
            return
        request = self._open(voice, streaming=True)
        if isinstance(request, str):
            await self.error(request, "refused")
            # Keep the stream's shape: its chunks are ignored, its stop answered.
            self._request = _Request(None, streaming=True)
            return
        assert request.pipeline is not None
        request.sender = asyncio.create_task(self._send_audio(request.pipeline, stopped=True), name=f"{self.id}-sender")
        self._request = request

    async def _stream_text(self, text: str) -> None:
        request = self._request
        if request is None or not request.streaming:
            await self.error("synthesize-chunk outside synthesize-start … synthesize-stop", "not_streaming")
            return
        if request.pipeline is None:
            return
        settings = self.state.settings
        if len(text) > settings.limits.max_token_chars:
            await self.error(f"chunk too long: {len(text)} characters (limit {settings.limits.max_token_chars})", "token_too_long")
            return
        if request.chars + len(text) > settings.limits.max_buffered_chars:
            await self.error(f"too much text in one request (limit {settings.limits.max_buffered_chars} characters)", "text_too_long")
            return
        request.chars += len(text)
        request.pipeline.feed(text)

    async def _stop_stream(self) -> None:
        request = self._request
        if request is None or not request.streaming:
            await self.error("synthesize-stop without synthesize-start", "not_streaming")
            return
        if request.pipeline is None or request.sender is None:
            self._request = None
            await self.write_event(SynthesizeStopped().event())
            return
        request.pipeline.flush()
        try:
            await request.sender
        finally:
            await self._end_request()

    async def _send_audio(self, pipeline: SessionPipeline, *, stopped: bool) -> None:
        """The pipeline's audio as ``audio-start`` / ``audio-chunk``s / ``audio-stop`` up to the
        flush (then ``synthesize-stopped`` when streaming); its errors as ``error`` events."""
        started = False
        async for batch in output_batches(pipeline):
            audio = b"".join(item.data for item in batch if isinstance(item, AudioOut))
            if audio:
                if not started:
                    started = True
                    await self.write_event(AudioStart(**AUDIO_FORMAT).event())
                await self.write_event(AudioChunk(audio=audio, **AUDIO_FORMAT).event())
            for item in batch:
                if isinstance(item, ErrorOut):
                    await self.error(item.message, item.kind)
                elif isinstance(item, FlushedOut):
                    self.state.metrics.observe_utterance(item.stats)
        if not started:  # nothing to say (or every segment failed): still a well-formed reply
            await self.write_event(AudioStart(**AUDIO_FORMAT).event())
        await self.write_event(AudioStop().event())
        if stopped:
            await self.write_event(SynthesizeStopped().event())


def _text(event: Event) -> str:
    text = event.data["text"]
    if not isinstance(text, str):
        raise TypeError("text must be a string")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode") from None
    return text


class WyomingService:
    """The Wyoming listener of one server: started and stopped with the HTTP app."""

    def __init__(self, state: ServerState, host: str, port: int) -> None:
        self.state = state
        self.server = AsyncTcpServer(host, port)
        self._numbers = 0

    def _handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> WyomingHandler:
        self._numbers += 1
        return WyomingHandler(reader, writer, self.state, self._numbers)

    async def start(self) -> None:
        await self.server.start(self._handler)
        log.info("wyoming listening", extra={"url": f"tcp://{self.server.host}:{self.port}"})

    @property
    def port(self) -> int:
        """The port listened on (the one picked, when the setting says 0)."""
        listener: Any = getattr(self.server, "_server", None)
        sockets = listener.sockets if listener is not None else []
        return sockets[0].getsockname()[1] if sockets else self.server.port

    async def stop(self) -> None:
        await self.server.stop()
