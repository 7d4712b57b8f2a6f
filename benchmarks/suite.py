"""The whole comparison in one run: every peer, same corpus, same token timing.

1. **Latency**, one session per peer: every reply of the corpus as LLM tokens at ``rate``;
   FTTS, token-to-sound per segment, underruns, stage RTFs, CPU and memory of the peer's process.
2. **Concurrency ramp** (servers only): 1, 2, 3, 4, 6, 8… sessions, each speaking utterances
   back to back (the next starts when the listener has heard the previous one), until the
   first level with an underrun.
3. **Engine probe**: the engine alone, in-process, on each peer's first-segment texts, for the
   server-overhead figure (after all servers have stopped, so nothing competes).
4. Optional **WER** of the single-session audio with the offline Whisper model.

Results: ``benchmarks/results/<date>-<name>.json``, ``.md``, ``-ftts.png``, ``-ramp.png``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks.client import ServerFailed, ServerSpec, Session, bridge_server, naive_server, running_server
from benchmarks.engine_probe import first_chunk_times, make_probe
from benchmarks.metrics import Figures, Trace, figures, finite, stage_rtf
from benchmarks.procstats import ProcessSampler
from benchmarks.ramp import Ramp
from benchmarks.report import write_reports
from benchmarks.stats import summary_ms
from benchmarks.tokens import Reply, llm_tokens, load_corpus
from bridge.audio.formats import decode_pcm

RESULTS = Path(__file__).with_name("results")
console = Console(stderr=True)

SERVER_PEERS = ("voice-bridge", "naive", "voice-bridge-gpu", "voice-bridge-rvc")
LIBRARY_PEERS = ("realtimetts", "realtimetts-stock")
ALL_PEERS = ("voice-bridge", "naive", "realtimetts", "realtimetts-stock")
#: Which in-process engine call each peer's first audio waits for (benchmarks.engine_probe).
PROBES = {"voice-bridge": "streaming", "naive": "whole", "realtimetts": "piper", "realtimetts-stock": "piper"}
WARMUP_TEXT = "Hello! This is a warm-up sentence, not measured."


@dataclass
class Options:
    replies: int | None = None  # None: the whole corpus
    rate: float = 70.0
    sessions: int = 1  # concurrent sessions in the latency phase (servers)
    peers: tuple[str, ...] = ALL_PEERS
    ramp_peers: tuple[str, ...] = ("voice-bridge", "naive")
    ramp_max: int = 16
    #: Run exactly these levels instead of the ramp's 1, 2, 3, 4, 6… with its stop rule.
    ramp_levels: list[int] | None = None
    ramp_utterances: int = 2
    stagger_ms: float = 0.0
    prebuffer_ms: float = 0.0
    probe_repeats: int = 5
    wer: bool = False
    gpu: bool = False
    gpu_voice: str | None = None
    #: A models directory with an RVC voice (``python -m benchmarks.rvc_models``): adds the peer
    #: voice-bridge-rvc, this project with that voice on this machine's device.
    rvc_models: Path | None = None
    rvc_voice: str | None = None
    #: A Soprano model folder (``python -m benchmarks.soprano_bench`` builds a full-size one with
    #: random weights): adds the peer ``voice-bridge-soprano``, this project on Soprano, CPU.
    soprano_model: Path | None = None
    realtimetts_python: str | None = None
    name: str = "compare"
    note: str | None = None
    out_dir: Path = RESULTS


@dataclass
class Utterance:
    """One utterance's figures as stored in the JSON (milliseconds)."""

    reply: int
    topic: str
    session: int
    tokens: int
    ftts_ms: float | None
    text_wait_ms: float | None
    first_segment_t2s_ms: float | None
    first_segment_text: str | None
    t2s_ms: list[float]
    t2s_flush_ms: float | None
    server_ftts_ms: float | None
    audio_seconds: float
    underruns: int
    underrun_ms: float
    wall_ms: float | None
    stats: dict[str, Any] = field(default_factory=dict)
    stalls: list[tuple[float, float]] = field(default_factory=list)  # (audio position s, ms)
    underruns_buffered: int = 0
    engine_first_chunk_ms: float | None = None
    wer_errors: int | None = None
    wer_words: int | None = None


def _ms(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value * 1000, 1)


