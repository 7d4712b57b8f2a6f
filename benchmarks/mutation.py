"""Mutation testing of the pure modules with mutmut, each module against its own unit tests.

Why: line coverage says a rule ran, not that a test would notice it breaking. mutmut puts one
small bug at a time into a module (``<`` for ``<=``, a constant off by one, a branch dropped)
and runs the module's unit tests against it; a mutant they let through ("survived") is a rule
no test pins. The modules and their tests are listed in ``benchmarks/mutation.toml`` (adding a
module is one line there), with the survivors judged equivalent and why.

mutmut rewrites the tree it runs in (it writes ``mutants/`` and reads its settings from
``pyproject.toml``), so each run happens in a scratch copy of the checkout (tracked files plus
untracked ones git does not ignore, so uncommitted edits are measured too), one module at a
time with that module's ``[tool.mutmut]``. Results: ``--out`` JSON + Markdown (per module:
mutants, killed, survived, equivalent, score, and each survivor's diff). Exit status 1 when a
module is under the target.

    python -m benchmarks.mutation                          # every module in mutation.toml
    python -m benchmarks.mutation --module bridge/limits.py  # one (repeatable)
    python -m benchmarks.mutation --out benchmarks/results/2026-12-03-mutation
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "benchmarks" / "mutation.toml"

KILLED = {"killed", "timeout", "segfault", "caught by type check"}
SURVIVED = {"survived", "no tests", "suspicious"}


@dataclass
class Equivalent:
    mutant: str
    changed: str
    reason: str


@dataclass
class Survivor:
    mutant: str
    status: str
    diff: str


@dataclass
class ModuleResult:
    module: str
    tests: list[str]
    mutants: int = 0
    killed: int = 0
    survived: int = 0
    equivalent: int = 0
    skipped: int = 0
    seconds: float = 0.0
    survivors: list[Survivor] = field(default_factory=list)
    equivalents: list[dict[str, str]] = field(default_factory=list)
    stale_equivalents: list[str] = field(default_factory=list)
    error: str | None = None
    stopped: bool = False  # --time-limit ended the run: `skipped` counts the mutants not run

    @property
    def score(self) -> float | None:
        judged = self.killed + self.survived
        return None if judged == 0 else 100.0 * self.killed / judged


@dataclass
class Config:
    modules: dict[str, list[str]]
    equivalents: list[Equivalent]
    target_percent: float
    property_examples: int


def load_config(path: Path = CONFIG) -> Config:
    data = tomllib.loads(path.read_text())
    return Config(
        modules={str(k): list(v) for k, v in data["modules"].items()},
        equivalents=[Equivalent(**e) for e in data.get("equivalent", [])],
        target_percent=float(data.get("target_percent", 90)),
        property_examples=int(data.get("property_examples", 10)),
    )


def scratch_copy(destination: Path) -> None:
    """The checkout as git sees it (tracked + untracked not ignored), without .git or .venv."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the work tree
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def mutmut_section(module: str, tests: list[str]) -> str:
    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    return (
        "\n[tool.mutmut]\n"
        f"source_paths = {toml_list([module])}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
        f"also_copy = {toml_list(['bridge', 'tests', 'benchmarks', 'models'])}\n"
    )


def mutmut_binary() -> str:
    candidate = Path(sys.executable).with_name("mutmut")
    return str(candidate) if candidate.exists() else "mutmut"


def run_module(
    scratch: Path, module: str, tests: list[str], equivalents: list[Equivalent], max_children: int,
    property_examples: int, time_limit: float | None = None, reuse: Path | None = None,
) -> ModuleResult:
    result = ModuleResult(module=module, tests=tests)
    pyproject = scratch / "pyproject.toml"
    base = (ROOT / "pyproject.toml").read_text()
    if "[tool.mutmut]" in base:
        base = base.split("[tool.mutmut]")[0]
    pyproject.write_text(base + mutmut_section(module, tests))
    shutil.rmtree(scratch / "mutants", ignore_errors=True)
    if reuse is not None:  # a finished run's mutants/ (its results, read again; nothing runs)
        shutil.copytree(reuse, scratch / "mutants")
    # tests/support/property_budget.py: fewer, derandomized hypothesis examples per mutant.
    env = {**os.environ, "PYTHONPATH": str(scratch), "VOICE_BRIDGE_PROPERTY_EXAMPLES": str(property_examples)}
    started = time.monotonic()
    output = ""
    if reuse is None:
        output = _run_mutmut(scratch, env, max_children, time_limit, result)
    result.seconds = round(time.monotonic() - started, 1)
    meta = scratch / "mutants" / (module + ".meta")
    if not meta.exists():
        result.error = f"mutmut run did not finish: {(output or '')[-2000:]}"
        return result
    return _read_results(scratch, env, module, meta, equivalents, result)


