"""bridge/vc/device.py: the precision chosen for a device."""

from __future__ import annotations

import pytest
import torch

from bridge.vc.base import VoiceError


def test_auto_precision(monkeypatch) -> None:
    from bridge.vc import device as rvc

    cpu = torch.device("cpu")
    monkeypatch.setattr(rvc, "cpu_has_native_bf16", lambda: True)
    assert rvc.resolve_precision("auto", cpu) == (torch.float32, torch.bfloat16)
    monkeypatch.setattr(rvc, "cpu_has_native_bf16", lambda: False)
    assert rvc.resolve_precision("auto", cpu) == (torch.float32, None)
    assert rvc.resolve_precision("auto", torch.device("cuda")) == (torch.float16, None)
    assert rvc.resolve_precision("fp32", cpu) == (torch.float32, None)
    with pytest.raises(VoiceError, match="fp16 precision needs a CUDA device"):
        rvc.resolve_precision("fp16", cpu)
    with pytest.raises(VoiceError, match="unknown precision"):
        rvc.resolve_precision("fp8", cpu)
