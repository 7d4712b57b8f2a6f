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
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

#: Scale of the prior sample in RVC's ``infer`` (``z_p = m_p + exp(logs_p)·ε·0.66666``).
NOISE_SCALE = 0.66666
LRELU_SLOPE = 0.1
#: Frames of flow context RVC keeps before ``skip_head`` (``flow_head = skip_head - 24``).
FLOW_CONTEXT = 24

SR_BY_NAME = {"32k": 32000, "40k": 40000, "48k": 48000}


def _padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


def _sequence_mask(lengths: Tensor, max_length: int) -> Tensor:
    x = torch.arange(max_length, dtype=lengths.dtype, device=lengths.device)
    return x.unsqueeze(0) < lengths.unsqueeze(1)


# --------------------------------------------------------------------------------------
# Prior encoder (enc_p): relative-position transformer
# --------------------------------------------------------------------------------------


class LayerNorm(nn.Module):
    """LayerNorm over the channel axis of ``[B, C, T]`` (parameters ``gamma``/``beta``)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        x = F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


class MultiHeadAttention(nn.Module):
    """Self-attention with windowed relative position keys/values shared by all heads."""

    def __init__(self, channels: int, out_channels: int, n_heads: int, window_size: int = 10) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError("channels must be divisible by n_heads")
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        std = self.k_channels**-0.5
        self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * std)
        self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * std)

    def _relative_index(self, length: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """For each (query i, key j): index j-i+w into the window and whether |j-i| <= w."""
        pos = torch.arange(length, device=device)
        rel = pos.unsqueeze(0) - pos.unsqueeze(1) + self.window_size  # [t, t]
        valid = (rel >= 0) & (rel <= 2 * self.window_size)
        return rel.clamp(0, 2 * self.window_size), valid

    def forward(self, x: Tensor, attn_mask: Tensor | None) -> Tensor:
        b, d, t = x.shape
        h, dk, w = self.n_heads, self.k_channels, self.window_size
        q = self.conv_q(x).view(b, h, dk, t).transpose(2, 3) / math.sqrt(dk)  # [b,h,t,dk]
        k = self.conv_k(x).view(b, h, dk, t)  # [b,h,dk,t]
        v = self.conv_v(x).view(b, h, dk, t).transpose(2, 3)  # [b,h,t,dk]
        scores = torch.matmul(q, k)  # [b,h,t,t]
        # Relative keys: logits for offsets -w..w, scattered onto the band |j-i| <= w.
        band = torch.matmul(q, self.emb_rel_k.transpose(1, 2).unsqueeze(0))  # [b,h,t,2w+1]
        # Place the band onto [t, t]: pad each row to t+2w columns and shift row i by i.
        scores = scores + _band_to_full(band, t, w)
        if attn_mask is not None:
            scores = scores.masked_fill(attn_mask == 0, -1e4)
        p = F.softmax(scores, dim=-1)
        out = torch.matmul(p, v)
        # Relative values: gather the band of the attention weights back to [b,h,t,2w+1].
        out = out + torch.matmul(_full_to_band(p, t, w), self.emb_rel_v.unsqueeze(0))
        out = out.transpose(2, 3).reshape(b, d, t)
        return self.conv_o(out)


def _band_to_full(band: Tensor, t: int, w: int) -> Tensor:
    """``band[..., i, r]`` (offset r-w) → ``full[..., i, i+r-w]``, zero outside the band."""
    lead = band.shape[:-2]
    # Rows padded to width t+2w+1, flattened, re-read with width t+2w: (i, r) lands at
    # column i + r of row i (the padding zeros spill harmlessly into the next row's head).
    flat = F.pad(band, (0, t)).reshape(*lead, t * (t + 2 * w + 1))[..., : t * (t + 2 * w)]
    return flat.reshape(*lead, t, t + 2 * w)[..., w : w + t]


def _full_to_band(full: Tensor, t: int, w: int) -> Tensor:
    """``full[..., i, j]`` → ``band[..., i, j-i+w]`` for |j-i| <= w, zero outside."""
    lead = full.shape[:-2]
    padded = F.pad(full, (w, w))  # column j -> j + w; [..., t, t+2w]
    flat = padded.reshape(*lead, t * (t + 2 * w))
    flat = F.pad(flat, (0, t))  # [..., t*(t+2w+1)]
    skew = flat.reshape(*lead, t, t + 2 * w + 1)  # row i starts i elements later
    return skew[..., : 2 * w + 1]


class FFN(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, filter_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size)

    def _pad(self, x: Tensor) -> Tensor:
        if self.kernel_size == 1:
            return x
        return F.pad(x, ((self.kernel_size - 1) // 2, self.kernel_size // 2))

    def forward(self, x: Tensor, x_mask: Tensor) -> Tensor:
        x = torch.relu(self.conv_1(self._pad(x * x_mask)))
        return self.conv_2(self._pad(x * x_mask)) * x_mask


class Encoder(nn.Module):
    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int = 1,
        window_size: int = 10,
    ) -> None:
        super().__init__()
        self.n_layers = int(n_layers)
        self.attn_layers = nn.ModuleList()
        self.norm_layers_1 = nn.ModuleList()
        self.ffn_layers = nn.ModuleList()
        self.norm_layers_2 = nn.ModuleList()
        for _ in range(self.n_layers):
            self.attn_layers.append(MultiHeadAttention(hidden_channels, hidden_channels, n_heads, window_size))
            self.norm_layers_1.append(LayerNorm(hidden_channels))
            self.ffn_layers.append(FFN(hidden_channels, hidden_channels, filter_channels, kernel_size))
            self.norm_layers_2.append(LayerNorm(hidden_channels))

    def forward(self, x: Tensor, x_mask: Tensor) -> Tensor:
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
        x = x * x_mask
        for attn, norm1, ffn, norm2 in zip(
            self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2
        ):
            x = norm1(x + attn(x, attn_mask))
            x = norm2(x + ffn(x, x_mask))
        return x * x_mask


class TextEncoder(nn.Module):
    """``enc_p``: content features (+ coarse pitch) → prior mean and log-scale."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        f0: bool = True,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.emb_phone = nn.Linear(in_channels, hidden_channels)
        if f0:
            self.emb_pitch = nn.Embedding(256, hidden_channels)
        self.encoder = Encoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(
        self, phone: Tensor, pitch: Tensor | None, lengths: Tensor, head: int = 0
    ) -> tuple[Tensor, Tensor, Tensor]:
        x = self.emb_phone(phone)
        if pitch is not None:
            x = x + self.emb_pitch(pitch)
        x = F.leaky_relu(x * math.sqrt(self.hidden_channels), 0.1).transpose(1, -1)  # [b,h,t]
        x_mask = _sequence_mask(lengths, x.size(2)).unsqueeze(1).to(x.dtype)
        x = self.encoder(x * x_mask, x_mask)
        if head:
            x = x[:, :, head:]
            x_mask = x_mask[:, :, head:]
        stats = self.proj(x) * x_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return m, logs, x_mask