def utterance_of(reply_index: int, reply: Reply, session: int, trace: Trace, fig: Figures) -> Utterance:
    return Utterance(
        reply=reply_index,
        topic=reply.topic,
        session=session,
        tokens=fig.tokens,
        ftts_ms=_ms(fig.ftts) if not math.isnan(fig.ftts) else float("nan"),
        text_wait_ms=_ms(fig.text_wait),
        first_segment_t2s_ms=_ms(fig.first_segment_t2s),
        first_segment_text=fig.first_segment_text,
        t2s_ms=[round(v * 1000, 1) for v in fig.t2s],
        t2s_flush_ms=_ms(fig.t2s_flush),
        server_ftts_ms=_ms(fig.server_ftts),
        audio_seconds=round(fig.audio_seconds, 3),
        underruns=fig.underruns,
        underrun_ms=fig.underrun_ms,
        wall_ms=_ms(fig.wall),
        stats=dict(trace.stats),
        stalls=list(fig.stalls),
        underruns_buffered=fig.underruns_buffered,
    )


def _summary(values_ms: list[float | None]) -> dict[str, float] | None:
    clean = finite(values_ms)
    return summary_ms([v / 1000 for v in clean]) if clean else None


def _position_summary(seconds: list[float]) -> dict[str, float] | None:
    """Percentiles of audio positions, in seconds."""
    summary = summary_ms(seconds) if seconds else None
    return {k: (v if k == "n" else round(v / 1000, 3)) for k, v in summary.items()} if summary else None


def summarise(utterances: list[Utterance], process: dict[str, float] | None = None) -> dict[str, Any]:
    """One peer's figures over all its utterances."""
    overhead = [
        u.first_segment_t2s_ms - u.engine_first_chunk_ms
        for u in utterances
        if u.first_segment_t2s_ms is not None and u.engine_first_chunk_ms is not None
    ]
    transport = [
        u.ftts_ms - u.server_ftts_ms
        for u in utterances
        if u.server_ftts_ms is not None and u.ftts_ms is not None and not math.isnan(u.ftts_ms)
    ]
    scored = [u for u in utterances if u.wer_words]
    out: dict[str, Any] = {
        "utterances": len(utterances),
        "ftts_ms": _summary([u.ftts_ms for u in utterances]),
        "text_wait_ms": _summary([u.text_wait_ms for u in utterances]),
        "first_segment_t2s_ms": _summary([u.first_segment_t2s_ms for u in utterances]),
        "t2s_ms": _summary([v for u in utterances for v in u.t2s_ms]),
        "t2s_flush_ms": _summary([u.t2s_flush_ms for u in utterances]),
        "engine_first_chunk_ms": _summary([u.engine_first_chunk_ms for u in utterances]),
        "overhead_ms": _summary(overhead),
        "transport_ms": _summary(transport),
        "underruns": sum(u.underruns for u in utterances),
        "underrun_ms": round(sum(u.underrun_ms for u in utterances), 1),
        "utterances_with_underruns": sum(1 for u in utterances if u.underruns),
        "underruns_first_second": sum(1 for u in utterances for at, _ in u.stalls if at < 1.0),
        "stall_position_s": _position_summary([at for u in utterances for at, _ in u.stalls]),
        "stall_length_ms": _summary([ms for u in utterances for _, ms in u.stalls]),
        "underruns_buffered": sum(u.underruns_buffered for u in utterances),
        "audio_seconds": round(sum(u.audio_seconds for u in utterances), 1),
        "rtf": stage_rtf([u.stats for u in utterances]),
        "process": process,
    }
    if scored:
        out["wer"] = round(sum(u.wer_errors or 0 for u in scored) / sum(u.wer_words or 0 for u in scored), 4)
    return out


# ----------------------------------------------------------------------------- environment
def cuda_unavailable_reason(python: str = sys.executable, runner: Callable[..., Any] = subprocess.run) -> str | None:
    """None when ``python`` sees a CUDA device through torch; else why the GPU mode must skip."""
    code = "import sys\ntry:\n import torch\nexcept ImportError:\n sys.exit(4)\nsys.exit(0 if torch.cuda.is_available() else 3)"
    try:
        result = runner([python, "-c", code], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not check for CUDA: {exc}"
    if result.returncode == 0:
        return None
    if result.returncode == 4:
        return "torch is not installed (install the soprano/rvc extras with a CUDA build of torch)"
    if result.returncode == 3:
        return "CUDA is not available on this machine (torch.cuda.is_available() is False)"
    return f"the CUDA check failed (exit {result.returncode})"


def machine_info() -> dict[str, Any]:
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg": load,
        "gpu": None,
    }


