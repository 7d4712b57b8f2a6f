"""RMS mix (``rms_mix_rate``): how far the converted voice keeps its own loudness.

``bridge.vc.signal.rms_mix`` follows RVC's realtime GUI (``gui_v1.py``), not the WebUI pipeline:
40 ms frames every 10 ms on both signals (the WebUI's ``change_rms`` uses 1 s frames every
0.5 s), the output's RMS floored at 1e-3 (WebUI: 1e-6), and
``out · (rms_in / rms_out)^(1 − rate)``. So rate 1 keeps the output as it is, rate 0 gives
it the input's short-time envelope, and values in between blend the two envelopes
geometrically (linearly in dB).

Signals here are sines of whole cycles per 40 ms frame (multiples of 25 Hz) under slow
envelopes, so the 40 ms RMS of a signal is its envelope times 1/√2 to within a fraction of a
percent, and the expected envelopes can be written down.
"""

from __future__ import annotations

import numpy as np
import pytest

from bridge.vc.layout import HOP_16K
from bridge.vc.signal import RMS_FLOOR, frame_rms, rms_mix, sola_offset

HOP = 400  # one 10 ms frame at a 40 kHz model rate
FRAMES = 100  # one second


def tone(n: int, rate: int, freq: float, envelope: np.ndarray) -> np.ndarray:
    """A sine under ``envelope`` (per-sample amplitude)."""
    t = np.arange(n) / rate
    return (envelope * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def ramp(n: int, start: float, stop: float) -> np.ndarray:
    return np.linspace(start, stop, n)


def envelope_of(x: np.ndarray, hop: int, frames: range) -> np.ndarray:
    """Short-time RMS (40 ms frames) at the centres of ``frames`` — what a listener hears as loudness."""
    centers = np.asarray(list(frames)) * hop
    return frame_rms(x, centers, 4 * hop)


#: Frames away from the ends, where the 40 ms frames are whole on both signals.
INNER = range(4, FRAMES - 4)


@pytest.fixture
def signals() -> tuple[np.ndarray, np.ndarray]:
    """Input (16 kHz) getting louder 0.05 → 0.5; output (40 kHz) getting quieter 0.4 → 0.1."""
    n_in = FRAMES * HOP_16K
    n_out = FRAMES * HOP
    audio16k = tone(n_in, 16_000, 200.0, ramp(n_in, 0.05, 0.5))
    out = tone(n_out, 40_000, 225.0, ramp(n_out, 0.4, 0.1))
    return audio16k, out


def test_rate_one_leaves_the_output_unchanged(signals) -> None:
    audio16k, out = signals
    for rate in (1.0, 1.5):
        mixed = rms_mix(out, audio16k, 0, FRAMES, HOP, rate)
        assert np.array_equal(mixed, out)


def test_rate_zero_gives_the_output_the_inputs_envelope(signals) -> None:
    audio16k, out = signals
    mixed = rms_mix(out, audio16k, 0, FRAMES, HOP, 0.0)
    assert mixed.dtype == np.float32 and mixed.shape == out.shape
    want = envelope_of(audio16k, HOP_16K, INNER)
    got = envelope_of(mixed, HOP, INNER)
    before = envelope_of(out, HOP, INNER)
    # The two envelopes ran in opposite directions (up to 8× apart); now they agree.
    assert np.max(np.abs(before / want - 1)) > 1.0
    assert np.max(np.abs(got / want - 1)) < 0.02
    # The waveform itself is still the output's (only its gain changed): same zero crossings.
    inner = slice(INNER.start * HOP, INNER.stop * HOP)
    assert np.array_equal(np.sign(mixed[inner]), np.sign(out[inner]))


@pytest.mark.parametrize("rate", [0.25, 0.5, 0.75])
def test_intermediate_rates_blend_the_envelopes_geometrically(signals, rate: float) -> None:
    audio16k, out = signals
    mixed = rms_mix(out, audio16k, 0, FRAMES, HOP, rate)
    e_in = envelope_of(audio16k, HOP_16K, INNER)
    e_out = envelope_of(out, HOP, INNER)
    got = envelope_of(mixed, HOP, INNER)
    # log loudness = (1 − rate) · input's + rate · output's (in dB: a linear blend).
    want = np.exp((1 - rate) * np.log(e_in) + rate * np.log(e_out))
    assert np.max(np.abs(got / want - 1)) < 0.02
    # Strictly between the two envelopes wherever they differ by more than the tolerance.
    apart = np.abs(np.log(e_in / e_out)) > 0.1
    assert apart.sum() > 50
    lo, hi = np.minimum(e_in, e_out)[apart], np.maximum(e_in, e_out)[apart]
    assert np.all((lo < got[apart]) & (got[apart] < hi))


def test_the_default_rate_mostly_follows_the_input() -> None:
    # rms_mix_rate = 0.25 (RVC's default): three quarters of the way to the input's loudness in dB.
    n_in, n_out = FRAMES * HOP_16K, FRAMES * HOP
    audio16k = tone(n_in, 16_000, 150.0, np.full(n_in, 0.4))
    out = tone(n_out, 40_000, 150.0, np.full(n_out, 0.025))  # 24 dB quieter than the input
    mixed = rms_mix(out, audio16k, 0, FRAMES, HOP, 0.25)
    gain_db = 20 * np.log10(envelope_of(mixed, HOP, INNER) / envelope_of(out, HOP, INNER))
    assert np.allclose(gain_db, 0.75 * 20 * np.log10(0.4 / 0.025), atol=0.2)


def test_input_is_measured_from_first_frame_on() -> None:
    # A window's output covers input frames first_frame…; its gain must come from there, not
    # from the start of the array (a block deep in a stream has context before it).
    n = 2 * FRAMES * HOP_16K
    loud_then_quiet = np.where(np.arange(n) < n // 2, 0.5, 0.02)
    audio16k = tone(n, 16_000, 200.0, loud_then_quiet)
    out = tone(FRAMES * HOP, 40_000, 200.0, np.full(FRAMES * HOP, 0.2))
    first = rms_mix(out, audio16k, 0, FRAMES, HOP, 0.0)
    second = rms_mix(out, audio16k, FRAMES, FRAMES, HOP, 0.0)
    assert np.allclose(envelope_of(first, HOP, INNER), 0.5 / np.sqrt(2), rtol=0.02)
    assert np.allclose(envelope_of(second, HOP, INNER), 0.02 / np.sqrt(2), rtol=0.02)


@pytest.mark.parametrize("rate", [0.0, 0.25, 0.999])
def test_silence_never_divides_by_zero(rate: float) -> None:
    n_in, n_out = FRAMES * HOP_16K, FRAMES * HOP
    speech = tone(n_in, 16_000, 150.0, np.full(n_in, 0.3))
    voice = tone(n_out, 40_000, 150.0, np.full(n_out, 0.3))
    silent_in, silent_out = np.zeros(n_in, np.float32), np.zeros(n_out, np.float32)
    with np.errstate(divide="raise", invalid="raise", over="raise"):
        # Silent output (a pause the model rendered as zeros): stays silent, whatever the input.
        assert not np.any(rms_mix(silent_out, speech, 0, FRAMES, HOP, rate))
        # Silent input: the output is pulled towards silence (fully so at rate 0), finite.
        quieted = rms_mix(voice, silent_in, 0, FRAMES, HOP, rate)
        assert np.all(np.isfinite(quieted))
        if rate == 0.0:
            assert not np.any(quieted)
        else:
            assert np.max(np.abs(quieted)) < np.max(np.abs(voice))
        # Both silent.
        both = rms_mix(silent_out, silent_in, 0, FRAMES, HOP, rate)
        assert both.shape == silent_out.shape and not np.any(both)


def test_near_silent_output_is_not_blown_up_to_the_inputs_loudness() -> None:
    # The 1e-3 floor on the output's RMS bounds the boost at rms_in / 1e-3: decoder hiss of
    # 1e-5 under loud input comes out at about 1e-5 · 0.35 / 1e-3 ≈ 3.5e-3, not at 0.35.
    n_in, n_out = FRAMES * HOP_16K, FRAMES * HOP
    audio16k = tone(n_in, 16_000, 150.0, np.full(n_in, 0.5))
    hiss = (1e-5 * np.random.default_rng(0).standard_normal(n_out)).astype(np.float32)
    mixed = rms_mix(hiss, audio16k, 0, FRAMES, HOP, 0.0)
    rms_in = 0.5 / np.sqrt(2)
    got = envelope_of(mixed, HOP, INNER)
    bound = rms_in * envelope_of(hiss, HOP, INNER) / RMS_FLOOR
    assert np.all(got <= bound * 1.05)
    assert np.max(got) < 0.02 * rms_in


def test_edges_and_empty_windows() -> None:
    # No frames: nothing to scale. The input ending early (zeros beyond it) is not an error.
    empty = np.zeros(0, np.float32)
    assert rms_mix(empty, np.zeros(1600, np.float32), 0, 0, HOP, 0.25).size == 0
    out = tone(10 * HOP, 40_000, 150.0, np.full(10 * HOP, 0.2))
    short_input = tone(3 * HOP_16K, 16_000, 150.0, np.full(3 * HOP_16K, 0.2))
    with np.errstate(divide="raise", invalid="raise"):
        mixed = rms_mix(out, short_input, 0, 10, HOP, 0.0)
    assert mixed.shape == out.shape and np.all(np.isfinite(mixed))
    # Past the input's end the envelope to follow is silence.
    assert np.max(np.abs(mixed[6 * HOP :])) < 1e-6
    assert np.max(np.abs(mixed[: 2 * HOP])) > 0.05


def test_sola_finds_the_continuation() -> None:
    rng = np.random.default_rng(0)
    sig = rng.standard_normal(3000).astype(np.float32)
    tail = sig[1000:1160]
    assert sola_offset(tail, sig[1000 - 0 :], 40) == 0
    assert sola_offset(tail, sig[1000 - 23 :], 40) == 23
    assert sola_offset(np.zeros(160, np.float32), sig, 40) == 0
