"""The wire protocol's pure core: every client frame parses to one message or one clear error."""

from __future__ import annotations

import json

import pytest

from bridge.protocol import (
    MAX_ERROR_CHARS,
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


def test_word_timings_are_a_config_option_and_cancel_may_say_what_was_played() -> None:
    assert parse_client_message('{"type": "config", "words": true}') == ConfigMessage(type="config", words=True)
    assert parse_client_message('{"type": "config"}') == ConfigMessage(type="config", words=None)
    assert parse_client_message('{"type": "cancel", "played_seconds": 2.35}') == CancelMessage(played_seconds=2.35)
    assert parse_client_message('{"interrupt": true, "played_seconds": 0}') == CancelMessage(played_seconds=0.0)
    assert parse_client_message('{"type": "cancel"}') == CancelMessage(played_seconds=None)


@pytest.mark.parametrize(
    "value", ["-0.5", '"2"', "true", "1e400", "1" + "0" * 400, "[1]"]
)
def test_a_played_position_must_be_seconds(value: str) -> None:
    with pytest.raises(ProtocolError, match="played_seconds"):
        parse_client_message('{"type": "cancel", "played_seconds": %s}' % value)
    with pytest.raises(ProtocolError, match="words"):
        parse_client_message('{"type": "config", "words": "yes"}')


def test_words_and_heard_frames() -> None:
    words = [{"text": "Hello", "start": 0.015, "end": 0.259}, {"text": "$3.14", "start": 0.3, "end": 1.2}]
    assert json.loads(words_event(3, words)) == {"type": "words", "segment": 3, "words": words}
    assert cancelled_event() == '{"type":"cancelled"}'  # nothing timed: the seed's frame
    assert json.loads(cancelled_event(heard="Hello", heard_seconds=0.2)) == {
        "type": "cancelled",
        "heard": "Hello",
        "heard_seconds": 0.2,
    }


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


# ----------------------------------------------------------------------------- exact rules
def error_of(frame: str, **kwargs) -> ProtocolError:  # type: ignore[no-untyped-def]
    with pytest.raises(ProtocolError) as info:
        parse_client_message(frame, **kwargs)
    return info.value


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("[1]", "expected a JSON object"),
        ('{"type": 3}', "type must be a string"),
        ('{"flush": false}', "flush must be true"),
        ("{}", 'expected {"token": ...}, {"flush": true} or {"type": "config" | "cancel"}'),
        ('{"token": 5}', "token: Input should be a valid string"),
        ('{"token": "a", "pitch_shift": "high"}', "pitch_shift: Value error, pitch_shift must be a number"),
        ('{"token": "a", "pitch_shift": NaN}', "pitch_shift: Value error, pitch_shift must be a finite number"),
        ('{"token": "a", "pitch_shift": 24.5}', "pitch_shift: Value error, pitch_shift must be between -24 and 24 semitones"),
        ('{"token": "\\ud800"}', "token: Value error, must be valid Unicode text (it has a lone surrogate)"),
        ('{"type": "config", "voice": "\\udfff"}', "voice: Value error, must be valid Unicode text (it has a lone surrogate)"),
    ],
)
def test_errors_say_exactly_what_is_wrong(frame: str, message: str) -> None:
    error = error_of(frame)
    assert str(error) == message and error.kind == "protocol"


def test_several_problems_are_listed_with_where_each_is() -> None:
    error = error_of('{"type": "config", "events": "yes", "format": "mp3"}')
    parts = str(error).split("; ")
    assert len(parts) == 2
    assert parts[0].startswith("events: ") and parts[1].startswith("format: ")


def test_unknown_types_are_quoted_short_and_the_known_ones_listed() -> None:
    error = error_of(json.dumps({"type": "x" * 50}))
    assert str(error) == f"unknown message type {'x' * 40!r} (known: config, cancel, token, flush)"


def test_pitch_shift_limits_are_inclusive_and_null_means_unchanged() -> None:
    assert parse_client_message('{"token": "a", "pitch_shift": 24}') == TokenMessage(token="a", pitch_shift=24.0)
    assert parse_client_message('{"token": "a", "pitch_shift": -24}') == TokenMessage(token="a", pitch_shift=-24.0)
    assert parse_client_message('{"token": "a", "pitch_shift": null}') == TokenMessage(token="a")
    cfg = parse_client_message('{"type": "config", "pitch_shift": 2}')
    assert isinstance(cfg, ConfigMessage) and cfg.pitch_shift == 2.0 and isinstance(cfg.pitch_shift, float)
    assert parse_client_message('{"type": "config", "voice": null}') == ConfigMessage(type="config")


def test_max_token_chars_is_reached_not_exceeded() -> None:
    assert parse_client_message('{"token": "abcd"}', max_token_chars=4) == TokenMessage(token="abcd")
    error = error_of('{"token": "abcde"}', max_token_chars=4)
    assert str(error) == "token too long: 5 characters (limit 4); send text in smaller pieces"
    assert error.kind == "token_too_long"
    assert parse_client_message('{"token": "' + "a" * 10_000 + '"}').token == "a" * 10_000  # no limit: None
    assert isinstance(parse_client_message('{"flush": true}', max_token_chars=0), FlushMessage)


def test_error_messages_are_capped() -> None:
    assert str(ProtocolError("x" * MAX_ERROR_CHARS)) == "x" * MAX_ERROR_CHARS
    long = ProtocolError("x" * (MAX_ERROR_CHARS + 1), kind="token_too_long")
    assert str(long) == "x" * (MAX_ERROR_CHARS - 1) + "…" and len(str(long)) == MAX_ERROR_CHARS
    assert long.kind == "token_too_long"
    assert ProtocolError("short").kind == "protocol"
    assert len(str(error_of('{"type": "config", "voice": "' + "v" * 1000 + '"}'))) <= MAX_ERROR_CHARS


def test_server_frames_are_compact_json_that_keeps_unicode() -> None:
    assert ready_event(voice="miku") == '{"type":"ready","voice":"miku"}'
    assert segment_event(1, "Café, naïve.", token=7) == '{"type":"segment","id":1,"text":"Café, naïve.","token":7}'
    assert segment_event(2, "Hi.") == '{"type":"segment","id":2,"text":"Hi."}'
    notes = {"skipped": [{"text": "你好"}]}
    assert segment_event(3, "Hi 你好.", notes=notes) == '{"type":"segment","id":3,"text":"Hi 你好.","skipped":[{"text":"你好"}]}'
    assert segment_event(4, "Hi.", notes={}) == '{"type":"segment","id":4,"text":"Hi."}'
    assert flushed_event(audio_seconds=1.5) == '{"type":"flushed","audio_seconds":1.5}'
    assert cancelled_event() == '{"type":"cancelled"}'
    assert error_frame("bad") == '{"type":"error","error":"bad"}'


def test_a_lone_surrogate_in_a_server_frame_is_escaped_not_fatal() -> None:
    frame = error_frame("token: \ud800 here, café")
    assert frame == '{"type":"error","error":"token: \\ud800 here, caf\\u00e9"}'
    frame.encode("utf-8")  # sendable
