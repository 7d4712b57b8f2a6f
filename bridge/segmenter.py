"""Streaming text segmentation: LLM tokens in, speakable segments out. Pure: no I/O, no clock.

CONTRACT (implementation in progress):

    seg = Segmenter(SegmenterConfig())
    seg.feed("Hel") -> []                  # segments completed by this piece of text
    seg.feed("lo. Wor") -> ["Hello."]      # each item is a Segment (a str with .boundary)
    seg.flush() -> ["Wor"]                 # the rest; re-arms the first-fragment fast path
    seg.reset()                            # cancel: drop everything buffered

Segments are speech text: markdown stripped, links spoken by label, code fences skipped, emoji
dropped (see bridge.textfilter). ``Segment.boundary`` tells the audio stage how much pause to
keep after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Boundary(StrEnum):
    """Why a segment ended; the pipeline keeps a pause that fits."""

    SENTENCE = "sentence"  # . ! ? 。 ！ ？ …
    PARAGRAPH = "paragraph"  # blank line, list item, heading
    PAUSE = "pause"  # , ; : ， 、
    WORD = "word"  # cut between words (fast path, length cap)
    FLUSH = "flush"  # the rest, at flush


class Segment(str):
    """A segment's text (a plain ``str`` for every purpose) plus the boundary that ended it."""

    boundary: Boundary

    def __new__(cls, text: str, boundary: Boundary = Boundary.SENTENCE) -> "Segment":
        obj = super().__new__(cls, text)
        obj.boundary = boundary
        return obj

    def __reduce__(self):  # keep pickling/copying working for a str subclass with state
        return (Segment, (str(self), self.boundary))


@dataclass(frozen=True)
class SegmenterConfig:
    max_chars: int = 200
    first_min_words: int = 2
    first_max_words: int = 3
    pause_min_chars: int = 30
    skip_code_blocks: bool = True


class Segmenter:
    def __init__(self, config: SegmenterConfig | None = None) -> None:
        self.config = config or SegmenterConfig()
        self._buf = ""

    def feed(self, text: str) -> list[Segment]:
        self._buf += text
        return []

    def flush(self) -> list[Segment]:
        text, self._buf = self._buf.strip(), ""
        return [Segment(text, Boundary.FLUSH)] if text else []

    def reset(self) -> None:
        self._buf = ""
