"""The wire protocol's pure core: every client frame parses to one message or one clear error."""

from __future__ import annotations

import json

import pytest

from bridge.protocol import (
    CancelMessage,
    ConfigMessage,
    FlushMessage,
    ProtocolError,
    TokenMessage,
    error_frame,
    parse_client_message,
    segment_event,
)


def test_seed_token_and_flush() -> None:
    msg = parse_client_message('{"token": "Hello", "pitch_shift": 0}')
    assert msg == TokenMessage(token="Hello", pitch_shift=0.0)
    assert parse_client_message('{"token": " there"}') == TokenMessage(token=" there")
    assert isinstance(parse_client_message('{"flush": true}'), FlushMessage)


def test_token_with_flush_in_one_message() -> None:
    msg = parse_client_message('{"token": "Bye.", "flush": true}')
    assert isinstance(msg, TokenMessage) and msg.flush


def test_extensions() -> None:
    cfg = parse_client_message('{"type": "config", "events": true, "voice": "miku", "pitch_shift": -3.5, "format": "s16le"}')
    assert cfg == ConfigMessage(type="config", events=True, voice="miku", pitch_shift=-3.5, format="s16le")
    assert isinstance(parse_client_message('{"type": "cancel"}'), CancelMessage)
    assert isinstance(parse_client_message('{"interrupt": true}'), CancelMessage)
    assert isinstance(parse_client_message('{"type": "flush"}'), FlushMessage)
    assert parse_client_message('{"type": "token", "token": "x"}') == TokenMessage(token="x")


def test_unknown_fields_are_ignored() -> None:
    assert parse_client_message('{"token": "a", "future_field": 1}') == TokenMessage(token="a")


@pytest.mark.parametrize(
    ("frame", "fragment"),
    [
        ("not json", "invalid JSON"),
        ("[1, 2]", "JSON object"),
        ('"token"', "JSON object"),
        ("{}", "expected"),
        ('{"token": 5}', "token"),
        ('{"token": null}', "token"),
        ('{"token": "a", "pitch_shift": "high"}', "pitch_shift"),
        ('{"token": "a", "pitch_shift": true}', "pitch_shift"),
        ('{"token": "a", "pitch_shift": 25}', "between -24 and 24"),
        ('{"token": "a", "pitch_shift": -24.5}', "between -24 and 24"),
        ('{"token": "a", "pitch_shift": NaN}', "finite"),
        ('{"token": "a", "pitch_shift": Infinity}', "finite"),
        ('{"flush": false}', "flush must be true"),
        ('{"flush": "yes"}', "flush must be true"),
        ('{"type": "dance"}', "unknown message type 'dance'"),
        ('{"type": 3}', "type must be a string"),
        ('{"type": "config", "format": "mp3"}', "format"),
        ('{"type": "config", "events": "yes"}', "events"),
        ('{"type": "config", "voice": 7}', "voice"),
        ('{"interrupt": false}', "expected"),
    ],
)
def test_bad_frames_get_a_clear_error(frame: str, fragment: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(frame)
    assert fragment in str(info.value)


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    with pytest.raises(ProtocolError):
        parse_client_message("[" * 100_000 + "]" * 100_000)


def test_server_frames_are_json_with_the_seed_error_key() -> None:
    assert json.loads(error_frame("bad")) == {"type": "error", "error": "bad"}
    assert json.loads(segment_event(3, "Hi.")) == {"type": "segment", "id": 3, "text": "Hi."}
