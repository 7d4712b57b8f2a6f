"""PCM framing (bridge/audio/framing.py): exact frames, the short last one at flush, in either PCM format."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.audio.formats import decode_pcm, encode_pcm
from bridge.audio.framing import Framer


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


def test_a_push_short_of_a_frame_waits_and_an_exact_fill_leaves_nothing() -> None:
    framer = Framer(4, "f32le")
    assert framer.push(np.ones(3, np.float32)) == []
    frames = framer.push(np.full(1, 0.5, np.float32))
    assert [decode_pcm(f, "f32le").tolist() for f in frames] == [[1.0, 1.0, 1.0, 0.5]]
    assert framer.flush() == []  # nothing waits after an exact fill
    assert framer.push(np.zeros(0, np.float32)) == []


def test_frames_keep_the_order_of_the_samples() -> None:
    framer = Framer(2, "f32le")
    values = np.array([0.1, 0.2, 0.3, 0.4, 0.5], np.float32)
    frames = framer.push(values) + framer.flush()
    assert [decode_pcm(f, "f32le").tolist() for f in frames] == [
        pytest.approx([0.1, 0.2]), pytest.approx([0.3, 0.4]), pytest.approx([0.5])
    ]


def test_reset_drops_what_waits() -> None:
    framer = Framer(4, "s16le")
    framer.push(np.ones(3, np.float32))
    framer.reset()
    assert framer.flush() == []
    assert framer.push(np.ones(4, np.float32)) == [encode_pcm(np.ones(4, np.float32), "s16le")]


def test_the_default_format_is_f32le() -> None:
    framer = Framer(2)
    assert framer.fmt == "f32le"
    assert framer.push(np.array([0.25, -0.25], np.float32)) == [np.array([0.25, -0.25], "<f4").tobytes()]


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown PCM format 'mp3'"):
        Framer(10, "mp3")  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, -1])
def test_frame_size_must_be_positive(size: int) -> None:
    with pytest.raises(ValueError, match="^frame_samples must be positive$"):
        Framer(size)
    assert Framer(1).frame_samples == 1


# Values whose s16 differs by one step between float32 and float64 arithmetic (x × 32767
# rounds on either side of .5): the wire format's samples are the float32 ones.
F32_SAMPLE = np.float32(0.8685720562934875)  # float32 arithmetic: 28460 (float64: 28461)
F64_SAMPLE = -0.9067506552216229  # as float32: -29712 (as float64: -29711)


def s16(frames: list[bytes]) -> list[int]:
    return np.frombuffer(b"".join(frames), "<i2").tolist()


def test_the_framer_keeps_float32_before_after_flush_and_after_reset() -> None:
    framer = Framer(1, "s16le")
    assert s16(framer.push(np.array([F64_SAMPLE]))) == [-29712]  # float64 in
    assert s16(framer.push(np.array([F32_SAMPLE], np.float32))) == [28460]
    framer.push(np.array([0.5, 0.5], np.float32)[:0])
    assert framer.flush() == []
    two = Framer(2, "s16le")
    two.push(np.array([F32_SAMPLE], np.float32))
    assert s16(two.flush()) == [28460]  # the short last frame
    assert s16(two.push(np.array([F32_SAMPLE, F32_SAMPLE], np.float32))) == [28460, 28460]
    two.push(np.array([0.1], np.float32))
    two.reset()
    assert s16(two.push(np.array([F32_SAMPLE, F32_SAMPLE], np.float32))) == [28460, 28460]
