"""Streaming text segmentation: LLM tokens in, speakable segments out. Pure: no I/O, no clock.

    seg = Segmenter(SegmenterConfig())
    seg.feed("Hel") -> []                  # segments completed by this piece of text
    seg.feed("lo. Wor") -> ["Hello."]      # each item is a Segment (a str with .boundary)
    seg.flush() -> ["Wor"]                 # the rest; re-arms the first-fragment fast path
    seg.reset()                            # cancel: drop everything buffered

Segments are speech text: markdown stripped, links spoken by label, code fences skipped, emoji
dropped (see :mod:`bridge.textfilter`), whitespace collapsed to single spaces. ``Segment.boundary``
tells the audio stage how much pause to keep after it.

Where a segment ends
--------------------
Text is handled as words (runs without whitespace; CJK text is also split right after
``。！？，、；：`` and any closing quotes/brackets that follow). A segment only ever ends between
words, so decimals (``$249.99``, ``40.5%``), versions (``v2.0.1``), times (``7:45``), e-mail
addresses and domains (``example.com``) are never cut, and a closing quote or bracket right after
``.`` stays with its sentence. A punctuation-only word (``" ?"``, ``" ,"``, ``" —"``) is joined to
the word before it. The one exception: a single word longer than ``max_chars`` (a hash, a CJK run
with no punctuation) is split into ``max_chars`` pieces.

* ``PARAGRAPH`` at every line break (paragraphs, list items, headings, table rows), at once.
* ``SENTENCE`` after a word ending in ``. ! ? … 。 ！ ？`` (closers allowed after it), confirmed by
  the first non-space character that follows: not when it is a lowercase letter (``e.g. this``,
  ``"Why?" he asked``), not after a digit-prefix abbreviation when it is a digit (``No. 5``,
  ``Fig. 3``), never after a title (``Dr.``, ``Mr.``, ``e.g.``, ``vs.``, ``approx.`` …). After an
  abbreviation that may also end a sentence (``U.S.``, ``a.m.``, ``etc.``, ``Inc.``, ``St.``,
  initials like ``J.``) followed by a capital, the next *word* decides: it is a sentence end only if
  that word is a usual sentence opener (``The``, ``It``, ``We``, ``In`` … see ``_STARTERS``), so
  ``the U.S. Army`` and ``J. K. Rowling`` stay whole. An ellipsis followed by a lowercase letter is
  a pause mark instead.
* ``PAUSE`` after a word ending in ``, ; : ， 、 ； ：`` or a dash, once the segment is at least
  ``pause_min_chars`` long (first segment: see the fast path), confirmed by the next non-space
  character like a sentence end (so ``Sure, ?`` keeps its ``?``).
* ``WORD`` before the word that would take the segment past ``max_chars``: the cut goes at the
  last pause mark in the second half of the segment, else before the last conjunction or
  preposition (``and``, ``which``, ``with`` …) in the second half, else before that word (one
  word earlier if the last word is an article such as ``the``).
* ``FLUSH``: whatever is left at :meth:`Segmenter.flush`.

First-fragment fast path: until the first segment of an utterance has been emitted, a pause mark
ends it once it has ``first_min_words`` words (or at once after a single opener word such as
``Sure,`` ``Yes,`` ``Well,`` — ``fast_openers``), and without any mark it ends after
``first_max_words`` complete words (``WORD``). It does not end right after an article, possessive,
title, initial or number (``This is a`` → ``This is a great``, ``Walk 5`` → ``Walk 5 km``), nor as a lone function word (``In`` when
``first_max_words`` is 1), but never later than ``first_max_words + 2`` words.

Second segment: the segment after the first fragment is due when the fragment's short audio runs
out, and without a mark it could run to a long sentence's end (more text to wait for, more to
synthesize before its first sample). So once it has ``second_min_words`` words it also ends
(``WORD``) before a word that opens a clause or phrase (``but``, ``because``, ``which``,
``when``, ``with``, ``without`` … see ``_PHRASE_OPENERS``; never before ``and``, ``or`` (lists), ``of``, ``to``, ``in``,
``that``): ``A good | substitute for buttermilk is regular milk | with a tablespoon …``.

Hold-back: a cut is decided when the first non-space character after it arrives (the next word's
first character), except at line breaks, which cut at once, and after ``U.S.``-type abbreviations
followed by a capital, which wait for that next word to end. With LLM tokens the space and the
next word's first characters come in the same token, so this costs no extra token in practice.

Invariance: every decision depends on the text only, never on how it was split into ``feed``
calls, and the same holds for :class:`~bridge.textfilter.SpeechTextFilter`. So for any split of an
utterance, ``feed``\\* + ``flush`` returns the same segments with the same boundaries — including
the fast-path cut, which is a rule on words, not on timing. Only *when* a segment is returned
depends on the split.

Speed: ``feed`` touches each new character a bounded number of times (regexes are applied to the
new text only, and to a whole segment once when it is emitted), so it is O(len(text)) amortised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from bridge.textfilter import SpeechTextFilter

__all__ = ["Boundary", "Segment", "SegmenterConfig", "Segmenter", "DEFAULT_FAST_OPENERS"]


class Boundary(StrEnum):
    """Why a segment ended; the pipeline keeps a pause that fits."""

    SENTENCE = "sentence"  # . ! ? 。 ！ ？ …
    PARAGRAPH = "paragraph"  # blank line, list item, heading
    PAUSE = "pause"  # , ; : ， 、
    WORD = "word"  # cut between words (fast path, length cap)
    FLUSH = "flush"  # the rest, at flush


class Segment(str):
    """A segment's text (a plain ``str`` for every purpose) plus the boundary that ended it."""

    boundary: Boundary

    def __new__(cls, text: str, boundary: Boundary = Boundary.SENTENCE) -> "Segment":
        obj = super().__new__(cls, text)
        obj.boundary = boundary
        return obj

    def __reduce__(self):  # keep pickling/copying working for a str subclass with state
        return (Segment, (str(self), self.boundary))

    def __repr__(self) -> str:
        return f"Segment({str.__repr__(self)}, {self.boundary.name})"


