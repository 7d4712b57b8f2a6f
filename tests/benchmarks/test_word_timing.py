"""The word timing benchmark's own logic: matching words with the judge's, the error figures,
the verdict, and where each segment's audio and sound lie in the stream. No models."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.word_timing import (
    Comparison,
    SegmentAudio,
    TimedWord,
    compare,
    error_summary,
    match_key,
    match_words,
    render,
    segment_audio,
    sound_bounds,
    summarize,
    verdict,
    word_events,
)


def test_match_key_keeps_letters_and_digits_lower_case() -> None:
    assert match_key("Hello,") == "hello"
    assert match_key("$3.14") == "314"
    assert match_key("p.m.") == "pm"
    assert match_key("Luigi's") == "luigis"
    assert match_key("--") == ""
    assert match_key("Ça") == "ça"


def test_match_words_pairs_same_words_across_punctuation_and_case() -> None:
    ours = ["Sure!", "I've", "booked", "a", "table."]
    judge = ["Sure,", "i've", "booked", "a", "table"]
    assert match_words(ours, judge) == [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)]


def test_match_words_skips_misheard_and_inserted_words_and_keeps_order() -> None:
    ours = ["The", "Grand", "is", "$189", "a", "night."]
    judge = ["The", "grande", "is", "$189", "uh", "a", "night"]
    assert match_words(ours, judge) == [(0, 0), (2, 2), (3, 3), (4, 5), (5, 6)]


def test_match_words_ignores_words_without_letters_or_digits() -> None:
    ours = ["of", "the", "people", "--", "by", "the", "people."]
    judge = ["of", "the", "people,", "by", "the", "people."]
    assert match_words(ours, judge) == [(0, 0), (1, 1), (2, 2), (4, 3), (5, 4), (6, 5)]


def test_match_words_of_nothing_is_nothing() -> None:
    assert match_words([], ["hello"]) == []
    assert match_words(["hello"], []) == []


def test_compare_gives_signed_start_errors_of_matched_words_only() -> None:
    ours = [TimedWord("Hello", 0.10), TimedWord("there,", 0.50), TimedWord("friend.", 0.90)]
    judge = [TimedWord("Hello", 0.14), TimedWord("fiend", 0.80)]
    result = compare(ours, judge)
    assert result.matched == 1
    assert result.errors == pytest.approx((-0.04,))
    assert (result.words, result.judge_words) == (3, 2)


def test_error_summary_pools_all_words_and_takes_absolute_median_and_p90() -> None:
    first = Comparison((0.010, -0.030), words=3, judge_words=2)
    second = Comparison((0.020, -0.040, 0.100), words=3, judge_words=3)
    summary = error_summary([first, second])
    assert summary["matched"] == 5
    assert summary["words"] == 6
    assert summary["matched_share"] == pytest.approx(5 / 6, abs=1e-3)
    assert summary["median_abs_ms"] == pytest.approx(30.0)
    # |errors| = 10, 20, 30, 40, 100 ms: p90 by linear interpolation = 40 + 0.6 * 60
    assert summary["p90_abs_ms"] == pytest.approx(76.0)
    assert summary["median_signed_ms"] == pytest.approx(10.0)


def test_error_summary_without_words_is_nan_not_zero() -> None:
    summary = error_summary([Comparison((), words=0, judge_words=4)])
    assert summary["matched"] == 0
    assert summary["matched_share"] == 0.0
    assert math.isnan(summary["median_abs_ms"])


@pytest.mark.parametrize(
    ("streamed", "within"),
    [((70.0, 170.0), True), ((70.1, 150.0), False), ((60.0, 170.1), False), ((40.0, 100.0), True)],
)
def test_verdict_compares_with_bare_piper_by_the_issues_margins(streamed: tuple[float, float], within: bool) -> None:
    bare = {"median_abs_ms": 55.0, "p90_abs_ms": 140.0}
    result = verdict({"median_abs_ms": streamed[0], "p90_abs_ms": streamed[1]}, bare)
    assert result["within_target"] is within
    assert result["median_excess_ms"] == pytest.approx(streamed[0] - 55.0)
    assert result["p90_excess_ms"] == pytest.approx(streamed[1] - 140.0)


def test_summarize_reads_rows_per_method() -> None:
    row = {
        "streamed": {"words": 2, "matched": 2, "errors_ms": [10.0, -20.0]},
        "bare_piper": {"words": 2, "matched": 1, "errors_ms": [5.0]},
        "estimate_on_piper": {"words": 2, "matched": 2, "errors_ms": [100.0, 300.0]},
    }
    summary = summarize([row, row])
    assert summary["streamed"]["median_abs_ms"] == pytest.approx(15.0)
    assert summary["bare_piper"]["matched"] == 2
    assert summary["bare_piper"]["matched_share"] == pytest.approx(0.5)
    assert summary["estimate_on_piper"]["median_abs_ms"] == pytest.approx(200.0)
    assert summary["verdict"]["median_excess_ms"] == pytest.approx(10.0)


def test_segment_audio_runs_from_each_announcement_to_the_next() -> None:
    events = [
        (0, {"type": "segment", "id": 0, "text": "Hello there!"}),
        (0, {"type": "words", "segment": 0, "words": []}),
        (4800, {"type": "segment", "id": 1, "text": "How are you?"}),
        (9600, {"type": "flushed"}),
    ]
    assert segment_audio(events, 12000) == [
        SegmentAudio(0, "Hello there!", 0, 4800),
        SegmentAudio(1, "How are you?", 4800, 12000),
    ]


def test_word_events_flatten_in_order() -> None:
    events = [
        (0, {"type": "segment", "id": 0, "text": "Hi you"}),
        (0, {"type": "words", "segment": 0, "words": [{"text": "Hi", "start": 0.1, "end": 0.2}]}),
        (10, {"type": "words", "segment": 0, "words": [{"text": "you", "start": 0.25, "end": 0.4, "estimated": True}]}),
    ]
    assert word_events(events) == [TimedWord("Hi", 0.1), TimedWord("you", 0.25)]


def test_sound_bounds_finds_first_and_last_loud_sample() -> None:
    audio = np.zeros(100, np.float32)
    audio[10] = 0.5
    audio[60] = -0.01
    audio[80] = 0.001  # below the threshold
    assert sound_bounds(audio, 0.002) == (10, 61)
    assert sound_bounds(np.full(5, 0.001, np.float32), 0.002) is None


def test_render_states_the_verdict_the_judges_error_and_the_soprano_stand_in() -> None:
    row = {
        "segments": 2,
        "audio_seconds": 3.0,
        "streamed": {"words": 2, "matched": 2, "errors_ms": [10.0, -20.0]},
        "bare_piper": {"words": 2, "matched": 2, "errors_ms": [5.0, 10.0]},
        "estimate_on_piper": {"words": 2, "matched": 2, "errors_ms": [100.0, 300.0]},
    }
    payload = {"date": "2026-12-03", "machine": "test machine", "replies": 1, "rate": 70.0, "png": "x.png",
               "rows": [row], "summary": summarize([row])}  # fmt: skip
    text = render(payload)
    assert "| streamed word events (server, Piper alignment) | 2/2 (100%) | 15 ms | 19 ms | -5 ms |" in text
    assert "| bare Piper's own alignment (the judge's own error) | 2/2 (100%) | 8 ms | 10 ms | +8 ms |" in text
    assert "+7.5 ms at the median" in text and "within the target" in text and "NOT" not in text
    assert "Soprano stand-in" in text and "no real Soprano weights" in text
    assert "![start error distributions](x.png)" in text
