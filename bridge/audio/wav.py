"""WAV files for ``/api/speak`` and ``voice-bridge say``: 16-bit PCM, the format every player reads."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np

from bridge.audio.formats import encode_pcm


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(encode_pcm(audio, "s16le"))
    return buffer.getvalue()


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    Path(path).write_bytes(wav_bytes(audio, sample_rate))


def read_wav(data: bytes | Path) -> tuple[np.ndarray, int]:
    """A 16-bit mono WAV → (float32 samples, rate)."""
    raw = Path(data).read_bytes() if isinstance(data, Path) else data
    with wave.open(io.BytesIO(raw), "rb") as src:
        if src.getsampwidth() != 2 or src.getnchannels() != 1:
            raise ValueError("expected 16-bit mono WAV")
        frames = src.readframes(src.getnframes())
        return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32767.0, src.getframerate()
