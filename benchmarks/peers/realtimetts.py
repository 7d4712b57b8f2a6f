"""RealtimeTTS as a peer: run the driver in RealtimeTTS's own environment, read traces back.

RealtimeTTS is a library, not a server: one ``TextToAudioStream`` per process, fed a token
generator, its audio captured with ``on_audio_chunk``. The driver
(:mod:`benchmarks.peers.realtimetts_driver`) runs in a separate virtual environment made by
``setup_realtimetts.sh`` (its pins — resampy, numba — and PyAudio stay out of the bridge's).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.metrics import Trace, segments_from_blocks
from benchmarks.procstats import ProcessSampler

DRIVER = Path(__file__).with_name("realtimetts_driver.py")
ENV_VAR = "VOICE_BRIDGE_REALTIMETTS_PYTHON"
DEFAULT_PYTHON = Path.home() / ".cache" / "voice-bridge" / "realtimetts-venv" / "bin" / "python"

VARIANTS = {
    "realtimetts": ("inprocess", "RealtimeTTS 0.8 TextToAudioStream, stream2sentence rule-based splitter, piper-tts voice loaded once (BaseEngine subclass)"),
    "realtimetts-stock": ("stock", "RealtimeTTS 0.8 with its own PiperEngine: one `piper` process per sentence (the model loads each time)"),
}


def find_python(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get(ENV_VAR) or DEFAULT_PYTHON)


def unavailable_reason(python: Path) -> str | None:
    """Why the peer cannot run with ``python``, or None when it can."""
    if not python.exists():
        return (
            f"no RealtimeTTS environment at {python}: run `bash benchmarks/peers/setup_realtimetts.sh` "
            f"(or pass --realtimetts-python / set {ENV_VAR})"
        )
    check = subprocess.run(
        [str(python), "-c", "import RealtimeTTS, pyaudio, piper"], capture_output=True, text=True, timeout=120
    )
    if check.returncode != 0:
        last = (check.stderr.strip().splitlines() or ["?"])[-1]
        return f"{python} cannot import RealtimeTTS, pyaudio and piper: {last}"
    if not (python.parent / "piper").exists():
        return f"no `piper` executable beside {python} (pip install piper-tts there)"
    return None


@dataclass
class DriverRun:
    traces: list[Trace | None]
    errors: list[str]
    process: dict[str, float] | None
    info: dict[str, str]


def trace_of(line: dict) -> Trace:
    """One driver output line → a :class:`Trace` (audio counted in samples at its own rate)."""
    width = int(line.get("sample_width", 2))
    return Trace(
        token_sent=list(line["token_sent"]),
        flush_sent=line.get("end_of_text"),
        audio=[(t, int(n) // width) for t, n in line["chunks"]],
        sample_rate=int(line["sample_rate"]),
        segments=segments_from_blocks(
            [tuple(s) for s in line["sentences"]], [tuple(p) for p in line["puts"]],
            [tuple(c) for c in line["chunks"]], line.get("end_of_text"),
        ),
        stats={},
        done=line.get("done"),
    )


async def run_driver(
    python: Path,
    variant: str,
    replies: list[list[str]],
    rate: float,
    *,
    warmup: list[str],
    audio_dir: Path | None = None,
    on_reply: Callable[[], None] | None = None,
    timeout_per_reply: float = 180.0,
) -> DriverRun:
    from bridge.tts.piper import embedded_voice_paths

    engine, _ = VARIANTS[variant]
    model, config = embedded_voice_paths()
    with tempfile.TemporaryDirectory(prefix="bench-rtts-") as tmp:
        job_path, out_path = Path(tmp) / "job.json", Path(tmp) / "out.jsonl"
        job_path.write_text(json.dumps({
            "engine": engine, "model": str(model), "config": str(config), "piper": str(python.parent / "piper"),
            "rate": rate, "replies": replies, "warmup": warmup, "audio_dir": str(audio_dir) if audio_dir else None,
        }))
        out_path.touch()
        process = await asyncio.create_subprocess_exec(
            str(python), str(DRIVER), str(job_path), str(out_path),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        lines: list[dict] = []
        info: dict[str, str] = {}
        stderr_task = asyncio.create_task(process.stderr.read()) if process.stderr else None
        sampler: ProcessSampler | None = None
        deadline_per_reply = timeout_per_reply
        idle = 0.0
        with open(out_path, encoding="utf-8") as feed:
            pending = ""
            while True:
                chunk = feed.read()
                if chunk:
                    idle = 0.0
                    pending += chunk
                    *complete, pending = pending.split("\n")
                    for raw in complete:
                        if not raw.strip():
                            continue
                        obj = json.loads(raw)
                        if obj.get("ready"):
                            info = {"version": obj.get("version", "?"), "engine": obj.get("engine", "?")}
                            sampler = ProcessSampler(process.pid).__enter__()  # load and warm-up excluded
                        else:
                            lines.append(obj)
                            if on_reply:
                                on_reply()
                if process.returncode is not None and not chunk:
                    break
                if idle > deadline_per_reply:
                    process.kill()
                    break
                try:
                    await asyncio.wait_for(process.wait(), 0.2)
                except asyncio.TimeoutError:
                    idle += 0.2
        if sampler is not None:
            sampler.__exit__(None, None, None)
        stderr = (await stderr_task).decode(errors="replace") if stderr_task else ""
    traces: list[Trace | None] = []
    errors: list[str] = []
    by_index = {int(line["index"]): line for line in lines}
    for index in range(len(replies)):
        line = by_index.get(index)
        if line is None:
            errors.append(f"reply {index}: no result (driver exit {process.returncode}: {stderr.strip().splitlines()[-1:] or '?'})")
            traces.append(None)
        elif line.get("error"):
            errors.append(f"reply {index}: {line['error']}")
            traces.append(None)
        else:
            traces.append(trace_of(line))
    return DriverRun(traces, errors, sampler.summary() if sampler else None, info)
