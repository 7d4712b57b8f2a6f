"""Soprano: our batched streaming loop vs the soprano-tts package's ``infer_stream``.

Both run the real architecture (Qwen3 backbone: 17 layers, hidden 512, 4 heads, 1 KV head,
head_dim 128, intermediate 2304, vocab 8192; full-size Vocos decoder) with random weights, on
the same model folder, the same text and the same torch thread count. Random weights never
say ``[STOP]`` (the folder's ``lm_head`` row for it is zero), so every stream is forced to the
same length: ours is capped at ``--tokens`` audio tokens, the package's stream is read until
it has delivered the same audio ((tokens − 1) × 2048 samples) and then closed.

For 1, 2 and 4 concurrent streams (threads started together; the package has no batching,
so its streams simply run side by side, as a naive server would run them) it records per
stream: first-audio latency (call → first chunk), RTF (stream wall time / audio seconds) and,
per configuration, aggregate throughput (all audio / wall time) and the mean time of one
generation step (ours: one batched LM step; package: one token of its loop, including its
per-token decoder call). Runs of the two loops alternate so both see the same machine load;
the tables report medians over runs.

``--device auto`` (the default) runs both loops on the first CUDA GPU when torch sees one,
else on the CPU; the device and the GPU's name go into the JSON and the Markdown.
``--render FILE.json`` prints the Markdown table of an earlier result without running.

    PYTHONPATH=. python benchmarks/soprano_bench.py --runs 5 --tokens 48
    PYTHONPATH=. python benchmarks/soprano_bench.py --device cuda --streams 1,4,8
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bridge import accelerator  # noqa: E402
from bridge.cancel import CancelToken  # noqa: E402
from bridge.config import SopranoSettings  # noqa: E402
from bridge.tts.soprano import SopranoEngine  # noqa: E402
from bridge.tts.soprano_scheduler import TOKEN_SAMPLES  # noqa: E402

SAMPLE_RATE = 32_000
# A sentence of ordinary length; the test tokenizer spends one token per character (45 prompt
# tokens with the specials), Soprano's own tokenizer likely fewer.
TEXT = "Here is a sentence of quite ordinary length."


@dataclass
class StreamResult:
    first_audio_ms: float
    wall_s: float
    audio_s: float
    chunks: int

    @property
    def rtf(self) -> float:
        return self.wall_s / self.audio_s


@dataclass
class RunResult:
    loop: str
    streams: int
    per_stream: list[StreamResult]
    wall_s: float
    step_ms: float | None  # one generation step (ours: batched LM step; package: one token incl. decode)
    decode_ms: float | None  # one decoder call (ours)
    prefill_ms: float | None = None  # one prompt's prefill (ours)

    @property
    def throughput(self) -> float:
        return sum(s.audio_s for s in self.per_stream) / self.wall_s


def _together(k: int, work) -> tuple[list[StreamResult], float]:
    barrier = threading.Barrier(k + 1)
    results: list[StreamResult | None] = [None] * k

    def run(i: int) -> None:
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(k)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return [r for r in results if r is not None], time.perf_counter() - started


def run_ours(engine: SopranoEngine, k: int, tokens: int) -> RunResult:
    sched = engine._scheduler
    assert sched is not None
    before = (sched.steps, sched.step_seconds, sched.decode_calls, sched.decode_seconds, sched.prefills, sched.prefill_seconds)

    def work(i: int) -> StreamResult:
        t0 = time.perf_counter()
        first = None
        samples = chunks = 0
        for chunk in engine.iter_chunks(TEXT, CancelToken(), max_tokens=tokens):
            if first is None:
                first = time.perf_counter()
            samples += chunk.audio.size
            chunks += 1
        end = time.perf_counter()
        return StreamResult(1000 * (first - t0), end - t0, samples / SAMPLE_RATE, chunks)

    per_stream, wall = _together(k, work)
    steps = sched.steps - before[0]
    calls = sched.decode_calls - before[2]
    prefills = sched.prefills - before[4]
    return RunResult(
        engine.name,
        k,
        per_stream,
        wall,
        1000 * (sched.step_seconds - before[1]) / steps if steps else None,
        1000 * (sched.decode_seconds - before[3]) / calls if calls else None,
        1000 * (sched.prefill_seconds - before[5]) / prefills if prefills else None,
    )


def run_package(tts, k: int, tokens: int) -> RunResult:
    target = (tokens - 1) * TOKEN_SAMPLES

    def work(i: int) -> StreamResult:
        t0 = time.perf_counter()
        first = None
        samples = chunks = 0
        stream = tts.infer_stream(TEXT)
        for chunk in stream:
            # A server sends audio from host memory: on a GPU the copy (and the wait for the
            # kernels behind it) belongs to the chunk's time, as it does for ours.
            chunk = chunk.cpu()
            if first is None:
                first = time.perf_counter()
            samples += chunk.numel()
            chunks += 1
            if samples >= target:
                break
        stream.close()
        end = time.perf_counter()
        return StreamResult(1000 * (first - t0), end - t0, samples / SAMPLE_RATE, chunks)

    with contextlib.redirect_stdout(io.StringIO()):  # it prints its latency on every call
        per_stream, wall = _together(k, work)
    # One chunk per token after the first: the mean gap between chunks is its per-token step.
    step = statistics.mean(
        1000 * (s.wall_s - s.first_audio_ms / 1000) / (s.chunks - 1) for s in per_stream if s.chunks > 1
    )
    return RunResult("package", k, per_stream, wall, step, None)


def package_lm_step_ms(tts, tokens: int) -> float:
    """The package's LM loop alone (no decoder): mean time per token after the prompt."""
    prompt = tts._preprocess_text([TEXT])[0][0]
    stamps = []
    for i, _ in enumerate(tts.pipeline.stream_infer(prompt)):
        stamps.append(time.perf_counter())
        if i + 1 >= tokens:
            break
    return 1000 * (stamps[-1] - stamps[0]) / (len(stamps) - 1)


