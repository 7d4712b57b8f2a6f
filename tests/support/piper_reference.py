"""piper-tts's own word timings of a text, the reference the word-timing tests check against.

``PiperVoice.synthesize(..., include_alignments=True)`` (the model patched in memory to output
its durations) with the noise scales at 0, as the tests' deterministic engine: its phoneme
alignments, grouped into the text's words the way the engine groups them
(:func:`bridge.tts.phoneme_words.assign_words`).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from bridge.tts.phoneme_words import assign_words, text_words
from bridge.tts.piper import embedded_voice_paths


@functools.cache
def reference_voice() -> Any:
    from piper import PiperVoice

    model, config = embedded_voice_paths()
    return PiperVoice.load(model, config, include_alignments=True)


def reference(spoken: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """piper-tts's audio of ``spoken`` (engine rate) and each word's [start, end) in samples,
    from its own phoneme alignments (words ↔ phonemes as the engine maps them)."""
    from piper.config import SynthesisConfig

    voice = reference_voice()
    chunks = list(voice.synthesize(spoken, SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0), include_alignments=True))
    phonemes: list[str] = []
    spans: list[tuple[int, int]] = []
    at = 0
    for chunk in chunks:
        assert chunk.phoneme_alignments is not None, "the reference has alignments"
        for alignment in chunk.phoneme_alignments:
            if alignment.phoneme not in ("^", "$"):
                phonemes.append(alignment.phoneme)
                spans.append((at, at + alignment.num_samples))
            at += alignment.num_samples
    alone = [[p for s in voice.phonemize(spoken[a:b]) for p in s] for a, b in text_words(spoken)]
    words = []
    last_end = 0
    for span in assign_words(phonemes, alone):
        if span is None:  # no sound of its own ("--"): where the word before it ended
            words.append((last_end, last_end))
            continue
        words.append((spans[span[0]][0], spans[span[1] - 1][1]))
        last_end = words[-1][1]
    return np.concatenate([c.audio_float_array for c in chunks]), words
