"""The test suite, run several times in a row on cores kept busy by spinning processes.

Why: no test may race the clock. A test that waits on a sleep, or asserts a duration, passes on
a quiet machine and fails on a loaded one; this runs the suite the way a shared CI box or a
laptop compiling something else would, and records every run (pass/fail, counts, duration).

    python -m benchmarks.suite_under_load                       # 5 runs, 2 burners, on CPUs 0-1
    python -m benchmarks.suite_under_load --runs 1 --burners 2 -- tests/test_limits.py -q
    python -m benchmarks.suite_under_load --out benchmarks/results/2026-12-03-suite-under-load

Everything after ``--`` goes to pytest (default: the whole suite, ``-q``). The burners are
``python -c "while True: pass"`` processes started by this command and ended by it (also on
Ctrl-C); with ``--cpus`` (default ``0,1``) the burners and pytest are pinned to those CPUs, so
the figure is "the suite on 2 loaded cores" even on a bigger machine. Exit status: 0 if every
run passed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUMMARY_RE = re.compile(r"^=*\s*(?P<body>(?:\d+ \w+(?:, )?)+) in (?P<seconds>[\d.]+)s", re.M)


def _pin(cpus: list[int] | None) -> Any:
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return None
    usable = sorted(set(cpus) & os.sched_getaffinity(0))
    return (lambda: os.sched_setaffinity(0, usable)) if usable else None


def start_burners(count: int, cpus: list[int] | None) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", "while True: pass"],
            preexec_fn=_pin(cpus),  # noqa: PLW1509 (no threads in this process yet)
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def stop_burners(burners: list[subprocess.Popen]) -> None:
    for burner in burners:
        if burner.poll() is None:
            burner.send_signal(signal.SIGTERM)
    for burner in burners:
        try:
            burner.wait(timeout=10)
        except subprocess.TimeoutExpired:
            burner.kill()
            burner.wait()


def parse_counts(output: str) -> dict[str, int]:
    """pytest's closing line ("3 passed, 1 failed, 2 skipped in 4.5s") as counts."""
    matches = list(SUMMARY_RE.finditer(output))
    if not matches:
        return {}
    counts: dict[str, int] = {}
    for part in matches[-1].group("body").split(", "):
        number, _, word = part.partition(" ")
        counts[word] = int(number)
    return counts


def run_suite(pytest_args: list[str], cpus: list[int] | None, log: Path, timeout: float) -> dict[str, Any]:
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("w") as out:
        try:
            process = subprocess.run(
                [sys.executable, "-m", "pytest", *pytest_args],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=_pin(cpus), timeout=timeout,  # noqa: PLW1509
            )
            code: int | None = process.returncode
        except subprocess.TimeoutExpired:
            code = None
    seconds = time.monotonic() - started
    text = log.read_text(errors="replace")
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", text, re.M)
    return {
        "exit_code": code,
        "passed": code == 0,
        "seconds": round(seconds, 1),
        "counts": parse_counts(text),
        "failed": failed,
        "log": str(log),
    }


def render_markdown(payload: dict[str, Any]) -> str:
    lines = [
        f"# The test suite under load — {payload['date']}",
        "",
        f"`python -m benchmarks.suite_under_load` on {payload['machine']}: {payload['runs']} runs in a row of "
        f"`pytest {' '.join(payload['pytest_args'])}` while {payload['burners']} busy-loop processes spin"
        + (f", all pinned to CPUs {payload['cpus']}" if payload["cpus"] else "")
        + ".",
        "",
        "| run | result | counts | time |",
        "|---|---|---|---|",
    ]
    for index, run in enumerate(payload["results"], 1):
        counts = ", ".join(f"{v} {k}" for k, v in run["counts"].items()) or "—"
        result = "pass" if run["passed"] else ("timeout" if run["exit_code"] is None else f"FAIL (exit {run['exit_code']})")
        lines.append(f"| {index} | {result} | {counts} | {run['seconds']:.0f} s |")
    passed = sum(r["passed"] for r in payload["results"])
    lines += ["", f"{passed} of {len(payload['results'])} runs passed."]
    failures = [(i, f) for i, r in enumerate(payload["results"], 1) for f in r["failed"]]
    if failures:
        lines += ["", "Failed tests:", ""] + [f"- run {i}: `{f}`" for i, f in failures]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args = ["-q"]
    if "--" in argv:
        cut = argv.index("--")
        argv, pytest_args = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--burners", type=int, default=2, help="busy-loop processes (default 2)")
    parser.add_argument("--cpus", default="0,1", help="pin burners and pytest to these CPUs ('' for no pinning)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one run may take (default 1800)")
    parser.add_argument("--out", type=Path, help="write OUT.json and OUT.md (default: under /tmp)")
    args = parser.parse_args(argv)
    cpus = [int(c) for c in args.cpus.split(",") if c.strip()] or None
    out = args.out or Path(f"/tmp/voice-bridge-suite-under-load-{dt.datetime.now():%Y%m%d-%H%M%S}")
    out.parent.mkdir(parents=True, exist_ok=True)

    from benchmarks.suite import machine_info

    machine = machine_info()
    results: list[dict[str, Any]] = []
    burners = start_burners(args.burners, cpus)
    try:
        for index in range(1, args.runs + 1):
            log = out.parent / f"{out.name}-run{index}.log"
            print(f"run {index}/{args.runs}: pytest {' '.join(pytest_args)} (log: {log}) …", flush=True)
            result = run_suite(pytest_args, cpus, log, args.timeout)
            results.append(result)
            print(f"  {'passed' if result['passed'] else 'FAILED'} {result['counts']} in {result['seconds']:.0f} s", flush=True)
            for name in result["failed"]:
                print(f"  failed: {name}")
    finally:
        stop_burners(burners)
    payload = {
        "date": dt.date.today().isoformat(),
        "machine": f"{machine['cores']} cores ({machine['cpu']})",
        "runs": args.runs,
        "burners": args.burners,
        "cpus": args.cpus if cpus else "",
        "pytest_args": pytest_args,
        "results": results,
    }
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    out.with_suffix(".md").write_text(render_markdown(payload))
    print(f"wrote {out.with_suffix('.json')} and .md: {sum(r['passed'] for r in results)}/{len(results)} passed")
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
