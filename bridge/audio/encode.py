"""Compressed and container audio, streamed: the bridge's 48 kHz float32 in, bytes out as they are made.

One encoder per stream (an HTTP response, a WebSocket session, a Wyoming reply). Every method is
blocking CPU work: callers run it in a worker thread (``asyncio.to_thread``), never on the event
loop. The codecs are FFmpeg's, through PyAV (libopus, libmp3lame, aac, flac), muxed into a
write-only sink, so each ``push`` returns the bytes the muxer has written so far: nothing waits
for the end of the text.

* :class:`PcmEncoder` / :class:`WavEncoder`: 16-bit PCM at a chosen rate (OpenAI's ``pcm`` is
  24 kHz s16le, no header). A streamed WAV cannot know its length up front, so its RIFF and data
  sizes say 0xFFFFFFFF ("until the end"), as streaming servers do; players read to the end.
* :class:`ContainerEncoder`: MP3, AAC (ADTS), FLAC or Ogg Opus through a PyAV muxer.
* :class:`OpusPacketEncoder`: raw 20 ms Opus packets (one per 960 samples), for Discord and for
  WebSocket clients that want ``opus_framing: "raw"``; an utterance's last partial frame is padded
  with silence so the stream of packets stays continuous across utterances.
* :class:`OggOpusStream`: one Ogg Opus stream for a whole WebSocket session; at the end of each
  utterance the last pages are pushed out (the Ogg muxer holds the newest page back until the
  next packet, so a 20 ms packet of silence closes each utterance).
"""

from __future__ import annotations

import fractions
import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import av
import numpy as np

from bridge.audio.formats import encode_pcm
from bridge.audio.resample import StreamResampler
from bridge.config import OUTPUT_SAMPLE_RATE

#: OpenAI's ``response_format`` values.
SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
SPEECH_FORMATS: tuple[str, ...] = ("mp3", "opus", "aac", "flac", "wav", "pcm")

#: Opus always runs at 48 kHz here; a packet holds 20 ms.
OPUS_RATE = 48_000
OPUS_FRAME_SAMPLES = OPUS_RATE // 50


@dataclass(frozen=True, slots=True)
class FormatSpec:
    """How one ``response_format`` is made: container, codec, rate, MIME type."""

    content_type: str
    sample_rate: int
    container: str | None = None  # PyAV muxer name; None: raw PCM / WAV written here
    codec: str | None = None


#: OpenAI's formats. OpenAI makes 24 kHz audio; Opus is 48 kHz by nature (Ogg Opus players
#: resample anyway), the others follow OpenAI so that clients which assume 24 kHz stay right.
SPEECH_SPECS: dict[str, FormatSpec] = {
    "mp3": FormatSpec("audio/mpeg", 24_000, "mp3", "libmp3lame"),
    "opus": FormatSpec("audio/ogg", OPUS_RATE, "ogg", "libopus"),
    "aac": FormatSpec("audio/aac", 24_000, "adts", "aac"),
    "flac": FormatSpec("audio/flac", 24_000, "flac", "flac"),
    "wav": FormatSpec("audio/wav", 24_000),
    "pcm": FormatSpec("audio/pcm", 24_000),
}


class Encoder(ABC):
    """48 kHz mono float32 in, encoded bytes out as soon as the codec gives them."""

    content_type: str
    sample_rate: int

    @abstractmethod
    def push(self, audio: np.ndarray) -> bytes:
        """Encode more audio; the bytes ready now (may be empty while the codec fills a frame)."""

    @abstractmethod
    def finish(self) -> bytes:
        """End of stream: the codec's tail and the container's trailer."""


