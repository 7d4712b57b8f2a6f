"""bridge/accelerator.py: the same code on NVIDIA and AMD GPUs, checked on the CPU.

No GPU here: torch is replaced by the facts a CUDA or a ROCm build of torch reports (the
attributes bridge.accelerator reads, with values those builds give on real cards), so what is
tested is the decision on those facts, and /health on a real server reporting them.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from bridge.accelerator import (
    NoGPUError,
    accelerators_in_use,
    auto_lm_dtype,
    cpu_has_native_bf16,
    describe,
    gpu_api,
    has_native_bf16,
    resolve_device,
)
from bridge.server import STATE
from tests.support.engines_util import AcceleratedTone, StubConverter


class FakeCuda:
    """torch.cuda as a GPU build answers it, for one card at index 0."""

    def __init__(self, name: str, capability: tuple[int, int], arch: str | None, memory: int) -> None:
        self.name, self.capability, self.memory = name, capability, memory
        self.arch = arch
        self.queried: list[int] = []

    def is_available(self) -> bool:
        return True

    def current_device(self) -> int:
        return 0

    def get_device_name(self, index: int) -> str:
        self.queried.append(index)
        if index != 0:
            raise RuntimeError("invalid device ordinal")
        return self.name

    def get_device_capability(self, index: int) -> tuple[int, int]:
        return self.capability

    def get_device_properties(self, index: int) -> Any:
        props = SimpleNamespace(name=self.name, total_memory=self.memory, major=self.capability[0])
        if self.arch is not None:  # only ROCm builds have gcnArchName
            props.gcnArchName = self.arch
        return props


def rocm_torch(name: str = "AMD Radeon RX 6800", arch: str = "gfx1030", memory: int = 16 << 30) -> Any:
    # A ROCm build: version.hip set, version.cuda None. Its get_device_capability() is a made-up
    # pair for AMD cards (9.x, 10.x, 11.x by family), no guide to bf16: it is set high on purpose.
    return SimpleNamespace(version=SimpleNamespace(hip="7.2.26015", cuda=None), cuda=FakeCuda(name, (10, 3), arch, memory))


def cuda_torch(name: str, capability: tuple[int, int], memory: int = 24 << 30) -> Any:
    return SimpleNamespace(version=SimpleNamespace(hip=None, cuda="12.8"), cuda=FakeCuda(name, capability, None, memory))


def test_the_vendor_is_told_by_the_torch_build_not_the_device_name() -> None:
    assert gpu_api(rocm_torch()) == "rocm"
    assert gpu_api(cuda_torch("NVIDIA GeForce RTX 4090", (8, 9))) == "cuda"
    assert gpu_api(SimpleNamespace(version=SimpleNamespace(hip=None, cuda=None))) is None  # the CPU wheel
    import torch  # the CPU build installed here

    assert gpu_api(torch) is None


def test_an_rx_6800_is_described_by_its_name_arch_and_rocm_version() -> None:
    torch = rocm_torch()
    card = describe(torch, "cuda")
    assert card.as_dict() == {
        "device": "cuda:0",
        "api": "rocm",
        "api_version": "7.2.26015",
        "name": "AMD Radeon RX 6800",
        "arch": "gfx1030",
        "memory_total_bytes": 16 << 30,
        "native_bf16": False,
    }


def test_an_nvidia_card_is_described_with_its_cuda_version_and_compute_capability() -> None:
    card = describe(cuda_torch("NVIDIA A10", (8, 6)), "cuda:0")
    assert (card.api, card.api_version, card.name, card.arch, card.native_bf16) == ("cuda", "12.8", "NVIDIA A10", "sm_86", True)


@pytest.mark.parametrize(
    ("torch", "native"),
    [
        (rocm_torch("AMD Radeon RX 6800", "gfx1030"), False),  # RDNA 2: no bf16 instructions
        (rocm_torch("AMD Radeon RX 7900 XTX", "gfx1100"), True),  # RDNA 3: WMMA bf16
        (rocm_torch("AMD Instinct MI300X", "gfx942:sramecc+:xnack-"), True),
        (rocm_torch("AMD Instinct MI210", "gfx90a:sramecc+:xnack-"), True),
        (rocm_torch("AMD Radeon VII", "gfx906"), False),
        (cuda_torch("Tesla T4", (7, 5)), False),
        (cuda_torch("NVIDIA A100-SXM4-80GB", (8, 0)), True),
    ],
    ids=["rx6800", "rx7900", "mi300x", "mi210", "radeon7", "t4", "a100"],
)
def test_bf16_is_native_only_where_the_hardware_computes_it(torch: Any, native: bool) -> None:
    """ROCm's torch.cuda.is_bf16_supported() says True on every AMD GPU; the arch decides here."""
    assert has_native_bf16(torch, 0) is native
    # Soprano's LM: bf16 where native, else fp32 (never fp16, whose range a LM can overflow).
    assert auto_lm_dtype(torch, "cuda") == ("bfloat16" if native else "float32")
    assert auto_lm_dtype(torch, "cpu") == "float32"


