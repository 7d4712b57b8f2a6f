"""Is the measured capacity right? The server's own cost per audio second against the ground truth.

For each level of concurrent sessions, a real server (``voice-bridge serve``, a subprocess, the
embedded voice) is sent corpus replies as LLM tokens; per level this records

* the **meter's cost**: model steps' worker-thread CPU per second of audio they made, from the
  server's ``voice_bridge_compute_*_total`` counters (what admission weighs);
* the **process's cost**: the whole server process's CPU (psutil: model work, the event loop,
  sockets, everything) per second of audio the clients received (the ground truth);
* their ratio (the overhead the margin has to cover), and ``/health``'s capacity in sessions.

    python -m benchmarks.capacity_check --levels 1 4 8 12 --replies 2 --out benchmarks/results/DATE-capacity

Writes ``OUT.json``, ``OUT.md`` and ``OUT.png``. Admission is off in the server (as in every
benchmark) so that the levels past capacity still run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.client import Session, bridge_server, running_server
from benchmarks.procstats import ProcessSampler
from benchmarks.tokens import llm_tokens, load_corpus

KEY = "piper"


async def counters(url: str) -> dict[str, float]:
    """The server's compute counters for the embedded voice."""
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as response:
        text = await response.text()
    out = {}
    for name in ("voice_bridge_compute_seconds_total", "voice_bridge_compute_audio_seconds_total"):
        match = re.search(rf'^{name}{{key="{KEY}"}} (\S+)$', text, re.M)
        out[name] = float(match.group(1)) if match else 0.0
    return out


