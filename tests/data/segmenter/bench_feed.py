"""Quick timing of Segmenter.feed (not a test): a ~2 000-character reply fed in 2-char tokens.

    PYTHONPATH=. python tests/data/segmenter/bench_feed.py
"""

from __future__ import annotations

import time

from bridge.segmenter import Segmenter

PROSE = (
    "Sure, I can help with that. The hotel on Main Street has rooms from $249.99 per night, "
    "which is about 40.5% less than last year. Dr. Smith said the U.S. office opens at 7:45 a.m. "
    "on weekdays, e.g. Monday to Friday. You can email john.doe@example.com or visit "
    "example.com for details. Version v2.0.1 fixed the booking bug! Is breakfast included? Yes, "
    "it is, and so is parking. "
)
MARKDOWN = (
    "## Options\n\n1. **Basic** room: $99 per night.\n2. *Deluxe* room with a view.\n"
    "- See [the docs](https://example.com/docs?x=1) or https://www.example.com/a/b.\n"
    "| Plan | Price |\n|---|---|\n| Basic | $5 |\n\n```python\nprint('hi')\n```\n"
    "Enjoy your stay! 🎉 Use `code` here.\n\n"
)


def bench(text: str, size: int = 2, repeat: int = 50) -> float:
    tokens = [text[i : i + size] for i in range(0, len(text), size)]
    best = float("inf")
    for _ in range(repeat):
        seg = Segmenter()
        t0 = time.perf_counter()
        for tok in tokens:
            seg.feed(tok)
        seg.flush()
        best = min(best, time.perf_counter() - t0)
    return best


if __name__ == "__main__":
    for name, unit in (("prose", PROSE), ("markdown", MARKDOWN)):
        text = (unit * (2000 // len(unit) + 1))[:2000]
        for size in (1, 2, 4):
            ms = bench(text, size) * 1e3
            print(f"{name:9s} {len(text)} chars, {size}-char tokens: {ms:6.2f} ms "
                  f"({ms * 1e3 / (len(text) / size):.2f} us/feed)")
