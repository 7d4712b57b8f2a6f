"""Word timings through the voice stage: Piper → a test RVC voice, in the real pipeline.

RVC keeps the timeline (each output sample holds the input's time: blocks join by a crossfade
whose SOLA offset moves a block by at most one 10 ms search frame), so the voice stage says its
delay is 0 (``VoiceStream.output_delay_seconds``) and the word events of a converted utterance
are those of the bare one. What the voice stage did to the audio is measured independently:
the lag between the loudness envelopes of the converted and the bare audio (RVC's output
loudness follows its input's) must stay within one 20 ms frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import signal

from bridge.config import OUTPUT_SAMPLE_RATE
from bridge.engines import Engines, create_voice_converter
from bridge.pipeline import SessionOptions, SessionPipeline
from bridge.words import WordTime
from tests.conftest import make_settings
from tests.support.pipeline_words import all_words, speak, words_and_audio

TEXT = "The lighthouse keeper counted ships until the fog rolled in. It cost $3.14 a night."
FRAME = 0.020


async def spoken(engines: Engines, voice: str | None) -> tuple[list[WordTime], np.ndarray]:
    items = await speak(SessionPipeline(engines, SessionOptions(words=True, voice=voice)), TEXT)
    _, audio, _ = words_and_audio(items)
    return all_words(items), audio


def envelope(audio: np.ndarray, hop: int = OUTPUT_SAMPLE_RATE // 1000) -> np.ndarray:
    """RMS per millisecond."""
    n = audio.size // hop
    return np.sqrt(np.mean(audio[: n * hop].reshape(n, hop) ** 2, axis=1))


async def test_word_events_through_rvc_keep_the_bare_timeline(models_dir: Path, deterministic_piper) -> None:  # noqa: F811
    settings = make_settings(models_dir=models_dir, rvc_pitch_method="parselmouth", rvc_block_seconds=0.3)
    engines = Engines(settings=settings, tts=deterministic_piper, voice=create_voice_converter(settings))
    engines.loaded = True
    try:
        bare_words, bare = await spoken(engines, None)
        words, converted = await spoken(engines, "keeper")
    finally:
        engines.executor.shutdown(wait=True)
    assert [w.text for w in words] == TEXT.split()
    # The voice stage's own shift of the audio, measured: the envelopes' best lag.
    a, b = envelope(converted), envelope(bare)
    n = min(a.size, b.size)
    corr = signal.correlate(a[:n] - a[:n].mean(), b[:n] - b[:n].mean(), mode="full")
    lag = (int(np.argmax(corr)) - (n - 1)) / 1000
    assert abs(lag) <= FRAME
    # The events: the bare ones shifted by the voice stage's stated delay (0), within a frame
    # of the measured shift; inside the converted audio, in order.
    for event, plain in zip(words, bare_words, strict=True):
        assert event.text == plain.text
        assert abs(event.start - plain.start) < 0.001 and abs(event.end - plain.end) < 0.001
        assert abs(event.start - (plain.start + lag)) <= FRAME
    assert all(0 <= w.start <= w.end <= converted.size / OUTPUT_SAMPLE_RATE for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)
