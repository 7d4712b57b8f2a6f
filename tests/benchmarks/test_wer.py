"""benchmarks/wer.py: word errors, normalised on both sides."""

from __future__ import annotations

from benchmarks.wer import word_errors


def test_word_errors_normalise_both_sides() -> None:
    assert word_errors("Hello, World!", "hello world") == (0, 2)
    assert word_errors("one two three", "one too three four") == (2, 3)
    assert word_errors("a b", "") == (2, 2)