def load_package(model_dir: Path, device: str = "cpu"):
    from soprano.tts import SopranoTTS

    # The constructor warms up with infer("Hello world!"), which random weights run to 512
    # tokens; skip that and warm up with a short stream instead.
    with contextlib.redirect_stdout(io.StringIO()), mock.patch.object(SopranoTTS, "infer"):
        tts = SopranoTTS(model_path=str(model_dir), backend="transformers", device=device)
    with contextlib.redirect_stdout(io.StringIO()):
        for i, _ in enumerate(tts.infer_stream(TEXT)):
            if i >= 8:
                break
    return tts


def summarize(runs: list[RunResult]) -> dict:
    firsts = [s.first_audio_ms for r in runs for s in r.per_stream]
    rtfs = [s.rtf for r in runs for s in r.per_stream]
    steps = [r.step_ms for r in runs if r.step_ms is not None]
    decodes = [r.decode_ms for r in runs if r.decode_ms is not None]
    prefills = [r.prefill_ms for r in runs if r.prefill_ms is not None]
    return {
        "first_audio_ms_median": round(statistics.median(firsts), 1),
        "first_audio_ms_min": round(min(firsts), 1),
        "first_audio_ms_max": round(max(firsts), 1),
        "rtf_median": round(statistics.median(rtfs), 3),
        "throughput_x_realtime_median": round(statistics.median(r.throughput for r in runs), 3),
        "step_ms_median": round(statistics.median(steps), 2) if steps else None,
        "decode_call_ms_median": round(statistics.median(decodes), 2) if decodes else None,
        "prefill_ms_median": round(statistics.median(prefills), 2) if prefills else None,
        "audio_s_per_stream": round(runs[0].per_stream[0].audio_s, 3),
        "runs": len(runs),
    }


def resolve_device(name: str) -> str:
    """The bridge's device resolver; asking for ``cuda`` without a GPU ends the run (a silent
    CPU run's figures would be mislabelled)."""
    try:
        return accelerator.resolve_device(torch, name)
    except accelerator.NoGPUError as exc:
        raise SystemExit(f"--device {name}: {exc}") from exc


