"""The ecosystem's protocols: how soon audio starts on each, and what it costs per listener.

Against a real server in its own process on loopback (``python -m bridge serve``, the embedded
Piper voice, Wyoming on), with the real clients:

* **OpenAI speech API** (the ``openai`` package, ``with_streaming_response``): for each
  ``response_format`` and both ``stream_format`` values, the time to the first audio bytes and
  to the last, over corpus replies (medians). A server that rendered the whole input first would
  show first ≈ total.
* **Wyoming** (the ``wyoming`` package's AsyncTcpClient): plain ``synthesize`` and streaming
  ``synthesize-start``/``-chunk``/``-stop``, first ``audio-chunk`` vs ``audio-stop``.
* **WebSocket formats**: bytes on the wire per second of audio for f32le, s16le, raw Opus and
  Ogg Opus (one listener each), i.e. the bandwidth per listener; and the CPU time the Opus
  encoder costs per second of audio (measured in this process, on the same PCM).

    python -m benchmarks.protocols --replies 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from benchmarks.client import bridge_server, free_port, running_server
from benchmarks.discord_latency import write_results
from benchmarks.suite import machine_info
from benchmarks.tokens import load_corpus
from bridge.audio.encode import SPEECH_FORMATS
from bridge.audio.formats import PCM_FORMATS

console = Console(stderr=True)

FORMATS = list(SPEECH_FORMATS)
WIRE: list[tuple[str, str | None]] = [(fmt, None) for fmt in PCM_FORMATS] + [("opus", framing) for framing in ("raw", "ogg")]


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1) if values else float("nan")


async def openai_runs(base_url: str, texts: list[str]) -> dict[str, Any]:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="bench", max_retries=0, timeout=600)
    results: dict[str, Any] = {}
    for stream_format in ("audio", "sse"):
        for fmt in FORMATS:
            firsts, totals, sizes = [], [], []
            for text in texts:
                started = time.perf_counter()
                first = None
                size = 0
                async with client.audio.speech.with_streaming_response.create(
                    model="tts-1", voice="alloy", input=text, response_format=fmt, stream_format=stream_format
                ) as response:
                    async for chunk in response.iter_bytes():
                        if chunk and first is None:
                            first = time.perf_counter() - started
                        size += len(chunk)
                totals.append(time.perf_counter() - started)
                firsts.append(first if first is not None else totals[-1])
                sizes.append(size)
            results[f"{fmt}/{stream_format}"] = {
                "first_byte_ms_p50": _median_ms(firsts),
                "total_ms_p50": _median_ms(totals),
                "first_over_total_p50": round(statistics.median(f / t for f, t in zip(firsts, totals, strict=True)), 3),
                "bytes_p50": int(statistics.median(sizes)),
            }
            console.print(f"openai {fmt}/{stream_format}: {results[f'{fmt}/{stream_format}']}")
    return results


async def wyoming_runs(port: int, texts: list[str]) -> dict[str, Any]:
    from wyoming.audio import AudioChunk, AudioStop
    from wyoming.client import AsyncTcpClient
    from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop

    results: dict[str, Any] = {}
    for mode in ("plain", "streaming"):
        firsts, totals = [], []
        for text in texts:
            async with AsyncTcpClient("127.0.0.1", port) as client:
                started = time.perf_counter()
                if mode == "plain":
                    await client.write_event(Synthesize(text=text).event())
                else:
                    await client.write_event(SynthesizeStart().event())
                    for word in text.split(" "):
                        await client.write_event(SynthesizeChunk(text=word + " ").event())
                    await client.write_event(SynthesizeStop().event())
                first = None
                while True:
                    event = await client.read_event()
                    assert event is not None
                    if first is None and AudioChunk.is_type(event.type):
                        first = time.perf_counter() - started
                    if AudioStop.is_type(event.type):
                        break
                totals.append(time.perf_counter() - started)
                firsts.append(first or totals[-1])
        results[mode] = {
            "first_chunk_ms_p50": _median_ms(firsts),
            "total_ms_p50": _median_ms(totals),
            "first_over_total_p50": round(statistics.median(f / t for f, t in zip(firsts, totals, strict=True)), 3),
        }
        console.print(f"wyoming {mode}: {results[mode]}")
    return results


async def wire_runs(ws_url: str, texts: list[str]) -> dict[str, Any]:
    import websockets

    results: dict[str, Any] = {}
    for fmt, framing in WIRE:
        query = f"?events=1&format={fmt}" + (f"&opus_framing={framing}" if framing else "")
        wire_bytes = 0
        audio_seconds = 0.0
        async with websockets.connect(ws_url + query, max_size=None) as ws:
            json.loads(await ws.recv())
            for text in texts:
                await ws.send(json.dumps({"token": text, "flush": True}))
                while True:
                    message = await ws.recv()
                    if isinstance(message, bytes):
                        wire_bytes += len(message)
                        continue
                    event = json.loads(message)
                    if event.get("type") == "flushed":
                        audio_seconds += event["audio_seconds"]
                        break
        name = fmt if framing is None else f"opus-{framing}"
        results[name] = {
            "kbit_per_s": round(wire_bytes * 8 / audio_seconds / 1000, 1),
            "bytes": wire_bytes,
            "audio_seconds": round(audio_seconds, 2),
        }
        console.print(f"wire {name}: {results[name]}")
    f32 = results["f32le"]["kbit_per_s"]
    for row in results.values():
        row["vs_f32le"] = round(row["kbit_per_s"] / f32, 4)
    return results


def encoder_cost(seconds: float = 20.0, repeats: int = 3) -> dict[str, Any]:
    """CPU seconds per second of audio for each encoder (48 kHz speech-like noise bursts)."""
    from bridge.audio.encode import OggOpusStream, OpusPacketEncoder, speech_encoder

    rng = np.random.default_rng(0)
    audio = (0.2 * rng.standard_normal(int(seconds * 48000))).astype(np.float32)
    frames = [audio[i : i + 960] for i in range(0, audio.size, 960)]
    makers: dict[str, Any] = {
        "opus-raw (WebSocket, Discord)": lambda: OpusPacketEncoder(),
        "opus-ogg (WebSocket)": lambda: OggOpusStream(),
        **{f"{fmt} (OpenAI)": (lambda fmt=fmt: speech_encoder(fmt)) for fmt in FORMATS},
    }
    results = {}
    for name, make in makers.items():
        costs = []
        for _ in range(repeats):
            encoder = make()
            started = time.process_time()
            for frame in frames:
                encoder.push(frame)
            costs.append((time.process_time() - started) / seconds)
        results[name] = {"cpu_seconds_per_audio_second_p50": round(statistics.median(costs), 4)}
    return results


def markdown(payload: dict[str, Any]) -> str:
    info = payload["machine"]
    lines = [
        f"# Protocols: first audio vs total, bandwidth per listener ({payload['date'][:10]})",
        "",
        f"{info['cores']} CPU cores ({info['cpu']}), no GPU, load average at start {info['loadavg']}; "
        f"embedded Piper voice; {payload['replies']} corpus replies per row, medians. "
        "`python -m benchmarks.protocols`.",
        "",
        "## OpenAI speech API (`openai` package, streamed)",
        "",
        "| response_format / stream_format | first bytes p50 | all bytes p50 | first / total p50 | size p50 |",
        "|---|---|---|---|---|",
    ]
    for name, row in payload["openai"].items():
        lines.append(
            f"| {name} | {row['first_byte_ms_p50']:,.0f} ms | {row['total_ms_p50']:,.0f} ms | "
            f"{row['first_over_total_p50']:.2f} | {row['bytes_p50']:,} B |"
        )
    lines += [
        "",
        "The first bytes leave after the first segment is spoken (the first two words: the fast path); "
        "first / total well under 1 is the streaming. MP3, AAC and FLAC hold a codec frame or two "
        "before their first bytes.",
        "",
        "## Wyoming (`wyoming` package's AsyncTcpClient)",
        "",
        "| request | first audio-chunk p50 | audio-stop p50 | first / total p50 |",
        "|---|---|---|---|",
    ]
    for name, row in payload["wyoming"].items():
        lines.append(
            f"| {name} | {row['first_chunk_ms_p50']:,.0f} ms | {row['total_ms_p50']:,.0f} ms | {row['first_over_total_p50']:.2f} |"
        )
    lines += [
        "",
        "## WebSocket: bytes per listener",
        "",
        "| format | kbit/s on the wire | vs f32le |",
        "|---|---|---|",
    ]
    for name, row in payload["wire"].items():
        lines.append(f"| {name} | {row['kbit_per_s']:,.1f} | {row['vs_f32le']:.3f} |")
    lines += [
        "",
        f"Opus at the default `opus_bitrate` ({payload['opus_bitrate'] // 1000} kbit/s) plus framing "
        "(the WebSocket frame header; Ogg pages add ~27 bytes per 20 ms packet).",
        "",
        "## Encoder CPU per second of audio (this process, one core)",
        "",
        "| encoder | CPU s per audio s |",
        "|---|---|",
    ]
    for name, row in payload["encoders"].items():
        lines.append(f"| {name} | {row['cpu_seconds_per_audio_second_p50']:.4f} |")
    lines += [
        "",
        "The Discord bot with `bridge_audio = \"opus\"` plays the bridge's packets as they are: the bot "
        "runs no encoder (the PCM path runs discord.py's libopus encoder in the bot, about the "
        "opus-raw cost above, per guild).",
    ]
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> None:
    texts = [reply.text for reply in load_corpus()[: args.replies]]
    wyoming_port = free_port()
    spec = bridge_server("voice-bridge", "--wyoming-port", str(wyoming_port))
    async with running_server(spec) as server:
        base = server.ws_url.replace("ws://", "http://").replace("/ws/stream", "")
        openai_results = await openai_runs(base, texts)
        wyoming_results = await wyoming_runs(wyoming_port, texts)
        wire_results = await wire_runs(server.ws_url, texts)
    from bridge.config import AudioSettings

    payload = {
        "benchmark": "protocols",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "replies": len(texts),
        "machine": machine_info(),
        "opus_bitrate": AudioSettings().opus_bitrate,
        "openai": openai_results,
        "wyoming": wyoming_results,
        "wire": wire_results,
        "encoders": encoder_cost(),
    }
    text = markdown(payload)
    stem = write_results(args.name, payload, text)
    plot(payload, stem.with_suffix(".png"))
    console.print(text)
    console.print(f"results: {stem}.json / .md / .png")


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in payload["openai"] if n.endswith("/audio")]
    first = [payload["openai"][n]["first_byte_ms_p50"] for n in names]
    total = [payload["openai"][n]["total_ms_p50"] for n in names]
    fig, ax = plt.subplots(figsize=(8, 4))
    y = np.arange(len(names))
    ax.barh(y, total, color="#cccccc", label="all bytes (p50)")
    ax.barh(y, first, color="#3366cc", label="first bytes (p50)")
    ax.set_yticks(y, [n.split("/")[0] for n in names])
    ax.set_xlabel("ms after the request")
    ax.set_title("POST /v1/audio/speech: first audio bytes vs the whole reply")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replies", type=int, default=10, help="corpus replies per row (medians need ≥ 5)")
    parser.add_argument("--name", default="protocols")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
