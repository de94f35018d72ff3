"""Folds chat text into one canonical form for matching (NG words, repeats, floods). Pure, no I/O.

The folded text is never shown: the viewer's text is displayed as written. `normalize` applies, in order:

1. zero-width, format and control characters removed (whitespace controls become spaces);
2. NFKC (full/half width, compatibility forms) and case folding;
3. katakana -> hiragana; punctuation, symbols, emoji and spaces become separators; stray combining marks go;
4. separators collapsed: removed next to Japanese/CJK text ("死 ね", "し.ね") and between single Latin
   letters ("s h i n e"), otherwise one space between words;
5. runs of one character longer than three cut to three ("wwwwww" -> "www", "ーーーー" -> "ーーー").

Steps 1-3 are mostly one table lookup per character (`str.translate`), which also does NFKC's work for
full-width ASCII; NFKC itself runs only for text that still needs it (half-width kana, compatibility
characters, decomposed kana such as か + U+3099). Speed matters: every chat message passes here.

normalize(normalize(x)) == normalize(x). `normalize_spans` gives the same text plus, for each character,
the span of the original text it came from, so a hit found in folded text can be masked in the original.
"""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata
from itertools import chain, pairwise

from aituber.core.comment import Author

__all__ = [
    "Span",
    "char_class",
    "chars_folding_to",
    "fold",
    "is_attached",
    "katakana_to_hiragana",
    "name_key",
    "normalize",
    "normalize_spans",
    "squash",
    "strip_invisible",
    "viewer_key",
]

_NO_SPACE_SCRIPT_START = "\u2e80"
"""CJK radicals, kana, kanji and everything above: scripts written without spaces between words."""

_HANGUL_FILLERS = (0x115F, 0x1160, 0x3164, 0xFFA0)
"""Letters that render as nothing; a favourite for invisible names and for splitting words."""


_VOICING_MARKS = (0x3099, 0x309A)
"""Combining dakuten/handakuten: kept until NFKC has composed them with their kana (か + ゙ -> が)."""


def _build_tables() -> tuple[dict[int, str | None], dict[int, str | None]]:
    """(invisible, fold): the first only removes invisible characters; the second does steps 1 and 3
    for text that needs no NFKC, and most of NFKC's work for chat (full-width ASCII, U+3000)."""
    invisible: dict[int, str | None] = {}
    folding: dict[int, str | None] = {}
    for cp in chain(range(0x20000), range(0xE0000, 0xE1000)):
        ch = chr(cp)
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf"):
            invisible[cp] = folding[cp] = " " if ch.isspace() else None
        elif category[0] in "PSZ":
            folding[cp] = " "
        elif category in ("Mn", "Me") and cp not in _VOICING_MARKS:
            folding[cp] = None
    for cp in _HANGUL_FILLERS:
        invisible[cp] = folding[cp] = None
    for cp in range(0xFF01, 0xFF5F):  # full-width ASCII, as NFKC would fold it
        ascii_char = chr(cp - 0xFEE0)
        folding[cp] = ascii_char if ascii_char.isalnum() else " "
    for cp in range(0x30A1, 0x30F7):  # ァ..ヶ -> ぁ..ゖ
        folding[cp] = chr(cp - 0x60)
    folding[0x0131] = "i"  # dotless ı: case folding keeps it, and "kıll" should still read "kill"
    folding[0x30FD] = "\u309d"  # ヽ -> ゝ
    folding[0x30FE] = "\u309e"  # ヾ -> ゞ
    return invisible, folding


_Table = list[int | str | None]
_IDENTITY: _Table = list(range(0x10000))


def _as_list(table: dict[int, str | None]) -> _Table:
    """The BMP part of a table as a list: str.translate looks a list up without raising for misses."""
    codes = list(_IDENTITY)
    for cp, value in table.items():
        if cp < 0x10000:
            codes[cp] = value
    return codes


