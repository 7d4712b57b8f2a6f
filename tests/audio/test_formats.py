"""The wire formats (bridge/audio/formats.py): their names and widths, PCM encode/decode, counting samples."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest

from bridge.audio.formats import (
    BYTES_PER_SAMPLE,
    OPUS_FRAMINGS,
    PCM_FORMATS,
    WIRE_FORMATS,
    WireFormat,
    decode_pcm,
    encode_pcm,
    format_of_frame,
    is_pcm_format,
    sample_count,
    to_s16,
)


def test_the_names_every_surface_speaks() -> None:
    assert PCM_FORMATS == ("f32le", "s16le")
    assert WIRE_FORMATS == ("f32le", "s16le", "opus") == get_args(WireFormat)
    assert OPUS_FRAMINGS == ("ogg", "raw")
    assert BYTES_PER_SAMPLE == {"f32le": 4, "s16le": 2}


@pytest.mark.parametrize(("name", "pcm"), [("f32le", True), ("s16le", True), ("opus", False), ("mp3", False), (None, False)])
def test_is_pcm_format(name: object, pcm: bool) -> None:
    assert is_pcm_format(name) is pcm


def test_encoding_clips_and_silences_nan() -> None:
    data = encode_pcm(np.array([2.0, -3.0, np.nan, 0.5], np.float32), "f32le")
    assert decode_pcm(data, "f32le").tolist() == [1.0, -1.0, 0.0, 0.5]
    assert decode_pcm(encode_pcm(np.array([1.0, -1.0], np.float32), "s16le"), "s16le").tolist() == [1.0, -1.0]


@pytest.mark.parametrize("fmt", PCM_FORMATS)
def test_infinities_are_full_scale(fmt: str) -> None:
    audio = np.array([np.inf, -np.inf, np.nan], np.float32)
    assert decode_pcm(encode_pcm(audio, fmt), fmt).tolist() == [1.0, -1.0, 0.0]  # type: ignore[arg-type]


def test_s16le_is_little_endian_rounded_full_scale() -> None:
    data = encode_pcm(np.array([1.0, -1.0, 0.5, 0.0, 2.0, -2.0], np.float32), "s16le")
    assert np.frombuffer(data, "<i2").tolist() == [32767, -32767, 16384, 0, 32767, -32767]
    assert data[:2] == b"\xff\x7f"  # little-endian
    assert len(data) == 6 * BYTES_PER_SAMPLE["s16le"]


def test_f32le_is_little_endian_float32() -> None:
    data = encode_pcm(np.array([0.5, -1.0], np.float64), "f32le")
    assert data == np.array([0.5, -1.0], "<f4").tobytes() and len(data) == 2 * BYTES_PER_SAMPLE["f32le"]
    assert decode_pcm(data, "f32le").dtype == np.float32
    assert decode_pcm(np.array([16384], "<i2").tobytes(), "s16le").dtype == np.float32
    assert decode_pcm(np.array([16384], "<i2").tobytes(), "s16le").tolist() == [pytest.approx(16384 / 32767)]


def test_decode_accepts_unaligned_buffers() -> None:
    raw = b"\x00" + encode_pcm(np.array([0.25, -0.5], np.float32), "f32le")
    assert decode_pcm(memoryview(raw)[1:].tobytes(), "f32le").tolist() == [0.25, -0.5]


@pytest.mark.parametrize("name", ["mp3", "opus", "F32LE"])
def test_unknown_pcm_format_is_refused(name: str) -> None:
    for call in (
        lambda: encode_pcm(np.zeros(1, np.float32), name),  # type: ignore[arg-type]
        lambda: decode_pcm(b"\x00\x00", name),  # type: ignore[arg-type]
        lambda: sample_count(b"\x00\x00", name),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match=f"^unknown PCM format '{name}'$"):
            call()


# A value whose s16 differs by one step between float32 and float64 arithmetic (x × 32767
# rounds on either side of .5): the wire format's samples are the float32 ones.
F32_SAMPLE = np.float32(0.8685720562934875)  # float32 arithmetic: 28460 (float64: 28461)
F64_SAMPLE = -0.9067506552216229  # as float32: -29712 (as float64: -29711)


def test_s16le_is_computed_on_float32_samples_whatever_the_input() -> None:
    assert np.frombuffer(encode_pcm(np.array([F32_SAMPLE], np.float32), "s16le"), "<i2").tolist() == [28460]
    assert np.frombuffer(encode_pcm(np.array([F64_SAMPLE], np.float64), "s16le"), "<i2").tolist() == [-29712]


def test_to_s16_is_what_s16le_encodes() -> None:
    audio = np.array([F32_SAMPLE, F64_SAMPLE, 2.0, np.nan, -np.inf], np.float64)
    samples = to_s16(audio)
    assert samples.dtype == np.dtype("<i2")
    assert samples.tolist() == [28460, -29712, 32767, 0, -32767]
    assert samples.tobytes() == encode_pcm(audio, "s16le")


@pytest.mark.parametrize("fmt", PCM_FORMATS)
def test_sample_count_of_bytes_and_of_a_byte_count(fmt: str) -> None:
    data = encode_pcm(np.zeros(7, np.float32), fmt)  # type: ignore[arg-type]
    assert sample_count(data, fmt) == 7  # type: ignore[arg-type]
    assert sample_count(len(data) + 1, fmt) == 7  # a trailing partial sample is not one  # type: ignore[arg-type]
    assert sample_count(b"", fmt) == 0  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", PCM_FORMATS)
def test_a_frame_of_known_length_tells_its_format(fmt: str) -> None:
    audio = np.array([0.5, -0.25, 0.125], np.float32)
    data = encode_pcm(audio, fmt)  # type: ignore[arg-type]
    assert format_of_frame(data, 3) == fmt
    assert decode_pcm(data, format_of_frame(data, 3)).tolist() == pytest.approx(audio.tolist(), abs=1 / 32767)


def test_an_empty_frame_decodes_to_nothing() -> None:
    assert decode_pcm(b"", format_of_frame(b"", 0)).size == 0
