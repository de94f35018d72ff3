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
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from aituber.core.comment import Comment, CommentKind
from aituber.core.normalize import (
    Span,
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
    """Character-bigram Jaccard similarity from which two comments of one viewer count as the same."""
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


def _plain_pattern(word: str) -> str:
    """Each character of a squashed plain entry may be repeated ("しね" also matches "ししねねね").

    Written "しし*ねね*" rather than "し+ね+": an alternative that starts with a literal is skipped by the
    regex engine after one comparison, which keeps the combined pattern fast.
    """
    parts: list[str] = []
    for ch, group in itertools.groupby(word):
        escaped = re.escape(ch)
        parts.append(escaped * len(list(group)) + escaped + "*")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class _Entry:
    source: str
    pattern: re.Pattern[str]
    plain: bool


def _compile_entries(entries: Iterable[str], origin: str) -> list[_Entry]:
    compiled: list[_Entry] = []
    seen: set[tuple[bool, str]] = set()
    for number, raw in enumerate(entries, start=1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.startswith(_REGEX_PREFIX):
            body = _fold_pattern(entry[len(_REGEX_PREFIX) :])
            try:
                pattern = re.compile(body, re.IGNORECASE)
            except re.error as exc:
                raise ConfigError(
                    f"{origin}, entry {number} ({entry!r}): not a valid regular expression: {exc}; "
                    "fix it or drop the 're:' prefix to match it as a plain word"
                ) from exc
            if pattern.fullmatch("") is not None:
                raise ConfigError(f"{origin}, entry {number} ({entry!r}): matches empty text, so it would match everything")
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
        if key in seen:
            continue
        seen.add(key)
        compiled.append(_Entry(entry, pattern, plain))
    return compiled


def _combine(entries: list[_Entry], flags: int) -> re.Pattern[str] | None:
    if not entries:
        return None
    ordered = sorted(entries, key=lambda e: -len(e.pattern.pattern))
    try:
        return re.compile("|".join(f"(?:{e.pattern.pattern})" for e in ordered), flags)
    except re.error:  # e.g. inline global flags in one entry: fall back to searching them one by one
        return None


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
        self._plain_all = _combine(self._plain, 0)  # plain entries are already case folded
        self._regex_all = _combine(self._regex, re.IGNORECASE)

    @classmethod
    def merged(cls, *matchers: NgMatcher) -> NgMatcher:
        """One matcher searching every entry of `matchers` with a single pass per kind."""
        merged = cls.__new__(cls)
        merged._set([e for m in matchers for e in (*m._plain, *m._regex)])
        return merged

    def __len__(self) -> int:
        return len(self._plain) + len(self._regex)

    def _search(self, combined: re.Pattern[str] | None, entries: list[_Entry], text: str) -> bool:
        if combined is not None:
            return combined.search(text) is not None
        return any(e.pattern.search(text) for e in entries)

    def matches(self, normalized: str) -> bool:
        """Whether any entry matches text already passed through `normalize`."""
        if self._plain and self._search(self._plain_all, self._plain, squash(normalized)):
            return True
        return bool(self._regex) and self._search(self._regex_all, self._regex, normalized)

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
        hit_sources: list[str] = []
        for _ in range(len(text) + 1):  # masking can join neighbours into a new hit: repeat until clean
            ranges, sources = self._ranges("".join(chars))
            if not ranges:
                break
            hit_sources += sources
            for start, end in ranges:
                chars[start:end] = _MASK_CHAR * (end - start)
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
    r"\b(?:ignore|disregard|forget)(?: (?:all|any|the|your|my|of|previous|prior|above|earlier|preceding|these"
    r"|those|former|system))* (?:instructions?|prompts?|rules|directions|directives)\b"
    r"|\bsystem ?prompt\b|\bdeveloper mode\b|\bjailbreak|\bdo anything now\b"
)
_INJECTION_JA = re.compile(
    "しすてむぷろんぷと"
    "|(?:以前|前|これまで|今まで|上|先|最初)の(?:指示|命令|設定|るーる|ぷろんぷと|制約)を(?:全て|すべて)?(?:無視|忘れ)"
    "|(?:指示|命令|制約|るーる|設定)を(?:全て|すべて)?無視"
    "|ぷろんぷとを(?:表示|教え|見せ|出力|おしえ|みせ)"
)


def _fold_raw(text: str) -> str:
    """Invisible characters removed, NFKC, case folded; separators kept (for URLs and template markers)."""
    return unicodedata.normalize("NFKC", strip_invisible(text)).casefold()


def looks_like_injection(text: str, normalized: str | None = None, raw: str | None = None) -> bool:
    """Obvious prompt injection ("ignore previous instructions", "前の指示を無視") or template/special tokens.

    `normalized` (`normalize(text)`) and `raw` (`_fold_raw(text)`) may be passed when already computed.
    """
    raw = _fold_raw(text) if raw is None else raw
    if ("<" in raw or "#" in raw or "[" in raw) and _TEMPLATE_MARKERS.search(raw):
        return True
    norm = normalize(text) if normalized is None else normalized
    return _INJECTION_EN.search(norm) is not None or _INJECTION_JA.search(squash(norm)) is not None


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


def _may_hold_url(folded: str) -> bool:
    return "." in folded or ":" in folded or "/" in folded or "。" in folded or "dot" in folded


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
    if _may_hold_url(text.casefold()):
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


def _bigrams(text: str) -> frozenset[str]:
    return frozenset(text[i : i + 2] for i in range(len(text) - 1))


@dataclass(slots=True)
class _Said:
    at: float
    key: str
    bigrams: frozenset[str] | None


class Moderator:
    """Filters incoming comments and outgoing replies. Holds only the history its filters need."""

    _MAX_HISTORY_PER_VIEWER = 8

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
        self._said: dict[str, collections.deque[_Said]] = {}
        self._posters: dict[str, dict[str, float]] = {}
        self._answered: dict[str, collections.deque[float]] = {}
        self._next_sweep = float("-inf")

    # -- NG --

    def ng_hits(self, text: str) -> tuple[str, ...]:
        """The NG entries (built-in and per-character) that `text` contains."""
        return self._ng.hits(normalize(text))

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
        return (
            bool(author.channel_id) and author.channel_id in self._blocked_ids
        ) or name_key(author.name) in self._blocked_names

    # -- comments --

    def check(self, comment: Comment, now: float) -> str | None:
        """None = passes; else a skip reason (see SKIP_REASONS). Records history for repeats and floods."""
        s = self.settings
        author = comment.author
        privileged = author.is_owner or author.is_moderator
        if not privileged and (self._blocked_ids or self._blocked_names) and self.is_blocked(comment):
            return "blocked_viewer"
        text = comment.text
        is_text = comment.kind is CommentKind.TEXT
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
        raw = _fold_raw(text)
        if looks_like_injection(text, normalized, raw):
            return "injection"
        if privileged or comment.kind.is_paid:
            return None
        if s.max_comment_chars > 0 and len(text) > s.max_comment_chars and not s.truncate_long:
            return "too_long"
        if s.block_urls and _may_hold_url(raw) and _URL.search(raw):
            return "url"
        key = squash(normalized)
        if not key:
            return "symbols_only"
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
        s = self.settings
        reason: str | None = None
        said = self._said.get(viewer)
        bigrams: frozenset[str] | None = None
        if said is None:
            said = self._said[viewer] = collections.deque(maxlen=self._MAX_HISTORY_PER_VIEWER)
        else:
            similarity = s.near_duplicate_similarity
            for old in said:
                if now - old.at > s.near_duplicate_window_s:
                    continue
                if old.key == key:
                    reason = "repeat"
                    break
                if len(key) < 4 or len(old.key) < 4:
                    continue
                shorter, longer = sorted((len(key), len(old.key)))
                if shorter - 1 < similarity * (longer - 1):  # Jaccard <= |A|/|B|: cannot be similar enough
                    continue
                if bigrams is None:
                    bigrams = _bigrams(key)
                if old.bigrams is None:
                    old.bigrams = _bigrams(old.key)
                if len(bigrams & old.bigrams) >= similarity * len(bigrams | old.bigrams):
                    reason = "repeat"
                    break
        said.append(_Said(now, key, bigrams))
        if s.flood_threshold > 0:
            posters = self._posters.get(key)
            if posters is None:
                posters = self._posters[key] = {}
            else:
                posters.pop(viewer, None)  # re-insert at the end: the dict stays in time order
                while posters:
                    first = next(iter(posters))
                    if now - posters[first] <= s.flood_window_s:
                        break
                    del posters[first]
            posters[viewer] = now
            if reason is None and len(posters) >= s.flood_threshold:
                reason = "flood"
        return reason

    def _sweep(self, now: float) -> None:
        """Forget history older than every window (amortised: at most once per window)."""
        if now < self._next_sweep:
            return
        s = self.settings
        horizon = max(s.near_duplicate_window_s, s.flood_window_s, 1.0)
        self._next_sweep = now + horizon
        for viewer in [v for v, said in self._said.items() if not said or now - said[-1].at > s.near_duplicate_window_s]:
            del self._said[viewer]
        for key in [k for k, posters in self._posters.items() if now - next(reversed(posters.values())) > s.flood_window_s]:
            del self._posters[key]  # its newest poster is outside the window, so all are
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
