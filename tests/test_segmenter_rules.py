"""One example per documented rule of bridge/segmenter.py (its module docstring and each
SegmenterConfig setting), each built so that the rule it names is the one that decides: the
other rules that could cut the same text first are kept out of the way. Written against
mutants that survived tests/test_segmenter.py (benchmarks/results/*-mutation.md)."""

from __future__ import annotations

import pytest

from bridge.segmenter import Boundary, Segment, Segmenter, SegmenterConfig

S, P, PA, W, F = Boundary.SENTENCE, Boundary.PARAGRAPH, Boundary.PAUSE, Boundary.WORD, Boundary.FLUSH
#: No fast path to speak of: the first segment is cut by the sentence, pause and length rules only.
SLOW = SegmenterConfig(first_max_words=99)


def segments(text: str | list[str], config: SegmenterConfig | None = None) -> list[tuple[str, Boundary]]:
    """The segments of ``text`` fed whole, and (the same, as the module promises) char by char."""
    pieces = [text] if isinstance(text, str) else text
    results = []
    for feed in (pieces, list("".join(pieces))):
        seg = Segmenter(config)
        out: list[Segment] = []
        for piece in feed:
            out += seg.feed(piece)
        out += seg.flush()
        results.append([(str(s), s.boundary) for s in out])
    assert results[0] == results[1]
    return results[0]


# ----------------------------------------------------------------------------- fast path
def test_fast_path_never_later_than_first_max_words_plus_two() -> None:
    # Title, then initials: each would make the fragment wait, but four words is the cap (2 + 2).
    assert segments("Call Dr. J. K. Rowling about it.")[0] == ("Call Dr. J. K.", W)
    one = SegmenterConfig(first_max_words=1)
    assert segments("To Dr. J. K. Rowling we write.", one)[0] == ("To Dr. J.", W)


def test_an_initial_is_clingy() -> None:
    assert segments("Ask J. Smith about it.")[0] == ("Ask J. Smith", W)
    assert segments("Ask K. Smith about it.")[0] == ("Ask K. Smith", W)
    assert segments("Ask Dr. Smith about it.")[0] == ("Ask Dr. Smith", W)  # a title, too
    assert segments("Ask Al. Smith about it.")[0] == ("Ask Al. Smith", W)  # "et al.": before a name too
    assert segments("Ask U.S. Army about it.")[0] == ("Ask U.S.", W)  # two letters: not an initial


@pytest.mark.parametrize("word", ["a", "an", "the", "my", "your", "our", "their", "its", "his", "her", "this", "every"])
def test_the_first_fragment_does_not_end_on_an_article_or_possessive(word: str) -> None:
    assert segments(f"Take {word} train home tonight.")[0] == (f"Take {word} train", W)


@pytest.mark.parametrize("word", ["In", "And", "It", "We", "Then"])
def test_a_lone_function_word_is_not_a_first_fragment(word: str) -> None:
    one = SegmenterConfig(first_max_words=1)
    assert segments(f"{word} Paris today we rest.", one)[0] == (f"{word} Paris", W)
    assert segments("Breakfast is at eight.", one)[0] == ("Breakfast", W)


def test_first_max_words_counts_complete_words() -> None:
    for n in (1, 2, 3, 4):
        words = "Breakfast lunch dinner snacks drinks coffee".split()
        assert segments(" ".join(words) + ".", SegmenterConfig(first_max_words=n))[0] == (" ".join(words[:n]), W)


def test_an_opener_makes_a_one_word_first_fragment_before_a_pause_mark() -> None:
    assert segments("Well, we could go.")[0] == ("Well,", PA)
    assert segments("Paris, we could go.", SegmenterConfig(first_max_words=5))[0] == ("Paris, we could go.", F)
    custom = SegmenterConfig(first_max_words=5, fast_openers=frozenset({"paris"}))
    assert segments("Paris, we could go.", custom)[0] == ("Paris,", PA)
    assert segments("Well, we could go.", custom)[0] == ("Well, we could go.", F)


