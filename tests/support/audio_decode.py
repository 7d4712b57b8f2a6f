"""Decode what the bridge's encoders made, with PyAV (FFmpeg's decoders): (mono float32, rate)."""

from __future__ import annotations

import io

import av
import numpy as np


def decode_audio(data: bytes, container: str | None = None) -> tuple[np.ndarray, int]:
    """Any container PyAV reads (mp3, adts, flac, ogg, wav) → (mono float32, sample rate)."""
    with av.open(io.BytesIO(data), format=container) as source:
        stream = source.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts = [
            out.to_ndarray().reshape(-1) for frame in source.decode(stream) for out in resampler.resample(frame)
        ]
        parts += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return (np.concatenate(parts) if parts else np.zeros(0, np.float32)).astype(np.float32), rate


def decode_opus_packets(packets: list[bytes]) -> np.ndarray:
    """Raw 20 ms Opus packets (48 kHz mono) → float32, through FFmpeg's libopus decoder."""
    decoder = av.CodecContext.create("libopus", "r")
    decoder.sample_rate = 48000
    decoder.layout = "mono"
    resampler = av.AudioResampler(format="flt", layout="mono", rate=48000)
    parts = [
        out.to_ndarray().reshape(-1)
        for packet in packets
        for frame in decoder.decode(av.Packet(packet))
        for out in resampler.resample(frame)
    ]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def best_lag(reference: np.ndarray, test: np.ndarray, max_lag: int = 4800) -> int:
    """The delay (samples, 0…max_lag) of ``test`` behind ``reference``, by cross-correlation."""
    n = min(reference.size, test.size)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    corr = np.fft.irfft(np.fft.rfft(test[:n], size) * np.conj(np.fft.rfft(reference[:n], size)), size)
    return int(np.argmax(corr[: max_lag + 1]))


def aligned_snr_db(reference: np.ndarray, test: np.ndarray, max_lag: int = 4800) -> float:
    """SNR of ``test`` against ``reference`` once the codec's delay is removed."""
    lag = best_lag(reference, test, max_lag)
    n = min(reference.size, test.size - lag)
    ref, seg = reference[:n], test[lag : lag + n]
    noise = float(np.sum((seg - ref) ** 2))
    return float(10 * np.log10(float(np.sum(ref**2)) / max(noise, 1e-12)))
