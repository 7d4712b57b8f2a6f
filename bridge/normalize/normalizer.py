"""The normalization stage: a segment's text → the words the voice is to say, plus a span map.

Pure: no I/O, no clock, no threads (the romanizers' tables load once, see :mod:`.scripts`).
It sees whole segments, which the segmenter never cuts inside a price, a date, a time or an
abbreviation, so it is safe on a stream.

The user's pronunciation dictionary, the English rules (:mod:`.english`, when the voice speaks
English) and the foreign-script runs are joined into one regular expression, tried only where
a rule can start: at a trigger character (a digit, a symbol, a letter of another script) or the
start of its word, and at a trigger word (a title, an abbreviation, a month, a dictionary word).
Two plain character-class and word searches find those; a segment with none of them is handed
back as it is, which costs a few microseconds (it runs on the first-audio path).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from bridge.config import NormalizeSettings
from bridge.normalize.english import RULES, TRIGGER_CHARS, TRIGGER_WORDS, Context, DateOrder, Rule
from bridge.normalize.scripts import FOREIGN_RUN, FOREIGN_START, ROMANIZERS, Romanizers, readable_scripts, script_of
from bridge.normalize.spans import NormalizedText, SpokenBuilder

ForeignText = Literal["transliterate", "skip"]

_GROUP = re.compile(r"\(\?P<(\w+)>")
_WORD = re.compile(r"[A-Za-z][A-Za-z.]*")
_BACKREF = re.compile(r"\(\?P=(\w+)\)")


@dataclass(frozen=True)
class NormalizerConfig:
    enabled: bool = True
    date_order: DateOrder = "mdy"
    foreign_text: ForeignText = "transliterate"
    #: Word or phrase → what to say instead (matched whole, ignoring case).
    lexicon: Mapping[str, str] = field(default_factory=dict)
    #: The voice's languages (``en-us``, ``ja`` …): English rules run only for English voices,
    #: and text in a script one of them reads is left alone.
    languages: tuple[str, ...] = ("en",)


class _RuleMatch:
    """A rule's own view of a match of the joined pattern: its groups under their own names."""

    __slots__ = ("_match", "_prefix", "string")

    def __init__(self, match: re.Match[str], prefix: str) -> None:
        self._match = match
        self._prefix = prefix
        self.string = match.string

    def __getitem__(self, name: str) -> str | None:
        return self._match.group(0) if name == 0 else self._match.group(self._prefix + name)

    def group(self, index: int = 0) -> str:
        return self._match.group(self._match.lastgroup or 0)

    def start(self) -> int:
        return self._match.start(self._match.lastgroup or 0)

    def end(self) -> int:
        return self._match.end(self._match.lastgroup or 0)


def _prefixed(pattern: str, prefix: str) -> str:
    pattern = _GROUP.sub(lambda m: f"(?P<{prefix}{m.group(1)}>", pattern)
    return _BACKREF.sub(lambda m: f"(?P={prefix}{m.group(1)})", pattern)


