"""OpenAI's speech API on the bridge: ``POST /v1/audio/speech``, ``GET /v1/audio/voices``, ``GET /v1/models``.

What Open WebUI, SillyTavern, LibreChat and every ``openai`` SDK call speak. A request is one
utterance through the same :class:`~bridge.pipeline.SessionPipeline` as a WebSocket session
(same engines, voices, limits), admitted like ``/api/speak`` and behind the same API keys
(``Authorization: Bearer``, which is what the SDK sends). The audio is streamed as it is made:
the first bytes leave after the first segment is spoken, not after the whole input.

Fields (OpenAI's): ``model`` (one of ``openai_models``), ``input`` (up to
``openai_max_input_chars``), ``voice`` (this server's voices; OpenAI's names map through
``openai_voice_map`` or to the default voice), ``response_format`` (mp3, opus, aac, flac, wav,
pcm = 24 kHz s16le), ``speed`` 0.25–4 (the engine's own rate where it has one: Piper's length
scale; other engines ignore it), ``instructions`` (accepted and ignored: the engines here take
no style prompt), ``stream_format`` ``audio`` (chunked bytes) or ``sse``
(``speech.audio.delta`` events with base64 audio, then ``speech.audio.done``).

Errors have OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, with the HTTP
status OpenAI would use; nothing else is affected. Encoding runs in worker threads.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any, Literal

import numpy as np
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bridge.audio.encode import SPEECH_SPECS, Encoder, speech_encoder
from bridge.audio.formats import decode_pcm
from bridge.batches import output_batches
from bridge.logs import current_session
from bridge.pipeline import AudioOut, ErrorOut, FlushedOut, SessionOptions, SessionPipeline
from bridge.session import STATE, ServerState

log = logging.getLogger(__name__)

#: OpenAI's built-in voice names: accepted, mapped by ``openai_voice_map`` or to the default voice.
OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin", "cedar",
)  # fmt: skip
#: What a client may name to get the server's default voice.
DEFAULT_VOICE_NAME = "default"


class SpeechRequest(BaseModel):
    """Body of ``POST /v1/audio/speech`` (OpenAI's ``SpeechCreateParams``)."""

    # Unknown fields are ignored, as OpenAI-compatible servers do: clients add their own.
    model_config = ConfigDict(extra="ignore")

    model: str
    input: str
    voice: str | dict[str, Any]
    instructions: str | None = None
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0, allow_inf_nan=False)
    stream_format: Literal["audio", "sse"] = "audio"

    @field_validator("voice")
    @classmethod
    def _voice_name(cls, value: str | dict[str, Any]) -> str:
        if isinstance(value, dict):  # {"id": "..."} (custom voices in newer SDKs)
            value = value.get("id")
            if not isinstance(value, str):
                raise ValueError('voice must be a name or {"id": name}')
        return value


def openai_error(
    status: int, message: str, *, param: str | None = None, code: str | None = None, kind: str | None = None
) -> web.Response:
    """A JSON error in OpenAI's shape."""
    if kind is None:
        kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status)


def voice_names(state: ServerState) -> list[str]:
    """The voices this server speaks with: the default (the bare TTS voice unless
    ``default_voice`` names an RVC voice) and each RVC voice."""
    return [DEFAULT_VOICE_NAME, state.engines.tts.name, *state.engines.voices()]


def resolve_voice(state: ServerState, name: str) -> tuple[str | None, str | None]:
    """(the session's voice, None) or (None, what is wrong). ``None`` as the voice: the default."""
    settings = state.settings
    rvc = state.engines.voices()
    target = settings.openai.voice_map.get(name, name)
    if target in rvc:
        return target, None
    if target in (DEFAULT_VOICE_NAME, state.engines.tts.name) or target in OPENAI_VOICES:
        return None, None
    return None, f"unknown voice {name!r}; available: {', '.join(voice_names(state))}"


async def list_models(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "voice-bridge"} for name in state.settings.openai.models]
    return web.json_response({"object": "list", "data": data})


async def list_voices(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"voices": [{"id": name, "name": name} for name in voice_names(state)]})


def _validation_error(exc: ValidationError) -> web.Response:
    first = exc.errors(include_url=False)[0]
    param = ".".join(str(p) for p in first["loc"]) or None
    message = f"{param}: {first['msg']}" if param else first["msg"]
    return openai_error(400, message[:300], param=param, code="invalid_value" if first["type"] != "missing" else "missing")


async def _parse(request: web.Request, state: ServerState) -> SpeechRequest | web.Response:
    try:
        raw = await request.json()
    except web.HTTPRequestEntityTooLarge:
        return openai_error(413, f"request body too large (limit {state.settings.limits.max_message_bytes} bytes)")
    except (ValueError, RecursionError) as exc:
        return openai_error(400, f"invalid JSON body: {exc}"[:300])
    if not isinstance(raw, dict):
        return openai_error(400, "the body must be a JSON object")
    try:
        body = SpeechRequest.model_validate(raw)
    except ValidationError as exc:
        return _validation_error(exc)
    settings = state.settings
    if body.model not in settings.openai.models:
        return openai_error(
            400,
            f"unknown model {body.model[:100]!r}; available: {', '.join(settings.openai.models)}",
            param="model",
            code="model_not_found",
        )
    if not body.input.strip():
        return openai_error(400, "input is empty", param="input", code="invalid_value")
    if len(body.input) > settings.openai.max_input_chars:
        return openai_error(
            400,
            f"input is {len(body.input)} characters; the limit is {settings.openai.max_input_chars}",
            param="input",
            code="string_above_max_length",
        )
    try:
        body.input.encode("utf-8")
    except UnicodeEncodeError:
        return openai_error(400, "input must be valid Unicode text", param="input", code="invalid_value")
    return body