def test_first_min_words_before_a_pause_mark() -> None:
    config = SegmenterConfig(first_min_words=3, first_max_words=9)
    assert segments("In Paris, you can walk, or cycle everywhere.", config)[:2] == [
        ("In Paris, you can walk,", PA), ("or cycle everywhere.", F)]
    config = SegmenterConfig(first_min_words=2, first_max_words=9)
    assert segments("In Paris, you can walk.", config)[0] == ("In Paris,", PA)


def test_the_fast_path_is_only_for_the_first_segment_of_each_utterance() -> None:
    seg = Segmenter()
    first = seg.feed("The hotel on Main Street is nice. The pool is warm. ") + seg.flush()
    assert [(str(s), s.boundary) for s in first] == [
        ("The hotel", W), ("on Main Street is nice.", S), ("The pool is warm.", F)]


# ----------------------------------------------------------------------------- sentences
def test_an_ellipsis_before_a_lowercase_letter_is_a_pause() -> None:
    # Not the first segment, and past pause_min_chars (30): the pause mark cuts.
    text = "Hi. I was thinking of going there… but it rained all day."
    assert segments(text, SLOW) == [("Hi.", S), ("I was thinking of going there…", PA), ("but it rained all day.", F)]
    text = "Hi. I was thinking of going there... but it rained all day."
    assert segments(text, SLOW)[1] == ("I was thinking of going there...", PA)
    # Shorter than pause_min_chars: no cut at all.
    assert segments("Hi. I thought… but no. Ok", SLOW) == [("Hi.", S), ("I thought… but no.", S), ("Ok", F)]
    # Before a capital, an ellipsis ends a sentence.
    assert segments("Hi. I was thinking… But no.", SLOW)[1] == ("I was thinking…", S)


def test_a_lowercase_letter_after_a_sentence_mark_is_no_sentence_end() -> None:
    assert segments('"Why?" he asked. Then', SLOW) == [('"Why?" he asked.', S), ("Then", F)]
    assert segments("Use e.g. this one. Ok", SLOW) == [("Use e.g. this one.", S), ("Ok", F)]


def test_a_digit_after_a_numeric_abbreviation_is_no_sentence_end() -> None:
    assert segments("See Fig. 3 below. Then", SLOW) == [("See Fig. 3 below.", S), ("Then", F)]
    assert segments("Call No. 5 now. Then", SLOW) == [("Call No. 5 now.", S), ("Then", F)]
    # Any other word before a digit: the sentence ends.
    assert segments("We won. 5 of us came.", SLOW) == [("We won.", S), ("5 of us came.", F)]


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("We moved to the U.S. The weather is fine.", ("We moved to the U.S.", S)),
        ("We love the U.S. Army band.", ("We love the U.S. Army band.", F)),
        ("Books by J. K. Rowling are long.", ("Books by J. K. Rowling are long.", F)),
        ("It ends at 5 p.m. We leave then.", ("It ends at 5 p.m.", S)),
        ("Apples, pears etc. Most are ripe.", ("Apples, pears etc.", S)),
        ("Apples, pears etc. Granny Smith too.", ("Apples, pears etc. Granny Smith too.", F)),
    ],
)
def test_an_abbreviation_that_can_end_a_sentence_asks_the_next_word(text: str, first: tuple[str, Boundary]) -> None:
    assert segments(text, SLOW)[0] == first


def test_a_sentence_mark_is_confirmed_by_the_next_non_space_character() -> None:
    seg = Segmenter(SLOW)
    assert seg.feed("It is done!") == [] and seg.feed("   ") == []
    assert [(str(s), s.boundary) for s in seg.feed("N")] == [("It is done!", S)]
    assert seg.buffered_chars == 1


