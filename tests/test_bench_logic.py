"""The benchmark harness's own logic: token splitting, the playback model, percentiles."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.naive_server import naive_cuts
from benchmarks.playback import simulate_playback
from benchmarks.stats import percentile, summary_ms
from benchmarks.tokens import llm_tokens, load_corpus
from benchmarks.wer import word_errors


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


def test_playback_without_gaps() -> None:
    # 20 ms frames arriving every 10 ms: never runs dry.
    arrivals = [(i * 0.01, 960) for i in range(100)]
    report = simulate_playback(arrivals)
    assert (report.underruns, report.underrun_ms) == (0, 0.0)
    assert report.audio_seconds == pytest.approx(2.0)


def test_playback_counts_a_stall() -> None:
    # 0.5 s of audio at t=0, the next frame only at t=0.8: one 300 ms underrun.
    arrivals = [(0.0, 24000), (0.8, 960), (0.81, 960)]
    report = simulate_playback(arrivals)
    assert report.underruns == 1 and report.underrun_ms == pytest.approx(300.0, abs=0.5)


def test_playback_prebuffer_absorbs_jitter() -> None:
    arrivals = [(0.0, 960), (0.05, 960)]  # 30 ms late
    assert simulate_playback(arrivals).underruns == 1
    assert simulate_playback(arrivals, prebuffer_s=0.05).underruns == 0


def test_playback_ignores_sub_millisecond_timer_noise() -> None:
    arrivals = [(0.0, 960), (0.0205, 960)]
    assert simulate_playback(arrivals).underruns == 0


def test_percentiles() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert math.isnan(percentile([], 50))
    s = summary_ms([0.1] * 9 + [1.0])
    assert s["p50"] == 100.0 and s["max"] == 1000.0 and s["n"] == 10


def test_naive_cutter_cuts_like_the_seed() -> None:
    assert naive_cuts("Sure! I can") == (["Sure!"], " I can")
    assert naive_cuts("It costs $3.") == (["It costs $3."], "")  # the seed's known price bug
    long = "word " * 50
    segments, rest = naive_cuts(long)
    assert segments and len(segments[0]) == 200


def test_word_errors_normalise_both_sides() -> None:
    assert word_errors("Hello, World!", "hello world") == (0, 2)
    assert word_errors("one two three", "one too three four") == (2, 3)
    assert word_errors("a b", "") == (2, 2)


def test_a_one_letter_tail_joins_the_piece_before_it() -> None:
    # 9 letters → "brea" "kfas" "t": the "t" joins "kfas" (it once landed on the wrong piece,
    # turning "breakfast" into "kfastkfas" in every replay).
    assert llm_tokens(" breakfast") == [" brea", "kfast"]
    assert "".join(llm_tokens("AAAAAAAAB")) == "AAAAAAAAB"
