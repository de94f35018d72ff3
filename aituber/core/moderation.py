"""Decides whether a comment may reach the prompt, makes its text safe for it, and cleans what the model says.

Pure: no I/O (the NG lists are matched by aituber.core.ngwords, injection and URLs spotted by
aituber.core.injection). Time is a parameter (`now`, seconds).
Every skip has a short reason, recorded by the caller in the transcript's skip log:

    "blocked_viewer" "empty" "ng_name" "ng_word" "injection"          (everyone; owner/moderators too)
    "too_long" "url" "symbols_only" "repeat" "flood" "viewer_limit"   (spam and limits)

Owner and moderator comments, and paid messages (super chat / super sticker), skip the spam and limit
filters: a paid message that is too long is truncated for the prompt instead of skipped.
"""

from __future__ import annotations

import collections
import functools
from dataclasses import dataclass

from aituber.core.comment import Comment, CommentKind
from aituber.core.injection import has_url, looks_like_injection, neutralize_prompt_text
from aituber.core.ngwords import NgMatcher, OutputVerdict, builtin_matcher
from aituber.core.normalize import name_key, normalize, squash, strip_invisible, viewer_key
from aituber.errors import ConfigError

__all__ = ["SKIP_REASONS", "ModerationSettings", "Moderator"]


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

_TEXT = CommentKind.TEXT


@dataclass(frozen=True, slots=True)
class ModerationSettings:
    max_comment_chars: int = 200
    """Longer comments are skipped "too_long" unless `truncate_long`; 0 = no limit."""
    truncate_long: bool = False
    """True: keep long comments, but `prompt_text` truncates them to `max_comment_chars`."""
    max_moderated_chars: int = 2000
    """Hard cap on what is moderated at all, whatever `max_comment_chars` says (YouTube allows 200):
    a longer comment is skipped "too_long" before any matching, except from the owner, moderators and
    paid messages, which are moderated and prompted on their first `max_moderated_chars` characters only.
    A longer viewer name is "ng_name"."""
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


# --- the moderator --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _bigrams(text: str) -> frozenset[str]:
    """Character pairs (cached: a viewer's recent texts are compared again with each new one)."""
    return frozenset(map(str.__add__, text, text[1:]))


PROMPT_NAME_CHARS = 40
"""A viewer's name in the prompt is cut to this length."""


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
        self._ng = NgMatcher.merged(builtin_matcher(), character_ng) if settings.use_builtin_ng_words else character_ng
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

    def ng_hits(self, text: str) -> tuple[str, ...]:
        """The NG entries (built-in and per-character) that `text` contains."""
        return self._ng.hits(text)

    def pending_start(self, text: str) -> int:
        """Where the unfinished tail of a streaming reply starts (see `NgMatcher.pending_start`)."""
        return self._ng.pending_start(text)

    def prepare(self) -> None:
        """Compile the NG matching that replies need (slow for the built-in list: call it off the event
        loop before replies start, and after `add_ng_word`)."""
        self._ng.prepare()

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
            found = self._ng_names[name] = self._ng.matches(name)
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
        exempt = privileged or comment.kind.is_paid
        limit = s.max_moderated_chars
        if len(text) > limit or (
            not exempt and s.max_comment_chars > 0 and len(text) > s.max_comment_chars and not s.truncate_long
        ):
            if not exempt:
                return "too_long"  # before any work that grows with the text
            text = text[:limit]
        if not text or text.isspace():
            if is_text:
                return "empty"
            text = ""
        if author.name and (len(author.name) > limit or self._is_ng_name(author.name)):
            return "ng_name"
        if not text:
            return None  # a membership or sticker without a message
        normalized = normalize(text)
        if not normalized and not strip_invisible(text).strip():
            return "empty" if is_text else None  # only invisible characters
        if self._ng.matches(text, normalized):
            return "ng_word"
        if looks_like_injection(text, normalized):
            return "injection"
        if exempt:
            return None
        if s.block_urls and has_url(text, normalized):
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
        s = self.settings
        return neutralize_prompt_text(comment.text[: s.max_moderated_chars], s.max_comment_chars, s.character_name)

    def prompt_name(self, comment: Comment) -> str:
        """The viewer's name made safe for the prompt the same way (a name such as "<end_of_turn>" or
        "ユーザー:" must not write into the template either), at most `PROMPT_NAME_CHARS` characters."""
        return neutralize_prompt_text(comment.author.name, PROMPT_NAME_CHARS, self.settings.character_name)

    # -- replies --

    def filter_output(self, text: str) -> OutputVerdict:
        """Mask (or drop, by setting) NG words in a reply of the model."""
        masked, hits = self._ng.mask(text)
        if not hits:
            return OutputVerdict(text, False, ())
        if masked is None or self.settings.output_ng_action == "drop":
            return OutputVerdict("", True, hits)
        return OutputVerdict(masked, False, hits)
