"""What of a streaming reply may be shown: the output NG filter applied before anything leaves. No I/O.

A reply arrives a few characters at a time, and an NG word may be split across pieces. The guard
shows only the text that can no longer become part of an NG hit: the moderator tells where the
unfinished tail starts (a partial match of an NG entry), everything before it is masked and shown.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Protocol

import regex

from aituber.core.moderation import Moderator
from aituber.core.ngwords import OutputVerdict
from aituber.core.normalize import normalize_spans


class OutputFilter(Protocol):
    def filter_output(self, text: str) -> OutputVerdict: ...

    def pending_start(self, text: str) -> int:
        """Index in `text` from which more text could still complete an NG hit (len(text): none)."""


@functools.lru_cache(maxsize=64)
def _partial_pattern(sources: tuple[str, ...]) -> regex.Pattern[str] | None:
    """The NG patterns as one `regex` pattern, which can report partial matches at the end of text."""
    if not sources:
        return None
    ordered = sorted(sources, key=len, reverse=True)
    return regex.compile("|".join(f"(?:{p})" for p in ordered), regex.IGNORECASE | regex.V0)


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


class NgTail:
    """Where the unfinished tail of a streaming text starts, for a moderator's NG lists."""

    def __init__(self, moderator: Moderator) -> None:
        plain, patterns = moderator.ng_patterns()
        self._plain = _partial_pattern(plain)
        self._regex = _partial_pattern(patterns)

    def pending_start(self, text: str) -> int:
        normalized, spans = normalize_spans(text)
        starts: list[int] = []
        if self._plain is not None:
            keep = [i for i, ch in enumerate(normalized) if ch != " "]
            squashed = "".join(normalized[i] for i in keep)
            start = _first_partial(self._plain, squashed)
            if start is not None:
                starts.append(spans[keep[start]][0])
        start = _first_partial(self._regex, normalized)
        if start is not None:
            starts.append(spans[start][0])
        return min(starts, default=len(text))


class GuardedModerator:
    """A moderator's output filter plus where a streaming text's unfinished tail starts."""

    def __init__(self, moderator: Moderator) -> None:
        self._moderator = moderator
        self._tail = NgTail(moderator)

    def filter_output(self, text: str) -> OutputVerdict:
        return self._moderator.filter_output(text)

    def pending_start(self, text: str) -> int:
        return self._tail.pending_start(text)


class OutputGuard:
    """Model text in, showable deltas out. What it emits, joined, is the filtered reply."""

    def __init__(self, moderator: OutputFilter | Moderator) -> None:
        if isinstance(moderator, Moderator):
            moderator = GuardedModerator(moderator)
        self._moderator = moderator
        self._raw = ""
        self._emitted = 0
        self.dropped = False
        self.hits: tuple[str, ...] = ()

    def feed(self, text: str) -> str:
        self._raw += text
        return self._release(final=False)

    def finish(self) -> str:
        return self._release(final=True)

    def _release(self, final: bool) -> str:
        if self.dropped or not self._raw:
            return ""
        verdict = self._moderator.filter_output(self._raw)
        self.hits = verdict.hits
        if verdict.dropped:
            self.dropped = True
            return ""
        masked = verdict.text
        safe = len(masked) if final else min(len(masked), self._moderator.pending_start(self._raw))
        out = masked[self._emitted:safe] if safe > self._emitted else ""
        self._emitted += len(out)
        return out
