"""Decides whether a comment may reach the prompt, makes its text safe for it, and cleans what the model says.

Pure: no I/O except reading the shipped NG list once (package data). Time is a parameter (`now`, seconds).
Every skip has a short reason, recorded by the caller in the transcript's skip log:

    "blocked_viewer" "empty" "ng_name" "ng_word" "injection"          (everyone; owner/moderators too)
    "too_long" "url" "symbols_only" "repeat" "flood" "viewer_limit"   (spam and limits)

Owner and moderator comments, and paid messages (super chat / super sticker), skip the spam and limit
filters: a paid message that is too long is truncated for the prompt instead of skipped.
"""

from __future__ import annotations

import collections
import functools
import itertools
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources

from aituber.core.comment import Comment, CommentKind
from aituber.core.normalize import (
    Span,
    char_class,
    chars_folding_to,
    name_key,
    normalize,
    normalize_spans,
    squash,
    strip_invisible,
    viewer_key,
)
from aituber.errors import ConfigError

__all__ = [
    "SKIP_REASONS",
    "ModerationSettings",
    "Moderator",
    "NgMatcher",
    "OutputVerdict",
    "load_builtin_ng_words",
    "looks_like_injection",
    "neutralize_prompt_text",
]

logger = logging.getLogger(__name__)

SKIP_REASONS = (
    "blocked_viewer",
    "empty",
    "ng_name",
    "ng_word",
    "injection",
    "too_long",
    "url",
    "symbols_only",
    "repeat",
    "flood",
    "viewer_limit",
)

_MASK_CHAR = "＊"
_PAID = frozenset(kind for kind in CommentKind if kind.is_paid)
_TEXT = CommentKind.TEXT
_REGEX_PREFIX = "re:"


@dataclass(frozen=True, slots=True)
class ModerationSettings:
    max_comment_chars: int = 200
    """Longer comments are skipped "too_long" unless `truncate_long`; 0 = no limit."""
    truncate_long: bool = False
    """True: keep long comments, but `prompt_text` truncates them to `max_comment_chars`."""
    ng_words: tuple[str, ...] = ()
    """Per-character NG list: plain words, or regular expressions written as "re:PATTERN"."""
    use_builtin_ng_words: bool = True
    """Also use the shipped Japanese starter list, aituber/data/ng_words_ja.txt."""
    output_ng_action: str = "mask"
    """"mask": each NG hit in a reply becomes "＊" * its length; "drop": the whole reply is dropped."""
    block_urls: bool = True
    max_answers_per_viewer: int = 3
    """Answers per viewer within `viewer_window_s`; 0 = unlimited."""
    viewer_window_s: float = 300.0
    blocked_viewers: tuple[str, ...] = ()
    """Display names / handles (case and "@" ignored) or channel ids."""
    near_duplicate_window_s: float = 60.0
    near_duplicate_similarity: float = 0.8
    """A comment counts as a repeat of the viewer's previous one (sharing its first or last three
    characters) from this character-bigram Jaccard similarity; identical normalised texts always do."""
    flood_threshold: int = 4
    """This many distinct viewers posting the same normalised text within `flood_window_s`; 0 = off."""
    flood_window_s: float = 30.0
    character_name: str = ""
    """Used to neutralise "NAME:" turn markers in comments."""


@dataclass(frozen=True, slots=True)
class OutputVerdict:
    text: str
    """The reply with NG hits masked, or "" when dropped."""
    dropped: bool
    hits: tuple[str, ...]
    """The NG entries that matched, as written in their list."""


# --- NG lists -------------------------------------------------------------------------------------------

_KANA_ONLY = {cp: cp - 0x60 for cp in range(0x30A1, 0x30F7)}


def _fold_pattern(pattern: str) -> str:
    """A regex entry in the form of normalised text: NFKC and katakana as hiragana (syntax untouched)."""
    return unicodedata.normalize("NFKC", pattern).translate(_KANA_ONLY)


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
def _builtin_matcher() -> NgMatcher:
    return NgMatcher(load_builtin_ng_words(), origin="aituber/data/ng_words_ja.txt")


# --- injection and template markers ---------------------------------------------------------------------