def gpu_description(options: Options) -> str:
    """What the voice-bridge-gpu row measures: Soprano alone, or Soprano then the RVC voice of
    ``--gpu-voice``. The same words whether the peer ran or was skipped, so a skipped row does
    not claim an RVC stage that was never asked for."""
    voice = f" + RVC voice {options.gpu_voice!r}" if options.gpu_voice else ""
    return f"this project on the GPU: Soprano TTS{voice}, --device cuda"


def server_spec(name: str, options: Options) -> ServerSpec:
    if name == "voice-bridge":
        return bridge_server()
    if name == "naive":
        return naive_server()
    if name == "voice-bridge-gpu":
        extra = ["--tts", "soprano", "--device", "cuda"]
        if options.gpu_voice:
            extra += ["--voice", options.gpu_voice]
        return bridge_server("voice-bridge-gpu", *extra, description=gpu_description(options))
    if name == "voice-bridge-rvc":
        if not options.rvc_models or not options.rvc_voice:
            raise ValueError("voice-bridge-rvc needs rvc_models and rvc_voice")
        return bridge_server(
            "voice-bridge-rvc", "--voice", options.rvc_voice,
            env={"VOICE_BRIDGE_MODELS_DIR": str(Path(options.rvc_models).resolve())},
            description=f"this project with the RVC voice {options.rvc_voice!r} from {options.rvc_models} "
            "(Piper → RVC; the device's default RVC settings)",
        )  # fmt: skip
    if name == "voice-bridge-soprano":
        if not options.soprano_model:
            raise ValueError("voice-bridge-soprano needs soprano_model")
        return bridge_server(
            "voice-bridge-soprano", "--tts", "soprano", "--device", "cpu",
            env={"VOICE_BRIDGE_SOPRANO_MODEL_DIR": str(Path(options.soprano_model).resolve())},
            description=f"this project on Soprano from {options.soprano_model}, on the CPU",
        )  # fmt: skip
    raise ValueError(f"unknown server peer {name!r}")


# ----------------------------------------------------------------------------- phases
async def latency_server(spec: ServerSpec, options: Options, replies: list[Reply], progress: Progress, keep_audio: bool) -> dict[str, Any]:
    """Every reply through one server process: ``options.sessions`` connections at once, each
    speaking its share of the replies (reply i goes to session i mod N) one after another."""
    task = progress.add_task(f"{spec.name}: latency", total=len(replies))
    found: dict[int, tuple[Utterance, bytes | None]] = {}
    sessions = max(1, options.sessions)
    try:
        async with running_server(spec) as server:
            async with Session.open(server.ws_url) as session:
                await session.speak(llm_tokens(WARMUP_TEXT), options.rate)  # untimed: caches, first-call paths

            async def one(session_no: int) -> None:
                async with Session.open(server.ws_url) as session:
                    for index in range(session_no, len(replies), sessions):
                        reply = replies[index]
                        frames: list[bytes] | None = [] if keep_audio else None
                        trace = await session.speak(llm_tokens(reply.text), options.rate, keep_audio=frames)
                        fig = figures(trace, prebuffer_s=options.prebuffer_ms / 1000)
                        found[index] = (utterance_of(index, reply, session_no, trace, fig), b"".join(frames) if frames is not None else None)
                        progress.advance(task)

            with ProcessSampler(server.process.pid) as sampler:
                await asyncio.gather(*(one(i) for i in range(sessions)))
            health = server.health
    except (ServerFailed, OSError, TimeoutError) as exc:
        progress.update(task, visible=False)
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}", "description": spec.description}
    order = sorted(found)
    return {
        "status": "ok",
        "description": spec.description,
        "engines": health.get("engines"),
        "utterances": [found[i][0] for i in order],
        "process": sampler.summary(),
        "_audio": {i: (found[i][1], 48000, "f32le") for i in order},
    }


