"""Tune the first-fragment fast path on evidence: FTTS, underruns and WER per setting.

Each configuration runs the real server in its own process (settings through VOICE_BRIDGE_*
variables), streams the same replies at the same token rate, and transcribes what came back
with the offline Whisper model. The rule the README documents is the one this table picks.

    python -m benchmarks tune --replies 20
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from dataclasses import asdict
from typing import Any

from rich.progress import Progress

from benchmarks.client import bridge_server
from benchmarks.suite import RESULTS, Options, console, latency_server, machine_info, score_wer, summarise
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
    options = Options(rate=args.rate)
    rows: list[dict[str, Any]] = []
    with Progress(console=console) as progress:
        for config in GRID:
            env = {f"VOICE_BRIDGE_{k}": v for k, v in config.items()}
            spec = bridge_server(label(config), env=env)
            peer = await latency_server(spec, options, replies, progress, keep_audio=True)
            if peer["status"] != "ok":
                raise SystemExit(f"{label(config)}: {peer['reason']}")
            await asyncio.to_thread(score_wer, {spec.name: peer}, replies, progress)
            summary = summarise(peer["utterances"], peer["process"])
            rows.append({"config": config, "summary": summary, "utterances": [asdict(u) for u in peer["utterances"]]})
    lines = [
        f"# Fast-path tuning, {len(replies)} replies at {args.rate:g} tokens/s ({dt.date.today().isoformat()})",
        "",
        "| setting | FTTS p50 | FTTS p90 | underruns (utterances) | WER |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        s = row["summary"]
        lines.append(
            f"| {label(row['config'])} | {s['ftts_ms']['p50']:.0f} ms | {s['ftts_ms']['p90']:.0f} ms | "
            f"{s['underruns']} ({s['utterances_with_underruns']}) | {s.get('wer', float('nan')):.3f} |"
        )
    markdown = "\n".join(lines) + "\n"
    payload = {"benchmark": "tune_fast_path", "rate_tokens_per_s": args.rate, "machine": machine_info(), "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{dt.date.today().isoformat()}-fast-path-tuning"
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown)
    console.print(markdown)
    console.print(f"results: {stem}.json / .md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks tune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replies", type=int, default=20)
    parser.add_argument("--rate", type=float, default=70.0)
    asyncio.run(main_async(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
