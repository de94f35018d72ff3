"""What the character does next: the session's policy, without I/O.

Comments come in through `accept` (moderation, then the selection queue); moderators' commands through
`execute`; `next(now)` returns one decision, a plain value the pipeline carries out:

    Say(text)         a moderator's `!say`: said as written (through the output filter)
    Thank(comments)   paid messages thanked together
    Answer(comment)   the best waiting comment
    Idle(topic)       the chat has been quiet: bring up a topic
    Wait(until)       nothing to do before `until` (or before something arrives)
    Finish()          the chat is over and everything is handled

Every method takes the time (`now`, seconds) and returns the events to publish.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass

from aituber.core.commands import Command, parse_command
from aituber.core.comment import Comment, CommentDeleted, SourceItem
from aituber.core.events import CommentSeen, CommentSkipped, Event, StatusChanged
from aituber.core.moderation import Moderator
from aituber.core.selection import Dropped, IdleTalk, SelectionQueue

__all__ = ["Answer", "Decision", "Director", "Finish", "Idle", "Say", "Thank", "Wait", "thanks_names"]


@dataclass(frozen=True, slots=True)
class Say:
    text: str


@dataclass(frozen=True, slots=True)
class Thank:
    comments: tuple[Comment, ...]


@dataclass(frozen=True, slots=True)
class Answer:
    comment: Comment


@dataclass(frozen=True, slots=True)
class Idle:
    topic: str


@dataclass(frozen=True, slots=True)
class Wait:
    until: float
    """Ask again at this time at the latest (or as soon as a comment or command arrives)."""


@dataclass(frozen=True, slots=True)
class Finish:
    pass


Decision = Say | Thank | Answer | Idle | Wait | Finish

POLL_S = 0.5
"""How long a Wait lasts at most: thanks settle and idle talk become due with time alone."""


def _skipped(dropped: Sequence[Dropped]) -> list[Event]:
    return [CommentSkipped(d.comment, d.reason) for d in dropped]


class Director:
    """The session's state: the queue, the pause flag, `!say` texts waiting, idle talk, whether the chat
    is over. `source_done()` says the chat ended; the pipeline calls `replied` after each decision it
    carried out."""

    def __init__(self, moderator: Moderator, queue: SelectionQueue, idle: IdleTalk | None = None, *,
                 now: float = 0.0, paused: bool = False, max_says: int = 20) -> None:
        self.moderator = moderator
        self.queue = queue
        self.idle = idle
        self.paused = paused
        self.says: collections.deque[str] = collections.deque(maxlen=max_says)
        self.chat_over = False
        self.last_activity = now

    # -- in ---------------------------------------------------------------------------------------

    def accept(self, item: SourceItem, now: float) -> tuple[list[Event], Command | None]:
        """One item from the chat: (events, a moderator's command to carry out, if it was one)."""
        if isinstance(item, CommentDeleted):
            removed = self.queue.remove(item.comment_id)
            return ([CommentSkipped(removed, "deleted")] if removed is not None else []), None
        events: list[Event] = [CommentSeen(item)]
        command = parse_command(item)
        if command is not None:
            events.append(CommentSkipped(item, "command"))
            return events, command
        reason = self.moderator.check(item, now)
        if reason is not None:
            events.append(CommentSkipped(item, reason))
            return events, None
        events += _skipped(self.queue.push(item, now))
        return events, None

    def execute(self, command: Command, now: float) -> list[Event]:
        """A moderator's command (other than `skip`, which the pipeline carries out)."""
        events: list[Event] = []
        match command.name:
            case "pause":
                if not self.paused:
                    self.paused = True
                    events.append(StatusChanged("paused"))
            case "resume":
                if self.paused:
                    self.paused = False
                    events.append(StatusChanged("online"))
            case "ban":
                self.moderator.block(command.arg)
                for comment in self.queue.comments():
                    if self.moderator.is_blocked(comment) and self.queue.remove(comment.id) is not None:
                        events.append(CommentSkipped(comment, "blocked_viewer"))
            case "say":
                self.says.append(command.arg)
        return events

    def source_done(self) -> None:
        self.chat_over = True

    # -- out --------------------------------------------------------------------------------------

    def next(self, now: float) -> tuple[Decision, list[Event]]:
        """The next thing to do, and the events of what expired meanwhile."""
        if self.says:
            return Say(self.says.popleft()), []
        thanks = self.queue.take_thanks(now)
        if thanks:
            return Thank(tuple(thanks)), []
        if self.paused:
            return (Finish() if self.chat_over else Wait(now + POLL_S)), []
        comment, expired = self.queue.pop(now)
        events = _skipped(expired)
        if comment is not None:
            return Answer(comment), events
        if self.chat_over:
            if len(self.queue) == 0 and self.queue.thanks_pending == 0:
                return Finish(), events
            return Wait(now + POLL_S), events
        topic = self.idle.due(now, self.last_activity, len(self.queue)) if self.idle else None
        if topic is not None:
            return Idle(topic), events
        return Wait(now + POLL_S), events

    def replied(self, decision: Decision, now: float) -> None:
        """A decision was carried out (a reply ended, whatever its stop reason)."""
        self.last_activity = now
        if isinstance(decision, Answer):
            self.moderator.note_answered(decision.comment, now)


def thanks_names(comments: Sequence[Comment], name_format: str, separator: str, others: str,
                 max_names: int) -> str:
    """The viewers of `comments` for a thanks text: each name once, at most `max_names`, then `others`."""
    names = list(dict.fromkeys(c.author.name for c in comments))
    shown = separator.join(name_format.format(name=n) for n in names[:max_names])
    return shown + (others if len(names) > max_names else "")
