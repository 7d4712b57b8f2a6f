"""Reading RVC voice files (``.pth``) and building their synthesizers.

Two dialects exist in the wild, both plain ``torch.save`` dicts:

* RVC-Project: ``weight`` (fp16 state dict, no ``enc_q``), ``config`` (18 positional
  synthesizer arguments), ``info`` (str), ``sr`` (``"40k"``), ``f0`` (int 0/1), ``version``
  (``"v1"``/``"v2"``; absent in early v1 files).
* Applio: the same plus ``sr`` as int, ``f0`` as bool, ``epoch``, ``step``,
  ``creation_date``, ``model_hash``, ``model_name``, ``author``, ``embedder_model``,
  ``speakers_id``, ``vocoder`` (``"HiFi-GAN"``, ``"MRF HiFi-GAN"`` or ``"RefineGAN"``).
  Weight-norm tensors are named ``weight_g``/``weight_v`` (RVC-compatible export) or
  ``parametrizations.weight.original0/1``; both load.

Files are read with ``torch.load(weights_only=True)``: voice files contain only tensors,
dicts, lists, strings and numbers, so no arbitrary unpickling is ever needed. A file that
needs more than that is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bridge.vc.base import VoiceError
from bridge.vc.synthesizer import SR_BY_NAME, Synthesizer, build_synthesizer, fold_weight_norm
from bridge.vc.torchfile import CheckpointError as TorchFileError
from bridge.vc.torchfile import ForeignObjectsError, MissingFileError, load_torch_file

log = logging.getLogger(__name__)

#: Decoders that RVC's ``GeneratorNSF`` implements. Applio's others are different networks.
SUPPORTED_VOCODERS = ("HiFi-GAN",)
KNOWN_UNSUPPORTED_VOCODERS = ("MRF HiFi-GAN", "RefineGAN")
#: Applio's ``embedder_model`` values meaning the ContentVec features RVC uses.
CONTENTVEC_EMBEDDERS = ("contentvec", "hubert_base", "hubert", "")
VERSIONS = ("v1", "v2")
CONFIG_LENGTH = 18


class CheckpointError(VoiceError):
    """A voice file could not be used. The message names the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path.name}: {reason}")


class CorruptCheckpointError(CheckpointError):
    """The file is truncated, corrupt, or not a torch file at all."""


class UnsupportedVocoderError(CheckpointError):
    """The voice uses a decoder other than RVC's HiFi-GAN/NSF (e.g. Applio's RefineGAN)."""


class UnknownVersionError(CheckpointError):
    """``version`` is neither ``v1`` nor ``v2``."""


class IncompatibleWeightsError(CheckpointError):
    """Keys or shapes of ``weight`` do not match the synthesizer the metadata describes."""


class MissingIndexError(CheckpointError):
    """A feature index was configured (or required) but no usable ``.index`` file exists."""


@dataclass(frozen=True)
class VoiceCheckpoint:
    """A parsed voice file: metadata plus the generator weights (as stored, often fp16)."""

    path: Path
    version: str  # "v1" | "v2"
    f0: bool
    sample_rate: int
    config: list[Any]
    weights: dict[str, Tensor]
    dialect: str  # "rvc" | "applio"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def content_dim(self) -> int:
        return 256 if self.version == "v1" else 768

    @property
    def speakers(self) -> int:
        return int(self.config[15])

    @property
    def hop_length(self) -> int:
        hop = 1
        for rate in self.config[12]:
            hop *= int(rate)
        return hop

    @property
    def weights_dtype(self) -> torch.dtype:
        for tensor in self.weights.values():
            if tensor.is_floating_point():
                return tensor.dtype
        return torch.float32

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary (no tensors)."""
        return {
            "file": self.path.name,
            "version": self.version,
            "f0": self.f0,
            "sample_rate": self.sample_rate,
            "dialect": self.dialect,
            "speakers": self.speakers,
            "weights_dtype": str(self.weights_dtype).removeprefix("torch."),
            **{k: v for k, v in self.metadata.items() if isinstance(v, str | int | float | bool) or v is None},
        }


def _torch_load(path: Path) -> Any:
    """The voice file through the one weights-only reader, its errors in the voice stage's terms."""
    try:
        return load_torch_file(path)
    except MissingFileError as exc:
        raise CheckpointError(path, "no such file") from exc
    except ForeignObjectsError as exc:
        raise CheckpointError(
            path,
            "the file holds Python objects beyond tensors and plain data; voice files never "
            "need them, so it is refused (re-export it with RVC or Applio)",
        ) from exc
    except TorchFileError as exc:
        raise CorruptCheckpointError(path, f"corrupt or truncated file, or not a torch file ({exc.reason})") from exc


