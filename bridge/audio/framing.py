"""PCM framing: float32 audio → fixed-duration binary frames in the session's wire format
(the formats themselves: :mod:`bridge.audio.formats`).

Pure and stateful per utterance: samples that do not fill a frame wait for the next push; the
last, shorter frame goes out at :meth:`Framer.flush`.
"""

from __future__ import annotations

import numpy as np

from bridge.audio.formats import PcmFormat, encode_pcm, is_pcm_format


class Framer:
    """Cuts a float32 stream into frames of ``frame_samples`` samples, encoded as ``fmt``."""

    def __init__(self, frame_samples: int, fmt: PcmFormat = "f32le") -> None:
        if frame_samples <= 0:
            raise ValueError("frame_samples must be positive")
        if not is_pcm_format(fmt):
            raise ValueError(f"unknown PCM format {fmt!r}")
        self.frame_samples = frame_samples
        self.fmt: PcmFormat = fmt
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, audio: np.ndarray) -> list[bytes]:
        """Frames completed by this audio (each exactly ``frame_samples`` long)."""
        if audio.size:
            self._pending = np.concatenate([self._pending, np.asarray(audio, dtype=np.float32)])
        count = self._pending.size // self.frame_samples
        if count == 0:
            return []
        cut = count * self.frame_samples
        whole, self._pending = self._pending[:cut], self._pending[cut:]
        return [encode_pcm(frame, self.fmt) for frame in whole.reshape(count, self.frame_samples)]

    def flush(self) -> list[bytes]:
        """The last, possibly short, frame (nothing if no samples wait)."""
        if self._pending.size == 0:
            return []
        frame, self._pending = self._pending, np.zeros(0, dtype=np.float32)
        return [encode_pcm(frame, self.fmt)]

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