class _Sink:
    """A write-only file for PyAV's muxer: collects what it writes until :meth:`take`."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def _resampler(rate: int) -> StreamResampler | None:
    return None if rate == OUTPUT_SAMPLE_RATE else StreamResampler(OUTPUT_SAMPLE_RATE, rate)


def _clean(audio: np.ndarray) -> np.ndarray:
    audio = np.nan_to_num(np.asarray(audio, dtype=np.float32).reshape(-1), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(audio, -1.0, 1.0)


class PcmEncoder(Encoder):
    """16-bit little-endian mono PCM at ``sample_rate``, no header (OpenAI's ``pcm``: 24 kHz)."""

    content_type = "audio/pcm"

    def __init__(self, sample_rate: int = 24_000) -> None:
        self.sample_rate = sample_rate
        self._resampler = _resampler(sample_rate)

    def push(self, audio: np.ndarray) -> bytes:
        audio = _clean(audio)
        if self._resampler is not None:
            audio = self._resampler.push(audio)
        return encode_pcm(audio, "s16le") if audio.size else b""

    def finish(self) -> bytes:
        if self._resampler is None:
            return b""
        tail = self._resampler.flush()
        return encode_pcm(tail, "s16le") if tail.size else b""


#: RIFF and data chunk sizes of a WAV whose length is not known when its header goes out.
UNKNOWN_LENGTH = 0xFFFFFFFF


def streaming_wav_header(sample_rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """A 44-byte PCM WAV header with the sizes left open (0xFFFFFFFF)."""
    block = channels * bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", UNKNOWN_LENGTH)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block, block, bits)
        + b"data"
        + struct.pack("<I", UNKNOWN_LENGTH)
    )


class WavEncoder(PcmEncoder):
    """A streamed 16-bit WAV: the header first, then PCM as it comes."""

    content_type = "audio/wav"

    def __init__(self, sample_rate: int = 24_000) -> None:
        super().__init__(sample_rate)
        self._header: bytes | None = streaming_wav_header(sample_rate)

    def _with_header(self, data: bytes) -> bytes:
        if self._header is None:
            return data
        header, self._header = self._header, None
        return header + data

    def push(self, audio: np.ndarray) -> bytes:
        return self._with_header(super().push(audio))

    def finish(self) -> bytes:
        return self._with_header(super().finish())


def _frame(samples: np.ndarray, rate: int, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = rate
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, rate)
    return frame


class ContainerEncoder(Encoder):
    """A codec in a container through PyAV (``mp3``, ``adts``, ``flac``, ``ogg``), streamed.

    The sink is not seekable, so the muxer writes each packet as it gets it (FFmpeg flushes
    after every packet on such outputs) and cannot go back to patch a header.
    """

    def __init__(
        self,
        container: str,
        codec: str,
        sample_rate: int,
        *,
        content_type: str = "application/octet-stream",
        bitrate: int | None = None,
        muxer_options: dict[str, str] | None = None,
    ) -> None:
        self.content_type = content_type
        self.sample_rate = sample_rate
        self._resampler = _resampler(sample_rate)
        self._sink = _Sink()
        self._output = av.open(self._sink, mode="w", format=container, options=muxer_options or {})
        self._stream = self._output.add_stream(codec, rate=sample_rate, layout="mono")
        if bitrate:
            self._stream.codec_context.bit_rate = bitrate
        self._pts = 0
        self._closed = False

    def _encode(self, samples: np.ndarray | None) -> None:
        if samples is None:
            packets = self._stream.encode(None)
        else:
            packets = self._stream.encode(_frame(samples, self.sample_rate, self._pts))
            self._pts += samples.size
        for packet in packets:
            self._output.mux(packet)

    def push(self, audio: np.ndarray) -> bytes:
        audio = _clean(audio)
        if self._resampler is not None:
            audio = self._resampler.push(audio)
        if audio.size:
            self._encode(np.ascontiguousarray(audio, dtype=np.float32))
        return self._sink.take()

    def finish(self) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        if self._resampler is not None:
            tail = self._resampler.flush()
            if tail.size:
                self._encode(np.ascontiguousarray(tail, dtype=np.float32))
        self._encode(None)
        self._output.close()
        return self._sink.take()


def speech_encoder(fmt: str, *, opus_bitrate: int = 64_000, bitrate: int | None = None) -> Encoder:
    """The encoder for one of OpenAI's ``response_format`` values."""
    spec = SPEECH_SPECS[fmt]
    if fmt == "pcm":
        return PcmEncoder(spec.sample_rate)
    if fmt == "wav":
        return WavEncoder(spec.sample_rate)
    assert spec.container is not None and spec.codec is not None
    options = {"page_duration": "20000"} if spec.container == "ogg" else None  # a page per packet
    rate = opus_bitrate if fmt == "opus" else bitrate
    return ContainerEncoder(
        spec.container, spec.codec, spec.sample_rate, content_type=spec.content_type, bitrate=rate, muxer_options=options
    )


class _OpusFramer:
    """Cuts 48 kHz audio into exact 960-sample frames; pads an utterance's last partial frame."""

    def __init__(self) -> None:
        self._pending = np.zeros(0, np.float32)
        #: Samples of real audio in the frames handed out so far (padding not counted).
        self.samples = 0

    def push(self, audio: np.ndarray) -> list[np.ndarray]:
        audio = _clean(audio)
        if audio.size:
            self._pending = np.concatenate([self._pending, audio])
        count = self._pending.size // OPUS_FRAME_SAMPLES
        cut = count * OPUS_FRAME_SAMPLES
        frames = [self._pending[i : i + OPUS_FRAME_SAMPLES] for i in range(0, cut, OPUS_FRAME_SAMPLES)]
        self._pending = self._pending[cut:]
        self.samples += cut
        return frames

    def pad(self) -> list[np.ndarray]:
        """The partial frame waiting, padded with silence to 20 ms (nothing if none waits)."""
        if self._pending.size == 0:
            return []
        self.samples += self._pending.size
        frame = np.zeros(OPUS_FRAME_SAMPLES, np.float32)
        frame[: self._pending.size] = self._pending
        self._pending = np.zeros(0, np.float32)
        return [frame]

    def drop(self) -> None:
        self._pending = np.zeros(0, np.float32)


def _opus_context(bitrate: int) -> av.CodecContext:
    context = av.CodecContext.create("libopus", "w")
    context.sample_rate = OPUS_RATE
    context.layout = "mono"
    context.format = "s16"
    context.bit_rate = bitrate
    context.time_base = fractions.Fraction(1, OPUS_RATE)
    context.open()
    return context


class OpusPacketEncoder:
    """Raw Opus packets, 20 ms each, 48 kHz mono: what Discord sends and ``is_opus()`` sources read.

    One encoder per listener for its whole session: the codec's state carries across
    utterances, each utterance's last partial frame padded with silence (:meth:`end_utterance`).
    """

    content_type = "audio/opus"
    sample_rate = OPUS_RATE

    def __init__(self, bitrate: int = 64_000) -> None:
        self._codec = _opus_context(bitrate)
        self._framer = _OpusFramer()
        self._pts = 0

    def _encode(self, frames: list[np.ndarray]) -> list[bytes]:
        packets: list[bytes] = []
        for samples in frames:
            packets.extend(bytes(p) for p in self._codec.encode(_frame(samples, OPUS_RATE, self._pts)))
            self._pts += OPUS_FRAME_SAMPLES
        return packets

    def push(self, audio: np.ndarray) -> list[bytes]:
        """Packets for every whole 20 ms frame now available."""
        return self._encode(self._framer.push(audio))

    def end_utterance(self) -> list[bytes]:
        """The utterance's last partial frame, padded to 20 ms."""
        return self._encode(self._framer.pad())

    def drop_pending(self) -> None:
        """A cancel: forget audio that did not fill a frame yet."""
        self._framer.drop()


class OggOpusStream:
    """One Ogg Opus stream over a whole session: pages as they are made, flushed per utterance."""

    content_type = "audio/ogg"
    sample_rate = OPUS_RATE

    def __init__(self, bitrate: int = 64_000) -> None:
        self._encoder = ContainerEncoder(
            "ogg",
            "libopus",
            OPUS_RATE,
            content_type=self.content_type,
            bitrate=bitrate,
            muxer_options={"page_duration": "20000"},
        )
        self._framer = _OpusFramer()

    def _encode(self, frames: list[np.ndarray]) -> bytes:
        data = b"".join(self._encoder.push(f) for f in frames)
        return data

    def push(self, audio: np.ndarray) -> bytes:
        return self._encode(self._framer.push(audio))

    def end_utterance(self) -> bytes:
        """Pad the last frame, then 20 ms of silence: the muxer holds its newest page back until
        the next packet, so the silence pushes the utterance's last speech out now."""
        frames = self._framer.pad() + [np.zeros(OPUS_FRAME_SAMPLES, np.float32)]
        return self._encode(frames)

    def drop_pending(self) -> None:
        self._framer.drop()

    def finish(self) -> bytes:
        return self._encode(self._framer.pad()) + self._encoder.finish()