def _parse_sample_rate(path: Path, cpt: dict[str, Any], config: list[Any]) -> int:
    """RVC stores ``sr`` as "40k", Applio as 40000; ``config[-1]`` is the rate the model runs at."""
    sr_cfg = config[-1]
    if isinstance(sr_cfg, str):
        sr_cfg = SR_BY_NAME.get(sr_cfg)
    sr_meta = cpt.get("sr")
    if isinstance(sr_meta, str):
        sr_meta = SR_BY_NAME.get(sr_meta.strip().lower(), None)
        if sr_meta is None:
            raise CheckpointError(path, f"unknown sample rate {cpt.get('sr')!r} (expected 32k, 40k or 48k)")
    if isinstance(sr_cfg, int) and sr_cfg > 0:
        if isinstance(sr_meta, int) and sr_meta != sr_cfg:
            log.warning("%s: sr=%s disagrees with config rate %s; using %s", path.name, sr_meta, sr_cfg, sr_cfg)
        return int(sr_cfg)
    if isinstance(sr_meta, int) and sr_meta > 0:
        return int(sr_meta)
    raise CheckpointError(path, f"no usable sample rate (config[-1]={config[-1]!r}, sr={cpt.get('sr')!r})")


def read_checkpoint(path: Path | str) -> VoiceCheckpoint:
    """Parse and validate a voice file. Raises :class:`CheckpointError` (a ``VoiceError``)."""
    path = Path(path)
    cpt = _torch_load(path)
    if not isinstance(cpt, dict):
        raise CheckpointError(path, f"not an RVC voice file (top level is {type(cpt).__name__}, expected a dict)")
    if "weight" not in cpt or "config" not in cpt:
        if "model" in cpt and ("iteration" in cpt or "optimizer" in cpt):
            raise CheckpointError(
                path,
                "this is a training checkpoint (G_*.pth), not a voice file; extract the small "
                "model with RVC's ckpt tab or Applio first",
            )
        raise CheckpointError(path, f"not an RVC voice file (keys: {', '.join(sorted(map(str, cpt))[:8])})")
    weights = cpt["weight"]
    if not isinstance(weights, dict) or not all(isinstance(v, Tensor) for v in weights.values()):
        raise CheckpointError(path, "'weight' is not a state dict of tensors")
    weights = {k: v for k, v in weights.items() if not k.startswith("enc_q.")}
    config = list(cpt["config"])
    if len(config) != CONFIG_LENGTH:
        raise CheckpointError(path, f"'config' has {len(config)} entries, expected {CONFIG_LENGTH}")

    vocoder = cpt.get("vocoder") or "HiFi-GAN"
    if vocoder not in SUPPORTED_VOCODERS:
        known = " (Applio-only decoder)" if vocoder in KNOWN_UNSUPPORTED_VOCODERS else ""
        raise UnsupportedVocoderError(
            path,
            f"vocoder {vocoder!r}{known} is not supported; only RVC's HiFi-GAN (NSF) decoder is. "
            f"Retrain or export the voice with vocoder 'HiFi-GAN'",
        )
    embedder = cpt.get("embedder_model")
    if isinstance(embedder, str) and embedder.strip().lower() not in CONTENTVEC_EMBEDDERS:
        raise CheckpointError(
            path,
            f"trained on {embedder!r} features; only ContentVec (hubert_base.pt) features are supported",
        )

    phone = weights.get("enc_p.emb_phone.weight")
    if phone is None or phone.ndim != 2:
        raise IncompatibleWeightsError(path, "missing key enc_p.emb_phone.weight")
    weight_version = {256: "v1", 768: "v2"}.get(int(phone.shape[1]))
    version = cpt.get("version")
    if version is None:
        if weight_version is None:
            raise UnknownVersionError(path, f"no 'version' and content dimension {phone.shape[1]} is unknown")
        version = weight_version
    if version not in VERSIONS:
        raise UnknownVersionError(path, f"unknown version {version!r} (expected 'v1' or 'v2')")
    if weight_version != version:
        raise IncompatibleWeightsError(
            path, f"version says {version} but enc_p.emb_phone takes {phone.shape[1]}-d features"
        )

    weight_f0 = "enc_p.emb_pitch.weight" in weights
    f0_meta = cpt.get("f0")
    f0 = weight_f0 if f0_meta is None else bool(int(f0_meta))
    if f0 != weight_f0:
        raise IncompatibleWeightsError(
            path, f"f0={f0_meta!r} but the weights {'have' if weight_f0 else 'lack'} a pitch embedding"
        )

    emb_g = weights.get("emb_g.weight")
    if emb_g is None:
        raise IncompatibleWeightsError(path, "missing key emb_g.weight")
    config[15] = int(emb_g.shape[0])  # speaker count comes from the weights (as RVC does)
    sample_rate = _parse_sample_rate(path, cpt, config)
    config[-1] = sample_rate

    dialect = "applio" if any(k in cpt for k in ("vocoder", "embedder_model", "model_hash", "creation_date")) else "rvc"
    metadata = {
        k: cpt[k]
        for k in (
            "info", "epoch", "step", "model_name", "author", "creation_date", "model_hash",
            "embedder_model", "speakers_id", "dataset_length", "overtrain_info",
        )
        if k in cpt
    }  # fmt: skip
    metadata["vocoder"] = vocoder
    metadata["sr_label"] = cpt.get("sr")
    return VoiceCheckpoint(
        path=path,
        version=version,
        f0=f0,
        sample_rate=sample_rate,
        config=config,
        weights=weights,
        dialect=dialect,
        metadata=metadata,
    )


