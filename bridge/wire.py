"""What a WebSocket session's binary frames hold: PCM as the pipeline makes it, or Opus
(the format names and PCM layouts: :mod:`bridge.audio.formats`).

``format`` in the config message (or ``?format=`` in the URL) is ``f32le``, ``s16le`` or
``opus``; with ``opus``, ``opus_framing`` is ``ogg`` (default: one Ogg Opus stream for the
session, each binary frame the pages made so far, playable by any Ogg/Opus decoder) or ``raw``
(each binary frame one 20 ms Opus packet, 48 kHz mono: what Discord sends, handed through
with no second encode). Bitrate: the ``opus_bitrate`` setting.

The pipeline keeps making PCM; the session's sender encodes it just before sending
(:class:`WireEncoder`, in a worker thread), so a cancel drops PCM that was never encoded and the
Opus stream the client decodes never has a hole. An utterance's last partial frame is padded
with silence to 20 ms when its ``flushed`` passes.
"""

from __future__ import annotations

import numpy as np

from bridge.audio.encode import OggOpusStream, OpusPacketEncoder
from bridge.audio.formats import OpusFraming, decode_pcm, format_of_frame


def pcm_of(data: bytes, samples: int) -> np.ndarray:
    """An ``AudioOut``'s frame as float32, whichever PCM format the pipeline made it in."""
    return decode_pcm(data, format_of_frame(data, samples))


class WireEncoder:
    """PCM frames → Opus binary frames for one session (blocking: call from a worker thread)."""

    def __init__(self, framing: OpusFraming = "ogg", bitrate: int = 64_000) -> None:
        self.framing = framing
        self._packets = OpusPacketEncoder(bitrate) if framing == "raw" else None
        self._ogg = OggOpusStream(bitrate) if framing == "ogg" else None

    def encode(self, chunks: list[tuple[bytes, int]]) -> list[bytes]:
        """PCM frames ``(data, samples)`` → the binary frames to send now."""
        audio = np.concatenate([pcm_of(data, samples) for data, samples in chunks]) if chunks else np.zeros(0, np.float32)
        if self._packets is not None:
            return self._packets.push(audio)
        assert self._ogg is not None
        pages = self._ogg.push(audio)
        return [pages] if pages else []

    def end_utterance(self) -> list[bytes]:
        """The utterance's last frame, padded to 20 ms (and, for Ogg, its pages flushed)."""
        if self._packets is not None:
            return self._packets.end_utterance()
        assert self._ogg is not None
        pages = self._ogg.end_utterance()
        return [pages] if pages else []

    def drop_pending(self) -> None:
        """A cancel: forget audio that had not filled a frame yet."""
        if self._packets is not None:
            self._packets.drop_pending()
        if self._ogg is not None:
            self._ogg.drop_pending()
