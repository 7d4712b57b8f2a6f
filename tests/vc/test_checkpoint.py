"""Voice files: both dialects, every variant, fp16 weights, and clear errors."""

from __future__ import annotations

import collections
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.vc.base import VoiceError
from bridge.vc.checkpoint import (
    CheckpointError,
    CorruptCheckpointError,
    IncompatibleWeightsError,
    UnknownVersionError,
    UnsupportedVocoderError,
    load_voice_checkpoint,
    read_checkpoint,
)
from bridge.vc.synthesizer import SYNTHESIZERS, has_weight_norm

from .factories import SAMPLE_RATES, VARIANTS, random_weights, save_voice, voice_dict


@pytest.mark.parametrize(("version", "f0", "sr"), VARIANTS)
def test_every_variant_loads_strictly(tmp_path: Path, version: str, f0: bool, sr: str) -> None:
    path = save_voice(tmp_path / "voice.pth", version, f0, sr, seed=7)
    saved = torch.load(path, weights_only=True)
    model, ckpt = load_voice_checkpoint(path, fold=False)
    assert type(model) is SYNTHESIZERS[(version, f0)]
    assert (ckpt.version, ckpt.f0, ckpt.sample_rate, ckpt.dialect) == (version, f0, SAMPLE_RATES[sr], "rvc")
    assert ckpt.weights_dtype == torch.float16
    assert next(model.parameters()).dtype == torch.float32
    # Every stored tensor arrived, fp16 values cast up, under the parametrisation names.
    state = model.state_dict()
    for key, value in saved["weight"].items():
        key = key.replace(".weight_g", ".parametrizations.weight.original0")
        key = key.replace(".weight_v", ".parametrizations.weight.original1")
        assert torch.equal(state[key], value.float()), key
    assert model.hop_length * 100 == SAMPLE_RATES[sr]


@pytest.mark.parametrize(("version", "f0", "sr"), [("v2", True, "48k"), ("v1", False, "32k"), ("v2", False, "40k")])
def test_applio_files_load(tmp_path: Path, version: str, f0: bool, sr: str) -> None:
    path = save_voice(tmp_path / "applio.pth", version, f0, sr, dialect="applio")
    raw = torch.load(path, weights_only=True)
    assert isinstance(raw["sr"], int) and isinstance(raw["f0"], bool)
    model, ckpt = load_voice_checkpoint(path)
    assert ckpt.dialect == "applio"
    assert (ckpt.version, ckpt.f0, ckpt.sample_rate) == (version, f0, SAMPLE_RATES[sr])
    assert ckpt.metadata["vocoder"] == "HiFi-GAN"
    assert ckpt.metadata["model_name"] == "tiny"
    assert not has_weight_norm(model)  # folded by default


def test_parametrization_names_load_too(tmp_path: Path) -> None:
    # Applio's non-RVC export keeps torch's parametrisation names.
    weights, config = random_weights("v2", True, "40k")
    renamed = {
        k.replace(".weight_g", ".parametrizations.weight.original0").replace(
            ".weight_v", ".parametrizations.weight.original1"
        ): v
        for k, v in weights.items()
    }
    path = tmp_path / "param.pth"
    torch.save(voice_dict(weights=renamed, config=config, dialect="applio"), path)
    model, _ = load_voice_checkpoint(path, fold=False)
    assert torch.equal(
        model.dec.ups[0].parametrizations.weight.original1,
        renamed["dec.ups.0.parametrizations.weight.original1"].half().float(),
    )


def test_full_size_voice_loads_strictly(tmp_path: Path) -> None:
    path = save_voice(tmp_path / "full.pth", "v2", True, "40k", tiny=False, seed=1)
    assert 50e6 < path.stat().st_size < 62e6  # ~55 MB like a real v2 40k fp16 voice
    model, ckpt = load_voice_checkpoint(path)
    assert ckpt.speakers == 3
    assert model.emb_g.weight.shape == (3, 256)
    assert model.enc_p.emb_phone.weight.shape == (192, 768)


def test_speaker_count_comes_from_the_weights_and_enc_q_is_dropped(tmp_path: Path) -> None:
    weights, config = random_weights("v1", True, "40k", speakers=5)
    weights["enc_q.pre.weight"] = torch.zeros(3)  # a training leftover
    config[15] = 109  # RVC's files keep the training value here
    path = tmp_path / "v.pth"
    torch.save(voice_dict("v1", True, "40k", weights=weights, config=config), path)
    model, ckpt = load_voice_checkpoint(path)
    assert model.emb_g.num_embeddings == 5 and ckpt.speakers == 5
    assert "enc_q.pre.weight" not in ckpt.weights


def test_legacy_v1_without_version_or_f0_keys(tmp_path: Path) -> None:
    cpt = voice_dict("v1", True, "40k")
    del cpt["version"], cpt["f0"]
    cpt["weight"] = collections.OrderedDict(cpt["weight"])
    path = tmp_path / "old.pth"
    torch.save(cpt, path)
    ckpt = read_checkpoint(path)
    assert (ckpt.version, ckpt.f0) == ("v1", True)


