"""Opus packets back to PCM, for clients of the bridge (the Python client, tests, benchmarks).

FFmpeg's libopus decoder through PyAV. Raw packets carry no Ogg header, so nothing tells the
decoder the encoder's pre-skip: the audio comes out delayed by the encoder's lookahead
(312 samples, 6.5 ms), every packet giving its full 20 ms.
"""

from __future__ import annotations

import av
import numpy as np

from bridge.audio.encode import OPUS_RATE


class OpusPacketDecoder:
    """One stream of raw Opus packets (48 kHz mono) → float32 arrays, packet by packet."""

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("libopus", "r")
        self._codec.sample_rate = OPUS_RATE
        self._codec.layout = "mono"
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=OPUS_RATE)

    def decode(self, packet: bytes) -> np.ndarray:
        parts = [
            out.to_ndarray().reshape(-1)
            for frame in self._codec.decode(av.Packet(packet))
            for out in self._resampler.resample(frame)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)
