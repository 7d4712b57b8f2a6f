"""The wire protocol of ``/ws/stream``, with no I/O: parse client frames, build server frames.

Seed-compatible core (what existing clients send and expect):

* client → ``{"token": "Hello", "pitch_shift": 0}`` appends text; ``{"flush": true}`` speaks
  everything buffered now;
* server → binary frames of 48 kHz mono PCM (float32 LE by default) and ``{"error": "..."}``
  text frames, nothing else.

Opt-in extensions: ``{"type": "config", ...}`` (events, words, voice, pitch_shift, PCM or Opus
format), ``{"type": "cancel", "played_seconds"?: s}`` / ``{"interrupt": true}``, and, only when
events are on, the ``ready`` / ``segment`` / ``flushed`` / ``cancelled`` events; only when words
are on (``{"type": "config", "words": true}`` or ``?words=1``), ``words`` events (each before
the audio it times). ``cancelled`` (and a ``flushed`` the utterance limit cut short) say what was
heard: ``heard`` and ``heard_seconds``.

Every malformed frame becomes a :class:`ProtocolError` whose message is sent back as an
``error`` frame; the session goes on. :func:`parse_client_message` raises nothing else, whatever
the input (property-tested with hypothesis), and its messages are short and valid UTF-8.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from bridge.audio.formats import OpusFraming, WireFormat

PITCH_SHIFT_LIMIT = 24.0



#: Longest error message sent back (messages quote bits of the input).
MAX_ERROR_CHARS = 300


class ProtocolError(ValueError):
    """A client frame the server cannot accept. ``str(error)`` is what the client is told.

    ``kind`` labels the error metric: ``protocol`` (malformed) or ``token_too_long``.
    """

    def __init__(self, message: str, kind: str = "protocol") -> None:
        if len(message) > MAX_ERROR_CHARS:
            message = message[: MAX_ERROR_CHARS - 1] + "…"
        super().__init__(message)
        self.kind = kind


def _unicode_text(value: str | None) -> str | None:
    """Refuse strings that cannot be encoded as UTF-8 (lone surrogates from ``\\ud800`` escapes)."""
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (it has a lone surrogate)") from None
    return value


def _a_number(value: Any) -> Any:
    """JSON ``true`` is not a number of semitones, nor is a string."""
    if isinstance(value, bool) or (value is not None and not isinstance(value, int | float)):
        raise ValueError("pitch_shift must be a number")
    return value


def _finite_pitch(value: float | None) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value):
        raise ValueError("pitch_shift must be a finite number")
    if abs(value) > PITCH_SHIFT_LIMIT:
        raise ValueError(f"pitch_shift must be between -{PITCH_SHIFT_LIMIT:g} and {PITCH_SHIFT_LIMIT:g} semitones")
    return float(value)


#: Semitones, −24…24, finite; absent means "keep the current value".
PitchShift = Annotated[float | None, BeforeValidator(_a_number), AfterValidator(_finite_pitch)]
#: Text from the client: valid Unicode (no lone surrogates).
UnicodeText = Annotated[StrictStr, AfterValidator(_unicode_text)]


class _Message(BaseModel):
    # Unknown fields are ignored: newer clients may send more than this server knows.
    model_config = ConfigDict(extra="ignore", frozen=True)


class TokenMessage(_Message):
    """Text to append. ``flush`` in the same message speaks it right away."""

    token: UnicodeText
    pitch_shift: PitchShift = None
    flush: StrictBool = False


class FlushMessage(_Message):
    flush: Literal[True]


def _a_position(value: Any) -> Any:
    """``played_seconds``: absent, or a finite number of seconds, 0 or more."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("played_seconds must be a number")
    try:
        seconds = float(value)
    except OverflowError:  # an integer too large for a float
        seconds = math.inf
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("played_seconds must be a finite number of seconds, 0 or more")
    return seconds


class CancelMessage(_Message):
    """Drop buffered text and all audio not yet sent, now. ``played_seconds``: how much of the
    utterance's audio the client has played (its buffer held the rest): what was heard is cut
    there."""

    played_seconds: Annotated[float | None, BeforeValidator(_a_position)] = None