class Normalizer:
    """Turns segments into speakable text. Build once per settings; call per segment."""

    def __init__(self, config: NormalizerConfig | None = None, romanizers: Romanizers | None = None) -> None:
        self.config = config = config or NormalizerConfig()
        self.romanizers = romanizers or ROMANIZERS
        self._context = Context(date_order=config.date_order)
        self._readable = readable_scripts(config.languages)
        english = any(lang.lower().startswith("en") for lang in config.languages)
        rules: list[Rule] = []
        if config.lexicon:
            words = sorted(config.lexicon, key=len, reverse=True)
            self._lexicon = {word.lower(): spoken for word, spoken in config.lexicon.items()}
            alternation = "|".join(re.escape(word) for word in words)
            rules.append(Rule("lexicon", rf"(?<!\w)(?:{alternation})(?!\w)", self._say_lexicon, re.IGNORECASE))
        if english:
            rules.extend(RULES)
        rules.append(Rule("foreign", FOREIGN_RUN.pattern, self._say_foreign))
        self._rules = rules
        # One pattern, each rule an outer named group r<i> (its own groups renamed r<i>_<name>):
        # the outer group closes last, so lastgroup names the rule that matched.
        parts = []
        for index, rule in enumerate(rules):
            body = _prefixed(rule.pattern, f"r{index}_")
            if rule.flags & re.IGNORECASE:
                body = f"(?i:{body})"
            parts.append(f"(?P<r{index}>{body})")
        self._scanner = re.compile("|".join(parts))
        self._single = [re.compile(_prefixed(r.pattern, f"r{i}_"), r.flags) for i, r in enumerate(rules)]
        chars = f"{FOREIGN_START}|{TRIGGER_CHARS}" if english else FOREIGN_START
        self._trigger_chars = re.compile(chars)
        self._trigger_words = TRIGGER_WORDS if english else frozenset()
        self._lexicon_words = (
            re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE) if config.lexicon else None
        )

    # ------------------------------------------------------------------ rule callbacks
    def _say_lexicon(self, match: _RuleMatch, ctx: Context) -> str | None:
        return self._lexicon.get(match.group().lower())

    def _say_foreign(self, match: _RuleMatch, ctx: Context) -> str | None:
        run = match.group()
        script = script_of(run)
        if script in self._readable:
            return None
        if self.config.foreign_text == "skip":
            return ""
        return self.romanizers.romanize(run, script)

    # ------------------------------------------------------------------ the stage
    def __call__(self, text: str) -> NormalizedText:
        if not self.config.enabled or not text:
            return NormalizedText(text, text)
        starts = self._starts(text)
        if not starts:
            return NormalizedText(text, text)
        builder: SpokenBuilder | None = None
        done = 0  # text before this is rewritten or passed
        for start in starts:
            if start < done:
                continue
            match = self._scanner.match(text, start)
            if match is None:
                continue
            if builder is None:
                builder = SpokenBuilder(text)
            done = self._apply(builder, match, int(match.lastgroup[1:]))  # type: ignore[index]
        return builder.build() if builder is not None else NormalizedText(text, text)

    def _is_trigger(self, word: str) -> bool:
        stem = word.rstrip(".")
        return "." in stem or stem.lower() in self._trigger_words

    def _starts(self, text: str) -> list[int]:
        """Where a rule may start, in order: each trigger character and the start of its word,
        each trigger word. (A set lookup per word: a regex alternation of the words, case
        ignored, costs several times more on a segment with nothing to rewrite.)"""
        starts: set[int] = set()
        for hit in self._trigger_chars.finditer(text):
            at = hit.start()
            starts.add(at)
            starts.add(text.rfind(" ", 0, at) + 1)
        if self._trigger_words and any(map(self._is_trigger, _WORD.findall(text))):
            starts.update(hit.start() for hit in _WORD.finditer(text) if self._is_trigger(hit.group()))
        if self._lexicon_words is not None:
            starts.update(hit.start() for hit in self._lexicon_words.finditer(text))
        return sorted(starts)

    def _apply(self, builder: SpokenBuilder, match: re.Match[str], index: int) -> int:
        """Rewrite one match, or let the rules after it try the same position; where to go on."""
        start = match.start()
        rule = self._rules[index]
        spoken = rule.speak(_RuleMatch(match, f"r{index}_"), self._context)
        if spoken is not None:
            self._record(builder, rule, match.start(), match.end(), spoken)
            return max(match.end(), start + 1)
        for later in range(index + 1, len(self._rules)):
            other = self._single[later].match(match.string, start)
            if other is None or other.end() == start:
                continue
            spoken = self._rules[later].speak(_SingleMatch(other, f"r{later}_"), self._context)
            if spoken is not None:
                self._record(builder, self._rules[later], start, other.end(), spoken)
                return other.end()
        return start + 1

    @staticmethod
    def _record(builder: SpokenBuilder, rule: Rule, start: int, end: int, spoken: str) -> None:
        kind = rule.kind
        if kind == "foreign":
            kind = "skipped" if spoken == "" else "transliterated"
        builder.rewrite(kind, start, end, spoken)


class _SingleMatch(_RuleMatch):
    """A rule's view of a match of its own pattern (no outer group)."""

    def group(self, index: int = 0) -> str:
        return self._match.group(0)

    def start(self) -> int:
        return self._match.start()

    def end(self) -> int:
        return self._match.end()


def segment_notes(normalized: NormalizedText) -> dict[str, list[dict[str, str]]]:
    """What a ``segment`` event tells about foreign text: each run transliterated (and how it
    was said) or skipped. Empty when there was none."""
    notes: dict[str, list[dict[str, str]]] = {}
    for rewrite in normalized.rewrites:
        if rewrite.kind == "transliterated":
            notes.setdefault("transliterated", []).append({"text": rewrite.original, "as": rewrite.spoken})
        elif rewrite.kind == "skipped":
            notes.setdefault("skipped", []).append({"text": rewrite.original})
    return notes


@functools.lru_cache(maxsize=16)
def _cached(config_key: tuple) -> Normalizer:  # type: ignore[type-arg]
    enabled, date_order, foreign, lexicon, languages = config_key
    return Normalizer(NormalizerConfig(enabled, date_order, foreign, dict(lexicon), languages))


def normalizer_for(
    *,
    enabled: bool,
    date_order: DateOrder,
    foreign_text: ForeignText,
    lexicon: Mapping[str, str],
    languages: tuple[str, ...],
) -> Normalizer:
    """The shared normalizer for these settings (built once: compiling the rules takes ~ms)."""
    return _cached((enabled, date_order, foreign_text, tuple(sorted(lexicon.items())), tuple(languages)))


def session_normalizer(settings: NormalizeSettings, tts: object) -> Normalizer:
    """The normalizer for a session: the ``normalize`` section and the engine's languages
    (English when it declares none)."""
    return normalizer_for(
        enabled=settings.enabled,
        date_order=settings.date_order,
        foreign_text=settings.foreign_text,
        lexicon=settings.pronunciations,
        languages=tuple(getattr(tts, "languages", ("en",))),
    )


def warm(settings: NormalizeSettings, tts: object) -> Normalizer:
    """Build the session normalizer and load the romanizers' tables (pykakasi: ~0.5 s), so that
    the first session and its first foreign word do not pay for it. Blocking: run in a thread."""
    normalizer = session_normalizer(settings, tts)
    if normalizer.config.enabled and normalizer.config.foreign_text == "transliterate":
        normalizer.romanizers.load()
    return normalizer
