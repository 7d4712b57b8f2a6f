"""Which device and precision the voice stage runs in, and what ``auto`` settings become there.

The device comes from the one resolver every stage uses (:func:`bridge.accelerator.resolve_device`);
the precision (weights dtype and autocast) and the per-device defaults are the voice stage's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bridge.accelerator import NoGPUError, cpu_has_native_bf16
from bridge.accelerator import resolve_device as resolve_device_name
from bridge.vc.base import VoiceError


def resolve_device(name: str) -> torch.device:
    """``auto`` → the first CUDA device when one is usable, else the CPU."""
    try:
        return torch.device(resolve_device_name(torch, name))
    except NoGPUError as exc:
        # ROCm builds of torch answer to "cuda" too: this is "no NVIDIA or AMD GPU usable".
        raise VoiceError(str(exc)) from exc


def resolve_precision(precision: str, device: torch.device) -> tuple[torch.dtype, torch.dtype | None]:
    """(weights dtype, autocast dtype or None). ``auto``: fp16 on CUDA; on the CPU bf16 where
    the CPU has native bf16 (the only way to real time there), else fp32."""
    precision = (precision or "auto").lower()
    if precision == "auto":
        if device.type == "cuda":
            precision = "fp16"
        else:
            precision = "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "fp32":
        return torch.float32, None
    if precision == "fp16":
        if device.type != "cuda":
            raise VoiceError(
                "fp16 precision needs a CUDA device (an NVIDIA GPU, or an AMD one with torch's ROCm build; "
                "use fp32 or bf16 on the CPU)"
            )
        return torch.float16, None
    if precision == "bf16":
        # Weights stay fp32; matmuls/convolutions run in bf16 under autocast, normalisations,
        # softmax and the excitation stay fp32.
        return torch.float32, torch.bfloat16
    raise VoiceError(f"unknown precision {precision!r} (auto, fp32, fp16, bf16)")


@dataclass(frozen=True)
class DeviceDefaults:
    """What the ``auto``/empty RVC settings become on a device.

    On CUDA: RMVPE pitch and short blocks (lowest latency; the GPU has compute to spare). On a
    CPU: parselmouth pitch (RMVPE costs ~0.2 RTF there), blocks up to 2 s with 0.5 s of context,
    so that v2 40k converts in real time on 2 cores (``benchmarks/results/*-rvc-rtf*.md``), and
    a 0.6 s first block: at RTF ≈ 0.6 a shorter one cannot be followed without a gap (blocks
    are then paced, :mod:`bridge.vc.pacing`).
    """

    pitch_method: str
    block_seconds: float
    context_seconds: float
    first_block_seconds: float

    @classmethod
    def for_device(cls, device: torch.device) -> DeviceDefaults:
        if device.type == "cpu":
            return cls(pitch_method="parselmouth", block_seconds=2.0, context_seconds=0.5, first_block_seconds=0.6)
        return cls(pitch_method="rmvpe", block_seconds=0.5, context_seconds=1.0, first_block_seconds=0.24)