class ConfigMessage(_Message):
    """Per-session options; fields left out keep their current value."""

    type: Literal["config"]
    events: StrictBool | None = None
    #: Word timing events (``words``) for the segments from now on.
    words: StrictBool | None = None
    voice: Annotated[UnicodeText, Field(max_length=200)] | None = None
    pitch_shift: PitchShift = None
    format: WireFormat | None = None
    #: With ``format: "opus"``: ``ogg`` (Ogg Opus pages) or ``raw`` (one 20 ms packet per frame).
    opus_framing: OpusFraming | None = None


ClientMessage = TokenMessage | FlushMessage | CancelMessage | ConfigMessage

_KNOWN_TYPES = ("config", "cancel", "token", "flush")


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "message"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_client_message(data: str, *, max_token_chars: int | None = None) -> ClientMessage:
    """One text frame → one message, or :class:`ProtocolError` saying what is wrong.

    ``max_token_chars``: a longer token is refused (kind ``token_too_long``).
    """
    message = _parse(data)
    if max_token_chars is not None and isinstance(message, TokenMessage) and len(message.token) > max_token_chars:
        raise ProtocolError(
            f"token too long: {len(message.token)} characters (limit {max_token_chars}); send text in smaller pieces",
            kind="token_too_long",
        )
    return message


def _parse(data: str) -> ClientMessage:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, and int() past its digit limit
        raise ProtocolError(f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("expected a JSON object")
    kind = obj.get("type")
    try:
        if kind is not None:
            if not isinstance(kind, str):
                raise ProtocolError("type must be a string")
            if kind == "config":
                return ConfigMessage.model_validate(obj)
            if kind == "cancel":
                return CancelMessage.model_validate(obj)
            if kind == "token":
                return TokenMessage.model_validate(obj)
            if kind == "flush":
                return FlushMessage(flush=True)
            raise ProtocolError(f"unknown message type {kind[:40]!r} (known: {', '.join(_KNOWN_TYPES)})")
        if "token" in obj:
            return TokenMessage.model_validate(obj)
        if obj.get("interrupt") is True:
            return CancelMessage.model_validate(obj)
        if "flush" in obj:
            if obj["flush"] is True:
                return FlushMessage(flush=True)
            raise ProtocolError("flush must be true")
    except ValidationError as exc:
        raise ProtocolError(_describe(exc)) from None
    raise ProtocolError('expected {"token": ...}, {"flush": true} or {"type": "config" | "cancel"}')


# --------------------------------------------------------------------------- server → client
def _dump(obj: dict[str, Any]) -> str:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escape it rather than fail to send
        text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"))
    return text


def error_frame(message: str) -> str:
    """Sent for every bad input, events or not (the seed's clients know this frame)."""
    return _dump({"type": "error", "error": message})


def ready_event(**fields: Any) -> str:
    return _dump({"type": "ready", **fields})


def segment_event(
    segment_id: int, text: str, token: int | None = None, notes: dict[str, Any] | None = None
) -> str:
    """``token``: index (1-based) of the utterance's token that completed the segment, if any.
    ``text`` is the segment as written; ``notes`` adds ``transliterated`` (``[{"text", "as"}]``)
    and ``skipped`` (``[{"text"}]``) when text in a script the voice cannot read was romanized or
    left out."""
    event: dict[str, Any] = {"type": "segment", "id": segment_id, "text": text}
    if token is not None:
        event["token"] = token
    if notes:
        event.update(notes)
    return _dump(event)


def words_event(segment_id: int, words: list[dict[str, Any]]) -> str:
    """``{"type": "words", "segment": n, "words": [{"text", "start", "end", "estimated"?}, …]}``:
    seconds from the first sample of the utterance's audio (``WordTime.as_json``)."""
    return _dump({"type": "words", "segment": segment_id, "words": words})


def flushed_event(**fields: Any) -> str:
    return _dump({"type": "flushed", **fields})


def cancelled_event(**fields: Any) -> str:
    """``fields``: ``heard`` (text) and ``heard_seconds`` when words were timed."""
    return _dump({"type": "cancelled", **fields})