_INVISIBLE_MAP, _FOLD_MAP = _build_tables()
_AFTER_NFKC_MAP = {**_FOLD_MAP, **dict.fromkeys(_VOICING_MARKS)}
"""After NFKC the voicing marks left over could not be composed: they go too."""
_INVISIBLE_BMP, _FOLD_BMP, _AFTER_NFKC_BMP = map(_as_list, (_INVISIBLE_MAP, _FOLD_MAP, _AFTER_NFKC_MAP))
_COMPATIBILITY_BMP = tuple(
    cp for cp in range(0x10000) if not 0xD800 <= cp < 0xE000 and not unicodedata.is_normalized("NFKC", chr(cp))
)
"""The BMP characters NFKC changes."""
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_utf_16_le_encode = codecs.utf_16_le_encode  # cheaper than str.encode("utf-16-le"): no codec lookup


def _translate(text: str, bmp: _Table, full: dict[int, str | None]) -> str:
    text = text.translate(bmp)
    if len(_utf_16_le_encode(text, "surrogatepass")[0]) != 2 * len(text):  # emoji and other astral characters

        def astral(m: re.Match[str]) -> str:
            value = full.get(ord(m[0]), m[0])
            return "" if value is None else value

        text = _ASTRAL.sub(astral, text)
    return text


_REPEAT = re.compile(r"(.)\1\1\1+", re.DOTALL)
_MAX_RUN = 3


def char_class(code_points: list[int]) -> str:
    """A regex character class for `code_points`, written as ranges."""
    parts: list[str] = []
    points = sorted(code_points)
    start = prev = points[0]
    for cp in [*points[1:], -1]:
        if cp == prev + 1:
            prev = cp
            continue
        parts.append(re.escape(chr(start)) if start == prev else f"{re.escape(chr(start))}-{re.escape(chr(prev))}")
        start = prev = cp
    return "[" + "".join(parts) + "]"


def chars_folding_to(targets: str) -> list[int]:
    """The BMP code points whose NFKC form contains one of `targets` (e.g. "<" -> <, ＜, ﹤), for
    targets that case folding leaves alone (punctuation)."""
    found = [ord(t) for t in targets]
    for cp in _COMPATIBILITY_BMP:
        folded = unicodedata.normalize("NFKC", chr(cp))
        if any(t in folded for t in targets):
            found.append(cp)
    return sorted(set(found))


def fold(text: str) -> str:
    """Character-level folding only (steps 1-3): separators become spaces but are not collapsed."""
    if text.isascii():
        return text.translate(_FOLD_BMP).lower()
    folded = _translate(text, _FOLD_BMP, _FOLD_MAP)
    # Usually that is all: the text is NFKC already and has nothing to case fold. Otherwise (half-width
    # kana, compatibility characters, decomposed accents, upper case) repeat until stable.
    for _ in range(8):
        if not unicodedata.is_normalized("NFKC", folded):
            folded = _translate(unicodedata.normalize("NFKC", folded), _AFTER_NFKC_BMP, _AFTER_NFKC_MAP)
            continue
        cased = folded.casefold()
        if "\u3099" in cased or "\u309a" in cased:  # in NFKC text these could not be composed
            cased = cased.replace("\u3099", "").replace("\u309a", "")
        if cased == folded:
            break
        folded = _translate(cased, _FOLD_BMP, _FOLD_MAP)
    return folded


_KATAKANA_TO_HIRAGANA = {cp: cp - 0x60 for cp in range(0x30A1, 0x30F7)}


def katakana_to_hiragana(text: str) -> str:
    """ァ..ヶ as ぁ..ゖ, nothing else changed (for patterns and names, which must keep their syntax)."""
    return text.translate(_KATAKANA_TO_HIRAGANA)


def strip_invisible(text: str) -> str:
    """Zero-width, format and control characters removed (whitespace controls become spaces)."""
    return _translate(text, _INVISIBLE_BMP, _INVISIBLE_MAP)


def _joins(left: str, right: str) -> bool:
    """Whether the separator between two tokens is dropped (see the module docstring, step 4)."""
    return (
        (len(left) == 1 and len(right) == 1) or left[-1] >= _NO_SPACE_SCRIPT_START or right[0] >= _NO_SPACE_SCRIPT_START
    )