_TEMPLATE_MARKERS = re.compile(
    r"<\|[^<>]{0,40}\|>"
    r"|<\s*/?\s*(?:start_of_turn|end_of_turn|bos|eos|s|nl|im_start|im_end|system|user|assistant|model)\s*>"
    r"|#{2,}\s*(?:instruction|input|output|response|system|user|assistant|指示|入力|出力|応答|システム|ユーザー)"
    r"|\[/?inst\]",
    re.IGNORECASE,
)
_INJECTION_EN = re.compile(
    r"(?:\b(?:ignore|disregard|forget)(?: (?:all|any|the|your|my|of|previous|prior|above|earlier|preceding|these"
    r"|those|former|system))* (?:instructions?|prompts?|directives)\b"
    r"|\b(?:ignore|disregard) (?:all |your |the |previous |prior |above )+rules\b"
    r"|\bsystem ?prompt\b|\bdeveloper mode\b|\bjailbreak|\bdo anything now\b)"
)
_INJECTION_JA = re.compile(
    "しすてむぷろんぷと"
    "|(?:以前|前|これまで|今まで|上|先|最初)の(?:指示|命令|設定|るーる|ぷろんぷと|制約)を(?:全て|すべて)?(?:無視|忘れ)"
    "|(?:指示|命令|制約|るーる|設定)を(?:全て|すべて)?無視"
    "|ぷろんぷとを(?:表示|教え|見せ|出力|おしえ|みせ)"
)


_MARKER_GATE = re.compile(char_class(chars_folding_to("<#[")))
"""Any character that folds to "<", "#" or "[": only then can a text hold a template marker."""
_URL_GATE = re.compile(char_class([*chars_folding_to(".:/"), ord("。")]))
"""Any character that folds to ".", ":" or "/" (or "。"): with "dot", what every URL pattern needs."""


def _fold_raw(text: str) -> str:
    """Invisible characters removed, NFKC, case folded; separators kept (for URLs and template markers)."""
    return unicodedata.normalize("NFKC", strip_invisible(text)).casefold()


def _has_url(text: str, normalized: str) -> bool:
    if _URL_GATE.search(text) is None and "dot" not in normalized:
        return False
    return _URL.search(_fold_raw(text)) is not None


_INJECTION_GATE = re.compile("ignore|disregard|forget|prompt|developer|jailbreak|anything now|無視|忘れ|ぷろんぷと")
"""Every _INJECTION_EN/_JA match holds one of these words: one fast scan rules most text out."""


def looks_like_injection(text: str, normalized: str | None = None) -> bool:
    """Obvious prompt injection ("ignore previous instructions", "前の指示を無視") or template/special tokens.

    `normalized` (`normalize(text)`) may be passed when already computed.
    """
    norm = normalize(text) if normalized is None else normalized
    if _INJECTION_GATE.search(norm) is not None and (
        _INJECTION_EN.search(norm) is not None or _INJECTION_JA.search(squash(norm)) is not None
    ):
        return True
    return _MARKER_GATE.search(text) is not None and _TEMPLATE_MARKERS.search(_fold_raw(text)) is not None


_BRACKETS = str.maketrans({"<": "＜", ">": "＞", "[": "［", "]": "］", "{": "｛", "}": "｝", "|": "｜"})
_ROLE_WORDS = (
    "ユーザー",
    "ユーザ",
    "ゆーざー",
    "システム",
    "しすてむ",
    "アシスタント",
    "あしすたんと",
    "視聴者",
    "user",
    "system",
    "assistant",
    "model",
    "human",
    "instruction",
    "input",
    "output",
    "response",
)
_URL = re.compile(
    r"(?:https?|hxxps?|ftp)\s*:\s*/\s*/\S*"
    r"|www\s*\.\s*[a-z0-9]\S*"
    r"|\b[a-z0-9][a-z0-9-]{0,62}\s*(?:\.|。|\(dot\)|\[dot\]| dot )\s*"
    r"(?:com|net|org|jp|io|ly|gg|tv|me|co|xyz|info|biz|ru|cn|be|link|site|online|live|app|dev|to|cc|us|uk"
    r"|top|shop|club|fun|vip)\b\S*"
    r"|\b(?:youtu\.be|discord\.gg|bit\.ly|t\.co)/\S*",
    re.IGNORECASE,
)


@functools.cache
def _role_colon(character_name: str) -> re.Pattern[str]:
    words = list(_ROLE_WORDS)
    if character_name.strip():
        name = unicodedata.normalize("NFKC", character_name.strip())
        words += [name, name.translate(_KANA_ONLY)]
    alternatives = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
    return re.compile(rf"({alternatives})\s*:", re.IGNORECASE)


def neutralize_prompt_text(text: str, max_chars: int = 0, character_name: str = "") -> str:
    """Text a comment may put in the prompt: it can never write into the template.

    Invisible characters and line breaks go, "#" is removed, angle/square/curly brackets and "|" become
    full-width, "ROLE:" turn markers lose their colon, URLs become "(URL)", and the result is cut to
    `max_chars` (0 = no limit). No result contains "###", "<|", "<NL>", "\\n\\n" or "ユーザー:".
    """
    text = unicodedata.normalize("NFKC", strip_invisible(text))
    text = text.replace("#", "").translate(_BRACKETS)
    if _URL_GATE.search(text) is not None or "dot" in text.casefold():
        text = _URL.sub("(URL)", text)
    text = " ".join(text.split())
    role = _role_colon(character_name)
    if role.search(text):
        while role.search(text):
            text = role.sub(r"\1 ", text)
        text = " ".join(text.split())
    if max_chars > 0 and len(text) > max_chars:
        text = text[:max_chars].rstrip()
    return text