async def create_speech(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    parsed = await _parse(request, state)
    if isinstance(parsed, web.Response):
        return parsed
    voice, problem = resolve_voice(state, parsed.voice)
    if problem is not None:
        return openai_error(400, problem[:300], param="voice", code="invalid_value")
    if not state.engines.loaded:
        return openai_error(503, "the engines are still loading; try again shortly", code="engines_loading")
    peer = state.client_of(request)
    refusal = state.admission.admit(peer)
    if refusal is not None:
        state.metrics.refused.labels(refusal.kind).inc()
        status = 429 if refusal.kind == "per_ip" else 503
        response = openai_error(status, refusal.reason, code=refusal.kind, kind="rate_limit_error" if status == 429 else None)
        response.headers["Retry-After"] = "1"
        return response
    context = current_session.set(f"openai{next(state.session_ids)}")
    try:
        return await _speak(request, state, parsed, voice)
    finally:
        state.admission.release(peer)
        current_session.reset(context)


def _encode_batch(encoder: Encoder, chunks: list[bytes], last: bool) -> bytes:
    """Worker thread: PCM frames (f32le) → encoded bytes; ``last`` ends the stream."""
    data = encoder.push(np.concatenate([decode_pcm(c, "f32le") for c in chunks])) if chunks else b""
    return data + encoder.finish() if last else data


class _Writer:
    """Writes encoded bytes as chunked audio or as SSE events; prepares the response lazily."""

    def __init__(self, request: web.Request, body: SpeechRequest) -> None:
        self.request = request
        self.sse = body.stream_format == "sse"
        self.response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream" if self.sse else SPEECH_SPECS[body.response_format].content_type,
                "Cache-Control": "no-cache",
            }
        )
        self.bytes_out = 0

    async def prepare(self) -> None:
        if not self.response.prepared:
            await self.response.prepare(self.request)

    async def audio(self, data: bytes) -> None:
        if not data:
            return
        await self.prepare()
        self.bytes_out += len(data)
        if self.sse:
            event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")}
            await self.response.write(f"data: {json.dumps(event)}\n\n".encode())
        else:
            await self.response.write(data)

    async def done(self, input_chars: int) -> None:
        await self.prepare()
        if self.sse:
            # No tokenizer here: input_tokens counts the input's characters.
            usage = {"input_tokens": input_chars, "output_tokens": 0, "total_tokens": input_chars}
            await self.response.write(f"data: {json.dumps({'type': 'speech.audio.done', 'usage': usage})}\n\n".encode())
        await self.response.write_eof()


async def _speak(request: web.Request, state: ServerState, body: SpeechRequest, voice: str | None) -> web.StreamResponse:
    settings = state.settings
    encoder = await asyncio.to_thread(speech_encoder, body.response_format, opus_bitrate=settings.audio.opus_bitrate)
    pipeline = SessionPipeline(
        state.engines,
        SessionOptions(voice=voice, speed=body.speed),
        session_id=current_session.get() or "openai",
        observer=state.metrics,
        max_utterance_seconds=settings.limits.max_utterance_seconds,
    )
    writer = _Writer(request, body)
    errors: list[str] = []
    audio_samples = 0
    try:
        pipeline.feed(body.input)
        pipeline.flush()
        async for batch in output_batches(pipeline):
            chunks = [item.data for item in batch if isinstance(item, AudioOut)]
            audio_samples += sum(item.samples for item in batch if isinstance(item, AudioOut))
            errors.extend(item.message for item in batch if isinstance(item, ErrorOut))
            flushed = next((item for item in batch if isinstance(item, FlushedOut)), None)
            if flushed is not None and audio_samples == 0 and errors:
                # Nothing could be spoken: an error the client can read, not an empty file.
                return openai_error(500, "; ".join(errors)[:300], code="synthesis_failed")
            data = await asyncio.to_thread(_encode_batch, encoder, chunks, flushed is not None)
            await writer.audio(data)
            if flushed is not None:
                state.metrics.observe_utterance(flushed.stats)
        if errors:
            log.warning("speech request had errors", extra={"errors": "; ".join(errors)[:300]})
        await writer.done(len(body.input))
        return writer.response
    except ConnectionError:
        log.info("speech request abandoned by the client", extra={"bytes": writer.bytes_out})
        return writer.response
    finally:
        await pipeline.close()


def add_routes(app: web.Application) -> None:
    """Mount the OpenAI-compatible routes."""
    app.router.add_post("/v1/audio/speech", create_speech)
    app.router.add_get("/v1/audio/voices", list_voices)
    app.router.add_get("/v1/models", list_models)
