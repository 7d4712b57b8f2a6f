"""``python -m benchmarks …`` (also ``voice-bridge bench …``): the latency benchmark suite.

    python -m benchmarks run                 # the whole comparison: every peer, then the ramp
    python -m benchmarks run --quick         # a short run to check the set-up (6 replies, ramp to 4)
    python -m benchmarks run --gpu --gpu-voice NAME   # adds Soprano (+ RVC) on CUDA; skips without a GPU
    python -m benchmarks run --rvc-models DIR --rvc-voice NAME   # adds Piper + that RVC voice, this device
    python -m benchmarks readme [RESULT.json] [--update README.md]   # the README's table block
    python -m benchmarks render RESULT.json  # write its Markdown and PNGs again
    python -m benchmarks probe RESULT.json   # measure the engine probe again (server overhead)
    python -m benchmarks tune                # the fast-path tuning sweep (benchmarks.tune_fast_path)

See benchmarks/README.md for what every figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from benchmarks.suite import ALL_PEERS, RESULTS, Options


def _csv(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="the whole comparison (latency per peer, concurrency ramp, engine probe)")
    run.add_argument("--replies", type=int, default=None, help="first N corpus replies (default: all)")
    run.add_argument("--rate", type=float, default=70.0, help="LLM tokens per second (default 70)")
    run.add_argument("--sessions", type=int, default=1, help="concurrent sessions in the latency run (servers; default 1)")
    run.add_argument("--peers", type=_csv, default=ALL_PEERS, help=f"comma-separated (default: {','.join(ALL_PEERS)})")
    run.add_argument("--ramp-peers", type=_csv, default=("voice-bridge", "naive"), help="servers to ramp (default: voice-bridge,naive)")
    run.add_argument("--no-ramp", action="store_true", help="skip the concurrency ramp")
    run.add_argument("--ramp-max", type=int, default=16, help="highest level of the ramp (default 16)")
    run.add_argument(
        "--ramp-levels",
        type=lambda text: [int(n) for n in text.split(",") if n.strip()],
        default=None,
        help="run exactly these levels (comma-separated, e.g. 12,12,12 or 18), no stop rule",
    )
    run.add_argument("--ramp-utterances", type=int, default=2, help="utterances per session at each level (default 2)")
    run.add_argument("--stagger-ms", type=float, default=0.0, help="start ramp sessions this far apart (default 0: together)")
    run.add_argument("--prebuffer-ms", type=float, default=0.0, help="listener's jitter buffer before playback starts (default 0)")
    run.add_argument("--probe-repeats", type=int, default=5, help="engine-probe timings per text, best kept (default 5)")
    run.add_argument("--wer", action="store_true", help="also transcribe every utterance with the offline Whisper model")
    run.add_argument("--gpu", action="store_true", help="add voice-bridge-gpu: --tts soprano --device cuda (skips without CUDA)")
    run.add_argument("--gpu-voice", default=None, help="RVC voice for the GPU run (--voice)")
    run.add_argument("--rvc-models", type=Path, default=None, help="models dir with an RVC voice (python -m benchmarks.rvc_models DIR)")
    run.add_argument("--soprano-model", type=Path, default=None, help="a Soprano model folder: adds voice-bridge-soprano, this project on Soprano on the CPU")
    run.add_argument("--rvc-voice", default=None, help="with --rvc-models: add voice-bridge-rvc, this project speaking in that voice")
    run.add_argument("--realtimetts-python", default=None, help="python of the RealtimeTTS venv (setup_realtimetts.sh)")
    run.add_argument("--name", default="compare", help="results file name: <date>-<name>.json/.md/.png")
    run.add_argument("--note", default=None, help="a line printed under the tables (e.g. 'shared machine')")
    run.add_argument("--out-dir", type=Path, default=RESULTS)
    run.add_argument("--quick", action="store_true", help="6 replies, ramp to 4, 1 utterance per level, 1 probe repeat")

    readme = sub.add_parser("readme", help="render the README block from a results JSON")
    readme.add_argument("result", nargs="?", type=Path, help="results JSON (default: the newest in benchmarks/results)")
    readme.add_argument("--update", type=Path, default=None, help="rewrite this README between the bench markers")

    render = sub.add_parser("render", help="write the Markdown and PNGs again from a results JSON")
    render.add_argument("result", type=Path)
    render.add_argument("--note", default=None, help="replace the note printed under the tables")

    probe = sub.add_parser("probe", help="measure the engine probe again for a results JSON (overhead figures)")
    probe.add_argument("result", type=Path)
    probe.add_argument("--repeats", type=int, default=5)

    sub.add_parser("tune", help="fast-path tuning sweep", add_help=False)
    return parser


def options_from(args: argparse.Namespace) -> Options:
    options = Options(
        replies=args.replies,
        rate=args.rate,
        sessions=args.sessions,
        peers=args.peers,
        ramp_peers=() if args.no_ramp else args.ramp_peers,
        ramp_max=args.ramp_max,
        ramp_levels=args.ramp_levels,
        ramp_utterances=args.ramp_utterances,
        stagger_ms=args.stagger_ms,
        prebuffer_ms=args.prebuffer_ms,
        probe_repeats=args.probe_repeats,
        wer=args.wer,
        gpu=args.gpu,
        gpu_voice=args.gpu_voice,
        rvc_models=args.rvc_models,
        rvc_voice=args.rvc_voice,
        soprano_model=args.soprano_model,
        realtimetts_python=args.realtimetts_python,
        name=args.name,
        note=args.note,
        out_dir=args.out_dir,
    )
    if args.quick:
        options.replies = args.replies or 6
        options.ramp_max = min(options.ramp_max, 4)
        options.ramp_utterances = 1
        options.probe_repeats = 1
    unknown = [p for p in (*options.peers, *options.ramp_peers) if p not in (*ALL_PEERS, "voice-bridge-gpu", "voice-bridge-rvc", "voice-bridge-soprano")]
    if unknown:
        raise SystemExit(f"unknown peer(s): {', '.join(unknown)} (known: {', '.join(ALL_PEERS)})")
    if bool(options.rvc_models) != bool(options.rvc_voice):
        raise SystemExit("--rvc-models and --rvc-voice go together")
    if options.rvc_models and not (Path(options.rvc_models) / "voices" / str(options.rvc_voice)).is_dir():
        raise SystemExit(f"no voice {options.rvc_voice!r} in {options.rvc_models}/voices (python -m benchmarks.rvc_models)")
    if options.soprano_model and not (Path(options.soprano_model) / "config.json").is_file():
        raise SystemExit(f"no Soprano model in {options.soprano_model} (python -m benchmarks.soprano_bench builds one)")
    if options.rate <= 0:
        raise SystemExit("--rate must be positive")
    if options.sessions < 1:
        raise SystemExit("--sessions must be at least 1")
    return options


def newest_result(directory: Path = RESULTS) -> Path:
    """The newest run with the default name (``<date>-compare.json``: the full comparison),
    else the newest comparison of any name."""
    candidates = sorted(p for p in directory.glob("*.json") if json.loads(p.read_text()).get("benchmark") == "compare")
    default_named = [p for p in candidates if p.stem.endswith("-compare")]
    candidates = default_named or candidates
    if not candidates:
        raise SystemExit(f"no comparison results in {directory}: run `python -m benchmarks run` first")
    return candidates[-1]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["tune"]:
        from benchmarks.tune_fast_path import main as tune_main

        return tune_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "run":
        from benchmarks.report import latency_table
        from benchmarks.suite import console, run_suite

        payload, stem = asyncio.run(run_suite(options_from(args)))
        console.print("\n".join(latency_table(payload)))
        written = [p.name for p in (Path(f"{stem}.json"), Path(f"{stem}.md"), Path(f"{stem}-ftts.png"), Path(f"{stem}-ramp.png")) if p.exists()]
        console.print(f"results in {stem.parent}: {', '.join(written)}")
        return 0
    if args.command == "probe":
        from benchmarks.suite import reprobe

        print(reprobe(args.result, args.repeats))
        return 0
    if args.command == "render":
        from benchmarks.report import write_reports

        payload = json.loads(args.result.read_text())
        if args.note is not None:
            payload["note"] = args.note
            args.result.write_text(json.dumps(payload, indent=1) + "\n")
        stem = args.result.with_suffix("")
        print(", ".join(str(p) for p in write_reports(payload, stem)))
        return 0
    if args.command == "readme":
        from benchmarks.report import readme_with_block, render_readme_block

        path = args.result or newest_result()
        block = render_readme_block(json.loads(path.read_text()), f"details: `benchmarks/results/{path.stem}.md`")
        if args.update:
            args.update.write_text(readme_with_block(args.update.read_text(encoding="utf-8"), block), encoding="utf-8")
        else:
            sys.stdout.write(block)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
