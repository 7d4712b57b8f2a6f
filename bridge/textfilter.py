"""Streaming text-for-speech filter: LLM markdown in, speakable text out. Pure: no I/O, no clock.

    f = SpeechTextFilter()
    f.feed("**Hel")     -> "Hel"          # text that is certain; the rest is held
    f.feed("lo** [site](https://x.co) ") -> "lo site "
    f.flush()           -> ""             # end of the utterance: the rest, then a fresh state
    f.reset()                             # cancel: drop everything held

What it does to the text:

* markdown markers are removed: ``**bold**``, ``*it*``, ``__b__``, ``_i_``, ``~~strike~~``;
  ``#`` headings, ``-``/``*``/``+``/``•`` bullets, ``1.``/``1)`` numbers and ``[ ]``/``[x]``
  task boxes at the start of a line, blockquote ``>``; horizontal rules, table rules
  (``|---|:--:|``) and setext underlines are dropped whole; table pipes become pauses
  (``| a | b |`` -> ``a, b``); a backslash escape keeps the escaped character;
* ``[label](url)`` and ``![alt](src)`` speak the label; other square brackets are dropped;
* bare URLs (``http://``, ``https://``, ``www.``, lowercase) speak their domain
  (``https://www.example.com/a/b?x=1`` -> ``example.com``), trailing punctuation kept;
* fenced code blocks (``` and ~~~) are skipped (or, with ``skip_code_blocks=False``, their lines
  pass through raw); inline code loses its backticks and is otherwise kept as written;
* emoji are dropped (pictographs, dingbats, flags, keycaps, skin tones, ZWJ, variation
  selectors); ordinary punctuation and every script's letters stay.

Line breaks are kept as ``"\\n"`` (the segmenter cuts there; ``"\\r"`` is dropped, so CRLF text
works); other whitespace passes through.

Streaming: the filter is a character state machine, so its output (concatenated) does not depend
on how the input was split into ``feed`` calls. It holds back only what is still ambiguous: the
start of a line while it could be a marker or a rule (``-``, ``1.``, ``#``, `````, ``|--``), a
run of ``*``/``_``/``~``/````` until the next character, ``]`` until it is known whether ``(``
follows, a word start that could still become ``https://``/``www.``, a bare URL until it ends,
and a table pipe until the rest of its line shows whether it is the last one. Plain text goes
through a regex fast path, so ``feed`` is O(len(text)).
"""

from __future__ import annotations

import re

__all__ = ["SpeechTextFilter", "EMOJI_RE", "strip_emoji"]

# Emoji and pictographs (with their joiners and modifiers). Not the arrows, math, currency,
# ©/®/™ or CJK symbols, which the TTS front ends read or skip on their own.
_EMOJI_CHARS = (
    "\U0001f000-\U0001faff"  # mahjong, cards, enclosed alnum (flags), pictographs, emoticons…
    "\u2600-\u27bf"  # misc symbols, dingbats (☀ ★ ✓ ✨ ❤ ➡)
    "\u2b00-\u2bff"  # misc symbols and arrows (⭐ ⬛ ⭕)
    "\u231a\u231b\u2328\u23cf\u23e9-\u23f3\u23f8-\u23fa"  # ⌚ ⌛ ⏩ ⏰ …
    "\u2139\u24c2\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe"
    "\u3030\u303d\u3297\u3299"
    "\ufe00-\ufe0f\u200d\u20e3"  # variation selectors, zero-width joiner, keycap
    "\U000e0020-\U000e007f"  # tag characters (subdivision flags)
)
EMOJI_RE = re.compile(f"[{_EMOJI_CHARS}]+")


def strip_emoji(text: str) -> str:
    """``text`` without emoji (see :data:`EMOJI_RE`)."""
    return EMOJI_RE.sub("", text)


# A run of characters the inline state machine would pass through unchanged: no line break, no
# markdown marker, no emoji, and lowercase h/w only where they cannot start a URL (not after a
# space or an opening bracket/quote/marker). Matched against "previous char + text" at offset 1, so the
# lookbehind sees the character before the run.
_PLAIN_RE = re.compile(
    r"(?:[^\n*_~`\[\]!\\|hw" + _EMOJI_CHARS + r"]|(?<=[^\s(<>\"'\[*_~])[hw])+"
)

