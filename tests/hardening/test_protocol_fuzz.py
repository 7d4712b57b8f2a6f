"""Fuzzing the pure protocol parser: hypothesis properties, then a seeded mutation fuzzer.

Whatever a client sends, ``parse_client_message`` returns one message or raises
``ProtocolError`` with a short message that can be sent back as a valid UTF-8 ``error`` frame —
never any other exception. Valid messages round-trip.

Hypothesis explores structure (and shrinks failures) at a few milliseconds an example; the
mutation fuzzer (bit flips, splices, truncations, hostile values grafted into valid frames)
pushes tens of thousands of frames through in about a second (its generator is
tests/support/frame_fuzz.py, shared with the live-server fuzz).
"""

from __future__ import annotations

import json
import math
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.protocol import (
    MAX_ERROR_CHARS,
    PITCH_SHIFT_LIMIT,
    CancelMessage,
    ClientMessage,
    ConfigMessage,
    FlushMessage,
    ProtocolError,
    TokenMessage,
    error_frame,
    parse_client_message,
)
from tests.support.frame_fuzz import SEEDS, mutate

def fast(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
    )

#: Examples per hypothesis property, and frames of the mutation fuzzer.
COUNTS = {"text": 1000, "json": 400, "valid": 400, "numbers": 300, "bytes": 500}
MUTATED = 30_000
FUZZED = sum(COUNTS.values()) + MUTATED

KEYS = ["token", "flush", "type", "pitch_shift", "events", "voice", "format", "interrupt", "future"]
TYPES = ["config", "cancel", "token", "flush", "dance", "", "CONFIG"]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(TYPES + ["f32le", "s16le", "mp3"]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(KEYS), children, max_size=3),
    max_leaves=6,
)
message_like = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6)


def check(frame: str, max_token_chars: int | None = 64) -> ClientMessage | None:
    """The parser's contract for one frame; returns the message when it parsed."""
    try:
        message = parse_client_message(frame, max_token_chars=max_token_chars)
    except ProtocolError as exc:
        text = str(exc)
        assert text and len(text) <= MAX_ERROR_CHARS
        encoded = error_frame(text).encode("utf-8")  # sendable: no lone surrogates
        assert json.loads(encoded)["error"] == text or "\\ud" in json.dumps(text)
        return None
    assert isinstance(message, TokenMessage | FlushMessage | CancelMessage | ConfigMessage)
    if isinstance(message, TokenMessage):
        message.token.encode("utf-8")
        assert max_token_chars is None or len(message.token) <= max_token_chars
    pitch = getattr(message, "pitch_shift", None)
    if pitch is not None:
        assert math.isfinite(pitch) and abs(pitch) <= PITCH_SHIFT_LIMIT
    return message


@fast(COUNTS["text"])
@given(st.text(max_size=200))
def test_any_text_frame(frame: str) -> None:
    check(frame)


@fast(COUNTS["bytes"])
@given(st.binary(max_size=200))
def test_any_bytes_decoded_leniently(raw: bytes) -> None:
    # What a client could smuggle through a text frame's UTF-8 (surrogate escapes included).
    check(raw.decode("utf-8", "surrogateescape"))


@fast(COUNTS["json"])
@given(message_like)
def test_any_json_object(obj: dict) -> None:
    check(json.dumps(obj, allow_nan=True))


@fast(COUNTS["numbers"])
@given(
    st.one_of(
        st.integers(0, 6000).map(lambda digits: "-1" + "0" * digits),
        st.floats().map(repr),
        st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "true", '"12"', "[]"]),
        st.text(alphabet="0123456789.eE+-", min_size=1, max_size=30),
    ),
    st.sampled_from(["token", "config"]),
)
def test_hostile_numbers(number: str, kind: str) -> None:
    if kind == "token":
        frame = '{"token": "a", "pitch_shift": %s}' % number
    else:
        frame = '{"type": "config", "pitch_shift": %s}' % number
    check(frame)


@fast(COUNTS["valid"])
@given(
    st.one_of(
        st.builds(
            lambda t, p, f: {"token": t, **({"pitch_shift": p} if p is not None else {}), **({"flush": True} if f else {})},
            st.text(max_size=64),
            st.none() | st.floats(-PITCH_SHIFT_LIMIT, PITCH_SHIFT_LIMIT),
            st.booleans(),
        ),
        st.builds(
            lambda e, v, p, f: {"type": "config", "events": e, "voice": v, "pitch_shift": p, "format": f},
            st.none() | st.booleans(),
            st.none() | st.text(max_size=30),
            st.none() | st.integers(-24, 24),
            st.none() | st.sampled_from(["f32le", "s16le"]),
        ),
        st.just({"flush": True}),
        st.just({"type": "cancel"}),
        st.just({"interrupt": True}),
    )
)
def test_valid_messages_round_trip(obj: dict) -> None:
    surrogate = any(isinstance(v, str) and any("\ud800" <= c <= "\udfff" for c in v) for v in obj.values())
    message = check(json.dumps(obj))
    if surrogate:
        assert message is None  # refused with an error, never passed on to the engines
        return
    assert message is not None
    if "token" in obj:
        assert isinstance(message, TokenMessage) and message.token == obj["token"]
        assert message.flush == obj.get("flush", False)
        if "pitch_shift" in obj:
            assert message.pitch_shift == obj["pitch_shift"]
    elif obj.get("type") == "config":
        assert isinstance(message, ConfigMessage)
        assert (message.events, message.voice, message.format) == (obj["events"], obj["voice"], obj["format"])
    elif "flush" in obj:
        assert isinstance(message, FlushMessage)
    else:
        assert isinstance(message, CancelMessage)


def test_mutation_fuzzer() -> None:
    rng = random.Random(20261122)
    outcomes = {"message": 0, "error": 0}
    frame = SEEDS[0]
    for n in range(MUTATED):
        frame = mutate(rng, frame if n % 4 else rng.choice(SEEDS))
        if len(frame) > 4000:
            frame = rng.choice(SEEDS)
        outcomes["message" if check(frame) is not None else "error"] += 1
    # Both sides were exercised a lot: the fuzzer is not just producing garbage.
    assert outcomes["message"] > MUTATED // 20 and outcomes["error"] > MUTATED // 4, outcomes


def test_known_crashers_are_errors() -> None:
    # Found while hardening: each used to escape as a non-ProtocolError or pass a bad string on.
    for frame in [
        '{"token": "a", "pitch_shift": 1%s}' % ("0" * 5000),  # int() digit limit → ValueError
        '{"token": "\\ud800"}',  # lone surrogate: unsendable, unspeakable
        '{"type": "config", "voice": "\\udfff"}',
        '{"token": "%s"}' % ("x" * 100),  # past max_token_chars
        "[" * 100_000,
    ]:
        assert check(frame) is None
    try:
        parse_client_message('{"token": "%s"}' % ("x" * 100), max_token_chars=64)
    except ProtocolError as exc:
        assert exc.kind == "token_too_long" and "limit 64" in str(exc)
