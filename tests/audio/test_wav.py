"""bridge.audio.wav: float samples survive a WAV round trip."""

from __future__ import annotations

import numpy as np

from bridge.audio.wav import read_wav, wav_bytes
from tests.audio.test_resample import tone


def test_wav_round_trip() -> None:
    audio = tone(0.1, rate=48000)
    back, rate = read_wav(wav_bytes(audio, 48000))
    assert rate == 48000 and np.allclose(back, audio, atol=1e-4)