def _collapse_separators(text: str) -> str:
    tokens = text.split()
    if len(tokens) <= 1:
        return tokens[0] if tokens else ""
    out = [tokens[0]]
    for left, right in pairwise(tokens):
        if not _joins(left, right):
            out.append(" ")
        out.append(right)
    return "".join(out)


def _normalize(text: str) -> str:
    folded = fold(text)
    if " " in folded:
        folded = _collapse_separators(folded)
    if _REPEAT.search(folded) is not None:
        folded = _REPEAT.sub(r"\1\1\1", folded)
    return folded


@functools.lru_cache(maxsize=16384)
def normalize(text: str) -> str:
    """The matching form of `text` (cached: the same text is folded by moderation and by the queue)."""
    return _normalize(text)


def squash(normalized: str) -> str:
    """Normalised text without its remaining spaces: what plain NG entries are matched against."""
    return normalized.replace(" ", "")


def is_attached(ch: str) -> bool:
    """Characters that belong to the one before them (marks, half-width voicing marks, jamo vowels)."""
    cp = ord(ch)
    return (
        unicodedata.combining(ch) != 0
        or cp in (0xFF9E, 0xFF9F)
        or 0x1160 <= cp <= 0x11FF
        or _INVISIBLE_MAP.get(cp, "") is None
        or unicodedata.category(ch) in ("Mn", "Me")
    )


Span = tuple[int, int]


def normalize_spans(text: str) -> tuple[str, tuple[Span, ...]]:
    """`normalize(text)` (for ordinary text) with, per character, the (start, end) it came from in `text`.

    Folding is done per cluster (a character with the marks attached to it), so an exotic sequence that
    NFKC composes across clusters may fold differently from `normalize`; callers that need certainty
    re-check the result with `normalize`.
    """
    units: list[tuple[str, int, int]] = []
    i, n = 0, len(text)
    while i < n:
        if _INVISIBLE_MAP.get(ord(text[i]), "") is None:  # a deleted character on its own
            i += 1
            continue
        j = i + 1
        while j < n and is_attached(text[j]):
            j += 1
        units.extend((ch, i, j) for ch in fold(text[i:j]))
        i = j

    # Step 4 on units: split into tokens at spaces, then join them as _collapse_separators does.
    tokens: list[list[tuple[str, int, int]]] = []
    gaps: list[tuple[str, int, int]] = []
    current: list[tuple[str, int, int]] = []
    gap: tuple[str, int, int] | None = None
    for unit in units:
        if unit[0].isspace():
            if current:
                tokens.append(current)
                current = []
                gap = unit
            continue
        if not current and tokens and gap is not None:
            gaps.append(gap)
        current.append(unit)
    if current:
        tokens.append(current)
    joined: list[tuple[str, int, int]] = list(tokens[0]) if tokens else []
    for (left, right), space in zip(pairwise(tokens), gaps, strict=True):
        left_text = "".join(u[0] for u in left)
        right_text = "".join(u[0] for u in right)
        if not _joins(left_text, right_text):
            joined.append((" ", space[1], space[2]))
        joined.extend(right)

    # Step 5: keep at most three of a run.
    out: list[tuple[str, int, int]] = []
    for unit in joined:
        if len(out) >= _MAX_RUN and all(u[0] == unit[0] for u in out[-_MAX_RUN:]):
            continue
        out.append(unit)
    return "".join(u[0] for u in out), tuple((u[1], u[2]) for u in out)


def viewer_key(author: Author) -> str:
    """Who a comment is from, for per-viewer state: the channel id when known, else the folded name."""
    return author.channel_id or "name:" + name_key(author.name)


@functools.lru_cache(maxsize=16384)
def name_key(name: str) -> str:
    """A display name or handle folded for comparison ("@Foo" == "foo")."""
    return unicodedata.normalize("NFKC", strip_invisible(name)).casefold().strip().lstrip("@")
