"""The normalization stage in the session: settings, the hook before the engine, the events."""

from __future__ import annotations

import asyncio
import json

import pytest

from bridge.config import Settings
from bridge.normalize import session_normalizer
from bridge.pipeline import FlushedOut, SegmentOut, SessionOptions, SessionPipeline
from bridge.protocol import segment_event
from bridge.tts.piper import PiperEngine
from tests.support.engines_util import WrappedEngine


# ------------------------------------------------------------------------------ settings
def test_settings_from_toml_with_a_pronunciation_table(tmp_path, monkeypatch) -> None:
    config = tmp_path / "voice-bridge.toml"
    config.write_text(
        '[normalize]\ntext = true\ndate_order = "dmy"\nforeign_text = "skip"\n'
        '[normalize.pronunciations]\nMiku = "Mee koo"\n"Dr. Who" = "Doctor Who"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("VOICE_BRIDGE_CONFIG", str(config))
    settings = Settings()
    assert settings.normalize.date_order == "dmy"
    assert settings.normalize.foreign_text == "skip"
    assert settings.normalize.pronunciations == {"Miku": "Mee koo", "Dr. Who": "Doctor Who"}
    normalize = session_normalizer(settings.normalize, PiperEngine.__new__(PiperEngine))
    assert normalize("Miku met Dr. Who on 03/12/2026.").spoken == (
        "Mee koo met Doctor Who on the third of December twenty twenty six."
    )


def test_settings_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("VOICE_BRIDGE_NORMALIZE_TEXT", "false")
    monkeypatch.setenv("VOICE_BRIDGE_NORMALIZE_PRONUNCIATIONS", '{"GIF": "jif"}')
    settings = Settings()
    assert settings.normalize.enabled is False
    assert settings.normalize.pronunciations == {"GIF": "jif"}


def test_bad_settings_are_refused(monkeypatch) -> None:
    with pytest.raises(ValueError):
        Settings(normalize_date_order="ymd")
    with pytest.raises(ValueError):
        Settings(normalize_foreign_text="spell")


def test_piper_declares_its_voice_languages(piper_engine) -> None:
    assert piper_engine.languages == ("en-us", "en_US")
    assert piper_engine.info()["languages"] == ["en-us", "en_US"]


# ------------------------------------------------------------------------------ the hook
async def _speak(engines, text: str) -> list[SegmentOut]:
    pipeline = SessionPipeline(engines, SessionOptions(events=True))
    segments = []
    try:
        for word in text.split(" "):
            pipeline.feed(word + " ")
        pipeline.flush()
        while not isinstance(item := await asyncio.wait_for(pipeline.next_output(), 60), FlushedOut):
            if isinstance(item, SegmentOut):
                segments.append(item)
    finally:
        await pipeline.close()
    return segments


async def test_engine_gets_the_spoken_words_events_keep_the_original(engines_factory, piper_engine) -> None:
    engine = WrappedEngine(piper_engine)
    engines = engines_factory(engine)
    text = "Sure thing. Dr. Patel paid $3.14 on Jan. 5th at 7:05am, then said こんにちは to everyone."
    segments = await _speak(engines, text)
    assert " ".join(s.text for s in segments) == text
    spoken = " ".join(engine.calls)
    assert "Doctor Patel paid three dollars and fourteen cents on January fifth at seven oh five AM" in spoken
    assert "konnichiwa to everyone" in spoken
    notes = [s.notes for s in segments if s.notes]
    assert notes == [{"transliterated": [{"text": "こんにちは", "as": "konnichiwa"}]}]


async def test_off_hands_the_text_over_unchanged(engines_factory, piper_engine) -> None:
    engine = WrappedEngine(piper_engine)
    engines = engines_factory(engine, normalize_text=False)
    await _speak(engines, "It costs $3.14 today.")
    assert " ".join(engine.calls) == "It costs $3.14 today."


async def test_skip_mode_tells_the_client(engines_factory, piper_engine) -> None:
    engine = WrappedEngine(piper_engine)
    engines = engines_factory(engine, normalize_foreign_text="skip")
    segments = await _speak(engines, "He wrote Привет, как дела? to me.")
    assert "Привет" not in " ".join(engine.calls) and "to me." in " ".join(engine.calls)
    assert [s.notes for s in segments if s.notes] == [{"skipped": [{"text": "Привет, как дела"}]}]


def test_segment_event_wire_shape() -> None:
    plain = json.loads(segment_event(3, "Hello.", 2))
    assert plain == {"type": "segment", "id": 3, "text": "Hello.", "token": 2}
    noted = json.loads(segment_event(4, "Say こんにちは.", None, {"transliterated": [{"text": "こんにちは", "as": "konnichiwa"}]}))
    assert noted == {
        "type": "segment",
        "id": 4,
        "text": "Say こんにちは.",
        "transliterated": [{"text": "こんにちは", "as": "konnichiwa"}],
    }