# Modes.
_HEAD = 0  # start of a line: markers (#, -, 1., >, ```, |---) are still possible
_INLINE = 1  # inside a line of prose
_INFO = 2  # rest of a fence-opening line (```python): dropped
_FHEAD = 3  # start of a line inside a fenced block: could be the closing fence
_FBODY = 4  # a line of code

# What the line head is holding.
_H_NONE = 0
_H_RULE = 1  # only -*+_=|: and bullets so far: a bullet, a rule, a table rule, or text
_H_HASH = 2  # #… : a heading marker or a #hashtag
_H_NUM = 3  # digits, maybe followed by . or ): an ordered-list marker or a number
_H_FENCE = 4  # ` or ~ run: a fence (3+) or inline code / strikethrough
_H_TASK = 5  # after a bullet: "[ ] " / "[x] "

_RULE_CHARS = frozenset("-*+_=|:•◦‣▪▸►–")
_BULLETS = frozenset("-*+•◦‣▪▸►–")
_TASKS = ("[ ] ", "[x] ", "[X] ")

# Inline pending kinds.
_K_NONE = 0
_K_EMPH = 1  # run of * _ ~
_K_TICK = 2  # run of backticks
_K_BRACKET = 3  # ] (is "(" next?)
_K_BANG = 4  # ! (is "[" next? then it is an image)
_K_BSLASH = 5  # backslash escape
_K_URLPFX = 6  # a word start that is still a prefix of http:// https:// www.
_K_PIPE = 7  # table pipe (and the spaces after it)

_URL_PREFIXES = ("http://", "https://", "www.")
_URL_STARTS = frozenset(("http://", "https://", "www."))
_URL_STOP = frozenset("<>\"'`|[]{}^\\*")  # ends a bare URL (as does whitespace)
_URL_TRAIL = ".,:;!?_~"  # stripped from a URL's end and spoken after the domain
_WORD_START_PREV = frozenset("(<>\"'[*_~")  # besides whitespace: a URL may start after these
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_SENT_PUNCT = frozenset(".,;:!?…。！？，、；：")
_EMOJI_SINGLE = re.compile(f"[{_EMOJI_CHARS}]")


def _host(url: str) -> str:
    """The domain to speak for a URL: no scheme, user, port, path or leading ``www.``."""
    i = url.find("://")
    if i >= 0:
        url = url[i + 3 :]
    for sep in "/?#":
        j = url.find(sep)
        if j >= 0:
            url = url[:j]
    url = url[url.rfind("@") + 1 :]
    j = url.find(":")
    if j >= 0:
        url = url[:j]
    if url[:4].lower() == "www.":
        url = url[4:]
    return url.strip(".")


def _keep_emphasis(run: str, prev: str, nxt: str) -> bool:
    """Whether a run of ``*``/``_``/``~`` is literal text (kept) rather than a markdown marker.

    ``prev``/``nxt`` are the input characters around the run (``"\\n"`` at a line's ends).
    """
    ch = run[0]
    single = len(run) == 1
    if prev.isspace() and nxt.isspace():
        return single  # "5 * 3", "a ~ b"; a lone "**" between spaces is noise
    if ch == "_" and prev.isalnum() and nxt.isalnum():
        return True  # snake_case
    if ch == "*" and single and prev.isdigit() and nxt.isdigit():
        return True  # 5*3
    return ch == "~" and single  # ~5 minutes (approximately)


