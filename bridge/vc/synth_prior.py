"""The synthesizer's prior encoder (RVC's ``enc_p``): content features (and coarse pitch) through
a relative-position transformer to the prior's mean and log-scale per frame."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def _sequence_mask(lengths: Tensor, max_length: int) -> Tensor:
    x = torch.arange(max_length, dtype=lengths.dtype, device=lengths.device)
    return x.unsqueeze(0) < lengths.unsqueeze(1)


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
