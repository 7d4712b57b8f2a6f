"""ContentEncoder: fairseq and Hugging Face layouts, frames, dims, errors."""

from __future__ import annotations

import argparse
import enum
import json
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

transformers = pytest.importorskip("transformers")
from transformers import HubertConfig, HubertModel  # noqa: E402

from bridge.vc.base import VoiceError  # noqa: E402
from bridge.vc.content import ContentEncoder, default_content_model_path, feature_frames  # noqa: E402

HIDDEN, PROJ, LAYERS, CONV = 32, 8, 12, 16


def tiny_config() -> HubertConfig:
    # Real layout (12 layers, 7 convs with hubert_base kernels/strides, pos conv 128/16),
    # tiny widths.
    return HubertConfig(
        hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=2, intermediate_size=48,
        conv_dim=[CONV] * 7, classifier_proj_size=PROJ, layerdrop=0.0,
    )


# The exact parameter names of a fairseq HubertModel (extractor_mode "default",
# layer_norm_first False), written out independently of the code under test.
def fairseq_state_dict(hf: dict[str, torch.Tensor], proj: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sd: dict[str, torch.Tensor] = {}
    for i in range(7):
        sd[f"feature_extractor.conv_layers.{i}.0.weight"] = hf[f"feature_extractor.conv_layers.{i}.conv.weight"]
    sd["feature_extractor.conv_layers.0.2.weight"] = hf["feature_extractor.conv_layers.0.layer_norm.weight"]
    sd["feature_extractor.conv_layers.0.2.bias"] = hf["feature_extractor.conv_layers.0.layer_norm.bias"]
    sd["layer_norm.weight"] = hf["feature_projection.layer_norm.weight"]
    sd["layer_norm.bias"] = hf["feature_projection.layer_norm.bias"]
    sd["post_extract_proj.weight"] = hf["feature_projection.projection.weight"]
    sd["post_extract_proj.bias"] = hf["feature_projection.projection.bias"]
    sd["mask_emb"] = hf["masked_spec_embed"]
    pc = "encoder.pos_conv_embed.conv."
    sd["encoder.pos_conv.0.bias"] = hf[pc + "bias"]
    sd["encoder.pos_conv.0.weight_g"] = hf[pc + "parametrizations.weight.original0"]
    sd["encoder.pos_conv.0.weight_v"] = hf[pc + "parametrizations.weight.original1"]
    for i in range(LAYERS):
        f, h = f"encoder.layers.{i}.", f"encoder.layers.{i}."
        for p in ("weight", "bias"):
            for proj_name in ("k_proj", "v_proj", "q_proj", "out_proj"):
                sd[f"{f}self_attn.{proj_name}.{p}"] = hf[f"{h}attention.{proj_name}.{p}"]
            sd[f"{f}self_attn_layer_norm.{p}"] = hf[f"{h}layer_norm.{p}"]
            sd[f"{f}fc1.{p}"] = hf[f"{h}feed_forward.intermediate_dense.{p}"]
            sd[f"{f}fc2.{p}"] = hf[f"{h}feed_forward.output_dense.{p}"]
            sd[f"{f}final_layer_norm.{p}"] = hf[f"{h}final_layer_norm.{p}"]
    sd["encoder.layer_norm.weight"] = hf["encoder.layer_norm.weight"]
    sd["encoder.layer_norm.bias"] = hf["encoder.layer_norm.bias"]
    sd["final_proj.weight"] = proj["weight"]
    sd["final_proj.bias"] = proj["bias"]
    sd["label_embs_concat"] = torch.randn(504, PROJ)  # pre-training targets: ignored
    return sd


class _FakeChoice(enum.Enum):
    DEFAULT = "default"


def _fake_foreign_modules() -> dict[str, types.ModuleType]:
    """Classes that stand in for omegaconf / fairseq while the checkpoint is written."""
    omegaconf = types.ModuleType("omegaconf")
    dictconfig = types.ModuleType("omegaconf.dictconfig")
    nodes = types.ModuleType("omegaconf.nodes")
    fq = types.ModuleType("fairseq_fake.dataclass")

    class AnyNode:
        def __init__(self, val):
            self._val = val

        def __getstate__(self):
            return {"_val": self._val, "_metadata": None, "_parent": None}

    class DictConfig:
        def __init__(self, content):
            self._content = {k: DictConfig(v) if isinstance(v, dict) else AnyNode(v) for k, v in content.items()}

        def __getstate__(self):
            return {"_content": self._content, "_metadata": {"ref_type": object}, "_parent": None}

    AnyNode.__module__, AnyNode.__qualname__ = "omegaconf.nodes", "AnyNode"
    DictConfig.__module__, DictConfig.__qualname__ = "omegaconf.dictconfig", "DictConfig"
    nodes.AnyNode, dictconfig.DictConfig = AnyNode, DictConfig
    choice = enum.Enum("ChoiceEnum", {"DEFAULT": "default"})
    choice.__module__ = "fairseq_fake.dataclass"
    fq.ChoiceEnum = choice
    return {"omegaconf": omegaconf, "omegaconf.dictconfig": dictconfig, "omegaconf.nodes": nodes,
            "fairseq_fake": types.ModuleType("fairseq_fake"), "fairseq_fake.dataclass": fq}


def write_fairseq_checkpoint(path: Path, sd: dict[str, torch.Tensor], strides_in_cfg: bool = True) -> None:
    mods = _fake_foreign_modules()
    sys.modules.update(mods)
    try:
        model_cfg = {
            "_name": "hubert", "extractor_mode": mods["fairseq_fake.dataclass"].ChoiceEnum.DEFAULT,
            "encoder_layers": LAYERS, "encoder_embed_dim": HIDDEN, "encoder_attention_heads": 2,
            "activation_fn": "gelu", "layer_norm_first": False, "final_dim": PROJ,
        }
        if strides_in_cfg:
            model_cfg["conv_feature_layers"] = f"[({CONV}, 10, 5)] + [({CONV}, 3, 2)] * 4 + [({CONV},2,2)] * 2"
        cfg = mods["omegaconf.dictconfig"].DictConfig(
            {"model": model_cfg, "task": {"_name": "hubert_pretraining", "normalize": False, "labels": ["km"]}}
        )
        ckpt = {
            "args": argparse.Namespace(arch="hubert", normalize=False),
            "cfg": cfg,
            "model": sd,
            "optimizer_history": [{"criterion_name": "HubertCriterion", "num_updates": 400000}],
            "extra_state": {"metrics": {}, "previous_training_time": 1.0},
            "last_optimizer_state": None,
        }
        torch.save(ckpt, path)
    finally:
        for name in mods:
            sys.modules.pop(name, None)


@pytest.fixture(scope="session")
def weights():
    torch.manual_seed(0)
    config = tiny_config()
    hub = HubertModel(config).eval()
    proj = torch.nn.Linear(HIDDEN, PROJ)
    # Non-trivial weight-norm magnitude and norms so that a mis-mapped key shows.
    with torch.no_grad():
        for name, p in hub.named_parameters():
            if "norm" in name or "original0" in name:
                p.add_(torch.rand_like(p) * 0.5)
    return config, hub, {k: v.detach().clone() for k, v in proj.state_dict().items()}


@pytest.fixture(scope="session")
def fairseq_ckpt(tmp_path_factory, weights):
    _, hub, proj = weights
    path = tmp_path_factory.mktemp("fq") / "hubert_base.pt"
    write_fairseq_checkpoint(path, fairseq_state_dict(hub.state_dict(), proj))
    return path


@pytest.fixture(scope="session")
def hf_dir(tmp_path_factory, weights):
    config, hub, proj = weights
    d = tmp_path_factory.mktemp("hf") / "hubert_base"
    d.mkdir()
    config.architectures = ["HubertModelWithFinalProj"]
    config.to_json_file(str(d / "config.json"))
    (d / "preprocessor_config.json").write_text(json.dumps({"do_normalize": False, "sampling_rate": 16000}))
    sd = {k: v.contiguous() for k, v in hub.state_dict().items()}
    sd.update({f"final_proj.{k}": v for k, v in proj.items()})
    save_file(sd, str(d / "model.safetensors"))
    return d


@pytest.fixture(scope="session")
def audio():
    g = torch.Generator().manual_seed(1)
    return torch.randn(16000 + 123, generator=g) * 0.1


@pytest.fixture(scope="session")
def fq_encoder(fairseq_ckpt):
    return ContentEncoder.load(fairseq_ckpt)


def test_fairseq_and_hf_layouts_give_identical_features(fq_encoder, hf_dir, audio):
    hf = ContentEncoder.load(hf_dir)
    for version in ("v1", "v2"):
        a, b = fq_encoder.extract(audio, version), hf.extract(audio, version)
        assert torch.equal(a, b), version


def test_hf_bin_with_legacy_weight_norm_names_and_prefix(tmp_path, weights, audio, fq_encoder):
    config, hub, proj = weights
    d = tmp_path / "hf_bin"
    d.mkdir()
    config.to_json_file(str(d / "config.json"))
    sd = {}
    for k, v in hub.state_dict().items():
        k = k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1", "weight_v")
        sd["hubert." + k] = v
    sd.update({f"final_proj.{k}": v for k, v in proj.items()})
    torch.save(sd, d / "pytorch_model.bin")
    enc = ContentEncoder.load(d)
    assert torch.equal(enc.extract(audio, "v2"), fq_encoder.extract(audio, "v2"))


def test_matches_transformers_forward(fq_encoder, weights, audio):
    """v1 = final_proj(hidden_states[9]), v2 = last_hidden_state of the reference HubertModel."""
    _, hub, proj = weights
    with torch.no_grad():
        out = hub(audio[None], output_hidden_states=True)
        ref_v1 = torch.nn.functional.linear(out.hidden_states[9], proj["weight"], proj["bias"])
    torch.testing.assert_close(fq_encoder.extract(audio, "v1"), ref_v1, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fq_encoder.extract(audio, "v2"), out.last_hidden_state, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n", [400, 719, 720, 16000, 16000 + 123])
def test_frames_formula_and_dims(fq_encoder, n):
    x = torch.randn(1, n) * 0.1
    v1, v2 = fq_encoder.extract(x, "v1"), fq_encoder.extract(x[0], "v2")
    frames = (n - 400) // 320 + 1
    assert feature_frames(n) == frames
    assert v1.shape == (1, frames, PROJ) and v2.shape == (1, frames, HIDDEN)
    assert fq_encoder.dims("v1") == PROJ and fq_encoder.dims("v2") == HIDDEN


def test_strides_without_config(tmp_path, weights, audio, fq_encoder):
    _, hub, proj = weights
    path = tmp_path / "nocfg.pt"
    torch.save({"model": fairseq_state_dict(hub.state_dict(), proj)}, path)
    enc = ContentEncoder.load(path)
    # hubert_base kernels imply hubert_base strides; heads fall back to hidden // 64.
    assert list(enc.hubert.config.conv_stride) == [5, 2, 2, 2, 2, 2, 2]
    assert enc.extract(audio, "v1").shape == fq_encoder.extract(audio, "v1").shape


def test_bad_input(fq_encoder):
    with pytest.raises(ValueError, match="400"):
        fq_encoder.extract(torch.zeros(399), "v1")
    with pytest.raises(ValueError, match="version"):
        fq_encoder.extract(torch.zeros(1000), "v3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        fq_encoder.extract(torch.zeros(2, 1000), "v2")


def test_truncated_file(tmp_path, fairseq_ckpt):
    data = fairseq_ckpt.read_bytes()
    bad = tmp_path / "hubert_base.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(VoiceError, match="hubert_base.pt"):
        ContentEncoder.load(bad)


def test_wrong_content(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("this is not a checkpoint\n" * 10)
    with pytest.raises(VoiceError, match="notes.pt"):
        ContentEncoder.load(text)
    other = tmp_path / "other.pt"
    torch.save({"model": {"decoder.weight": torch.zeros(3)}}, other)
    with pytest.raises(VoiceError, match="HuBERT"):
        ContentEncoder.load(other)
    plain_sd = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(3)}, plain_sd)
    with pytest.raises(VoiceError, match="fairseq"):
        ContentEncoder.load(plain_sd)
    with pytest.raises(VoiceError, match="not found"):
        ContentEncoder.load(tmp_path / "missing.pt")


def test_hf_dir_missing_weight(tmp_path, weights):
    config, hub, _ = weights
    d = tmp_path / "hf_missing"
    d.mkdir()
    config.to_json_file(str(d / "config.json"))
    sd = {k: v.contiguous() for k, v in hub.state_dict().items() if "layers.3.feed_forward" not in k}
    save_file(sd, str(d / "model.safetensors"))
    with pytest.raises(VoiceError, match="missing"):
        ContentEncoder.load(d)


def test_no_fairseq_import(fairseq_ckpt):
    # Loading must not have imported the foreign classes the checkpoint names.
    assert "omegaconf" not in sys.modules and "fairseq_fake.dataclass" not in sys.modules


def test_from_config_and_default_path(tmp_path):
    enc = ContentEncoder.from_config(tiny_config())
    assert enc.extract(torch.zeros(800), "v1").shape == (1, 2, PROJ)
    assert default_content_model_path(tmp_path) == tmp_path / "hubert_base.pt"
    (tmp_path / "hubert_base").mkdir()
    (tmp_path / "hubert_base" / "config.json").write_text("{}")
    assert default_content_model_path(tmp_path) == tmp_path / "hubert_base"


def test_concurrent_extract(fq_encoder, audio):
    from concurrent.futures import ThreadPoolExecutor

    ref = fq_encoder.extract(audio, "v2")
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda _: fq_encoder.extract(audio, "v2"), range(8)))
    for out in outs:
        assert torch.equal(out, ref)


def test_fp16_fairseq_checkpoint(tmp_path, weights, audio):
    """The released hubert_base.pt stores fp16 tensors (189.5 MB for 94.7 M values)."""
    _, hub, proj = weights
    sd = {k: v.half() for k, v in fairseq_state_dict(hub.state_dict(), proj).items()}
    path = tmp_path / "hubert_fp16.pt"
    write_fairseq_checkpoint(path, sd)
    enc = ContentEncoder.load(path)
    assert next(enc.parameters()).dtype == torch.float32
    ref = ContentEncoder.load(path, dtype=torch.float32).extract(audio, "v2")
    assert ref.shape[-1] == HIDDEN and torch.isfinite(ref).all()