#: Words that may make a one-word first fragment before a pause mark ("Sure, …").
DEFAULT_FAST_OPENERS: frozenset[str] = frozenset(
    """sure yes yeah yep yup no nope okay ok well so hi hello hey absolutely certainly definitely
    great right alright actually honestly thanks oh ah hmm indeed perfect understood gotcha
    however unfortunately fortunately basically first firstly additionally also now look listen
    interesting exactly correct totally true""".split()
)


@dataclass(frozen=True)
class SegmenterConfig:
    max_chars: int = 200
    first_min_words: int = 2
    first_max_words: int = 2
    pause_min_chars: int = 30
    #: The second segment may end before a conjunction or a phrase-opening preposition once it
    #: has this many words (0: off); see "Second segment" in the module docs.
    second_min_words: int = 5
    skip_code_blocks: bool = True
    #: Lowercase words that may form a one-word first fragment before a pause mark.
    fast_openers: frozenset[str] = field(default=DEFAULT_FAST_OPENERS)

    def __post_init__(self) -> None:
        if self.max_chars < 2:
            raise ValueError("max_chars must be at least 2")
        if self.first_min_words < 1 or self.first_max_words < 1:
            raise ValueError("first_min_words and first_max_words must be at least 1")
        if self.pause_min_chars < 0:
            raise ValueError("pause_min_chars must be >= 0")
        if self.second_min_words < 0:
            raise ValueError("second_min_words must be >= 0")


# ---------------------------------------------------------------------------------- text rules