# --------------------------------------------------------------------------------------
# Flow
# --------------------------------------------------------------------------------------


class WN(nn.Module):
    """WaveNet-style gated residual stack (all convolutions weight-normalised)."""

    def __init__(
        self, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int, gin_channels: int = 0
    ) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.gin_channels = gin_channels
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        if gin_channels:
            self.cond_layer = weight_norm(nn.Conv1d(gin_channels, 2 * hidden_channels * n_layers, 1))
        for i in range(n_layers):
            dilation = dilation_rate**i
            self.in_layers.append(
                weight_norm(
                    nn.Conv1d(
                        hidden_channels,
                        2 * hidden_channels,
                        kernel_size,
                        dilation=dilation,
                        padding=_padding(kernel_size, dilation),
                    )
                )
            )
            res_skip = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(weight_norm(nn.Conv1d(hidden_channels, res_skip, 1)))

    def forward(self, x: Tensor, x_mask: Tensor, g: Tensor | None = None) -> Tensor:
        h = self.hidden_channels
        output = torch.zeros_like(x)
        g_all = self.cond_layer(g) if g is not None and self.gin_channels else None
        for i, (in_layer, res_skip_layer) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            x_in = in_layer(x)
            if g_all is not None:
                x_in = x_in + g_all[:, i * 2 * h : (i + 1) * 2 * h, :]
            acts = torch.tanh(x_in[:, :h]) * torch.sigmoid(x_in[:, h:])
            res_skip = res_skip_layer(acts)
            if i < self.n_layers - 1:
                x = (x + res_skip[:, :h]) * x_mask
                output = output + res_skip[:, h:]
            else:
                output = output + res_skip
        return output * x_mask


