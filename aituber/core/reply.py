"""One reply, assembled from the engine's chunks into the events outputs see. No I/O.

Text goes through the output guard (NG words masked, or the reply withdrawn) before anything is
shown; what passes becomes `ReplyDelta`s and, sentence by sentence, `ReplySentence`s. At the end the
reply that ran over its length limit is cut after its last complete sentence, and `ReplyEnded` carries
the final text. Times are parameters (`now`, seconds on any one clock).
"""

from __future__ import annotations

from dataclasses import dataclass

from aituber.core.comment import Comment
from aituber.core.events import (
    CommentSelected,
    Event,
    ReplyCancelled,
    ReplyDelta,
    ReplyEnded,
    ReplySentence,
    ReplyStarted,
)
from aituber.core.moderation import Moderator
from aituber.core.outputguard import OutputFilter, OutputGuard
from aituber.core.textstream import SentenceSplitter, cut_at_last_sentence

__all__ = ["ReplyAssembler", "ReplyTiming"]

WITHDRAWN = ("cancelled", "filtered")
"""Stop reasons whose reply is taken off screens (`ReplyCancelled`)."""


@dataclass(frozen=True, slots=True)
class ReplyTiming:
    picked_at: float
    """When the reply was decided on (the comment picked)."""
    queued_s: float = 0.0
    """How long the comment waited in the queue."""


class ReplyAssembler:
    """Engine text in, reply events out, for one reply."""

    def __init__(self, reply_id: str, comment_id: str, moderator: Moderator | OutputFilter, *,
                 comment: Comment | None = None, timing: ReplyTiming, cut_long_replies: bool = True) -> None:
        self.reply_id = reply_id
        self.comment_id = comment.id if comment is not None else comment_id
        self.comment = comment
        self._timing = timing
        self._cut_long = cut_long_replies
        self._guard = OutputGuard(moderator)
        self._sentences = SentenceSplitter()
        self._parts: list[str] = []
        self._n_sentences = 0
        self.first_text_s: float | None = None
        self.ended: ReplyEnded | None = None

    @property
    def dropped(self) -> bool:
        """The output filter withdrew the reply (an NG word with the "drop" setting)."""
        return self._guard.dropped

    @property
    def hits(self) -> tuple[str, ...]:
        return self._guard.hits

    @property
    def text(self) -> str:
        """What has been shown so far."""
        return "".join(self._parts)

    def start(self) -> list[Event]:
        events: list[Event] = []
        if self.comment is not None:
            events.append(CommentSelected(self.comment, self.reply_id, queued_s=max(0.0, self._timing.queued_s)))
        events.append(ReplyStarted(self.reply_id, self.comment_id))
        return events

    def feed(self, text: str, now: float) -> list[Event]:
        """Engine text in; the deltas and complete sentences that may be shown now."""
        return self._show(self._guard.feed(text), now)

    def _show(self, text: str, now: float) -> list[Event]:
        if not text:
            return []
        if self.first_text_s is None:
            self.first_text_s = now - self._timing.picked_at
        self._parts.append(text)
        events: list[Event] = [ReplyDelta(self.reply_id, text)]
        for sentence in self._sentences.feed(text):
            events.append(ReplySentence(self.reply_id, sentence, self._n_sentences))
            self._n_sentences += 1
        return events

    def finish(self, stop_reason: str, tokens: int, now: float) -> list[Event]:
        """The reply is over: "stop", "length", "cancelled", "error" (or "filtered" when dropped)."""
        if self.ended is not None:
            return []
        events: list[Event] = []
        if self.dropped:
            stop_reason = "filtered"
        text = self.text
        if stop_reason in WITHDRAWN:
            events.append(ReplyCancelled(self.reply_id, stop_reason))
        else:
            events += self._show(self._guard.finish(), now)
            shown = self.text
            text = cut_at_last_sentence(shown) if stop_reason == "length" and self._cut_long else shown
            if text == shown:
                for sentence in self._sentences.flush():
                    events.append(ReplySentence(self.reply_id, sentence, self._n_sentences))
                    self._n_sentences += 1
        self.ended = ReplyEnded(reply_id=self.reply_id, comment_id=self.comment_id, text=text,
                                stop_reason=stop_reason, first_token_s=self.first_text_s,
                                total_s=now - self._timing.picked_at, tokens=tokens)
        events.append(self.ended)
        return events