def cpu_only_torch() -> Any:
    return SimpleNamespace(__version__="2.13.0+cpu", version=SimpleNamespace(hip=None, cuda=None),
                           cuda=SimpleNamespace(is_available=lambda: False))


@pytest.mark.parametrize("torch", [rocm_torch(), cuda_torch("NVIDIA H200", (9, 0))], ids=["rocm", "cuda"])
def test_every_stage_resolves_auto_to_the_gpu_on_either_vendor(torch: Any) -> None:
    assert resolve_device(torch, "auto") == resolve_device(torch, "") == "cuda"
    assert resolve_device(torch, " CUDA:1 ") == "cuda:1"
    assert resolve_device(torch, "cpu") == "cpu"


def test_without_a_gpu_auto_is_the_cpu_and_asking_for_cuda_is_an_error() -> None:
    torch = cpu_only_torch()
    assert resolve_device(torch, "auto") == "cpu"
    for name in ("cuda", "cuda:0"):
        with pytest.raises(NoGPUError, match=f"device '{name}' requested but torch 2.13.0\\+cpu sees no CUDA GPU"):
            resolve_device(torch, name)


def test_native_cpu_bf16_is_read_from_the_cpu_flags(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n")
    assert cpu_has_native_bf16(cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu avx2 avx512f avx512_vnni\n")
    assert not cpu_has_native_bf16(cpuinfo)
    assert not cpu_has_native_bf16(tmp_path / "absent")


def test_health_facts_only_for_gpus_and_one_entry_per_card() -> None:
    torch = rocm_torch()
    assert accelerators_in_use(["cpu"], torch) == []
    assert accelerators_in_use([], torch) == []
    [card] = accelerators_in_use(["cuda", "cuda:0", "cpu"], torch)  # "cuda" is the current card
    assert card["name"] == "AMD Radeon RX 6800" and card["api"] == "rocm"
    # A card the driver cannot describe is reported, not raised (the health probe stays 200).
    [broken] = accelerators_in_use(["cuda:1"], torch)
    assert broken["device"] == "cuda:1" and "invalid device ordinal" in broken["error"]


def test_torch_not_loaded_means_no_gpu_facts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert accelerators_in_use(["cuda:0"]) == []
    assert "torch" not in sys.modules, "a health probe must not import torch"


async def test_health_names_the_amd_gpu_a_rocm_build_reports(server_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """/health on a real server whose stages resolved to `cuda` under a ROCm build of torch."""
    torch = rocm_torch()
    srv = await server_factory(AcceleratedTone("cuda"), device="cuda")
    srv.app[STATE].engines.voice = StubConverter("cuda:0")
    monkeypatch.setitem(sys.modules, "torch", torch)
    async with aiohttp.ClientSession() as http, http.get(srv.url + "/health") as response:
        body = await response.json()
    assert response.status == 200 and body["status"] == "ok"
    assert body["device"] == "cuda, cuda:0"  # torch's own names, on AMD as on NVIDIA
    assert [(a["api"], a["name"], a["arch"]) for a in body["accelerators"]] == [("rocm", "AMD Radeon RX 6800", "gfx1030")]
    monkeypatch.setitem(sys.modules, "torch", cuda_torch("NVIDIA GeForce RTX 3090", (8, 6)))
    async with aiohttp.ClientSession() as http, http.get(srv.url + "/health") as response:
        body = await response.json()
    assert [(a["api"], a["name"]) for a in body["accelerators"]] == [("cuda", "NVIDIA GeForce RTX 3090")]


async def test_health_on_the_cpu_lists_no_accelerator(server_factory) -> None:
    srv = await server_factory()
    async with aiohttp.ClientSession() as http, http.get(srv.url + "/health") as response:
        body = await response.json()
    assert body["device"] == "cpu" and body["accelerators"] == []