def build_from_checkpoint(
    ckpt: VoiceCheckpoint,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    fold: bool = True,
) -> Synthesizer:
    """Build the synthesizer, load the weights strictly, cast to ``dtype`` and move to ``device``.

    With ``fold`` the weight-norm parametrisations are folded into plain weights (faster).
    """
    try:
        model = build_synthesizer(ckpt.config, ckpt.version, ckpt.f0)
    except Exception as exc:  # bad config values (wrong types, inconsistent sizes)
        raise CheckpointError(ckpt.path, f"cannot build the synthesizer from 'config' ({exc})") from exc
    weights = {k: v.float() if v.is_floating_point() else v for k, v in ckpt.weights.items()}
    expected = set(model.state_dict())
    given = {_canonical_key(k) for k in weights}
    missing = sorted(expected - given)
    unexpected = sorted(given - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s), e.g. {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s), e.g. {', '.join(unexpected[:3])}")
        raise IncompatibleWeightsError(ckpt.path, "; ".join(parts))
    try:
        # Legacy weight_g/weight_v keys are mapped by weight_norm's load hook.
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:  # shape mismatches
        detail = "; ".join(line.strip() for line in str(exc).splitlines()[1:4])
        raise IncompatibleWeightsError(
            ckpt.path, f"weights do not fit the {ckpt.version} synthesizer: {detail}"
        ) from exc
    model.eval()
    if fold:
        fold_weight_norm(model)
    model.requires_grad_(False)
    return model.to(device=device, dtype=dtype)


def _canonical_key(key: str) -> str:
    """Legacy weight-norm names → the parametrisation names the model's state dict uses."""
    if key.endswith(".weight_g"):
        return key[: -len("weight_g")] + "parametrizations.weight.original0"
    if key.endswith(".weight_v"):
        return key[: -len("weight_v")] + "parametrizations.weight.original1"
    return key


def load_voice_checkpoint(
    path: Path | str,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    fold: bool = True,
) -> tuple[Synthesizer, VoiceCheckpoint]:
    """:func:`read_checkpoint` then :func:`build_from_checkpoint`."""
    ckpt = read_checkpoint(path)
    return build_from_checkpoint(ckpt, device, dtype, fold=fold), ckpt
