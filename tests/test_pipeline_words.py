"""Word timing events from the real pipeline (real Piper), checked against Piper's own alignment.

The reference is independent of the pipeline's bookkeeping: piper-tts itself
(``PiperVoice.synthesize(..., include_alignments=True)``, noise scales at 0 as the engine's)
times each phoneme of the segment's text; where the segment's audio sits in the pipeline's
48 kHz output is found by cross-correlating piper-tts's audio of the segment with the output.
Each word event must then be within one 20 ms frame of the reference word time shifted there.
"""

from __future__ import annotations


import numpy as np
import pytest
import soxr
from scipy import signal

from bridge.config import OUTPUT_SAMPLE_RATE
from bridge.normalize import NormalizedText, session_normalizer
from bridge.pipeline import SegmentOut, SessionOptions, SessionPipeline, WordsOut
from bridge.tts.phoneme_words import text_words
from bridge.words import SegmentWords, TimedSpan
from tests.support.engines_util import WrappedEngine
from tests.support.piper_reference import reference
from tests.support.pipeline_words import speak, words_and_audio

FRAME = 0.020
REPLIES = [
    "Hello there! It costs $3.14 today, of the people -- by the people. See example.com at 9:30 a.m. please.",
    "The lighthouse keeper counted ships until the fog rolled in; then, quietly, he went home.",
]


def offset_in(output: np.ndarray, audio: np.ndarray, rate: int) -> float:
    """Where ``audio`` (at ``rate``) sits in ``output`` (48 kHz), in seconds: the lag of the
    largest cross-correlation. (Pause shaping trims silence only, so the sound matches.)"""
    up = soxr.resample(audio.astype(np.float32), rate, OUTPUT_SAMPLE_RATE)
    corr = signal.correlate(output, up, mode="full", method="fft")
    lag = int(np.argmax(corr)) - (len(up) - 1)
    return lag / OUTPUT_SAMPLE_RATE


async def test_word_events_match_pipers_own_alignment_within_a_frame(engines_factory, deterministic_piper) -> None:
    engines = engines_factory(deterministic_piper)
    normalize = session_normalizer(engines.settings.normalize, engines.tts)
    for reply in REPLIES:
        pipeline = SessionPipeline(engines, SessionOptions(words=True, events=True))
        items = await speak(pipeline, reply)
        words, output, _ = words_and_audio(items)
        segments = {item.id: item.text for item in items if isinstance(item, SegmentOut)}
        assert set(words) == set(segments)
        checked = 0
        for segment_id, text in segments.items():
            normalized: NormalizedText = normalize(text)
            audio, ref_words = reference(normalized.spoken)
            shift = offset_in(output, audio, deterministic_piper.sample_rate)
            spans = [
                TimedSpan(a, b, shift + s / deterministic_piper.sample_rate, shift + e / deterministic_piper.sample_rate)
                for (a, b), (s, e) in zip(text_words(normalized.spoken), ref_words, strict=True)
            ]
            mapper = SegmentWords(normalized)
            expected = mapper.add(spans) + mapper.finish()
            got = words[segment_id]
            assert [w.text for w in got] == [w.text for w in expected] == text.split()
            for event, want in zip(got, expected, strict=True):
                assert abs(event.start - want.start) <= FRAME, (segment_id, event, want)
                assert abs(event.end - want.end) <= FRAME, (segment_id, event, want)
                assert not event.estimated
                checked += 1
        assert checked == len(reply.split())


async def test_word_structure_every_word_once_in_order_inside_the_audio_and_before_it(
    engines_factory, deterministic_piper
) -> None:
    pipeline = SessionPipeline(engines_factory(deterministic_piper), SessionOptions(words=True))
    items = await speak(pipeline, " ".join(REPLIES))
    words, output, order = words_and_audio(items)
    flat = [w for segment in sorted(words) for w in words[segment]]
    assert [w.text for w in flat] == " ".join(REPLIES).split()
    starts = [w.start for w in flat]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= len(output) / OUTPUT_SAMPLE_RATE for w in flat)
    # Each event came before the audio it times: fewer samples had arrived than its start.
    assert all(received <= start for start, received in order)
    # A client that asked for nothing else got no segment events.
    assert not any(isinstance(item, SegmentOut) for item in items)


async def test_no_words_unless_asked(engines_factory, deterministic_piper) -> None:
    pipeline = SessionPipeline(engines_factory(deterministic_piper), SessionOptions())
    items = await speak(pipeline, REPLIES[0])
    assert not any(isinstance(item, WordsOut) for item in items)


async def test_an_engine_without_alignments_gets_estimated_words(engines_factory, deterministic_piper) -> None:
    engine = WrappedEngine(deterministic_piper)  # passes chunks on, reports no words
    assert not engine.reports_words
    pipeline = SessionPipeline(engines_factory(engine), SessionOptions(words=True))
    items = await speak(pipeline, REPLIES[1])
    words, output, _ = words_and_audio(items)
    flat = [w for segment in sorted(words) for w in words[segment]]
    assert [w.text for w in flat] == REPLIES[1].split()
    assert all(w.estimated for w in flat)
    starts = [w.start for w in flat]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= len(output) / OUTPUT_SAMPLE_RATE for w in flat)
    # Estimated from the measured sound: each word's estimate is within its segment's audio.
    assert flat[0].start < 0.1 and flat[-1].end > len(output) / OUTPUT_SAMPLE_RATE - 0.5


@pytest.mark.parametrize("words", [True, False])
def test_words_option_is_opt_in(words: bool) -> None:
    options = SessionOptions(words=words)
    assert options.times_words is words
    assert SessionOptions(events=True).times_words