_SENT_END = frozenset(".!?…。！？‼⁇⁈⁉")
_PAUSE_END = frozenset(",;:，、；：—–")
_CLOSERS = "\"'”’»)]}」』）】〉》›"
_OPENERS = "\"'“‘«([{「『（【〈《‹¿¡"
_TAIL = frozenset(_SENT_END | _PAUSE_END | set(_CLOSERS))  # last chars worth a closer look
_CJK_SPLIT_RE = re.compile(r"[。！？，、；：]")
_BREAK_RE = re.compile(r"[\s。！？，、；：]")
_WS_RE = re.compile(r"\s+")
_NS_RE = re.compile(r"\S+")
_HAS_TEXT_RE = re.compile(r"[^\W_]")  # a letter or digit of any script
_STRIP = " " + _OPENERS + _CLOSERS + ".,;:!?…。！？，、；：*"
# A punctuation-only word starting with one of these belongs to the word before it.
_LEFT_ATTACH = frozenset("?!.,;:…)]}%»”’。！？，、；：—–")
_DASHES = frozenset("—–")
_INITIALS_RE = re.compile(r"[A-Za-z]|[A-Za-z]{1,2}(?:\.[A-Za-z]{1,2})+")

# "X." never ends a sentence (titles, Latin abbreviations).
_TITLES = frozenset(
    """mr mrs ms mx dr prof rev hon gen capt cpt sgt lt col maj cmdr adm gov sen rep pres supt
    insp messrs mme mlle e.g i.e cf viz vs approx appx ca incl esp""".split()
)
# "X." before a digit is an abbreviation ("No. 5", "Fig. 3", "Jan. 5").
_NUMERIC = frozenset(
    """no nos nr num fig figs vol vols p pp ch chap sec sect art arts para eq eqs ex op pt pts
    tel ref refs ed eds ver v jan feb mar apr jun jul aug sep sept oct nov dec""".split()
)
# "X." may end a sentence, but before a capital only when the next word opens a sentence.
_CANEND = frozenset(
    """etc inc ltd co corp llc plc jr sr st ave blvd rd dept univ bros al mt ft hr hrs min mins
    oz lb lbs jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs
    fri sat sun""".split()
)
# Words that usually open a sentence (decides "U.S. The" vs "U.S. Army").
_STARTERS = frozenset(
    """a an the this that these those it its it's i i'm i've i'll i'd he she we they you my our
    your his her their there here but and so or if when then in on at for after before as what
    why how who where which please also however yes no not now let let's thanks thank note today
    additionally finally first second third next meanwhile while although though because since
    with from to by all some many most each every one both is are was were do does did can could
    would should will it's that's there's here's what's we're they're you're you'll he's she's
    don't hope overall otherwise instead still just other another more other our once during
    unlike like many few""".split()
)
#: Public name: the normalizer keeps an abbreviation's period before one of these too.
SENTENCE_STARTERS = _STARTERS
# Articles, possessives: the first fragment does not end right after one.
_CLINGY = frozenset("a an the my your our their its his her this these those every each no".split())
# Function words: a one-word first fragment is not one of these.
_FUNCTION = _CLINGY | frozenset(
    """and or but so if in on at to of for with by from as into about it is are was were be been
    i you we they he she that there here not do does did can will would could should has have
    had am let's i'm it's that's there's here's what how when where who why just also then than
    me him them us""".split()
)
# A max-length cut prefers to go before one of these.
_BREAK_BEFORE = frozenset(
    """and but or so because which who whom whose where when while that if unless although
    though since until with without for from to in on at by as than then after before into
    about of""".split()
)

#: Words the second segment may be cut before (a clause or a phrase starts with them); a
#: stricter list than _BREAK_BEFORE: never before "of", "to", "in", "that", which bind tightly.
_PHRASE_OPENERS = frozenset(
    """but because which who where when while although though unless until with without""".split()
)

# Sentence-candidate flags.
_F_NUMERIC = 1
_F_CANEND = 2
_F_ELLIPSIS = 4

# Pending cut kinds.
_P_SENT = 1
_P_PAUSE = 2
_P_WORD = 3

_NONE = (0, 0)


_NUMBER_WORD_RE = re.compile(r"[$€£¥(~+-]?\d[\d,.:/()-]*")


