"""Synthesizer modules: RVC's key names and shapes, strict loading, infer semantics, and agreement
with RVC-Project's own code on a voice its WebUI saved (tests/data/rvc_reference/)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.vc.checkpoint import build_from_checkpoint, read_checkpoint
from bridge.vc.synth_decoder import SineGen
from bridge.vc.synth_prior import _band_to_full, _full_to_band
from bridge.vc.synthesizer import (
    FLOW_CONTEXT,
    SYNTHESIZERS,
    fold_weight_norm,
    has_weight_norm,
)

from .factories import legacy_state_dict, random_weights, rvc_config

# Shapes of a full-size v2 40k f0 voice, as listed in RVC's checkpoints (research notes §2).
V2_40K_SHAPES = {
    "enc_p.emb_phone.weight": (192, 768),
    "enc_p.emb_phone.bias": (192,),
    "enc_p.emb_pitch.weight": (256, 192),
    "enc_p.encoder.attn_layers.5.conv_q.weight": (192, 192, 1),
    "enc_p.encoder.attn_layers.0.conv_o.bias": (192,),
    "enc_p.encoder.attn_layers.0.emb_rel_k": (1, 21, 96),
    "enc_p.encoder.attn_layers.0.emb_rel_v": (1, 21, 96),
    "enc_p.encoder.norm_layers_1.0.gamma": (192,),
    "enc_p.encoder.norm_layers_2.5.beta": (192,),
    "enc_p.encoder.ffn_layers.0.conv_1.weight": (768, 192, 3),
    "enc_p.encoder.ffn_layers.0.conv_2.weight": (192, 768, 3),
    "enc_p.proj.weight": (384, 192, 1),
    "flow.flows.0.pre.weight": (192, 96, 1),
    "flow.flows.0.enc.cond_layer.weight_g": (1152, 1, 1),
    "flow.flows.0.enc.cond_layer.weight_v": (1152, 256, 1),
    "flow.flows.0.enc.cond_layer.bias": (1152,),
    "flow.flows.2.enc.in_layers.0.weight_v": (384, 192, 5),
    "flow.flows.4.enc.res_skip_layers.0.weight_v": (384, 192, 1),
    "flow.flows.6.enc.res_skip_layers.2.weight_v": (192, 192, 1),
    "flow.flows.6.post.weight": (96, 192, 1),
    "dec.conv_pre.weight": (512, 192, 7),
    "dec.cond.weight": (512, 256, 1),
    "dec.m_source.l_linear.weight": (1, 1),
    "dec.ups.0.weight_v": (512, 256, 16),
    "dec.ups.0.weight_g": (512, 1, 1),
    "dec.ups.1.weight_v": (256, 128, 16),
    "dec.ups.2.weight_v": (128, 64, 4),
    "dec.ups.3.weight_v": (64, 32, 4),
    "dec.noise_convs.0.weight": (256, 1, 80),
    "dec.noise_convs.1.weight": (128, 1, 8),
    "dec.noise_convs.2.weight": (64, 1, 4),
    "dec.noise_convs.3.weight": (32, 1, 1),
    "dec.resblocks.0.convs1.0.weight_v": (256, 256, 3),
    "dec.resblocks.2.convs2.2.weight_v": (256, 256, 11),
    "dec.resblocks.4.convs1.1.weight_v": (128, 128, 7),
    "dec.resblocks.11.convs2.0.weight_v": (32, 32, 11),
    "dec.conv_post.weight": (1, 32, 7),
    "emb_g.weight": (109, 256),
}


@pytest.fixture(scope="session")
def full_v2_40k() -> dict[str, torch.Tensor]:
    model = SYNTHESIZERS[("v2", True)](*rvc_config("v2", "40k", tiny=False))
    return legacy_state_dict(model)


def test_full_size_v2_40k_keys_and_shapes(full_v2_40k: dict[str, torch.Tensor]) -> None:
    assert len(full_v2_40k) == 457
    for key, shape in V2_40K_SHAPES.items():
        assert tuple(full_v2_40k[key].shape) == shape, key
    assert "dec.conv_post.bias" not in full_v2_40k
    assert not any(k.startswith("enc_q") for k in full_v2_40k)
    params = sum(v.numel() for v in full_v2_40k.values())
    assert 27.0e6 < params < 29.0e6


@pytest.mark.parametrize(
    ("version", "f0", "sr", "keys"),
    [
        ("v2", True, "40k", 457),
        ("v2", False, "40k", 446),
        ("v1", True, "32k", 516),
        ("v1", False, "48k", 503),
        ("v1", True, "40k", 457),
        ("v2", True, "48k", 457),
    ],
)
def test_key_counts(version: str, f0: bool, sr: str, keys: int) -> None:
    weights, _ = random_weights(version, f0, sr)
    assert len(weights) == keys
    weight_norm_keys = [k for k in weights if k.endswith(("weight_g", "weight_v"))]
    assert weight_norm_keys and all(k.startswith(("dec.ups", "dec.resblocks", "flow.")) for k in weight_norm_keys)
    assert ("enc_p.emb_pitch.weight" in weights) is f0
    assert ("dec.m_source.l_linear.weight" in weights) is f0


def test_strict_load_of_legacy_weight_norm_keys() -> None:
    weights, config = random_weights("v1", True, "48k", seed=3)
    model = SYNTHESIZERS[("v1", True)](*config)
    model.load_state_dict(weights, strict=True)
    conv = model.dec.resblocks[0].convs1[0]
    assert torch.equal(conv.parametrizations.weight.original0, weights["dec.resblocks.0.convs1.0.weight_g"])
    assert torch.equal(conv.parametrizations.weight.original1, weights["dec.resblocks.0.convs1.0.weight_v"])
    with pytest.raises(RuntimeError):
        broken = dict(weights)
        del broken["dec.ups.1.weight_g"]
        model.load_state_dict(broken, strict=True)


def _inputs(version: str, frames: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    dim = 256 if version == "v1" else 768
    phone = torch.randn(1, frames, dim, generator=g)
    f0 = 120 + 80 * torch.sin(torch.arange(frames) / 7.0)
    f0[frames // 3 : frames // 3 + 8] = 0  # an unvoiced stretch
    f0 = f0[None]
    pitch = torch.randint(1, 256, (1, frames), generator=g)
    return phone, torch.tensor([frames]), pitch, f0, torch.tensor([0])


@pytest.mark.parametrize(("version", "f0", "sr"), [("v1", True, "32k"), ("v2", False, "48k"), ("v2", True, "40k")])
def test_infer_shapes_and_determinism(version: str, f0: bool, sr: str) -> None:
    weights, config = random_weights(version, f0, sr)
    model = SYNTHESIZERS[(version, f0)](*config).eval()
    model.load_state_dict(weights)
    hop = math.prod(config[12])
    phone, lengths, pitch, nsff0, sid = _inputs(version, 60)
    args = (phone, lengths, pitch, nsff0, sid) if f0 else (phone, lengths, sid)
    quiet = {"noise_scale": 0.0, "source_noise_scale": 0.0} if f0 else {"noise_scale": 0.0}
    with torch.inference_mode():
        a = model.infer(*args, **quiet)[0]
        b = model.infer(*args, **quiet)[0]
        noisy1 = model.infer(*args)[0]
        noisy2 = model.infer(*args)[0]
        seeded1 = model.infer(*args, generator=torch.Generator().manual_seed(5))[0]
        seeded2 = model.infer(*args, generator=torch.Generator().manual_seed(5))[0]
        sliced = model.infer(*args, 30, 20, **quiet)[0]
    assert a.shape == (1, 1, 60 * hop)
    assert sliced.shape == (1, 1, 20 * hop)
    assert torch.equal(a, b)
    assert not torch.equal(noisy1, noisy2)
    assert torch.equal(seeded1, seeded2)
    assert a.abs().max() > 1e-3  # not silent


def test_realtime_slice_matches_full_inference_inside_the_slice() -> None:
    # With a position-wise prior encoder (0 attention layers) the only context the slice
    # lacks is the decoder's at the slice edges: the flow gets its 24 frames (flow_head).
    weights, config = random_weights("v2", True, "40k", n_layers=0, seed=1)
    model = SYNTHESIZERS[("v2", True)](*config).eval()
    model.load_state_dict(weights)
    hop = math.prod(config[12])
    phone, lengths, pitch, nsff0, sid = _inputs("v2", 120, seed=2)
    nsff0 = torch.zeros_like(nsff0)  # no excitation phase to carry (see the SineGen test)
    quiet = {"noise_scale": 0.0, "source_noise_scale": 0.0}
    with torch.inference_mode():
        full = model.infer(phone, lengths, pitch, nsff0, sid, **quiet)[0][0, 0]
        head, length = 60, 40
        part = model.infer(phone, lengths, pitch, nsff0, sid, head, length, **quiet)[0][0, 0]
    inner = slice(10 * hop, (length - 10) * hop)
    ref = full[head * hop : (head + length) * hop]
    assert torch.allclose(part[inner], ref[inner], atol=1e-5)
    shifted = full[(head + 1) * hop : (head + 1 + length) * hop]
    assert (part[inner] - shifted[inner]).abs().max() > 1e-3  # the slice starts at skip_head


def test_sine_phase_offset_continues_the_excitation() -> None:
    gen = SineGen(40000)
    upp = 400
    f0 = torch.cat([torch.full((1, 30), 180.0), torch.zeros(1, 5), torch.linspace(150, 260, 40)[None]], 1)
    whole = gen(f0, upp, noise_scale=0.0)
    start = 23
    # Phase (cycles) accumulated before frame `start`, as the stream keeps it.
    per_frame = f0[0, :start].double() * upp / 40000
    phase = float(torch.remainder(per_frame.sum(), 1.0))
    part = gen(f0[:, start:], upp, phase=phase, noise_scale=0.0)
    assert torch.allclose(part, whole[:, start * upp :], atol=2e-4)
    wrong = gen(f0[:, start:], upp, noise_scale=0.0)
    assert (wrong - whole[:, start * upp :]).abs().max() > 0.01


def test_fold_weight_norm_keeps_the_output() -> None:
    weights, config = random_weights("v2", True, "32k", seed=4)
    model = SYNTHESIZERS[("v2", True)](*config).eval()
    model.load_state_dict(weights)
    phone, lengths, pitch, nsff0, sid = _inputs("v2", 40)
    quiet = {"noise_scale": 0.0, "source_noise_scale": 0.0}
    with torch.inference_mode():
        before = model.infer(phone, lengths, pitch, nsff0, sid, **quiet)[0]
    assert has_weight_norm(model)
    fold_weight_norm(model)
    assert not has_weight_norm(model)
    assert "dec.ups.0.weight" in model.state_dict()
    with torch.inference_mode():
        after = model.infer(phone, lengths, pitch, nsff0, sid, **quiet)[0]
    assert torch.allclose(before, after, atol=1e-5)


@pytest.mark.parametrize(("t", "w"), [(1, 10), (7, 3), (25, 10), (40, 2)])
def test_relative_band_helpers_match_naive_loops(t: int, w: int) -> None:
    band = torch.randn(2, 3, t, 2 * w + 1)
    full = torch.randn(2, 3, t, t)
    want_full = torch.zeros(2, 3, t, t)
    want_band = torch.zeros(2, 3, t, 2 * w + 1)
    for i in range(t):
        for j in range(t):
            if abs(j - i) <= w:
                want_full[..., i, j] = band[..., i, j - i + w]
                want_band[..., i, j - i + w] = full[..., i, j]
    assert torch.equal(_band_to_full(band, t, w), want_full)
    assert torch.equal(_full_to_band(full, t, w), want_band)


# ---- against RVC-Project's own code -------------------------------------------------------
#
# tests/data/rvc_reference/: a small v2 40k voice saved by RVC's WebUI code (process_ckpt.savee)
# and the audio RVC's own SynthesizerTrnMs768NSFsid.infer made from it on fixed inputs; how it
# was made is in the README there. The reference's code is not in this repository, only its output.

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "rvc_reference"
#: Agreement the synthesizer must keep with RVC's (measured: identical output on torch 2.13 CPU).
REFERENCE_SNR_DB = 100.0


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE / "reference.npz") as data:
        return {key: data[key] for key in data.files}


def _reference_voice(fold: bool = True):  # type: ignore[no-untyped-def]
    return build_from_checkpoint(read_checkpoint(REFERENCE / "tiny_v2_40k.pth"), fold=fold)


def _infer_reference_inputs(model, ref: dict[str, np.ndarray], case: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The project's synthesizer on the reference's inputs and (for ``noisy``) its recorded draws."""
    phone = torch.from_numpy(ref["phone"].astype(np.float32))
    args: list = [
        phone,
        torch.tensor([phone.shape[1]]),
        torch.from_numpy(ref["pitch"].astype(np.int64)),
        torch.from_numpy(ref["pitchf"]),
        torch.from_numpy(ref["sid"]),
    ]
    if case == "sliced":
        args += [int(ref["slice"][0]), int(ref["slice"][1])]
    if case == "noisy":
        draws = {
            "z_noise": torch.from_numpy(ref["z_noise"].astype(np.float32)),
            "source_noise": torch.from_numpy(ref["source_noise"].astype(np.float32)),
        }
    else:
        draws = {"noise_scale": 0.0, "source_noise_scale": 0.0}
    with torch.inference_mode():
        return model.infer(*args, **draws)[0][0, 0].numpy()


