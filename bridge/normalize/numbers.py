"""Number words for English: cardinals, ordinals, years, digit strings.

The words come from ``num2words`` (weighed against ``inflect`` and NeMo's grammars:
``benchmarks/results/2026-12-03-normalize.md``), made to read the American way and to suit a
phonemizer: no "and" inside a number, no hyphens or commas (espeak-ng and Soprano's cleaner
both take "ninety nine" as two plain words).
"""

from __future__ import annotations

import functools

from num2words import num2words

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

#: Beyond this a number is read digit by digit (an ID, a hash, not a quantity).
MAX_CARDINAL = 10**15


def _plain(words: str) -> str:
    words = words.replace("-", " ").replace(",", "")
    return " ".join(word for word in words.split() if word != "and")


@functools.lru_cache(maxsize=4096)
def cardinal(number: int) -> str:
    """``1299`` → "one thousand two hundred ninety nine"; negative numbers get "minus"."""
    if number < 0:
        return "minus " + cardinal(-number)
    if number >= MAX_CARDINAL:
        return digits(str(number))
    return _plain(num2words(number))


@functools.lru_cache(maxsize=1024)
def ordinal(number: int) -> str:
    """``21`` → "twenty first"."""
    return _plain(num2words(number, to="ordinal"))


@functools.lru_cache(maxsize=1024)
def year(number: int) -> str:
    """``1999`` → "nineteen ninety nine", ``2005`` → "two thousand five", ``1905`` → "nineteen oh five"."""
    if not 1000 <= number <= 2999 or number % 1000 < 10 and number >= 2000:
        return cardinal(number)
    if number % 100 == 0 and number % 1000 != 0:
        return cardinal(number // 100) + " hundred"
    return _plain(num2words(number, to="year"))


def plural_year(number: int) -> str:
    """A decade: ``1990`` → "nineteen nineties", ``2000`` → "two thousands"."""
    words = year(number) if number >= 1000 else cardinal(number)
    head, _, last = words.rpartition(" ")
    if last.endswith("y"):
        last = last[:-1] + "ies"
    else:
        last += "s"
    return f"{head} {last}".strip()


def digits(text: str) -> str:
    """``"0451"`` → "zero four five one"."""
    return " ".join(DIGIT_WORDS[int(c)] for c in text if c.isdigit())


def decimal(integer: str, fraction: str) -> str:
    """``("3", "14")`` → "three point one four"; ``("", "5")`` → "point five"."""
    head = cardinal(int(integer.replace(",", ""))) + " " if integer else ""
    return f"{head}point {digits(fraction)}"
