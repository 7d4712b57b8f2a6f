"""bridge/vc/converter.py: voices listed, loaded and streamed; warming; a required index; the
device's defaults under empty settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.config import Settings
from bridge.vc.base import VoiceError
from bridge.vc.checkpoint import MissingIndexError
from bridge.vc.converter import RVCConverter
from bridge.vc.device_models import DeviceModels
from bridge.vc.voice import load_voice

from .factories import save_voice
from .stubs import record_blocks


def converter_of(settings: Settings, models: DeviceModels) -> RVCConverter:
    return RVCConverter(settings.rvc, settings.engines, models=models)


def make_converter(root: Path, models: DeviceModels, **overrides) -> RVCConverter:
    settings = Settings(**{"models_dir": root, "rvc_block_seconds": 0.2, "rvc_context_seconds": 0.4, **overrides})
    return converter_of(settings, models)


def test_converter_lists_loads_and_streams(tmp_path: Path, models: DeviceModels, speech) -> None:
    save_voice(tmp_path / "voices" / "alice" / "alice.pth", "v2", True, "48k", n_layers=0)
    save_voice(tmp_path / "voices" / "bob" / "model.pth", "v1", False, "32k", n_layers=0)
    (tmp_path / "voices" / "empty").mkdir()
    conv = make_converter(tmp_path, models)
    assert conv.voices() == ["alice", "bob"]
    stream = conv.open_stream("alice", 16000, pitch_shift=-3)
    assert stream.output_rate == 48000 and stream.pitch_shift == -3
    y = np.concatenate([stream.push(speech), stream.flush()])
    assert len(y) == len(speech) * 3
    out, rate = conv.convert("bob", speech[:8000], 16000)
    assert rate == 32000 and len(out) == 16000
    info = conv.info()
    assert set(info["loaded"]) == {"alice", "bob"} and info["device"] == "cpu"
    with pytest.raises(VoiceError, match="unknown voice 'carol'"):
        conv.open_stream("carol", 16000)
    with pytest.raises(VoiceError, match="no .pth"):
        conv.open_stream("empty", 16000)
    with pytest.raises(VoiceError, match="bad voice name"):
        conv.open_stream("../alice", 16000)
    with pytest.raises(VoiceError, match="speaker id"):
        make_converter(tmp_path, models, rvc_speaker_id=7).open_stream("bob", 16000)


def test_warm_runs_each_block_size_the_streams_use(tmp_path: Path, models: DeviceModels, monkeypatch) -> None:
    save_voice(tmp_path / "voices" / "alice" / "alice.pth", "v2", True, "40k", n_layers=0)
    conv = make_converter(tmp_path, models, rvc_block_seconds=1.0, rvc_first_block_seconds=0.3)
    assert conv.layout.sizes == (20, 30, 40, 60, 80, 100)  # steps of 0.2 s, the first and the full block
    converted = record_blocks(monkeypatch)
    for mode, sizes in (("all", [20, 30, 40, 60, 80, 100]), ("edges", [30, 100])):
        converted.clear()
        conv.rvc = conv.rvc.model_copy(update={"warm_block_sizes": mode})
        conv.warm("alice")
        assert converted == sizes, mode
    # auto: every size where kernels are set up per input shape (bf16 on a CPU), else the edges.
    conv.rvc = conv.rvc.model_copy(update={"warm_block_sizes": "auto"})
    monkeypatch.setattr(conv.models, "autocast", torch.bfloat16)
    assert conv.warm_sizes() == conv.layout.sizes
    monkeypatch.setattr(conv.models, "autocast", None)
    assert conv.warm_sizes() == (30, 100)
    with pytest.raises(ValueError):
        Settings(rvc_warm_block_sizes="some")


def test_missing_index_when_required(tmp_path: Path, models: DeviceModels) -> None:
    save_voice(tmp_path / "voices" / "alice" / "alice.pth", "v2", True, "40k", n_layers=0)
    conv = make_converter(tmp_path, models, rvc_require_index=True)
    with pytest.raises(MissingIndexError, match="alice.pth.*no .index"):
        conv.open_stream("alice", 16000)
    with pytest.raises(MissingIndexError, match="gone.index"):
        load_voice("alice", tmp_path / "voices" / "alice" / "alice.pth", models, index_path=tmp_path / "gone.index")


def test_empty_settings_take_the_devices_defaults(tmp_path: Path, models: DeviceModels) -> None:
    from bridge.vc.device import DeviceDefaults

    # The CPU: real time on 2 cores (parselmouth, 2 s blocks, 0.5 s context), paced from 0.6 s.
    conv = converter_of(Settings(models_dir=tmp_path), models)
    info = conv.info()
    assert (info["pitch_method"], info["block_ms"], info["context_ms"]) == ("parselmouth", 2000, 500)
    assert info["first_block_ms"] == 600 and info["paced_blocks"] is True
    # A first block longer than the blocks is cut to them.
    assert converter_of(Settings(models_dir=tmp_path, rvc_block_seconds=0.2), models).info()["first_block_ms"] == 200
    # Explicit settings win over the device's defaults.
    conv = converter_of(
        Settings(models_dir=tmp_path, rvc_pitch_method="rmvpe", rvc_block_seconds=0.5, rvc_context_seconds=1.0), models
    )
    info = conv.info()
    assert (info["pitch_method"], info["block_ms"], info["context_ms"]) == ("rmvpe", 500, 1000)
    # CUDA: RMVPE and short blocks.
    cuda = DeviceDefaults.for_device(torch.device("cuda"))
    assert (cuda.pitch_method, cuda.block_seconds, cuda.context_seconds, cuda.first_block_seconds) == ("rmvpe", 0.5, 1.0, 0.24)


def test_voices_come_from_rvc_voices_dir_when_set(tmp_path: Path, models: DeviceModels) -> None:
    save_voice(tmp_path / "voices" / "alice" / "alice.pth", "v2", True, "40k", n_layers=0)
    save_voice(tmp_path / "elsewhere" / "bob" / "bob.pth", "v2", True, "40k", n_layers=0)
    assert make_converter(tmp_path, models).voices() == ["alice"]
    assert make_converter(tmp_path, models, rvc_voices_dir=tmp_path / "elsewhere").voices() == ["bob"]
