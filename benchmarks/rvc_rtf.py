"""Real-time factor of the RVC conversion stage, streaming, on this machine.

Measures everything the stage does per block: input resampling (TTS rate → 16 kHz),
content features (full-size HuBERT/ContentVec architecture), pitch (full-size RMVPE),
feature retrieval (a faiss IVF index built like RVC's), the synthesizer (full-size RVC
architecture, loaded from an fp16 voice file like a community one) and the resampling of
its output to 48 kHz. All weights are random (the architecture, not the values, sets the
cost). RTF = compute time / audio duration; below 1 is faster than real time.

    PYTHONPATH=. python benchmarks/rvc_rtf.py --threads 2 --blocks 0.25 0.5 1.0

Writes ``benchmarks/results/<date>-rvc-rtf.json``, ``.md`` and ``.png``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

# On a machine shared with other work (or with the TTS engine's own threads), OpenMP's
# default busy-waiting makes every parallel region wait for a descheduled thread: 5-7× slower
# here. Passive waiting must be chosen before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge.vc.rvc import (  # noqa: E402
    ConversionParams,
    DeviceModels,
    RVCStream,
    StreamLayout,
    load_voice,
)
from bridge.vc.synthesizer import SYNTHESIZERS, rvc_config  # noqa: E402


def speech_like(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 130 + 40 * np.sin(2 * np.pi * 1.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = np.clip(np.sin(2 * np.pi * 2.2 * t), 0, None) ** 0.5
    return (0.25 * env * voice + 0.01 * rng.standard_normal(len(t)) * env).astype(np.float32)


def write_voice(path: Path, version: str, sr: str) -> Path:
    """A full-size voice file as RVC saves it (fp16, weight_g/weight_v, no enc_q)."""
    model = SYNTHESIZERS[(version, True)](*rvc_config(version, sr))
    weights = {}
    for key, value in model.state_dict().items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        weights[key] = value.half()
    torch.save(
        {"weight": weights, "config": rvc_config(version, sr), "info": "bench", "sr": sr, "f0": 1, "version": version},
        path,
    )
    return path


def write_index(path: Path, dim: int, n: int = 20000) -> Path:
    import faiss

    vecs = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    n_ivf = min(int(16 * np.sqrt(n)), n // 39)
    index = faiss.index_factory(dim, f"IVF{n_ivf},Flat")
    index.train(vecs)
    index.add(vecs)
    faiss.write_index(index, str(path))
    return path


class Timers:
    """Wall time spent inside wrapped callables, by label."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)

    def wrap(self, obj: Any, attr: str, label: str) -> None:
        fn = getattr(obj, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.total[label] += time.perf_counter() - t0

        setattr(obj, attr, timed)

    def reset(self) -> None:
        self.total.clear()


def wait_for_quiet(threshold: float, max_wait: float) -> float:
    """On a shared machine: wait until the 1-min load average is below ``threshold``."""
    deadline = time.monotonic() + max_wait
    while threshold > 0 and os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def run_stream(voice, audio: np.ndarray, rate: int, layout: StreamLayout, chunk_s: float) -> dict[str, Any]:
    import soxr

    block_times: list[float] = []
    stream = RVCStream(voice, rate, params=ConversionParams(seed=0), layout=layout)
    inner = stream._block

    def timed_block(block: int) -> np.ndarray:
        t0 = time.perf_counter()
        out = inner(block)
        block_times.append((time.perf_counter() - t0, block))
        return out

    stream._block = timed_block
    to48 = soxr.ResampleStream(voice.sample_rate, 48000, 1, dtype="float32", quality="HQ")
    chunk = int(chunk_s * rate)
    c0 = time.process_time()
    t0 = time.perf_counter()
    produced = 0
    for i in range(0, len(audio), chunk):
        produced += len(to48.resample_chunk(stream.push(audio[i : i + chunk])))
    produced += len(to48.resample_chunk(stream.flush(), last=True))
    total = time.perf_counter() - t0
    cpu = time.process_time() - c0
    seconds = len(audio) / rate
    full_blocks = [t for t, b in block_times if b == layout.block]
    return {
        "rtf_total": total / seconds,
        "cpu_seconds_per_second": cpu / seconds,
        "block_rtf": [t / (layout.block / 100) for t in full_blocks],
        "block_ms": [1000 * t for t in full_blocks],
        "output_seconds": produced / 48000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=["v2-40k", "v2-48k"])
    ap.add_argument("--blocks", nargs="+", type=float, default=[0.25, 0.5, 1.0])
    ap.add_argument("--context", type=float, default=1.0, help="left context, seconds")
    ap.add_argument("--lookahead", type=float, default=0.04)
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--seconds", type=float, default=6.0, help="utterance length per run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--input-rate", type=int, default=22050)
    ap.add_argument("--pitch", default="rmvpe", choices=["rmvpe", "parselmouth"])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--tag", default="rvc-rtf")
    ap.add_argument("--note", default="")
    ap.add_argument(
        "--quiet-load", type=float, default=0.0,
        help="before each configuration, wait (up to --quiet-wait s) for the 1-min load average to drop below this",
    )  # fmt: skip
    ap.add_argument("--quiet-wait", type=float, default=180.0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    from transformers import HubertConfig

    from bridge.vc.content import ContentEncoder
    from bridge.vc.pitch import RMVPE, ParselmouthPitch

    audio = speech_like(args.seconds, args.input_rate)
    results: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="rvc-bench-"))
    for precision in args.precisions:
        autocast = torch.bfloat16 if precision == "bf16" else None
        torch.manual_seed(0)
        content = ContentEncoder.from_config(HubertConfig(), "cpu")
        pitch = RMVPE.from_random("cpu") if args.pitch == "rmvpe" else ParselmouthPitch()
        models = DeviceModels(
            torch.device("cpu"), autocast=autocast, content_loader=lambda: content, pitch_loader=lambda: pitch
        )
        timers = Timers()
        timers.wrap(content, "extract", "content")
        timers.wrap(pitch, "f0", "pitch")
        for name in args.models:
            version, sr = name.split("-")
            pth = write_voice(tmp / f"{name}.pth", version, sr)
            index = write_index(tmp / f"added_{name}.index", 256 if version == "v1" else 768)
            voice = load_voice(name, pth, models, index_path=index)
            timers.wrap(voice.synth, "infer", "synthesizer")
            timers.wrap(voice.index, "blend", "retrieval")
            for block in args.blocks:
                load_at_start = wait_for_quiet(args.quiet_load, args.quiet_wait)
                layout = StreamLayout.from_seconds(block=block, context=args.context, lookahead=args.lookahead)
                run_stream(voice, audio[: int(args.input_rate * 2)], args.input_rate, layout, 0.5)  # warm-up
                runs = []
                timers.reset()
                for _ in range(args.runs):
                    runs.append(run_stream(voice, audio, args.input_rate, layout, 0.5))
                spent = args.runs * args.seconds
                breakdown = {k: v / spent for k, v in timers.total.items()}
                total_rtfs = [r["rtf_total"] for r in runs]
                block_rtfs = [x for r in runs for x in r["block_rtf"]]
                row = {
                    "model": name,
                    "precision": precision,
                    "block_s": layout.block / 100,
                    "context_s": layout.context / 100,
                    "lookahead_s": layout.lookahead / 100,
                    "latency_s": (layout.block + layout.latency_frames) / 100,
                    "rtf_median": statistics.median(total_rtfs),
                    # CPU time of this process / audio time / threads: what the RTF would be
                    # with the threads' cores to ourselves (other jobs shared the machine).
                    "cpu_rtf_median": statistics.median(r["cpu_seconds_per_second"] for r in runs) / args.threads,
                    "rtf_runs": total_rtfs,
                    "block_rtf_median": statistics.median(block_rtfs),
                    "block_rtf_p90": float(np.percentile(block_rtfs, 90)),
                    "block_ms_median": statistics.median([x for r in runs for x in r["block_ms"]]),
                    "rtf_breakdown": breakdown,
                    "load_at_start": load_at_start,
                    "load_at_end": os.getloadavg()[0],
                }
                results.append(row)
                parts = ", ".join(f"{k} {v:.3f}" for k, v in sorted(breakdown.items()))
                print(
                    f"{name} {precision} block {row['block_s']:.2f}s: RTF {row['rtf_median']:.3f} "
                    f"(CPU-time RTF {row['cpu_rtf_median']:.3f}) "
                    f"(block median {row['block_rtf_median']:.3f}, p90 {row['block_rtf_p90']:.3f}; {parts})",
                    flush=True,
                )

    meta = {
        "date": dt.date.today().isoformat(),
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "torch": torch.__version__,
        "gpu": "none available in this run",
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "note": args.note,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{meta['date']}-{args.tag}"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    write_markdown(stem.with_suffix(".md"), meta, results)
    write_plot(stem.with_suffix(".png"), results)
    print(f"wrote {stem}.json/.md/.png")


def write_markdown(path: Path, meta: dict[str, Any], results: list[dict[str, Any]]) -> None:
    lines = [
        f"# RVC conversion stage: real-time factor ({meta['date']})",
        "",
        f"CPU only ({meta['cpu_count']} cores, {meta['torch_threads']} torch threads, "
        f"OMP_WAIT_POLICY={meta['omp_wait_policy']}, torch {meta['torch']}); "
        "no GPU in this run. Full-size architectures with random weights: HuBERT base (ContentVec layout), "
        "RMVPE, RVC v2 synthesizer from an fp16 voice file, faiss IVF index (20k vectors). Stream pushes "
        "TTS-like 0.5 s chunks at "
        f"{meta['args']['input_rate']} Hz; output resampled to 48 kHz. RTF = compute / audio time "
        f"(median of {meta['args']['runs']} runs of {meta['args']['seconds']} s).",
        "",
        "| model | precision | block | context | latency | RTF (wall) | RTF (CPU time) | block RTF median / p90 | content | pitch | synth | retrieval | load 1 min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        b = r["rtf_breakdown"]
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['block_s']:.2f} s | {r['context_s']:.2f} s | "
            f"{r['latency_s']:.2f} s | **{r['rtf_median']:.3f}** | {r['cpu_rtf_median']:.3f} | {r['block_rtf_median']:.3f} / "
            f"{r['block_rtf_p90']:.3f} | {b.get('content', 0):.3f} | {b.get('pitch', 0):.3f} | "
            f"{b.get('synthesizer', 0):.3f} | {b.get('retrieval', 0):.3f} | "
            f"{r['load_at_start']:.1f}→{r['load_at_end']:.1f} |"
        )
    lines += [
        "",
        "RTF (wall) is measured time / audio time. RTF (CPU time) is this process's CPU time / audio "
        "time / threads: an estimate of the wall RTF with both threads always busy (with passive "
        "OpenMP waits, idle threads use no CPU; the gap to the wall RTF is serial work and waits). Component columns are wall "
        "RTF shares (time in that component / audio time); the rest is resampling, RMS mix, crossfade "
        "and bookkeeping. Latency = block + crossfade + search + lookahead (audio the stream holds "
        "before a block can be converted), compute not included.",
    ]
    if meta.get("note"):
        lines += ["", meta["note"]]
    lines += [
        "",
        "Load average (1/5/15 min; this benchmark's own 2 threads count about 2) before: "
        f"{', '.join(f'{x:.2f}' for x in meta['load_average_before'])}, after: "
        f"{', '.join(f'{x:.2f}' for x in meta['load_average_after'])}.",
    ]
    path.write_text("\n".join(lines) + "\n")


def write_plot(path: Path, results: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    series: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for r in results:
        series[(r["model"], r["precision"])].append((r["block_s"], r["rtf_median"], r["cpu_rtf_median"]))
    for (model, precision), pts in sorted(series.items()):
        pts.sort()
        line = ax.plot([p[0] for p in pts], [p[2] for p in pts], marker="o", label=f"{model} {precision} (CPU time)",
                       linestyle="-" if precision == "fp32" else "--")[0]  # fmt: skip
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="x", color=line.get_color(), alpha=0.35,
                linestyle=":", label=f"{model} {precision} (wall, shared machine)")  # fmt: skip
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.axhline(0.6, color="red", linewidth=0.8, linestyle=":", label="target 0.6")
    ax.set_xlabel("block (s)")
    ax.set_ylabel("RTF (compute / audio)")
    ax.set_title("RVC stage RTF, CPU")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
