"""bridge/normalize/scripts.py: which writing system a text is in, and which ones a voice reads."""

from __future__ import annotations

from bridge.normalize.scripts import readable_scripts, script_of


def test_scripts() -> None:
    assert script_of("こんにちは元気") == "Japanese"
    assert script_of("東京") == "Chinese"
    assert script_of("안녕") == "Hangul"
    assert script_of("Привет") == "Cyrillic"
    assert script_of("مرحبا") == "Arabic"
    assert readable_scripts(("en-us",)) == frozenset()
    assert readable_scripts(("ja",)) >= {"Japanese", "Chinese"}
