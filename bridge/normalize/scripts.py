"""Text in a script the voice cannot read: romanize it, or leave it out.

espeak-ng (Piper's phonemizer) reads a character of a script its voice lacks as that script's
name: ``こんにちは`` in an English voice is "Japanese letter" five times. So a run of such
characters is either transliterated into Latin letters the voice can pronounce, by the best
maintained romanizer for its language, or skipped (``foreign_text`` setting).

Romanizers, weighed in ``benchmarks/results/2026-12-03-normalize.md``:

* Japanese (any kana in the run): ``pykakasi`` → Hepburn, with the particles は/へ/を read as
  wa/e/o. ``cutlet`` reads particles better but needs MeCab and a 250 MB dictionary.
* Chinese (Han without kana): ``pypinyin`` (phrase-aware readings: 重庆 → chong qing).
* Everything else (Hangul, Cyrillic, Greek, Arabic, Hebrew, Indic, Thai …): ``anyascii``.
  ``uroman`` gives about the same output from a heavier package; ``unidecode`` has the same
  tables in older form.

Without the ``romanize`` extra (pykakasi, pypinyin) Japanese and Chinese fall back to
``anyascii`` (kanji then read in Chinese), so transliteration still never spells letter names.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Character ranges per script, for the scripts a run is classified by.
SCRIPT_RANGES: dict[str, str] = {
    "Kana": "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f",
    "Han": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff",
    "Hangul": "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af",
    "Cyrillic": "\u0400-\u052f",
    "Greek": "\u0370-\u03ff\u1f00-\u1fff",
    "Arabic": "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff",
    "Hebrew": "\u0590-\u05ff",
    "Devanagari": "\u0900-\u097f",
    "Thai": "\u0e00-\u0e7f",
}
_LATIN = "A-Za-z\u00c0-\u024f\u1e00-\u1eff"
#: A letter of a non-Latin script: any word character that is not a digit, ``_`` or Latin,
#: plus the combining marks of the scripts above (not word characters to ``re``).
_FOREIGN = rf"(?:[^\W\d_{_LATIN}]|[\u0591-\u05c7\u064b-\u065f\u0670\u0900-\u0dff\u0e31-\u0e4e\u3099-\u309c])"
#: What may sit between two foreign letters of one run (spaces, CJK and ASCII punctuation).
_JOIN = r"[\s,;:!?.'\"\-\u3000-\u303f\uff01-\uff20\u30fb\u30fc]"
#: Closing CJK punctuation that belongs to the run (so ``！`` is not left for the engine).
_CJK_TAIL = r"[\u3001\u3002\uff01\uff1f\uff0c\uff1a\uff1b\u300d\u300f\uff09]*"
#: Opening CJK brackets right before a run belong to it too.
_CJK_HEAD = r"[\u300c\u300e\uff08\u3010\u3008\u300a]*"
#: Where a foreign run may start (for the normalizer's trigger scan).
FOREIGN_START = rf"{_FOREIGN}|[\u300c\u300e\uff08\u3010\u3008\u300a]"
FOREIGN_RUN = re.compile(rf"{_CJK_HEAD}{_FOREIGN}(?:{_JOIN}*{_FOREIGN})*{_CJK_TAIL}")
#: The voice's languages → the scripts it reads besides Latin.
LANGUAGE_SCRIPTS: dict[str, frozenset[str]] = {
    "ru": frozenset({"Cyrillic"}), "uk": frozenset({"Cyrillic"}), "bg": frozenset({"Cyrillic"}),
    "sr": frozenset({"Cyrillic"}), "mk": frozenset({"Cyrillic"}), "be": frozenset({"Cyrillic"}),
    "kk": frozenset({"Cyrillic"}), "el": frozenset({"Greek"}), "ar": frozenset({"Arabic"}),
    "fa": frozenset({"Arabic"}), "ur": frozenset({"Arabic"}), "he": frozenset({"Hebrew"}),
    "hi": frozenset({"Devanagari"}), "ne": frozenset({"Devanagari"}), "th": frozenset({"Thai"}),
    "ja": frozenset({"Kana", "Han"}), "zh": frozenset({"Han"}), "ko": frozenset({"Hangul"}),
}  # fmt: skip
_CJK_PUNCT = str.maketrans({"。": ".", "！": "!", "？": "?", "、": ",", "，": ",", "：": ":", "；": ";",
                            "「": "", "」": "", "『": "", "』": "", "（": "", "）": "", "【": "", "】": "", "〈": "", "〉": "", "《": "", "》": "", "・": " ",
                            "\u3000": " "})  # fmt: skip
_COMPILED_RANGES = {name: re.compile(f"[{chars}]") for name, chars in SCRIPT_RANGES.items()}


def script_of(run: str) -> str:
    """The script a run is read in: Japanese when it has any kana (kanji included), else the
    first script found; "Other" for letters outside the table."""
    if _COMPILED_RANGES["Kana"].search(run):
        return "Japanese"
    for name, pattern in _COMPILED_RANGES.items():
        if pattern.search(run):
            return "Chinese" if name == "Han" else name
    return "Other"


def readable_scripts(languages: tuple[str, ...]) -> frozenset[str]:
    """Scripts a voice speaking ``languages`` (``en``, ``en-us``, ``ja`` …) reads as text."""
    scripts: set[str] = set()
    for language in languages:
        scripts |= LANGUAGE_SCRIPTS.get(language.lower().replace("_", "-").split("-")[0], frozenset())
    if "Kana" in scripts:
        scripts.add("Japanese")
    if "Han" in scripts:
        scripts.add("Chinese")
    return frozenset(scripts)


# ------------------------------------------------------------------------------ romanizers
_PARTICLES = {"ha": "wa", "he": "e", "wo": "o"}  # は へ を as particles


def _squash(text: str) -> str:
    return re.sub(r"\s+([,.!?:;)])", r"\1", re.sub(r"\s+", " ", text)).strip()


@dataclass
class Romanizers:
    """The romanizer of each language, loaded once (pykakasi takes ~0.5 s to load its tables)."""

    _kakasi: Any = None
    _pinyin: Callable[[str], list[str]] | None = None
    _loaded: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            try:
                import pykakasi

                self._kakasi = pykakasi.kakasi()
            except ImportError:
                log.info("pykakasi not installed: Japanese is romanized by anyascii")
            try:
                from pypinyin import lazy_pinyin

                self._pinyin = lazy_pinyin
            except ImportError:
                log.info("pypinyin not installed: Chinese is romanized by anyascii")
            self._loaded = True

    @property
    def names(self) -> dict[str, str]:
        self.load()
        return {
            "Japanese": "pykakasi" if self._kakasi is not None else "anyascii",
            "Chinese": "pypinyin" if self._pinyin is not None else "anyascii",
            "other": "anyascii",
        }

    def romanize(self, run: str, script: str) -> str:
        self.load()
        if script == "Japanese" and self._kakasi is not None:
            words = []
            for item in self._kakasi.convert(run):
                orig, roman = item["orig"], item["hepburn"]
                if orig in ("は", "へ", "を") and words:
                    roman = _PARTICLES.get(roman, roman)
                elif orig.endswith("は") and orig.startswith(("こんにち", "こんばん")):
                    roman = roman[:-2] + "wa"
                words.append(roman.translate(_CJK_PUNCT))
            return _squash(" ".join(words))
        if script == "Chinese" and self._pinyin is not None:
            return _squash(" ".join(p.translate(_CJK_PUNCT) for p in self._pinyin(run)))
        return _anyascii(run)


def _anyascii(run: str) -> str:
    """anyascii, with each word's syllables joined in lower case (it writes ``AnNyeongHaSeYo``)."""
    from anyascii import anyascii

    words = []
    for word in run.translate(_CJK_PUNCT).split():
        roman = anyascii(word)
        words.append(roman.lower() if re.search(r"[a-z][A-Z]", roman) else roman)
    return _squash(" ".join(words))


#: One per process: the tables are read-only once loaded.
ROMANIZERS = Romanizers()