def snr_db(reference: np.ndarray, output: np.ndarray) -> float:
    ref = reference.astype(np.float64)
    error = np.sum((ref - output.astype(np.float64)) ** 2)
    return math.inf if error == 0 else 10 * math.log10(np.sum(ref**2) / error)


def test_reference_voice_is_saved_as_rvcs_webui_saves_one() -> None:
    raw = torch.load(REFERENCE / "tiny_v2_40k.pth", map_location="cpu", weights_only=True)
    assert list(raw) == ["weight", "config", "info", "sr", "f0", "version"]
    assert (raw["sr"], raw["f0"], raw["version"], len(raw["config"]), raw["config"][-1]) == ("40k", 1, "v2", 18, 40000)
    weights = raw["weight"]
    assert all(v.dtype == torch.float16 for v in weights.values())
    assert not any("enc_q" in k for k in weights)
    assert "dec.ups.0.weight_g" in weights and "flow.flows.0.enc.in_layers.0.weight_v" in weights
    ckpt = read_checkpoint(REFERENCE / "tiny_v2_40k.pth")
    assert (ckpt.dialect, ckpt.version, ckpt.f0, ckpt.sample_rate) == ("rvc", "v2", True, 40000)


@pytest.mark.parametrize("fold", [True, False], ids=["folded", "weight-norm"])
@pytest.mark.parametrize("case", ["quiet", "noisy", "sliced"])
def test_synthesizer_matches_rvcs_reference(reference: dict[str, np.ndarray], case: str, fold: bool) -> None:
    """quiet: both random draws off; noisy: RVC's draws, recorded, fed to ours; sliced: the
    realtime ``skip_head``/``return_length`` slice (past the 24 frames of flow context)."""
    out = _infer_reference_inputs(_reference_voice(fold), reference, case)
    assert out.shape == reference[case].shape
    assert snr_db(reference[case], out) >= REFERENCE_SNR_DB


@pytest.mark.parametrize(
    "name",
    ["dec.conv_pre.weight", "dec.ups.0.weight", "dec.resblocks.0.convs1.0.weight", "dec.noise_convs.0.weight", "dec.conv_post.weight"],
)
def test_reference_check_fails_when_one_decoder_weight_is_scaled_by_1_001(
    reference: dict[str, np.ndarray], name: str
) -> None:
    model = _reference_voice(fold=True)
    with torch.no_grad():
        dict(model.named_parameters())[name].mul_(1.001)
    out = _infer_reference_inputs(model, reference, "quiet")
    assert snr_db(reference["quiet"], out) < REFERENCE_SNR_DB
