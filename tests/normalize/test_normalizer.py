"""bridge.normalize: segments → the words a person would say, with a map back to the original."""

from __future__ import annotations

import re

import pytest

from benchmarks.normalize_bench import load_cases as load_corpus
from bridge.normalize import Normalizer, NormalizerConfig, normalizer_for, segment_notes
from bridge.segmenter import Segmenter, SegmenterConfig
from tests.test_segmenter import CORPUS as SEGMENTER_CORPUS
from tests.test_segmenter import run as run_segmenter
from tests.test_segmenter import wordpiece_tokens

CASES = load_corpus()
NORMALIZE = Normalizer()


@pytest.mark.parametrize(("kind", "text", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_corpus(kind: str, text: str, expected: str) -> None:
    assert NORMALIZE(text).spoken == expected


def test_corpus_covers_every_class() -> None:
    kinds = {kind for kind, _, _ in CASES}
    assert len(CASES) >= 150
    assert {"money", "percent", "time", "date", "year", "ordinal", "fraction", "range", "unit", "phone",
            "version", "title", "abbreviation", "symbol", "period", "foreign", "plain"} <= kinds  # fmt: skip


def test_spoken_text_has_no_digits_or_symbols_left() -> None:
    for kind, text, _ in CASES:
        spoken = NORMALIZE(text).spoken
        if kind != "plain":
            assert not re.search(r"[0-9$€£¥%&@#°½¼¾=]", spoken), (text, spoken)


@pytest.mark.parametrize("seed", [0, 1])
def test_corpus_streamed_through_the_segmenter(seed: int) -> None:
    """Fed as LLM tokens, cut by the segmenter (fast path on), each segment normalized alone:
    the same words as the whole sentence. The segmenter never cuts inside a span."""
    for _, text, expected in CASES:
        segments = run_segmenter(wordpiece_tokens(text, seed), SegmenterConfig())
        spoken = " ".join(NORMALIZE(str(s)).spoken for s in segments)
        assert spoken == expected, (text, [str(s) for s in segments])


@pytest.mark.parametrize("case", [c for c in SEGMENTER_CORPUS if c[2]], ids=lambda c: c[0])
def test_segmenter_corpus_reads_the_same_per_segment(case: tuple) -> None:
    """The segmenter's own corpus (prices, versions, times, titles it protects): normalizing
    segment by segment says what normalizing the whole text says."""
    name, text, expected, never_split = case
    segments = [s for s, _ in expected]
    whole = NORMALIZE(" ".join(segments)).spoken
    assert " ".join(NORMALIZE(s).spoken for s in segments) == whole
    for protected in never_split:
        assert any(protected in s for s in segments)


# ------------------------------------------------------------------------------ fast path
def test_nothing_to_normalize_returns_the_text_unchanged() -> None:
    text = "Hello there, how are you today?"
    result = NORMALIZE(text)
    assert result.spoken is text and result.rewrites == () and not result.changed


def test_off_leaves_everything() -> None:
    off = Normalizer(NormalizerConfig(enabled=False))
    assert off("It costs $3.14.").spoken == "It costs $3.14."


# ------------------------------------------------------------------------------ span map
def test_span_map_names_the_original_of_each_spoken_word() -> None:
    text = "Dr. Patel paid $3.14 on Jan. 5th."
    result = NORMALIZE(text)
    assert result.spoken == "Doctor Patel paid three dollars and fourteen cents on January fifth."
    spans = {(r.kind, r.original, r.spoken) for r in result.rewrites}
    assert spans == {
        ("title", "Dr.", "Doctor"),
        ("money", "$3.14", "three dollars and fourteen cents"),
        ("date", "Jan. 5th", "January fifth"),
    }
    for rewrite in result.rewrites:
        assert text[rewrite.start : rewrite.end] == rewrite.original
        assert result.spoken[rewrite.spoken_start : rewrite.spoken_end] == rewrite.spoken
    # A word inside a rewrite maps to the whole original span; copied words map one to one.
    word = result.spoken.index("fourteen")
    assert result.original_span(word, word + len("fourteen")) == (text.index("$3.14"), text.index("$3.14") + 5)
    paid = result.spoken.index("paid")
    assert result.original_span(paid, paid + 4) == (text.index("paid"), text.index("paid") + 4)
    on = result.spoken.index(" on ") + 1
    assert text[slice(*result.original_span(on, on + 2))] == "on"


def test_glued_symbol_gets_spaces() -> None:
    result = NORMALIZE("AT&T")
    assert result.spoken == "AT and T"
    assert [r.original for r in result.rewrites] == ["&"]


# ------------------------------------------------------------------------------ settings
def test_date_order_dmy() -> None:
    dmy = Normalizer(NormalizerConfig(date_order="dmy"))
    assert dmy("Due 03/12/2026.").spoken == "Due the third of December twenty twenty six."
    assert dmy("It was 2026-12-03.").spoken == "It was the third of December twenty twenty six."
    assert NORMALIZE("Due 03/12/2026.").spoken == "Due March twelfth twenty twenty six."
    # A date that only reads one way is read that way in either order.
    assert dmy("Due 12/25/2026.").spoken == "Due the twenty fifth of December twenty twenty six."


def test_lexicon_replaces_whole_words_ignoring_case_first() -> None:
    lexicon = Normalizer(NormalizerConfig(lexicon={"Miku": "Mee koo", "GIF": "jif", "Dr. Who": "Doctor Who"}))
    result = lexicon("miku sent a GIF to Dr. Who and Mikuru.")
    assert result.spoken == "Mee koo sent a jif to Doctor Who and Mikuru."
    assert [r.kind for r in result.rewrites] == ["lexicon", "lexicon", "lexicon"]


def test_skip_mode_leaves_foreign_text_out_and_says_so() -> None:
    skip = Normalizer(NormalizerConfig(foreign_text="skip"))
    result = skip("こんにちは！元気ですか？ I am fine.")
    assert result.spoken.strip() == "I am fine."
    assert segment_notes(result) == {"skipped": [{"text": "こんにちは！元気ですか？"}]}
    assert skip("こんにちは。").spoken == ""


def test_transliterate_mode_says_what_was_romanized() -> None:
    result = NORMALIZE("She said Привет to me.")
    assert segment_notes(result) == {"transliterated": [{"text": "Привет", "as": "Privet"}]}
    assert segment_notes(NORMALIZE("It costs $5.")) == {}


def test_a_voice_that_reads_the_script_gets_it_unchanged() -> None:
    russian = Normalizer(NormalizerConfig(languages=("ru",)))
    assert russian("Привет, как дела? $5").spoken == "Привет, как дела? $5"  # no English rules either
    japanese = Normalizer(NormalizerConfig(languages=("ja",)))
    assert japanese("こんにちは").spoken == "こんにちは"


def test_normalizer_for_is_shared_per_settings() -> None:
    a = normalizer_for(enabled=True, date_order="mdy", foreign_text="skip", lexicon={"a": "b"}, languages=("en",))
    b = normalizer_for(enabled=True, date_order="mdy", foreign_text="skip", lexicon={"a": "b"}, languages=("en",))
    c = normalizer_for(enabled=True, date_order="dmy", foreign_text="skip", lexicon={"a": "b"}, languages=("en",))
    assert a is b and a is not c


@pytest.mark.parametrize(
    "text",
    ["I said no. Then I left.", "The Sun.", "Version 10 of 12", "A.", "$", "5.", "..", "-", "3:", "12/", "Dr.", "$5-"],
)
def test_odd_input_never_raises(text: str) -> None:
    result = NORMALIZE(text)
    assert isinstance(result.spoken, str)


def test_idempotent_on_its_own_output() -> None:
    for _, text, _ in CASES:
        once = NORMALIZE(text).spoken
        assert NORMALIZE(once).spoken == once, text


def test_segmenter_splits_do_not_matter_for_a_long_reply() -> None:
    text = " ".join(t for _, t, _ in CASES[:40])
    segments = Segmenter(SegmenterConfig()).feed(text) + Segmenter(SegmenterConfig()).flush()
    assert segments == [] or all(isinstance(NORMALIZE(str(s)).spoken, str) for s in segments)


def test_phone_number_with_spaces() -> None:
    # Whole in one segment only when short enough for the first fragment; read right when whole.
    assert NORMALIZE("Call +1 555 123 4567 now.").spoken == (
        "Call plus one, five five five, one two three, four five six seven now."
    )