class SpeechTextFilter:
    """Markdown/URL/code/emoji filter for speech, fed a stream of text pieces. See module docs."""

    def __init__(self, skip_code_blocks: bool = True) -> None:
        self.skip_code_blocks = skip_code_blocks
        self.reset()

    # ----------------------------------------------------------------------------- public API

    def reset(self) -> None:
        """Drop everything held and start a fresh utterance (at the start of a line)."""
        self._out: list[str] = []
        self._last_in = "\n"  # the last input character fed
        self._mode = _HEAD
        self._hkind = _H_NONE
        self._held = ""  # line-head characters held
        self._hprev = "\n"  # the input character before the held head
        self._fence_char = ""
        self._fence_len = 0
        self._fstate = 0  # closing-fence scan: 0 indent, 1 fence chars, 2 trailing spaces
        self._fcount = 0
        self._ikind = _K_NONE
        self._ipend = ""  # inline characters held
        self._iprev = "\n"  # the input character before the held inline run
        self._code = 0  # inside an inline code span: its backtick count
        self._skip = 0  # inside a link target "(...)": paren depth
        self._url: list[str] | None = None  # a bare URL being collected
        self._url_depth = 0
        self._cell = False  # text emitted on this line since the last table separator
        self._last = ""  # last non-space character emitted on this line

    @property
    def buffered_chars(self) -> int:
        """Characters held back, not yet emitted (line heads, inline runs)."""
        return len(self._held) + len(self._ipend)

    def feed(self, text: str) -> str:
        """Filter the next piece of text; returns the speech text that is now certain."""
        if "\r" in text:
            text = text.replace("\r", "")  # CRLF line ends: "\n" is the line break
        if not text:
            return ""
        out = self._out = []
        s = self._last_in + text
        pos, n = 1, len(s)
        while pos < n:
            mode = self._mode
            if mode == _INLINE:
                if not (self._ikind or self._code or self._skip or self._url is not None):
                    m = _PLAIN_RE.match(s, pos)
                    if m is not None:
                        run = m.group()
                        out.append(run)
                        tail = run.rstrip()
                        if tail:
                            self._cell = True
                            self._last = tail[-1]
                        pos = m.end()
                        continue
            elif mode == _FBODY or mode == _INFO:
                j = s.find("\n", pos)
                if j < 0:
                    j = n
                if j > pos:
                    if mode == _FBODY and not self.skip_code_blocks:
                        out.append(s[pos:j])
                    pos = j
                    continue
            self._step(s[pos], s[pos - 1])
            pos += 1
        self._last_in = s[-1]
        return strip_emoji("".join(out))

    def flush(self) -> str:
        """End of the utterance: returns everything still held, then starts fresh."""
        # A virtual line break settles every pending decision exactly as a real one would;
        # the break itself is not returned (the caller is ending the text, not a line).
        text = self.feed("\n")
        if text.endswith("\n"):
            text = text[:-1]
        skip = self.skip_code_blocks
        self.reset()
        self.skip_code_blocks = skip
        return text

    # ---------------------------------------------------------------------------- dispatching

    def _step(self, c: str, prev: str) -> None:
        mode = self._mode
        if mode == _INLINE:
            self._inline(c, prev)
        elif mode == _HEAD:
            self._head(c, prev)
        elif mode == _FHEAD:
            self._fence_head(c)
        elif mode == _FBODY:
            if c == "\n":
                if not self.skip_code_blocks:
                    self._out.append("\n")
                self._start_fence_line()
            elif not self.skip_code_blocks:
                self._out.append(c)
        else:  # _INFO
            if c == "\n":
                self._start_fence_line()

    def _replay(self, chars: str, prev: str) -> None:
        """Run held characters through the inline machine (after a head turned out to be text)."""
        for c in chars:
            self._inline(c, prev)
            prev = c

    # ------------------------------------------------------------------------------ line head

    def _head(self, c: str, prev: str) -> None:
        hk = self._hkind
        if hk == _H_NONE:
            if c == " " or c == "\t" or c == ">":
                return  # indentation, blockquote markers
            if c == "\n":
                self._out.append("\n")
                return
            if c in _RULE_CHARS:
                kind = _H_RULE
            elif c == "#":
                kind = _H_HASH
            elif "0" <= c <= "9":
                kind = _H_NUM
            elif c == "`" or c == "~":
                kind = _H_FENCE
            else:
                self._mode = _INLINE
                self._inline(c, prev)
                return
            self._hkind, self._held, self._hprev = kind, c, prev
            return

        held = self._held
        if hk == _H_RULE:
            if c in _RULE_CHARS or c == " " or c == "\t":
                self._held = held + c
                return
            self._hkind, self._held = _H_NONE, ""
            if c == "\n":  # a rule, a table rule, an empty bullet: nothing to say
                self._out.append("\n")
                return
            if len(held) >= 2 and held[0] in _BULLETS and held[1] in " \t":
                rest = held[2:].lstrip(" \t")
                if not rest and c == "[":
                    self._hkind, self._held = _H_TASK, "["
                    return
                self._mode = _INLINE
                self._replay(rest, " ")
                self._inline(c, prev)
                return
            self._mode = _INLINE
            self._replay(held, self._hprev)
            self._inline(c, prev)
        elif hk == _H_HASH:
            if c == "#" and len(held) < 6:
                self._held = held + c
                return
            self._hkind, self._held = _H_NONE, ""
            if c == " " or c == "\t":
                self._mode = _INLINE  # heading text follows
                return
            if c == "\n":
                self._out.append("\n")  # empty heading
                return
            self._mode = _INLINE
            self._replay(held, self._hprev)
            self._inline(c, prev)
        elif hk == _H_NUM:
            last = held[-1]
            if "0" <= c <= "9" and "0" <= last <= "9" and len(held) < 3:
                self._held = held + c
                return
            if (c == "." or c == ")") and "0" <= last <= "9":
                self._held = held + c
                return
            self._hkind, self._held = _H_NONE, ""
            self._mode = _INLINE
            if (last == "." or last == ")") and (c == " " or c == "\t"):
                return  # "1. " ordered-list marker
            self._replay(held, self._hprev)
            self._inline(c, prev)
        elif hk == _H_FENCE:
            if c == held[0]:
                self._held = held + c
                return
            self._hkind, self._held = _H_NONE, ""
            if len(held) >= 3:
                self._fence_char, self._fence_len = held[0], len(held)
                if c == "\n":
                    self._start_fence_line()
                else:
                    self._mode = _INFO
                return
            self._mode = _INLINE
            self._replay(held, self._hprev)
            self._inline(c, prev)
        else:  # _H_TASK
            held += c
            if held in _TASKS:
                self._hkind, self._held = _H_NONE, ""
                self._mode = _INLINE
                return
            if any(t.startswith(held) for t in _TASKS):
                self._held = held
                return
            self._hkind, self._held = _H_NONE, ""
            self._mode = _INLINE
            self._replay(held, " ")

    # ---------------------------------------------------------------------------- code fences

    def _start_fence_line(self) -> None:
        self._mode = _FHEAD
        self._held = ""
        self._fstate = 0
        self._fcount = 0

    def _fence_head(self, c: str) -> None:
        st = self._fstate
        if c == "\n":
            held = self._held
            if st >= 1 and self._fcount >= self._fence_len:  # closing fence
                self._fence_char, self._fence_len = "", 0
                self._held = ""
                self._mode = _HEAD
                self._hkind = _H_NONE
                return
            if not self.skip_code_blocks:
                self._out.append(held + "\n")
            self._start_fence_line()
            return
        if st == 0 and (c == " " or c == "\t"):
            self._held += c
            return
        if st <= 1 and c == self._fence_char:
            self._held += c
            self._fstate, self._fcount = 1, self._fcount + 1
            return
        if st >= 1 and (c == " " or c == "\t"):
            self._held += c
            self._fstate = 2
            return
        self._mode = _FBODY  # a line of code
        if not self.skip_code_blocks:
            self._out.append(self._held + c)
        self._held = ""

    # --------------------------------------------------------------------------------- inline

    def _put(self, text: str) -> None:
        self._out.append(text)
        tail = text.rstrip()
        if tail:
            self._cell = True
            self._last = tail[-1]

    def _separator(self) -> None:
        """A table pipe between cells: a pause (comma) unless the cell already ended in one."""
        if self._cell and self._last not in _SENT_PUNCT:
            self._out.append(", ")
        else:
            self._out.append(" ")
        self._cell = False

    def _settle(self) -> None:
        """Resolve held inline characters at the end of a line (or of the text)."""
        while self._ikind or self._url is not None:
            k, held = self._ikind, self._ipend
            self._ikind, self._ipend = _K_NONE, ""
            if k == _K_EMPH:
                if _keep_emphasis(held, self._iprev, "\n"):
                    self._put(held)
            elif k == _K_TICK:
                if self._code and len(held) == self._code:
                    self._code = 0
            elif k == _K_BANG:
                self._put("!")
            elif k == _K_URLPFX:
                self._put(held)
            # _K_BRACKET, _K_BSLASH, _K_PIPE at a line end: dropped
            if self._url is not None:
                self._finish_url()

    def _end_line(self) -> None:
        self._settle()
        self._code = 0
        self._skip = 0
        self._out.append("\n")
        self._cell = False
        self._last = ""
        self._mode = _HEAD
        self._hkind = _H_NONE

    def _finish_url(self) -> None:
        url = "".join(self._url or ())
        self._url = None
        core = url.rstrip(_URL_TRAIL)
        host = _host(core)
        if host:
            self._put(host)
        trail = url[len(core) :]
        if trail:
            self._replay(trail, core[-1:] or " ")

    def _inline(self, c: str, prev: str) -> None:  # noqa: C901 - one flat state machine
        k = self._ikind
        if k:
            held = self._ipend
            if k == _K_EMPH:
                if c == held[0]:
                    self._ipend = held + c
                    return
                self._ikind, self._ipend = _K_NONE, ""
                if _keep_emphasis(held, self._iprev, c):
                    self._put(held)
            elif k == _K_TICK:
                if c == "`":
                    self._ipend = held + c
                    return
                self._ikind, self._ipend = _K_NONE, ""
                if self._code:
                    if len(held) == self._code:
                        self._code = 0  # closing run; other runs inside code are dropped
                elif c != "\n":
                    self._code = len(held)  # opening run
            elif k == _K_BRACKET:
                self._ikind, self._ipend = _K_NONE, ""
                if c == "(":
                    self._skip = 1  # link target: skipped
                    return
            elif k == _K_BANG:
                self._ikind, self._ipend = _K_NONE, ""
                if c != "[":
                    self._put("!")
            elif k == _K_BSLASH:
                self._ikind, self._ipend = _K_NONE, ""
                if c in _ASCII_PUNCT:
                    self._put(c)  # escaped: literal, no markdown meaning
                    return
                if c != "\n":
                    self._put("\\")
            elif k == _K_URLPFX:
                cand = held + c
                low = cand.lower()
                if low in _URL_STARTS:
                    self._ikind, self._ipend = _K_NONE, ""
                    self._url, self._url_depth = [cand], 0
                    return
                if any(p.startswith(low) for p in _URL_PREFIXES):
                    self._ipend = cand
                    return
                self._ikind, self._ipend = _K_NONE, ""
                self._put(held)
                prev = held[-1]
            else:  # _K_PIPE
                if c == " " or c == "\t":
                    return
                self._ikind, self._ipend = _K_NONE, ""
                if c != "\n":
                    self._separator()

        if c == "\n":
            self._end_line()
            return
        if self._skip:
            if c == "(":
                self._skip += 1
            elif c == ")":
                self._skip -= 1
            return
        if self._url is not None:
            if c.isspace() or c in _URL_STOP or (c == ")" and self._url_depth == 0):
                self._finish_url()
                if self._ikind:  # the URL's trailing characters left something held
                    self._inline(c, prev)
                    return
            else:
                if c == "(":
                    self._url_depth += 1
                elif c == ")":
                    self._url_depth -= 1
                self._url.append(c)
                return
        if self._code:
            if c == "`":
                self._ikind, self._ipend = _K_TICK, "`"
            else:
                self._put(c)
            return
        if c == "*" or c == "_" or c == "~":
            self._ikind, self._ipend, self._iprev = _K_EMPH, c, prev
        elif c == "`":
            self._ikind, self._ipend = _K_TICK, "`"
        elif c == "[":
            pass  # a link label starts (or a bracket): the label is spoken, the bracket is not
        elif c == "]":
            self._ikind, self._ipend = _K_BRACKET, "]"
        elif c == "!":
            self._ikind, self._ipend = _K_BANG, "!"
        elif c == "\\":
            self._ikind, self._ipend = _K_BSLASH, "\\"
        elif c == "|":
            self._ikind, self._ipend = _K_PIPE, "|"
        elif (c == "h" or c == "w") and (prev.isspace() or prev in _WORD_START_PREV):
            # Only lowercase: URLs from LLMs are, and "He"/"What" at a sentence start are not
            # held back (the segmenter waits for that letter to confirm the sentence end).
            self._ikind, self._ipend = _K_URLPFX, c
        elif _EMOJI_SINGLE.match(c) is None:
            self._put(c)
