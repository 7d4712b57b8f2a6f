"""RVC on a CUDA GPU in fp16: the same voice as the CPU's fp32 conversion, whole and streamed.

``resolve_precision("auto", cuda)`` puts the synthesizer's weights in fp16 (no autocast), so
the GPU path is a different code path from everything the CPU tests run: fp16 weights and
activations, tensors moved between devices at every stage (content features, coarse pitch,
f0, noise tape, decoded audio). These tests check it converts and agrees with the CPU fp32
reference to within fp16 rounding. They skip where no GPU is visible.

Tolerance: fp16 keeps 11 significant bits. Emulating the fp16 chain on the CPU (fp16 weights
on the CPU device) with these tiny voices gives 43 dB signal-to-error against fp32 for the
attention voice, whole or streamed (its 6 attention layers and the flow accumulate rounding),
and 61 dB for the attention-free one. These random-weight voices are not very sensitive,
though: another noise draw still scores 27 dB, and pitch one semitone off 30 dB. The bound,
35 dB, sits between the near misses and fp16 rounding; the tests also check that the near
misses fall below it, so the comparison is known to tell them apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.vc.rvc import (
    ConversionParams,
    DeviceModels,
    RVCStream,
    StreamLayout,
    load_voice,
    resolve_device,
    resolve_precision,
)

from .factories import save_voice
from .stubs import LocalContent, LocalPitch, speech_like

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA GPU: torch.cuda.is_available() is False (the fp16 CUDA path is checked on GPU machines)",
)

#: A realistic streaming layout (as in streaming.py): short lookahead, small decoder padding.
REAL = StreamLayout(block=20, crossfade=4, search=1, context=40, lookahead=4, dec_pad=2)
QUIET = ConversionParams(seed=11).deterministic()
#: Signal-to-error (dB) of the GPU's fp16 output against the CPU's fp32 (see the module docstring).
MIN_SNR_DB = 35.0
SEEDED = ConversionParams(seed=11)


class DeviceContent(LocalContent):
    """:class:`LocalContent` computed on the device the audio arrives on (the chain sends it
    to the voice's device, as it does for the real content encoder)."""

    def extract(self, audio16k: torch.Tensor, version: str) -> torch.Tensor:
        self.calls += 1
        x = torch.as_tensor(audio16k).float().reshape(-1)
        proj = self.proj[version].to(x.device)
        return torch.tanh(x.unfold(0, 400, 320) @ proj)[None]


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(reference**2) / np.mean((reference - other) ** 2)))


@pytest.fixture(scope="module")
def voice_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cuda-voices")
    return {
        "attn": save_voice(root / "attn" / "attn.pth", "v2", True, "40k", seed=1),
        "nono": save_voice(root / "nono" / "nono.pth", "v1", False, "32k", n_layers=0, seed=2),
    }


@pytest.fixture(scope="module")
def cpu_models() -> DeviceModels:
    return DeviceModels(torch.device("cpu"), content_loader=LocalContent, pitch_loader=LocalPitch)


@pytest.fixture(scope="module")
def cuda_models() -> DeviceModels:
    device = resolve_device("auto")
    assert device.type == "cuda"  # auto picks the GPU when there is one
    weights, autocast = resolve_precision("auto", device)
    assert (weights, autocast) == (torch.float16, None)  # auto on CUDA is plain fp16
    assert resolve_precision("fp16", device) == (weights, autocast)
    return DeviceModels(device, weights, autocast=autocast, content_loader=DeviceContent, pitch_loader=LocalPitch)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speech_like(1.6)


@pytest.mark.parametrize("name", ["attn", "nono"])
def test_fp16_conversion_matches_cpu_fp32(voice_files, cpu_models, cuda_models, speech, name: str) -> None:
    cpu = load_voice(name, voice_files[name], cpu_models)
    gpu = load_voice(name, voice_files[name], cuda_models)
    params = {p.dtype for p in gpu.synth.parameters()}
    devices = {p.device.type for p in gpu.synth.parameters()}
    assert params == {torch.float16} and devices == {"cuda"}

    reference = cpu.convert(speech, QUIET, layout=REAL)
    converted = gpu.convert(speech, QUIET, layout=REAL)
    assert converted.dtype == np.float32 and converted.shape == reference.shape
    assert np.all(np.isfinite(converted))
    assert np.sqrt(np.mean(reference**2)) > 0.01  # there is signal to compare
    assert snr_db(reference, converted) > MIN_SNR_DB


def test_seeded_noise_is_the_same_draw_on_both_devices(voice_files, cpu_models, cuda_models, speech) -> None:
    # The noise tape is drawn on the CPU by absolute position and moved to the device, so a
    # seeded conversion agrees across devices as closely as a deterministic one.
    cpu = load_voice("attn", voice_files["attn"], cpu_models)
    gpu = load_voice("attn", voice_files["attn"], cuda_models)
    reference = cpu.convert(speech, SEEDED, layout=REAL)
    converted = gpu.convert(speech, SEEDED, layout=REAL)
    assert snr_db(reference, converted) > MIN_SNR_DB
    other_draw = cpu.convert(speech, ConversionParams(seed=12), layout=REAL)
    assert snr_db(reference, other_draw) < MIN_SNR_DB  # the bound tells draws apart


def test_stream_on_cuda_converts_and_matches_cpu(voice_files, cpu_models, cuda_models, speech) -> None:
    cpu = load_voice("attn", voice_files["attn"], cpu_models)
    gpu = load_voice("attn", voice_files["attn"], cuda_models)

    def stream_all(voice, pitch_shift: float = 2.0, chunk: int = 3000) -> np.ndarray:
        stream = RVCStream(voice, 16_000, params=QUIET, layout=REAL, pitch_shift=pitch_shift)
        parts = [stream.push(speech[i : i + chunk]) for i in range(0, len(speech), chunk)]
        parts.append(stream.flush())
        return np.concatenate(parts)

    reference = stream_all(cpu)
    streamed = stream_all(gpu)
    assert len(streamed) == len(reference) == len(speech) * 40_000 // 16_000
    assert streamed.dtype == np.float32 and np.all(np.isfinite(streamed))
    assert np.sqrt(np.mean(streamed**2)) > 0.01
    assert snr_db(reference, streamed) > MIN_SNR_DB
    assert snr_db(reference, stream_all(cpu, pitch_shift=1.0)) < MIN_SNR_DB  # a semitone off fails
