"""Pause shaping (bridge/audio/pauses.py): each segment's leading silence trimmed to a short faded
pre-roll, its trailing silence to the pause its boundary asks for (faded), silence inside a
segment and sound anywhere kept, audio released as soon as it is known not to be trailing silence.

Most tests run at 1 000 samples/s so that 1 ms is one sample and every length is exact.
"""

from __future__ import annotations

import numpy as np
import pytest

from bridge.audio.pauses import PauseConfig, PauseShaper
from bridge.segmenter import Boundary

RATE = 22050
MS = 1000  # one sample per millisecond
HISS = 0.001  # under the default threshold (0.002): silence, but not zero, so fades show
LOUD = 0.5


def tone(seconds: float, freq: float = 220.0, rate: int = RATE, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), np.float32)


def level(samples: int, value: float) -> np.ndarray:
    return np.full(samples, value, np.float32)


def shaped(shaper: PauseShaper, parts: list[np.ndarray], boundary: Boundary) -> np.ndarray:
    shaper.begin_segment(boundary)
    out = [shaper.push(p) for p in parts] + [shaper.end_segment()]
    return np.concatenate(out)


def in_pieces(audio: np.ndarray, size: int = 7) -> list[np.ndarray]:
    """Pushes that straddle the 10-sample analysis windows."""
    return [audio[i : i + size] for i in range(0, audio.size, size)]


FADE_IN = [0.0, 0.25, 0.75, 1.0]  # a 4-sample raised cosine
FADE_OUT = FADE_IN[::-1]


# ----------------------------------------------------------------------------- the rules, exactly
def test_default_pauses_by_boundary() -> None:
    config = PauseConfig()
    assert [config.pause_ms(b) for b in Boundary] == [250.0, 250.0, 120.0, 30.0, 250.0]
    assert list(Boundary) == [Boundary.SENTENCE, Boundary.PARAGRAPH, Boundary.PAUSE, Boundary.WORD, Boundary.FLUSH]
    assert (config.lead_ms, config.fade_ms, config.window_ms, config.threshold) == (10.0, 4.0, 10.0, 0.002)


@pytest.mark.parametrize(
    ("boundary", "keep"),
    [
        (Boundary.SENTENCE, 250),
        (Boundary.PARAGRAPH, 250),
        (Boundary.FLUSH, 250),
        (Boundary.PAUSE, 120),
        (Boundary.WORD, 30),
    ],
)
def test_trailing_silence_is_cut_to_the_boundary_pause_and_faded(boundary: Boundary, keep: int) -> None:
    audio = np.concatenate([level(60, HISS), level(100, LOUD), level(400, HISS)])
    out = shaped(PauseShaper(MS), in_pieces(audio), boundary)
    assert out.size == 10 + 100 + keep
    assert out[:10] == pytest.approx([HISS * g for g in FADE_IN] + [HISS] * 6)  # pre-roll, faded in
    assert np.array_equal(out[10:110], level(100, LOUD))
    assert out[110 : 110 + keep - 4] == pytest.approx([HISS] * (keep - 4))
    assert out[-4:] == pytest.approx([HISS * g for g in FADE_OUT])  # no step at the cut


def test_the_pauses_are_settings() -> None:
    config = PauseConfig(sentence_ms=70, clause_ms=50, word_ms=20, lead_ms=0, fade_ms=0)
    audio = np.concatenate([level(100, LOUD), level(200, HISS)])
    for boundary, keep in [(Boundary.SENTENCE, 70), (Boundary.PAUSE, 50), (Boundary.WORD, 20)]:
        out = shaped(PauseShaper(MS, config), [audio], boundary)
        assert out.size == 100 + keep, boundary
        assert out[-1] == pytest.approx(HISS)  # fade_ms=0: cut without a fade


def test_a_trailing_silence_shorter_than_the_pause_is_kept_whole_and_unfaded() -> None:
    for tail in (20, 250):  # shorter than, and exactly, the sentence pause
        audio = np.concatenate([level(100, LOUD), level(tail, HISS)])
        out = shaped(PauseShaper(MS, PauseConfig(lead_ms=0)), [audio], Boundary.SENTENCE)
        assert np.array_equal(out, audio), tail


def test_lead_keeps_only_the_last_lead_ms_of_silence_before_the_first_sound() -> None:
    audio = np.concatenate([level(50, HISS), level(100, LOUD)])
    out = shaped(PauseShaper(MS, PauseConfig(lead_ms=20)), in_pieces(audio, 3), Boundary.WORD)
    assert out.size == 20 + 100
    assert out[:20] == pytest.approx([HISS * g for g in FADE_IN] + [HISS] * 16)
    # Less silence than the lead: all of it is kept.
    out = shaped(PauseShaper(MS, PauseConfig(lead_ms=30)), [level(10, HISS), level(100, LOUD)], Boundary.WORD)
    assert out.size == 110
    # No lead: the segment starts at its first sound.
    out = shaped(PauseShaper(MS, PauseConfig(lead_ms=0)), [level(50, HISS), level(100, LOUD)], Boundary.WORD)
    assert np.array_equal(out, level(100, LOUD))


