"""bridge.textfilter.SpeechTextFilter: markdown/URL/code/emoji out, streamed across tokens."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.textfilter import SpeechTextFilter, strip_emoji
from tests.support.property_budget import examples


def whole(text: str, **kw) -> str:
    f = SpeechTextFilter(**kw)
    return f.feed(text) + f.flush()


def chunked(text: str, sizes: list[int], **kw) -> str:
    f = SpeechTextFilter(**kw)
    out, i, k = [], 0, 0
    while i < len(text):
        n = sizes[k % len(sizes)]
        out.append(f.feed(text[i : i + n]))
        i, k = i + n, k + 1
    out.append(f.flush())
    return "".join(out)


def random_sizes(seed: int) -> list[int]:
    rnd = random.Random(seed)
    return [rnd.randint(1, 4) for _ in range(64)]


CASES = [
    # emphasis
    ("**Bold** and *italic* and ~~gone~~ text.", "Bold and italic and gone text."),
    ("__strong__ and _em_ here", "strong and em here"),
    ("***both*** at once", "both at once"),
    ("keep snake_case_names and 5 * 3 and 5*3 and ~5 minutes", "keep snake_case_names and 5 * 3 and 5*3 and ~5 minutes"),
    # headings, bullets, numbers, quotes, rules
    ("# Title\n\n## Sub heading\ntext", "Title\n\nSub heading\ntext"),
    ("#hashtag stays", "#hashtag stays"),
    ("- one\n* two\n+ three\n• four", "one\ntwo\nthree\nfour"),
    ("1. first\n2) second\n10. tenth", "first\nsecond\ntenth"),
    ("  - nested\n    1. deeper", "nested\ndeeper"),
    ("- [ ] open task\n- [x] done task", "open task\ndone task"),
    ("> quoted\n>> twice", "quoted\ntwice"),
    ("a\n---\n***\n___\nb", "a\n\n\n\nb"),
    ("Title\n=====\ntext", "Title\n\ntext"),
    ("-5 degrees\n+1 to that\n3.14 is pi\n2024 was long", "-5 degrees\n+1 to that\n3.14 is pi\n2024 was long"),
    # tables
    ("| Plan | Price |\n|:-----|------:|\n| Basic | $5 |", " Plan , Price \n\n Basic , $5 "),
    ("| Done. | Yes |", " Done.  Yes "),
    # links and URLs
    ("See [the docs](https://example.com/docs?a=(1)) now.", "See the docs now."),
    ("![a diagram](img/d.png) below", "a diagram below"),
    ("[1] and [note]", "1 and note"),
    ("Go to https://www.example.com/a/b?x=1 now", "Go to example.com now"),
    ("Visit https://example.com/x. Or www.foo.org, or http://user@bar.io:8080/x!", "Visit example.com. Or foo.org, or bar.io!"),
    ("(https://example.org/x) and **https://x.com/a**.", "(example.org) and x.com."),
    ("the word https alone, what and www", "the word https alone, what and www"),
    ("mail john.doe@example.com or example.com", "mail john.doe@example.com or example.com"),
    # code
    ("Code:\n```python\nprint('hi')\n```\nDone.", "Code:\nDone."),
    ("Code:\n~~~\nx = 1\n~~~\nDone.", "Code:\nDone."),
    ("List:\n- item\n  ```\n  code\n  ```\nafter", "List:\nitem\nafter"),
    ("```\nnot closed", ""),
    ("Use `my_var` and ``a `b` c`` here", "Use my_var and a b c here"),
    ("`**not bold**` and `https://x.com/p`", "**not bold** and https://x.com/p"),
    # escapes
    ("\\*literal\\* and C:\\Users", "*literal* and C:\\Users"),
    # emoji and scripts
    ("Great job! 🎉🎉 Next 👍🏽 step ❤️ done 🇫🇷 1️⃣", "Great job!  Next  step  done  1"),
    ("中文，好的。Ünïcödé — «quotes» © 2024 ™ 25°C → ok", "中文，好的。Ünïcödé — «quotes» © 2024 ™ 25°C → ok"),
    # CRLF line ends
    ("# Title\r\n\r\n```\r\ncode\r\n```\r\n---\r\n- item\r\n", "Title\n\n\nitem\n"),
    # nothing to say
    ("", ""),
    ("🎉👍🏽", ""),
    ("---", ""),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_cases_whole_and_split(text: str, expected: str) -> None:
    assert whole(text) == expected
    for seed in range(6):
        assert chunked(text, random_sizes(seed)) == expected
    assert chunked(text, [1]) == expected


def test_code_blocks_kept_when_not_skipped() -> None:
    text = "Code:\n```python\nprint('hi')\n  x = 1\n```\nDone. `inline`"
    assert whole(text, skip_code_blocks=False) == "Code:\nprint('hi')\n  x = 1\nDone. inline"


def test_fence_state_carries_across_many_tokens() -> None:
    f = SpeechTextFilter()
    pieces = ["Intro\n", "``", "`py", "\n", "a = ", "1\n", "b", " = 2", "\n", "# not a heading\n", "``", "`\n", "Out", "ro"]
    out = "".join(f.feed(p) for p in pieces) + f.flush()
    assert out == "Intro\nOutro"


def test_split_markers_are_held_then_resolved() -> None:
    f = SpeechTextFilter()
    assert f.feed("This is *") == "This is "  # could be "**" (bold) or "* " (literal)
    assert f.feed("*very") == "very"
    assert f.feed("*") == ""
    assert f.feed("* good") == " good"
    f = SpeechTextFilter()
    assert f.feed("Read [the guide]") == "Read the guide"  # "]" held: is "(" next?
    assert f.feed("(https://example.com/g) now") == " now"
    f = SpeechTextFilter()
    assert f.feed("see https://exa") == "see "  # URL held until it ends
    assert f.feed("mple.com/a/b") == ""
    assert f.feed(" ok") == "example.com ok"


def test_holds_back_only_what_is_ambiguous() -> None:
    f = SpeechTextFilter()
    assert f.feed("Hello wor") == "Hello wor"  # "w" could start "www." only until "o" came
    assert f.feed("ld, how are you") == "ld, how are you"
    assert f.feed("\n- ") == "\n"  # a line start could be a bullet or a rule
    assert f.feed("it") == "it"
    assert f.feed("\n1") == "\n"  # "1" could be "1. " (a list number) or "1.5"
    assert f.feed(".5 m") == "1.5 m"
    assert f.feed(". W") == ". W"  # capital H/W are not held (URLs are lowercase)
    assert f.feed("e h") == "e "


def test_flush_ends_the_utterance_and_resets_state() -> None:
    f = SpeechTextFilter()
    assert f.feed("Unclosed **bold and ``") == "Unclosed bold and "  # "``" held: how many?
    assert f.flush() == ""  # backticks are never spoken
    assert f.feed("# New") == "New"  # back at a line start: "# " is a heading marker again
    assert f.flush() == ""
    f.feed("```\ncode")
    assert f.flush() == ""
    assert f.feed("plain") == "plain"  # the fence did not survive the flush


def test_reset_drops_held_text_and_state() -> None:
    f = SpeechTextFilter()
    f.feed("text [label](https://exa")
    f.reset()
    assert f.feed("more)") == "more)"
    f.feed("```\ncode")
    f.reset()
    assert f.feed("back to prose") == "back to prose"


def test_strip_emoji_keeps_text() -> None:
    assert strip_emoji("a🎉b👍🏽c❤️d 中") == "abcd 中"


MD_PIECES = [
    "a", "b", "word", " ", " ", "\n", "\n\n", "*", "**", "_", "~~", "`", "```", "~~~", "[", "]", "(",
    ")", "](", "!", "\\", "|", "#", "- ", "1. ", "> ", ":", ".", ",", "?", "h", "w", "https://",
    "www.", "x.com/p?q=1", "🎉", "👍🏽", "中文", "。", "$3.50", "e.g.", " the", " and",
]


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(st.sampled_from(MD_PIECES), max_size=40),
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=12),
    skip=st.booleans(),
)
def test_output_does_not_depend_on_the_split(pieces: list[str], sizes: list[int], skip: bool) -> None:
    text = "".join(pieces)
    expected = whole(text, skip_code_blocks=skip)
    assert chunked(text, sizes, skip_code_blocks=skip) == expected
    assert chunked(text, [1], skip_code_blocks=skip) == expected
    assert strip_emoji(expected) == expected


PROSE_WORDS = ["hello", "world", "with", "hotel", "What", "we", "$249.99", "40.5%", "v2.0.1", "7:45",
               "e.g.", "U.S.", "Dr.", "example.com", "a@b.org", "1,000", "it's", "(aside)", '"quoted"',
               "Ünï", "中文", "—", "...", "?", "!", "3.14", "no."]


@settings(max_examples=examples(100), deadline=None)
@given(words=st.lists(st.sampled_from(PROSE_WORDS), max_size=30), sizes=st.lists(st.integers(1, 4), min_size=1))
def test_plain_prose_passes_unchanged(words: list[str], sizes: list[int]) -> None:
    text = " ".join(words)
    assert whole(text) == text
    assert chunked(text, sizes) == text
