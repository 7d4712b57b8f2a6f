"""RVC synthesizers (VITS-style prior + flow + HiFi-GAN/NSF decoder), inference only.

Module and parameter names and shapes follow RVC-Project's ``SynthesizerTrnMs256NSFsid``
(v1), ``SynthesizerTrnMs768NSFsid`` (v2) and their ``_nono`` variants (no pitch), so that
community ``.pth`` voice files load with ``strict=True``. The posterior encoder ``enc_q``
(training only) is never built; the loader drops its keys.

Weight-normalised convolutions use :func:`torch.nn.utils.parametrizations.weight_norm`, whose
state-dict pre-hook maps the legacy ``weight_g``/``weight_v`` keys found in checkpoints onto
``parametrizations.weight.original0/1``. :func:`fold_weight_norm` removes the
parametrisations after loading (plain ``weight``; faster inference).

Differences from the reference, all opt-in (defaults reproduce RVC's ``infer``):

* ``noise_scale`` / ``source_noise_scale`` / ``generator`` / ``z_noise`` / ``source_noise``
  control or disable the two random draws (prior sampling and NSF excitation noise);
* ``phase`` starts the NSF sine excitation at a given phase (in cycles) instead of 0, so that
  block-wise streaming keeps the excitation continuous across blocks;
* ``dec_pad`` decodes a few extra latent frames around the ``skip_head``/``return_length``
  slice and trims them afterwards, so that the decoder sees real context at the slice edges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from bridge.vc.synth_decoder import Generator
from bridge.vc.synth_flow import ResidualCouplingBlock
from bridge.vc.synth_prior import TextEncoder

#: Scale of the prior sample in RVC's ``infer`` (``z_p = m_p + exp(logs_p)·ε·0.66666``).
NOISE_SCALE = 0.66666
#: Frames of flow context RVC keeps before ``skip_head`` (``flow_head = skip_head - 24``).
FLOW_CONTEXT = 24

SR_BY_NAME = {"32k": 32000, "40k": 40000, "48k": 48000}


class _SynthesizerBase(nn.Module):
    """Common body of the four RVC synthesizers (inference only: no ``enc_q``)."""

    version: str = "v1"
    use_f0: bool = True
    phone_dim: int = 256

    def __init__(
        self,
        spec_channels: int,
        segment_size: int,
        inter_channels: int,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
        resblock: str,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
        upsample_rates: Sequence[int],
        upsample_initial_channel: int,
        upsample_kernel_sizes: Sequence[int],
        spk_embed_dim: int,
        gin_channels: int,
        sr: int | str | None = None,
        **_ignored: Any,
    ) -> None:
        super().__init__()
        if isinstance(sr, str):
            sr = SR_BY_NAME[sr]
        self.sr = sr
        self.inter_channels = inter_channels
        self.hop_length = math.prod(upsample_rates)
        self.spk_embed_dim = spk_embed_dim
        self.enc_p = TextEncoder(
            self.phone_dim,
            inter_channels,
            hidden_channels,
            filter_channels,
            n_heads,
            n_layers,
            kernel_size,
            f0=self.use_f0,
        )
        self.dec = Generator(
            inter_channels,
            resblock,
            resblock_kernel_sizes,
            resblock_dilation_sizes,
            upsample_rates,
            upsample_initial_channel,
            upsample_kernel_sizes,
            gin_channels=gin_channels,
            sr=sr if self.use_f0 else None,
        )
        self.flow = ResidualCouplingBlock(inter_channels, hidden_channels, 5, 1, 3, gin_channels=gin_channels)
        self.emb_g = nn.Embedding(spk_embed_dim, gin_channels)

    def _infer(
        self,
        phone: Tensor,
        phone_lengths: Tensor,
        pitch: Tensor | None,
        nsff0: Tensor | None,
        sid: Tensor,
        skip_head: int | Tensor | None,
        return_length: int | Tensor | None,
        noise_scale: float,
        z_noise: Tensor | None,
        source_noise: Tensor | None,
        source_noise_scale: float,
        phase: Tensor | float,
        dec_pad: tuple[int, int],
        generator: torch.Generator | None,
    ) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor, Tensor]]:
        g = self.emb_g(sid).unsqueeze(-1)
        sliced = skip_head is not None and return_length is not None
        if sliced:
            head = int(skip_head)
            length = int(return_length)
            flow_head = max(head - FLOW_CONTEXT, 0)
        else:
            head = length = flow_head = 0
        m_p, logs_p, x_mask = self.enc_p(phone, pitch, phone_lengths, flow_head)
        if noise_scale:
            if z_noise is None:
                eps = torch.randn(m_p.shape, dtype=m_p.dtype, device=m_p.device, generator=generator)
            else:
                eps = z_noise[:, :, flow_head:].to(m_p)
            z_p = (m_p + torch.exp(logs_p) * eps * noise_scale) * x_mask
        else:
            z_p = m_p * x_mask
        z = self.flow.reverse(z_p, x_mask, g=g)
        pad_l = pad_r = 0
        if sliced:
            dec_head = head - flow_head
            pad_l = min(int(dec_pad[0]), dec_head)
            pad_r = max(min(int(dec_pad[1]), z.shape[2] - dec_head - length), 0)
            z = z[:, :, dec_head - pad_l : dec_head + length + pad_r]
            x_mask = x_mask[:, :, dec_head - pad_l : dec_head + length + pad_r]
            if nsff0 is not None:
                nsff0 = nsff0[:, head - pad_l : head + length + pad_r]
        if self.use_f0:
            o = self.dec(
                z * x_mask,
                nsff0,
                g=g,
                phase=phase,
                noise=source_noise,
                noise_scale=source_noise_scale,
                generator=generator,
            )
        else:
            o = self.dec(z * x_mask, g=g)
        if pad_l or pad_r:
            hop = self.hop_length
            o = o[:, :, pad_l * hop : o.shape[2] - pad_r * hop]
            x_mask = x_mask[:, :, pad_l : x_mask.shape[2] - pad_r]
            z = z[:, :, pad_l : z.shape[2] - pad_r]
        return o, x_mask, (z, z_p, m_p, logs_p)


class SynthesizerTrnMs256NSFsid(_SynthesizerBase):
    """v1 (256-d content features) with pitch."""

    version = "v1"
    use_f0 = True
    phone_dim = 256

    def infer(
        self,
        phone: Tensor,
        phone_lengths: Tensor,
        pitch: Tensor,
        nsff0: Tensor,
        sid: Tensor,
        skip_head: int | Tensor | None = None,
        return_length: int | Tensor | None = None,
        *,
        noise_scale: float = NOISE_SCALE,
        z_noise: Tensor | None = None,
        source_noise: Tensor | None = None,
        source_noise_scale: float = 1.0,
        phase: Tensor | float = 0.0,
        dec_pad: tuple[int, int] = (0, 0),
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor, Tensor]]:
        """RVC's ``infer``. Returns ``(audio [B,1,samples], x_mask, (z, z_p, m_p, logs_p))``.

        ``phone`` [B,T,C] content features at 100 frames/s, ``pitch`` [B,T] coarse bins
        (long), ``nsff0`` [B,T] f0 in Hz, ``sid`` [B] speaker ids. With ``skip_head`` and
        ``return_length``, only frames ``[skip_head, skip_head+return_length)`` are decoded
        (RVC's realtime slice). ``noise_scale=0, source_noise_scale=0`` make it deterministic.
        ``z_noise`` [B, inter, T] / ``source_noise`` [B, decoded samples, 1] replace the
        random draws; ``phase`` (cycles) offsets the sine excitation; ``dec_pad`` (frames)
        decodes extra context around the slice and trims it.
        """
        return self._infer(
            phone, phone_lengths, pitch, nsff0, sid, skip_head, return_length,
            noise_scale, z_noise, source_noise, source_noise_scale, phase, dec_pad, generator,
        )  # fmt: skip


class SynthesizerTrnMs768NSFsid(SynthesizerTrnMs256NSFsid):
    """v2 (768-d content features) with pitch."""

    version = "v2"
    phone_dim = 768


class SynthesizerTrnMs256NSFsid_nono(_SynthesizerBase):  # noqa: N801 - RVC's name
    """v1 without pitch (plain HiFi-GAN decoder)."""

    version = "v1"
    use_f0 = False
    phone_dim = 256

    def infer(
        self,
        phone: Tensor,
        phone_lengths: Tensor,
        sid: Tensor,
        skip_head: int | Tensor | None = None,
        return_length: int | Tensor | None = None,
        *,
        noise_scale: float = NOISE_SCALE,
        z_noise: Tensor | None = None,
        dec_pad: tuple[int, int] = (0, 0),
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor, Tensor]]:
        """RVC's ``infer`` for models without pitch; see the f0 variant for the options."""
        return self._infer(
            phone, phone_lengths, None, None, sid, skip_head, return_length,
            noise_scale, z_noise, None, 0.0, 0.0, dec_pad, generator,
        )  # fmt: skip


class SynthesizerTrnMs768NSFsid_nono(SynthesizerTrnMs256NSFsid_nono):  # noqa: N801
    """v2 without pitch."""

    version = "v2"
    phone_dim = 768


SYNTHESIZERS: dict[tuple[str, bool], type[_SynthesizerBase]] = {
    ("v1", True): SynthesizerTrnMs256NSFsid,
    ("v2", True): SynthesizerTrnMs768NSFsid,
    ("v1", False): SynthesizerTrnMs256NSFsid_nono,
    ("v2", False): SynthesizerTrnMs768NSFsid_nono,
}

Synthesizer = _SynthesizerBase


#: (version, sr) → (upsample_rates, upsample_kernel_sizes) of RVC's ``configs/v1|v2/*.json``
#: (there is no v2/40k.json: RVC trains v2 40k voices with v1's 40k layout).
UPSAMPLING: dict[tuple[str, str], tuple[list[int], list[int]]] = {
    ("v1", "32k"): ([10, 4, 2, 2, 2], [16, 16, 4, 4, 4]),
    ("v1", "40k"): ([10, 10, 2, 2], [16, 16, 4, 4]),
    ("v1", "48k"): ([10, 6, 2, 2, 2], [16, 16, 4, 4, 4]),
    ("v2", "32k"): ([10, 8, 2, 2], [20, 16, 4, 4]),
    ("v2", "40k"): ([10, 10, 2, 2], [16, 16, 4, 4]),
    ("v2", "48k"): ([12, 10, 2, 2], [24, 20, 4, 4]),
}


def rvc_config(version: str = "v2", sr: str = "40k", *, speakers: int = 109) -> list[Any]:
    """The 18-entry ``config`` list RVC writes for a full-size voice of ``version``/``sr``."""
    rates, kernels = UPSAMPLING[(version, sr)]
    spec = 513 if sr == "32k" else 1025
    return [
        spec, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        list(rates), 512, list(kernels), speakers, 256, SR_BY_NAME[sr],
    ]  # fmt: skip


def build_synthesizer(config: Sequence[Any], version: str, f0: bool) -> _SynthesizerBase:
    """Build the synthesizer for a checkpoint's positional ``config`` list (18 entries)."""
    try:
        cls = SYNTHESIZERS[(version, bool(f0))]
    except KeyError:
        raise ValueError(f"unknown RVC version {version!r} (expected 'v1' or 'v2')") from None
    return cls(*config)


def fold_weight_norm(model: nn.Module) -> nn.Module:
    """Replace every weight-norm parametrisation by its plain weight (in place; for speed)."""
    for module in list(model.modules()):
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations.keys()):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return model


def has_weight_norm(model: nn.Module) -> bool:
    return any(parametrize.is_parametrized(m) for m in model.modules())