def test_fade_length_is_the_setting() -> None:
    config = PauseConfig(lead_ms=10, fade_ms=10)
    out = shaped(PauseShaper(MS, config), [level(30, HISS), level(50, LOUD), level(100, HISS)], Boundary.WORD)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, 10))
    assert out[:10] == pytest.approx(HISS * ramp)
    assert out[-10:] == pytest.approx(HISS * ramp[::-1])


def test_the_threshold_is_a_peak_and_strict() -> None:
    config = PauseConfig(lead_ms=0, threshold=0.25)
    # A window whose peak equals the threshold is sound; one negative spike makes a window sound.
    at = shaped(PauseShaper(MS, config), [level(30, 0.25)], Boundary.WORD)
    assert at.size == 30
    spike = level(30, 0.0)
    spike[15] = -0.5
    out = shaped(PauseShaper(MS, config), [spike], Boundary.WORD)
    assert out.size == 30 - 10  # the first window (silent) is lead; the spike's window and after are kept
    assert shaped(PauseShaper(MS, config), [level(30, 0.2499)], Boundary.WORD).size == 0


def test_silence_inside_a_segment_is_kept() -> None:
    speech = tone(0.2)
    parts = [speech, silence(0.4), speech]
    out = shaped(PauseShaper(RATE, PauseConfig(word_ms=0, lead_ms=0)), parts, Boundary.WORD)
    assert abs(out.size - sum(p.size for p in parts)) <= 220  # within one analysis window
    exact = np.concatenate([level(100, LOUD), level(300, HISS), level(100, LOUD)])
    out = shaped(PauseShaper(MS, PauseConfig(lead_ms=0)), in_pieces(exact), Boundary.WORD)
    assert np.array_equal(out, exact)


def test_sound_is_never_cut() -> None:
    # A segment whose sound runs to its very end keeps every sample.
    audio = tone(0.25)
    out = shaped(PauseShaper(RATE, PauseConfig(lead_ms=0)), [audio[:1000], audio[1000:]], Boundary.WORD)
    assert out.size == audio.size
    assert np.array_equal(out, audio)


def test_sound_after_a_trailing_silence_is_not_trimmed() -> None:
    # Sound, a silence longer than the word pause, then sound in the last partial window: the
    # silence is inside the segment after all, and nothing is cut.
    audio = np.concatenate([level(100, LOUD), level(50, HISS), level(5, LOUD)])
    out = shaped(PauseShaper(MS, PauseConfig(lead_ms=0, word_ms=30)), [audio], Boundary.WORD)
    assert np.array_equal(out, audio)


def test_trim_fades_so_there_is_no_step() -> None:
    # Low-level noise just under the threshold, then trimmed: the kept tail ends at zero.
    rng = np.random.default_rng(0)
    hiss = (rng.uniform(-1, 1, int(0.5 * RATE)) * 0.0019).astype(np.float32)
    out = shaped(PauseShaper(RATE, PauseConfig(word_ms=30)), [tone(0.1), hiss], Boundary.WORD)
    assert abs(out[-1]) < 1e-6


def test_all_silent_segment_makes_no_sound() -> None:
    shaper = PauseShaper(RATE)
    assert shaped(shaper, [silence(0.3)], Boundary.SENTENCE).size == 0
    # ... and the next segment is shaped as if the silent one had never been.
    audio = np.concatenate([level(100, LOUD), level(300, HISS)])
    shaper = PauseShaper(MS, PauseConfig(lead_ms=0))
    assert shaped(shaper, [level(95, HISS)], Boundary.WORD).size == 0
    assert shaped(shaper, [audio], Boundary.WORD).size == 100 + 30


def test_first_sound_is_released_without_waiting_for_the_segment_end() -> None:
    shaper = PauseShaper(RATE)
    shaper.begin_segment(Boundary.SENTENCE)
    assert shaper.push(silence(0.05)).size == 0
    out = shaper.push(tone(0.1))
    assert out.size >= tone(0.1).size - 220  # all but the last partial window
    exact = PauseShaper(MS)
    exact.begin_segment(Boundary.SENTENCE)
    assert exact.push(level(50, HISS)).size == 0
    assert exact.push(level(105, LOUD)).size == 10 + 100  # pre-roll and the whole windows
    # The window with the last 5 sound samples goes out; the silence after it is held.
    assert exact.push(level(30, HISS)).size == 10
    # Sound after it: the held silence goes out with it (the last 5 samples wait for a window).
    assert exact.push(level(10, LOUD)).size == 20 + 10


