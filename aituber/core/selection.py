"""Holds moderated comments and picks the next one to answer. Pure: no I/O, `now` is a parameter."""

from __future__ import annotations

import collections
from dataclasses import dataclass

from aituber.core.comment import Comment


@dataclass(frozen=True, slots=True)
class QueueSettings:
    max_size: int = 20
    max_age_s: float = 60.0
    character_name: str = ""


@dataclass(frozen=True, slots=True)
class Dropped:
    comment: Comment
    reason: str


class SelectionQueue:
    def __init__(self, settings: QueueSettings) -> None:
        self.settings = settings
        self._items: list[tuple[Comment, float]] = []
        self._thanks: list[Comment] = []
        self.counts: collections.Counter[str] = collections.Counter()

    def __len__(self) -> int:
        return len(self._items)

    def _expire(self, now: float) -> list[Dropped]:
        dropped: list[Dropped] = []
        kept: list[tuple[Comment, float]] = []
        for comment, at in self._items:
            if now - at > self.settings.max_age_s:
                if comment.kind.is_paid:
                    self._thanks.append(comment)
                else:
                    dropped.append(Dropped(comment, "stale"))
            else:
                kept.append((comment, at))
        self._items = kept
        for d in dropped:
            self.counts[d.reason] += 1
        return dropped

    def push(self, comment: Comment, now: float) -> list[Dropped]:
        dropped = self._expire(now)
        self._items.append((comment, now))
        while len(self._items) > self.settings.max_size:
            for i, (c, _) in enumerate(self._items):
                if not c.kind.is_paid:
                    del self._items[i]
                    dropped.append(Dropped(c, "queue_full"))
                    self.counts["queue_full"] += 1
                    break
            else:
                self._thanks.append(self._items.pop(0)[0])
        return dropped

    def pop(self, now: float) -> tuple[Comment | None, list[Dropped]]:
        dropped = self._expire(now)
        if not self._items:
            return None, dropped
        return self._items.pop(0)[0], dropped

    def remove(self, comment_id: str) -> Comment | None:
        for i, (c, _) in enumerate(self._items):
            if c.id == comment_id:
                del self._items[i]
                self.counts["deleted"] += 1
                return c
        return None

    def take_thanks(self, now: float) -> list[Comment]:
        out, self._thanks = self._thanks, []
        return out
