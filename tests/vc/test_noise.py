"""bridge/vc/noise.py: the noise tape is a function of position, so a stream draws what the whole would."""

from __future__ import annotations

import torch


def test_noise_tape_is_a_function_of_position() -> None:
    from bridge.vc.noise import NoiseTape

    tape = NoiseTape(seed=3, channels=4, hop=10)
    a = tape.frames(-300, 700)  # crosses chunk borders and negative positions
    b = NoiseTape(seed=3, channels=4, hop=10).frames(-17, 50)
    assert torch.equal(a[:, :, 283:333], b)
    s1 = tape.samples(-5, 3000)
    s2 = tape.samples(1000, 7)
    assert torch.equal(s1[:, 1005 * 10 : 1012 * 10], s2)
    assert not torch.equal(NoiseTape(seed=4, channels=4, hop=10).frames(0, 10), tape.frames(0, 10))
    assert abs(float(a.std()) - 1.0) < 0.05