def test_each_segment_is_shaped_on_its_own() -> None:
    shaper = PauseShaper(MS, PauseConfig(lead_ms=0))
    first = shaped(shaper, [level(100, LOUD), level(300, HISS)], Boundary.SENTENCE)
    second = shaped(shaper, [level(40, HISS), level(100, LOUD), level(300, HISS)], Boundary.WORD)
    assert (first.size, second.size) == (350, 130)
    # The boundary carries over to the next segment when begin_segment is not called again,
    # also after a segment that made no sound.
    carried = PauseShaper(MS, PauseConfig(lead_ms=0))
    assert shaped(carried, [level(300, HISS)], Boundary.SENTENCE).size == 0
    for _ in range(2):
        out = [carried.push(level(100, LOUD)), carried.push(level(300, HISS)), carried.end_segment()]
        assert np.concatenate(out).size == 100 + 250


def test_begin_segment_drops_what_the_previous_segment_left() -> None:
    shaper = PauseShaper(MS, PauseConfig(lead_ms=0))
    shaper.begin_segment(Boundary.SENTENCE)
    shaper.push(level(100, LOUD))
    shaper.push(level(205, HISS))  # 200 held, 5 pending
    shaper.begin_segment(Boundary.WORD)
    assert shaper.push(level(20, HISS)).size == 0  # a new segment starts in its lead
    assert shaper.end_segment().size == 0


def test_a_tiny_window_is_one_sample() -> None:
    shaper = PauseShaper(MS, PauseConfig(window_ms=0.1, lead_ms=0))
    shaper.begin_segment(Boundary.WORD)
    assert shaper.push(level(3, LOUD)).size == 3  # every sample is a whole window
    assert shaper.sample_rate == MS and shaper.config.window_ms == 0.1


def test_a_fresh_shaper_starts_a_sentence_segment() -> None:
    # No begin_segment: the first segment starts in its lead and ends with a sentence's pause.
    shaper = PauseShaper(MS)
    audio = np.concatenate([level(60, HISS), level(100, LOUD), level(400, HISS)])
    out = np.concatenate([shaper.push(p) for p in in_pieces(audio)] + [shaper.end_segment()])
    assert out.size == 10 + 100 + 250
    assert out[0] == 0.0 and out[-1] == 0.0  # faded in and out
    fresh = PauseShaper(MS)
    assert fresh.end_segment().size == 0  # nothing pushed: nothing kept


def test_lengths_in_ms_are_converted_at_the_sample_rate() -> None:
    # At 48 kHz: a 250 ms pause is 12 000 samples, a 10 ms lead 480.
    rate = 48000
    audio = np.concatenate([level(1920, HISS), level(4800, LOUD), level(20000, HISS)])  # whole 480-sample windows
    out = shaped(PauseShaper(rate), [audio], Boundary.SENTENCE)
    assert out.size == 480 + 4800 + 12000
    # Long settings at 1 kHz, where a wrong divisor shows as a sample more or less.
    config = PauseConfig(lead_ms=1000, fade_ms=1000, sentence_ms=2000, window_ms=1000)
    shaper = PauseShaper(MS, config)
    shaper.begin_segment(Boundary.SENTENCE)
    assert shaper.push(level(2000, HISS)).size == 0
    assert shaper.push(level(999, LOUD)).size == 0  # less than one 1000-sample window
    released = shaper.push(level(1001, LOUD))
    assert released.size == 1000 + 2000  # the 1000-sample lead (kept whole) and two windows
    fade_in = HISS * (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, 1000)))
    assert np.allclose(released[:1000], fade_in, rtol=0, atol=1e-9)  # a 1000-sample fade
    shaper.push(level(5000, HISS))
    assert shaper.end_segment().size == 2000


def test_a_one_sample_fade_in_starts_at_zero() -> None:
    out = shaped(PauseShaper(MS, PauseConfig(fade_ms=1)), [level(50, HISS), level(100, LOUD)], Boundary.WORD)
    assert out[:10].tolist() == pytest.approx([0.0] + [HISS] * 9)


def test_output_is_float32_whatever_the_input() -> None:
    shaper = PauseShaper(MS, PauseConfig(lead_ms=0))
    shaper.begin_segment(Boundary.WORD)
    out = shaper.push(np.full(100, LOUD, np.float64))
    assert out.dtype == np.float32 and out.size == 100