async def latency_realtimetts(name: str, options: Options, replies: list[Reply], progress: Progress, keep_audio: bool) -> dict[str, Any]:
    from benchmarks.peers.realtimetts import VARIANTS, find_python, run_driver, unavailable_reason

    python = find_python(options.realtimetts_python)
    description = VARIANTS[name][1] + (" — one session: a library, not a server" if options.sessions > 1 else "")
    reason = await asyncio.to_thread(unavailable_reason, python)
    if reason:
        return {"status": "skipped", "reason": reason, "description": description}
    task = progress.add_task(f"{name}: latency", total=len(replies))
    with tempfile.TemporaryDirectory(prefix="bench-rtts-audio-") as audio_dir:
        run = await run_driver(
            python, name, [llm_tokens(r.text) for r in replies], options.rate,
            warmup=llm_tokens(WARMUP_TEXT), audio_dir=Path(audio_dir) if keep_audio else None,
            on_reply=lambda: progress.advance(task),
        )
        audio: dict[int, tuple[bytes | None, int, str]] = {}
        for index, trace in enumerate(run.traces):
            path = Path(audio_dir) / f"{index}.s16le"
            rate = trace.sample_rate if trace is not None else 0
            audio[index] = (path.read_bytes(), rate, "s16le") if keep_audio and path.exists() else (None, rate, "s16le")
    utterances = []
    for index, (reply, trace) in enumerate(zip(replies, run.traces, strict=True)):
        if trace is None:
            continue
        fig = figures(trace, prebuffer_s=options.prebuffer_ms / 1000)
        utterances.append(utterance_of(index, reply, 0, trace, fig))
    if not utterances:
        return {"status": "failed", "reason": "; ".join(run.errors[:3]) or "no result", "description": description}
    return {
        "status": "ok",
        "description": f"{description} (RealtimeTTS {run.info.get('version', '?')})",
        "utterances": utterances,
        "process": run.process,
        "errors": run.errors,
        "_audio": audio,
    }


async def ramp_server(name: str, options: Options, replies: list[Reply], progress: Progress) -> dict[str, Any]:
    spec = server_spec(name, options)
    ramp = Ramp(max_sessions=options.ramp_max, fixed_levels=options.ramp_levels)
    levels: list[dict[str, Any]] = []
    stagger = options.stagger_ms / 1000
    task = progress.add_task(f"{name}: ramp", total=None)
    try:
        async with running_server(spec) as server:
            async with Session.open(server.ws_url) as session:
                await session.speak(llm_tokens(WARMUP_TEXT), options.rate)
            for sessions in ramp.levels():
                progress.update(task, description=f"{name}: ramp, {sessions} session{'s' * (sessions > 1)}")
                results: list[Utterance] = []
                failures: list[str] = []

                async def one(session_no: int) -> None:
                    await asyncio.sleep(session_no * stagger)
                    try:
                        async with Session.open(server.ws_url) as session:
                            for k in range(options.ramp_utterances):
                                index = (session_no * options.ramp_utterances + k + sessions) % len(replies)
                                reply = replies[index]
                                trace = await session.speak(llm_tokens(reply.text), options.rate)
                                fig = figures(trace, prebuffer_s=options.prebuffer_ms / 1000)
                                results.append(utterance_of(index, reply, session_no, trace, fig))
                                if fig.playback_end is not None:  # the listener hears it all first
                                    await asyncio.sleep(max(0.0, fig.playback_end - time.perf_counter()))
                    except Exception as exc:  # noqa: BLE001 - a refused or broken session counts as a failure
                        failures.append(f"session {session_no}: {type(exc).__name__}: {exc}")

                with ProcessSampler(server.process.pid) as sampler:
                    await asyncio.gather(*(one(i) for i in range(sessions)))
                underruns = sum(u.underruns for u in results)
                ramp.record(sessions, underruns, len(failures))
                process = sampler.summary()
                audio_seconds = sum(u.audio_seconds for u in results)
                per_session = [
                    sum(u.underrun_ms for u in results if u.session == n) for n in range(sessions)
                ]
                levels.append({
                    "sessions": sessions,
                    "utterances": len(results),
                    "ftts_ms": _summary([u.ftts_ms for u in results]),
                    "t2s_ms": _summary([v for u in results for v in u.t2s_ms]),
                    "underruns": underruns,
                    "underrun_ms": round(sum(u.underrun_ms for u in results), 1),
                    "utterances_with_underruns": sum(1 for u in results if u.underruns),
                    "failures": len(failures),
                    "failure_reasons": failures[:5],
                    "process": process,
                    "audio_seconds": round(audio_seconds, 2),
                    # CPU-seconds of the server process per second of audio it made.
                    "cpu_per_audio_second": (
                        round(process["cpu_seconds"] / audio_seconds, 4) if process and audio_seconds else None
                    ),
                    # Gap time per session (ms): how the gaps spread over the listeners.
                    "session_underrun_ms": [round(v, 1) for v in per_session],
                    # Every stall: (session, corpus reply, audio position s, length ms).
                    "stalls": [[u.session, u.reply, at, ms] for u in results for at, ms in u.stalls],
                })
    except (ServerFailed, OSError, TimeoutError) as exc:
        progress.update(task, visible=False)
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}", "levels": levels}
    progress.update(task, total=1, completed=1)
    mode = f"sessions started {'together' if not stagger else f'{options.stagger_ms:g} ms apart'}, {options.ramp_utterances} utterances each, paced by playback"
    return {"status": "ok", "mode": mode, "levels": levels, "max_clean": ramp.max_clean, "capped": ramp.capped}


