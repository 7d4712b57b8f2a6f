"""Fixtures for the voice-conversion tests: small thread count, models and voices built once
(tiny local content and pitch models, random voices of each RVC variant), speech-like input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.vc.device_models import DeviceModels
from bridge.vc.voice import load_voice

from .factories import save_voice, write_index, write_tiny_hubert
from .stubs import LocalContent, LocalPitch, speech_like


@pytest.fixture(scope="session", autouse=True)
def _torch_threads() -> None:
    # Tiny models on a small, shared machine: one intra-op thread is the fastest (thread
    # start-up and barriers cost more than these convolutions).
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def models() -> DeviceModels:
    return DeviceModels(torch.device("cpu"), content_loader=LocalContent, pitch_loader=LocalPitch, concurrency=2)


@pytest.fixture(scope="session")
def voice_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("voices")
    return {
        "local": save_voice(root / "local" / "local.pth", "v2", True, "40k", n_layers=0, seed=1),
        "attn": save_voice(root / "attn" / "attn.pth", "v2", True, "40k", seed=1),
        "nono": save_voice(root / "nono" / "nono.pth", "v1", False, "32k", n_layers=0, seed=2),
        "v1f0": save_voice(root / "v1f0" / "v1f0.pth", "v1", True, "48k", n_layers=0, seed=3, dialect="applio"),
    }


@pytest.fixture(scope="session")
def voices(voice_files: dict[str, Path], models: DeviceModels):
    return {name: load_voice(name, path, models) for name, path in voice_files.items()}


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    return speech_like(1.6)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder as a user installs one: a tiny HuBERT, a v1 voice with its index, a broken voice."""
    root = tmp_path_factory.mktemp("models")
    write_tiny_hubert(root / "hubert_base")
    save_voice(root / "voices" / "keeper" / "keeper.pth", "v1", True, "40k", n_layers=2, seed=4)
    write_index(root / "voices" / "keeper" / "added_IVF4_Flat_nprobe_1_keeper_v1.index")
    broken = root / "voices" / "broken" / "broken.pth"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"PK\x03\x04 not a whole checkpoint")
    return root
