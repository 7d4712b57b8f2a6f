"""Speed of the RVC parts on 1 s of audio: full-size ContentEncoder (random weights, the
hubert_base architecture), full-size RMVPE (random weights) and Praat pitch.

    PYTHONPATH=. python benchmarks/rvc_parts_speed.py [--runs 7] [--device cpu] [--threads N]

Prints the median and min wall time of each over ``--runs`` runs after one warm-up.
Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def timeit(fn, runs: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(runs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, min(times) * 1000


def main() -> None:
    from transformers import HubertConfig

    from bridge.vc.content import ContentEncoder
    from bridge.vc.pitch import RMVPE, ParselmouthPitch

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--half", action="store_true", help="fp16 models (GPU)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = torch.float16 if args.half else torch.float32
    torch.manual_seed(0)
    t = np.arange(16000) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    audio_t = torch.from_numpy(audio).to(args.device)

    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, dtype {dtype}")
    enc = ContentEncoder.from_config(HubertConfig(), device=args.device, dtype=dtype)
    for version in ("v1", "v2"):
        med, best = timeit(lambda: enc.extract(audio_t, version), args.runs)
        print(f"ContentEncoder.extract {version} (1 s): median {med:.1f} ms, min {best:.1f} ms")
    del enc
    rmvpe = RMVPE(RMVPE.from_random().model, args.device, dtype=dtype)
    med, best = timeit(lambda: rmvpe.f0(audio), args.runs)
    print(f"RMVPE.f0 (1 s): median {med:.1f} ms, min {best:.1f} ms")
    pm = ParselmouthPitch()
    med, best = timeit(lambda: pm.f0(audio), args.runs)
    print(f"ParselmouthPitch.f0 (1 s): median {med:.1f} ms, min {best:.1f} ms")


if __name__ == "__main__":
    main()