# --- the moderator --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _bigrams(text: str) -> frozenset[str]:
    """Character pairs (cached: a viewer's recent texts are compared again with each new one)."""
    return frozenset(map(str.__add__, text, text[1:]))


class Moderator:
    """Filters incoming comments and outgoing replies. Holds only the history its filters need."""

    _MAX_HISTORY_PER_VIEWER = 8
    """Recent texts kept per viewer for exact repeats (the newest is also compared for near-duplicates)."""

    def __init__(self, settings: ModerationSettings) -> None:
        if settings.output_ng_action not in ("mask", "drop"):
            raise ConfigError(
                f'moderation.output_ng_action must be "mask" or "drop", got {settings.output_ng_action!r}'
            )
        self.settings = settings
        character_ng = NgMatcher(settings.ng_words, origin="character ng_words")
        self._ng = NgMatcher.merged(_builtin_matcher(), character_ng) if settings.use_builtin_ng_words else character_ng
        self._ng_names: dict[str, bool] = {}
        self._blocked_ids: set[str] = set()
        self._blocked_names: set[str] = set()
        for viewer in settings.blocked_viewers:
            self.block(viewer)
        self._said: dict[str, tuple[collections.deque[float], collections.deque[str]]] = {}
        """Viewer -> when they said what (normalised text without spaces) lately, oldest first."""
        self._posters: dict[str, dict[str, float]] = {}
        """Normalised text -> viewer -> when they last posted it (within the flood window)."""
        self._posts: collections.deque[tuple[float, str, str]] = collections.deque()
        self._answered: dict[str, collections.deque[float]] = {}
        self._next_sweep = float("-inf")

    # -- NG --

    def ng_patterns(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """All NG patterns in use (see `NgMatcher.patterns`)."""
        return self._ng.patterns()

    def ng_hits(self, text: str) -> tuple[str, ...]:
        """The NG entries (built-in and per-character) that `text` contains."""
        return self._ng.hits(normalize(text))

    def add_ng_word(self, entry: str) -> None:
        """One more NG entry for the rest of this session (a word, or "re:REGEX"), for comments, names
        and replies alike. Raises ConfigError for an empty entry or a bad regex."""
        added = NgMatcher([entry.strip()], origin="session NG word")
        if not len(added):
            raise ConfigError(f"NG word {entry.strip()[:40]!r}: nothing left to match (empty, a # comment, or "
                              "only symbols)")
        self._ng = NgMatcher.merged(self._ng, added)
        self._ng_names.clear()

    def _is_ng_name(self, name: str) -> bool:
        found = self._ng_names.get(name)
        if found is None:
            if len(self._ng_names) >= 65536:
                self._ng_names.clear()
            found = self._ng_names[name] = self._ng.matches(normalize(name))
        return found

    # -- blocking --

    def block(self, name_or_channel_id: str) -> None:
        value = name_or_channel_id.strip()
        if value:
            self._blocked_ids.add(value)
            self._blocked_names.add(name_key(value))

    def unblock(self, name_or_channel_id: str) -> None:
        value = name_or_channel_id.strip()
        self._blocked_ids.discard(value)
        self._blocked_names.discard(name_key(value))

    def is_blocked(self, comment: Comment) -> bool:
        author = comment.author
        return (bool(author.channel_id) and author.channel_id in self._blocked_ids) or name_key(
            author.name
        ) in self._blocked_names

    # -- comments --

    def check(self, comment: Comment, now: float) -> str | None:
        """None = passes; else a skip reason (see SKIP_REASONS). Records history for repeats and floods."""
        s = self.settings
        author = comment.author
        privileged = author.is_owner or author.is_moderator
        if not privileged and (self._blocked_ids or self._blocked_names) and self.is_blocked(comment):
            return "blocked_viewer"
        text = comment.text
        is_text = comment.kind is _TEXT
        if not text or text.isspace():
            if is_text:
                return "empty"
            text = ""
        if author.name and self._is_ng_name(author.name):
            return "ng_name"
        if not text:
            return None  # a membership or sticker without a message
        normalized = normalize(text)
        if not normalized and not strip_invisible(text).strip():
            return "empty" if is_text else None  # only invisible characters
        if self._ng.matches(normalized):
            return "ng_word"
        if looks_like_injection(text, normalized):
            return "injection"
        if privileged or comment.kind in _PAID:
            return None
        if s.max_comment_chars > 0 and len(text) > s.max_comment_chars and not s.truncate_long:
            return "too_long"
        if s.block_urls and _has_url(text, normalized):
            return "url"
        key = squash(normalized)
        if not key:
            return "symbols_only"
        if now >= self._next_sweep:
            self._sweep(now)
        viewer = viewer_key(author)
        reason = self._repeat_or_flood(viewer, key, now)
        if reason is None and s.max_answers_per_viewer > 0:
            answered = self._answered.get(viewer)
            if answered is not None:
                while answered and now - answered[0] > s.viewer_window_s:
                    answered.popleft()
                if len(answered) >= s.max_answers_per_viewer:
                    reason = "viewer_limit"
        return reason

    def _repeat_or_flood(self, viewer: str, key: str, now: float) -> str | None:
        reason: str | None = None
        said = self._said.get(viewer)
        if said is None:
            size = self._MAX_HISTORY_PER_VIEWER
            self._said[viewer] = (collections.deque((now,), size), collections.deque((key,), size))
        else:
            times, keys = said
            oldest = now - self.settings.near_duplicate_window_s
            if times[-1] >= oldest:  # they said something recently
                reason = self._repeat(times, keys, key, oldest)
            times.append(now)
            keys.append(key)
        threshold = self.settings.flood_threshold
        if threshold > 0:
            posts, posters_by_key = self._posts, self._posters
            oldest = now - self.settings.flood_window_s
            while posts and posts[0][0] < oldest:  # forget posts that left the window
                at, old_key, who = posts.popleft()
                posters = posters_by_key.get(old_key)
                if posters is not None and posters.get(who) == at:
                    del posters[who]
                    if not posters:
                        del posters_by_key[old_key]
            posters = posters_by_key.get(key)
            if posters is None:
                posters_by_key[key] = {viewer: now}
            else:
                posters[viewer] = now
                if reason is None and len(posters) >= threshold:
                    reason = "flood"
            posts.append((now, key, viewer))
        return reason

    def _repeat(
        self, times: collections.deque[float], keys: collections.deque[str], key: str, oldest: float
    ) -> str | None:
        """ "repeat" when `key` equals a text the viewer posted since `oldest`, or is very similar to their
        last one (about as long, sharing its start or end, bigram Jaccard similarity >= the setting)."""
        if key in keys:
            for at, old in zip(reversed(times), reversed(keys), strict=True):
                if at < oldest:
                    break
                if old == key:
                    return "repeat"
        last = keys[-1]
        size, last_size = len(key), len(last)
        similarity = self.settings.near_duplicate_similarity
        # Jaccard similarity is at most |A| / |B|; edited spam keeps its start or its end.
        shorter, longer = (size, last_size) if size < last_size else (last_size, size)
        if shorter < 4 or shorter - 1 < similarity * (longer - 1):
            return None
        if not (last.startswith(key[:3]) or last.endswith(key[-3:])):
            return None
        bigrams, last_bigrams = _bigrams(key), _bigrams(last)
        if len(bigrams & last_bigrams) >= similarity * len(bigrams | last_bigrams):
            return "repeat"
        return None

    def _sweep(self, now: float) -> None:
        """Forget history older than every window (amortised: at most once per window)."""
        s = self.settings
        horizon = max(s.near_duplicate_window_s, s.flood_window_s, 1.0)
        self._next_sweep = now + horizon
        for viewer in [v for v, said in self._said.items() if now - said[0][-1] > s.near_duplicate_window_s]:
            del self._said[viewer]
        for viewer in [v for v, times in self._answered.items() if not times or now - times[-1] > s.viewer_window_s]:
            del self._answered[viewer]

    def note_answered(self, comment: Comment, now: float) -> None:
        """A reply to `comment` was produced: counts towards the viewer's `max_answers_per_viewer`."""
        viewer = viewer_key(comment.author)
        answered = self._answered.get(viewer)
        if answered is None:
            answered = self._answered[viewer] = collections.deque()
        answered.append(now)

    def prompt_text(self, comment: Comment) -> str:
        """The comment text made safe for the prompt: template markers neutralised, truncated."""
        return neutralize_prompt_text(comment.text, self.settings.max_comment_chars, self.settings.character_name)

    # -- replies --

    def filter_output(self, text: str) -> OutputVerdict:
        """Mask (or drop, by setting) NG words in a reply of the model."""
        masked, hits = self._ng.mask(text)
        if not hits:
            return OutputVerdict(text, False, ())
        if masked is None or self.settings.output_ng_action == "drop":
            return OutputVerdict("", True, hits)
        return OutputVerdict(masked, False, hits)
