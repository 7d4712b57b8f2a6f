"""bridge/words.py: spoken words' times → the segment's written words; the estimate rule; heard."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.normalize import NormalizedText, Normalizer, Rewrite
from bridge.words import (
    HeardTracker,
    SegmentWords,
    TimedSpan,
    WordTime,
    estimate_spoken_words,
    heard_text,
    heard_words,
    word_spans,
)
from tests.support.property_budget import examples


def timed(text: str, times: list[tuple[float, float]]) -> list[TimedSpan]:
    """The words of ``text`` with the given times, in order."""
    return [TimedSpan(a, b, s, e) for (a, b), (s, e) in zip(word_spans(text), times, strict=True)]


def test_plain_text_is_timed_word_for_word_with_its_punctuation():
    words = SegmentWords(NormalizedText("Hello there, friend.", "Hello there, friend."), offset=1.0)
    out = words.add(timed("Hello there, friend.", [(0.0, 0.2), (0.3, 0.5), (0.6, 0.9)]))
    assert out == [WordTime("Hello", 1.0, 1.2), WordTime("there,", 1.3, 1.5), WordTime("friend.", 1.6, 1.9)]
    assert words.done
    assert words.finish() == []


def test_a_rewritten_word_covers_everything_said_for_it():
    normalized = Normalizer()("It costs $3.14 today.")
    assert normalized.spoken == "It costs three dollars and fourteen cents today."
    spoken = word_spans(normalized.spoken)
    words = SegmentWords(normalized)
    times = [(i * 1.0, i * 1.0 + 0.5) for i in range(len(spoken))]
    out = words.add(timed(normalized.spoken, times))
    assert [w.text for w in out] == ["It", "costs", "$3.14", "today."]
    money = out[2]
    assert (money.start, money.end) == (2.0, 6.5)  # "three" starts it, "cents" ends it
    assert out[3] == WordTime("today.", 7.0, 7.5)


def test_a_written_word_waits_until_all_its_spoken_words_are_timed():
    normalized = Normalizer()("Pay $3.14 now")
    words = SegmentWords(normalized)
    spans = timed(normalized.spoken, [(i, i + 0.5) for i in range(len(word_spans(normalized.spoken)))])
    first = words.add(spans[:3])  # "Pay three dollars": $3.14 is not complete
    assert [w.text for w in first] == ["Pay"]
    rest = words.add(spans[3:])
    assert [w.text for w in rest] == ["$3.14", "now"]


def test_words_nothing_was_said_for_last_nothing_where_the_word_before_ended():
    normalized = Normalizer()("Hi -- there")
    words = SegmentWords(normalized)
    out = words.add(timed(normalized.spoken, [(0.0, 0.2), (0.2, 0.2), (0.4, 0.6)]))
    assert out == [WordTime("Hi", 0.0, 0.2), WordTime("--", 0.2, 0.2), WordTime("there", 0.4, 0.6)]


def test_skipped_text_is_still_a_word_and_finish_places_the_untimed():
    # The middle word said as nothing (as foreign text skipped is).
    normalized = NormalizedText("a ■ b", "a  b", (Rewrite("skipped", 2, 3, 2, 2, "■", ""),))
    words = SegmentWords(normalized)
    assert words.add([TimedSpan(0, 1, 0.0, 0.1)]) == [WordTime("a", 0.0, 0.1)]
    assert words.finish() == [WordTime("■", 0.1, 0.1), WordTime("b", 0.1, 0.1)]  # "b" never came
    words = SegmentWords(normalized)
    assert words.add([TimedSpan(0, 1, 0.0, 0.1), TimedSpan(3, 4, 0.2, 0.3)]) == [
        WordTime("a", 0.0, 0.1),
        WordTime("■", 0.1, 0.1),
        WordTime("b", 0.2, 0.3),
    ]
    assert words.done


def test_estimated_times_are_marked():
    words = SegmentWords(NormalizedText("one two", "one two"))
    out = words.add(estimate_spoken_words("one two", 0.0, 1.0), estimated=True)
    assert all(w.estimated for w in out)
    assert out[0].as_json() == {"text": "one", "start": 0.0, "end": 0.5, "estimated": True}


def test_the_estimate_shares_the_sound_by_letters_and_digits():
    spans = estimate_spoken_words("I am 420, -- okay", 1.0, 2.0)
    lengths = [round(s.end - s.start, 6) for s in spans]
    assert lengths == [0.1, 0.2, 0.3, 0.0, 0.4]  # 1 + 2 + 3 + 0 + 4 letters and digits of 10
    assert spans[0].start == 1.0 and spans[-1].end == pytest.approx(2.0)
    assert estimate_spoken_words("a b c", 0.0, 3.0, after=1)[0].start_char == 2


def test_wire_form_rounds_to_milliseconds():
    assert WordTime("Hi", 1.23449, 1.5).as_json() == {"text": "Hi", "start": 1.234, "end": 1.5}


def test_heard_counts_a_word_when_its_start_was_played():
    words = [WordTime("a", 0.0, 0.2), WordTime("b", 0.3, 0.5), WordTime("c", 0.5, 0.7)]
    assert heard_text(words, 0.3) == "a"
    assert heard_text(words, 0.31) == "a b"
    assert heard_words(words, 0.0) == []
    assert heard_text(words, 10) == "a b c"


def test_the_tracker_reports_what_was_sent_or_what_the_client_played():
    tracker = HeardTracker(48_000)
    assert not tracker.active
    tracker.words([WordTime("a", 0.0, 0.2), WordTime("b", 0.3, 0.5)])
    tracker.audio(48_000 // 4)  # 0.25 s sent
    assert tracker.report() == {"heard": "a", "heard_seconds": 0.25}
    tracker.audio(48_000)
    assert tracker.report() == {"heard": "a b", "heard_seconds": 1.25}
    assert tracker.report(0.1) == {"heard": "a", "heard_seconds": 0.1}
    assert tracker.report(9.0)["heard_seconds"] == 1.25  # never more than was sent
    tracker.reset()
    assert not tracker.active and tracker.report() == {"heard": "", "heard_seconds": 0.0}



def test_a_finished_utterance_is_what_a_cancel_reports_until_the_next_one_starts():
    # The client buffers: the server's flushed came, the listener is still playing, then cancels.
    tracker = HeardTracker(48_000)
    tracker.words([WordTime("a", 0.0, 0.2), WordTime("b", 0.3, 0.5), WordTime("c", 1.0, 1.2)])
    tracker.audio(48_000 * 2)
    tracker.finish()
    assert not tracker.active
    assert tracker.report(0.4) == {"heard": "a b", "heard_seconds": 0.4}
    assert tracker.report() == {"heard": "a b c", "heard_seconds": 2.0}
    tracker.audio(480)  # the next utterance started: the finished one is gone
    assert tracker.report() == {"heard": "", "heard_seconds": 0.01}
    tracker.finish()
    tracker.reset()  # a cancel's report was taken: nothing is kept
    assert tracker.report() == {"heard": "", "heard_seconds": 0.0}

_text = st.lists(
    st.sampled_from(["Hello", "$3.14", "--", "at", "3:45", "pm", "Dr.", "Smith,", "100%", "ok.", "e.g.", "Jan", "5"]),
    min_size=1,
    max_size=12,
).map(" ".join)


@settings(max_examples=examples(200), deadline=None)
@given(text=_text, data=st.data())
def test_every_written_word_once_in_order_monotonic(text: str, data: st.DataObject) -> None:
    normalized = Normalizer()(text)
    spoken = word_spans(normalized.spoken)
    durations = data.draw(st.lists(st.floats(0.0, 0.5), min_size=len(spoken), max_size=len(spoken)))
    times, at = [], 0.0
    for d in durations:
        times.append((at, at + d))
        at += d + 0.01
    spans = timed(normalized.spoken, times)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(spans)), max_size=3)))
    words = SegmentWords(normalized, offset=0.5)
    out: list[WordTime] = []
    last = 0
    for cut in [*cuts, len(spans)]:
        out += words.add(spans[last:cut])
        last = cut
    out += words.finish()
    assert [w.text for w in out] == text.split()
    starts = [w.start for w in out]
    assert starts == sorted(starts)
    assert all(w.end >= w.start for w in out)
    assert all(0.5 <= w.start and w.end <= at + 0.5 for w in out)


@settings(max_examples=examples(200), deadline=None)
@given(
    words=st.lists(st.text(alphabet="ab1,.-", min_size=1, max_size=6), min_size=1, max_size=10),
    start=st.floats(0.0, 100.0),
    length=st.floats(0.0, 10.0),
)
def test_the_estimate_covers_the_sound_in_order(words: list[str], start: float, length: float) -> None:
    text = " ".join(words)
    end = start + length
    spans = estimate_spoken_words(text, start, end)
    assert [(s.start_char, s.end_char) for s in spans] == word_spans(text)
    assert all(start <= s.start <= s.end <= end for s in spans)
    assert all(a.end == b.start for a, b in zip(spans, spans[1:]))
    if any(ch.isalnum() for ch in text) and length:
        assert spans[0].start == start and max(s.end for s in spans) == end
