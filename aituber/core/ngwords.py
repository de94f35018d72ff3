"""NG-word matching: the shipped and per-character lists, matched on normalised text, and masking.

Pure except for reading the shipped lists once (package data) and the Japanese morphological
analyser's dictionary (fugashi + unidic-lite), loaded on first use.

How a text is matched:

1. A cheap surface search over the normalised text (`normalize`: width, case, katakana, separators,
   repeats) and, when the text holds characters viewers use to dodge filters, over its *evasion form*:
   伏字 masks (○ 〇 ◯ ● × ＊ ...) read as a hidden letter, Cyrillic/Greek look-alikes as Latin letters,
   kanji that look like katakana (口 力 工 二 夕 卜 ...) as that katakana where they stand among
   katakana, "@ $ ! |" after a Latin letter as letters. Plain entries tolerate repeated letters and
   long-vowel marks, small っ and small vowels inside the word ("しーね", "きっもい"); regex entries
   tolerate repeated Latin letters and digits for letters ("k0r0su"), and their `\\b` means a Latin-run
   boundary, whatever script touches the word ("お前korosu", "fuck youだよ").
2. Most chat stops there. A Japanese hit is then checked against the words around it with the
   morphological analyser: a hit that starts inside a longer word (こころ|すっきり, パチンコ, 途中|出し)
   or that is only particles right after a predicate (楽しいです|し|ね) is not an NG word; separators
   inside a hit are read as absent ("少し、ねむい" is 少し|ねむい). Latin hits and deliberate evasions
   (masks, look-alikes, stretch marks or repeated letters inside the word) skip this check.
3. Known near misses (aituber/data/ng_allow_ja.txt: いちまんこ = 一万個, ...) covering a hit clear it.

The check in step 2 only reads `_CONTEXT_CHARS` characters each side of a hit, so a hit's verdict is
settled once that much text follows it: the streaming output guard relies on this (`pending_start`).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources

import regex

from aituber.core.morphemes import Morpheme, morphemes
from aituber.core.normalize import Span, fold, is_attached, katakana_to_hiragana, normalize, normalize_spans
from aituber.errors import ConfigError

__all__ = [
    "NgMatcher",
    "OutputVerdict",
    "builtin_matcher",
    "evasion_form",
    "load_builtin_allow_words",
    "load_builtin_ng_words",
]

logger = logging.getLogger(__name__)

_MASK_CHAR = "＊"
_REGEX_PREFIX = "re:"
_HOLE = "ǂ"
"""A masked letter (伏字) in the evasion form: a letter no chat uses, which normalisation keeps, and which
does not join the words around it as a CJK character would ("sh○ ne" stays two words)."""
_CONTEXT_CHARS = 12
"""Characters each side of a hit that the word-boundary check and the allow-list read."""


@dataclass(frozen=True, slots=True)
class OutputVerdict:
    text: str
    """The reply with NG hits masked, or "" when dropped."""
    dropped: bool
    hits: tuple[str, ...]
    """The NG entries that matched, as written in their list."""


# --- the evasion form -----------------------------------------------------------------------------------

_MASK_SYMBOLS = "○〇◯●◎◉×✕✖☓＊*"
_HOMOGLYPHS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ӏ": "l", "ԛ": "q",
    "ԝ": "w", "ү": "y", "һ": "h",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "γ": "y", "η": "n", "ω": "w", "μ": "u", "ϲ": "c",
}  # fmt: skip
_HOMOGLYPHS |= {k.upper(): v for k, v in _HOMOGLYPHS.items() if k.upper() != k}
_LOOKALIKE_KANJI = {
    "口": "ロ", "力": "カ", "工": "エ", "二": "ニ", "夕": "タ", "卜": "ト", "八": "ハ", "千": "チ",
    "一": "ー", "才": "オ", "匕": "ヒ", "乂": "メ",
}  # fmt: skip
_LEET_PUNCTUATION = {"@": "a", "＠": "a", "$": "s", "＄": "s", "!": "i", "！": "i", "|": "l", "｜": "l"}

_EVASION_TABLE = str.maketrans({**dict.fromkeys(_MASK_SYMBOLS, _HOLE), **_HOMOGLYPHS})
_KATAKANA = "\u30a1-\u30fa\u30fc\uff66-\uff9f"
_LATIN = "A-Za-z\uff21-\uff3a\uff41-\uff5a"
_LOOKALIKES = "".join(_LOOKALIKE_KANJI)
_PUNCTUATION = re.escape("".join(_LEET_PUNCTUATION))


def _spot_patterns(open_end: bool) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(look-alike kanji among katakana or each other, leet punctuation after a Latin letter). With
    `open_end`, the end of the text counts as a neighbour: streaming text may go on with one."""
    end = r"|\Z" if open_end else ""
    near = f"[{_KATAKANA}{_LOOKALIKES}]"
    lookalike = re.compile(f"[{_LOOKALIKES}](?={near}{end})|(?<={near})[{_LOOKALIKES}]")
    punctuation = re.compile(f"(?<=[{_LATIN}])[{_PUNCTUATION}]+")
    return lookalike, punctuation