def test_cast_to_bfloat16(tmp_path: Path) -> None:
    path = save_voice(tmp_path / "v.pth", "v2", False, "32k")
    model, _ = load_voice_checkpoint(path, dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


# ---- errors ----------------------------------------------------------------------------


def _error(path: Path) -> CheckpointError:
    with pytest.raises(CheckpointError) as info:
        load_voice_checkpoint(path)
    assert isinstance(info.value, VoiceError)
    assert path.name in str(info.value)
    return info.value


def test_truncated_file(tmp_path: Path) -> None:
    good = save_voice(tmp_path / "good.pth")
    data = good.read_bytes()
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(data[: len(data) // 2])
    assert isinstance(_error(bad), CorruptCheckpointError)


def test_garbage_and_empty_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00not a torch file" * 100)
    assert isinstance(_error(junk), CorruptCheckpointError)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    assert isinstance(_error(empty), CorruptCheckpointError)
    assert "no such file" in str(_error(tmp_path / "absent.pth"))


def _zip_that_is_not_a_checkpoint() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("alice/readme.txt", "the voice is on the release page")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"https://huggingface.co/someone/alice/resolve/main/alice.pth\n", id="url-pasted-into-the-file"),
        pytest.param(b"hello", id="text-starting-with-h"),
        pytest.param(b"version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 55000000\n", id="git-lfs-pointer"),
        pytest.param(b"<!DOCTYPE html><html><body>Not Found</body></html>", id="html-error-page"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\x80\x02}q\x00(X", id="truncated-pickle"),
        pytest.param(_zip_that_is_not_a_checkpoint(), id="zip-that-is-not-a-checkpoint"),
        *[pytest.param(np.random.default_rng(seed).bytes(1 + seed * 7), id=f"random-bytes-{seed}") for seed in range(8)],
        # Each of these made torch's unpickler raise a bare KeyError / IndexError / struct.error.
        pytest.param(b"j\x00\x00\x00\x00", id="long-memo-get"),
        pytest.param(b"g0\n", id="text-memo-get"),
        pytest.param(b"K", id="cut-short-opcode"),
    ],
)
def test_files_that_are_not_torch_checkpoints_are_corrupt_checkpoint_errors(tmp_path: Path, content: bytes) -> None:
    """Regression: a text file starting with ``h`` escaped as a bare KeyError from torch's unpickler."""
    path = tmp_path / "alice.pth"
    path.write_bytes(content)
    error = _error(path)
    assert isinstance(error, CorruptCheckpointError)
    assert "alice.pth: corrupt or truncated file, or not a torch file" in str(error)


@pytest.mark.parametrize("vocoder", ["RefineGAN", "MRF HiFi-GAN"])
def test_unsupported_vocoders_are_named(tmp_path: Path, vocoder: str) -> None:
    path = save_voice(tmp_path / "applio.pth", dialect="applio", vocoder=vocoder)
    error = _error(path)
    assert isinstance(error, UnsupportedVocoderError)
    assert repr(vocoder) in str(error)


def test_unknown_version(tmp_path: Path) -> None:
    cpt = voice_dict("v2", True, "40k")
    cpt["version"] = "v3"
    path = tmp_path / "v3.pth"
    torch.save(cpt, path)
    error = _error(path)
    assert isinstance(error, UnknownVersionError)
    assert "'v3'" in str(error)


def test_version_that_contradicts_the_weights(tmp_path: Path) -> None:
    cpt = voice_dict("v1", True, "40k")
    cpt["version"] = "v2"
    path = tmp_path / "mislabelled.pth"
    torch.save(cpt, path)
    assert "256-d" in str(_error(path))


def test_f0_flag_that_contradicts_the_weights(tmp_path: Path) -> None:
    cpt = voice_dict("v2", False, "40k")
    cpt["f0"] = 1
    path = tmp_path / "f0.pth"
    torch.save(cpt, path)
    assert isinstance(_error(path), IncompatibleWeightsError)


def test_missing_keys_are_listed(tmp_path: Path) -> None:
    cpt = voice_dict("v2", True, "40k")
    del cpt["weight"]["dec.resblocks.3.convs2.1.weight_v"]
    path = tmp_path / "missing.pth"
    torch.save(cpt, path)
    error = _error(path)
    assert isinstance(error, IncompatibleWeightsError)
    assert "dec.resblocks.3.convs2.1" in str(error)


def test_wrong_shapes(tmp_path: Path) -> None:
    cpt = voice_dict("v2", True, "40k")
    cpt["weight"]["dec.conv_pre.weight"] = torch.zeros(3, 3, 3, dtype=torch.float16)
    path = tmp_path / "shapes.pth"
    torch.save(cpt, path)
    assert "dec.conv_pre.weight" in str(_error(path))


def test_training_checkpoint_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "G_2333.pth"
    torch.save({"model": {"a": torch.zeros(1)}, "iteration": 3, "optimizer": {}, "learning_rate": 1e-4}, path)
    assert "training checkpoint" in str(_error(path))


class _Custom:
    pass


def test_arbitrary_pickled_objects_are_refused(tmp_path: Path) -> None:
    cpt = voice_dict("v2", True, "40k")
    cpt["info"] = _Custom()
    path = tmp_path / "pickle.pth"
    torch.save(cpt, path)
    assert "refused" in str(_error(path))


def test_wrong_config_length(tmp_path: Path) -> None:
    cpt = voice_dict("v2", True, "40k")
    cpt["config"] = cpt["config"][:-1]
    path = tmp_path / "cfg.pth"
    torch.save(cpt, path)
    assert "18" in str(_error(path))


def test_the_file_is_only_read_as_plain_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    real = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    read_checkpoint(save_voice(tmp_path / "v.pth"))
    assert seen.get("weights_only") is True
    buf = io.BytesIO()
    torch.save(voice_dict(dialect="applio"), buf)
    buf.seek(0)
    assert real(buf, weights_only=True)["vocoder"] == "HiFi-GAN"
