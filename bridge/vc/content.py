"""Content features for RVC: HuBERT / ContentVec over ``transformers.HubertModel``.

RVC's ``hubert_base.pt`` is ContentVec (legacy 500-class) saved by fairseq. Features:

* **v1**: ``final_proj(output of encoder layer 9)`` → 256-d;
* **v2**: output of encoder layer 12 → 768-d.

Both at 50 frames/s from 16 kHz audio (conv stack stride 320, receptive field 400):
``frames = (N - 400) // 320 + 1``.

Equivalence with fairseq, checked against ``transformers`` 5.x ``HubertModel`` (post-LN
``HubertEncoder``, ``do_stable_layer_norm=False``): fairseq ``extract_features(output_layer=L)``
runs conv features → ``layer_norm`` → ``post_extract_proj`` → ``x + pos_conv(x)`` →
``encoder.layer_norm`` → layers ``0..L-1`` and, for a post-LN model (``layer_norm_first=False``),
applies **no** final layer norm. HF's ``HubertEncoder`` is the same sequence, also without a
final norm, so ``hidden_states[L]`` (``hidden_states[0]`` being the input of layer 0) equals
fairseq's ``output_layer=L`` and ``last_hidden_state`` equals ``output_layer=12``. (Only the
pre-LN ``HubertEncoderStableLayerNorm`` ends with a norm; such checkpoints are refused.)

:meth:`ContentEncoder.extract` runs those HF modules directly and stops after the layer it
needs (v1 skips the last three layers). The tests check it against ``HubertModel.forward``.

Weights load from either layout, always strictly (every parameter must be present):

* a Hugging Face directory (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``),
  e.g. ``lj1995/VoiceConversionWebUI`` ``hubert_base/`` saved from a ``HubertModel``
  subclass with a top-level ``final_proj``: keys as in ``HubertModel.state_dict()``
  (optionally prefixed ``hubert.``) plus ``final_proj.weight`` / ``final_proj.bias``; the
  positional conv's weight norm as legacy ``weight_g`` / ``weight_v`` or as
  ``parametrizations.weight.original0/1``;
* a fairseq checkpoint (``hubert_base.pt``): ``{"model": state_dict, "cfg" | "args": ...}``,
  keys renamed in :mod:`bridge.vc.hubert_weights`, architecture read from tensor shapes (and
  the conv strides / heads from the pickled config when present). See
  :mod:`bridge.vc.torchfile` for how the pickled config is read without fairseq/omegaconf.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from bridge.vc.base import VoiceError
from bridge.vc.hubert_weights import (
    fairseq_config,
    fairseq_to_hf_state_dict,
    hubert_config_from_fairseq,
    normalise_hf_keys,
)
from bridge.vc.torchfile import CheckpointError, load_torch_file

log = logging.getLogger(__name__)

__all__ = [
    "ContentEncoder",
    "default_content_model_path",
    "fairseq_to_hf_state_dict",
    "feature_frames",
]

SAMPLE_RATE = 16_000
HOP = 320
WINDOW = 400
V1_LAYER = 9


def feature_frames(num_samples: int) -> int:
    """Frames that :meth:`ContentEncoder.extract` returns for ``num_samples`` at 16 kHz."""
    return 0 if num_samples < WINDOW else (num_samples - WINDOW) // HOP + 1


def default_content_model_path(models_dir: Path) -> Path:
    """``<models_dir>/hubert_base.pt`` if present, else ``<models_dir>/hubert_base/`` (HF layout)."""
    pt = Path(models_dir) / "hubert_base.pt"
    hf = Path(models_dir) / "hubert_base"
    if not pt.exists() and (hf / "config.json").is_file():
        return hf
    return pt


class ContentEncoder(nn.Module):
    """HuBERT/ContentVec content features for RVC (v1: 256-d, v2: 768-d, 50 fps).

    Thread-safe: :meth:`extract` only reads parameters (eval mode, ``inference_mode``), so
    one instance may serve concurrent calls from several worker threads.
    """

    def __init__(self, hubert: Any, final_proj: nn.Linear | None, *, normalize: bool = False) -> None:
        super().__init__()
        self.hubert = hubert
        self.final_proj = final_proj
        #: zero-mean / unit-variance the waveform first (the model's ``task.normalize`` /
        #: ``do_normalize``); False for hubert_base / ContentVec.
        self.normalize = normalize
        self.eval()

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def from_config(
        cls, config: Any, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> ContentEncoder:
        """Random weights with ``config``'s architecture (``HubertConfig()`` = hubert_base)."""
        from transformers import HubertModel

        hubert = HubertModel(config)
        proj = nn.Linear(config.hidden_size, config.classifier_proj_size)
        return cls(hubert, proj).to(device=device, dtype=dtype).eval()

    @classmethod
    def load(
        cls, path: Path | str, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> ContentEncoder:
        """Load a fairseq ``hubert_base.pt`` or a Hugging Face layout directory.

        Raises :class:`~bridge.vc.base.VoiceError` naming the file for a missing, truncated
        or foreign file, or for weights that do not fit the architecture.
        """
        path = Path(path)
        try:
            if path.is_dir():
                encoder = cls._load_hf_dir(path)
            elif path.exists():
                encoder = cls._load_fairseq(path)
            else:
                raise VoiceError(
                    f"content encoder weights not found: {path} "
                    "(run `voice-bridge models pull hubert_base.pt`)"
                )
        except CheckpointError as exc:
            raise VoiceError(f"cannot load content encoder: {exc}") from exc
        return encoder.to(device=device, dtype=dtype).eval()

    @classmethod
    def _load_fairseq(cls, path: Path) -> ContentEncoder:
        ckpt = load_torch_file(path, allow_opaque=True)
        if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
            raise VoiceError(f"{path}: not a fairseq checkpoint (no 'model' state dict)")
        sd = {k: v for k, v in ckpt["model"].items() if isinstance(v, torch.Tensor)}
        options = fairseq_config(ckpt)
        config = hubert_config_from_fairseq(sd, options)
        encoder = cls._build(config, fairseq_to_hf_state_dict(sd), str(path))
        encoder.normalize = bool(options.get("normalize", False))
        return encoder

    @classmethod
    def _load_hf_dir(cls, path: Path) -> ContentEncoder:
        from transformers import HubertConfig

        config_file = path / "config.json"
        if not config_file.is_file():
            raise VoiceError(f"{path}: no config.json (expected a Hugging Face model directory)")
        try:
            config = HubertConfig.from_json_file(str(config_file))
        except (ValueError, OSError, json.JSONDecodeError) as exc:
            raise VoiceError(f"{config_file}: unreadable config: {exc}") from exc
        st, bin_ = path / "model.safetensors", path / "pytorch_model.bin"
        if st.is_file():
            from safetensors import SafetensorError
            from safetensors.torch import load_file

            try:
                sd = load_file(str(st), device="cpu")
            except (SafetensorError, OSError, ValueError) as exc:
                raise VoiceError(f"{st}: not a readable safetensors file (truncated?): {exc}") from exc
            source = st
        elif bin_.is_file():
            sd = load_torch_file(bin_)
            source = bin_
        else:
            raise VoiceError(f"{path}: neither model.safetensors nor pytorch_model.bin")
        if not isinstance(sd, dict):
            raise VoiceError(f"{source}: not a state dict")
        if config.do_stable_layer_norm:
            raise VoiceError(f"{config_file}: pre-LN (do_stable_layer_norm) HuBERT is not supported")
        encoder = cls._build(config, normalise_hf_keys(sd), str(source))
        pre = path / "preprocessor_config.json"
        if pre.is_file():
            try:
                encoder.normalize = bool(json.loads(pre.read_text()).get("do_normalize", False))
            except (OSError, json.JSONDecodeError) as exc:
                raise VoiceError(f"{pre}: unreadable: {exc}") from exc
        return encoder

    @classmethod
    def _build(cls, config: Any, sd: dict[str, torch.Tensor], source: str) -> ContentEncoder:
        from transformers import HubertModel

        config.layerdrop = 0.0
        hubert = HubertModel(config)
        final_proj = None
        if "final_proj.weight" in sd:
            w = sd["final_proj.weight"]
            final_proj = nn.Linear(w.shape[1], w.shape[0])
        else:
            log.warning("%s has no final_proj: only v2 (768-d) features are available", source)
        model_sd = hubert.state_dict()
        hub_sd = {k: v for k, v in sd.items() if not k.startswith("final_proj.")}
        # The SpecAugment mask vector is training-only: tolerate its absence or presence.
        if "masked_spec_embed" not in model_sd:
            hub_sd.pop("masked_spec_embed", None)
        elif "masked_spec_embed" not in hub_sd:
            hub_sd["masked_spec_embed"] = model_sd["masked_spec_embed"]
        missing = sorted(set(model_sd) - set(hub_sd))
        unexpected = sorted(set(hub_sd) - set(model_sd))
        if missing or unexpected:
            raise VoiceError(
                f"{source}: weights do not fit a HuBERT model"
                + (f"; missing {missing[:6]}{'…' if len(missing) > 6 else ''}" if missing else "")
                + (f"; unexpected {unexpected[:6]}{'…' if len(unexpected) > 6 else ''}" if unexpected else "")
            )
        bad = [k for k, v in hub_sd.items() if tuple(v.shape) != tuple(model_sd[k].shape)]
        if bad:
            raise VoiceError(
                f"{source}: shape mismatch for {bad[0]}: file {tuple(hub_sd[bad[0]].shape)} "
                f"vs model {tuple(model_sd[bad[0]].shape)}"
            )
        hubert.load_state_dict({k: v.float() for k, v in hub_sd.items()}, strict=True)
        if final_proj is not None:
            if "final_proj.bias" not in sd or sd["final_proj.weight"].shape[1] != config.hidden_size:
                raise VoiceError(f"{source}: final_proj does not fit (needs weight [*, {config.hidden_size}] and bias)")
            final_proj.load_state_dict(
                {"weight": sd["final_proj.weight"].float(), "bias": sd["final_proj.bias"].float()}
            )
        return cls(hubert, final_proj)

    # ---- inference -----------------------------------------------------------------------

    @property
    def hidden_size(self) -> int:
        return int(self.hubert.config.hidden_size)

    def dims(self, version: Literal["v1", "v2"]) -> int:
        """Feature width for ``version``: 256 (v1) or 768 (v2) for hubert_base."""
        if version == "v1":
            if self.final_proj is None:
                raise VoiceError("this content encoder has no final_proj: v1 features unavailable")
            return int(self.final_proj.out_features)
        return self.hidden_size

    def extract(self, audio16k: torch.Tensor, version: Literal["v1", "v2"]) -> torch.Tensor:
        """``[N]`` or ``[1, N]`` float audio at 16 kHz → ``[1, frames, 256 | 768]``.

        ``frames = (N - 400) // 320 + 1`` (:func:`feature_frames`); N < 400 raises ValueError.
        The result is on the model's device, in its dtype.
        """
        if version not in ("v1", "v2"):
            raise ValueError(f"unknown RVC feature version {version!r} (expected 'v1' or 'v2')")
        if version == "v1" and self.final_proj is None:
            raise VoiceError("this content encoder has no final_proj: v1 features unavailable")
        x = torch.as_tensor(audio16k)
        if x.dim() == 2 and x.shape[0] == 1:
            x = x[0]
        if x.dim() != 1:
            raise ValueError(f"expected audio of shape [N] or [1, N], got {tuple(x.shape)}")
        if x.shape[0] < WINDOW:
            raise ValueError(f"need at least {WINDOW} samples (25 ms at 16 kHz), got {x.shape[0]}")
        param = self.hubert.feature_projection.projection.weight
        x = x.to(device=param.device, dtype=param.dtype)[None]
        with torch.inference_mode():
            if self.normalize:
                x = torch.nn.functional.layer_norm(x, x.shape[-1:])
            n_layers = V1_LAYER if version == "v1" else len(self.hubert.encoder.layers)
            h = self._hidden(x, n_layers)
            if version == "v1":
                h = self.final_proj(h)
        return h

    def _hidden(self, x: torch.Tensor, n_layers: int) -> torch.Tensor:
        """Output of encoder layer ``n_layers`` (``HubertModel``'s ``hidden_states[n_layers]``)."""
        hub = self.hubert
        feats = hub.feature_extractor(x).transpose(1, 2)
        h = hub.feature_projection(feats)
        if isinstance(h, tuple):  # transformers 4.x returned (projected, normed)
            h = h[0]
        enc = hub.encoder
        h = h + enc.pos_conv_embed(h)
        h = enc.layer_norm(h)
        for layer in enc.layers[:n_layers]:
            h = layer(h)
            if isinstance(h, tuple):  # transformers 4.x layers return tuples
                h = h[0]
        return h
