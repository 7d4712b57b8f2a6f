"""bridge/vc/voice.py: a loaded voice's retrieval (index rate, protect) and its conversion in bf16."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bridge.vc.device_models import DeviceModels
from bridge.vc.layout import ConversionParams
from bridge.vc.voice import load_voice

from .stubs import LocalContent, LocalPitch
from .streaming import QUIET, REAL


def test_retrieval_and_protect(voices, voice_files, speech, tmp_path: Path) -> None:
    import faiss

    voice = voices["local"]
    target = np.full((1, 768), 0.5, np.float32)
    index = faiss.IndexFlatL2(768)
    index.add(np.repeat(target, 16, axis=0))
    path = tmp_path / "added_IVF1_Flat_nprobe_1_x_v2.index"
    faiss.write_index(index, str(path))
    from bridge.vc.retrieval import FeatureIndex

    indexed = load_voice("local", voice_files["local"], voice.models, index_path=path)
    frames = len(speech) // 160
    f0 = np.asarray(indexed.estimate_f0(speech), np.float32)
    full = indexed._features(speech, frames, f0, ConversionParams(index_rate=1.0, protect=0.5))
    assert torch.allclose(full, torch.full_like(full, 0.5), atol=1e-5)
    protected = indexed._features(speech, frames, f0, ConversionParams(index_rate=1.0, protect=0.2))
    raw = voice._features(speech, frames, f0, ConversionParams(index_rate=0.0))
    voiced = torch.from_numpy(f0[:frames] > 0)
    assert torch.allclose(protected[0, voiced], full[0, voiced], atol=1e-5)
    want = 0.2 * 0.5 + 0.8 * raw[0, ~voiced]
    assert torch.allclose(protected[0, ~voiced], want, atol=1e-5)
    assert isinstance(indexed.index, FeatureIndex)


def test_bf16_autocast_runs_and_stays_close(voice_files, speech) -> None:
    fp32 = DeviceModels(torch.device("cpu"), content_loader=LocalContent, pitch_loader=LocalPitch)
    bf16 = DeviceModels(torch.device("cpu"), autocast=torch.bfloat16, content_loader=LocalContent, pitch_loader=LocalPitch)
    a = load_voice("attn", voice_files["attn"], fp32).convert(speech, QUIET, layout=REAL)
    b = load_voice("attn", voice_files["attn"], bf16).convert(speech, QUIET, layout=REAL)
    snr = 10 * np.log10(np.mean(a**2) / np.mean((a - b) ** 2))
    assert 15 < snr < 120  # close, but really computed in another precision