def test_a_closing_quote_or_bracket_stays_with_its_sentence() -> None:
    assert segments('He said "Stop!" Then left.', SLOW)[0] == ('He said "Stop!"', S)
    assert segments("We left (finally.) Next day.", SLOW)[0] == ("We left (finally.)", S)


def test_punctuation_only_words_join_the_word_before() -> None:
    assert segments("Is it ready ? Yes it is .", SLOW) == [("Is it ready?", S), ("Yes it is.", F)]
    assert segments("Hi. We came early — before the others did.", SegmenterConfig(first_max_words=99, pause_min_chars=0))[1] == (
        "We came early —", PA)


# ----------------------------------------------------------------------------- pauses
def test_pause_min_chars_is_reached_not_exceeded() -> None:
    text = "Hi. Abcdefghi, rest of it."  # the segment is 10 characters at its comma
    assert segments(text, SegmenterConfig(first_max_words=99, pause_min_chars=10))[1] == ("Abcdefghi,", PA)
    assert segments(text, SegmenterConfig(first_max_words=99, pause_min_chars=11))[1] == ("Abcdefghi, rest of it.", F)


@pytest.mark.parametrize("mark", [",", ";", ":", "—", "–", "，", "、"])
def test_each_pause_mark_cuts(mark: str) -> None:
    config = SegmenterConfig(first_max_words=99, pause_min_chars=0)
    assert segments(f"Hi. One two{mark} three four.", config)[1] == (f"One two{mark}", PA)


# ----------------------------------------------------------------------------- length
def test_the_length_cut_prefers_the_last_pause_mark_in_the_second_half() -> None:
    # pause_min_chars is high, so the comma does not cut by itself; the length rule finds it.
    config = SegmenterConfig(max_chars=60, first_max_words=99, pause_min_chars=80)
    text = "Hi. One two three four five six seven, eight nine ten eleven twelve thirteen"
    assert segments(text, config)[1] == ("One two three four five six seven,", PA)
    # A pause mark in the first half is too early: the cut goes before the last word instead.
    text = "Hi. One, two three four five six seven eight nine ten eleven twelve thirteen"
    assert segments(text, config)[1] == ("One, two three four five six seven eight nine ten eleven", W)


def test_the_length_cut_goes_before_a_conjunction_in_the_second_half() -> None:
    config = SegmenterConfig(max_chars=60, first_max_words=99)
    text = "one two three four five six seven eight nine which eleven twelve thirteen"
    assert segments(text, config)[0] == ("one two three four five six seven eight nine", W)
    # In the first half it is too early.
    text = "one and three four five six seven eight nine ten eleven twelve thirteen fourteen"
    assert segments(text, config)[0] == ("one and three four five six seven eight nine ten eleven", W)


def test_the_length_cut_backs_off_an_article() -> None:
    config = SegmenterConfig(max_chars=60, first_max_words=99)
    text = "alpha bravo charlie delta echo foxtrot golf hotel india the juliet kilo"
    assert segments(text, config) == [
        ("alpha bravo charlie delta echo foxtrot golf hotel india", W), ("the juliet kilo", F)]
    # Not when that would leave less than half a segment.
    short = SegmenterConfig(max_chars=20, first_max_words=99)
    assert segments("abcdefgh the ijklmnopqrstu", short)[0] == ("abcdefgh the", W)


def test_max_chars_is_reached_not_exceeded() -> None:
    config = SegmenterConfig(max_chars=20, first_max_words=99)
    assert segments("abcdefghi abcdefghij klm", config)[0] == ("abcdefghi abcdefghij", W)  # exactly 20
    assert segments("abcdefghi abcdefghijk klm", config)[0] == ("abcdefghi", W)  # 21: cut before