_SPOTS = {False: _spot_patterns(False), True: _spot_patterns(True)}
_EVASION_GATE = re.compile(
    f"[{re.escape(_MASK_SYMBOLS)}{''.join(_HOMOGLYPHS)}{_LOOKALIKES}$＄@＠]|[{_LATIN}][!！|｜](?:[{_LATIN}]|\\s)"
).search
"""A cheap test for `evasion_form` (one character-class scan): most chat has none of these."""


def evasion_form(text: str, open_end: bool = False) -> str | None:
    """`text` with dodging characters read as the letters they stand for (see the module docstring),
    one character for one, so indices stay valid; None when there is nothing to read differently."""
    if _EVASION_GATE(text) is None:
        return None
    form = text.translate(_EVASION_TABLE)
    lookalike, punctuation = _SPOTS[open_end]
    form = lookalike.sub(lambda m: _LOOKALIKE_KANJI[m[0]], form)
    form = punctuation.sub(lambda m: "".join(_LEET_PUNCTUATION[ch] for ch in m[0]), form)
    return None if form == text else form


# --- patterns -------------------------------------------------------------------------------------------


def _fold_pattern(pattern: str) -> str:
    """A regex entry in the form of normalised text: NFKC and katakana as hiragana (syntax untouched)."""
    return katakana_to_hiragana(unicodedata.normalize("NFKC", pattern))


def _runs(word: str) -> list[tuple[str, int]]:
    return [(ch, len(list(group))) for ch, group in itertools.groupby(word)]


_STRETCH_CHARS = "ーっぁぃぅぇぉ"
_STRETCH = f"[{_STRETCH_CHARS}]*"
"""What may stretch a word between two of its letters: long-vowel marks, small っ, small vowels."""


def _run_pattern(ch: str, count: int) -> str:
    """`count` or more of `ch`, written "しし*" rather than "し+": an alternative that starts with a
    literal is skipped by the regex engine after one comparison, which keeps combined patterns fast.
    A masked letter stands alone: "あ＊＊＊" is not "あい" with one letter hidden."""
    escaped = re.escape(ch)
    if ch == _HOLE:
        return escaped * count + f"(?!{_HOLE})"
    return escaped * count + escaped + "*"


def _plain_pattern(word: str) -> str:
    """Each letter of a squashed plain entry may be repeated ("しね" also matches "ししねねね"), and the
    word stretched between letters ("しーね", "しっっね")."""
    return _STRETCH.join(_run_pattern(ch, count) for ch, count in _runs(word))


_Trie = dict[tuple[str, int], "_Trie"]


def _plain_trie_pattern(words: Iterable[str]) -> str:
    """One pattern matching wherever any of `words` would (as _plain_pattern), with shared prefixes
    factored out: the top level has one alternative per first character, not per word."""
    root: _Trie = {}
    end = ("", 0)  # marks a complete word: a search can stop there
    for word in words:
        node = root
        for run in _runs(word):
            if end in node:
                break
            node = node.setdefault(run, {})
        else:
            node.clear()
            node[end] = {}

    def render(node: _Trie, top: bool = False) -> str:
        if end in node:
            return ""
        alternatives = [
            _run_pattern(*run) + ("" if end in child else _STRETCH + render(child)) for run, child in node.items()
        ]
        if top or len(alternatives) == 1:
            return "|".join(alternatives)
        return "(?:" + "|".join(alternatives) + ")"

    return render(root, top=True)


def _is_stretched(matched: str, word: str) -> bool:
    """Whether a plain entry's match has more than the word inside it: stretch marks, or a letter
    repeated between its first and last ("しーね", "ちんんんこ"). Repeats at either end are not
    counted: "こころす" and "きもいい" hold ころす and きもい next to an ordinary こ or い."""
    core = "".join(ch for ch in matched if ch not in _STRETCH_CHARS or ch in word)
    if len(core) != len(matched):
        return True
    inner, word_inner = _runs(core)[1:-1], _runs(word)[1:-1]
    return sum(count for _, count in inner) > sum(count for _, count in word_inner)


def _masked_variants(word: str) -> list[str]:
    """A plain word with one letter (never the first) hidden by a mask, for words of three letters or more."""
    if len(word) < 3:
        return []
    return [word[:i] + _HOLE + word[i + 1 :] for i in range(1, len(word)) if word[i].isalpha()]


