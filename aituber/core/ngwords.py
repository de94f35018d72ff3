"""NG-word matching: the shipped and per-character lists, matched on normalised text, and masking.

Pure: no I/O except reading the shipped NG list once (package data). Plain entries are matched on
normalised text without spaces (each letter may repeat); "re:" entries are regular expressions matched
on normalised text. A hit found in normalised text is mapped back to the original text to be masked.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources

from aituber.core.normalize import Span, katakana_to_hiragana, normalize, normalize_spans, squash
from aituber.errors import ConfigError

__all__ = ["NgMatcher", "OutputVerdict", "builtin_matcher", "load_builtin_ng_words"]

logger = logging.getLogger(__name__)

_MASK_CHAR = "＊"
_REGEX_PREFIX = "re:"


@dataclass(frozen=True, slots=True)
class OutputVerdict:
    text: str
    """The reply with NG hits masked, or "" when dropped."""
    dropped: bool
    hits: tuple[str, ...]
    """The NG entries that matched, as written in their list."""



# --- NG lists -------------------------------------------------------------------------------------------


def _fold_pattern(pattern: str) -> str:
    """A regex entry in the form of normalised text: NFKC and katakana as hiragana (syntax untouched)."""
    return katakana_to_hiragana(unicodedata.normalize("NFKC", pattern))


def _runs(word: str) -> list[tuple[str, int]]:
    return [(ch, len(list(group))) for ch, group in itertools.groupby(word)]


def _run_pattern(ch: str, count: int) -> str:
    """`count` or more of `ch`, written "しし*" rather than "し+": an alternative that starts with a
    literal is skipped by the regex engine after one comparison, which keeps combined patterns fast."""
    escaped = re.escape(ch)
    return escaped * count + escaped + "*"


def _plain_pattern(word: str) -> str:
    """Each character of a squashed plain entry may be repeated ("しね" also matches "ししねねね")."""
    return "".join(_run_pattern(ch, count) for ch, count in _runs(word))


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
        alternatives = [_run_pattern(*run) + render(child) for run, child in node.items()]
        if top or len(alternatives) == 1:
            return "|".join(alternatives)
        return "(?:" + "|".join(alternatives) + ")"

    return render(root, top=True)


_LEADING_LOOKBEHIND = re.compile(
    r"^\(\?<([!=])((?:\[[^\]\\]*\]|[^()\[\]\\.^$*+?{}|])+)\)([^()\[\]\\.^$*+?{}|])(?![*+?{])"
)
_ASCII_ANCHORED = re.compile(r"^(?:\\b)?(?:([a-z0-9])|\(\?:([a-z0-9]+(?:\|[a-z0-9]+)*)\))(?![*?{])", re.IGNORECASE)
"""A regex entry that can only start on one of a few ASCII letters or digits ("\\bkorosu\\b")."""


def _first_chars(pattern: str) -> str:
    """The characters an ASCII-anchored pattern can start on (lower case), or "" if it is not one."""
    m = _ASCII_ANCHORED.match(pattern)
    if m is None:
        return ""
    firsts = m[1] if m[1] else "".join(alt[0] for alt in m[2].split("|"))
    return "".join(sorted(set(firsts.lower())))


_LEADING_BOUNDARY = re.compile(r"^\\b([a-z0-9])(?![*+?{])")


def _literal_first(pattern: str) -> str:
    """ "(?<!と)ころす" -> "こ(?<!とこ)ろす" and "\\bkys" -> "k(?<!\\wk)ys": the same matches, but starting
    with a literal, which the regex engine can rule out at a position with one comparison."""
    pattern = _LEADING_LOOKBEHIND.sub(lambda m: f"{m[3]}(?<{m[1]}{m[2]}{m[3]})", pattern, count=1)
    return _LEADING_BOUNDARY.sub(lambda m: f"{m[1]}(?<!\\w{m[1]})", pattern, count=1)


def _needs_ignorecase(pattern: str) -> bool:
    """Whether a pattern has upper-case literals (outside escapes such as \\S): normalised text is case
    folded, so only those need re.IGNORECASE, which would slow the combined search down."""
    return any(ch.isupper() for ch in re.sub(r"\\.", "", pattern))


@dataclass(frozen=True, slots=True)
class _Entry:
    source: str
    pattern: re.Pattern[str]
    plain: bool
    first_chars: str = ""
    """For a regex that can only start on one of a few ASCII characters: those ("k" for "\\bkorosu\\b")."""
    word: str = ""
    """For a plain entry: the entry normalised, without spaces."""


def _compile_entries(entries: Iterable[str], origin: str) -> list[_Entry]:
    compiled: list[_Entry] = []
    seen: set[tuple[bool, str]] = set()
    for number, raw in enumerate(entries, start=1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.startswith(_REGEX_PREFIX):
            folded = _fold_pattern(entry[len(_REGEX_PREFIX) :])
            first_chars = _first_chars(folded)
            body = _literal_first(folded)
            if _needs_ignorecase(body):
                body = f"(?i:{body})"
            try:
                pattern = re.compile(body)
            except re.error as exc:
                raise ConfigError(
                    f"{origin}, entry {number} ({entry!r}): not a valid regular expression: {exc}; "
                    "fix it or drop the 're:' prefix to match it as a plain word"
                ) from exc
            if pattern.fullmatch("") is not None:
                raise ConfigError(
                    f"{origin}, entry {number} ({entry!r}): matches empty text, so it would match everything"
                )
            key = (False, body)
            plain = False
        else:
            word = squash(normalize(entry))
            if not word:
                logger.warning("%s, entry %d (%r): nothing left after normalisation; ignored", origin, number, entry)
                continue
            pattern = re.compile(_plain_pattern(word))
            key = (True, word)
            plain = True
            first_chars = ""
        if key in seen:
            continue
        seen.add(key)
        compiled.append(_Entry(entry, pattern, plain, first_chars, word if plain else ""))
    return compiled


_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")
_Searcher = Callable[[str], object]
"""Returns None when nothing matches."""


def _searcher(entries: list[_Entry], first_chars: str = "") -> _Searcher | None:
    """One search over all `entries`, or None when there are none.

    The entries form one alternation, each wrapped in a group only if it has a "|" of its own: when every
    alternative starts with a literal, the regex engine scans for their first characters at C speed.
    With `first_chars` (what every entry must start on), a character-class search gates the alternation.
    """
    if not entries:
        return None
    ordered = sorted(entries, key=lambda e: -len(e.pattern.pattern))
    alternatives = "|".join(f"(?:{p})" if "|" in p else p for p in (e.pattern.pattern for e in ordered))
    try:
        combined = re.compile(alternatives).search
    except re.error:  # e.g. inline global flags in one entry: search them one by one

        def search_each(text: str) -> object:
            return next((m for e in entries if (m := e.pattern.search(text)) is not None), None)

        return search_each
    if not first_chars:
        return combined
    gate = re.compile(f"[{re.escape(first_chars)}]").search

    def gated(text: str) -> object:
        return combined(text) if gate(text) is not None else None

    return gated


class NgMatcher:
    """A set of NG entries matched on normalised text: plain words on squashed text, regexes on spaced text."""

    def __init__(self, entries: Iterable[str], origin: str = "ng_words") -> None:
        self._set(_compile_entries(entries, origin))

    def _set(self, compiled: list[_Entry]) -> None:
        unique: dict[tuple[bool, str], _Entry] = {}
        for entry in compiled:
            unique.setdefault((entry.plain, entry.pattern.pattern), entry)
        self._plain = [e for e in unique.values() if e.plain]
        self._regex = [e for e in unique.values() if not e.plain]
        # A backreference (\1) would point at another entry's group inside a combined pattern.
        self._isolated = [e.pattern.search for e in self._regex if _BACKREFERENCE.search(e.pattern.pattern)]
        combinable = [e for e in self._regex if not _BACKREFERENCE.search(e.pattern.pattern)]
        self._ascii = [e for e in combinable if e.first_chars]
        self._other = [e for e in combinable if not e.first_chars]
        firsts = "".join(sorted({ch for e in self._ascii for ch in e.first_chars}))
        trie = _plain_trie_pattern(e.word for e in self._plain) if self._plain else ""
        self._plain_search = re.compile(trie).search if trie else None
        # Text without spaces (most Japanese chat) is its own squashed form: one search covers plain
        # entries and the other regexes at once.
        self._unspaced_search: _Searcher | None = None
        if trie and self._other:
            others = "|".join(f"(?:{p})" if "|" in p else p for p in (e.pattern.pattern for e in self._other))
            try:
                self._unspaced_search = re.compile(f"{trie}|{others}").search
            except re.error:
                self._unspaced_search = None
        self._ascii_search = _searcher(self._ascii, firsts)
        self._other_search = _searcher(self._other)

    @classmethod
    def merged(cls, *matchers: NgMatcher) -> NgMatcher:
        """One matcher searching every entry of `matchers` with a single pass per kind."""
        merged = cls.__new__(cls)
        merged._set([e for m in matchers for e in (*m._plain, *m._regex)])
        return merged

    def __len__(self) -> int:
        return len(self._plain) + len(self._regex)

    def patterns(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The compiled pattern sources: (plain entries, matched on squashed text; regex entries,
        matched on normalised text). The streaming output guard searches them for partial matches."""
        return tuple(e.pattern.pattern for e in self._plain), tuple(e.pattern.pattern for e in self._regex)

    def matches(self, normalized: str) -> bool:
        """Whether any entry matches text already passed through `normalize`."""
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
        ascii_ = self._ascii_search
        if ascii_ is not None and ascii_(normalized) is not None:
            return True
        return any(search(normalized) for search in self._isolated) if self._isolated else False

    def hits(self, normalized: str) -> tuple[str, ...]:
        """The entries (as written) that match normalised text."""
        squashed = squash(normalized)
        found = [e.source for e in self._plain if e.pattern.search(squashed)]
        found += [e.source for e in self._regex if _nonempty_match(e.pattern, normalized)]
        return tuple(found)

    def _ranges(self, text: str) -> tuple[list[Span], list[str]]:
        """Spans of `text` (original indices) covered by NG hits, and the entries that hit."""
        normalized, spans = normalize_spans(text)
        ranges: list[Span] = []
        sources: list[str] = []
        if self._plain:
            keep = [i for i, ch in enumerate(normalized) if ch != " "]
            squashed = "".join(normalized[i] for i in keep)
            for entry in self._plain:
                for m in entry.pattern.finditer(squashed):
                    ranges.append((spans[keep[m.start()]][0], spans[keep[m.end() - 1]][1]))
                    sources.append(entry.source)
        for entry in self._regex:
            for m in entry.pattern.finditer(normalized):
                if m.end() > m.start():
                    ranges.append((spans[m.start()][0], spans[m.end() - 1][1]))
                    sources.append(entry.source)
        return ranges, sources

    def mask(self, text: str) -> tuple[str | None, tuple[str, ...]]:
        """`text` with every hit replaced by "＊" per character, or None when it cannot be made clean."""
        if not self.matches(normalize(text)):
            return text, ()
        chars = list(text)
        is_masked = [False] * len(text)
        hit_sources: list[str] = []
        for round_ in range(len(text) + 1):  # masking can join neighbours into a new hit: repeat until clean
            ranges, sources = self._ranges("".join(chars))
            if not ranges:
                break
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
        masked = "".join(chars)
        hits = tuple(dict.fromkeys(hit_sources)) or self.hits(normalize(text))
        if self.matches(normalize(masked)):
            return None, hits
        return masked, hits


def _nonempty_match(pattern: re.Pattern[str], text: str) -> bool:
    return any(m.end() > m.start() for m in pattern.finditer(text))


@functools.cache
def load_builtin_ng_words() -> tuple[str, ...]:
    """The shipped starter list (aituber/data/ng_words_ja.txt), one entry per line, comments removed."""
    text = resources.files("aituber.data").joinpath("ng_words_ja.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


@functools.cache
def builtin_matcher() -> NgMatcher:
    """The shipped list, compiled once."""
    return NgMatcher(load_builtin_ng_words(), origin="aituber/data/ng_words_ja.txt")
