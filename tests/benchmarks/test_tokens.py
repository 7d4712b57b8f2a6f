"""benchmarks/tokens.py: the LLM-like token splitter and the reply corpus it ships."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from benchmarks.tokens import llm_tokens, load_corpus

REPO = Path(__file__).resolve().parents[2]


@given(st.text(max_size=300))
def test_tokens_rejoin_to_the_text(text: str) -> None:
    assert "".join(llm_tokens(text)) == text


def test_tokens_look_like_llm_word_pieces() -> None:
    tokens = llm_tokens("Sure! The reservation costs $1,284.56 tonight.")
    assert tokens[:3] == ["Sure", "!", " The"]
    assert tokens[3:6] == [" rese", "rvat", "ion"]  # a long word in pieces, the first keeps the space
    assert [" $", "1", ",", "284", ".", "56"] == tokens[tokens.index(" $") : tokens.index(" $") + 6]


def test_corpus_ships_enough_varied_replies() -> None:
    corpus = load_corpus()
    assert len(corpus) >= 50
    assert {"booking", "food", "sports", "directions", "numbers", "abbreviations", "markdown"} <= {r.topic for r in corpus}
    ratio = sum(len(llm_tokens(r.text)) for r in corpus) / sum(len(r.text.split()) for r in corpus)
    assert 1.1 < ratio < 1.8  # tokens per word, as BPE models stream English


def test_benchmarks_readme_describes_the_corpus_it_ships() -> None:
    # The README's description of the corpus went stale once (54 replies for 62): it is checked.
    import re

    corpus = load_corpus()
    text = (REPO / "benchmarks" / "README.md").read_text(encoding="utf-8")
    described = re.search(r"`corpus\.jsonl`, (\d+) assistant replies \(.*?\), about (\d+) words each", text, re.S)
    assert described is not None, "benchmarks/README.md no longer describes corpus.jsonl"
    assert int(described.group(1)) == len(corpus)
    mean_words = sum(len(r.text.split()) for r in corpus) / len(corpus)
    assert abs(int(described.group(2)) - mean_words) <= 5
