"""bridge/subtitles.py: timed words grouped into cues, written as WebVTT or SRT."""

from __future__ import annotations

from pathlib import Path

import webvtt

from bridge.client import Word
from bridge.subtitles import MAX_CUE_CHARS, group_cues, render, write_subtitles


def timed(text: str, step: float = 0.4) -> list[Word]:
    return [Word(w, i * step, i * step + step * 0.8) for i, w in enumerate(text.split())]


def test_cues_end_at_sentences_and_show_while_their_words_sound() -> None:
    words = timed("Hello there. It cost $3.14 a night!")
    cues = group_cues(words)
    assert [c.text for c in cues] == ["Hello there.", "It cost $3.14 a night!"]
    assert (cues[0].start, cues[0].end) == (words[0].start, words[1].end)
    assert (cues[1].start, cues[1].end) == (words[2].start, words[-1].end)


def test_long_sentences_are_split_by_length_and_duration() -> None:
    words = timed("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen")
    cues = group_cues(words)
    assert " ".join(c.text for c in cues) == " ".join(w.text for w in words)  # every word once, in order
    assert all(len(c.text) <= MAX_CUE_CHARS for c in cues) and len(cues) > 1
    slow = group_cues(timed("a b c d e f", step=2.0), max_seconds=5.0)
    assert all(c.end - c.start <= 5.0 for c in slow) and len(slow) == 3


def test_webvtt_and_srt_files_parse_back(tmp_path: Path) -> None:
    words = timed("Hello there. The arrow --> is kept readable.", step=0.75)
    vtt, srt = tmp_path / "out.vtt", tmp_path / "out.srt"
    assert write_subtitles(vtt, words) == write_subtitles(srt, words) == 2
    assert vtt.read_text().startswith("WEBVTT")
    assert srt.read_text().startswith("1\n00:00:00,000 --> 00:00:01,350\nHello there.\n")
    for path in (vtt, srt):
        parsed = webvtt.read(str(path)) if path.suffix == ".vtt" else webvtt.from_srt(str(path))
        assert [c.text for c in parsed] == ["Hello there.", "The arrow -> is kept readable."]
        assert parsed[1].start == "00:00:01.500" and parsed[1].end == "00:00:05.850"


def test_no_words_no_cues() -> None:
    assert group_cues([]) == []
    assert render([], "vtt").startswith("WEBVTT")
