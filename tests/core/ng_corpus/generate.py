"""The labelled NG corpus: evasive variants that must be caught, benign chat that must pass.

    evasive_corpus() -> [(text, rule)]   rule-made variants of the built-in NG list + evasive.txt
    benign_corpus()  -> [text]            benign.txt (hand-written chat, near misses included)

The rules write what viewers type to get a word past a filter: 伏字 masks, stretched words, kanji
that look like katakana, Cyrillic/Greek letters inside romaji, digits and punctuation inside Latin
words, romaji touching Japanese text, half-width and spaced-out letters. Each word is taken from the
shipped list (a "re:" entry gives its shortest spelling). Deterministic: no randomness.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from pathlib import Path

try:  # Python 3.11+: the parser behind `re`
    import re._parser as _sre_parse  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    import sre_parse as _sre_parse  # type: ignore[no-redef]

from aituber.core.ngwords import load_builtin_ng_words

HERE = Path(__file__).resolve().parent

MASKS = "○〇◯●×＊"
LOOKALIKE_KANJI = {"ロ": "口", "カ": "力", "エ": "工", "ニ": "二", "タ": "夕", "ト": "卜", "ハ": "八", "ー": "一"}
HOMOGLYPHS = {"a": "а", "e": "е", "o": "о", "c": "с", "p": "р", "x": "х", "y": "у", "i": "і", "k": "κ", "u": "υ"}
LEET_DIGITS = {"o": "0", "i": "1", "e": "3", "a": "4", "s": "5", "t": "7"}
LEET_PUNCT = {"a": "@", "i": "!", "s": "$"}
JA_FRAMES = ("{}", "お前{}", "{}よ", "まじで{}", "{}ｗｗ", "もう{}って")
LATIN_FRAMES = ("お前{}", "{}だよ", "まじで{}", "{}って感じ", "{}ｗｗｗ")
_KANA = re.compile(r"[\u3041-\u3096\u30a1-\u30fa]")
_SMALL = "ぁぃぅぇぉゃゅょっゎァィゥェォャュョッヮー"


def _all_kana(word: str) -> bool:
    return all(_KANA.match(ch) or ch == "ー" for ch in word)


def _morae(word: str) -> list[str]:
    """Letters with the small kana and long-vowel marks that belong to them ("き", "しょ", "い")."""
    out: list[str] = []
    for ch in word:
        if out and ch in _SMALL:
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _read_lines(name: str) -> list[str]:
    text = (HERE / name).read_text(encoding="utf-8")
    return [line for line in (raw.strip() for raw in text.splitlines()) if line and not line.startswith("#")]


def benign_corpus() -> list[str]:
    return _read_lines("benign.txt")


def _shortest(parsed: object) -> str:
    """The shortest text a parsed regex matches (an optional space is kept: "fuck ?you" -> "fuck you")."""
    out: list[str] = []
    for op, arg in parsed:  # type: ignore[attr-defined]
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "IN":
            literal = next((chr(v) for o, v in arg if str(o) == "LITERAL"), "")
            out.append(literal)
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            low, _high, sub = arg
            body = _shortest(sub)
            count = low if low or body != " " else 1
            out.append(body * count)
        elif name == "SUBPATTERN":
            out.append(_shortest(arg[-1]))
        elif name == "BRANCH":
            out.append(_shortest(arg[1][0]))
        # AT (\b), ASSERT / ASSERT_NOT (lookarounds): nothing to write
    return "".join(out)


def ng_words() -> list[str]:
    """Each entry of the built-in list as a viewer would write it."""
    words: list[str] = []
    for entry in load_builtin_ng_words():
        if entry.startswith("re:"):
            word = _shortest(_sre_parse.parse(entry[3:]))
        else:
            word = entry
        if word and word not in words:
            words.append(word)
    return words


def _is_latin(word: str) -> bool:
    return word.isascii()


def _katakana(word: str) -> str:
    return "".join(chr(ord(ch) + 0x60) if "\u3041" <= ch <= "\u3096" else ch for ch in word)


def _masked(word: str) -> list[str]:
    """One kana (never the first letter) replaced by a mask character, for words of 3+ letters."""
    if len(word) < 3 or not _all_kana(word):
        return []
    positions = [i for i, ch in enumerate(word) if i and ch not in _SMALL]
    masks = itertools.cycle(MASKS)
    return [word[:i] + next(masks) + word[i + 1 :] for i in positions[:3]]


def _stretched(word: str) -> list[str]:
    """Long-vowel marks, small っ runs and repeated letters inside short words."""
    if len(word) > 5 or not _all_kana(word):
        return []
    out: list[str] = []
    small_tsu = "ッッ" if "\u30a1" <= word[0] <= "\u30fa" else "っっ"
    for i in range(len(word) - 1):
        if word[i] not in _SMALL and word[i + 1] not in _SMALL:
            out.append(word[: i + 1] + "ー" + word[i + 1 :])
            out.append(word[: i + 1] + small_tsu + word[i + 1 :])
            break
    last = word[-1]
    vowel = {"ね": "ぇ", "す": "ぅ", "い": "ぃ", "ろ": "ぉ", "こ": "ぉ"}.get(last)
    if vowel:
        out.append(word + vowel * 3)
    return out


def _lookalikes(word: str) -> list[str]:
    """Katakana spelled with kanji that look the same (ロ -> 口, カ -> 力, ニ -> 二, ...)."""
    if not _all_kana(word):
        return []
    kata = _katakana(word)
    swapped = "".join(LOOKALIKE_KANJI.get(ch, ch) for ch in kata)
    return [swapped] if swapped != kata else []


def _half_width(word: str) -> list[str]:
    kata = _katakana(word)
    if not all("\u30a1" <= ch <= "\u30fa" or ch == "ー" for ch in kata):
        return []
    half = {}
    for cp in range(0xFF66, 0xFF9E):
        half.setdefault(unicodedata.normalize("NFKC", chr(cp)), chr(cp))
    out = []
    for ch in kata:
        if ch in half:
            out.append(half[ch])
        else:
            base = unicodedata.normalize("NFD", ch)
            if len(base) == 2 and base[0] in half:
                out.append(half[base[0]] + {"\u3099": "ﾞ", "\u309a": "ﾟ"}[base[1]])
            else:
                return []
    return ["".join(out), " ".join(out)]


def _homoglyphs(word: str) -> list[str]:
    spots = [i for i, ch in enumerate(word) if ch in HOMOGLYPHS]
    if not spots:
        return []
    one = word[: spots[0]] + HOMOGLYPHS[word[spots[0]]] + word[spots[0] + 1 :]
    every = "".join(HOMOGLYPHS.get(ch, ch) if i in spots[::2] else ch for i, ch in enumerate(word))
    return list(dict.fromkeys([one, every]))


def _leet(word: str) -> list[str]:
    out = []
    spots = [i for i, ch in enumerate(word) if i and ch in LEET_DIGITS][:2]
    digits = "".join(LEET_DIGITS[ch] if i in spots else ch for i, ch in enumerate(word))
    if digits != word:
        out.append(digits)
    punct = next((i for i, ch in enumerate(word) if i and ch in LEET_PUNCT), None)
    if punct is not None:
        out.append(word[:punct] + LEET_PUNCT[word[punct]] + word[punct + 1 :])
    vowel = next((i for i, ch in enumerate(word) if i and ch in "aeiou"), None)
    if vowel is not None:
        out.append(word[:vowel] + "*" + word[vowel + 1 :])
    first = word.split(" ")[0]
    if len(first) > 2:
        out.append(".".join(first) + word[len(first) :])
    return out


def _latin_stretched(word: str) -> list[str]:
    vowel = next((i for i, ch in enumerate(word) if ch in "aeiou"), None)
    out = [word[0] * 2 + word[1:]]
    if vowel is not None:
        out.append(word[: vowel + 1] + word[vowel] * 2 + word[vowel + 1 :])
    return out


def generated_variants() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    frames = itertools.cycle(JA_FRAMES)
    latin_frames = itertools.cycle(LATIN_FRAMES)
    for word in ng_words():
        if _is_latin(word):
            for variant in _homoglyphs(word):
                out.append((variant, "homoglyph"))
            for variant in _leet(word):
                out.append((variant, "leet"))
            for variant in _latin_stretched(word):
                out.append((variant, "stretched"))
            out.append((next(latin_frames).format(word), "latin_touching_japanese"))
            out.append((next(latin_frames).format(word.upper()), "latin_touching_japanese"))
            out.append(("".join(chr(ord(c) + 0xFEE0) if c != " " else "　" for c in word), "full_width"))
            continue
        for variant in _masked(word):
            out.append((next(frames).format(variant), "mask"))
        for variant in _stretched(word):
            out.append((next(frames).format(variant), "stretched"))
        for variant in _lookalikes(word):
            out.append((next(frames).format(variant), "kanji_lookalike"))
        for variant in _half_width(word):
            out.append((variant, "half_width"))
        out.append((next(frames).format("・".join(_morae(word))), "separators"))
    return list(dict.fromkeys(out))


def evasive_corpus() -> list[tuple[str, str]]:
    """(text, rule): the generated variants, then the hand-written lines ("hand")."""
    generated = generated_variants()
    seen = {text for text, _ in generated}
    return generated + [(text, "hand") for text in _read_lines("evasive.txt") if text not in seen]


if __name__ == "__main__":
    import collections

    corpus = evasive_corpus()
    print(len(corpus), "evasive", collections.Counter(rule for _, rule in corpus))
    print(len(benign_corpus()), "benign")
