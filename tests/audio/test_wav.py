"""bridge.audio.wav: float samples survive a WAV round trip."""

from __future__ import annotations

import numpy as np

from bridge.audio.wav import read_wav, wav_bytes


def test_wav_round_trip() -> None:
    audio = (0.3 * np.sin(2 * np.pi * 220.0 * np.arange(4800) / 48000)).astype(np.float32)
    back, rate = read_wav(wav_bytes(audio, 48000))
    assert rate == 48000 and np.allclose(back, audio, atol=1e-4)