def test_a_word_longer_than_max_chars_is_split_in_max_chars_pieces() -> None:
    config = SegmenterConfig(max_chars=10, first_max_words=99)
    assert segments("Hash: " + "x" * 25 + " ok", config) == [
        ("Hash:", W), ("x" * 10, W), ("x" * 10, W), ("x" * 5 + " ok", F)]
    assert segments("x" * 10 + " ok", config) == [("x" * 10, W), ("ok", F)]


# ----------------------------------------------------------------------------- lines, flush, buffer
def test_a_line_break_is_a_paragraph_cut_at_once() -> None:
    seg = Segmenter(SLOW)
    assert [(str(s), s.boundary) for s in seg.feed("One line\n")] == [("One line", P)]
    assert seg.buffered_chars == 0
    assert seg.feed("\n\n") == []  # blank lines: nothing to say


def test_flush_returns_the_rest_and_resets() -> None:
    seg = Segmenter()
    assert seg.feed("The hotel is") == [("The hotel")]
    assert [(str(s), s.boundary) for s in seg.flush()] == [("is", F)]
    assert seg.buffered_chars == 0 and seg.flush() == []


def test_buffered_chars_counts_the_word_being_received() -> None:
    seg = Segmenter()
    assert seg.feed("x" * 5000) == []
    assert seg.buffered_chars == 5000  # one word with no space yet: it counts in full
    seg = Segmenter(SLOW)
    seg.feed("Some words here an")
    assert seg.buffered_chars == len("Some words herean")  # (the space before the open word: not yet)
    seg.feed("d more. Th")
    assert seg.buffered_chars == len("Th")
    seg.reset()
    assert seg.buffered_chars == 0