_LEET_LETTERS = {"a": "4", "b": "8", "e": "3", "g": "9", "i": "1", "l": "1", "o": "0", "s": "5", "t": "7", "u": "v"}
_QUANTIFIER = "*+?{"


def _latin_tolerant(pattern: str) -> str:
    """A regex entry whose Latin letters tolerate what viewers do to them, and whose `\\b` is a
    Latin-run boundary: "\\bkys\\b" -> "(?<![a-z])k+[yǂ]+[s5ǂ]+(?=w*(?![a-z]))".

    Each Latin letter outside character classes and lookarounds may repeat; one that follows another
    letter may also be written as a digit (0 for o, 1 for i, ...) or masked. Patterns this cannot read
    are returned unchanged.
    """
    out: list[str] = []
    lookaround_depth: list[bool] = []  # per open group: is it a lookaround
    letter_before_group: list[bool] = []  # per open group: whether a letter came right before it
    i, n = 0, len(pattern)
    previous_letter = False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            escape = pattern[i : i + 2]
            if escape == "\\b" and not any(lookaround_depth):
                following = pattern[i + 2 : i + 3]
                leading = bool(following) and (following.isalnum() or following in "([")
                letter = following.lower()
                if leading and "a" <= letter <= "z" and pattern[i + 3 : i + 4] not in tuple(_QUANTIFIER):
                    # "\\bk" -> "k(?<![a-z]k)k*": starting with a literal keeps the combined search fast
                    out.append(f"{letter}(?<![a-z]{letter}){letter}*")
                    i += 3
                    previous_letter = True
                    continue
                # A trailing boundary lets laughter follow: "retardwww", "kysｗｗ".
                out.append("(?<![a-z])" if leading else "(?=w*(?![a-z]))")
            else:
                out.append(escape)
            i += 2
            previous_letter = False
            continue
        if ch == "[":
            end = i + 1
            if end < n and pattern[end] == "^":
                end += 1
            if end < n and pattern[end] == "]":
                end += 1
            while end < n and pattern[end] != "]":
                end += 2 if pattern[end] == "\\" else 1
            if end >= n:
                return pattern
            body = pattern[i + 1 : end]
            if body.isascii() and body.isalnum() and not any(lookaround_depth):  # [i1]: a letter written two ways
                quantified = end + 1 < n and pattern[end + 1] in _QUANTIFIER
                out.append(f"[{body.lower()}{_HOLE if previous_letter else ''}]" + ("" if quantified else "+"))
            else:
                out.append(pattern[i : end + 1])
            i = end + 1
            previous_letter = True
            continue
        if ch == "(":
            head = re.match(r"\(\?(?:[:=!]|<[=!]|P<\w+>|P=\w+\)|[aiLmsux-]+[:)]|#[^)]*\))?", pattern[i:])
            opener = head[0] if head and head[0] != "(?" else "("
            if opener.endswith(")") and opener != "(":  # (?i), (?#...), (?P=name): no group opened
                out.append(opener)
                i += len(opener)
                continue
            lookaround = opener in ("(?=", "(?!", "(?<=", "(?<!")
            lookaround_depth.append(lookaround)
            letter_before_group.append(previous_letter and not lookaround)
            out.append(opener)
            i += len(opener)
            previous_letter = letter_before_group[-1]  # "gg(?:er|a)": e follows g
            continue
        if ch == ")":
            if lookaround_depth:
                lookaround = lookaround_depth.pop()
                before = letter_before_group.pop()
                previous_letter = before if lookaround else True
            out.append(ch)
            i += 1
            continue
        if ch == "|":
            out.append(ch)
            i += 1
            previous_letter = letter_before_group[-1] if letter_before_group else False
            continue
        if "a" <= ch.lower() <= "z" and ch.isascii() and not any(lookaround_depth):
            lower = ch.lower()
            # The first letter of a word is taken as written: it gates the search ("k" for "\\bkys").
            chars = lower + (_LEET_LETTERS.get(lower, "") + _HOLE if previous_letter else "")
            quantified = i + 1 < n and pattern[i + 1] in _QUANTIFIER
            out.append((f"[{chars}]" if len(chars) > 1 else chars) + ("" if quantified else "+"))
            i += 1
            previous_letter = True
            continue
        out.append(ch)
        previous_letter = False
        i += 1
    rewritten = "".join(out)
    try:
        re.compile(rewritten)
    except re.error:
        return pattern
    return rewritten


_LEADING_LOOKBEHIND = re.compile(
    r"^\(\?<([!=])((?:\[[^\]\\]*\]|[^()\[\]\\.^$*+?{}|])+)\)([^()\[\]\\.^$*+?{}|])(?![*+?{])"
)
_ANCHORED = re.compile(r"^\\b(?:([a-z])|\(\?:([a-z]+(?:\|[a-z]+)*)\))(?![*?{])", re.IGNORECASE)


