"""Word timings, pure: the engine's timed words → the segment's words as written, and what was heard.

Three entry points, no I/O, no clock:

* :class:`SegmentWords` — one segment's words as the reply wrote them (the ``segment`` event's
  text), timed from the words the engine spoke. Normalization may have rewritten the text
  (``$3.14`` → "three dollars and fourteen cents"); its span map
  (:meth:`~bridge.normalize.NormalizedText.original_span`) sends each spoken word back to the
  written span it came from, and a written word is timed from the first spoken word inside it
  to the last. A written word nothing was spoken for (skipped foreign text, a lone ``--``)
  lasts nothing, where the word before it ended. (The text filter, which removes markdown and
  shortens URLs, runs before the segmenter: the segment's text is already filtered, so its
  words are the filtered ones, as the ``segment`` event says.)
* :func:`estimate_spoken_words` — the rule for engines with no alignment output (Soprano): a
  segment's measured sound, from its first sound to the start of its trailing pause, is shared
  among its spoken words in proportion to their letters and digits (a word without any lasts
  nothing). Times from it are marked ``estimated``.
* :func:`heard_words` / :func:`heard_text` — the words a listener heard when the audio stopped
  at ``seconds`` (all that was sent, or what the client says it played): a word counts when its
  start was played (``start < seconds``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.normalize import NormalizedText

_WORD = re.compile(r"\S+")
_VOICED = re.compile(r"[^\W_]", re.UNICODE)  # a letter or a digit


@dataclass(frozen=True, slots=True)
class WordTime:
    """One written word and when it sounds: seconds from the first sample of the utterance's
    audio as the client receives it."""

    text: str
    start: float
    end: float
    estimated: bool = False

    def as_json(self) -> dict[str, Any]:
        """The wire form: ``{"text", "start", "end"}`` (ms precision), plus ``"estimated": true``."""
        item: dict[str, Any] = {"text": self.text, "start": round(self.start, 3), "end": round(self.end, 3)}
        if self.estimated:
            item["estimated"] = True
        return item


@dataclass(frozen=True, slots=True)
class TimedSpan:
    """A spoken word, ``spoken[start_char:end_char]``, placed in the utterance's output (seconds)."""

    start_char: int
    end_char: int
    start: float
    end: float