def probe_engines(peers: dict[str, dict[str, Any]], repeats: int, progress: Progress) -> None:
    """Fill each utterance's ``engine_first_chunk_ms`` for its first-segment text.

    ``peers[name]["utterances"]`` may be :class:`Utterance` objects or their JSON dicts."""

    def get(u: Any, key: str) -> Any:
        return u.get(key) if isinstance(u, dict) else getattr(u, key)

    def put(u: Any, value: float) -> None:
        if isinstance(u, dict):
            u["engine_first_chunk_ms"] = value
        else:
            u.engine_first_chunk_ms = value

    kinds: dict[str, list[str]] = {}
    for name, peer in peers.items():
        if peer.get("status") == "ok" and name in PROBES:
            kinds.setdefault(PROBES[name], []).append(name)
    total = sum(len({get(u, "first_segment_text") for u in peers[n]["utterances"]} - {None}) for ns in kinds.values() for n in ns)
    task = progress.add_task("engine probe", total=total or 1)
    for kind, names in kinds.items():
        probe = make_probe(kind)
        for name in names:
            texts = [get(u, "first_segment_text") for u in peers[name]["utterances"] if get(u, "first_segment_text")]
            times: dict[str, float] = {}
            for text in dict.fromkeys(texts):
                times.update(first_chunk_times(probe, [text], repeats))
                progress.advance(task)
            for u in peers[name]["utterances"]:
                if get(u, "first_segment_text") in times:
                    put(u, round(times[get(u, "first_segment_text")] * 1000, 1))


def reprobe(path: Path, repeats: int) -> Path:
    """Measure the engine probe again for a stored result (say on a quiet machine) and rewrite
    its summaries, Markdown and plots; the measured runs are kept as they were."""
    import json

    payload = json.loads(path.read_text())
    peers = payload["peers"]
    with Progress(console=console) as progress:
        probe_engines(peers, repeats, progress)
    for peer in peers.values():
        if peer.get("status") == "ok":
            utterances = [Utterance(**u) for u in peer["utterances"]]
            peer["summary"] = summarise(utterances, peer["summary"].get("process"))
            peer["utterances"] = [asdict(u) for u in utterances]
    payload.setdefault("settings", {})["probe_repeats"] = repeats
    payload["settings"]["probe_at"] = dt.datetime.now().isoformat(timespec="seconds")
    path.write_text(json.dumps(_clean(payload), indent=1, allow_nan=False) + "\n")
    write_reports(payload, path.with_suffix(""))
    return path


def score_wer(peers: dict[str, dict[str, Any]], replies: list[Reply], progress: Progress) -> None:
    from benchmarks.wer import load_whisper, transcript_errors

    model = load_whisper()
    todo = [(name, u, peer["_audio"][u.reply]) for name, peer in peers.items() if peer.get("status") == "ok" for u in peer["utterances"]]
    task = progress.add_task("WER (Whisper)", total=len(todo))
    for _, utterance, (data, rate, fmt) in todo:
        if data:
            samples = decode_pcm(data, fmt)
            utterance.wer_errors, utterance.wer_words = transcript_errors(model, replies[utterance.reply].text, samples, rate)
        progress.advance(task)


