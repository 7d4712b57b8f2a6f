"""Tune the first-fragment fast path on evidence: FTTS, underruns and WER per setting.

Each configuration runs the real server in its own process (settings through VOICE_BRIDGE_*
variables), streams the same replies at the same token rate, and transcribes what came back
with the offline Whisper model. The rule the README documents is the one this table picks.

    python -m benchmarks.tune_fast_path --replies 20
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from dataclasses import asdict
from typing import Any

from rich.progress import Progress

from benchmarks.ftts import bench_server, console, load_whisper, machine, summarise, write_results
from benchmarks.tokens import load_corpus

GRID: list[dict[str, str]] = [
    {"FIRST_SEGMENT_MAX_WORDS": "2", "FIRST_SEGMENT_MIN_WORDS": "2"},
    {"FIRST_SEGMENT_MAX_WORDS": "3", "FIRST_SEGMENT_MIN_WORDS": "2"},
    {"FIRST_SEGMENT_MAX_WORDS": "4", "FIRST_SEGMENT_MIN_WORDS": "2"},
    {"FIRST_SEGMENT_MAX_WORDS": "6", "FIRST_SEGMENT_MIN_WORDS": "3"},
    {"FIRST_SEGMENT_MAX_WORDS": "3", "FIRST_SEGMENT_MIN_WORDS": "2", "PAUSE_MIN_CHARS": "60"},
    {"FIRST_SEGMENT_MAX_WORDS": "3", "FIRST_SEGMENT_MIN_WORDS": "2", "PAUSE_MIN_CHARS": "15"},
]


def label(config: dict[str, str]) -> str:
    return " ".join(f"{k.lower()}={v}" for k, v in config.items())


async def main_async(args: argparse.Namespace) -> None:
    replies = load_corpus()[: args.replies]
    whisper = load_whisper()
    rows: list[dict[str, Any]] = []
    with Progress(console=console) as progress:
        for config in GRID:
            env = {f"VOICE_BRIDGE_{k}": v for k, v in config.items()}
            results = await bench_server(
                "voice-bridge", replies, args.rate, progress, env=env, label=label(config), wer=whisper
            )
            rows.append({"config": config, "summary": summarise(results), "replies": [asdict(r) for r in results]})
    lines = [
        f"# Fast-path tuning, {len(replies)} replies at {args.rate:g} tokens/s ({dt.date.today().isoformat()})",
        "",
        "| setting | FTTS p50 | FTTS p90 | underruns (replies) | WER |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        s = row["summary"]
        lines.append(
            f"| {label(row['config'])} | {s['ftts_ms']['p50']:.0f} ms | {s['ftts_ms']['p90']:.0f} ms | "
            f"{s['underruns']} ({s['replies_with_underruns']}) | {s['wer']:.3f} |"
        )
    markdown = "\n".join(lines) + "\n"
    payload = {"benchmark": "tune_fast_path", "rate_tokens_per_s": args.rate, "machine": machine(), "rows": rows}
    stem = write_results("fast-path-tuning", payload, markdown)
    console.print(markdown)
    console.print(f"results: {stem}.json / .md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replies", type=int, default=20)
    parser.add_argument("--rate", type=float, default=70.0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
