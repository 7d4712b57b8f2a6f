"""Discord bot latency: the LLM's first token → the first Opus packet handed to the voice client.

Everything real except Discord and the model: the bot's GuildSession (LLM client, bridge link,
StreamSource), discord.py's own AudioPlayer thread and libopus encoder driven through a
recording voice client, and the voice-bridge server in its own process on loopback (as deployed;
it does not share the bot's GIL). The LLM is a fake OpenAI-compatible server streaming the
corpus replies as LLM-like tokens at a fixed rate (default 70 tokens/s).

For each reply: ``/speak`` → the fake LLM streams → tokens go to the bridge as they arrive →
audio → StreamSource → AudioPlayer → ``send_audio_packet``. Timestamps (one clock,
``time.perf_counter``): the fake server writing the first token, the bot receiving it, the
first audio frame from the bridge, ``play()``, the first packet. Each reply plays to its end
in real time, so underruns (silence inserted after the first audio) are counted too.

    python -m benchmarks.discord_latency --replies 20 --rate 70
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from benchmarks.client import bridge_server, running_server
from benchmarks.suite import RESULTS, machine_info
from benchmarks.stats import summary_ms
from benchmarks.tokens import llm_tokens, load_corpus
from bots.discord.llm import ChatClient, ChatHistory
from bots.discord.session import GuildSession, Request
from bots.discord.settings import DiscordSettings
from bots.discord.testing import FakeChatServer, RecordingVoiceClient, Script

console = Console(stderr=True)

#: Jitter-buffer configurations compared: the default, and starting on the very first audio.
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "eager": {"prebuffer_ms": 0, "prebuffer_max_wait_ms": 0},
}


@dataclass
class Run:
    topic: str
    tokens: int
    first_token_to_packet_s: float  # the figure: fake LLM writes token 1 → first Opus packet
    first_token_to_bridge_audio_s: float  # → first audio frame from the bridge reaches the bot
    bridge_audio_to_packet_s: float  # jitter buffer + player start + first encode
    llm_transfer_s: float  # fake LLM writes token 1 → the bot has parsed it
    audio_s: float
    underruns: int
    underrun_ms: float
    median_interval_ms: float


def settings_for(bridge_url: str, llm_url: str, overrides: dict[str, Any]) -> DiscordSettings:
    base = DiscordSettings.model_construct()
    values = {name: getattr(base, name) for name in DiscordSettings.model_fields}
    values.update(bridge_url=bridge_url, llm_url=llm_url, history_turns=0, **overrides)
    return DiscordSettings.model_validate(values)


async def one_reply(session: GuildSession, vc: RecordingVoiceClient, llm: FakeChatServer, text: str, rate: float) -> Any:
    tokens = llm_tokens(text)
    llm.scripts.append(Script(tokens=tokens, rate=rate))
    _, done = await session.submit(Request("speak", "Tell me something.", channel_id=1))
    report = await asyncio.wait_for(done, 120)
    if report.outcome != "done":
        raise RuntimeError(f"reply failed: {report.outcome} {report.error}")
    return report, llm.requests[-1], tokens


async def bench_config(name: str, overrides: dict[str, Any], ws_url: str, replies: list, rate: float) -> list[Run]:
    async with FakeChatServer() as llm:
        settings = settings_for(ws_url, llm.url, overrides)
        chat = ChatClient(settings)
        session = GuildSession(1, settings, chat, ChatHistory(0))
        vc = RecordingVoiceClient(keep_pcm=False)
        session.attach_voice(vc)
        try:
            await one_reply(session, vc, llm, "Warming up the voice.", rate)  # connect, warm caches
            runs: list[Run] = []
            for index, reply in enumerate(replies, 1):
                vc.clear()
                report, served, tokens = await one_reply(session, vc, llm, reply.text, rate)
                packets = [p for p in vc.snapshot() if p.pcm is not None and p.source.stats is report.source]
                first_packet = packets[0].time
                intervals = np.diff([p.time for p in packets]) * 1000
                stats = report.source
                run = Run(
                    topic=reply.topic,
                    tokens=len(tokens),
                    first_token_to_packet_s=first_packet - served.first_token_sent,
                    first_token_to_bridge_audio_s=report.bridge_first_chunk - served.first_token_sent,
                    bridge_audio_to_packet_s=first_packet - report.bridge_first_chunk,
                    llm_transfer_s=report.llm.first_token - served.first_token_sent,
                    audio_s=round(stats.fed_bytes / 192_000, 2),
                    underruns=stats.underruns,
                    underrun_ms=stats.underrun_frames * 20.0,
                    median_interval_ms=round(float(statistics.median(intervals)), 2) if len(intervals) else 0.0,
                )
                runs.append(run)
                console.print(
                    f"[{name}] {index}/{len(replies)} {reply.topic:<10} first token → first packet "
                    f"{run.first_token_to_packet_s * 1000:6.0f} ms  underruns {run.underruns}"
                )
            return runs
        finally:
            await session.close()
            vc.stop()
            await chat.close()


def summarise(runs: list[Run]) -> dict[str, Any]:
    return {
        "first_token_to_packet_ms": summary_ms([r.first_token_to_packet_s for r in runs]),
        "first_token_to_bridge_audio_ms": summary_ms([r.first_token_to_bridge_audio_s for r in runs]),
        "bridge_audio_to_packet_ms": summary_ms([r.bridge_audio_to_packet_s for r in runs]),
        "llm_transfer_ms": summary_ms([r.llm_transfer_s for r in runs]),
        "underruns": sum(r.underruns for r in runs),
        "replies_with_underruns": sum(1 for r in runs if r.underruns),
        "underrun_ms": round(sum(r.underrun_ms for r in runs), 1),
        "audio_seconds": round(sum(r.audio_s for r in runs), 1),
        "median_packet_interval_ms": round(statistics.median(r.median_interval_ms for r in runs), 2),
    }


def markdown(rate: float, summaries: dict[str, dict[str, Any]], replies: int, info: dict[str, Any]) -> str:
    today = dt.date.today().isoformat()
    lines = [
        f"# Discord bot: first LLM token → first Opus packet, {replies} replies at {rate:g} tokens/s ({today})",
        "",
        "Fake OpenAI-compatible LLM (SSE, in the bot's process) → bot (`GuildSession`, `BridgeLink`, "
        "`StreamSource`) → voice-bridge server (own process, embedded Piper voice, CPU) → discord.py "
        "2.7 `AudioPlayer` thread + libopus → recording voice client. Loopback only.",
        f"Machine: {info['cores']} CPU cores ({info['cpu']}), {'GPU: ' + str(info['gpu']) if info['gpu'] else 'no GPU'}; "
        f"load average {os.getloadavg()[0]:.1f} at the end of the run.",
        "",
        "| jitter buffer | p50 | p90 | p99 | → bridge audio p50 | bridge audio → packet p50 | underruns (replies) | underrun total |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in summaries.items():
        f, b, j = s["first_token_to_packet_ms"], s["first_token_to_bridge_audio_ms"], s["bridge_audio_to_packet_ms"]
        label = {"default": "default (200 ms, max wait 100 ms)", "eager": "off (play the first frame at once)"}.get(name, name)
        lines.append(
            f"| {label} | **{f['p50']:.0f} ms** | {f['p90']:.0f} ms | {f['p99']:.0f} ms | {b['p50']:.0f} ms | "
            f"{j['p50']:.0f} ms | {s['underruns']} ({s['replies_with_underruns']}) | {s['underrun_ms']:.0f} ms |"
        )
    lines += [
        "",
        "First token: when the fake LLM wrote the first content token. First packet: the first call of "
        "`send_audio_packet` by discord.py's player for that reply (PCM already Opus-encoded). "
        "Underruns: silence the bot had to insert after the first audio because the buffer ran dry "
        "(each reply is played to its end in real time).",
    ]
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> None:
    replies = load_corpus()[: args.replies]
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    results: dict[str, list[Run]] = {}
    async with running_server(bridge_server()) as server:
        for name in names:
            results[name] = await bench_config(name, CONFIGS[name], server.ws_url, replies, args.rate)
    summaries = {name: summarise(runs) for name, runs in results.items()}
    info = machine_info()
    payload = {
        "benchmark": "discord-latency",
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "rate_tokens_per_s": args.rate,
        "machine": info,
        "configs": {name: CONFIGS[name] for name in names},
        "summary": summaries,
        "runs": {name: [asdict(r) for r in runs] for name, runs in results.items()},
    }
    text = markdown(args.rate, summaries, len(replies), info)
    stem = write_results(args.name, payload, text)
    console.print(text)
    console.print(f"results: {stem}.json / .md")


def write_results(name: str, payload: dict[str, Any], text: str, out_dir: Path = RESULTS) -> Path:
    """``<date>-<name>.json`` and ``.md`` under ``out_dir``; the stem of both."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{dt.date.today().isoformat()}-{name}"
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    stem.with_suffix(".md").write_text(text)
    return stem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replies", type=int, default=20, help="corpus replies to run (medians need ≥ 10)")
    parser.add_argument("--rate", type=float, default=70.0, help="LLM tokens per second")
    parser.add_argument("--configs", default="default,eager", help=f"jitter-buffer configs: {', '.join(CONFIGS)}")
    parser.add_argument("--name", default="discord-latency")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