def _bare(word: str) -> str:
    """A word without surrounding punctuation, lowercased, with typographic apostrophes."""
    return word.strip(_STRIP).lower().replace("’", "'")


def _classify(word: str) -> tuple[int, int]:
    """(kind, flags) of the boundary after ``word``: (_P_SENT, flags), (_P_PAUSE, 0) or _NONE."""
    last = word[-1]
    if last not in _TAIL:
        return _NONE
    core = word.rstrip(_CLOSERS) if last in _CLOSERS else word
    if not core:
        return _NONE
    end = core[-1]
    if end in _PAUSE_END:
        return (_P_PAUSE, 0)
    if end not in _SENT_END:
        return _NONE
    if end == "…" or core.endswith(".."):
        return (_P_SENT, _F_ELLIPSIS)
    if end != ".":
        return (_P_SENT, 0)
    stem = core[:-1].lstrip(_OPENERS)
    if not stem:
        return (_P_SENT, 0)
    low = stem.lower()
    if low in _TITLES:
        return _NONE
    flags = 0
    if low in _NUMERIC:
        flags |= _F_NUMERIC
    if low in _CANEND or _INITIALS_RE.fullmatch(stem):
        flags |= _F_CANEND
    return (_P_SENT, flags)


def _clingy(word: str) -> bool:
    """A word a fragment should not end on: article, possessive, title, initial, an abbreviation
    that may stand before a name or number ("Mt.", "St.", "Fig."), or a number
    (its unit, magnitude or a.m./p.m. may follow: "5 km", "$4 million", "5 p.m.")."""
    low = word.lower()
    if low in _CLINGY or _NUMBER_WORD_RE.fullmatch(low):
        return True
    if low.endswith("."):
        stem = low[:-1].lstrip(_OPENERS)
        return stem in _TITLES or stem in _CANEND or stem in _NUMERIC or (len(stem) == 1 and stem.isalpha())
    return False


def _attaches(word: str) -> bool:
    """A punctuation-only word that belongs to the word before it (" ?", " ,", " —")."""
    return word[0] in _LEFT_ATTACH and _HAS_TEXT_RE.search(word) is None


