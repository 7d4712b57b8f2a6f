"""The synthesizer's decoder (RVC's ``dec``): HiFi-GAN, sine-excited (NSF) for voices with pitch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

LRELU_SLOPE = 0.1


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps a dilated convolution's output as long as its input."""
    return (kernel_size * dilation - dilation) // 2


class ResBlock1(nn.Module):
    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3, 5)) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=same_padding(kernel_size, d)))
            for d in dilation
        )
        self.convs2 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=1, padding=same_padding(kernel_size)))
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
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=same_padding(kernel_size, d)))
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
