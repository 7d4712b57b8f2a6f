"""FeatureIndex: an RVC-style IVF index, blend vs brute force, errors."""

from __future__ import annotations

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from bridge.vc.base import VoiceError  # noqa: E402
from bridge.vc.retrieval import FeatureIndex  # noqa: E402

DIM, CLUSTERS, PER = 256, 20, 40


def build_rvc_index(vectors: np.ndarray, path) -> None:
    """As RVC's training UI: IVF{n},Flat with n = min(int(16·√N), N // 39), nprobe 1."""
    n = min(int(16 * np.sqrt(vectors.shape[0])), vectors.shape[0] // 39)
    index = faiss.index_factory(vectors.shape[1], f"IVF{n},Flat")
    faiss.extract_index_ivf(index).nprobe = 1
    index.train(vectors)
    index.add(vectors)
    faiss.write_index(index, str(path))


@pytest.fixture(scope="session")
def data():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((CLUSTERS, DIM)).astype(np.float32) * 10
    vectors = (np.repeat(centres, PER, axis=0) + rng.standard_normal((CLUSTERS * PER, DIM)) * 0.3).astype(np.float32)
    return centres, vectors


@pytest.fixture(scope="session")
def index_path(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("idx") / "added_IVF20_Flat_nprobe_1_test_v1.index"
    build_rvc_index(data[1], path)
    return path


def brute_force(vectors: np.ndarray, feats: np.ndarray, rate: float, k: int = 8) -> np.ndarray:
    d = ((feats[:, None, :].astype(np.float64) - vectors[None, :, :]) ** 2).sum(-1)
    ix = np.argsort(d, axis=1)[:, :k]
    score = np.take_along_axis(d, ix, axis=1)
    w = (1 / score) ** 2
    w /= w.sum(axis=1, keepdims=True)
    npy = (vectors[ix] * w[:, :, None]).sum(1)
    return npy * rate + (1 - rate) * feats


def test_blend_matches_brute_force(index_path, data):
    centres, vectors = data
    idx = FeatureIndex.load(index_path)
    assert idx.dim == DIM and idx.size == CLUSTERS * PER
    assert idx.index.nlist == min(int(16 * np.sqrt(CLUSTERS * PER)), CLUSTERS * PER // 39) == 20
    assert idx.index.nprobe == 1
    np.testing.assert_array_equal(np.sort(idx.vectors, axis=0), np.sort(vectors, axis=0))
    rng = np.random.default_rng(1)
    feats = (centres[rng.integers(0, CLUSTERS, 200)] + rng.standard_normal((200, DIM)) * 0.5).astype(np.float32)
    # With nprobe 1 the search is exact only where the query's true neighbours share its
    # inverted list; k-means does not always keep a cluster whole, so compare those rows.
    _, list_of = idx.index.quantizer.search(np.concatenate([vectors, feats]), 1)
    vec_list, query_list = list_of[: len(vectors), 0], list_of[len(vectors):, 0]
    d = ((feats[:, None, :].astype(np.float64) - vectors[None]) ** 2).sum(-1)
    nn_lists = vec_list[np.argsort(d, axis=1)[:, :8]]
    exact = np.all(nn_lists == query_list[:, None], axis=1)
    assert exact.sum() >= 50
    for rate in (0.0, 0.33, 0.75, 1.0):
        out = idx.blend(feats, rate)
        assert out.dtype == np.float32 and out.shape == feats.shape
        np.testing.assert_allclose(out[exact], brute_force(vectors, feats[exact], rate), rtol=1e-4, atol=1e-4)


def test_blend_formula_on_index_neighbours(index_path, data):
    """Every row (exact or not) is the (1/d)²-weighted mean of what the index returns."""
    _, vectors = data
    idx = FeatureIndex.load(index_path)
    feats = (vectors[::7] + np.random.default_rng(3).standard_normal((len(vectors[::7]), DIM)) * 2).astype(np.float32)
    score, ix = idx.index.search(feats, 8)
    big_npy = idx.index.reconstruct_n(0, idx.index.ntotal)
    w = np.square(1 / score.astype(np.float64))
    w[ix < 0] = 0
    w /= w.sum(axis=1, keepdims=True)
    npy = np.sum(big_npy[np.maximum(ix, 0)] * w[:, :, None], axis=1)
    np.testing.assert_allclose(idx.blend(feats, 0.75), npy * 0.75 + 0.25 * feats, rtol=1e-4, atol=1e-4)


def test_exact_match_does_not_blow_up(index_path, data):
    _, vectors = data
    idx = FeatureIndex.load(index_path)
    out = idx.blend(vectors[:5], 1.0)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, vectors[:5], atol=1e-4)


def test_unfilled_neighbours_are_ignored(tmp_path):
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((3, 8)).astype(np.float32)
    index = faiss.IndexFlatL2(8)
    index.add(vectors)
    path = tmp_path / "small.index"
    faiss.write_index(index, str(path))
    idx = FeatureIndex.load(path)
    q = rng.standard_normal((4, 8)).astype(np.float32)
    np.testing.assert_allclose(idx.blend(q, 1.0, k=8), brute_force(vectors, q, 1.0, k=3), rtol=1e-5, atol=1e-5)


def test_errors(tmp_path, index_path):
    idx = FeatureIndex.load(index_path)
    with pytest.raises(VoiceError, match="768.*256|256-d"):
        idx.blend(np.zeros((4, 768), np.float32), 0.5)
    with pytest.raises(ValueError):
        idx.blend(np.zeros(256, np.float32), 0.5)
    with pytest.raises(VoiceError, match="not found"):
        FeatureIndex.load(tmp_path / "missing.index")
    junk = tmp_path / "junk.index"
    junk.write_bytes(b"not an index" * 10)
    with pytest.raises(VoiceError, match="junk.index"):
        FeatureIndex.load(junk)
    truncated = tmp_path / "trunc.index"
    truncated.write_bytes(index_path.read_bytes()[:5000])
    with pytest.raises(VoiceError, match="trunc.index"):
        FeatureIndex.load(truncated)