def _run_mutmut(scratch: Path, env: dict[str, str], max_children: int, time_limit: float | None, result: ModuleResult) -> str:
    run = subprocess.Popen(
        [mutmut_binary(), "run", "--max-children", str(max_children)],
        cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        output, _ = run.communicate(timeout=time_limit)
    except subprocess.TimeoutExpired:
        # Out of time: stop mutmut and its workers; what it has recorded is reported, the rest
        # counts as "not run".
        os.killpg(run.pid, signal.SIGTERM)
        output, _ = run.communicate()
        result.stopped = True
    return output or ""


def _read_results(
    scratch: Path, env: dict[str, str], module: str, meta: Path, equivalents: list[Equivalent], result: ModuleResult
) -> ModuleResult:
    from mutmut.stats import status_by_exit_code  # imported late: only this command needs mutmut

    exit_codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    by_name = {e.mutant: e for e in equivalents}
    statuses = {name: status_by_exit_code[code] for name, code in exit_codes.items()}
    diffs = mutant_diffs(scratch, env, module, [n for n, status in statuses.items() if status in SURVIVED])
    for name in sorted(statuses, key=_natural):
        status = statuses[name]
        result.mutants += 1
        if status in KILLED:
            result.killed += 1
            continue
        if status not in SURVIVED:
            result.skipped += 1
            continue
        diff = diffs.get(name, "")
        equivalent = by_name.get(name)
        if equivalent is not None and _changed_line(diff) == equivalent.changed.strip():
            result.equivalent += 1
            result.equivalents.append(
                {"mutant": name, "changed": equivalent.changed, "reason": equivalent.reason, "diff": diff}
            )
            continue
        if equivalent is not None:
            result.stale_equivalents.append(name)
        result.survived += 1
        result.survivors.append(Survivor(mutant=name, status=status, diff=diff))
    return result


_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
path, names = sys.argv[1], json.loads(sys.stdin.read())
print(json.dumps({name: get_diff_for_mutant(name, path=path) for name in names}))
"""


def mutant_diffs(scratch: Path, env: dict[str, str], module: str, names: list[str]) -> dict[str, str]:
    """Each mutant's diff (what `mutmut show NAME` prints), in one process for all of them."""
    if not names:
        return {}
    done = subprocess.run(
        [sys.executable, "-c", _DIFFS, module], input=json.dumps(names), cwd=scratch, env=env,
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        return {name: f"(no diff: {done.stderr.strip()[-500:]})" for name in names}
    return json.loads(done.stdout)


def _natural(name: str) -> tuple[str, int]:
    head, _, number = name.rpartition("_")
    return (head, int(number)) if number.isdigit() else (name, 0)


def _changed_line(diff: str) -> str:
    """The mutated line(s) of a mutmut diff: its '+' lines, stripped, joined by ' / '."""
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return " / ".join(added)


def rescore(payload: dict[str, Any], equivalents: list[Equivalent]) -> dict[str, Any]:
    """Re-judge a written report's survivors against the equivalents listed now (no re-run)."""
    by_name = {e.mutant: e for e in equivalents}
    for m in payload["modules"]:
        pool = [Survivor(**s) for s in m["survivors"]] + [
            Survivor(mutant=e["mutant"], status="survived", diff=e.get("diff", "")) for e in m["equivalents"]
        ]
        m["survivors"], m["equivalents"], m["stale_equivalents"] = [], [], []
        for survivor in pool:
            equivalent = by_name.get(survivor.mutant)
            if equivalent is not None and (not survivor.diff or _changed_line(survivor.diff) == equivalent.changed.strip()):
                m["equivalents"].append(
                    {"mutant": survivor.mutant, "changed": equivalent.changed, "reason": equivalent.reason, "diff": survivor.diff}
                )
            else:
                if equivalent is not None:
                    m["stale_equivalents"].append(survivor.mutant)
                m["survivors"].append(asdict(survivor))
        m["survived"], m["equivalent"] = len(m["survivors"]), len(m["equivalents"])
        judged = m["killed"] + m["survived"]
        m["score"] = None if judged == 0 else 100.0 * m["killed"] / judged
    return payload


def render_markdown(payload: dict[str, Any]) -> str:
    target = payload["target_percent"]
    lines = [
        f"# Mutation testing of the pure modules — {payload['date']}",
        "",
        f"`make mutation` (`python -m benchmarks.mutation`), mutmut {payload['mutmut']}, on "
        f"{payload['machine']}; each module against its own unit tests only (benchmarks/mutation.toml). "
        f"Score = killed / (killed + survived), equivalent mutants left out; target ≥ {target:.0f} %. "
        f"Property tests draw {payload.get('property_examples', '?')} derandomized examples per mutant "
        "(tests/support/property_budget.py).",
        "",
        "| module | tests | mutants | killed | survived | equivalent | not run | score | time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in payload["modules"]:
        score = "—" if m["score"] is None else f"{m['score']:.1f} %"
        if m["error"]:
            score = "error"
        lines.append(
            f"| `{m['module']}` | {', '.join(f'`{t}`' for t in m['tests'])} | {m['mutants']} | {m['killed']} "
            f"| {m['survived']} | {m['equivalent']} | {m.get('skipped', 0)} | {score} | "
            + (f"{m['seconds']:.0f} s |" if m["seconds"] else "— |")
        )
    for m in payload["modules"]:
        lines += ["", f"## `{m['module']}`", ""]
        if m["error"]:
            lines += ["Error:", "", "```", m["error"], "```"]
            continue
        if m.get("stopped"):
            lines += [
                f"Stopped by --time-limit after {m['seconds']:.0f} s: {m['skipped']} of {m['mutants']} mutants "
                "were not run; the score is over the ones that were.",
                "",
            ]
        if m["equivalents"]:
            lines += ["Equivalent mutants (no test can tell them from the original):", ""]
            for e in m["equivalents"]:
                lines.append(f"- `{e['mutant']}` — `{e['changed']}`: {e['reason']}")
            lines.append("")
        if m["stale_equivalents"]:
            lines += [
                "Listed as equivalent but the mutant has changed (re-judge them): "
                + ", ".join(f"`{s}`" for s in m["stale_equivalents"]),
                "",
            ]
        if m["survivors"]:
            lines += [f"Survivors ({len(m['survivors'])}):", ""]
            for s in m["survivors"]:
                lines += [f"`{s['mutant']}` ({s['status']})", "", "```diff", s["diff"].strip(), "```", ""]
        else:
            lines.append("No survivors.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", action="append", help="only this module (path as in mutation.toml)")
    parser.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy (its path is printed)")
    parser.add_argument(
        "--reuse-mutants", type=Path, metavar="DIR",
        help="with one --module: report from a finished run's mutants/ directory instead of running mutmut",
    )
    parser.add_argument(
        "--time-limit", type=float, metavar="SECONDS",
        help="stop a module's run after this long and report the mutants tested so far",
    )
    parser.add_argument(
        "--rescore", type=Path, metavar="JSON",
        help="re-judge a written report's survivors against mutation.toml's equivalents (no mutmut run); "
        "with --merge, fold in other reports' modules first",
    )
    parser.add_argument("--merge", type=Path, action="append", default=[], metavar="JSON")
    args = parser.parse_args(argv)
    if args.rescore:
        payload = json.loads(args.rescore.read_text())
        for other in args.merge:
            extra = json.loads(other.read_text())["modules"]
            names = {m["module"] for m in extra}
            payload["modules"] = [m for m in payload["modules"] if m["module"] not in names] + extra
        order = list(load_config().modules)
        payload["modules"].sort(key=lambda m: order.index(m["module"]) if m["module"] in order else len(order))
        payload = rescore(payload, load_config().equivalents)
        out = args.out or args.rescore.with_suffix("")
        out.with_suffix(".json").write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        out.with_suffix(".md").write_text(render_markdown(payload))
        print(f"wrote {out.with_suffix('.json')} and .md")
        below = [m["module"] for m in payload["modules"] if m["error"] or m["score"] is None or m["score"] < payload["target_percent"]]
        return 1 if below else 0

    import mutmut

    from benchmarks.suite import machine_info

    config = load_config()
    modules, target = config.modules, config.target_percent
    chosen = args.module or list(modules)
    unknown = [m for m in chosen if m not in modules]
    if unknown:
        parser.error(f"not in {CONFIG.relative_to(ROOT)}: {', '.join(unknown)}")
    scratch = Path(tempfile.mkdtemp(prefix="voice-bridge-mutation-"))
    results: list[ModuleResult] = []
    try:
        scratch_copy(scratch)
        for module in chosen:
            print(f"mutation: {module} against {' '.join(modules[module])} …", flush=True)
            result = run_module(
                scratch, module, modules[module], config.equivalents, args.max_children, config.property_examples,
                args.time_limit, args.reuse_mutants,
            )
            results.append(result)
            score = "error" if result.error else (f"{result.score:.1f} %" if result.score is not None else "—")
            print(
                f"  {result.mutants} mutants, {result.killed} killed, {result.survived} survived, "
                f"{result.equivalent} equivalent: {score} ({result.seconds:.0f} s)",
                flush=True,
            )
            for survivor in result.survivors:
                print(f"  survived: {survivor.mutant}\n" + "\n".join("    " + l for l in survivor.diff.splitlines()))
    finally:
        if args.keep:
            print(f"scratch copy kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    machine = machine_info()
    payload = {
        "date": dt.date.today().isoformat(),
        "mutmut": getattr(mutmut, "__version__", "?"),
        "machine": f"{machine['cores']} cores ({machine['cpu']}), load {machine['loadavg']}",
        "target_percent": target,
        "property_examples": config.property_examples,
        "modules": [{**asdict(r), "score": r.score} for r in results],
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        args.out.with_suffix(".md").write_text(render_markdown(payload))
        print(f"wrote {args.out.with_suffix('.json')} and .md")
    below = [r.module for r in results if r.error or r.score is None or r.score < target]
    if below:
        print(f"under {target:.0f} %: {', '.join(below)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