# ----------------------------------------------------------------------------- the run
async def run_suite(options: Options) -> tuple[dict[str, Any], Path]:
    corpus = load_corpus()
    replies = corpus[: options.replies] if options.replies else corpus
    peers_wanted = list(options.peers)
    ramp_wanted = [p for p in options.ramp_peers if p in SERVER_PEERS]
    skipped: dict[str, str] = {}
    machine = machine_info()
    if options.gpu:
        reason = cuda_unavailable_reason()
        if reason:
            console.print(f"[yellow]GPU mode skipped: {reason}[/yellow]")
            skipped["voice-bridge-gpu"] = f"GPU mode: {reason}"
        else:
            machine["gpu"] = "CUDA"
            peers_wanted.append("voice-bridge-gpu")
            ramp_wanted.append("voice-bridge-gpu")
    if options.rvc_models and options.rvc_voice and "voice-bridge-rvc" not in peers_wanted:
        peers_wanted.append("voice-bridge-rvc")
        if options.ramp_peers and "voice-bridge-rvc" not in ramp_wanted:
            ramp_wanted.append("voice-bridge-rvc")
    if options.soprano_model and "voice-bridge-soprano" not in peers_wanted:
        peers_wanted.append("voice-bridge-soprano")
        if options.ramp_peers and "voice-bridge-soprano" not in ramp_wanted:
            ramp_wanted.append("voice-bridge-soprano")
    peers: dict[str, dict[str, Any]] = {}
    ramps: dict[str, dict[str, Any]] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        for name in peers_wanted:
            if name in LIBRARY_PEERS:
                peers[name] = await latency_realtimetts(name, options, replies, progress, options.wer)
            else:
                peers[name] = await latency_server(server_spec(name, options), options, replies, progress, options.wer)
            if peers[name]["status"] != "ok":
                console.print(f"[yellow]{name}: {peers[name]['status']}: {peers[name]['reason']}[/yellow]")
        for name in ramp_wanted:
            if peers.get(name, {}).get("status", "ok") != "ok":
                ramps[name] = {"status": "skipped", "reason": f"{name} did not run"}
                continue
            ramps[name] = await ramp_server(name, options, replies, progress)
        for name, reason in skipped.items():
            peers[name] = {"status": "skipped", "reason": reason, "description": gpu_description(options)}
        problems: dict[str, str] = {}
        try:
            await asyncio.to_thread(probe_engines, peers, options.probe_repeats, progress)
        except Exception as exc:  # noqa: BLE001 - keep the measured figures; say what is missing
            problems["engine_probe"] = f"{type(exc).__name__}: {exc}"
        if options.wer:
            try:
                await asyncio.to_thread(score_wer, peers, replies, progress)
            except Exception as exc:  # noqa: BLE001
                problems["wer"] = f"{type(exc).__name__}: {exc}"
        for phase, problem in problems.items():
            console.print(f"[yellow]{phase} failed: {problem}[/yellow]")
    for name in LIBRARY_PEERS:
        if name in peers and peers[name].get("status") == "ok":
            ramps.setdefault(name, {
                "status": "not measured",
                "reason": "a library, not a server: one TextToAudioStream and engine per process, so N listeners are N processes",
            })
    payload = {
        "benchmark": "compare",
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "note": options.note,
        "machine": machine,
        "settings": {
            "replies": len(replies),
            "rate": options.rate,
            "sessions": options.sessions,
            "prebuffer_ms": options.prebuffer_ms,
            "ramp_max": options.ramp_max,
            "ramp_utterances": options.ramp_utterances,
            "start_mode": f"sessions started {'together' if not options.stagger_ms else f'{options.stagger_ms:g} ms apart'}",
            "probe_repeats": options.probe_repeats,
            "wer": options.wer,
        },
        "peers": {
            name: {
                **{k: v for k, v in peer.items() if not k.startswith("_") and k not in ("utterances", "process")},
                **({"summary": summarise(peer["utterances"], peer.get("process")),
                    "utterances": [asdict(u) for u in peer["utterances"]]} if peer.get("status") == "ok" else {}),
            }
            for name, peer in peers.items()
        },
        "ramp": ramps,
        "problems": problems,
    }
    stem = write_results(options.name, payload, options.out_dir)
    return payload, stem


def write_results(name: str, payload: dict[str, Any], out_dir: Path = RESULTS) -> Path:
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{dt.date.today().isoformat()}-{name}"
    Path(f"{stem}.json").write_text(json.dumps(_clean(payload), indent=1, allow_nan=False) + "\n")
    write_reports(payload, stem)
    return stem


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
