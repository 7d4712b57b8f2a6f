"""Pitch: RMVPE layout/contract, Praat estimator accuracy, f0 helpers, selection."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from bridge.vc.base import VoiceError
from bridge.vc.pitch import (
    E2E,
    RMVPE,
    ParselmouthPitch,
    PitchEstimator,
    decode_salience,
    f0_frames,
    f0_to_coarse,
    htk_mel_filterbank,
    load_pitch_estimator,
    shift_f0,
)

SR = 16000
TINY = dict(n_blocks=1, inter_layers=1, en_out_channels=2)


def harmonic(f0: float, seconds: float = 1.0, n_harm: int = 5) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, n_harm + 1))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


# ---- f0 helpers -------------------------------------------------------------------------

def test_coarse_known_points():
    f0 = np.array([0.0, 50.0, 1100.0, 20.0, 5000.0, 49.0, 440.0], dtype=np.float32)
    coarse = f0_to_coarse(f0)
    assert coarse.dtype == np.int64
    mel = lambda f: 1127 * np.log(1 + f / 700)  # noqa: E731
    expect_440 = int(np.rint((mel(440) - mel(50)) * 254 / (mel(1100) - mel(50)) + 1))
    assert coarse.tolist() == [1, 1, 255, 1, 255, 1, expect_440]
    assert expect_440 == 122


def test_shift_octave_doubles_and_keeps_unvoiced():
    f0 = np.array([0.0, 110.0, 220.0], dtype=np.float32)
    np.testing.assert_allclose(shift_f0(f0, 12), [0.0, 220.0, 440.0], rtol=1e-6)
    np.testing.assert_allclose(shift_f0(f0, -12), [0.0, 55.0, 110.0], rtol=1e-6)
    assert shift_f0(f0, 0).dtype == np.float32


def test_mel_filterbank_matches_librosa_reference():
    # Values printed by librosa 0.11 filters.mel(sr=16000, n_fft=1024, n_mels=128, fmin=30,
    # fmax=8000, htk=True) (librosa is not a dependency).
    fb = htk_mel_filterbank()
    assert fb.shape == (128, 513)
    np.testing.assert_allclose(fb[0, 2:4], [0.006175639573484659, 0.056785039603710175], rtol=1e-5)
    np.testing.assert_allclose(fb[1, 3:5], [0.012914889492094517, 0.050391726195812225], rtol=1e-5)
    assert np.nonzero(fb[64])[0].tolist() == list(range(115, 122))
    np.testing.assert_allclose(fb[64, 118], 0.02016606368124485, rtol=1e-5)
    np.testing.assert_allclose(fb[127, 501], 0.005860890727490187, rtol=1e-5)
    np.testing.assert_allclose(fb.sum(), 8.189247131347656, rtol=1e-5)


def test_decode_salience():
    sal = np.zeros((3, 360), dtype=np.float32)
    sal[0, 100] = 0.9  # single bin: exactly that bin's cents
    sal[1, 200], sal[1, 201] = 0.5, 0.5  # two equal bins: halfway
    sal[2, 50] = 0.03  # at threshold: unvoiced
    f0 = decode_salience(sal, 0.03)
    cents = lambda b: 20 * b + 1997.3794084376191  # noqa: E731
    np.testing.assert_allclose(f0[0], 10 * 2 ** (cents(100) / 1200), rtol=1e-5)
    np.testing.assert_allclose(f0[1], 10 * 2 ** ((cents(200) + 10) / 1200), rtol=1e-5)
    assert f0[2] == 0.0
    # edges: argmax at bin 0 and 359 use the zero padding
    edge = np.zeros((2, 360), dtype=np.float32)
    edge[0, 0], edge[1, 359] = 1.0, 1.0
    np.testing.assert_allclose(decode_salience(edge), 10 * 2 ** (cents(np.array([0, 359])) / 1200), rtol=1e-5)


# ---- Praat --------------------------------------------------------------------------------

@pytest.mark.parametrize("f0", [110.0, 220.0, 330.0])
def test_parselmouth_accuracy(f0):
    est = ParselmouthPitch()
    x = harmonic(f0)
    track = est.f0(x)
    assert track.shape == (f0_frames(len(x)),) and track.dtype == np.float32
    voiced = track > 0
    assert voiced.sum() >= 0.85 * len(track)
    assert np.all(np.abs(track[voiced] / f0 - 1) < 0.01)


def test_parselmouth_silence_and_short():
    est = ParselmouthPitch()
    assert not est.f0(np.zeros(SR, dtype=np.float32)).any()
    for n in (0, 1, 500, 961):
        assert est.f0(np.zeros(n, dtype=np.float32)).shape == (n // 160 + 1,)


# ---- RMVPE --------------------------------------------------------------------------------

def test_full_size_state_dict_layout():
    """Key names and shapes of the released rmvpe.pt (E2E(4, 1, (2, 2)), 741 entries, 90.47 M
    values: 181 MB in fp16, the size of the file on the hub)."""
    sd = E2E().state_dict()
    assert len(sd) == 741
    assert sum(v.numel() for v in sd.values()) == 90_472_917
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    assert shapes["unet.encoder.bn.weight"] == (1,)
    assert shapes["unet.encoder.layers.0.conv.0.conv.0.weight"] == (16, 1, 3, 3)
    assert shapes["unet.encoder.layers.0.conv.0.shortcut.weight"] == (16, 1, 1, 1)
    assert "unet.encoder.layers.0.conv.1.shortcut.weight" not in shapes
    assert shapes["unet.encoder.layers.4.conv.3.conv.4.running_var"] == (256,)
    assert shapes["unet.intermediate.layers.0.conv.0.shortcut.weight"] == (512, 256, 1, 1)
    assert shapes["unet.intermediate.layers.3.conv.3.conv.3.weight"] == (512, 512, 3, 3)
    assert shapes["unet.decoder.layers.0.conv1.0.weight"] == (512, 256, 3, 3)  # ConvTranspose2d
    assert shapes["unet.decoder.layers.0.conv2.0.shortcut.weight"] == (256, 512, 1, 1)
    assert shapes["unet.decoder.layers.4.conv2.3.conv.0.weight"] == (16, 16, 3, 3)
    assert shapes["cnn.weight"] == (3, 16, 3, 3)
    assert shapes["fc.0.gru.weight_ih_l0"] == (768, 384)
    assert shapes["fc.0.gru.weight_hh_l0_reverse"] == (768, 256)
    assert shapes["fc.1.weight"] == (360, 512)


@pytest.fixture(scope="session")
def tiny_rmvpe_file(tmp_path_factory):
    torch.manual_seed(0)
    model = E2E(**TINY)
    with torch.no_grad():  # non-trivial BatchNorm statistics so that they matter
        for name, buf in model.named_buffers():
            if name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
            elif name.endswith("running_mean"):
                buf.normal_(0, 0.1)
    path = tmp_path_factory.mktemp("rmvpe") / "rmvpe.pt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, path)
    return path, model


def test_rmvpe_strict_load_roundtrip(tiny_rmvpe_file, monkeypatch):
    path, model = tiny_rmvpe_file
    import bridge.vc.pitch as pitch

    monkeypatch.setattr(pitch, "E2E", lambda: E2E(**TINY))
    est = RMVPE.load(path)
    ref = {k: v.half().float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    got = est.model.state_dict()
    assert got.keys() == ref.keys()
    for k in ref:
        assert torch.equal(got[k], ref[k]), k


def test_rmvpe_rejects_foreign_state_dict(tmp_path, tiny_rmvpe_file):
    path, _ = tiny_rmvpe_file  # tiny widths do not fit the released architecture
    with pytest.raises(VoiceError, match="do not fit"):
        RMVPE.load(path)
    bad = tmp_path / "rmvpe.pt"
    bad.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(VoiceError, match="rmvpe.pt"):
        RMVPE.load(bad)
    with pytest.raises(VoiceError, match="not found"):
        RMVPE.load(tmp_path / "nope.pt")


@pytest.fixture(scope="session")
def tiny_rmvpe():
    torch.manual_seed(1)
    return RMVPE.from_random(**TINY)


@pytest.mark.parametrize("n", [0, 1, 159, 160, 513, 5000, 16000])
def test_rmvpe_output_contract(tiny_rmvpe, n):
    x = (np.random.default_rng(n).standard_normal(n) * 0.1).astype(np.float32)
    f0 = tiny_rmvpe.f0(x)
    assert f0.shape == (n // 160 + 1,) and f0.dtype == np.float32
    assert np.all((f0 == 0) | ((f0 > 30) & (f0 < 2100)))
    if n:
        assert tiny_rmvpe.salience(x).shape == (n // 160 + 1, 360)


def test_rmvpe_logmel_shape(tiny_rmvpe):
    mel = tiny_rmvpe.mel(torch.zeros(1, 16000))
    assert mel.shape == (1, 128, 101)
    assert torch.allclose(mel, torch.log(torch.tensor(1e-5)))


# ---- selection ----------------------------------------------------------------------------

def test_load_pitch_estimator(tmp_path, caplog, tiny_rmvpe_file, monkeypatch):
    assert isinstance(load_pitch_estimator("parselmouth", tmp_path, "cpu"), ParselmouthPitch)
    with caplog.at_level(logging.WARNING, logger="bridge.vc.pitch"):
        est = load_pitch_estimator("rmvpe", tmp_path, "cpu")
    assert isinstance(est, ParselmouthPitch) and isinstance(est, PitchEstimator)
    assert "rmvpe.pt is missing" in caplog.text
    with pytest.raises(VoiceError, match="models pull rmvpe.pt"):
        load_pitch_estimator("rmvpe", tmp_path, "cpu", fallback=False)
    with pytest.raises(VoiceError, match="unknown pitch method"):
        load_pitch_estimator("crepe", tmp_path, "cpu")
    # a present file is loaded (strictly) as RMVPE
    import shutil

    import bridge.vc.pitch as pitch

    monkeypatch.setattr(pitch, "E2E", lambda: E2E(**TINY))
    shutil.copy(tiny_rmvpe_file[0], tmp_path / "rmvpe.pt")
    assert isinstance(load_pitch_estimator("rmvpe", tmp_path, "cpu"), RMVPE)
