"""Applio's ``embedder_model``: voices trained on other content features are refused.

A voice's synthesizer expects the content features it was trained on. The bridge extracts
ContentVec features (``hubert_base.pt``) only, so a voice trained on, say, Chinese HuBERT or
SPIN features would load and then speak garbage; it is refused at load time, with the
embedder named. RVC's own files carry no ``embedder_model`` (always ContentVec).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bridge.vc.base import VoiceError
from bridge.vc.checkpoint import (
    CheckpointError,
    IncompatibleWeightsError,
    UnsupportedVocoderError,
    load_voice_checkpoint,
    read_checkpoint,
)

from .factories import save_voice, voice_dict

#: Applio's other embedder choices (its ``embedder_model`` dropdown), in its own spelling.
OTHER_EMBEDDERS = ["chinese-hubert-base", "japanese-hubert-base", "korean-hubert-base", "spin", "custom"]


@pytest.mark.parametrize("embedder", OTHER_EMBEDDERS)
def test_non_contentvec_embedder_is_refused(tmp_path: Path, embedder: str) -> None:
    path = save_voice(tmp_path / "other.pth", "v2", True, "40k", dialect="applio", embedder_model=embedder)
    for load in (read_checkpoint, load_voice_checkpoint):
        with pytest.raises(CheckpointError) as info:
            load(path)
        error = info.value
        assert isinstance(error, VoiceError)  # the server reports it like any bad voice
        assert not isinstance(error, (UnsupportedVocoderError, IncompatibleWeightsError))
        message = str(error)
        assert path.name in message
        assert repr(embedder) in message
        assert "ContentVec" in message


@pytest.mark.parametrize("embedder", ["contentvec", "ContentVec", " contentvec ", "hubert_base", "hubert", ""])
def test_contentvec_spellings_load(tmp_path: Path, embedder: str) -> None:
    path = save_voice(tmp_path / "cv.pth", "v2", True, "40k", dialect="applio", embedder_model=embedder)
    model, ckpt = load_voice_checkpoint(path)
    assert ckpt.dialect == "applio" and ckpt.version == "v2" and ckpt.f0
    assert ckpt.metadata["embedder_model"] == embedder
    assert model.enc_p.emb_phone.in_features == 768


@pytest.mark.parametrize("value", [None, "missing"])
def test_absent_embedder_means_contentvec(tmp_path: Path, value: str | None) -> None:
    # Applio writes None for older trainings; RVC never writes the key.
    cpt = voice_dict("v1", False, "32k", dialect="applio")
    if value == "missing":
        del cpt["embedder_model"]
    else:
        cpt["embedder_model"] = value
    path = tmp_path / "absent.pth"
    torch.save(cpt, path)
    ckpt = read_checkpoint(path)
    assert (ckpt.version, ckpt.f0, ckpt.sample_rate) == ("v1", False, 32000)


def test_refusal_names_the_embedder_not_the_vocoder(tmp_path: Path) -> None:
    # With both a supported vocoder and a foreign embedder, the embedder is what is wrong.
    path = save_voice(
        tmp_path / "both.pth", "v2", False, "48k", dialect="applio", vocoder="HiFi-GAN", embedder_model="spin"
    )
    with pytest.raises(CheckpointError, match=r"trained on 'spin' features"):
        read_checkpoint(path)