def device_environment(device: str) -> dict:
    """What the JSON records about the device: which one ran, and the GPU's name if it was one.

    ``cuda_available`` separates "no GPU on this machine" from "a GPU was there but the run
    was asked to use the CPU", which the Markdown words differently.
    """
    on_gpu = device.startswith("cuda")
    return {
        "device": device,
        "gpu": torch.cuda.get_device_name(torch.device(device)) if on_gpu else None,
        "cuda_available": torch.cuda.is_available(),
    }


def device_label(env: dict) -> str:
    """``GPU name`` or ``CPU``, for titles. Results written before ``--device`` existed carry
    no ``device`` key; they all ran on the CPU."""
    if str(env.get("device", "cpu")).startswith("cuda"):
        return env.get("gpu") or "CUDA GPU"
    return "CPU"


def shared_cores_note(env: dict[str, object]) -> str:
    """Say so when the load average shows other work on the cores (over 1.5 per core): then
    absolute figures are pessimistic, while the loops' comparison still holds run by run."""
    loads = [env.get("loadavg_before"), env.get("loadavg_after")]
    peak = max((float(load[0]) for load in loads if isinstance(load, list | tuple) and load), default=0.0)
    cores = env.get("cpu_count")
    return " (the cores are shared with other jobs)" if peak > 1.5 * (cores if isinstance(cores, int) else 1) else ""


