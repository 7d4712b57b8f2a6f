"""One example per documented rule of bridge/textfilter.py where tests/test_textfilter.py left a
mutant alive (benchmarks/results/*-mutation.md): the domain spoken for a bare URL, and what
closes a fenced code block."""

from __future__ import annotations

import pytest

from bridge.textfilter import SpeechTextFilter


def whole(text: str, **kw) -> str:  # type: ignore[no-untyped-def]
    f = SpeechTextFilter(**kw)
    out = f.feed(text) + f.flush()
    g = SpeechTextFilter(**kw)  # and fed one character at a time: the same
    assert "".join(g.feed(c) for c in text) + g.flush() == out
    return out


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Go https://example.com/a://b now", "Go example.com now"),  # the first "://" is the scheme's
        ("Visit https://Xbox.com/store now", "Visit Xbox.com now"),  # only / ? # end the host
        ("mail http://a@b@host.com/x now", "mail host.com now"),  # the user is up to the last "@"
        ("see http://user:pw@host.com:8080/x now", "see host.com now"),  # no user, no port
        ("see http://host.com:80:81/x now", "see host.com now"),  # the port starts at the first ":"
        ("see https://example.com./x now", "see example.com now"),  # a trailing dot of the host goes
        ("see www.example.org?q=1 now", "see example.org now"),
        ("see https://www.example.com#top now", "see example.com now"),
        ("go to https:///a now", "go to  now"),  # no host: nothing to say
        ("go https://?x=1 now", "go  now"),
        ("see http://:8080/x now", "see  now"),
    ],
)
def test_a_bare_url_speaks_its_domain(text: str, spoken: str) -> None:
    assert whole(text) == spoken


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("```\ncode\n```   \nafter", "code\nafter"),  # trailing spaces after a closing fence
        ("```\ncode\n  ```\nafter", "code\nafter"),  # an indented closing fence
        ("```\ncode\n\t```\t\nafter", "code\nafter"),  # tabs too
        ("```\n``x\n ````\nafter", "``x\nafter"),  # a longer run closes; a shorter one is code
        ("````\ncode\n```\nstill\n````\nafter", "code\n```\nstill\nafter"),
        ("```\ncode\n``` not closing\nmore\n```\nafter", "code\n``` not closing\nmore\nafter"),
        ("~~~\ncode\n```\nstill\n~~~\nafter", "code\n```\nstill\nafter"),  # only the same character
        ("```\n  ``\n```\nafter", "  ``\nafter"),
        ("```\ncode\n``` `\nmore\n```\nafter", "code\n``` `\nmore\nafter"),  # nothing after its spaces
    ],
)
def test_what_closes_a_fenced_block(text: str, raw: str) -> None:
    assert whole(text) == "after"
    assert whole(text, skip_code_blocks=False) == raw


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        # table pipes are pauses, unless the cell already ended in one; rules are dropped
        ("| a | b |", " a , b "),
        ("|a|b|", " a, b"),
        ("| Done. | Yes, | ok |", " Done.  Yes,  ok "),
        ("a|b", "a, b"),
        ("| x |\n| y |", " x \n y "),
        ("|---|\n", "\n"),
        ("|:--:|---|\n", "\n"),
        # a backslash escapes markdown punctuation only; at a line end it goes
        ("x \\q and \\*y\\*", "x \\q and *y*"),
        ("line end \\\nnext", "line end \nnext"),
        # "!" is kept unless it opens an image
        ("Wow! Really!", "Wow! Really!"),
        ("!\n", "!\n"),
        ("Look ![", "Look "),
        # link targets are skipped, parentheses nested in them too; a bare URL ends at a space or
        # at a ")" it did not open
        ("[label](http://x.com/a_(b)) ok", "label ok"),
        ("see https://en.wikipedia.org/wiki/Foo_(bar) ok", "see en.wikipedia.org ok"),
        ("(see https://x.com/a) ok", "(see x.com) ok"),
        ('"https://x.com"', '"x.com"'),
        ("(www.x.org)", "(x.org)"),
        ("x [a] y", "x a y"),
        # URL prefixes that never complete are text
        ("h w ww www http https:/", "h w ww www http https:/"),
        ("He said what", "He said what"),
        # emphasis: a lone marker between spaces is text, a run of them is noise
        ("a * b", "a * b"),
        ("a ** b", "a  b"),
        ("a ~~ b", "a  b"),
        ("~~x~~ ~y", "x ~y"),
        # headings are one to six #; an empty heading is an empty line
        ("###### six", "six"),
        ("####### seven", "####### seven"),
        ("#\nnext", "\nnext"),
        ("## \nnext", "\nnext"),
        # ordered-list numbers have up to three digits
        ("1.5 m\n2) b\n123. c\n1234. d", "1.5 m\nb\nc\n1234. d"),
        # task boxes are only "[ ] " and "[x] "
        ("- [ ] a\n- [y] b\n- [x]c", "a\ny b\nxc"),
        # rules and setext underlines are dropped whole
        ("* * *\n- - -", "\n"),
        ("Title\n---\nText", "Title\n\nText"),
        ("--", ""),
        ("-5", "-5"),
        ("–dash item", "–dash item"),
        ("+ plus\n• bullet\n◦ white", "plus\nbullet\nwhite"),
        (">quote\n> > deep", "quote\ndeep"),
        # inline code keeps its text; an unclosed span ends with its line
        ("`code` and ```inline```", "code and inline"),
        ("end `open", "end open"),
        ("tab\tsep", "tab\tsep"),
    ],
)
def test_documented_markdown_rules_exactly(text: str, spoken: str) -> None:
    assert whole(text) == spoken