class Segmenter:
    """Streaming segmenter; see the module docs for the rules."""

    def __init__(self, config: SegmenterConfig | None = None) -> None:
        self.config = config or SegmenterConfig()
        self._filter = SpeechTextFilter(skip_code_blocks=self.config.skip_code_blocks)
        self._out: list[Segment] = []
        self._clear()

    # ----------------------------------------------------------------------------- public API

    def feed(self, text: str) -> list[Segment]:
        """Add the next piece of text; returns the segments it completed (often none)."""
        t = self._filter.feed(text)
        out: list[Segment] = []
        if not t:
            return out
        self._out = out
        if self._cur and not self._cjk and _BREAK_RE.search(t) is None:
            self._cur += t  # the middle of a word: nothing can end here
            return out
        self._scan(t)
        return out

    def flush(self) -> list[Segment]:
        """End of the utterance: returns the rest and re-arms the fast path for the next one."""
        out: list[Segment] = []
        self._out = out
        t = self._filter.flush()
        if t:
            self._scan(t)
        if self._cur:
            self._complete()
        self._pend = 0
        if self._items:
            self._emit(len(self._items), Boundary.FLUSH)
        self._clear()
        return out

    def reset(self) -> None:
        """Cancel: drop everything buffered; the next text starts a new utterance."""
        self._filter.reset()
        self._clear()

    @property
    def buffered_chars(self) -> int:
        """Characters held (the open segment, the word being received, the filter's hold-back)."""
        return self._len + len(self._cur) + self._filter.buffered_chars

    # ------------------------------------------------------------------------------- scanning

    def _clear(self) -> None:
        self._items: list[str] = []  # words of the open segment; all but the first carry their separator
        self._len = 0  # len("".join(self._items))
        self._cur = ""  # the word being received
        self._cur_sep = ""  # the separator before it: " " or "" (CJK split, segment start)
        self._sep = ""  # the separator for the next word to start
        self._cjk = False  # the word being received ended in CJK punctuation (closers may follow)
        self._pend = 0  # pending cut after the last word: _P_SENT / _P_PAUSE / _P_WORD
        self._pflags = 0
        self._pwait = False  # pending cut waits for the next word to end (not just to start)
        self._first = True  # fast path armed: no segment emitted yet in this utterance
        self._emitted = 0  # segments emitted in this utterance

    def _scan(self, t: str) -> None:
        pos, n = 0, len(t)
        while pos < n:
            if t[pos].isspace():
                m = _WS_RE.match(t, pos)
                pos = m.end()
                if self._cur:
                    self._complete()
                self._sep = " "
                if "\n" in m.group():
                    self._line_break()
            else:
                m = _NS_RE.match(t, pos)
                pos = m.end()
                self._chars(m.group())

    def _chars(self, run: str) -> None:
        """Non-space characters of the current word (possibly ending it at CJK punctuation)."""
        while run:
            if self._cjk:
                i = 0
                while i < len(run) and run[i] in _CLOSERS:
                    i += 1
                if i:
                    self._cur += run[:i]
                    run = run[i:]
                    if not run:
                        return
                self._complete()
                self._sep = ""
            if not self._cur:
                self._cur_sep = self._sep
                if self._pend and not self._pwait:
                    self._decide(run[0], None)
            m = _CJK_SPLIT_RE.search(run)
            if m is None:
                self._cur += run
                return
            j = m.end()
            self._cur += run[:j]
            self._cjk = True
            run = run[j:]

    def _complete(self) -> None:
        word, self._cur, self._cjk = self._cur, "", False
        self._word(self._cur_sep, word)

    def _line_break(self) -> None:
        self._pend = 0
        if self._items:
            self._emit(len(self._items), Boundary.PARAGRAPH)

    # ------------------------------------------------------------------------------ decisions

    def _word(self, sep: str, word: str) -> None:
        """A complete word arrives after ``sep``."""
        items = self._items
        if items and _attaches(word):
            # " ?" / " ," / " —": part of the previous word; re-decide the cut after it.
            self._pend = 0
            last = items.pop()
            if items:
                lsep = last[0] if last[0] == " " else ""
                last = last[len(lsep) :]
            else:
                lsep = ""
            self._len = sum(map(len, items))
            joiner = " " if word[0] in _DASHES else ""
            self._append(lsep, last + joiner + word)
            return
        if self._pend:  # waiting for this word: decide with it
            self._decide(word[0], word)
        if not self._items and _attaches(word):
            return  # stray punctuation at the start of a segment: nothing to say
        if self._second_cut_before(word):
            self._emit(len(self._items), Boundary.WORD)
            sep = ""
        self._append(sep, word)

    def _second_cut_before(self, word: str) -> bool:
        """Second segment: end it before ``word``, a clause or phrase opener, once it is long enough."""
        n = len(self._items)
        k = self.config.second_min_words
        return (
            self._emitted == 1 and k > 0 and n >= k and _bare(word) in _PHRASE_OPENERS
            and not _clingy(self._items[-1].lstrip(" ")) and _classify(self._items[-1])[0] == 0
        )  # fmt: skip

    def _decide(self, c: str, word: str | None) -> None:
        """Decide the pending cut after the last word, given what follows it."""
        kind = self._pend
        if word is None and c in _LEFT_ATTACH:
            self._pwait = True  # maybe " ?" / " ," that joins the last word: see the whole word
            return
        if kind == _P_SENT:
            flags = self._pflags
            if c.islower() or (flags & _F_NUMERIC and c.isdigit()):
                self._reject()
                return
            if flags & _F_CANEND and c.isupper():
                if word is None:
                    self._pwait = True
                    return
                if _bare(word) not in _STARTERS:
                    self._reject()
                    return
            self._pend = 0
            self._emit(len(self._items), Boundary.SENTENCE)
        else:
            self._pend = 0
            self._emit(len(self._items), Boundary.PAUSE if kind == _P_PAUSE else Boundary.WORD)

    def _reject(self) -> None:
        """A sentence candidate turned out not to be one: fall back to a weaker cut, if any."""
        flags = self._pflags
        self._pend = 0
        last = self._items[-1].lstrip(" ")
        n = len(self._items)
        if flags & _F_ELLIPSIS and self._pause_ok(last, n):
            self._emit(n, Boundary.PAUSE)
        elif self._first and self._word_rule(last, n):
            self._emit(n, Boundary.WORD)

    def _append(self, sep: str, word: str) -> None:
        cfg = self.config
        items = self._items
        maxc = cfg.max_chars
        if len(word) > maxc:  # one word longer than a segment: the only cut inside a word
            if items:
                self._emit(len(items), Boundary.WORD)
            while len(word) > maxc:
                self._emit_text(word[:maxc], Boundary.WORD)
                word = word[maxc:]
            sep = ""
        while items and self._len + len(sep) + len(word) > maxc:
            self._cut_for_length(word)
        if items:
            items.append(sep + word)
            self._len += len(sep) + len(word)
        else:
            items.append(word)
            self._len = len(word)
        # The cut after this word, if any.
        n = len(items)
        kind, flags = _classify(word)
        if kind == _P_SENT:
            self._pend, self._pflags, self._pwait = _P_SENT, flags, False
        elif kind == _P_PAUSE and self._pause_ok(word, n):
            self._pend, self._pflags, self._pwait = _P_PAUSE, 0, False
        elif self._first and self._word_rule(word, n):
            self._pend, self._pflags, self._pwait = _P_WORD, 0, False

    def _pause_ok(self, word: str, n: int) -> bool:
        if self._first:
            return n >= self.config.first_min_words or (
                n == 1 and _bare(word) in self.config.fast_openers
            )
        return self._len >= self.config.pause_min_chars

    def _word_rule(self, word: str, n: int) -> bool:
        """Fast path: may the first fragment end after this, its n-th word?"""
        fmw = self.config.first_max_words
        if n < fmw:
            return False
        if n >= fmw + 2:
            return True
        if _clingy(word):
            return False
        return not (n == 1 and _bare(word) in _FUNCTION)  # a lone "In" / "And"

    def _cut_for_length(self, nxt: str) -> None:
        """The open segment cannot take ``nxt``: emit a prefix of it at the best place."""
        items = self._items
        n = len(items)
        half = self.config.max_chars // 2
        ends = []
        total = 0
        for it in items:
            total += len(it)
            ends.append(total)
        words = [it.lstrip(" ") for it in items]
        best, boundary = -1, Boundary.WORD
        for k in range(n - 1, -1, -1):  # the last pause mark in the second half
            if ends[k] < half:
                break
            if _classify(words[k])[0] == _P_PAUSE:
                best, boundary = k, Boundary.PAUSE
                break
        if best < 0:  # before the last conjunction/preposition in the second half
            for k in range(n - 1, -1, -1):
                if ends[k] < half:
                    break
                following = words[k + 1] if k + 1 < n else nxt
                if _bare(following) in _BREAK_BEFORE and not _clingy(words[k]):
                    best = k
                    break
        if best < 0:
            best = n - 1
            if n >= 2 and _clingy(words[best]) and ends[best - 1] >= half:
                best -= 1
        self._emit(best + 1, boundary)

    # ------------------------------------------------------------------------------- emitting

    def _emit(self, count: int, boundary: Boundary) -> None:
        """Emit the first ``count`` words of the open segment."""
        items = self._items
        text = "".join(items[:count])
        del items[:count]
        if items:
            items[0] = items[0].lstrip(" ")
            self._len = sum(map(len, items))
        else:
            self._len = 0
        self._emit_text(text, boundary)

    def _emit_text(self, text: str, boundary: Boundary) -> None:
        if _HAS_TEXT_RE.search(text) is None:
            return  # punctuation only: nothing to say
        self._out.append(Segment(text, boundary))
        self._first = False
        self._emitted += 1
