"""The bridge's audio wire formats, in one place: their names, sample widths, PCM encode/decode.

Every surface speaks these names: the WebSocket ``format`` (config message or ``?format=``),
the ``output_format`` setting, the Python client, the benchmarks and the Discord bot.

* ``f32le``: 48 kHz mono float32, little-endian (the default; what the pipeline makes).
* ``s16le``: 48 kHz mono 16-bit signed, little-endian; full scale is ±32767, so a round trip
  through ``s16le`` is symmetric and never wraps.
* ``opus``: Opus packets, framed as ``ogg`` (one Ogg Opus stream) or ``raw`` (one 20 ms packet a
  frame); made from ``f32le`` PCM by :mod:`bridge.wire`.

Pure functions over numpy; no I/O.
"""

from __future__ import annotations

from typing import Literal, TypeGuard, get_args

import numpy as np

#: PCM sample layouts on the wire.
PcmFormat = Literal["f32le", "s16le"]
#: What a WebSocket session's binary frames hold: PCM, or Opus.
WireFormat = Literal[PcmFormat, "opus"]
#: How Opus packets are framed: one Ogg stream, or one raw packet a binary frame.
OpusFraming = Literal["ogg", "raw"]

PCM_FORMATS: tuple[PcmFormat, ...] = get_args(PcmFormat)
WIRE_FORMATS: tuple[WireFormat, ...] = get_args(WireFormat)
OPUS_FRAMINGS: tuple[OpusFraming, ...] = get_args(OpusFraming)

#: Bytes one mono sample takes in each PCM format.
BYTES_PER_SAMPLE: dict[str, int] = {"f32le": 4, "s16le": 2}
_DTYPES: dict[str, str] = {"f32le": "<f4", "s16le": "<i2"}
#: Full scale of ``s16le`` (symmetric: -32768 is never written).
S16_FULL_SCALE = 32767.0


def is_pcm_format(name: object) -> TypeGuard[PcmFormat]:
    """True for a PCM format's name (``opus`` and anything else: False)."""
    return name in BYTES_PER_SAMPLE


def _check(fmt: str) -> None:
    if fmt not in BYTES_PER_SAMPLE:
        raise ValueError(f"unknown PCM format {fmt!r}")


def to_s16(audio: np.ndarray) -> np.ndarray:
    """Mono float32 in [-1, 1] → little-endian int16 samples. Clips; NaN becomes silence."""
    return np.round(_clean(audio) * S16_FULL_SCALE).astype("<i2")


def _clean(audio: np.ndarray) -> np.ndarray:
    audio = np.nan_to_num(np.asarray(audio, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(audio, -1.0, 1.0)


def encode_pcm(audio: np.ndarray, fmt: PcmFormat) -> bytes:
    """Mono float32 in [-1, 1] → little-endian bytes. Clips; NaN becomes silence."""
    _check(fmt)
    if fmt == "s16le":
        return to_s16(audio).tobytes()
    return _clean(audio).astype("<f4", copy=False).tobytes()


def decode_pcm(data: bytes, fmt: PcmFormat) -> np.ndarray:
    """Little-endian bytes → mono float32 (copying, so unaligned buffers are fine)."""
    _check(fmt)
    samples = np.frombuffer(data, dtype=_DTYPES[fmt]).astype(np.float32)
    if fmt == "s16le":
        samples /= S16_FULL_SCALE
    return samples


def sample_count(data: bytes | int, fmt: PcmFormat) -> int:
    """How many whole samples ``data`` (bytes, or a byte count) holds in ``fmt``."""
    _check(fmt)
    size = data if isinstance(data, int) else len(data)
    return size // BYTES_PER_SAMPLE[fmt]


def format_of_frame(data: bytes, samples: int) -> PcmFormat:
    """The PCM format of a frame known to hold ``samples`` samples (its width tells).

    An empty frame reads as ``s16le``; decoding it gives no samples either way.
    """
    for fmt, width in BYTES_PER_SAMPLE.items():
        if samples and len(data) == width * samples:
            return fmt  # type: ignore[return-value]
    return "s16le"
