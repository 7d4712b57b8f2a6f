"""Subtitles from word timings: timed words → cues → WebVTT or SRT text (on ``webvtt-py``).

Cues follow the reading conventions of broadcast subtitles: a cue ends at the end of a sentence
(a word ending in ``.``, ``!``, ``?`` or ``…``), before a line would pass ``max_chars``
characters, or before it would last longer than ``max_seconds``. A cue starts when its first
word starts and ends when its last word ends, so it shows exactly while its words sound.
``webvtt-py`` writes and validates the file formats (timestamps, cue text without ``-->`` or
blank lines); the grouping is ours.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import webvtt

#: Longest cue text, characters (the usual one-line limit of broadcast subtitles).
MAX_CUE_CHARS = 42
#: Longest cue, seconds.
MAX_CUE_SECONDS = 5.0

SubtitleFormat = Literal["vtt", "srt"]
_SENTENCE_END = (".", "!", "?", "…", '."', '!"', '?"')


class TimedWord(Protocol):
    """Anything with a word's ``text``, ``start`` and ``end`` (seconds)."""

    @property
    def text(self) -> str: ...

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Cue:
    start: float
    end: float
    text: str


def group_cues(
    words: Iterable[TimedWord], *, max_chars: int = MAX_CUE_CHARS, max_seconds: float = MAX_CUE_SECONDS
) -> list[Cue]:
    """The words, in order, grouped into cues (module doc)."""
    cues: list[Cue] = []
    current: list[TimedWord] = []

    def close() -> None:
        if current:
            text = " ".join(w.text for w in current).replace("-->", "->")
            cues.append(Cue(current[0].start, max(current[0].start, max(w.end for w in current)), text))
            current.clear()

    for word in words:
        if current:
            length = sum(len(w.text) + 1 for w in current) + len(word.text)
            if length > max_chars or word.end - current[0].start > max_seconds:
                close()
        current.append(word)
        if word.text.endswith(_SENTENCE_END):
            close()
    close()
    return cues


def _timestamp(seconds: float) -> str:
    millis = round(max(0.0, seconds) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def render(cues: Sequence[Cue], fmt: SubtitleFormat) -> str:
    """The cues as a WebVTT (``vtt``) or SRT (``srt``) file's text."""
    document = webvtt.WebVTT()
    for cue in cues:
        document.captions.append(webvtt.Caption(start=_timestamp(cue.start), end=_timestamp(cue.end), text=cue.text))
    out = io.StringIO()
    document.write(out, format=fmt)
    text = out.getvalue()
    return text if text.endswith("\n") else text + "\n"


def format_for(path: Path) -> SubtitleFormat:
    """``.srt`` → SRT; anything else (``.vtt``) → WebVTT."""
    return "srt" if path.suffix.lower() == ".srt" else "vtt"


def write_subtitles(path: Path, words: Iterable[TimedWord]) -> int:
    """Write the words as subtitles, the format chosen by the file's extension; the number of cues."""
    cues = group_cues(words)
    path.write_text(render(cues, format_for(path)), encoding="utf-8")
    return len(cues)
