"""bridge/tts/piper.py, word timings: the engine's words are piper-tts's own alignment, exactly.

The split graph's encoder half also outputs the duration predictor's frames per phoneme id
(the tensor piper-tts's ``include_alignments`` exposes); the engine groups the phonemes into
the text's words and appends each word before the first chunk of its sentence.
"""

from __future__ import annotations

import numpy as np
import pytest

from bridge.cancel import CancelToken
from bridge.tts.base import SpokenWord
from bridge.tts.phoneme_words import text_words
from tests.support.piper_reference import reference

TEXTS = [
    "Hello there, how are you today?",
    "Of the people, by the people. Hello... world -- yes; it's example.com!",
    "It costs three dollars and fourteen cents. Really? Yes.",
]


@pytest.mark.parametrize("text", TEXTS)
def test_words_are_pipers_own_alignment_to_the_sample(deterministic_piper, text: str) -> None:
    words: list[SpokenWord] = []
    seen_before_chunk: list[int] = []
    chunks = []
    for chunk in deterministic_piper.stream(text, CancelToken(), words=words):
        seen_before_chunk.append(len(words))
        chunks.append(chunk)
    audio, expected = reference(text)
    assert sum(c.size for c in chunks) == audio.size
    assert [(w.start_char, w.end_char) for w in words] == text_words(text)
    assert [(w.start, w.end) for w in words] == expected
    # Each word was there before the chunk holding its first sample.
    made = np.cumsum([c.size for c in chunks])
    for index, word in enumerate(words):
        chunk = int(np.searchsorted(made, word.start, side="right"))
        if chunk < len(chunks):
            assert seen_before_chunk[chunk] > index


def test_no_words_unless_asked_and_the_audio_is_the_same(deterministic_piper) -> None:
    text = TEXTS[0]
    plain = np.concatenate(list(deterministic_piper.stream(text, CancelToken())))
    words: list[SpokenWord] = []
    timed = np.concatenate(list(deterministic_piper.stream(text, CancelToken(), words=words)))
    assert words and np.array_equal(plain, timed)


def test_a_cancelled_stream_stops_timing(deterministic_piper) -> None:
    cancel = CancelToken()
    words: list[SpokenWord] = []
    stream = deterministic_piper.stream(TEXTS[1], cancel, words=words)
    next(stream)
    cancel.cancel()
    list(stream)
    assert 0 < len(words) < len(text_words(TEXTS[1]))  # the second sentence never began