def test_buffered_chars_is_exactly_what_is_held() -> None:
    f = SpeechTextFilter()
    steps = [
        ("x *", "x ", 1), ("y*", "y", 1), (" `", " ", 1), ("c`", "c", 1), (" ]", " ", 1), ("(u)", "", 0),
        (" !", " ", 1), ("x", "!x", 0), (" \\", " ", 1), ("*", "*", 0), (" |", " ", 1), (" z", ", z", 0),
        (" h", " ", 1), ("ttp", "", 4), ("s://a.b", "", 0), (" ok", "a.b ok", 0), ("\n- ", "\n", 2),
        ("it", "it", 0), ("\n12", "\n", 2), (". t", "t", 0),
    ]
    for piece, out, held in steps:
        assert (f.feed(piece), f.buffered_chars) == (out, held), piece
    f.feed("``")
    f.reset()
    assert f.buffered_chars == 0
    f.feed("```\n  ``")
    assert f.flush() == "" and f.buffered_chars == 0


def test_flush_keeps_the_code_block_setting() -> None:
    skipping = SpeechTextFilter()
    skipping.feed("a")
    skipping.flush()
    assert skipping.feed("```\ncode\n```\nb") + skipping.flush() == "b"
    keeping = SpeechTextFilter(skip_code_blocks=False)
    keeping.feed("a")
    keeping.flush()
    assert keeping.feed("```\ncode\n```\nb") + keeping.flush() == "code\nb"


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("a **5** b", "a 5 b"),  # "*" between digits is kept only when single ("5*3")
        ("-*x* y", "-x y"),  # a line head that turned out to be text keeps its markers' rules
        ("see https://x.com/a_ ok", "see x.com ok"),  # a URL's trailing "_" after a letter: a marker
        ("see https://x.com/a~ ok", "see x.com~ ok"),
        ("see (https://x.com/a_(b)) ok", "see (x.com) ok"),  # parentheses the URL opened are its own
        ("https://x.com/(a)(b) ok", "x.com ok"),
        ("see https://x.com/a)) ok", "see x.com)) ok"),
        ("a `b` *c*", "a b c"),  # a code span closes on a run of its own length
        ("a ``b`` *c*", "a b c"),
        ("a```b```c *d*", "abc d"),
        ("x`", "x"),
        ("end *", "end *"),
        ("[a](b) h", "a h"),
        ("| see https://x.com. | b |", " see x.com.  b "),  # a cell that ends in "." gets no extra pause
        ("| a | | b |", " a ,  b "),  # an empty cell adds no second pause
        ("end h", "end h"),  # held characters at the end: a URL start is text, markers are dropped
        ("end ]", "end "),
        ("end \\", "end "),
        ("end |", "end "),
        ("a |\tb", "a , b"),  # tabs after a pipe are part of it
    ],
)
def test_inline_markers_exactly(text: str, spoken: str) -> None:
    assert whole(text) == spoken


def test_markers_after_a_url_at_the_very_end() -> None:
    assert whole("see https://x.com/a_") == "see x.com"
    assert whole("see https://x.com/a~") == "see x.com~"
    assert whole("see https://x.com/a!") == "see x.com!"
    f = SpeechTextFilter()
    assert f.feed("see https://x.com/a_\n") == "see x.com\n" and f.buffered_chars == 0


def test_nothing_stays_held_once_resolved() -> None:
    for text in ("a *b", "x `c", " hx", "a ]b", "a !b", "a \\b", "a | b"):
        f = SpeechTextFilter()
        f.feed(text)
        assert f.buffered_chars == 0, text
    f = SpeechTextFilter()
    f.feed("```\ncode\n```\n")
    assert f.buffered_chars == 0  # a closed block
    f.feed("```\n  x")
    assert f.buffered_chars == 0  # a line that turned out to be code