def device_sentence(env: dict) -> str:
    """The Markdown's sentence about the device: only a run that used no GPU says so."""
    if str(env.get("device", "cpu")).startswith("cuda"):
        return (
            f"Device: {device_label(env)} ({env['device']}): both loops ran their LM and decoder on the GPU; "
            "the CPU and its threads only feed it."
        )
    if env.get("cuda_available"):
        return "Device: CPU (--device cpu), although a GPU was available; every figure is CPU."
    return "No GPU was available for this run, so every figure is CPU."


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def plot(summary: dict, path: Path, device: str = "CPU") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loops = [loop for loop in summary if summary[loop]]
    counts = sorted({int(k) for loop in loops for k in summary[loop]})
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    width = 0.8 / len(loops)
    metrics = [
        ("first_audio_ms_median", "first audio (ms, median)"),
        ("rtf_median", "RTF per stream (median; <1 is faster than real time)"),
        ("throughput_x_realtime_median", "aggregate throughput (× real time)"),
    ]
    for ax, (key, title) in zip(axes, metrics):
        for j, loop in enumerate(loops):
            values = [summary[loop].get(str(c), {}).get(key, 0) for c in counts]
            xs = [i + (j - (len(loops) - 1) / 2) * width for i in range(len(counts))]
            bars = ax.bar(xs, values, width, label=loop)
            ax.bar_label(bars, fmt="%.2f" if key != "first_audio_ms_median" else "%.0f", fontsize=7)
        ax.set_xticks(range(len(counts)), [f"{c} stream{'s' if c > 1 else ''}" for c in counts])
        ax.set_title(title, fontsize=9)
        if key == "rtf_median":
            ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Soprano-1.1 architecture (random weights), {device}: ours vs soprano-tts infer_stream", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        f"# Soprano streaming benchmark ({result['date']})",
        "",
        f"Machine: {env['cpu']}, {env['cpu_count']} cores, torch {env['torch']} with "
        f"{env['torch_threads']} threads. Load average before/after: "
        f"{env['loadavg_before']} / {env['loadavg_after']}{shared_cores_note(env)}. "
        + device_sentence(env),
        "",
        f"Model: Soprano-1.1 architecture with random weights ({env['model']}); each stream is "
        f"forced to {result['tokens']} audio tokens ({result['audio_s_per_stream']:.2f} s of audio). "
        f"Medians over {result['runs']} runs; within a run the loops take turns, so all see the same machine load.",
        "",
        "| loop | streams | first audio ms (median, min–max) | RTF per stream | throughput × real time | step ms | decoder call ms | prefill ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for loop, by_count in result["summary"].items():
        for count, s in sorted(by_count.items(), key=lambda kv: int(kv[0])):
            lines.append(
                f"| {loop} | {count} | {s['first_audio_ms_median']:.0f} ({s['first_audio_ms_min']:.0f}–"
                f"{s['first_audio_ms_max']:.0f}) | {s['rtf_median']:.2f} | {s['throughput_x_realtime_median']:.2f} | "
                f"{s['step_ms_median'] if s['step_ms_median'] is not None else '—'} | "
                f"{s['decode_call_ms_median'] if s['decode_call_ms_median'] is not None else '—'} | "
                f"{s['prefill_ms_median'] if s['prefill_ms_median'] is not None else '—'} |"
            )
    lines += [
        "",
        f"Package LM loop alone (no decoder), one stream: {result['package_lm_step_ms']:.1f} ms per token.",
        "",
        "*step ms*: ours, one batched LM step for all active streams; package, one token of its "
        "loop including its per-token decoder call (mean gap between its one-token chunks). "
        "*decoder call ms*: ours, one batched call decoding a window of hidden states. "
        "*prefill ms*: ours, one prompt through the LM (the package does the same work before its first token).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/soprano-bench/full"))
    parser.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: cuda when torch sees a GPU, else cpu"
    )
    parser.add_argument("--render", type=Path, metavar="JSON", help="print the Markdown of an earlier result and exit")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--streams", default="1,2,4")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--loops", default="ours,ours-bf16,package", help="ours (float32 LM), ours-bf16 (bfloat16 LM), package"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--tag", default="soprano")
    args = parser.parse_args()

    if args.render is not None:
        print(markdown(json.loads(args.render.read_text())))
        return
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    if not (args.model_dir / "decoder.pth").is_file():
        from tests.support.soprano_model import build_model_dir

        print(f"building a full-size random model in {args.model_dir}", file=sys.stderr)
        build_model_dir(args.model_dir, "random", size="full", seed=0)
    counts = [int(c) for c in args.streams.split(",")]
    loops = args.loops.split(",")
    loadavg_before = os.getloadavg()

    engines: dict[str, SopranoEngine] = {}
    tts = None
    for loop in loops:
        if loop.startswith("ours"):
            engine = SopranoEngine(
                args.model_dir,
                SopranoSettings(dtype="bfloat16" if loop == "ours-bf16" else "float32", max_batch=max(counts), max_new_tokens=512),
                device=device,
            )
            engine.load()
            engines[loop] = engine
    if "package" in loops:
        tts = load_package(args.model_dir, device)
    lm_step = package_lm_step_ms(tts, args.tokens) if tts is not None else float("nan")

    runs: dict[str, dict[int, list[RunResult]]] = {loop: {c: [] for c in counts} for loop in loops}
    for r in range(args.runs):
        for c in counts:
            for loop in loops:
                if loop == "package":
                    result = run_package(tts, c, args.tokens)
                else:
                    result = run_ours(engines[loop], c, args.tokens)
                    result.loop = loop
                runs[loop][c].append(result)
                print(
                    f"run {r} {loop:8s} {c} streams: first {statistics.median(s.first_audio_ms for s in result.per_stream):7.1f} ms"
                    f"  rtf {statistics.median(s.rtf for s in result.per_stream):.3f}"
                    f"  throughput {result.throughput:.3f}x  step {result.step_ms or 0:.1f} ms",
                    file=sys.stderr,
                )
    summary = {loop: {str(c): summarize(rs) for c, rs in by.items()} for loop, by in runs.items()}
    result = {
        "date": date.today().isoformat(),
        "tokens": args.tokens,
        "audio_s_per_stream": (args.tokens - 1) * TOKEN_SAMPLES / SAMPLE_RATE,
        "runs": args.runs,
        "text": TEXT,
        "environment": {
            "cpu": cpu_name(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "dtype": "float32 LM and decoder, except ours-bf16: bfloat16 LM",
            **device_environment(device),
            "model": "Qwen3 17 layers, hidden 512, 4 heads, 1 KV head, head_dim 128, intermediate 2304, vocab 8192",
            "loadavg_before": [round(x, 2) for x in loadavg_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "package_lm_step_ms": lm_step,
        "summary": summary,
        "raw": {
            loop: {str(c): [dict(asdict(r), throughput=r.throughput) for r in rs] for c, rs in by.items()}
            for loop, by in runs.items()
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{result['date']}-{args.tag}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    plot(summary, stem.with_suffix(".png"), device_label(result["environment"]))
    print(markdown(result))
    for engine in engines.values():
        engine.close()


if __name__ == "__main__":
    main()
