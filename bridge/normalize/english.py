"""English rules: the spans a phonemizer misreads, and the words a person says for them.

Each :class:`Rule` is a regular expression and a function from its match to the spoken words
(or ``None``: leave the span alone). The normalizer joins every rule into one alternation and
scans the segment once; at any position the first rule listed that matches wins, so the
specific forms (a phone number, a date, a time, money) come before the general number.

Why each class is here (espeak-ng, Piper's phonemizer, on the text as written):
``$3.14`` → "dollar three point one four"; ``12/03/2026`` → "twelve slash zero three …";
``2.5 kg`` → "two point five K G"; ``555-1234`` → "five hundred fifty five dash …";
``1990s`` → "nineteen hundred ninety z"; and after ``Dr.`` or ``Jan.`` it ends the sentence, so a
full stop, a falling pitch and a pause land inside the name. So abbreviations lose their period
(kept only where the segment ends), and every number is spelled out in words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bridge.normalize import numbers as nw
from bridge.segmenter import SENTENCE_STARTERS

DateOrder = Literal["mdy", "dmy"]


@dataclass(frozen=True)
class Context:
    """What a rule may need besides its match."""

    date_order: DateOrder = "mdy"


Speaker = Callable[[re.Match[str], Context], str | None]


@dataclass(frozen=True)
class Rule:
    kind: str
    pattern: str
    speak: Speaker
    flags: int = 0

    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.pattern, self.flags)


# ------------------------------------------------------------------------------- helpers
_NUM = r"\d{1,3}(?:,\d{3})+|\d+"  # an integer, with or without thousands separators
_DASH = r"\s?[-–—]\s?"
_MONTHS = (
    "January February March April May June July August September October November December".split()
)
_MONTH_ABBR = {m[:3].lower(): m for m in _MONTHS} | {"sept": "September"}
_MONTH_NAME = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)"
)
_WEEKDAYS = {
    "mon": "Monday", "tue": "Tuesday", "tues": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
    "thur": "Thursday", "thurs": "Thursday", "fri": "Friday", "sat": "Saturday", "sun": "Sunday",
}  # fmt: skip


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def _month(name: str) -> str:
    """``Jan``, ``Sept.``, ``January`` → "January"."""
    key = name.lower().rstrip(".")
    return _MONTH_ABBR.get(key[:4] if key.startswith("sept") else key[:3], name)


def _ends_segment(match: re.Match[str]) -> bool:
    """Whether nothing but closing punctuation follows the match: its period ends the sentence."""
    return not match.string[match.end() :].strip(" \"')]}”’»")


_NEXT_WORD = re.compile(r"\s+([A-Z][\w']*)")


def _period(match: re.Match[str]) -> str:
    """The sentence's full stop, when an abbreviation's period was also the sentence's: at the
    end of the segment, or before a word that opens sentences (the segmenter's rule: "at 10
    a.m. The pool" ends one, "the U.S. Army" does not)."""
    if not match.group(0).endswith("."):
        return ""
    if _ends_segment(match):
        return "."
    after = _NEXT_WORD.match(match.string, match.end())
    return "." if after is not None and after.group(1).lower() in SENTENCE_STARTERS else ""


def _plural(word: str, count_is_one: bool) -> str:
    return word if count_is_one else _PLURALS.get(word, word + "s")


_PLURALS = {"foot": "feet", "inch": "inches", "degree Celsius": "degrees Celsius", "degree Fahrenheit": "degrees Fahrenheit",
            "kilometer per hour": "kilometers per hour", "mile per hour": "miles per hour",
            "meter per second": "meters per second", "frame per second": "frames per second",
            "megabit per second": "megabits per second", "times": "times", "yen": "yen",
            "kilowatt hour": "kilowatt hours", "milliamp hour": "milliamp hours", "square foot": "square feet",
            "thousand": "thousand", "million": "million", "billion": "billion", "trillion": "trillion",
            "penny": "pence", "US dollar": "US dollars"}  # fmt: skip


def _quantity(integer: str | None, fraction: str | None) -> tuple[str, bool]:
    """Words of a number as written (``1,299``, ``2.5``, ``.5``) and whether it is exactly one."""
    if fraction:
        return nw.decimal(integer or "", fraction), False
    value = _int(integer or "0")
    return nw.cardinal(value), value == 1


# ------------------------------------------------------------------------------- money
_CURRENCIES = {  # symbol → (unit, minor unit or None)
    "$": ("dollar", "cent"),
    "€": ("euro", "cent"),
    "£": ("pound", "penny"),
    "¥": ("yen", None),
    "₹": ("rupee", None),
}
_MAGNITUDES = {"k": "thousand", "thousand": "thousand", "m": "million", "mm": "million", "mn": "million",
               "million": "million", "b": "billion", "bn": "billion", "billion": "billion",
               "t": "trillion", "tn": "trillion", "trillion": "trillion"}  # fmt: skip
_MAGNITUDE = r"(?:\s?(?P<mag>[kKmMbBtT]|bn|mn|mm)|\s(?P<magword>thousand|million|billion|trillion))(?![\w])"
_MONEY = (
    rf"(?P<cur>[$€£¥₹])(?P<int>{_NUM})(?:\.(?P<frac>\d+))?(?:{_MAGNITUDE})?"
    rf"(?:{_DASH}[$€£¥₹]?(?P<int2>{_NUM})(?:\.(?P<frac2>\d+))?(?:\s?(?P<mag2>[kKmMbB]|bn)(?![\w]))?)?"
)


def _amount(cur: str, integer: str, frac: str | None, magnitude: str | None, with_unit: bool = True) -> str:
    unit, minor = _CURRENCIES[cur]
    if magnitude:
        number, _ = _quantity(integer, frac)
        return f"{number} {_MAGNITUDES[magnitude.lower()]}" + (f" {_plural(unit, False)}" if with_unit else "")
    major = _int(integer)
    cents = int((frac or "0")[:2].ljust(2, "0")) if frac else 0
    if frac and (len(frac) > 2 or minor is None):  # $0.125, ¥3.5: read the decimal
        number, _ = _quantity(integer, frac)
        return f"{number} {_plural(unit, False)}" if with_unit else number
    parts = []
    if major or not cents:
        parts.append(nw.cardinal(major) + (f" {_plural(unit, major == 1)}" if with_unit else ""))
    if cents and minor:
        parts.append(f"{nw.cardinal(cents)} {_plural(minor, cents == 1)}")
    return " and ".join(parts)


def _money(m: re.Match[str], ctx: Context) -> str:
    cur = m["cur"]
    mag = m["mag"] or m["magword"]
    if m["int2"] is None:
        return _amount(cur, m["int"], m["frac"], mag)
    # A range: "$10-15", "$10-$20", "$1.5-2M": the unit once, after the second amount.
    mag2 = m["mag2"] or mag
    first = _amount(cur, m["int"], m["frac"], mag if mag else None, with_unit=False)
    if mag2 and not mag:
        first = _quantity(m["int"], m["frac"])[0]
    return f"{first} to {_amount(cur, m['int2'], m['frac2'], mag2)}"


# ------------------------------------------------------------------------------- dates
def _day_month(day: int, month: int, ctx: Context, year: int | None) -> str:
    if ctx.date_order == "dmy":
        text = f"the {nw.ordinal(day)} of {_MONTHS[month - 1]}"
    else:
        text = f"{_MONTHS[month - 1]} {nw.ordinal(day)}"
    return text + (f" {nw.year(year)}" if year is not None else "")


def _valid(month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= (29 if month == 2 else 30 if month in (4, 6, 9, 11) else 31)


def _iso_date(m: re.Match[str], ctx: Context) -> str | None:
    year, month, day = int(m["y"]), int(m["m"]), int(m["d"])
    if not _valid(month, day):
        return None
    return _day_month(day, month, ctx, year)


def _numeric_date(m: re.Match[str], ctx: Context) -> str | None:
    a, b = int(m["a"]), int(m["b"])
    month, day = (a, b) if ctx.date_order == "mdy" else (b, a)
    if not _valid(month, day):
        month, day = day, month  # 25/12/2026 in mdy can only be day first
        if not _valid(month, day):
            return None
    year = int(m["y"])
    if len(m["y"]) == 2:
        year += 2000 if year < 50 else 1900
    return _day_month(day, month, ctx, year)


def _month_day(m: re.Match[str], ctx: Context) -> str:
    month = _MONTHS.index(_month(m["mon"])) + 1
    year = int(m["y"]) if m["y"] else None
    return _day_month(int(m["d"]), month, ctx, year)


def _day_of_month(m: re.Match[str], ctx: Context) -> str:
    month = _month(m["mon"])
    article = "" if re.search(r"\bthe\s$", m.string[: m.start()], re.IGNORECASE) else "the "
    text = f"{article}{nw.ordinal(int(m['d']))} of {month}"
    return text + (f" {nw.year(int(m['y']))}" if m["y"] else "")


def _month_abbreviation(m: re.Match[str], ctx: Context) -> str:
    name = m["abbr"].lower()
    if name in ("sun", "sat", "wed", "mar") and _ends_segment(m):
        return None  # "the Sun." ends a sentence; "Sun." for Sunday rarely does
    full = _WEEKDAYS.get(name) or _month(name)
    return full + _period(m)


# ------------------------------------------------------------------------------- times
def _clock(hour: int, minute: int, meridiem: str | None) -> str:
    words = nw.cardinal(hour)
    if minute == 0:
        if meridiem:
            pass
        elif hour > 12 or hour == 0:
            words += " hundred"
        else:
            words += " o'clock"
    elif minute < 10:
        words += f" oh {nw.cardinal(minute)}"
    else:
        words += f" {nw.cardinal(minute)}"
    if meridiem:
        # "AM": espeak-ng spells it; "a m" and "A M" came back from Whisper as "at M".
        words += " AM" if meridiem.lower() == "a" else " PM"
    return words


_MERIDIEM = r"(?:\s?(?P<mer>[AaPp])\.?\s?[Mm]\b\.?)"


def _time(m: re.Match[str], ctx: Context) -> str | None:
    hour, minute = int(m["h"]), int(m["min"])
    if minute > 59 or (hour > 23 and not m["s"]):
        return None
    if m["s"]:  # 1:15:30 is a duration
        parts = [(hour, "hour"), (minute, "minute"), (int(m["s"]), "second")]
        return " ".join(f"{nw.cardinal(n)} {_plural(u, n == 1)}" for n, u in parts if n) or "zero seconds"
    if m["mer"] and not 1 <= hour <= 12:
        return None
    return _clock(hour, minute, m["mer"]) + _period(m)


def _hour_meridiem(m: re.Match[str], ctx: Context) -> str | None:
    hour = int(m["h"])
    if not 1 <= hour <= 12:
        return None
    return _clock(hour, 0, m["mer"]) + _period(m)


# ------------------------------------------------------------------------------- numbers
_UNITS: dict[str, str] = {
    "kg": "kilogram", "kgs": "kilogram", "g": "gram", "mg": "milligram", "lb": "pound", "lbs": "pound",
    "oz": "ounce", "km": "kilometer", "m": "meter", "cm": "centimeter", "mm": "millimeter",
    "mi": "mile", "ft": "foot", "yd": "yard", "km/h": "kilometer per hour", "kmh": "kilometer per hour",
    "kph": "kilometer per hour", "mph": "mile per hour", "m/s": "meter per second",
    "°C": "degree Celsius", "°F": "degree Fahrenheit", "ºC": "degree Celsius", "ºF": "degree Fahrenheit",
    "°": "degree", "º": "degree",
    "h": "hour", "hr": "hour", "hrs": "hour", "min": "minute", "mins": "minute", "sec": "second",
    "secs": "second", "s": "second", "ms": "millisecond",
    "KB": "kilobyte", "kB": "kilobyte", "MB": "megabyte", "GB": "gigabyte", "TB": "terabyte",
    "Mbps": "megabit per second", "Hz": "hertz", "kHz": "kilohertz", "MHz": "megahertz", "GHz": "gigahertz",
    "W": "watt", "kW": "kilowatt", "kWh": "kilowatt hour", "V": "volt", "mAh": "milliamp hour",
    "L": "liter", "l": "liter", "ml": "milliliter", "mL": "milliliter", "gal": "gallon",
    "tsp": "teaspoon", "tbsp": "tablespoon", "px": "pixel", "fps": "frame per second",
    "sq ft": "square foot", "x": "times", "k": "thousand", "K": "thousand", "M": "million",
    "B": "billion", "bn": "billion", "USD": "US dollar", "EUR": "euro", "GBP": "pound",
    "%": "percent",
}  # fmt: skip
_NO_PLURAL = {"hertz", "kilohertz", "megahertz", "gigahertz", "percent"}
#: Units written right after a number with no space and read as a word when spaced ("5 m" is
#: five meters, "5 in" and "5 a" are not units): these need the number glued or a clear unit.
_UNIT_RE = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_QUANTITY = (
    rf"(?<![\w./:-])(?P<neg>-)?(?=\.?\d)(?P<int>{_NUM})?(?:\.(?P<frac>\d+))?"
    rf"(?:{_DASH}(?P<int2>{_NUM})(?:\.(?P<frac2>\d+))?)?"
    rf"(?:\s?(?P<unit>{_UNIT_RE}))?(?![\w])"
)
_YEAR_CUES = re.compile(
    r"\b(?:in|since|by|from|until|till|before|after|during|circa|year|of|to|and|through|around|early|late|mid|was"
    rf"|{_MONTH_NAME[3:-1]}),?\s+$",
    re.IGNORECASE,
)
#: What follows a bare 1000-2099 that counts things ("1500 people", "2048 bytes"); any other
#: is read as a year ("built 1905 by hand", "It's 2026."): a segment may begin after its cue
#: word ("Built in" | "1905 by hand." when the first fragment is cut after two words).
_COUNTED = re.compile(r"\s+(?!(?:was|is|has|does|as|this|its|his|hers|yours|ours|thus|plus)\b)[a-z]+s\b")


def _number_words(integer: str | None, fraction: str | None, m: re.Match[str], allow_year: bool) -> tuple[str, bool]:
    if allow_year and integer and fraction is None and "," not in integer and len(integer) == 4:
        value = int(integer)
        before = m.string[: m.start()]
        after = m.string[m.end() :]
        if 1000 <= value <= 2099 and (_YEAR_CUES.search(before) or not _COUNTED.match(after)):
            return nw.year(value), False
    return _quantity(integer, fraction)


def _number(m: re.Match[str], ctx: Context) -> str | None:
    if m["int"] is None and m["frac"] is None:
        return None
    if m["int"] is None and m["unit"] is None and m["int2"] is None:
        return None  # ".5" alone: leave to the sentence (".5" may be a list marker)
    unit = m["unit"]
    if unit and unit.isalpha() and unit not in _UNITS:
        return None
    has_unit = unit is not None
    first, first_is_one = _number_words(m["int"], m["frac"], m, allow_year=not has_unit)
    if m["neg"]:
        first = "minus " + first
        first_is_one = False
    words = first
    is_one = first_is_one
    if m["int2"] is not None:
        second, is_one = _number_words(m["int2"], m["frac2"], m, allow_year=not has_unit)
        words = f"{first} to {second}"
    if unit:
        name = _UNITS[unit]
        if name in _NO_PLURAL or name in ("thousand", "million", "billion"):
            words += f" {name}"
        else:
            words += f" {_plural(name, is_one)}"
    return words


def _word_number(m: re.Match[str], ctx: Context) -> str:
    """``COVID-19``, ``F-16``, ``mid-2020``: the word, then the number (not "minus nineteen")."""
    return f"{m['w']} {_number_words(m['n'], None, m, allow_year=True)[0]}"


def _decade(m: re.Match[str], ctx: Context) -> str:
    if m["short"]:
        return nw.plural_year(int(m["short"]) * 10).split()[-1]  # '90s → "nineties"
    return nw.plural_year(int(m["full"]))


def _ordinal(m: re.Match[str], ctx: Context) -> str | None:
    value = _int(m["n"])
    suffix = m["suf"].lower()
    expected = "th" if 10 <= value % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(value % 10, "th")
    return nw.ordinal(value) if suffix == expected else None


_VULGAR = {"½": (1, 2), "⅓": (1, 3), "⅔": (2, 3), "¼": (1, 4), "¾": (3, 4), "⅕": (1, 5), "⅛": (1, 8),
           "⅜": (3, 8), "⅝": (5, 8), "⅞": (7, 8)}  # fmt: skip


def _fraction_words(num: int, den: int) -> str:
    if den == 2:
        name = "half"
    elif den == 4:
        name = "quarter"
    else:
        name = nw.ordinal(den)
    if num == 1:
        return f"one {name}"
    return f"{nw.cardinal(num)} {'halves' if name == 'half' else name + 's'}"


def _fraction(m: re.Match[str], ctx: Context) -> str | None:
    if m["vulgar"]:
        num, den = _VULGAR[m["vulgar"]]
    else:
        num, den = int(m["num"]), int(m["den"])
    whole = m["whole"]
    if not (0 < num < den <= 16):
        if whole or m["vulgar"]:
            return None
        if _valid(num, den) if ctx.date_order == "mdy" else _valid(den, num):
            month, day = (num, den) if ctx.date_order == "mdy" else (den, num)
            return _day_month(day, month, ctx, None)
        return f"{nw.cardinal(num)} {nw.cardinal(den)}"  # 24/7, 50/50
    words = _fraction_words(num, den)
    if whole:
        article = "a " if num == 1 else ""
        return f"{nw.cardinal(int(whole))} and {article}{words.removeprefix('one ') if num == 1 else words}"
    return words


def _phone(m: re.Match[str], ctx: Context) -> str:
    groups = [g for g in re.findall(r"\d+", m.group(0))]
    if m.group(0).startswith("+"):
        groups[0] = "plus " + nw.digits(groups[0])
    return ", ".join(g if g.startswith("plus") else nw.digits(g) for g in groups)


def _version(m: re.Match[str], ctx: Context) -> str:
    parts = (m["ver"] or m["ver3"]).split(".")
    words = " point ".join("oh" if p == "0" and i else nw.cardinal(int(p)) for i, p in enumerate(parts))
    return ("version " if m["v"] else "") + words


# ------------------------------------------------------------------------------- words
_TITLES = {"dr": "Doctor", "mr": "Mister", "mrs": "Missus", "ms": "Miz", "prof": "Professor",
           "gen": "General", "capt": "Captain", "lt": "Lieutenant", "col": "Colonel", "sgt": "Sergeant",
           "rev": "Reverend", "gov": "Governor", "sen": "Senator", "rep": "Representative",
           "pres": "President", "mt": "Mount", "ft": "Fort", "jr": "Junior", "sr": "Senior",
           "st": "Saint"}  # fmt: skip
_STREETS = {"dr": "Drive", "st": "Street"}
_CAPITALIZED = re.compile(r"[A-Z][a-z]")
_NUMBERED_OR_NAMED = re.compile(r"(?:\b[A-Z][a-z]+|\d+(?:st|nd|rd|th)?)\s$")


def _title(m: re.Match[str], ctx: Context) -> str | None:
    abbr = m["t"].lower()
    after = m.string[m.end() :]
    before = m.string[: m.start()]
    followed_by_name = bool(_CAPITALIZED.match(after.lstrip())) and after[:1] == " "
    if abbr in _STREETS:
        # "Dr. Patel", "St. Louis", "Visit St. Paul's"; but "Baker St.", "42 Elm St. is", "Mulholland Dr."
        if not followed_by_name and _NUMBERED_OR_NAMED.search(before):
            return _STREETS[abbr] + _period(m)
        return _TITLES[abbr] + ("" if followed_by_name else _period(m))
    if not m.group(0).endswith(".") and not followed_by_name:
        return None  # "Dr" without a period is a title only before a name
    return _TITLES[abbr] + ("" if followed_by_name else _period(m))


_ABBREVIATIONS = {"vs": "versus", "v": "versus", "e.g": "for example", "eg": "for example", "i.e": "that is",
                  "ie": "that is", "etc": "et cetera", "approx": "approximately", "appt": "appointment",
                  "dept": "department", "ave": "Avenue", "blvd": "Boulevard", "rd": "Road", "fig": "figure",
                  "no": "number", "nos": "numbers", "ltd": "Limited", "corp": "Corporation", "inc": "Inc",
                  "co": "Company", "est": "established", "min": "minimum", "max": "maximum",
                  "w/": "with", "w/o": "without", "a.k.a": "also known as", "aka": "also known as",
                  "tel": "telephone", "govt": "government", "intl": "international", "misc": "miscellaneous",
                  "ph.d": "P H D", "yr": "year", "yrs": "years", "wk": "week", "wks": "weeks", "mo": "month", "mos": "months"}  # fmt: skip


def _abbreviation(m: re.Match[str], ctx: Context) -> str | None:
    key = m["ab"].lower().rstrip(".")
    if key in ("no", "nos") and not re.match(r"\s?\d", m.string[m.end() :]):
        return None  # "No." is a number only before one
    words = _ABBREVIATIONS.get(key)
    if words is None:
        return None
    return words + _period(m)


def _initialism(m: re.Match[str], ctx: Context) -> str:
    """``U.S.`` → "U S": letters without periods (the engine ends a sentence at each)."""
    return " ".join(m.group(0).replace(".", "")) + _period(m)


def _email(m: re.Match[str], ctx: Context) -> str:
    user, _, domain = m.group(0).partition("@")
    spoken_user = re.sub(r"[._-]", lambda d: {".": " dot ", "_": " underscore ", "-": " dash "}[d.group()], user)
    return f"{spoken_user} at {domain.replace('.', ' dot ')}"


_SYMBOLS = {"&": "and", "+": "plus", "=": "equals", "×": "times", "→": "to", "≈": "about", "~": "about",
            "±": "plus or minus", "<": "less than", ">": "more than", "≤": "at most", "≥": "at least"}  # fmt: skip


def _symbol(m: re.Match[str], ctx: Context) -> str | None:
    if m["hash"]:
        return f"number {nw.cardinal(int(m['hash']))}"
    if m["tag"]:
        return f"hashtag {m['tag']}"
    if m["handle"]:
        return f"at {m['handle']}"
    if m["plus2"]:
        return m["plus2"][0] + " plus plus"
    return _SYMBOLS[m["sym"]]


def _slash_words(m: re.Match[str], ctx: Context) -> str:
    if {m["w1"].lower(), m["w2"].lower()} == {"and", "or"}:
        return f"{m['w1']} or"
    return f"{m['w1']} or {m['w2']}"


# ------------------------------------------------------------------------------- the rules
RULES: tuple[Rule, ...] = (
    Rule("email", r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?<!\.)", _email),
    Rule(
        "phone",
        r"(?<![\w+-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-])"
        r"|(?<![\w.,-])\d{3}-\d{4}(?![\w-])|(?<![\w-])1-8\d\d-\d{3}-\d{4}(?![\w-])",
        _phone,
    ),
    Rule("date", r"(?<![\w.-])(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})(?![\w-])", _iso_date),
    Rule("date", r"(?<![\w./-])(?P<a>\d{1,2})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4}|\d{2})(?![\w/-]|\.\d)", _numeric_date),
    Rule(
        "date",
        rf"\b(?P<mon>{_MONTH_NAME})\.?\s(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?![\w:])(?:,?\s(?P<y>\d{{4}})(?!\w))?",
        _month_day,
    ),
    Rule(
        "date",
        rf"(?<![\w.])(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s(?:of\s)?(?P<mon>{_MONTH_NAME})\b(?:,?\s(?P<y>\d{{4}})(?!\w))?",
        _day_of_month,
    ),
    Rule("time", rf"(?<![\w.:])(?P<h>\d{{1,2}}):(?P<min>\d\d)(?::(?P<s>\d\d))?(?![\d:]){_MERIDIEM}?", _time),
    Rule("time", rf"(?<![\w.:])(?P<h>\d{{1,2}}){_MERIDIEM}", _hour_meridiem),
    Rule(
        "version",
        r"(?<![\w.])(?:(?P<v>[vV])(?P<ver>\d+(?:\.\d+)*)|(?P<ver3>\d+\.\d+\.\d+(?:\.\d+)*))(?!\w|\.\d)",
        _version,
    ),
    Rule("money", rf"(?<![\w.]){_MONEY}", _money),
    Rule("decade", r"(?<![\w.])(?:(?P<full>1\d\d0|20\d0)|['‘’](?P<short>\d)0)['’]?s\b", _decade),
    Rule("ordinal", rf"(?<![\w.])(?P<n>{_NUM})(?P<suf>st|nd|rd|th|ST|ND|RD|TH)\b", _ordinal),
    Rule(
        "fraction",
        r"(?<![\w./])(?:(?P<whole>\d+)\s)?(?:(?P<num>\d{1,3})/(?P<den>\d{1,3})(?![\w/])|(?P<vulgar>[½⅓⅔¼¾⅕⅛⅜⅝⅞]))",
        _fraction,
    ),
    Rule("number", r"(?<![\w-])(?P<w>[A-Za-z]{1,12})-(?P<n>\d{1,4})(?![\w-]|\.\d)", _word_number),
    Rule("number", _QUANTITY, _number),
    Rule(
        "title",
        r"\b(?P<t>Dr|Mr|Mrs|Ms|Prof|Gen|Capt|Lt|Col|Sgt|Rev|Gov|Sen|Rep|Pres|Mt|Ft|Jr|Sr|St)(?:\.|\b(?=\s[A-Z]))",
        _title,
    ),
    Rule(
        "abbreviation",
        r"(?<![\w.])(?P<ab>e\.g\.|i\.e\.|a\.k\.a\.|Ph\.D\.?|w/o|w/(?=\s|$)|(?:vs|etc|approx|appt|dept|Ave|Blvd|Rd|Fig|No|Nos|Ltd|Corp"
        r"|Inc|Co|est|min|max|tel|govt|intl|misc|yrs?|wks?|mos?)\.|vs\b|v\.(?=\s)|aka\b|eg\b(?=,))",
        _abbreviation,
        re.IGNORECASE,
    ),
    Rule("abbreviation", r"\b(?P<abbr>Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec|Mon|Tues|Tue|Wed|Thurs|Thur|Thu|Fri|Sat|Sun)\.", _month_abbreviation),
    Rule("initialism", r"(?<![\w.])(?:[A-Za-z]\.){2,}(?![\w])", _initialism),
    Rule(
        "symbol",
        r"(?<![\w#])#(?P<hash>\d+)\b|(?<![\w#])#(?P<tag>[A-Za-z]\w*)|(?<![\w@.])@(?P<handle>[A-Za-z_]\w*)"
        r"|\b(?P<plus2>[A-Za-z]\+\+)|(?P<sym>(?:(?<=\s)|^)[&+=×→≈<>≤≥±](?=\s|$)|&|×|→|≈|±|~(?=\d))",
        _symbol,
    ),
    Rule("symbol", r"\b(?P<w1>and|or|he|she|him|her|his|s?he)/(?P<w2>or|and|she|her|hers|they|them|their)\b", _slash_words),
)


# ------------------------------------------------------------------------------- triggers
#: Characters at (or in the word of) which some rule may start: digits, currency and other
#: symbols, a quote or point or minus before a digit. Scanning for these is what a segment with
#: nothing to rewrite costs.
TRIGGER_CHARS = r"[\d$€£¥₹½⅓⅔¼¾⅕⅛⅜⅝⅞&+=×→≈<>≤≥±~#@/(]|['‘’.-](?=\d)"
#: Words a rule starts with (lower case, without a final period): titles, abbreviations, months
#: and weekdays. A word with a period inside (``U.S``, ``e.g``) is one too.
TRIGGER_WORDS: frozenset[str] = frozenset(
    w for w in (*_TITLES, *_ABBREVIATIONS, *_WEEKDAYS, *_MONTH_ABBR, *(m.lower() for m in _MONTHS)) if w[-1:].isalpha()
)
