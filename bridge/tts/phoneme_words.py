"""Which phonemes say which word, and when each phoneme sounds: Piper's alignment, made into words.

Pure (no I/O, no model): the Piper engine feeds it what espeak-ng and the duration predictor
gave. Two problems are solved here:

* **Words ↔ phonemes.** espeak-ng phonemizes a whole sentence and marks word boundaries with
  spaces, but its words are not the text's: it joins function words (``of the`` → ``ʌvðə``,
  ``Hello... world`` → one word) and splits others (``example.com`` → three). So each word of the
  text is also phonemized alone, and the two phoneme strings are aligned letter by letter
  (:class:`difflib.SequenceMatcher`, stress and length marks ignored): each of the sentence's
  phonemes takes the word of the isolated phoneme it matched; an unmatched one (a vowel reduced
  in context: ``to`` → ``tə``) takes the word of its matched neighbour inside the same espeak
  word, else the nearest matched one before it.
* **Phonemes ↔ samples.** Piper's ``phonemes_to_ids`` writes ``BOS PAD (ids(p) PAD)* EOS`` and
  its duration output gives frames per id; a phoneme sounds for its ids and the ``PAD`` after
  them (piper-tts's own ``phoneme_alignments`` count it the same way). A phoneme missing from
  the id map is skipped by Piper and lasts nothing here.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping, Sequence

from bridge.tts.base import SpokenWord

#: Marks that carry no sound of their own: stress, length, syllable and word breaks.
_MARKS = frozenset("ˈˌːˑ. ")
_BOS, _EOS, _PAD = "^", "$", "_"
_WORD = re.compile(r"\S+")


def sounds(phoneme: str) -> bool:
    """Whether a phoneme is a sound to align by (a letter; not a stress mark, a space or punctuation)."""
    return bool(phoneme) and phoneme not in _MARKS and all(
        unicodedata.category(ch)[0] in "LM" for ch in phoneme
    ) and any(unicodedata.category(ch)[0] == "L" for ch in phoneme)


def phoneme_samples(
    phonemes: Sequence[str], id_map: Mapping[str, Sequence[int]], id_samples: Sequence[int]
) -> list[tuple[int, int]]:
    """``[start, end)`` sample of each phoneme of one sentence, from the samples per phoneme id
    (the duration output × hop). Raises ValueError when the counts do not fit the id map."""
    pad = len(id_map.get(_PAD, ()))
    cumulative = [0]
    for count in id_samples:
        cumulative.append(cumulative[-1] + int(count))
    position = len(id_map.get(_BOS, ())) + pad  # BOS and its PAD come first
    spans = []
    for phoneme in phonemes:
        ids = id_map.get(phoneme)
        width = len(ids) + pad if ids is not None else 0
        if position + width >= len(cumulative):
            raise ValueError("phoneme durations do not match the phonemes")
        spans.append((cumulative[position], cumulative[position + width]))
        position += width
    if position + len(id_map.get(_EOS, ())) != len(id_samples):
        raise ValueError("phoneme durations do not match the phonemes")
    return spans


def assign_words(phonemes: Sequence[str], word_phonemes: Sequence[Sequence[str]]) -> list[tuple[int, int] | None]:
    """For each word (its phonemes when spoken alone), the ``[first, last + 1)`` range of the
    indices of ``phonemes`` (the whole text's, as spoken in context) that say it; None for a
    word with no sound of its own. Ranges are in order and never overlap."""
    keys = [i for i, p in enumerate(phonemes) if sounds(p)]
    alone: list[str] = []
    owner: list[int] = []
    for word, its in enumerate(word_phonemes):
        for p in its:
            if sounds(p):
                alone.append(p)
                owner.append(word)
    word_of: dict[int, int] = {}
    matcher = difflib.SequenceMatcher(None, [phonemes[i] for i in keys], alone, autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            word_of[keys[a + k]] = owner[b + k]
    # Unmatched sounds: the word of a matched sound in the same espeak word, before it
    # first, else after it; else the nearest matched sound before it; else after.
    espeak_word = []
    current = 0
    for p in phonemes:
        if p == " ":
            current += 1
        espeak_word.append(current)
    matched = sorted(word_of)
    filled = dict(word_of)
    for i in keys:
        if i in filled:
            continue
        before = [j for j in matched if j < i]
        after = [j for j in matched if j > i]
        same_before = [j for j in before if espeak_word[j] == espeak_word[i]]
        same_after = [j for j in after if espeak_word[j] == espeak_word[i]]
        if same_before:
            filled[i] = word_of[same_before[-1]]
        elif same_after:
            filled[i] = word_of[same_after[0]]
        elif before:
            filled[i] = word_of[before[-1]]
        elif after:
            filled[i] = word_of[after[0]]
    ranges: list[tuple[int, int] | None] = [None] * len(word_phonemes)
    floor = 0  # keep ranges in order: a phoneme never goes to a word before one already placed
    for i in keys:
        word = filled.get(i)
        if word is None:
            continue
        word = max(word, floor)
        floor = word
        start, end = ranges[word] or (i, i + 1)
        ranges[word] = (min(start, i), i + 1)
    return ranges


def text_words(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` of each word of ``text``: each run of non-space characters."""
    return [(m.start(), m.end()) for m in _WORD.finditer(text)]


class WordTimer:
    """Turns one segment's sentences, timed one by one, into :class:`SpokenWord` s in order.

    ``sentences``: the phonemes of each sentence as the engine speaks them; ``word_phonemes``:
    each word of ``text`` (:func:`text_words`) phonemized alone. :meth:`timed` takes a
    sentence's samples per phoneme id as soon as its duration predictor ran, and gives every
    word that is now fully timed (a word whose phonemes run on into the next sentence waits
    for it; a word with no sound lasts nothing, where the word before it ended).
    """

    def __init__(self, text: str, sentences: Sequence[Sequence[str]], word_phonemes: Sequence[Sequence[str]]) -> None:
        self._spans = text_words(text)
        if len(word_phonemes) != len(self._spans):
            raise ValueError("one phoneme list per word")
        flat: list[str] = []
        self._sentence_start: list[int] = []
        for sentence in sentences:
            self._sentence_start.append(len(flat))
            flat.extend(sentence)
        self._sentence_start.append(len(flat))
        self._flat = flat
        self._ranges = assign_words(flat, word_phonemes)
        self._sentences_timed = 0
        self._samples: list[tuple[int, int]] = []  # per phoneme of the sentences timed so far
        self._offset = 0  # samples of the sentences timed so far
        self._next = 0  # the next word to report
        self._last_end = 0

    @property
    def done(self) -> bool:
        return self._next >= len(self._spans)

    def timed(self, id_map: Mapping[str, Sequence[int]], id_samples: Sequence[int]) -> list[SpokenWord]:
        """The next sentence's samples per phoneme id → the words now timed."""
        index = self._sentences_timed
        if index + 1 >= len(self._sentence_start):
            raise ValueError("every sentence is timed already")
        lo, hi = self._sentence_start[index], self._sentence_start[index + 1]
        for start, end in phoneme_samples(self._flat[lo:hi], id_map, id_samples):
            self._samples.append((self._offset + start, self._offset + end))
        self._offset += int(sum(int(c) for c in id_samples))
        self._sentences_timed = index + 1
        return self._report(len(self._samples))

    def finish(self) -> list[SpokenWord]:
        """Words still untimed when the engine's speech ended (nothing more will come): they
        last nothing, where the last timed word ended."""
        return self._report(len(self._samples), untimed_at_end=True)

    def _report(self, timed: int, untimed_at_end: bool = False) -> list[SpokenWord]:
        """Words from the next one on whose phonemes are all among the first ``timed``."""
        out: list[SpokenWord] = []
        waiting: list[int] = []  # soundless words, placed at the end of the word before them
        word = self._next
        while word < len(self._spans):
            span = self._ranges[word]
            if span is None or (untimed_at_end and span[1] > timed):
                waiting.append(word)
            elif span[1] > timed:
                break
            else:
                out.extend(self._word(quiet, self._last_end, self._last_end) for quiet in waiting)
                waiting = []
                start, end = self._samples[span[0]][0], self._samples[span[1] - 1][1]
                out.append(self._word(word, start, end))
                self._last_end = end
            word += 1
        if word < len(self._spans):  # the rest waits for its sentence (soundless words with it)
            self._next = waiting[0] if waiting else word
        else:
            out.extend(self._word(quiet, self._last_end, self._last_end) for quiet in waiting)
            self._next = word
        return out

    def _word(self, index: int, start: int, end: int) -> SpokenWord:
        char_start, char_end = self._spans[index]
        return SpokenWord(char_start, char_end, start, end)