class ResidualCouplingLayer(nn.Module):
    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        self.half_channels = channels // 2
        self.pre = nn.Conv1d(self.half_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels)
        self.post = nn.Conv1d(hidden_channels, self.half_channels, 1)  # mean_only

    def reverse(self, x: Tensor, x_mask: Tensor, g: Tensor | None) -> Tensor:
        x0, x1 = torch.split(x, [self.half_channels] * 2, 1)
        h = self.enc(self.pre(x0) * x_mask, x_mask, g=g)
        m = self.post(h) * x_mask
        return torch.cat([x0, (x1 - m) * x_mask], 1)


class Flip(nn.Module):
    def reverse(self, x: Tensor, x_mask: Tensor, g: Tensor | None) -> Tensor:
        return torch.flip(x, [1])


class ResidualCouplingBlock(nn.Module):
    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        n_flows: int = 4,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(
                ResidualCouplingLayer(channels, hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels)
            )
            self.flows.append(Flip())

    def reverse(self, x: Tensor, x_mask: Tensor, g: Tensor | None = None) -> Tensor:
        for flow in reversed(self.flows):
            x = flow.reverse(x, x_mask, g)
        return x


# --------------------------------------------------------------------------------------
# Decoder (HiFi-GAN, optionally NSF)
# --------------------------------------------------------------------------------------


class ResBlock1(nn.Module):
    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3, 5)) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=_padding(kernel_size, d)))
            for d in dilation
        )
        self.convs2 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=1, padding=_padding(kernel_size)))
            for _ in dilation
        )

    def forward(self, x: Tensor) -> Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
            x = xt + x
        return x


class ResBlock2(nn.Module):
    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3)) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=_padding(kernel_size, d)))
            for d in dilation
        )

    def forward(self, x: Tensor) -> Tensor:
        for c in self.convs:
            x = c(F.leaky_relu(x, LRELU_SLOPE)) + x
        return x


