"""Runs one candidate text normalizer over the normalization corpus; prints JSON.

Meant to run inside the candidate's own virtual environment (NeMo and WeTextProcessing pull
pynini, ~0.7-1.1 GB, which stays out of the bridge's), so it imports nothing from this
repository: ``python benchmarks/normalize_driver.py nemo tests/data/normalize/corpus.tsv``.
Output: ``{"candidate", "init_seconds", "outputs": [...], "seconds": [...]}`` (per segment).
"""

from __future__ import annotations

import json
import sys
import time


def load(candidate: str, cache_dir: str | None):  # type: ignore[no-untyped-def]
    if candidate == "nemo":
        from nemo_text_processing.text_normalization.normalize import Normalizer

        normalizer = Normalizer(input_case="cased", lang="en", cache_dir=cache_dir)
        return lambda text: normalizer.normalize(text, punct_post_process=True)
    if candidate == "wetext":
        from tn.english.normalizer import Normalizer  # WeTextProcessing's English TN

        normalizer = Normalizer(cache_dir=cache_dir) if cache_dir else Normalizer()
        return normalizer.normalize
    raise SystemExit(f"unknown candidate {candidate!r}")


def main(argv: list[str]) -> int:
    candidate, corpus = argv[0], argv[1]
    cache_dir = argv[2] if len(argv) > 2 else None
    inputs = []
    with open(corpus, encoding="utf-8") as handle:
        for line in handle:
            if line.strip() and not line.startswith("#"):
                inputs.append(line.rstrip("\n").split("\t")[1])
    started = time.perf_counter()
    normalize = load(candidate, cache_dir)
    init = time.perf_counter() - started
    outputs, seconds = [], []
    for text in inputs:
        t0 = time.perf_counter()
        try:
            out = normalize(text)
        except Exception as exc:  # noqa: BLE001 - a candidate's failure is a result
            out = f"<error {type(exc).__name__}>"
        seconds.append(time.perf_counter() - t0)
        outputs.append(out)
    json.dump({"candidate": candidate, "init_seconds": init, "outputs": outputs, "seconds": seconds}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
