"""RVC feature retrieval: blend content features with their nearest neighbours in a voice's
training features (the ``added_IVF…_Flat_nprobe_1_<name>_<ver>.index`` file).

For each frame: the k = 8 nearest stored vectors (squared L2, as the index is built), weights
``(1/d)²`` normalised per row, weighted mean ``npy``; result ``npy·rate + (1−rate)·feats``.
Applied at 50 fps, before the 2× upsample. The index is searched as saved (``nprobe`` 1 for
RVC's files); the stored vectors are reconstructed once at load.

Guards beyond RVC's formula: a distance of 0 (the query is a stored vector) is floored at
1e-10 so that the weight is finite and that vector dominates; neighbours faiss could not fill
(id −1 when the probed list holds fewer than k vectors) get weight 0 instead of pointing at
the last stored vector; a row with no neighbour at all keeps its own features.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bridge.vc.base import VoiceError

__all__ = ["FeatureIndex"]

_MIN_DISTANCE = 1e-10


class FeatureIndex:
    """A loaded faiss index plus its reconstructed vectors. Thread-safe for :meth:`blend`."""

    def __init__(self, index, path: Path | None = None) -> None:
        self.index = index
        self.path = path
        if index.ntotal <= 0:
            raise VoiceError(f"{path or 'index'}: the index is empty")
        self.vectors = index.reconstruct_n(0, index.ntotal).astype(np.float32, copy=False)

    @classmethod
    def load(cls, path: Path | str) -> FeatureIndex:
        """``faiss.read_index`` + cached ``reconstruct_n(0, ntotal)``. Raises VoiceError."""
        import faiss

        path = Path(path)
        if not path.is_file():
            raise VoiceError(f"feature index not found: {path}")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:  # faiss reports every read problem as RuntimeError
            raise VoiceError(f"{path}: not a readable faiss index: {str(exc).strip().splitlines()[-1]}") from exc
        return cls(index, path)

    @property
    def dim(self) -> int:
        """Vector width: 256 for v1 voices, 768 for v2."""
        return int(self.index.d)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def blend(self, feats: np.ndarray, index_rate: float, k: int = 8) -> np.ndarray:
        """``feats`` ``[T, C]`` float32 → ``npy·index_rate + (1 − index_rate)·feats`` (float32)."""
        feats = np.asarray(feats)
        if feats.ndim != 2:
            raise ValueError(f"expected features of shape [T, C], got {feats.shape}")
        if feats.shape[1] != self.dim:
            raise VoiceError(
                f"feature width {feats.shape[1]} does not match the index ({self.dim}-d"
                f"{', a v1 voice' if self.dim == 256 else ', a v2 voice' if self.dim == 768 else ''}"
                f"{' at ' + str(self.path) if self.path else ''})"
            )
        if not 0.0 <= index_rate <= 1.0:
            raise ValueError(f"index_rate must be in [0, 1], got {index_rate}")
        query = np.ascontiguousarray(feats, dtype=np.float32)
        if index_rate == 0.0 or query.shape[0] == 0:
            return query.copy()
        k = max(1, min(int(k), self.size))
        dist, ids = self.index.search(query, k)
        valid = ids >= 0
        weight = np.square(1.0 / np.maximum(dist.astype(np.float64), _MIN_DISTANCE))
        weight[~valid] = 0.0
        total = weight.sum(axis=1, keepdims=True)
        found = total[:, 0] > 0
        weight = np.divide(weight, total, out=np.zeros_like(weight), where=total > 0)
        neighbours = self.vectors[np.where(valid, ids, 0)]  # [T, k, C]
        npy = np.einsum("tk,tkc->tc", weight, neighbours).astype(np.float32)
        npy[~found] = query[~found]
        return (npy * np.float32(index_rate) + (1.0 - np.float32(index_rate)) * query).astype(np.float32)
