"""RMVPE's network (RVC's ``E2E(n_blocks=4, n_gru=1, kernel_size=(2, 2))``) and its log-mel front
end, in native PyTorch; module names mirror ``rmvpe.pt``'s state dict keys so that it loads with
``strict=True``. What the estimator does with its output is in :mod:`bridge.vc.pitch`."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from bridge.vc.layout import HOP_16K as HOP
from bridge.vc.layout import SR_16K as SAMPLE_RATE


# --------------------------------------------------------------------------------------
# mel front end


def htk_mel_filterbank(
    sr: int = SAMPLE_RATE, n_fft: int = 1024, n_mels: int = 128, fmin: float = 30.0, fmax: float = 8000.0
) -> np.ndarray:
    """``[n_mels, n_fft//2 + 1]`` triangular filters on the HTK mel scale, Slaney-normalised.

    Same definition as ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=True)``
    (default ``norm="slaney"``): band edges equally spaced in ``2595·log10(1 + f/700)``,
    each triangle scaled by ``2 / (f_{i+2} − f_i)``.
    """
    def hz_to_mel(f: float) -> float:
        return 2595.0 * math.log10(1.0 + f / 700.0)

    fft_freqs = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    mels = np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2)
    edges = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


class LogMel(nn.Module):
    """RMVPE's log-mel spectrogram: ``[B, N]`` audio → ``[B, 128, N // 160 + 1]``."""

    def __init__(self, n_fft: int = 1024, hop: int = HOP, n_mels: int = 128,
                 fmin: float = 30.0, fmax: float = 8000.0, clamp: float = 1e-5) -> None:
        super().__init__()
        self.n_fft, self.hop, self.clamp = n_fft, hop, clamp
        self.register_buffer("mel_basis", torch.from_numpy(htk_mel_filterbank(SAMPLE_RATE, n_fft, n_mels, fmin, fmax)))
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        # reflect padding needs more than n_fft/2 samples; shorter input is zero-padded.
        pad_mode = "reflect" if audio.shape[-1] > self.n_fft // 2 else "constant"
        spec = torch.stft(audio, self.n_fft, hop_length=self.hop, win_length=self.n_fft, window=self.window,
                          center=True, pad_mode=pad_mode, return_complex=True)
        mel = torch.matmul(self.mel_basis, spec.abs())
        return torch.log(torch.clamp(mel, min=self.clamp))


# --------------------------------------------------------------------------------------
# E2E network. Module names mirror rmvpe.pt's state dict keys.


class ConvBlockRes(nn.Module):
    """Two 3×3 conv + BatchNorm + ReLU, residual (1×1 conv ``shortcut`` when channels change)."""

    def __init__(self, in_channels: int, out_channels: int, momentum: float = 0.01) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, (3, 3), padding=(1, 1), bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, (3, 3), padding=(1, 1), bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum),
            nn.ReLU(),
        )
        self.shortcut = nn.Conv2d(in_channels, out_channels, (1, 1)) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.conv(x) + skip


class ResEncoderBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int] | None,
                 n_blocks: int = 1, momentum: float = 0.01) -> None:
        super().__init__()
        self.conv = nn.ModuleList(
            [ConvBlockRes(in_channels, out_channels, momentum)]
            + [ConvBlockRes(out_channels, out_channels, momentum) for _ in range(n_blocks - 1)]
        )
        self.pool = nn.AvgPool2d(kernel_size=kernel_size) if kernel_size is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.conv:
            x = block(x)
        return x


class Encoder(nn.Module):
    def __init__(self, in_channels: int, n_encoders: int, kernel_size: tuple[int, int], n_blocks: int,
                 out_channels: int = 16, momentum: float = 0.01) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels, momentum=momentum)
        self.layers = nn.ModuleList()
        for _ in range(n_encoders):
            self.layers.append(ResEncoderBlock(in_channels, out_channels, kernel_size, n_blocks, momentum))
            in_channels, out_channels = out_channels, out_channels * 2
        self.out_channel = out_channels  # twice the last encoder's width

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips: list[torch.Tensor] = []
        x = self.bn(x)
        for layer in self.layers:
            x = layer(x)
            skips.append(x)
            x = layer.pool(x)
        return x, skips