class SineGen(nn.Module):
    """Sine excitation from frame-level f0 (RVC's vectorised ``_f02sine``), no parameters."""

    def __init__(self, samp_rate: int, harmonic_num: int = 0, sine_amp: float = 0.1, noise_std: float = 0.003) -> None:
        super().__init__()
        self.sampling_rate = samp_rate
        self.dim = harmonic_num + 1
        self.sine_amp = sine_amp
        self.noise_std = noise_std

    @torch.no_grad()
    def forward(
        self,
        f0: Tensor,
        upp: int,
        *,
        phase: Tensor | float = 0.0,
        noise: Tensor | None = None,
        noise_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``f0`` [B, T] in Hz → excitation [B, T·upp, dim]. ``phase`` in cycles, per batch item."""
        f0 = f0.float().unsqueeze(-1)  # [B, T, 1]
        a = torch.arange(1, upp + 1, dtype=f0.dtype, device=f0.device)
        rad = f0 / self.sampling_rate * a  # [B, T, upp]
        rad2 = torch.fmod(rad[:, :-1, -1:] + 0.5, 1.0) - 0.5
        rad_acc = rad2.cumsum(dim=1).fmod(1.0)
        rad = rad + F.pad(rad_acc, (0, 0, 1, 0))
        if not isinstance(phase, Tensor):
            if phase:
                rad = rad + float(phase)
        else:
            rad = rad + phase.to(rad).reshape(-1, 1, 1)
        rad = rad.reshape(f0.shape[0], -1, 1)
        if self.dim > 1:
            rad = rad * torch.arange(1, self.dim + 1, dtype=rad.dtype, device=rad.device).reshape(1, 1, -1)
        sines = torch.sin(2 * math.pi * rad) * self.sine_amp
        uv = (f0 > 0).to(sines.dtype)  # [B, T, 1]
        uv = uv.repeat_interleave(upp, dim=1)  # nearest upsampling
        out = sines * uv
        if noise_scale:
            if noise is None:
                noise = torch.randn(sines.shape, dtype=sines.dtype, device=sines.device, generator=generator)
            noise_amp = uv * self.noise_std + (1 - uv) * (self.sine_amp / 3)
            out = out + noise_amp * noise.to(out) * noise_scale
        return out


class SourceModuleHnNSF(nn.Module):
    def __init__(self, sampling_rate: int, harmonic_num: int = 0, sine_amp: float = 0.1, add_noise_std: float = 0.003) -> None:
        super().__init__()
        self.l_sin_gen = SineGen(sampling_rate, harmonic_num, sine_amp, add_noise_std)
        self.l_linear = nn.Linear(harmonic_num + 1, 1)

    def forward(self, f0: Tensor, upp: int, **kwargs: Any) -> Tensor:
        sine = self.l_sin_gen(f0, upp, **kwargs).to(self.l_linear.weight.dtype)
        return torch.tanh(self.l_linear(sine))


class Generator(nn.Module):
    """HiFi-GAN decoder; with ``sr`` set it is RVC's ``GeneratorNSF`` (sine-excited)."""

    def __init__(
        self,
        initial_channel: int,
        resblock: str,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
        upsample_rates: Sequence[int],
        upsample_initial_channel: int,
        upsample_kernel_sizes: Sequence[int],
        gin_channels: int = 0,
        sr: int | None = None,
    ) -> None:
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        self.upp = math.prod(upsample_rates)
        self.nsf = sr is not None
        if self.nsf:
            self.m_source = SourceModuleHnNSF(sampling_rate=sr, harmonic_num=0)
            self.noise_convs = nn.ModuleList()
        self.conv_pre = nn.Conv1d(initial_channel, upsample_initial_channel, 7, 1, padding=3)
        block_cls = ResBlock1 if str(resblock) == "1" else ResBlock2
        self.ups = nn.ModuleList()
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            c_in = upsample_initial_channel // (2**i)
            c_out = upsample_initial_channel // (2 ** (i + 1))
            self.ups.append(weight_norm(nn.ConvTranspose1d(c_in, c_out, k, u, padding=(k - u) // 2)))
            if self.nsf:
                if i + 1 < len(upsample_rates):
                    stride = math.prod(upsample_rates[i + 1 :])
                    self.noise_convs.append(
                        nn.Conv1d(1, c_out, kernel_size=stride * 2, stride=stride, padding=stride // 2)
                    )
                else:
                    self.noise_convs.append(nn.Conv1d(1, c_out, kernel_size=1))
        self.resblocks = nn.ModuleList()
        ch = upsample_initial_channel
        for i in range(len(self.ups)):
            ch = upsample_initial_channel // (2 ** (i + 1))
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(block_cls(ch, k, d))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=False)
        if gin_channels:
            self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def forward(self, x: Tensor, f0: Tensor | None = None, g: Tensor | None = None, **source_kwargs: Any) -> Tensor:
        har = None
        if self.nsf:
            if f0 is None:
                raise ValueError("this decoder needs f0")
            har = self.m_source(f0, self.upp, **source_kwargs).transpose(1, 2)  # [B, 1, T·upp]
        x = self.conv_pre(x)
        if g is not None and hasattr(self, "cond"):
            x = x + self.cond(g)
        for i in range(self.num_upsamples):
            x = self.ups[i](F.leaky_relu(x, LRELU_SLOPE))
            if har is not None:
                x = x + self.noise_convs[i](har)
            xs = self.resblocks[i * self.num_kernels](x)
            for j in range(1, self.num_kernels):
                xs = xs + self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))
        return torch.tanh(x)


# --------------------------------------------------------------------------------------
# Synthesizers
# --------------------------------------------------------------------------------------


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
