"""bridge.audio.resample: streamed resampling is continuous and equals the whole-buffer result."""

from __future__ import annotations

import numpy as np

from bridge.audio.resample import StreamResampler, resample

RATE = 22050


def tone(seconds: float, freq: float = 220.0, rate: int = RATE, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


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