def _first_letters(pattern: str) -> str:
    """The letters a Latin entry starting on a word boundary must start with ("k" for "\\bkys"; a first
    letter is taken as written), or "" when that cannot be read from the pattern."""
    m = _ANCHORED.match(pattern)
    if m is None:
        return ""
    return (m[1] or "".join(branch[0] for branch in m[2].split("|"))).lower()


def _literal_first(pattern: str) -> str:
    """ "(?<!と)ころす" -> "こ(?<!とこ)ろす": the same matches, but starting with a literal, which the
    regex engine can rule out at a position with one comparison."""
    return _LEADING_LOOKBEHIND.sub(lambda m: f"{m[3]}(?<{m[1]}{m[2]}{m[3]})", pattern, count=1)


def _needs_ignorecase(pattern: str) -> bool:
    """Whether a pattern has upper-case literals (outside escapes such as \\S): normalised text is case
    folded, so only those need re.IGNORECASE, which would slow the combined search down."""
    return any(ch.isupper() for ch in re.sub(r"\\.", "", pattern))


@dataclass(frozen=True, slots=True)
class _Entry:
    source: str
    pattern: re.Pattern[str]
    """Plain entries: on squashed text; regex entries: on normalised text."""
    plain: bool
    word: str = ""
    """For a plain entry: the entry normalised, without spaces."""
    masked: re.Pattern[str] | None = None
    """For a plain entry of three letters or more: the word with one letter masked (伏字)."""


