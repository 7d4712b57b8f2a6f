"""bridge/tts/phoneme_words.py: Piper's phonemes and durations → the text's words, in samples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.tts.base import SpokenWord
from bridge.tts.phoneme_words import WordTimer, assign_words, phoneme_samples, sounds, text_words
from tests.support.property_budget import examples

ID_MAP = {"_": [0], "^": [1], "$": [2], " ": [3], ",": [8], ".": [10], "a": [14], "b": [15], "ˈ": [120], "ə": [59]}


def ids_of(phonemes: list[str]) -> list[int]:
    """Piper's layout: BOS PAD (ids PAD)* EOS (phonemes missing from the map skipped)."""
    ids = [1, 0]
    for p in phonemes:
        if p in ID_MAP:
            ids += [*ID_MAP[p], 0]
    return [*ids, 2]


def test_sounds_are_letters_not_marks_spaces_or_punctuation():
    assert sounds("a") and sounds("ʃ") and sounds("ɾ")
    assert not any(sounds(p) for p in ["ˈ", "ˌ", "ː", " ", ",", ".", "?", ""])


def test_a_phoneme_lasts_for_its_ids_and_the_pad_after_them():
    phonemes = ["a", "b", "?", "ə"]  # "?" is not in the map: Piper skips it, it lasts nothing
    samples = [10, 1, 5, 2, 7, 3, 4, 6, 100]  # BOS PAD a PAD b PAD ə PAD EOS
    assert len(samples) == len(ids_of(phonemes))
    assert phoneme_samples(phonemes, ID_MAP, samples) == [(11, 18), (18, 28), (28, 28), (28, 38)]
    with pytest.raises(ValueError):
        phoneme_samples(phonemes, ID_MAP, samples[:-2])


def test_words_take_the_phonemes_espeak_joined_or_split():
    # "of the" spoken as one espeak word, "to" reduced to "tə" in context.
    phonemes = list("ʌvðə tə ɡoʊ")
    alone = [list("ʌv"), list("ðə"), list("tuː"), list("ɡoʊ")]
    assert assign_words(phonemes, alone) == [(0, 2), (2, 4), (5, 7), (8, 11)]
    # "example.com" said as three espeak words is one word of the text.
    phonemes = list("ɛɡzæmpəl dɑːt kɑːm ɪz")
    alone = [list("ɛɡzæmpəl dɑːt kɑːm"), list("ɪz")]
    assert assign_words(phonemes, alone) == [(0, 18), (19, 21)]


def test_a_word_with_no_sound_gets_no_phonemes():
    assert assign_words(list("a b"), [["a"], ["-", "-"], ["b"]]) == [(0, 1), None, (2, 3)]


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.lists(st.sampled_from(list("abdkstəɪʊ")), min_size=0, max_size=5), min_size=1, max_size=8))
def test_ranges_are_in_order_and_never_overlap(words: list[list[str]]) -> None:
    phonemes: list[str] = []
    for word in words:
        phonemes += [*word, " "]
    ranges = assign_words(phonemes, words)
    placed = [r for r in ranges if r is not None]
    assert all(a < b for a, b in placed)
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(placed, placed[1:]))
    assert [r is None for r in ranges] == [not w for w in words]  # exact words: each finds its own


def test_the_timer_reports_words_sentence_by_sentence_each_once():
    text = "ab ba. ab"
    sentences = [["a", "b", " ", "b", "a", "."], ["a", "b"]]
    timer = WordTimer(text, sentences, [["a", "b"], ["b", "a"], ["a", "b"]])
    first_ids = ids_of(sentences[0])
    first = timer.timed(ID_MAP, [10] * len(first_ids))
    # Phoneme k of the sentence starts after BOS PAD and k (ids + PAD) pairs: 10 samples each.
    assert first == [SpokenWord(0, 2, 20, 60), SpokenWord(3, 6, 80, 120)]
    second = timer.timed(ID_MAP, [10] * len(ids_of(sentences[1])))
    offset = 10 * len(first_ids)  # the first sentence's samples
    assert second == [SpokenWord(7, 9, offset + 20, offset + 60)]
    assert timer.done and timer.finish() == []
    with pytest.raises(ValueError):
        timer.timed(ID_MAP, [1])


def test_untimed_words_are_placed_at_the_end_when_speech_ends():
    timer = WordTimer("ab ba", [["a", "b"], ["b", "a"]], [["a", "b"], ["b", "a"]])
    timed = timer.timed(ID_MAP, [10] * len(ids_of(["a", "b"])))
    assert timed == [SpokenWord(0, 2, 20, 60)]
    assert timer.finish() == [SpokenWord(3, 5, 60, 60)]  # its sentence never came (cancelled)


def test_text_words_are_runs_of_non_space():
    assert text_words(" Hi,  there! ") == [(1, 4), (6, 12)]
