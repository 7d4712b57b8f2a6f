"""Random draws indexed by absolute position, so that overlapping blocks agree."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch


class NoiseTape:
    """Standard normal noise indexed by absolute position: the same index, the same value.

    Blocks that overlap (left context, crossfade) therefore see the same random draws where
    they overlap, and so does whole-utterance conversion with the same seed. Noise is drawn
    in chunks, each from its own seed sequence (seed, kind, chunk index); a few are cached.
    """

    FRAME_CHUNK = 256  # frames of prior noise per chunk
    SAMPLE_CHUNK = 16384  # samples of excitation noise per chunk
    CACHE = 16

    def __init__(self, seed: int, channels: int, hop: int) -> None:
        self.seed = int(seed) & 0xFFFFFFFF
        self.channels = channels
        self.hop = hop
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    def _chunk(self, kind: int, index: int, width: int, size: int) -> np.ndarray:
        key = (kind, index)
        chunk = self._cache.get(key)
        if chunk is None:
            seq = np.random.SeedSequence([self.seed, kind, index & 0xFFFFFFFF, (index >> 32) & 0xFFFFFFFF])
            chunk = np.random.default_rng(seq).standard_normal((width, size), dtype=np.float32)
            self._cache[key] = chunk
            if len(self._cache) > self.CACHE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return chunk

    def _span(self, kind: int, start: int, length: int, width: int, size: int) -> np.ndarray:
        out = np.empty((width, length), dtype=np.float32)
        pos = 0
        while pos < length:
            index, offset = divmod(start + pos, size)
            take = min(size - offset, length - pos)
            out[:, pos : pos + take] = self._chunk(kind, index, width, size)[:, offset : offset + take]
            pos += take
        return out

    def frames(self, start: int, length: int) -> torch.Tensor:
        """Prior noise for frames ``[start, start+length)``: ``[1, channels, length]``."""
        return torch.from_numpy(self._span(0, start, length, self.channels, self.FRAME_CHUNK))[None]

    def samples(self, start_frame: int, frames: int) -> torch.Tensor:
        """Excitation noise for the samples of frames ``[start, start+frames)``: ``[1, n, 1]``."""
        span = self._span(1, start_frame * self.hop, frames * self.hop, 1, self.SAMPLE_CHUNK)
        return torch.from_numpy(span).reshape(1, -1, 1)


def noise_seed(seed: int | None) -> int:
    """``seed``, or a fresh one from the OS when it is None (each stream its own noise)."""
    if seed is not None:
        return seed
    return int(np.random.SeedSequence().generate_state(1)[0])