async def health(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(url + "/health") as response:
        return await response.json()


async def run_level(ws_url: str, sessions: int, replies: list[list[str]], rate: float) -> float:
    """``sessions`` sessions started together, each speaking ``replies``; audio seconds received."""

    async def one(index: int) -> float:
        received = 0.0
        async with Session.open(ws_url) as session:
            for offset in range(len(replies)):
                tokens = replies[(index + offset) % len(replies)]
                # Generous: on a shared machine a starved server may take minutes (the costs are CPU time).
                trace = await session.speak(tokens, rate, timeout=900)
                received += sum(n for _, n in trace.audio) / trace.sample_rate
        return received

    return sum(await asyncio.gather(*(one(i) for i in range(sessions))))


async def measure(levels: list[int], replies_per_session: int, rate: float, piper_threads: int = 0) -> dict[str, Any]:
    corpus = load_corpus()
    replies = [llm_tokens(reply.text) for reply in corpus[: max(replies_per_session, 4)]][:replies_per_session]
    spec = bridge_server(env={"VOICE_BRIDGE_PIPER_THREADS": str(piper_threads)})
    results = []
    async with running_server(spec) as server:
        url = server.ws_url.removesuffix("/ws/stream")
        await run_level(server.ws_url, 1, replies[:1], rate)  # warm up: first calls set up kernels
        for level in levels:
            before = await counters(url)
            with ProcessSampler(server.process.pid) as sampler:
                started = time.perf_counter()
                audio = await run_level(server.ws_url, level, replies, rate)
                wall = time.perf_counter() - started
            after = await counters(url)
            process_cpu = sampler.samples[-1].cpu_seconds - sampler.samples[0].cpu_seconds
            model_cpu = after["voice_bridge_compute_seconds_total"] - before["voice_bridge_compute_seconds_total"]
            model_audio = after["voice_bridge_compute_audio_seconds_total"] - before["voice_bridge_compute_audio_seconds_total"]
            load = (await health(url))["load"]
            row = {
                "sessions": level,
                "wall_seconds": round(wall, 2),
                "audio_seconds": round(audio, 2),
                "model_audio_seconds": round(model_audio, 2),
                "meter_cost": round(model_cpu / model_audio, 4) if model_audio else None,
                "process_cost": round(process_cpu / audio, 4) if audio else None,
                "process_cpu_share_of_cores": round(process_cpu / wall / load["cores"], 3) if wall else None,
                "health_cost": load["cost_per_audio_second"].get(KEY),
                "capacity_sessions": load["capacity_sessions"],
                "cores": load["cores"],
                "usable_cores": load["usable_cores"],
            }
            if row["meter_cost"] and row["process_cost"]:
                row["overhead"] = round(row["process_cost"] / row["meter_cost"] - 1, 3)
                row["capacity_by_process_cost"] = int(load["usable_cores"] // row["process_cost"])
            results.append(row)
            print(json.dumps(row), flush=True)
    return {
        "benchmark": "capacity_check",
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine()},
        "rate_tokens_per_second": rate,
        "replies_per_session": replies_per_session,
        "piper_threads": piper_threads,
        "levels": results,
    }


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs as one payload: per level the median of each figure, and the spread (min, max)
    of the two costs; every run kept under ``runs``."""
    payload = {**runs[0], "repeats": len(runs), "runs": [run["levels"] for run in runs]}
    levels = []
    for index, first in enumerate(runs[0]["levels"]):
        rows = [run["levels"][index] for run in runs]
        row: dict[str, Any] = {"sessions": first["sessions"], "cores": first["cores"], "usable_cores": first["usable_cores"]}
        for name in first:
            values = [r[name] for r in rows if isinstance(r.get(name), int | float)]
            if name not in row and values:
                median = statistics.median(values)
                row[name] = int(median) if all(isinstance(v, int) for v in values) else round(median, 4)
        for name in ("meter_cost", "process_cost"):
            values = [r[name] for r in rows if r.get(name) is not None]
            row[f"{name}_range"] = [min(values), max(values)] if values else None
        levels.append(row)
    payload["levels"] = levels
    return payload


def render_markdown(payload: dict[str, Any]) -> str:
    lines = [
        "# Measured capacity against the ground truth",
        "",
        f"Embedded Piper voice, piper_threads = {payload['piper_threads']} (0: one per call, every core for a "
        f"call alone), {payload['rate_tokens_per_second']:g} tokens/s, "
        f"{payload['replies_per_session']} corpus replies per session, sessions started together "
        f"(`python -m benchmarks.capacity_check`); medians of {payload.get('repeats', 1)} runs, the costs' "
        "range in brackets. *Meter*: model steps' worker-thread CPU per audio second "
        "(what admission weighs); *process*: the server process's whole CPU per audio second received; "
        "*overhead*: process ÷ meter − 1, what `capacity_margin` (0.15) has to cover.",
        "",
        "| sessions | audio s | meter CPU-s/audio-s | process CPU-s/audio-s | overhead | CPU share of cores | capacity (meter) | capacity (process cost) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in payload["levels"]:
        lines.append(
            f"| {row['sessions']} | {row['audio_seconds']:.1f} | {row['meter_cost']} {_range(row, 'meter_cost')} | "
            f"{row['process_cost']} {_range(row, 'process_cost')} | "
            f"{row.get('overhead', '—')} | {row['process_cpu_share_of_cores']} | {row['capacity_sessions']} | "
            f"{row.get('capacity_by_process_cost', '—')} |"
        )
    lines += ["", f"Machine: {payload['machine']['processor']}, {payload['levels'][0]['cores']:g} cores counted.", ""]
    return "\n".join(lines)


def _range(row: dict[str, Any], name: str) -> str:
    spread = row.get(f"{name}_range")
    return f"[{spread[0]}–{spread[1]}]" if spread else ""


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = payload["levels"]
    sessions = [r["sessions"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(sessions, [r["meter_cost"] for r in rows], marker="o", label="meter (model threads)")
    ax.plot(sessions, [r["process_cost"] for r in rows], marker="o", label="process (ground truth)")
    ax.set_xlabel("concurrent sessions")
    ax.set_ylabel("CPU-seconds per audio second")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title("Cost per audio second: measured vs ground truth")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8, 12])
    parser.add_argument("--replies", type=int, default=2, help="Corpus replies each session speaks.")
    parser.add_argument("--rate", type=float, default=70.0, help="LLM tokens per second.")
    parser.add_argument("--piper-threads", type=int, default=0, help="The server's piper_threads (0: its default).")
    parser.add_argument("--repeats", type=int, default=3, help="Runs (a fresh server each); medians reported.")
    parser.add_argument("--out", type=Path, help="Write OUT.json, OUT.md, OUT.png.")
    args = parser.parse_args()
    payload = combine(
        [asyncio.run(measure(args.levels, args.replies, args.rate, args.piper_threads)) for _ in range(args.repeats)]
    )
    markdown = render_markdown(payload)
    print(markdown)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(markdown)
        plot(payload, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