class Intermediate(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, n_inters: int, n_blocks: int,
                 momentum: float = 0.01) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [ResEncoderBlock(in_channels, out_channels, None, n_blocks, momentum)]
            + [ResEncoderBlock(out_channels, out_channels, None, n_blocks, momentum) for _ in range(n_inters - 1)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class ResDecoderBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int], n_blocks: int = 1,
                 momentum: float = 0.01) -> None:
        super().__init__()
        out_padding = (0, 1) if tuple(stride) == (1, 2) else (1, 1)
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(in_channels, out_channels, (3, 3), stride=stride, padding=(1, 1),
                               output_padding=out_padding, bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum),
            nn.ReLU(),
        )
        self.conv2 = nn.ModuleList(
            [ConvBlockRes(out_channels * 2, out_channels, momentum)]
            + [ConvBlockRes(out_channels, out_channels, momentum) for _ in range(n_blocks - 1)]
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = torch.cat((self.conv1(x), skip), dim=1)
        for block in self.conv2:
            x = block(x)
        return x


class Decoder(nn.Module):
    def __init__(self, in_channels: int, n_decoders: int, stride: tuple[int, int], n_blocks: int,
                 momentum: float = 0.01) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(n_decoders):
            self.layers.append(ResDecoderBlock(in_channels, in_channels // 2, stride, n_blocks, momentum))
            in_channels //= 2

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x, skips[-1 - i])
        return x


class DeepUnet(nn.Module):
    def __init__(self, kernel_size: tuple[int, int], n_blocks: int, en_de_layers: int = 5,
                 inter_layers: int = 4, in_channels: int = 1, en_out_channels: int = 16) -> None:
        super().__init__()
        self.encoder = Encoder(in_channels, en_de_layers, kernel_size, n_blocks, en_out_channels)
        self.intermediate = Intermediate(self.encoder.out_channel // 2, self.encoder.out_channel,
                                         inter_layers, n_blocks)
        self.decoder = Decoder(self.encoder.out_channel, en_de_layers, kernel_size, n_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skips = self.encoder(x)
        return self.decoder(self.intermediate(x), skips)


class BiGRU(nn.Module):
    def __init__(self, input_features: int, hidden_features: int, num_layers: int) -> None:
        super().__init__()
        self.gru = nn.GRU(input_features, hidden_features, num_layers=num_layers, batch_first=True,
                          bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


N_MELS, N_CLASSES = 128, 360


class E2E(nn.Module):
    """RMVPE network: log-mel ``[B, 128, T]`` (T a multiple of 2^en_de_layers) → salience ``[B, T, 360]``.

    Defaults are the released model (``E2E(4, 1, (2, 2))``); smaller widths exist for tests.
    """

    def __init__(self, n_blocks: int = 4, n_gru: int = 1, kernel_size: tuple[int, int] = (2, 2),
                 en_de_layers: int = 5, inter_layers: int = 4, in_channels: int = 1,
                 en_out_channels: int = 16) -> None:
        super().__init__()
        self.time_multiple = kernel_size[0] ** en_de_layers
        self.unet = DeepUnet(kernel_size, n_blocks, en_de_layers, inter_layers, in_channels, en_out_channels)
        self.cnn = nn.Conv2d(en_out_channels, 3, (3, 3), padding=(1, 1))
        if n_gru:
            self.fc = nn.Sequential(BiGRU(3 * N_MELS, 256, n_gru), nn.Linear(512, N_CLASSES),
                                    nn.Dropout(0.25), nn.Sigmoid())
        else:
            self.fc = nn.Sequential(nn.Linear(3 * N_MELS, N_CLASSES), nn.Dropout(0.25), nn.Sigmoid())

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel.transpose(-1, -2).unsqueeze(1)  # [B, 1, T, 128]
        x = self.cnn(self.unet(x)).transpose(1, 2).flatten(-2)  # [B, T, 3*128]
        return self.fc(x)