def word_spans(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` of each word of ``text`` (a run of non-space characters)."""
    return [(m.start(), m.end()) for m in _WORD.finditer(text)]


class SegmentWords:
    """One segment's written words, timed as its spoken words' times come in (see module doc)."""

    def __init__(self, normalized: NormalizedText, *, offset: float = 0.0, after: float = 0.0) -> None:
        #: Added to every time (where the chain's output starts in the utterance).
        self.offset = offset
        self._original = original = normalized.original
        self._written = word_spans(original)
        spoken = word_spans(normalized.spoken)
        self._spoken_index = {span: i for i, span in enumerate(spoken)}
        #: For each written word, the spoken words that say it.
        self._needs: list[set[int]] = [set() for _ in self._written]
        for index, (start, end) in enumerate(spoken):
            lo, hi = normalized.original_span(start, end) if normalized.changed else (start, end)
            for word, (ws, we) in enumerate(self._written):
                if ws < hi and we > lo:
                    self._needs[word].add(index)
        self._times: dict[int, tuple[float, float, bool]] = {}
        self._next = 0
        #: Where the last word ended (``after``: where the utterance's words so far ended).
        self._last_end = max(offset, after)

    @property
    def last_end(self) -> float:
        """Where the last word handed out ended (or ``after``)."""
        return self._last_end

    @property
    def done(self) -> bool:
        """Whether every written word has been handed out."""
        return self._next >= len(self._written)

    @property
    def spoken_untimed(self) -> list[int]:
        """Indices of the spoken words not timed yet."""
        needed = set().union(*self._needs) if self._needs else set()
        return sorted(needed - set(self._times))

    def add(self, spans: Iterable[TimedSpan], *, estimated: bool = False) -> list[WordTime]:
        """Spoken words' times (chain seconds) in; the written words now fully timed out, in order."""
        for span in spans:
            index = self._spoken_index.get((span.start_char, span.end_char))
            if index is not None and index not in self._times:
                self._times[index] = (span.start + self.offset, span.end + self.offset, estimated)
        return self._ready(final=False)

    def finish(self) -> list[WordTime]:
        """The segment ended: every written word not handed out yet, timed with what came (a
        word none of whose spoken words came lasts nothing, where the word before it ended)."""
        return self._ready(final=True)

    def _ready(self, *, final: bool) -> list[WordTime]:
        out: list[WordTime] = []
        waiting: list[int] = []
        word = self._next
        while word < len(self._written):
            needs = self._needs[word]
            timed = [self._times[i] for i in needs if i in self._times]
            if needs and len(timed) < len(needs) and not final:
                break
            if not timed:
                waiting.append(word)
            else:
                out.extend(self._quiet(w) for w in waiting)
                waiting = []
                start = min(t[0] for t in timed)
                end = max(t[1] for t in timed)
                out.append(WordTime(self._text(word), start, end, any(t[2] for t in timed)))
                self._last_end = max(self._last_end, end)
            word += 1
        if word < len(self._written):  # soundless words wait to be placed after the word before them
            self._next = waiting[0] if waiting else word
        else:
            out.extend(self._quiet(w) for w in waiting)
            self._next = word
        return out

    def _quiet(self, word: int) -> WordTime:
        return WordTime(self._text(word), self._last_end, self._last_end)

    def _text(self, word: int) -> str:
        start, end = self._written[word]
        return self._original[start:end]


def estimate_spoken_words(text: str, start: float, end: float, *, after: int = 0) -> list[TimedSpan]:
    """The estimate rule (module doc): ``[start, end)`` seconds shared among the words of
    ``text`` from word ``after`` on, by their count of letters and digits."""
    spans = word_spans(text)[after:]
    weights = [len(_VOICED.findall(text[a:b])) for a, b in spans]
    total = sum(weights)
    length = max(0.0, end - start)

    def point(weight_before: int) -> float:
        """Where the words with ``weight_before`` letters and digits before them have ended
        (by the running sum of weights, so that the last one ends exactly at ``end``)."""
        if not total:
            return start
        return end if weight_before == total and length else start + length * weight_before / total

    out: list[TimedSpan] = []
    done = 0
    for (a, b), weight in zip(spans, weights, strict=True):
        out.append(TimedSpan(a, b, point(done), point(done + weight)))
        done += weight
    return out


def heard_words(words: Sequence[WordTime], seconds: float) -> list[WordTime]:
    """The words whose start was played when the audio stopped at ``seconds``."""
    return [word for word in words if word.start < seconds]


def heard_text(words: Sequence[WordTime], seconds: float) -> str:
    """:func:`heard_words` as text, one space between words."""
    return " ".join(word.text for word in heard_words(words, seconds))


class HeardTracker:
    """What one client received of the current utterance: its words' times and its audio.

    The sender feeds it as it sends (:meth:`words`, :meth:`audio`); :meth:`report` says what
    was heard when the utterance stopped, and :meth:`reset` starts the next utterance. An
    utterance that ended (``flushed``) is kept by :meth:`finish` until the next one starts: a
    client that buffers still plays it, and a cancel then is about what it played of that one.
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._words: list[WordTime] = []
        self._samples = 0
        self._finished: tuple[list[WordTime], int] | None = None

    @property
    def active(self) -> bool:
        """Whether anything of an utterance was sent since the last reset."""
        return bool(self._words) or self._samples > 0

    @property
    def sent_seconds(self) -> float:
        return self._samples / self.sample_rate

    def words(self, words: Iterable[WordTime]) -> None:
        self._finished = None  # the next utterance has started
        self._words.extend(words)

    def audio(self, samples: int) -> None:
        self._finished = None
        self._samples += samples

    def report(self, played_seconds: float | None = None) -> dict[str, Any]:
        """``{"heard": text, "heard_seconds": s}``: the audio sent, or as much of it as the
        client says it played, and the words whose start lies within it. Nothing of a new
        utterance sent yet: about the one that ended last, if any."""
        words, samples = (self._words, self._samples)
        if not self.active and self._finished is not None:
            words, samples = self._finished
        sent = samples / self.sample_rate
        seconds = sent if played_seconds is None else min(played_seconds, sent)
        return {"heard": heard_text(words, seconds), "heard_seconds": round(seconds, 3)}

    def finish(self) -> None:
        """The utterance ended whole: keep it for a cancel that comes while it still plays."""
        self._finished = (self._words, self._samples)
        self._words = []
        self._samples = 0

    def reset(self) -> None:
        self._words = []
        self._samples = 0
        self._finished = None
