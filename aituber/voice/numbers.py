"""Numbers as Japanese numerals (kanji), so that every engine reads them the same way. No I/O."""

from __future__ import annotations

DIGITS = "〇一二三四五六七八九"
_SMALL = ((1000, "千"), (100, "百"), (10, "十"))
_LARGE = ((10**16, "京"), (10**12, "兆"), (10**8, "億"), (10**4, "万"))
MAX_NUMERAL = 10**20 - 1
"""Larger numbers are read digit by digit."""


def _below_10000(n: int) -> str:
    out = []
    for unit, name in _SMALL:
        q, n = divmod(n, unit)
        if q:
            out.append(("" if q == 1 else DIGITS[q]) + name)
    if n:
        out.append(DIGITS[n])
    return "".join(out)


def integer_to_kanji(n: int) -> str:
    """12345 -> 一万二千三百四十五; 0 -> 〇 (read ゼロ/レイ by the engine); negative with マイナス."""
    if n < 0:
        return "マイナス" + integer_to_kanji(-n)
    if n == 0:
        return DIGITS[0]
    if n > MAX_NUMERAL:
        return digits_to_kanji(str(n))
    out = []
    for unit, name in _LARGE:
        q, n = divmod(n, unit)
        if q:
            out.append(_below_10000(q) + name)
    out.append(_below_10000(n))
    return "".join(out)


def digits_to_kanji(digits: str) -> str:
    """Digit by digit: 0120 -> 〇一二〇."""
    return "".join(DIGITS[int(d)] for d in digits if d.isdigit())


def number_to_kanji(text: str) -> str:
    """A number as written (digits, at most one decimal point; no separators) -> kanji numerals.
    A leading zero (a code, a phone number) or a very long number is read digit by digit."""
    whole, _, fraction = text.partition(".")
    if len(whole) > 1 and whole.startswith("0") or not whole.isdigit() or int(whole) > MAX_NUMERAL:
        head = digits_to_kanji(whole)
    else:
        head = integer_to_kanji(int(whole))
    return head + ("点" + digits_to_kanji(fraction) if fraction else "")
