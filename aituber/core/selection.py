"""Holds moderated comments and picks the next one to answer; makes sure every paid message is acknowledged.

Pure: no I/O, the time is a parameter (`now`, seconds). The queue is bounded: when it is full, the comment
with the lowest standing (kind, amount and question-ness minus waiting time) is dropped, "queue_full".
Comments older than `max_age_s` are dropped "stale". A paid message (its kind `is_paid`: super chat,
super sticker, Jewels gift) is never dropped that way: when it cannot be answered in time (it waited
`paid_max_wait_s`, the queue is full of paid messages, or `thanks_burst_size` of them arrived within
`thanks_burst_window_s`) it moves to the thanks list ("paid_thanked"), which `take_thanks` hands out in
batches to be thanked collectively.

A moderator may `promote` a waiting comment: it is answered next (before any score), and it neither
expires nor is dropped for room while it waits. `waiting(now)` lists the queue in the order it would be
answered, each comment with its score and the parts the score is made of (for the control panel).

`IdleTalk` proposes a topic when nothing has been selected for a while.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from aituber.core.comment import JEWELS_CURRENCY, Comment, CommentKind
from aituber.core.normalize import normalize, squash, viewer_key

__all__ = ["DROP_REASONS", "Dropped", "IdleTalk", "QueueSettings", "SelectionQueue", "Waiting", "is_question"]

DROP_REASONS = ("queue_full", "stale", "deleted", "duplicate", "paid_thanked")

_PAID = frozenset(kind for kind in CommentKind if kind.is_paid)
_MEMBERSHIP, _GIFT = CommentKind.MEMBERSHIP, CommentKind.GIFT

_YEN_PER_UNIT = (
    ("JPY", 1.0),
    ("USD", 150.0),
    ("EUR", 160.0),
    ("GBP", 190.0),
    ("AUD", 100.0),
    ("CAD", 110.0),
    ("KRW", 0.11),
    ("TWD", 4.7),
    ("HKD", 19.0),
    ("CNY", 21.0),
    ("SGD", 110.0),
    ("PHP", 2.6),
    ("IDR", 0.0095),
    ("THB", 4.2),
    ("INR", 1.8),
    ("BRL", 27.0),
    ("MXN", 8.0),
    # A Jewel costs a viewer about one US cent: bundle prices vary with size and promotions, and the
    # creator earns one Ruby (1 US cent) per Jewel. At ¥150 a dollar that is about ¥1.5, so a
    # "Gold coin for 10 Jewels" ranks like a ¥15 super chat: above every unpaid comment.
    (JEWELS_CURRENCY, 1.5),
)


@dataclass(frozen=True, slots=True)
class QueueSettings:
    max_size: int = 20
    max_age_s: float = 60.0
    character_name: str = ""
    character_aliases: tuple[str, ...] = ()
    """Other names viewers call the character by (mentions score higher)."""
    paid_weight: float = 100.0
    """A paid item: super chat, super sticker, Jewels gift."""
    membership_weight: float = 60.0
    """A new member (membership or gifted memberships)."""
    member_weight: float = 15.0
    """The author is a channel member."""
    owner_weight: float = 20.0
    question_weight: float = 10.0
    mention_weight: float = 10.0
    amount_weight: float = 10.0
    """Points per factor of ten of the paid amount in yen (¥100 -> 20, ¥10,000 -> 40)."""
    decay_per_s: float = 0.2
    """Freshness: points lost per second of waiting."""
    answered_penalty: float = 15.0
    """Per answer this viewer got within `fairness_window_s`."""
    queued_penalty: float = 5.0
    """Per other comment of the same viewer waiting in the queue."""
    fairness_window_s: float = 300.0
    paid_max_wait_s: float = 45.0
    """A paid message that waited this long (at most `max_age_s`) is thanked instead of answered."""
    thanks_burst_size: int = 3
    """This many paid messages within `thanks_burst_window_s` are thanked together; 0 = never batch."""
    thanks_burst_window_s: float = 10.0
    thanks_settle_s: float = 2.0
    """`take_thanks` waits this long after the last addition, so one burst becomes one batch."""
    thanks_max_batch: int = 10
    """...unless the batch reached this size."""
    yen_per_unit: tuple[tuple[str, float], ...] = _YEN_PER_UNIT
    """Rough rates to compare amounts across currencies (and Jewels); unknown currencies count as yen."""


@dataclass(frozen=True, slots=True)
class Dropped:
    comment: Comment
    reason: str
    """"queue_full", "stale", "deleted", "duplicate" or "paid_thanked" (moved to the thanks list)."""


@dataclass(frozen=True, slots=True)
class Waiting:
    """A waiting comment as `SelectionQueue.waiting` shows it."""

    comment: Comment
    score: float
    """Its standing now (what `pop` compares); the sum of `parts`."""
    parts: tuple[tuple[str, float], ...]
    """(why, points), the non-zero ones: "paid" (paid item, with its amount), "membership", "member",
    "owner", "question", "mention" (the character's name), and what it loses: "age" (waiting time),
    "queued" (more comments of this viewer waiting), "answered" (this viewer was answered lately)."""
    age_s: float
    promoted: bool = False
    """A moderator asked for it to be answered next."""


_QUESTION = re.compile(
    # Every alternative starts with a literal, so the regex engine can skip other positions quickly;
    # "h(?<!\wh)ow" is "\bhow" written that way.
    "なに|何|どう(?![もぞ])|なぜ|なんで|どこ|いつ(?!も)|だれ|誰|どれ|どっち|教えて|おしえて|ですか|ますか|でしょうか"
    r"|h(?<!\wh)ow\b|w(?<!\ww)(?:hat|hy|hen|here|ho|hich)\b"
)


def is_question(text: str, normalized: str | None = None) -> bool:
    """A heuristic: question marks, or interrogatives such as なに/どう/なんで/教えて/ですか."""
    if "?" in text or "？" in text:
        return True
    return _QUESTION.search(normalize(text) if normalized is None else normalized) is not None


@dataclass(slots=True)
class _Entry:
    comment: Comment
    at: float
    seq: int
    viewer: str
    base: float
    """Score without the parts that change while it waits."""
    paid: bool


class SelectionQueue:
    """Bounded queue of comments waiting for an answer; `pop` returns the best one."""

    def __init__(self, settings: QueueSettings) -> None:
        self.settings = settings
        self.counts: collections.Counter[str] = collections.Counter()
        """Drops (and moves to the thanks list) by reason."""
        self._entries: dict[str, _Entry] = {}  # by comment id, in arrival order
        self._evictable: list[tuple[float, int, str]] = []  # heap of non-paid (eviction key, seq, id), lazy
        self._seq = itertools.count()
        self._queued_by_viewer: dict[str, int] = {}
        self._selected: collections.deque[tuple[float, str]] = collections.deque()
        self._paid_arrivals: collections.deque[float] = collections.deque()
        self._thanks: list[Comment] = []
        self._thanks_changed_at = 0.0
        self._rates = {currency.upper(): rate for currency, rate in settings.yen_per_unit}
        names = (settings.character_name, *settings.character_aliases)
        self._names = tuple(n for n in (squash(normalize(name)) for name in names if name.strip()) if n)
        self._paid_wait_s = min(settings.paid_max_wait_s, settings.max_age_s)
        self._first_limit = min(settings.max_age_s, self._paid_wait_s)
        """No comment younger than this expires."""
        self._max_size = max(settings.max_size, 0)
        self._expiry_due = math.inf
        """A time before which nothing waiting can expire (the oldest arrival plus _first_limit, or less)."""
        self._heap_limit = 4 * self._max_size + 64
        self._promoted: dict[str, None] = {}
        """Comment ids to answer next, in the order they were promoted."""

    def __len__(self) -> int:
        return len(self._entries)

    def comments(self) -> tuple[Comment, ...]:
        """The waiting comments, oldest first."""
        return tuple(e.comment for e in self._entries.values())

    @property
    def thanks_pending(self) -> int:
        return len(self._thanks)

    @property
    def promoted(self) -> tuple[str, ...]:
        """Comment ids a moderator asked to answer next, first first."""
        return tuple(self._promoted)

    def waiting(self, now: float) -> tuple[Waiting, ...]:
        """The waiting comments in the order they would be answered (promoted ones first, then by
        score), each with its score and why. Changes nothing: a comment overdue at `now` is still
        listed until the next `push` or `pop` drops it."""
        answers = collections.Counter(viewer for _, viewer in self._selected)
        listed: list[tuple[bool, int, float, int, Waiting]] = []
        order = {comment_id: i for i, comment_id in enumerate(self._promoted)}
        for entry in self._entries.values():
            parts = [*self.base_parts(entry.comment), *self._penalties(entry, now, answers)]
            score = self._score(entry, now, answers)
            promoted = entry.comment.id in order
            item = Waiting(entry.comment, score, tuple((why, points) for why, points in parts if points),
                           max(now - entry.at, 0.0), promoted)
            listed.append((not promoted, order.get(entry.comment.id, 0), -score, entry.seq, item))
        listed.sort(key=lambda t: t[:4])
        return tuple(t[4] for t in listed)

    def promote(self, comment_id: str) -> bool:
        """Answer this waiting comment next (after those promoted before it); False when it is not
        waiting. A promoted comment neither expires nor is dropped for room."""
        if comment_id not in self._entries:
            return False
        self._promoted[comment_id] = None
        return True

    # -- scoring --

    def yen(self, comment: Comment) -> float:
        if not comment.amount or comment.amount <= 0:
            return 0.0
        return comment.amount * self._rates.get((comment.currency or "JPY").upper(), 1.0)

    def base_score(self, comment: Comment) -> float:
        """The part of a comment's score that does not change while it waits (`base_parts` added up,
        written out: this runs for every comment)."""
        s = self.settings
        kind = comment.kind
        score = 0.0
        if kind in _PAID:
            score += s.paid_weight + s.amount_weight * math.log10(1.0 + self.yen(comment))
        elif kind is _MEMBERSHIP or kind is _GIFT:
            score += s.membership_weight
        author = comment.author
        if author.is_member:
            score += s.member_weight
        if author.is_owner:
            score += s.owner_weight
        text = comment.text
        if text:
            normalized = normalize(text)
            if "?" in text or "？" in text or _QUESTION.search(normalized) is not None:
                score += s.question_weight
            if self._names:
                squashed = normalized.replace(" ", "")
                for name in self._names:
                    if name in squashed:
                        score += s.mention_weight
                        break
        return score

    def base_parts(self, comment: Comment) -> list[tuple[str, float]]:
        """`base_score` by reason (see `Waiting.parts`), for display."""
        s = self.settings
        kind = comment.kind
        parts: list[tuple[str, float]] = []
        if kind in _PAID:
            parts.append(("paid", s.paid_weight + s.amount_weight * math.log10(1.0 + self.yen(comment))))
        elif kind is _MEMBERSHIP or kind is _GIFT:
            parts.append(("membership", s.membership_weight))
        author = comment.author
        if author.is_member:
            parts.append(("member", s.member_weight))
        if author.is_owner:
            parts.append(("owner", s.owner_weight))
        text = comment.text
        if text:
            normalized = normalize(text)
            if "?" in text or "？" in text or _QUESTION.search(normalized) is not None:
                parts.append(("question", s.question_weight))
            if self._names:
                squashed = normalized.replace(" ", "")
                for name in self._names:
                    if name in squashed:
                        parts.append(("mention", s.mention_weight))
                        break
        return parts

    def _score(self, entry: _Entry, now: float, answers: collections.Counter[str]) -> float:
        """Standing now: base score, minus waiting time, minus fairness (answered recently, many queued)."""
        s = self.settings
        score = entry.base - s.decay_per_s * (now - entry.at)
        score -= s.queued_penalty * (self._queued_by_viewer[entry.viewer] - 1)
        score -= s.answered_penalty * answers[entry.viewer]
        return score

    def _penalties(self, entry: _Entry, now: float, answers: collections.Counter[str]) -> list[tuple[str, float]]:
        """What `_score` takes off `entry.base`, by reason, for display."""
        s = self.settings
        return [("age", -s.decay_per_s * (now - entry.at)),
                ("queued", -s.queued_penalty * (self._queued_by_viewer[entry.viewer] - 1)),
                ("answered", -s.answered_penalty * answers[entry.viewer])]

    # -- internal moves --

    def _take(self, comment_id: str) -> _Entry:
        entry = self._entries.pop(comment_id)
        if self._promoted:
            self._promoted.pop(comment_id, None)
        queued = self._queued_by_viewer
        left = queued[entry.viewer] - 1
        if left:
            queued[entry.viewer] = left
        else:
            del queued[entry.viewer]
        return entry

    def _to_thanks(self, comment: Comment, now: float, dropped: list[Dropped] | None) -> None:
        self._thanks.append(comment)
        self._thanks_changed_at = now
        self.counts["paid_thanked"] += 1
        if dropped is not None:
            dropped.append(Dropped(comment, "paid_thanked"))

    def _drop(self, comment: Comment, reason: str, dropped: list[Dropped]) -> None:
        self.counts[reason] += 1
        dropped.append(Dropped(comment, reason))

    def _expire(self, now: float, dropped: list[Dropped] | None) -> None:
        """Paid messages that waited too long go to the thanks list; stale other comments are dropped
        into `dropped` (or, when it is None, left for the next push or pop to report)."""
        max_age_s, paid_wait_s, first_limit = self.settings.max_age_s, self._paid_wait_s, self._first_limit
        expired: list[_Entry] = []
        for entry in self._entries.values():  # arrival order: stop at the first one young enough
            age = now - entry.at
            if age <= first_limit:
                break
            if entry.comment.id in self._promoted:
                continue
            if entry.paid:
                if age > paid_wait_s:
                    expired.append(entry)
            elif age > max_age_s and dropped is not None:  # without `dropped`, stale ones wait
                expired.append(entry)
        for entry in expired:
            self._take(entry.comment.id)
            if entry.paid:
                self._to_thanks(entry.comment, now, dropped)
            elif dropped is not None:
                self._drop(entry.comment, "stale", dropped)
        promoted = self._promoted
        first = next((e for e in self._entries.values() if e.comment.id not in promoted) if promoted
                     else iter(self._entries.values()), None)
        self._expiry_due = math.inf if first is None else first.at + first_limit
        if self._selected:
            horizon = now - self.settings.fairness_window_s
            while self._selected and self._selected[0][0] < horizon:
                self._selected.popleft()

    def _evict_one(self, now: float, dropped: list[Dropped]) -> None:
        heap, entries, promoted = self._evictable, self._entries, self._promoted
        kept: list[tuple[float, int, str]] = []  # promoted ones stay (and stay in the heap)
        while heap:
            item = heapq.heappop(heap)
            entry = entries.get(item[2])
            if entry is None or entry.paid:
                continue
            if promoted and item[2] in promoted:
                kept.append(item)
                continue
            self._take(item[2])
            self.counts["queue_full"] += 1
            dropped.append(Dropped(entry.comment, "queue_full"))
            for back in kept:
                heapq.heappush(heap, back)
            return
        for back in kept:
            heapq.heappush(heap, back)
        # Only paid (or promoted) messages are waiting: the paid one that waited longest is thanked
        # instead; when every one is promoted, the queue grows past its size until they are answered.
        oldest = next((cid for cid, e in entries.items() if e.paid and cid not in self._promoted), None)
        if oldest is not None:
            self._to_thanks(self._take(oldest).comment, now, dropped)

    # -- public --

    def push(self, comment: Comment, now: float) -> list[Dropped]:
        """Add a comment; returns what was dropped (or moved to the thanks list) meanwhile."""
        s = self.settings
        dropped: list[Dropped] = []
        entries = self._entries
        if now > self._expiry_due:  # the oldest waiting comment may be overdue
            self._expire(now, dropped)
        if comment.id in entries:
            self._drop(comment, "duplicate", dropped)
            return dropped
        paid = comment.kind in _PAID
        if paid and s.thanks_burst_size > 0:
            arrivals = self._paid_arrivals
            arrivals.append(now)
            while arrivals and now - arrivals[0] > s.thanks_burst_window_s:
                arrivals.popleft()
            if len(arrivals) >= s.thanks_burst_size:  # too many at once: thank the burst together
                burst = [e for e in entries.values() if e.paid and now - e.at <= s.thanks_burst_window_s]
                for entry in burst:
                    self._to_thanks(self._take(entry.comment.id).comment, now, dropped)
                self._to_thanks(comment, now, dropped)
                return dropped
        seq = next(self._seq)
        viewer = viewer_key(comment.author)
        entry = _Entry(comment, now, seq, viewer, self.base_score(comment), paid)
        entries[comment.id] = entry
        if now + self._first_limit < self._expiry_due:
            self._expiry_due = now + self._first_limit
        queued = self._queued_by_viewer
        queued[viewer] = queued.get(viewer, 0) + 1
        if not paid:
            heap = self._evictable
            heapq.heappush(heap, (entry.base + s.decay_per_s * now, seq, comment.id))
            if len(heap) > self._heap_limit:  # drop the lazily deleted ones
                heap[:] = [(e.base + s.decay_per_s * e.at, e.seq, cid) for cid, e in entries.items() if not e.paid]
                heapq.heapify(heap)
        while len(entries) > self._max_size:
            size = len(entries)
            self._evict_one(now, dropped)
            if len(entries) == size:  # everything waiting was promoted
                break
        return dropped

    def pop(self, now: float) -> tuple[Comment | None, list[Dropped]]:
        """The best waiting comment (or None), and what expired meanwhile."""
        dropped: list[Dropped] = []
        self._expire(now, dropped)
        if not self._entries:
            return None, dropped
        if self._promoted:
            best = self._entries[next(iter(self._promoted))]
        else:
            answers = collections.Counter(viewer for _, viewer in self._selected)
            best = max(self._entries.values(), key=lambda e: (self._score(e, now, answers), -e.seq))
        self._take(best.comment.id)
        self._selected.append((now, best.viewer))
        return best.comment, dropped

    def remove(self, comment_id: str) -> Comment | None:
        """The platform deleted a comment: forget it if it is still waiting (or waiting to be thanked)."""
        if comment_id in self._entries:
            comment = self._take(comment_id).comment
        else:
            index = next((i for i, c in enumerate(self._thanks) if c.id == comment_id), None)
            if index is None:
                return None
            comment = self._thanks.pop(index)
        self.counts["deleted"] += 1
        return comment

    def take_thanks(self, now: float) -> list[Comment]:
        """Paid messages to thank collectively, once their batch has settled; [] otherwise."""
        self._expire(now, None)  # overdue paid messages join the list; stale drops wait for push/pop
        if not self._thanks:
            return []
        s = self.settings
        if now - self._thanks_changed_at < s.thanks_settle_s and len(self._thanks) < max(s.thanks_max_batch, 1):
            return []
        batch, self._thanks = self._thanks, []
        return batch


class IdleTalk:
    """Proposes a topic when the chat has been quiet: round-robin, or shuffled per round with a seed."""

    def __init__(self, topics: Sequence[str], idle_after_s: float, cooldown_s: float, seed: int | None = None) -> None:
        self.topics = tuple(t for t in topics if t.strip())
        self.idle_after_s = idle_after_s
        self.cooldown_s = cooldown_s
        self._random = random.Random(seed) if seed is not None else None
        self._order: list[str] = []
        self._last_topic_at: float | None = None
        self._last_topic: str | None = None

    def _next_topic(self) -> str:
        if not self._order:
            self._order = list(self.topics)
            if self._random is not None:
                self._random.shuffle(self._order)
                if len(self._order) > 1 and self._order[0] == self._last_topic:
                    self._order.append(self._order.pop(0))
        topic = self._order.pop(0)
        self._last_topic = topic
        return topic

    def due(self, now: float, last_activity: float, waiting: int = 0) -> str | None:
        """A topic when nothing was selected for `idle_after_s` and the cooldown passed; None while
        `waiting` comments are queued."""
        if not self.topics or waiting > 0:
            return None
        if now - last_activity < self.idle_after_s:
            return None
        if self._last_topic_at is not None and now - self._last_topic_at < self.cooldown_s:
            return None
        self._last_topic_at = now
        return self._next_topic()
