"""Make the RVC reference data for voice-bridge's tests/data/rvc_reference/ (run OUTSIDE the repo).

Uses RVC-Project's own code (Retrieval-based-Voice-Conversion-WebUI, branch 20240604, extracted
into ./src): builds a small SynthesizerTrnMs768NSFsid, saves it with RVC's own
``infer/lib/train/process_ckpt.py::savee`` (fp16 weights, weight_g/weight_v, no enc_q, 18-entry
config, sr "40k"), loads it back the way ``infer/modules/vc/modules.py::get_vc`` does, and runs
``net_g.infer`` on fixed inputs with the random draws replaced by recorded (or zero) tensors.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "out"
sys.path.insert(0, str(HERE / "src"))
# process_ckpt imports the WebUI's i18n for its messages only.
i18n_pkg = types.ModuleType("i18n")
i18n_mod = types.ModuleType("i18n.i18n")
i18n_mod.I18nAuto = lambda *a, **k: (lambda s: s)
sys.modules["i18n"], sys.modules["i18n.i18n"] = i18n_pkg, i18n_mod

from infer.lib.infer_pack.models import SynthesizerTrnMs768NSFsid  # noqa: E402
from infer.lib.train.process_ckpt import savee  # noqa: E402

FRAMES = 40
SLICE = (30, 8)  # skip_head, return_length of the realtime slice case

# A small v2 40k-layout voice: RVC's 40k upsampling (hop 400), narrow channels.
model_hps = SimpleNamespace(
    inter_channels=8, hidden_channels=8, filter_channels=16, n_heads=2, n_layers=2, kernel_size=3,
    p_dropout=0, resblock="1", resblock_kernel_sizes=[3, 7, 11], resblock_dilation_sizes=[[1, 3, 5]] * 3,
    upsample_rates=[10, 10, 2, 2], upsample_initial_channel=16, upsample_kernel_sizes=[16, 16, 4, 4],
    spk_embed_dim=3, gin_channels=8,
)
hps = SimpleNamespace(data=SimpleNamespace(filter_length=64, sampling_rate=40000), model=model_hps)


def build_and_save() -> Path:
    torch.manual_seed(20261203)
    m = model_hps
    net = SynthesizerTrnMs768NSFsid(
        hps.data.filter_length // 2 + 1, 32, m.inter_channels, m.hidden_channels, m.filter_channels, m.n_heads,
        m.n_layers, m.kernel_size, m.p_dropout, m.resblock, m.resblock_kernel_sizes, m.resblock_dilation_sizes,
        m.upsample_rates, m.upsample_initial_channel, m.upsample_kernel_sizes, m.spk_embed_dim, m.gin_channels,
        hps.data.sampling_rate, is_half=False,
    )
    # Training moves weights far from their initialisation; give every tensor a spread that
    # makes each part matter to the output (the decoder's ups start at std 0.01: near silence).
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("weight_g"):
                p.copy_(0.5 + torch.rand_like(p))
            elif "emb_rel" in name or name.endswith("bias") or name.endswith("beta"):
                p.copy_(0.1 * torch.randn_like(p))
            elif name.endswith("gamma"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                fan_in = p[0].numel() if p.dim() > 1 else 1
                p.copy_(torch.randn_like(p) / max(fan_in, 1) ** 0.5)
    cwd = os.getcwd()
    os.chdir(OUT)
    try:
        (OUT / "assets" / "weights").mkdir(parents=True, exist_ok=True)
        result = savee(net.state_dict(), "40k", 1, "tiny_v2_40k", 1, "v2", hps)
    finally:
        os.chdir(cwd)
    assert result == "Success.", result
    return OUT / "assets" / "weights" / "tiny_v2_40k.pth"


def load_like_get_vc(pth: Path) -> SynthesizerTrnMs768NSFsid:
    cpt = torch.load(pth, map_location="cpu", weights_only=False)
    cpt["config"][-3] = cpt["weight"]["emb_g.weight"].shape[0]
    net_g = SynthesizerTrnMs768NSFsid(*cpt["config"], is_half=False)
    del net_g.enc_q
    print(net_g.load_state_dict(cpt["weight"], strict=False))
    net_g.eval().float()
    return net_g


def f0_to_coarse(f0: np.ndarray) -> np.ndarray:
    """RVC pipeline's get_f0 quantisation (f0_min 50, f0_max 1100)."""
    mel_min, mel_max = 1127 * np.log(1 + 50 / 700), 1127 * np.log(1 + 1100 / 700)
    mel = 1127 * np.log(1 + f0 / 700)
    mel[mel > 0] = (mel[mel > 0] - mel_min) * 254 / (mel_max - mel_min) + 1
    mel[mel <= 1] = 1
    mel[mel > 255] = 255
    return np.rint(mel).astype(np.int64)


def inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    phone = rng.standard_normal((1, FRAMES, 768)).astype(np.float16).astype(np.float32)
    t = np.arange(FRAMES) / 100
    f0 = (140 + 60 * np.sin(2 * np.pi * 2.5 * t)).astype(np.float32)
    f0[9:13] = 0
    f0[33:36] = 0  # an unvoiced stretch
    f0 = f0.astype(np.float16).astype(np.float32)[None]
    return {"phone": phone, "pitch": f0_to_coarse(f0), "pitchf": f0, "sid": np.array([1], np.int64)}


class Draws:
    """Stands in for torch.randn_like / torch.rand: zeros, or recorded standard normals."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.rng = np.random.default_rng(11)
        self.recorded: list[np.ndarray] = []

    def randn_like(self, x: torch.Tensor, **_: object) -> torch.Tensor:
        if self.mode == "zero":
            return torch.zeros_like(x)
        draw = self.rng.standard_normal(tuple(x.shape)).astype(np.float16).astype(np.float32)
        self.recorded.append(draw)
        return torch.from_numpy(draw).to(x)


def run(net_g, feed: dict[str, np.ndarray], mode: str, sliced: bool = False):
    draws = Draws(mode)
    real_randn_like, real_rand = torch.randn_like, torch.rand
    torch.randn_like = draws.randn_like
    torch.rand = lambda *shape, **kw: torch.zeros(*shape, **{k: v for k, v in kw.items() if k == "device"})
    try:
        args = [torch.from_numpy(feed["phone"]), torch.tensor([FRAMES]), torch.from_numpy(feed["pitch"]),
                torch.from_numpy(feed["pitchf"]), torch.from_numpy(feed["sid"])]
        if sliced:
            args += [torch.tensor(SLICE[0]), torch.tensor(SLICE[1])]
        with torch.no_grad():
            audio = net_g.infer(*args)[0][0, 0].numpy().astype(np.float32)
    finally:
        torch.randn_like, torch.rand = real_randn_like, real_rand
    return audio, draws.recorded


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    pth = build_and_save()
    net_g = load_like_get_vc(pth)
    feed = inputs()
    quiet, _ = run(net_g, feed, "zero")
    noisy, (z_noise, source_noise) = run(net_g, feed, "recorded")
    sliced, _ = run(net_g, feed, "zero", sliced=True)
    for name, a in (("quiet", quiet), ("noisy", noisy), ("sliced", sliced)):
        print(name, a.shape, "rms", float(np.sqrt(np.mean(a**2))), "peak", float(np.abs(a).max()))
    np.savez(
        OUT / "reference.npz",
        phone=feed["phone"].astype(np.float16), pitch=feed["pitch"].astype(np.uint8), pitchf=feed["pitchf"],
        sid=feed["sid"], z_noise=z_noise.astype(np.float16), source_noise=source_noise.astype(np.float16),
        slice=np.array(SLICE), quiet=quiet, noisy=noisy, sliced=sliced,
    )
    os.replace(pth, OUT / "tiny_v2_40k.pth")


if __name__ == "__main__":
    main()
