"""Kept for old commands: ``python -m benchmarks.ftts`` = the latency comparison of the two
servers without the ramp. The whole suite is ``python -m benchmarks run`` (benchmarks/README.md)."""

from __future__ import annotations

import sys

from benchmarks.__main__ import main as bench_main


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    return bench_main(["run", "--peers", "voice-bridge,naive", "--no-ramp", "--name", "ftts", *args])


if __name__ == "__main__":
    sys.exit(main())