def test_segments_say_something() -> None:
    assert segments("... !!! Ok.", SLOW) == [("Ok.", F)]  # stray punctuation opening a segment
    assert segments("Hi.\n-- !!\nOk.", SLOW) == [("Hi.", P), ("Ok.", F)]  # a segment of punctuation only


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_chars": 1}, "max_chars must be at least 2"),
        ({"first_min_words": 0}, "first_min_words and first_max_words must be at least 1"),
        ({"first_max_words": 0}, "first_min_words and first_max_words must be at least 1"),
        ({"pause_min_chars": -1}, "pause_min_chars must be >= 0"),
    ],
)
def test_config_is_validated_with_a_clear_message(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        SegmenterConfig(**kwargs)


def test_config_limits_themselves_are_allowed() -> None:
    SegmenterConfig(max_chars=2, first_min_words=1, first_max_words=1, pause_min_chars=0)
    defaults = SegmenterConfig()
    assert (defaults.max_chars, defaults.first_min_words, defaults.first_max_words, defaults.pause_min_chars) == (
        200, 2, 2, 30)


def test_segment_repr_and_pickling() -> None:
    s = Segment("Hi.", Boundary.PAUSE)
    assert repr(s) == "Segment('Hi.', PAUSE)"
    assert s.__reduce__() == (Segment, ("Hi.", Boundary.PAUSE))
    assert Segment("Hi.").boundary is Boundary.SENTENCE


# ----------------------------------------------------------------------------- more exact cases
def test_typographic_apostrophes_count_as_plain_ones() -> None:
    assert segments("We moved to the U.S. It’s nice there.", SLOW)[0] == ("We moved to the U.S.", S)
    assert segments("We moved to the U.S. It's nice there.", SLOW)[0] == ("We moved to the U.S.", S)


def test_other_sentence_marks_before_a_digit_end_the_sentence() -> None:
    assert segments("We won! 5 of us came.", SLOW) == [("We won!", S), ("5 of us came.", F)]
    assert segments("Who came? 5 of us did.", SLOW) == [("Who came?", S), ("5 of us did.", F)]


def test_a_month_is_both_numeric_and_may_end_a_sentence() -> None:
    assert segments("We met on Jan. 5 in Rome. Ok", SLOW) == [("We met on Jan. 5 in Rome.", S), ("Ok", F)]
    assert segments("We met in Jan. The rest is history.", SLOW)[0] == ("We met in Jan.", S)


def test_a_title_in_brackets_is_still_a_title() -> None:
    assert segments("Ask (Dr. Smith) now.", SLOW) == [("Ask (Dr. Smith) now.", F)]
    assert segments("Ask (Dr. Smith) now.")[0] == ("Ask (Dr. Smith)", W)
    assert segments("Ask X. Smith about it.")[0] == ("Ask X. Smith", W)


def test_an_opener_with_an_ellipsis_is_a_first_fragment() -> None:
    assert segments("Well… maybe later.")[0] == ("Well…", PA)


def test_closers_after_cjk_punctuation_stay_with_it() -> None:
    assert segments("我走了。」）他说。") == [("我走了。」）", S), ("他说。", F)]


def test_punctuation_joins_the_word_before_also_after_cjk_and_at_a_segment_start() -> None:
    assert segments("我们，你好 ？") == [("我们，你好？", F)]
    assert segments("Hi. Really ? Yes.", SLOW) == [("Hi.", S), ("Really?", S), ("Yes.", F)]


def test_whole_max_chars_pieces_of_a_long_word() -> None:
    config = SegmenterConfig(max_chars=10, first_max_words=99)
    assert segments("x" * 20 + " ok", config) == [("x" * 10, W), ("x" * 10, W), ("ok", F)]


def _words_ending_at(length: int, mark: str = ",") -> str:
    """Words that, joined by spaces, are exactly ``length`` characters, the last ending in ``mark``."""
    words, total = [], 0
    while length - total > 8:
        words.append("abcdef")
        total += 7
    words.append("z" * (length - total - len(mark)) + mark)
    text = " ".join(words)
    assert len(text) == length
    return text.capitalize()


@pytest.mark.parametrize(("at", "pause"), [(29, False), (30, True), (31, True)])
def test_the_second_half_starts_at_half_max_chars(at: int, pause: bool) -> None:
    # max_chars 60: a pause mark ending before character 30 is too early for the length cut.
    config = SegmenterConfig(max_chars=60, first_max_words=99, pause_min_chars=99)
    head = _words_ending_at(at)
    text = "Hi. " + head + " ghijkl mnopqr stuvwx yzabcd efghij klmnop qrstuv"
    second = segments(text, config)[1]
    assert (second == (head, PA)) is pause, second


def test_an_odd_max_chars_halves_down() -> None:
    config = SegmenterConfig(max_chars=21, first_max_words=99, pause_min_chars=99)
    assert segments("Hi. Abcdefghi, jklm nopqrstuv", config)[1] == ("Abcdefghi,", PA)


def test_a_pause_mark_right_before_the_overflow_is_found() -> None:
    config = SegmenterConfig(max_chars=20, first_max_words=99, pause_min_chars=99)
    assert segments("Hi. Abcdefghijk, lmnopqrst", config)[1] == ("Abcdefghijk,", PA)
    assert segments("Hi. Abc defghijk, lmnopqrst", config)[1] == ("Abc defghijk,", PA)
    assert segments("Hi. Abc defghijk, lm nopqrst", config)[1] == ("Abc defghijk,", PA)


@pytest.mark.parametrize(("at", "before"), [(29, False), (30, True), (31, True)])
def test_a_conjunction_counts_from_half_max_chars(at: int, before: bool) -> None:
    config = SegmenterConfig(max_chars=60, first_max_words=99)
    head = _words_ending_at(at, mark="")
    text = head + " and ghijkl mnopqr stuvwx yzabcd efghij klmnop"
    first = segments(text, config)[0]
    assert (first == (head, W)) is before, first


@pytest.mark.parametrize(("before", "backs_off"), [(19, False), (20, True)])
def test_the_article_back_off_keeps_half_a_segment(before: int, backs_off: bool) -> None:
    # max_chars 40: backing off "the" must leave at least 20 characters.
    config = SegmenterConfig(max_chars=40, first_max_words=99)
    head = _words_ending_at(before, mark="")
    first = segments(head + " the " + "r" * 30, config)[0]
    assert first == ((head, W) if backs_off else (head + " the", W))


def test_words_of_capital_x_survive_the_length_cut() -> None:
    # (Only spaces are stripped around words: an "X" is a letter like any other.)
    config = SegmenterConfig(max_chars=20, first_max_words=99)
    assert segments("Hi. Abc XXX defghijklmnopq", config) == [("Hi.", S), ("Abc XXX", W), ("defghijklmnopq", F)]
    config = SegmenterConfig(max_chars=60, first_max_words=99, pause_min_chars=80)
    text = "Hi. One two three four five six seven, Xray nine ten eleven twelve thirteen"
    assert segments(text, config)[1:] == [
        ("One two three four five six seven,", PA), ("Xray nine ten eleven twelve thirteen", F)]


def test_punctuation_joining_a_word_can_make_it_too_long() -> None:
    config = SegmenterConfig(max_chars=10, first_max_words=99)
    assert segments("Hi. A bcdefgh ???", config) == [("Hi.", S), ("A", W), ("bcdefgh???", F)]


def test_the_length_cut_edges() -> None:
    config = SegmenterConfig(max_chars=60, first_max_words=99)
    # A conjunction that is the last word before the overflow.
    text = "one two three four five six seven eight nine which " + "x" * 20
    assert segments(text, config)[0] == ("one two three four five six seven eight nine", W)
    # A conjunction as the only word of the first half never makes an empty cut.
    twelve = SegmenterConfig(max_chars=12, first_max_words=99)
    assert segments("Hi. Because abcd efgh", twelve) == [("Hi.", S), ("Because abcd", W), ("efgh", F)]
    twenty = SegmenterConfig(max_chars=20, first_max_words=99, pause_min_chars=99)
    # A pause mark as the first word wins over a later conjunction and over the last word.
    assert segments("Hi. Abcdefghijk, lm nopqrst", twenty)[1] == ("Abcdefghijk,", PA)
    assert segments("Hi. Abcdefghijk, lm and nopq", twenty)[1] == ("Abcdefghijk,", PA)
    thirty = SegmenterConfig(max_chars=30, first_max_words=99)
    # Two words, the second an article: back off to one if it fills half a segment.
    assert segments("abcdefghijklmnop the qrstuvwxyzabc", thirty)[0] == ("abcdefghijklmnop", W)
    assert segments("abcdefghijk the qrstuvwxyzabcdefgh", thirty)[0] == ("abcdefghijk the", W)


def test_more_length_cut_and_start_edges() -> None:
    # A word exactly max_chars long after a segment with a pause mark: the segment is still cut
    # at its pause mark, not emitted whole.
    ten = SegmenterConfig(max_chars=10, first_max_words=99, pause_min_chars=99)
    assert segments("Hi. Abcde, f " + "x" * 10, ten) == [("Hi.", S), ("Abcde,", PA), ("f", W), ("x" * 10, F)]
    # A conjunction right after the first word.
    forty = SegmenterConfig(max_chars=40, first_max_words=99)
    assert segments("abcdefghijklmnopqrstuv which " + "x" * 16, forty)[0] == ("abcdefghijklmnopqrstuv", W)
    # A word of capital X in the second half.
    twenty = SegmenterConfig(max_chars=20, first_max_words=99)
    assert segments("Hi. Abcdefgh XXX ijklmnop", twenty)[1:] == [("Abcdefgh XXX", W), ("ijklmnop", F)]
    # A dash opening a segment is not spoken.
    assert segments("— Ok.", SLOW) == [("Ok.", F)]
    # A two-letter word before "." that turned out not to end a sentence is no initial.
    assert segments("Ask Bo. and more.")[0] == ("Ask Bo.", W)
