"""Text normalization: correctness on the corpus, cost per segment, and the candidates weighed.

    python -m benchmarks.normalize_bench [--nemo PYTHON] [--wetext PYTHON] [--note TEXT]

* **This stage** (``bridge.normalize``): every case of ``tests/data/normalize/corpus.tsv``
  (input → expected spoken text), and every segment the segmenter cuts from the general
  benchmark corpus (``benchmarks/corpus.jsonl``: what a session really sends it). Cost per
  segment: each segment timed in 30 passes, its median kept; then the median and p99 over
  segments.
* **NeMo text processing** and **WeTextProcessing** (WFST grammars on pynini): run in their
  own virtual environments through ``benchmarks/normalize_driver.py`` (``--nemo``/``--wetext``:
  that environment's python). Their output is scored against the same expectations, strictly
  and leniently (case, punctuation, hyphens and "and" ignored: their style, not their reading).
* **Number words**: ``num2words`` and ``inflect`` per call.

Results: ``benchmarks/results/<date>-normalize.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "data" / "normalize" / "corpus.tsv"
RESULTS = Path(__file__).with_name("results")


def load_cases() -> list[tuple[str, str, str]]:
    rows = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            kind, text, expected = line.split("\t")
            rows.append((kind, text, expected))
    return rows


def lenient(text: str) -> list[str]:
    """Words as read: case, punctuation, hyphens and the filler "and" ignored."""
    return [w for w in re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("-", " ")).split() if w != "and"]


def score(outputs: list[str], cases: list[tuple[str, str, str]]) -> dict[str, Any]:
    strict = sum(out == exp for out, (_, _, exp) in zip(outputs, cases, strict=True))
    loose = [lenient(out) == lenient(exp) for out, (_, _, exp) in zip(outputs, cases, strict=True)]
    per_class: dict[str, list[int]] = {}
    for ok, (kind, _, _) in zip(loose, cases, strict=True):
        per_class.setdefault(kind, [0, 0])
        per_class[kind][0] += ok
        per_class[kind][1] += 1
    return {"strict": strict, "lenient": sum(loose), "cases": len(cases), "per_class": per_class}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timing_summary(seconds: list[float]) -> dict[str, float]:
    micro = [s * 1e6 for s in seconds]
    return {
        "median_us": round(statistics.median(micro), 1),
        "p99_us": round(percentile(micro, 0.99), 1),
        "max_us": round(max(micro), 1),
        "segments": len(micro),
    }


def time_segments(normalize: Any, texts: list[str], passes: int = 30) -> list[float]:
    """Per text, the median of ``passes`` timings (after one warm call each)."""
    per_text: list[list[float]] = [[] for _ in texts]
    for text in texts:
        normalize(text)
    for _ in range(passes):
        for i, text in enumerate(texts):
            t0 = time.perf_counter()
            normalize(text)
            per_text[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in per_text]


def general_segments() -> list[str]:
    """The segments a session cuts from the general benchmark corpus (fast path on)."""
    from bridge.segmenter import Segmenter, SegmenterConfig

    from benchmarks.tokens import llm_tokens, load_corpus

    out = []
    for reply in load_corpus():
        seg = Segmenter(SegmenterConfig())
        for token in llm_tokens(reply.text):
            out += [str(s) for s in seg.feed(token)]
        out += [str(s) for s in seg.flush()]
    return out


def this_stage(cases: list[tuple[str, str, str]]) -> dict[str, Any]:
    from bridge.normalize import Normalizer

    started = time.perf_counter()
    normalize = Normalizer()
    build = time.perf_counter() - started
    normalize.romanizers.load()
    outputs = [normalize(text).spoken for _, text, _ in cases]
    segments = general_segments()
    untouched = [s for s in segments if not normalize(s).changed]
    return {
        "build_seconds": round(build, 4),
        "score": score(outputs, cases),
        "corpus_cost": timing_summary(time_segments(normalize, [t for _, t, _ in cases])),
        "general_cost": timing_summary(time_segments(normalize, segments)),
        "unchanged_cost": timing_summary(time_segments(normalize, untouched)),
        "general_changed": len(segments) - len(untouched),
        "failures": [
            {"input": text, "got": out, "expected": exp}
            for out, (_, text, exp) in zip(outputs, cases, strict=True)
            if out != exp
        ],
    }


def candidate(python: str, name: str, cache_dir: str | None, cases: list[tuple[str, str, str]]) -> dict[str, Any]:
    argv = [python, str(REPO / "benchmarks" / "normalize_driver.py"), name, str(CORPUS)]
    if cache_dir:
        argv.append(cache_dir)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=True)
    result = json.loads(done.stdout)
    outputs = result["outputs"]
    return {
        "init_seconds": round(result["init_seconds"], 2),
        "score": score(outputs, cases),
        "corpus_cost": timing_summary(result["seconds"]),
        "samples": [
            {"input": text, "got": out, "expected": exp}
            for out, (_, text, exp) in list(zip(outputs, cases, strict=True))[:: max(1, len(cases) // 25)]
        ],
    }


def number_words() -> dict[str, Any]:
    import inflect
    from num2words import num2words

    numbers = [5, 21, 105, 1299, 1999, 2026, 1_000_000, 42, 350, 128]
    engine = inflect.engine()
    out = {}
    for name, call in (("num2words", lambda n: num2words(n)), ("inflect", lambda n: engine.number_to_words(n, andword=""))):
        t0 = time.perf_counter()
        for _ in range(200):
            for n in numbers:
                call(n)
        out[name] = {"per_call_us": round((time.perf_counter() - t0) / (200 * len(numbers)) * 1e6, 1),
                     "sample": {str(n): call(n) for n in (1299, 1999)}}  # fmt: skip
    return out


def render(payload: dict[str, Any]) -> str:
    ours = payload["this_stage"]
    s = ours["score"]
    lines = [
        f"# Text normalization: correctness and cost ({payload['date']})",
        "",
        f"{payload['machine']}. `python -m benchmarks.normalize_bench`; corpus: `tests/data/normalize/corpus.tsv` "
        f"({s['cases']} cases, input → expected spoken text).",
        "",
    ]
    if payload.get("note"):
        lines += [f"**Note:** {payload['note']}", ""]
    lines += [
        "| candidate | corpus right (strict) | corpus right (lenient) | per segment median | p99 | start-up | install |",
        "|---|---|---|---|---|---|---|",
        f"| bridge.normalize (rules + num2words + romanizers) | {s['strict']}/{s['cases']} | {s['lenient']}/{s['cases']} "
        f"| {ours['corpus_cost']['median_us']:.0f} µs | {ours['corpus_cost']['p99_us']:.0f} µs | {ours['build_seconds'] * 1000:.0f} ms "
        f"(+ romanizer tables {payload['romanizer_load_seconds']:.2f} s) | {payload['install']['bridge.normalize']} |",
    ]
    for name, label in (("nemo", "NeMo text processing 1.2.0 (pynini)"), ("wetext", "WeTextProcessing 1.2.0 (pynini)")):
        c = payload["candidates"].get(name)
        if not c:
            continue
        if "skipped" in c:
            lines.append(f"| {label} | skipped: {c['skipped']} | | | | | |")
            continue
        cs = c["score"]
        lines.append(
            f"| {label} | {cs['strict']}/{cs['cases']} | {cs['lenient']}/{cs['cases']} | {c['corpus_cost']['median_us'] / 1000:.1f} ms "
            f"| {c['corpus_cost']['p99_us'] / 1000:.1f} ms | {c['init_seconds']:.1f} s | {payload['install'].get(name, '?')} |"
        )
    g, u = ours["general_cost"], ours["unchanged_cost"]
    lines += [
        "",
        f"On the general benchmark corpus as a session cuts it ({g['segments']} segments, {ours['general_changed']} with "
        f"something to rewrite): median {g['median_us']:.0f} µs, p99 {g['p99_us']:.0f} µs per segment; segments with "
        f"nothing to rewrite ({u['segments']}): median {u['median_us']:.0f} µs, p99 {u['p99_us']:.0f} µs.",
        "",
        "## Per class (lenient)",
        "",
        "| class | bridge.normalize | " + " | ".join(k for k in payload["candidates"] if "score" in payload["candidates"][k]) + " |",
        "|---|---|" + "---|" * sum("score" in c for c in payload["candidates"].values()),
    ]
    for kind, (ok, n) in s["per_class"].items():
        row = [f"{ok}/{n}"]
        for c in payload["candidates"].values():
            if "score" in c:
                got, total = c["score"]["per_class"].get(kind, [0, 0])
                row.append(f"{got}/{total}")
        lines.append(f"| {kind} | " + " | ".join(row) + " |")
    lines += ["", "## Number words", "", "| library | per call | 1299 | 1999 |", "|---|---|---|---|"]
    for name, figures in payload["number_words"].items():
        lines.append(f"| {name} | {figures['per_call_us']} µs | {figures['sample']['1299']} | {figures['sample']['1999']} |")
    lines += ["", "## Romanizers (weighed)", "", "| romanizer | for | output | load | per run | install |", "|---|---|---|---|---|---|"]
    for row in payload["romanizers"]:
        lines.append(f"| {row['name']} | {row['for']} | {row['output']} | {row['load']} | {row['per_run']} | {row['install']} |")
    lines += ["", "## Choice", "", payload["choice"], ""]
    for name in ("nemo", "wetext"):
        c = payload["candidates"].get(name)
        if c and "samples" in c:
            lines += [f"### {name}: sample outputs", "", "| input | got | expected |", "|---|---|---|"]
            lines += [f"| `{r['input']}` | {r['got']} | {r['expected']} |" for r in c["samples"]]
            lines.append("")
    if ours["failures"]:
        lines += ["### bridge.normalize: cases it gets wrong", ""]
        lines += [f"- `{f['input']}` → {f['got']} (expected: {f['expected']})" for f in ours["failures"]]
    return "\n".join(lines) + "\n"


#: Measured in scratch virtual environments on this machine (du of each package's files,
#: dependencies named); load and per-run figures from one script per romanizer on the
#: corpus's foreign phrases.
ROMANIZERS = [
    {"name": "pykakasi 2.3 (chosen)", "for": "Japanese", "output": "こんにちは！元気ですか？ → konnichiwa! genki desuka?",
     "load": "0.46 s (once, at start-up)", "per_run": "0.4 ms", "install": "9.6 MB (+ jaconv, deprecated)"},
    {"name": "cutlet 0.5", "for": "Japanese", "output": "Konnichiha! genki desu ka?",
     "load": "7 ms", "per_run": "0.3-0.5 ms", "install": "0.1 MB + fugashi 1.2 MB + unidic-lite 249 MB"},
    {"name": "pypinyin 0.55 (chosen)", "for": "Chinese", "output": "你好，我很好 → ni hao, wo hen hao; 重庆 → chong qing",
     "load": "lazy", "per_run": "0.06-0.25 ms", "install": "3.9 MB"},
    {"name": "anyascii 0.3 (chosen, the rest)", "for": "any script", "output": "안녕하세요 → annyeonghaseyo; Привет → Privet; "
     "مرحبا → mrhb; 東京に行きたいです → DongJingniXingkitaidesu (kanji read as Chinese)", "load": "lazy",
     "per_run": "< 0.05 ms", "install": "2.6 MB"},
    {"name": "uroman 1.3", "for": "any script", "output": "like anyascii for these", "load": "—",
     "per_run": "—", "install": "4.2 MB"},
    {"name": "unidecode 1.4", "for": "any script", "output": "older tables of the same kind (Soprano's cleaner uses it)",
     "load": "lazy", "per_run": "< 0.05 ms", "install": "2.1 MB"},
]  # fmt: skip

CHOICE = (
    "Rules written here, on `num2words` for the number words, `pykakasi` / `pypinyin` / `anyascii` for other "
    "scripts. The WFST normalizers read a wide range of English well, but cost two to three orders of magnitude "
    "more per segment than the first fragment's budget of a few milliseconds (and seconds to start, minutes to "
    "compile NeMo's grammars the first time), pull pynini (0.7-1.1 GB installed), and still miss forms LLM "
    "replies are full of (\"8 hrs\", \"$85k\", \"$10-15\", abbreviations before names). `num2words` over `inflect`: "
    "faster per call, and it reads years (\"nineteen ninety nine\") and ordinals itself."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nemo", help="python of a virtual environment with nemo-text-processing")
    parser.add_argument("--nemo-cache", help="NeMo grammar cache folder (compiled on first use: minutes)")
    parser.add_argument("--wetext", help="python of a virtual environment with WeTextProcessing")
    parser.add_argument("--note")
    args = parser.parse_args(argv)
    from benchmarks.suite import machine_info
    from bridge.normalize.scripts import Romanizers

    cases = load_cases()
    t0 = time.perf_counter()
    Romanizers().load()
    romanizer_load = time.perf_counter() - t0
    candidates: dict[str, Any] = {}
    for name, python, cache in (("nemo", args.nemo, args.nemo_cache), ("wetext", args.wetext, None)):
        if not python:
            candidates[name] = {"skipped": "no --" + name + " python given"}
            continue
        try:
            candidates[name] = candidate(python, name, cache, cases)
        except (subprocess.SubprocessError, OSError, ValueError) as exc:
            candidates[name] = {"skipped": f"{type(exc).__name__}: {str(exc)[:200]}"}
    machine = machine_info()
    payload = {
        "date": dt.date.today().isoformat(),
        "machine": f"{machine['cpu']}, {machine['cores']} cores, load average {machine['loadavg']}",
        "machine_info": machine,
        "note": args.note,
        "this_stage": this_stage(cases),
        "romanizer_load_seconds": round(romanizer_load, 2),
        "candidates": candidates,
        "number_words": number_words(),
        "romanizers": ROMANIZERS,
        "install": {
            "bridge.normalize": "num2words 1.3 MB, anyascii 2.6 MB; romanize extra: pykakasi 9.6 MB, pypinyin 3.9 MB",
            "nemo": "1.1 GB venv (pynini + libs 650 MB, transformers, pandas …)",
            "wetext": "0.75 GB venv (pynini + libs …)",
        },
        "choice": CHOICE,
    }
    stem = RESULTS / f"{payload['date']}-normalize"
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    stem.with_suffix(".md").write_text(render(payload), encoding="utf-8")
    print(stem.with_suffix(".md"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
