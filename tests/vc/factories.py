"""Tiny RVC voice files in the exact community formats, for tests and benchmarks.

The files are written the way RVC-Project (``savee``/``extract_small_model``) and Applio
(``extract_model``) write them: a plain dict saved with ``torch.save``, generator weights
in fp16 with legacy ``weight_g``/``weight_v`` names and no ``enc_q`` keys, the 18-entry
positional ``config`` list, and each tool's metadata. Channel sizes are shrunk through the
``config`` list (which the format allows); key names and layouts stay the real ones. Also a
tiny HuBERT in the Hugging Face layout and a faiss index, to install a voice as a user does.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bridge.vc.synthesizer import SYNTHESIZERS, UPSAMPLING

SAMPLE_RATES = {"32k": 32000, "40k": 40000, "48k": 48000}
SPEC_CHANNELS = {"32k": 513, "40k": 1025, "48k": 1025}
VARIANTS = [(v, f0, sr) for v in ("v1", "v2") for f0 in (True, False) for sr in ("32k", "40k", "48k")]


def rvc_config(
    version: str = "v2",
    sr: str = "40k",
    *,
    tiny: bool = True,
    n_layers: int | None = None,
    speakers: int = 109,
) -> list[Any]:
    """The 18-entry ``config`` list. ``tiny`` shrinks channel widths (not layouts)."""
    rates, kernels = UPSAMPLING[(version, sr)]
    if tiny:
        inter, hidden, filt, heads, layers, up_ch, gin = 8, 16, 32, 2, 6, 32, 8
    else:
        inter, hidden, filt, heads, layers, up_ch, gin = 192, 192, 768, 2, 6, 512, 256
    if n_layers is not None:
        layers = n_layers
    return [
        SPEC_CHANNELS[sr], 32, inter, hidden, filt, heads, layers, 3, 0, "1",
        [3, 7, 11], [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        list(rates), up_ch, list(kernels), speakers, gin, SAMPLE_RATES[sr],
    ]  # fmt: skip


def legacy_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``state_dict`` with weight-norm tensors renamed to ``weight_g``/``weight_v``."""
    out: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        out[key] = value.detach().clone()
    return out


def random_weights(
    version: str = "v2",
    f0: bool = True,
    sr: str = "40k",
    *,
    tiny: bool = True,
    n_layers: int | None = None,
    speakers: int = 3,
    seed: int = 0,
) -> tuple[dict[str, torch.Tensor], list[Any]]:
    """Random generator weights (legacy names, fp32) and the matching config."""
    config = rvc_config(version, sr, tiny=tiny, n_layers=n_layers, speakers=speakers)
    torch.manual_seed(seed)
    model = SYNTHESIZERS[(version, f0)](*config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("original0"):  # weight_g: vary the norms a little
                p.mul_(1.0 + 0.1 * torch.rand_like(p))
    return legacy_state_dict(model), config


def voice_dict(
    version: str = "v2",
    f0: bool = True,
    sr: str = "40k",
    *,
    dialect: str = "rvc",
    tiny: bool = True,
    n_layers: int | None = None,
    dtype: torch.dtype = torch.float16,
    seed: int = 0,
    weights: dict[str, torch.Tensor] | None = None,
    config: list[Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The dict RVC (``dialect="rvc"``) or Applio (``"applio"``) saves as a voice file."""
    if weights is None:
        weights, config = random_weights(version, f0, sr, tiny=tiny, n_layers=n_layers, seed=seed)
    assert config is not None
    config = copy.deepcopy(config)
    weights = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in weights.items() if "enc_q" not in k}
    if dialect == "rvc":
        cpt: dict[str, Any] = {
            "weight": weights,
            "config": config,
            "info": "20epoch",
            "sr": sr,
            "f0": int(f0),
            "version": version,
        }
    elif dialect == "applio":
        # Applio: sr as int, f0 as bool, extra metadata; config[1] 32, config[-1] int rate.
        cpt = {
            "weight": weights,
            "config": config,
            "epoch": 20,
            "step": 1000,
            "sr": SAMPLE_RATES[sr],
            "f0": bool(f0),
            "version": version,
            "creation_date": "2025-01-01T00:00:00.000000",
            "model_hash": "0" * 64,
            "overtrain_info": "None",
            "dataset_length": 123.4,
            "model_name": "tiny",
            "author": None,
            "embedder_model": "contentvec",
            "speakers_id": 1,
            "vocoder": "HiFi-GAN",
        }
    else:
        raise ValueError(dialect)
    cpt.update(extra)
    return cpt


def save_voice(path: Path, *args: Any, **kwargs: Any) -> Path:
    """Write :func:`voice_dict` with ``torch.save``; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(voice_dict(*args, **kwargs), path)
    return path


def write_tiny_hubert(directory: Path) -> Path:
    """A HuBERT in the Hugging Face layout with RVC's ``final_proj`` (256-d, for v1 voices)."""
    from safetensors.torch import save_file
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    config = HubertConfig(
        hidden_size=32, num_hidden_layers=12, num_attention_heads=2, intermediate_size=48,
        conv_dim=[16] * 7, classifier_proj_size=256, layerdrop=0.0,
    )  # fmt: skip
    config.architectures = ["HubertModelWithFinalProj"]
    model = HubertModel(config).eval()
    proj = torch.nn.Linear(32, 256)
    directory.mkdir(parents=True)
    config.to_json_file(str(directory / "config.json"))
    weights = {k: v.contiguous() for k, v in model.state_dict().items()}
    weights.update({f"final_proj.{k}": v.detach().contiguous() for k, v in proj.state_dict().items()})
    save_file(weights, str(directory / "model.safetensors"))
    return directory


def write_index(path: Path, dim: int = 256, n: int = 400) -> Path:
    import faiss

    vectors = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    index = faiss.index_factory(dim, "IVF4,Flat")
    index.train(vectors)
    index.add(vectors)
    faiss.write_index(index, str(path))
    return path
