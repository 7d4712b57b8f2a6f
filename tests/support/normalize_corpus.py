"""The normalizer's corpus (tests/data/normalize/corpus.tsv): class, input, expected spoken words."""

from __future__ import annotations

from pathlib import Path

CORPUS_FILE = Path(__file__).parents[1] / "data" / "normalize" / "corpus.tsv"


def load_corpus() -> list[tuple[str, str, str]]:
    """(class, input, expected) rows of the corpus file."""
    rows = []
    for line in CORPUS_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            kind, text, expected = line.split("\t")
            rows.append((kind, text, expected))
    return rows
