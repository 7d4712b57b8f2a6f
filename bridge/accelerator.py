"""Which GPU the models run on, whichever vendor made it: the facts ``/health`` reports and the
precision choices that depend on the hardware.

PyTorch's ROCm builds keep the ``cuda`` device API: on an AMD GPU the device is still ``cuda``,
``torch.cuda.is_available()`` is true and ``torch.cuda.get_device_name()`` names the card. What
tells the two apart is ``torch.version.hip`` (set on ROCm builds) against ``torch.version.cuda``.
So the rest of the bridge asks for ``cuda`` and stays vendor-neutral; what differs by vendor
(the name of the API for an operator, which GPUs compute bfloat16 natively) is decided here.

torch is passed in (or taken from ``sys.modules``) and never imported here: the CPU-only install
has no torch, and a process that has not loaded it yet should not pay for it on a health probe.
"""

from __future__ import annotations

import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: AMD architectures (``gcnArchName`` prefixes) with bfloat16 in their matrix or dot-product
#: instructions: CDNA 1-4 (MI100 gfx908, MI200 gfx90a, MI300 gfx94x, MI350 gfx95x) and RDNA 3-4
#: (gfx11xx, gfx12xx). RDNA 2 (gfx103x: RX 6000, the RX 6800 included) and older have none.
AMD_BF16_ARCHS = ("gfx908", "gfx90a", "gfx94", "gfx95", "gfx11", "gfx12")
#: NVIDIA: bfloat16 tensor cores from compute capability 8.0 (Ampere) on.
NVIDIA_BF16_MAJOR = 8


@dataclass(frozen=True)
class Accelerator:
    """One GPU as torch sees it."""

    device: str  # "cuda:0": what torch calls it, on either vendor
    api: str  # "cuda" (NVIDIA) or "rocm" (AMD)
    api_version: str | None  # torch.version.cuda / torch.version.hip
    name: str  # torch.cuda.get_device_name(), e.g. "AMD Radeon RX 6800"
    arch: str | None  # "sm_86", or the AMD gcnArchName ("gfx1030")
    memory_total_bytes: int | None
    native_bf16: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gpu_api(torch: Any) -> str | None:
    """``rocm`` for a ROCm build of torch, ``cuda`` for a CUDA build, None for a CPU-only build."""
    version = getattr(torch, "version", None)
    if getattr(version, "hip", None):
        return "rocm"
    if getattr(version, "cuda", None):
        return "cuda"
    return None


def device_index(torch: Any, device: str) -> int:
    """The index in ``cuda`` / ``cuda:N`` (the current device when none is given)."""
    _, _, index = device.partition(":")
    return int(index) if index else int(torch.cuda.current_device())


def has_native_bf16(torch: Any, index: int) -> bool:
    """Whether GPU ``index`` computes bfloat16 in hardware; elsewhere it is emulated and slow.

    Not ``torch.cuda.is_bf16_supported()``: that is true on every ROCm GPU (and on NVIDIA it
    counts emulation too), so it would pick bfloat16 for an RX 6800, which has no bf16 maths.
    """
    if gpu_api(torch) == "rocm":
        arch = str(getattr(torch.cuda.get_device_properties(index), "gcnArchName", "") or "")
        return arch.startswith(AMD_BF16_ARCHS)
    major, _ = torch.cuda.get_device_capability(index)
    return int(major) >= NVIDIA_BF16_MAJOR


def describe(torch: Any, device: str) -> Accelerator:
    """The facts about GPU ``device`` (``cuda`` or ``cuda:N``), on NVIDIA or AMD alike."""
    index = device_index(torch, device)
    api = gpu_api(torch) or "cuda"
    properties = torch.cuda.get_device_properties(index)
    if api == "rocm":
        arch = getattr(properties, "gcnArchName", None) or None
        version = torch.version.hip
    else:
        major, minor = torch.cuda.get_device_capability(index)
        arch = f"sm_{major}{minor}"
        version = torch.version.cuda
    memory = getattr(properties, "total_memory", None)
    return Accelerator(
        device=f"cuda:{index}",
        api=api,
        api_version=str(version) if version else None,
        name=str(torch.cuda.get_device_name(index)),
        arch=str(arch).split(":")[0] if arch else None,  # gcnArchName may carry ":sramecc+:xnack-"
        memory_total_bytes=int(memory) if memory is not None else None,
        native_bf16=has_native_bf16(torch, index),
    )


def accelerators_in_use(devices: list[str], torch: Any | None = None) -> list[dict[str, Any]]:
    """What ``/health`` says about the GPUs among ``devices`` (the stages' resolved devices).

    Empty when no stage runs on a GPU, or torch is not loaded (then none can). A GPU that
    cannot be queried is reported with the error rather than failing the health probe.
    """
    gpus = list(dict.fromkeys(d for d in devices if d.split(":")[0] == "cuda"))
    if not gpus:
        return []
    torch = torch if torch is not None else sys.modules.get("torch")
    if torch is None:
        return []
    out: list[dict[str, Any]] = []
    for device in gpus:
        try:
            out.append(describe(torch, device).as_dict())
        except Exception as exc:  # noqa: BLE001 - a driver error must not turn /health into a 500
            out.append({"device": device, "error": f"{type(exc).__name__}: {exc}"})
    return list({entry["device"]: entry for entry in out}.values())  # "cuda" and "cuda:0" are one


def auto_lm_dtype(torch: Any, device: str) -> str:
    """The ``auto`` precision of a language model on ``device``: bfloat16 where the GPU computes
    it natively, float32 elsewhere (the CPU, an RX 6800, a pre-Ampere NVIDIA card). Not float16:
    a language model's activations can overflow its range, and bf16 keeps fp32's."""
    if device.split(":")[0] != "cuda":
        return "float32"
    return "bfloat16" if has_native_bf16(torch, device_index(torch, device)) else "float32"


class NoGPUError(RuntimeError):
    """A GPU device was asked for, but torch sees none (neither CUDA nor ROCm)."""


def resolve_device(torch: Any, name: str) -> str:
    """The device a stage runs on, from its setting: ``auto`` → ``cuda`` when torch sees a GPU
    (NVIDIA, or AMD through ROCm), else ``cpu``; ``cuda``/``cuda:N`` only when it does (a silent
    CPU run would be mislabelled and far slower than asked for); anything else as given.

    The one resolver of every stage (TTS engines, voice conversion), so that ``device = auto``
    means the same device for all of them."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.split(":")[0] == "cuda" and not torch.cuda.is_available():
        raise NoGPUError(
            f"device {name!r} requested but torch {getattr(torch, '__version__', '')} sees no CUDA GPU "
            "(NVIDIA, or AMD through a ROCm build)"
        )
    return name


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX): where it does, bf16
    convolutions run about twice as fast as fp32; elsewhere they are emulated and slower."""
    try:
        flags = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))