def _compile_entries(entries: Iterable[str], origin: str) -> list[_Entry]:
    compiled: list[_Entry] = []
    seen: set[tuple[bool, str]] = set()
    for number, raw in enumerate(entries, start=1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        masked: re.Pattern[str] | None = None
        word = ""
        if entry.startswith(_REGEX_PREFIX):
            folded = _fold_pattern(entry[len(_REGEX_PREFIX) :])
            try:
                re.compile(folded)
            except re.error as exc:
                raise ConfigError(
                    f"{origin}, entry {number} ({entry!r}): not a valid regular expression: {exc}; "
                    "fix it or drop the 're:' prefix to match it as a plain word"
                ) from exc
            body = _literal_first(_latin_tolerant(folded))
            if _needs_ignorecase(body):
                body = f"(?i:{body})"
            pattern = re.compile(body)
            if pattern.fullmatch("") is not None:
                raise ConfigError(
                    f"{origin}, entry {number} ({entry!r}): matches empty text, so it would match everything"
                )
            key = (False, body)
            plain = False
        else:
            word = normalize(entry).replace(" ", "")
            if not word:
                logger.warning("%s, entry %d (%r): nothing left after normalisation; ignored", origin, number, entry)
                continue
            pattern = re.compile(_plain_pattern(word))
            variants = _masked_variants(word)
            masked = re.compile("|".join(_plain_pattern(v) for v in variants)) if variants else None
            key = (True, word)
            plain = True
        if key in seen:
            continue
        seen.add(key)
        compiled.append(_Entry(entry, pattern, plain, word, masked))
    return compiled


_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")
_Searcher = Callable[[str], object]
"""Returns None when nothing matches."""


def _alternation(patterns: Iterable[str]) -> str:
    return "|".join(f"(?:{p})" if "|" in p else p for p in sorted(patterns, key=len, reverse=True))


def _searcher(entries: list[_Entry]) -> _Searcher | None:
    """One search over all `entries`, or None when there are none.

    The entries form one alternation, each wrapped in a group only if it has a "|" of its own: when every
    alternative starts with a literal, the regex engine scans for their first characters at C speed.
    """
    if not entries:
        return None
    try:
        combined = re.compile(_alternation(e.pattern.pattern for e in entries)).search
    except re.error:  # e.g. inline global flags in one entry: search them one by one

        def search_each(text: str) -> object:
            return next((m for e in entries if (m := e.pattern.search(text)) is not None), None)

        return search_each
    return combined


# --- words around a hit (morphological analysis) --------------------------------------------------------

_FUNCTION_WORDS = frozenset({"助詞", "助動詞"})
_PREDICATES = frozenset({"動詞", "形容詞", "助動詞"})
_INFLECTING = frozenset({"動詞", "形容詞", "助動詞"})
_NOT_WORDS = frozenset({"補助記号", "空白", "記号"})
def _on_word_boundaries(text: str, words: tuple[Morpheme, ...], start: int, end: int, entry_word: str = "") -> bool:
    """Whether a hit [start, end) of `text` reads as a word of its own among `words`, the analysis of
    `text` (see the module docstring). A word that is the entry, or only repeats it (ばかばか), is a hit."""
    inside = [w for w in words if w[1] > start and w[0] < end and w[2] not in _NOT_WORDS]
    if not inside:
        return True
    if entry_word:
        for w in inside:
            folded = normalize(text[w[0] : w[1]]).replace(" ", "")
            if folded and folded == entry_word * (len(folded) // len(entry_word)):
                return True
    first, last = inside[0], inside[-1]
    if first[0] < start and first[2] not in _FUNCTION_WORDS:
        return False  # starts inside a longer word: こころ|すっきり, パチンコ, 途中|出し
    if last[1] > end:  # ends inside a word: only as the stem of an inflected word (ぶっ殺|す)
        covered = end - max(last[0], start)
        if last[2] not in _INFLECTING or (last[0] != start and covered < 2):
            return False
    if all(w[2] in _FUNCTION_WORDS for w in inside):
        before = [w for w in words if w[1] <= first[0]]
        if before and before[-1][2] in _PREDICATES:
            return False  # particles right after a predicate: 楽しいです|し|ね
    return True


# --- the matcher ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int
    end: int
    """Original text indices."""
    source: str
    word_check: bool
    """Whether the words around it decide (a Japanese hit that is not a deliberate evasion)."""
    form: str
    """The text it was found in: the original, or its evasion form."""
    word: str = ""
    """A plain entry's word, normalised."""


_TRAILING_STRETCH = re.compile("[ーｰ〜~ぁぃぅぇぉァィゥェォｧｨｩｪｫ]+|([あいうえおアイウエオ])\\1+")
"""What stretches the last vowel of a word: "死ねーー", "死ねぇぇ", "しねええ" (one え is a word: しねえ = しない)."""
_SEPARATOR_CHAR = regex.compile(r"[\p{P}\p{S}\p{Z}\p{Cc}\p{Cf}]")
_LATIN_LETTER = re.compile("[a-z]").search
_KANA = re.compile("[\u3041-\u3096\u30a1-\u30fa\uff66-\uff9d]")
_VOICING_MARKS = ("\u3099", "\u309a")
_JAPANESE = re.compile("[\u3041-\u30ff\u3400-\u9fff\uf900-\ufaff\uff66-\uff9f]")


def _past_repeats(text: str, start: int, end: int) -> int:
    """`end` moved past repetitions of the hit's last letter (with its marks: ﾎﾞﾎﾞ)."""
    first = end - 1
    while first > start and is_attached(text[first]):
        first -= 1
    last = fold(text[first:end])
    while end < len(text):
        following = end + 1
        while following < len(text) and is_attached(text[following]):
            following += 1
        if fold(text[end:following]) != last:
            break
        end = following
    return end


def _analysable(text: str, start: int, end: int) -> tuple[str, list[int]]:
    """`text` as the analyser reads it best, and where each of its characters starts in `text`: NFKC per
    character with its marks (ｼﾈ -> シネ, ｶﾞ -> ガ), separators inside the hit [start, end) dropped
    ("こ・ろ・す", "少し、ねむい" read as normalisation reads them; outside it they are real boundaries)."""
    chars: list[str] = []
    origins: list[int] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        while j < n and is_attached(text[j]):
            j += 1
        cluster = text[i:j]
        if not (start < i < end and _SEPARATOR_CHAR.match(cluster) is not None):
            folded = cluster if cluster.isascii() else unicodedata.normalize("NFKC", cluster)
            chars.extend(folded)
            origins.extend([i] * len(folded))
        i = j
    return "".join(chars), origins


class NgMatcher:
    """A set of NG entries matched on normalised text: plain words on squashed text, regexes on spaced text.

    `allow`: known near misses (plain words); a hit inside one of them is not a hit.
    """

    def __init__(self, entries: Iterable[str], origin: str = "ng_words", allow: Iterable[str] = ()) -> None:
        self._set(_compile_entries(entries, origin), allow)

    def _set(self, compiled: list[_Entry], allow: Iterable[str]) -> None:
        unique: dict[tuple[bool, str], _Entry] = {}
        for entry in compiled:
            unique.setdefault((entry.plain, entry.pattern.pattern), entry)
        self._plain = [e for e in unique.values() if e.plain]
        self._regex = [e for e in unique.values() if not e.plain]
        # A backreference (\1) would point at another entry's group inside a combined pattern.
        self._isolated = [e.pattern.search for e in self._regex if _BACKREFERENCE.search(e.pattern.pattern)]
        combinable = [e for e in self._regex if not _BACKREFERENCE.search(e.pattern.pattern)]
        # Latin entries ("\\bkorosu\\b") are searched on their own, only in text with Latin letters.
        latin = [e for e in combinable if e.source[len(_REGEX_PREFIX) :].isascii()]
        other = [e for e in combinable if e not in latin]
        trie = _plain_trie_pattern(e.word for e in self._plain) if self._plain else ""
        self._plain_search = re.compile(trie).search if trie else None
        self._latin_search = _searcher(latin)
        firsts = [_first_letters(e.source[len(_REGEX_PREFIX) :]) for e in latin]
        self._latin_gate = (
            re.compile(f"[{''.join(sorted(set(''.join(firsts))))}]").search if latin and all(firsts) else _LATIN_LETTER
        )
        self._other_search = _searcher(other)
        self._masked_search: _Searcher | None = None  # compiled on first use: masks are rare
        # Text without spaces (most Japanese chat) is its own squashed form: one search covers plain
        # entries and the other regexes at once.
        self._unspaced_search: _Searcher | None = None
        parts = [p for p in (trie, _alternation(e.pattern.pattern for e in other)) if p]
        if parts:
            try:
                self._unspaced_search = re.compile("|".join(parts)).search
            except re.error:  # e.g. inline global flags in one entry
                self._unspaced_search = None
        self._verified: dict[str, bool] = {}
        self._allow = tuple(dict.fromkeys(w for w in (normalize(a).replace(" ", "") for a in allow) if w))
        self._allow_pattern = (
            re.compile("(?=(" + "|".join(map(re.escape, sorted(self._allow, key=len, reverse=True))) + "))")
            if self._allow
            else None
        )
        self._partial: tuple[regex.Pattern[str] | None, regex.Pattern[str] | None] | None = None
        self._last_mask: tuple[str, tuple[str | None, tuple[str, ...]]] | None = None

    @classmethod
    def merged(cls, *matchers: NgMatcher) -> NgMatcher:
        """One matcher searching every entry of `matchers` with a single pass per kind."""
        merged = cls.__new__(cls)
        merged._set([e for m in matchers for e in (*m._plain, *m._regex)], [a for m in matchers for a in m._allow])
        return merged

    def __len__(self) -> int:
        return len(self._plain) + len(self._regex)

    # -- the surface search (step 1) --

    def _surface(self, normalized: str) -> bool:
        """Whether any entry may match `normalized` (a normalised text or evasion form), before the
        words around the hit are looked at."""
        unspaced = self._unspaced_search
        if unspaced is not None and " " not in normalized:
            if unspaced(normalized) is not None:
                return True
        else:
            plain, other = self._plain_search, self._other_search
            if plain is not None and plain(normalized.replace(" ", "")) is not None:
                return True
            if other is not None and other(normalized) is not None:
                return True
        latin = self._latin_search
        if latin is not None and self._latin_gate(normalized) is not None and latin(normalized) is not None:
            return True
        if _HOLE in normalized:
            if self._masked_search is None:
                variants = [v for e in self._plain for v in _masked_variants(e.word)]
                self._masked_search = re.compile(_plain_trie_pattern(variants)).search if variants else bool
            if self._masked_search(normalized.replace(" ", "")):
                return True
        return any(search(normalized) for search in self._isolated) if self._isolated else False

    def _may_match(self, text: str) -> tuple[bool, str | None]:
        """(whether a surface search hits, the evasion form of `text` or None)."""
        form = evasion_form(text)
        if self._surface(normalize(text)):
            return True, form
        return (form is not None and self._surface(normalize(form))), form

    # -- hits with their place in the text (steps 2 and 3) --

    def _candidates(self, form: str) -> Iterator[tuple[int, tuple[int, ...], int, _Entry, bool]]:
        """Every surface hit in `form` (text or its evasion form): (start, the later starts it may have
        when its first letter is repeated, end, entry, whether the word was stretched or masked, which
        is deliberate).

        A repeated first letter may belong to the word before: "ねえ、エロ動画" matches "えエロ動画"."""
        normalized, spans = normalize_spans(form)
        keep = [i for i, ch in enumerate(normalized) if ch != " "]
        squashed = "".join(normalized[i] for i in keep)
        for entry in self._plain:
            first_run = len(entry.word) - len(entry.word.lstrip(entry.word[0]))
            for m in entry.pattern.finditer(squashed):
                matched = m[0]
                extra = len(matched) - len(matched.lstrip(matched[0])) - first_run
                start, end = spans[keep[m.start()]][0], spans[keep[m.end() - 1]][1]
                later = tuple(spans[keep[m.start() + j]][0] for j in range(1, extra + 1))
                yield start, later, end, entry, _is_stretched(matched, entry.word)
            if entry.masked is not None and _HOLE in squashed:
                for m in entry.masked.finditer(squashed):
                    matched = m[0]
                    extra = len(matched) - len(matched.lstrip(matched[0])) - first_run
                    start, end = spans[keep[m.start()]][0], spans[keep[m.end() - 1]][1]
                    later = tuple(spans[keep[m.start() + j]][0] for j in range(1, extra + 1))
                    yield start, later, end, entry, True
        for entry in self._regex:
            for m in entry.pattern.finditer(normalized):
                if m.end() > m.start():
                    start = spans[m.start()][0]
                    yield start, (), spans[m.end() - 1][1], entry, False

    def _surface_hits(self, text: str, form: str | None) -> list[_Hit]:
        hits: list[_Hit] = []
        for source_text in (text, form):
            if source_text is None:
                continue
            for start, later, end, entry, stretched in self._candidates(source_text):
                span = text[start:end]
                deliberate = stretched or (source_text is not text and source_text[start:end] != span)
                check = _JAPANESE.search(span) is not None and not deliberate
                hits.append(_Hit(start, end, entry.source, check, source_text, entry.word))
                hits += [_Hit(other, end, entry.source, check, source_text, entry.word) for other in later]
        return hits

    def _allowed(self, hit: _Hit) -> bool:
        """Whether a known near miss covers the hit (read within the hit's context)."""
        if self._allow_pattern is None:
            return False
        offset = max(0, hit.start - _CONTEXT_CHARS)
        window = hit.form[offset : hit.end + _CONTEXT_CHARS]
        normalized, spans = normalize_spans(window)
        keep = [i for i, ch in enumerate(normalized) if ch != " "]
        squashed = "".join(normalized[i] for i in keep)
        start, end = hit.start - offset, hit.end - offset
        for m in self._allow_pattern.finditer(squashed):
            word_end = m.start() + len(m[1])
            if spans[keep[m.start()]][0] <= start and spans[keep[word_end - 1]][1] >= end:
                return True
        return False

    def _accepted(self, text: str, hit: _Hit) -> bool:
        if self._allowed(hit):
            return False
        if not hit.word_check:
            return True
        offset = max(0, hit.start - _CONTEXT_CHARS)
        window = text[offset : hit.end + _CONTEXT_CHARS]
        start, end = hit.start - offset, hit.end - offset
        end = _past_repeats(window, start, end)  # "死ネネネネ": a repeated last letter belongs to the hit
        if (stretch := _TRAILING_STRETCH.match(window, end)) is not None:
            end = stretch.end()  # "死ねぇぇぇ": the analyser reads "ねぇ" as one word
        analysable, origins = _analysable(window, start, end)
        words = morphemes(analysable)
        if words is None:
            return True
        return _on_word_boundaries(
            analysable, words, bisect.bisect_left(origins, start), bisect.bisect_left(origins, end), hit.word
        )

    def _hits(self, text: str, form: str | None) -> list[_Hit]:
        hits = [hit for hit in self._surface_hits(text, form) if self._accepted(text, hit)]
        # Of a hit with and without its repeated first letter, keep the shortest accepted.
        covered = {(h.end, h.source): h.start for h in sorted(hits, key=lambda h: h.start)}
        return [h for h in hits if covered[(h.end, h.source)] == h.start]

    # -- the public checks --

    def matches(self, text: str, normalized: str | None = None) -> bool:
        """Whether `text` holds an NG word. `normalized` (`normalize(text)`) may be passed when known."""
        if not self._surface(normalize(text) if normalized is None else normalized):
            if _EVASION_GATE(text) is None:
                return False  # most chat ends here
            form = evasion_form(text)
            if form is None or not self._surface(normalize(form)):
                return False
        found = self._verified.get(text)
        if found is None:
            hits = self._surface_hits(text, evasion_form(text))
            found = any(self._accepted(text, hit) for hit in hits)
            if len(text) <= 256:  # spam repeats itself: remember the latest short verdicts
                if len(self._verified) >= 4096:
                    self._verified.clear()
                self._verified[text] = found
        return found

    def hits(self, text: str) -> tuple[str, ...]:
        """The entries (as written) found in `text`."""
        may, form = self._may_match(text)
        if not may:
            return ()
        return tuple(dict.fromkeys(hit.source for hit in self._hits(text, form)))

    def _ranges(self, text: str) -> tuple[list[Span], list[str]]:
        """Spans of `text` covered by NG hits, and the entries that hit."""
        may, form = self._may_match(text)
        if not may:
            return [], []
        hits = self._hits(text, form)
        return [(h.start, h.end) for h in hits], [h.source for h in hits]

    def mask(self, text: str) -> tuple[str | None, tuple[str, ...]]:
        """`text` with every hit replaced by "＊" per character, or None when it cannot be made clean.

        The result is checked again as it will be shown: masking can join neighbours into a new hit, or
        change how the words around a hit read; that is masked too, until nothing is left.
        """
        cached = self._last_mask
        if cached is not None and cached[0] == text:
            return cached[1]
        result = self._mask(text)
        self._last_mask = (text, result)
        return result

    def _mask(self, text: str) -> tuple[str | None, tuple[str, ...]]:
        ranges, sources = self._ranges(text)
        if not ranges:
            return text, ()
        chars = list(text)
        is_masked = [False] * len(text)
        hit_sources: list[str] = []
        for round_ in range(len(text) + 1):
            if round_:
                ranges, sources = self._ranges("".join(chars))
            if not ranges:
                return "".join(chars), tuple(dict.fromkeys(hit_sources))
            hit_sources += sources
            for start, end in ranges:
                if round_:
                    # A hit made by joining text across a mask: mask only what follows the mask, so that
                    # text already shown while streaming (the start of the reply) stays as it was.
                    last = next((k for k in range(end - 1, start - 1, -1) if is_masked[k]), None)
                    if last is not None and last + 1 < end:
                        start = last + 1
                chars[start:end] = _MASK_CHAR * (end - start)
                is_masked[start:end] = [True] * (end - start)
        return None, tuple(dict.fromkeys(hit_sources))

    # -- streaming --

    def _partial_patterns(self) -> tuple[regex.Pattern[str] | None, regex.Pattern[str] | None]:
        """(plain and masked entries, on squashed text; regex entries, on normalised text) as `regex`
        patterns, which can report a match that more text could still complete."""
        if self._partial is None:
            plain = [e.pattern.pattern for e in self._plain]
            plain += [e.masked.pattern for e in self._plain if e.masked is not None]
            other = [e.pattern.pattern for e in self._regex]
            compile_ = functools.partial(regex.compile, flags=regex.V0)
            self._partial = (
                compile_(_alternation(plain)) if plain else None,
                compile_("|".join(f"(?:{p})" for p in other)) if other else None,
            )
        return self._partial

    def prepare(self) -> None:
        """Build now what streaming needs (its patterns take a good part of a second to compile for
        the built-in list), so that a caller can do it off the event loop instead of in the first reply."""
        self._partial_patterns()

    def pending_start(self, text: str) -> int:
        """Where the part of a streaming `text` starts whose filtering more text could still change
        (len(text) when none): a partial NG match, a hit whose context is not all there yet, or a last
        kana that a voicing mark could still change (ﾊ + ﾞ = バ)."""
        hold = self._pending_start(text)
        if text and _KANA.match(text[-1]) is not None:
            for mark in _VOICING_MARKS:
                hold = min(hold, self._pending_start(text + mark))
        masked = self.mask(text)[0]
        if masked is not None and masked != text:  # hits that only the masked text has
            for form in (masked, evasion_form(masked, open_end=True)):
                for start, _later, end, _entry, _stretched in self._candidates(form) if form is not None else ():
                    if end + _CONTEXT_CHARS > len(text):
                        hold = min(hold, start)
        return min(hold, len(text))

    def _pending_start(self, text: str) -> int:
        hold = len(text)
        plain, other = self._partial_patterns()
        forms = [text]
        if (form := evasion_form(text, open_end=True)) is not None:
            forms.append(form)
        for form in forms:
            normalized, spans = normalize_spans(form)
            keep = [i for i, ch in enumerate(normalized) if ch != " "]
            squashed = "".join(normalized[i] for i in keep)
            start = _first_partial(plain, squashed)
            if start is not None:
                hold = min(hold, spans[keep[start]][0])
            start = _first_partial(other, normalized)
            if start is not None:
                hold = min(hold, spans[start][0])
            for start, _later, end, _entry, _stretched in self._candidates(form):
                if end + _CONTEXT_CHARS > len(text):
                    hold = min(hold, start)
        return hold


def _first_partial(pattern: regex.Pattern[str] | None, text: str) -> int | None:
    """Start of the leftmost match of `pattern` that more text could still complete, or None."""
    if pattern is None:
        return None
    pos = 0
    while pos <= len(text):
        m = pattern.search(text, pos, partial=True)
        if m is None:
            return None
        if m.partial:
            return m.start() if m.start() < len(text) else None
        pos = m.end() if m.end() > m.start() else m.start() + 1
    return None


@functools.cache
def load_builtin_ng_words() -> tuple[str, ...]:
    """The shipped starter list (aituber/data/ng_words_ja.txt), one entry per line, comments removed."""
    return _read_list("ng_words_ja.txt")


@functools.cache
def load_builtin_allow_words() -> tuple[str, ...]:
    """The shipped near misses (aituber/data/ng_allow_ja.txt): ordinary words that hold an NG entry."""
    return _read_list("ng_allow_ja.txt")


def _read_list(name: str) -> tuple[str, ...]:
    text = resources.files("aituber.data").joinpath(name).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


@functools.cache
def builtin_matcher() -> NgMatcher:
    """The shipped list with its near misses, compiled once."""
    return NgMatcher(load_builtin_ng_words(), origin="aituber/data/ng_words_ja.txt", allow=load_builtin_allow_words())
