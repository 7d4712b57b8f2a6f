"""The pure audio stages: framing, resampling continuity, pause shaping."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.audio.framing import Framer, decode_pcm, encode_pcm
from bridge.audio.pauses import PauseConfig, PauseShaper
from bridge.audio.resample import StreamResampler, resample
from bridge.audio.wav import read_wav, wav_bytes
from bridge.segmenter import Boundary

RATE = 22050


def tone(seconds: float, freq: float = 220.0, rate: int = RATE, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), np.float32)


# ----------------------------------------------------------------------------- framing
@pytest.mark.parametrize("fmt", ["f32le", "s16le"])
def test_framer_cuts_exact_frames_and_flushes_the_rest(fmt: str) -> None:
    framer = Framer(960, fmt)  # 20 ms at 48 kHz
    audio = np.linspace(-1, 1, 960 * 3 + 100, dtype=np.float32)
    frames = framer.push(audio[:1000]) + framer.push(audio[1000:])
    assert len(frames) == 3
    width = 4 if fmt == "f32le" else 2
    assert all(len(f) == 960 * width for f in frames)
    last = framer.flush()
    assert len(last) == 1 and len(last[0]) == 100 * width
    assert framer.flush() == []
    decoded = np.concatenate([decode_pcm(f, fmt) for f in frames + last])
    assert np.allclose(decoded, audio, atol=1 / 32767 + 1e-6)


def test_encoding_clips_and_silences_nan() -> None:
    data = encode_pcm(np.array([2.0, -3.0, np.nan, 0.5], np.float32), "f32le")
    assert decode_pcm(data, "f32le").tolist() == [1.0, -1.0, 0.0, 0.5]
    assert decode_pcm(encode_pcm(np.array([1.0, -1.0], np.float32), "s16le"), "s16le").tolist() == [1.0, -1.0]


def test_decode_accepts_unaligned_buffers() -> None:
    raw = b"\x00" + encode_pcm(np.array([0.25, -0.5], np.float32), "f32le")
    assert decode_pcm(memoryview(raw)[1:].tobytes(), "f32le").tolist() == [0.25, -0.5]


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown PCM format"):
        Framer(10, "mp3")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- resampling
def test_streamed_resampling_equals_whole_and_has_the_right_length() -> None:
    audio = tone(1.0, 440.0)
    stream = StreamResampler(RATE)
    pieces = [stream.push(audio[i : i + 777]) for i in range(0, audio.size, 777)]
    streamed = np.concatenate(pieces + [stream.flush()])
    assert streamed.size == 48000
    whole = resample(audio, RATE)
    assert np.max(np.abs(streamed - whole)[100:-100]) < 1e-3


def test_resampler_restarts_cleanly_after_flush() -> None:
    stream = StreamResampler(RATE)
    first = np.concatenate([stream.push(tone(0.5)), stream.flush()])
    second = np.concatenate([stream.push(tone(0.5)), stream.flush()])
    assert np.allclose(first, second)


def test_same_rate_passes_through() -> None:
    audio = tone(0.1, rate=48000)
    stream = StreamResampler(48000)
    assert np.array_equal(stream.push(audio), audio) and stream.flush().size == 0


# ----------------------------------------------------------------------------- pauses
def shaped(shaper: PauseShaper, parts: list[np.ndarray], boundary: Boundary) -> np.ndarray:
    shaper.begin_segment(boundary)
    out = [shaper.push(p) for p in parts] + [shaper.end_segment()]
    return np.concatenate(out)


def test_trailing_silence_is_trimmed_to_the_boundary_pause() -> None:
    config = PauseConfig(sentence_ms=250, clause_ms=120, word_ms=30, lead_ms=10)
    speech = tone(0.3)
    for boundary, keep_ms in [(Boundary.SENTENCE, 250), (Boundary.PAUSE, 120), (Boundary.WORD, 30)]:
        out = shaped(PauseShaper(RATE, config), [silence(0.06), speech, silence(0.2), silence(0.2)], boundary)
        expected = 0.010 + 0.3 + keep_ms / 1000
        assert abs(out.size / RATE - expected) < 0.011, boundary


def test_silence_inside_a_segment_is_kept() -> None:
    speech = tone(0.2)
    parts = [speech, silence(0.4), speech]
    out = shaped(PauseShaper(RATE, PauseConfig(word_ms=0, lead_ms=0)), parts, Boundary.WORD)
    assert abs(out.size - sum(p.size for p in parts)) <= 220  # within one analysis window


def test_sound_is_never_cut() -> None:
    # A segment whose sound runs to its very end keeps every sample.
    audio = tone(0.25)
    out = shaped(PauseShaper(RATE, PauseConfig(lead_ms=0)), [audio[:1000], audio[1000:]], Boundary.WORD)
    assert out.size == audio.size
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


def test_first_sound_is_released_without_waiting_for_the_segment_end() -> None:
    shaper = PauseShaper(RATE)
    shaper.begin_segment(Boundary.SENTENCE)
    assert shaper.push(silence(0.05)).size == 0
    out = shaper.push(tone(0.1))
    assert out.size >= tone(0.1).size - 220  # all but the last partial window


# ----------------------------------------------------------------------------- wav
def test_wav_round_trip() -> None:
    audio = tone(0.1, rate=48000)
    back, rate = read_wav(wav_bytes(audio, 48000))
    assert rate == 48000 and np.allclose(back, audio, atol=1e-4)
