"""What the character does next: the session's policy, without I/O.

Comments come in through `accept` (moderation, then the selection queue); moderators' commands through
`execute` (each one answered by a `CommandExecuted` event); `next(now)` returns one decision, a plain
value the pipeline carries out:

    Say(text)         a moderator's `!say`: said as written (through the output filter)
    Thank(comments)   paid messages thanked together
    Answer(comment)   the best waiting comment
    Idle(topic)       the chat has been quiet: bring up a topic
    Wait(until)       nothing to do before `until` (or before something arrives)
    Finish()          the chat is over and everything is handled

Every method takes the time (`now`, seconds) and returns the events to publish. `snapshot(now)` is the
state a moderator sees (the control panel): the queue with scores, paused, idle talk, session bans.

While paused only comments a moderator promoted (`next COMMENT_ID`) are answered, so a streamer can
pick comments by hand.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aituber.core.commands import Command, parse_command
from aituber.core.comment import Comment, CommentDeleted, SourceItem
from aituber.core.events import CommandExecuted, CommentSeen, CommentSkipped, Event, StatusChanged
from aituber.core.moderation import Moderator
from aituber.core.selection import Dropped, IdleTalk, SelectionQueue, Waiting
from aituber.errors import ConfigError

__all__ = ["DEFAULT_IDLE_AFTER_S", "Answer", "Decision", "Director", "Finish", "Idle", "Say", "SessionState", "Thank",
           "Wait", "executed", "thanks_names"]


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

DEFAULT_IDLE_AFTER_S = 45.0
"""Idle talk switched on at run time (`idle on`) for a character without `[idle] after_s` waits this long."""


def _skipped(dropped: Sequence[Dropped]) -> list[Event]:
    return [CommentSkipped(d.comment, d.reason) for d in dropped]


def executed(command: Command, ok: bool = True, detail: str = "") -> CommandExecuted:
    """The event that reports a command carried out (`ok`), or why it changed nothing."""
    return CommandExecuted(command.name, command.arg, command.source, command.author, ok, detail)


@dataclass(frozen=True, slots=True)
class SessionState:
    """What a moderator sees of the session (the control panel), at one moment."""

    paused: bool
    idle_on: bool
    """Idle talk is switched on (`idle on|off`)."""
    idle_available: bool
    """The character has topics to talk about."""
    waiting: tuple[Waiting, ...]
    """The queue in the order it would be answered, with scores."""
    thanks_pending: int
    says_pending: int
    banned: tuple[str, ...]
    """Viewers banned during this session (as given to `ban`), oldest first."""
    ng_words: tuple[str, ...]
    """NG words added during this session."""
    chat_over: bool


class Director:
    """The session's state: the queue, the pause flag, `!say` texts waiting, idle talk, whether the chat
    is over. `source_done()` says the chat ended; the pipeline calls `replied` after each decision it
    carried out."""

    def __init__(self, moderator: Moderator, queue: SelectionQueue, idle: IdleTalk | None = None, *,
                 now: float = 0.0, paused: bool = False, max_says: int = 20, idle_on: bool = True) -> None:
        self.moderator = moderator
        self.queue = queue
        self.idle = idle
        self.idle_on = idle_on
        """Idle talk is switched on (it also needs `idle` with topics)."""
        self.paused = paused
        self.says: collections.deque[str] = collections.deque(maxlen=max_says)
        self.chat_over = False
        self.last_activity = now
        self.banned: dict[str, None] = {}
        """Session bans, as given (ordered)."""
        self.ng_words: list[str] = []

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
        """A moderator's command (other than `skip`, which the pipeline carries out): the events of what
        it changed, and last its `CommandExecuted`."""
        events: list[Event] = []
        ok, detail = True, ""
        match command.name:
            case "pause":
                if self.paused:
                    detail = "already paused"
                else:
                    self.paused = True
                    events.append(StatusChanged("paused"))
            case "resume":
                if not self.paused:
                    detail = "not paused"
                else:
                    self.paused = False
                    events.append(StatusChanged("online"))
            case "ban":
                self.moderator.block(command.arg)
                self.banned[command.arg.strip()] = None
                events += self._drop_waiting(
                    lambda c: "blocked_viewer" if self.moderator.is_blocked(c) and not _privileged(c) else None)
                detail = f"{len(events)} waiting comment(s) dropped" if events else ""
            case "unban":
                self.moderator.unblock(command.arg)
                if self.banned.pop(command.arg.strip(), "absent") is not None:
                    detail = "not among this session's bans"
            case "say":
                self.says.append(command.arg)
            case "next":
                ok = self.queue.promote(command.arg)
                if not ok:
                    detail = f"comment {command.arg[:60]!r} is not waiting (answered, dropped or unknown)"
            case "ng":
                try:
                    self.moderator.add_ng_word(command.arg)
                except ConfigError as exc:
                    ok, detail = False, str(exc)
                else:
                    self.ng_words.append(command.arg.strip())
                    events += self._drop_waiting(self._ng_reason)
                    detail = f"{len(events)} waiting comment(s) dropped" if events else ""
            case "idle":
                self.idle_on = command.arg == "on"
                if self.idle_on and not (self.idle and self.idle.topics):
                    ok, detail = False, "the character has no idle topics (topics in character.toml)"
        events.append(executed(command, ok, detail))
        return events

    def _drop_waiting(self, reason_for: Callable[[Comment], str | None]) -> list[Event]:
        """Take the waiting comments that `reason_for` gives a skip reason out of the queue."""
        events: list[Event] = []
        for comment in self.queue.comments():
            reason = reason_for(comment)
            if reason is not None and self.queue.remove(comment.id) is not None:
                events.append(CommentSkipped(comment, reason))
        return events

    def _ng_reason(self, comment: Comment) -> str | None:
        if self.moderator.ng_hits(comment.text):
            return "ng_word"
        return "ng_name" if self.moderator.ng_hits(comment.author.name) else None

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
        if self.paused and not self.queue.promoted:
            return (Finish() if self.chat_over else Wait(now + POLL_S)), []
        comment, expired = self.queue.pop(now)
        events = _skipped(expired)
        if comment is not None:
            return Answer(comment), events
        if self.chat_over:
            if len(self.queue) == 0 and self.queue.thanks_pending == 0:
                return Finish(), events
            return Wait(now + POLL_S), events
        topic = self.idle.due(now, self.last_activity, len(self.queue)) if self.idle and self.idle_on else None
        if topic is not None:
            return Idle(topic), events
        return Wait(now + POLL_S), events

    def snapshot(self, now: float) -> SessionState:
        """The session as a moderator sees it now; changes nothing."""
        return SessionState(paused=self.paused, idle_on=self.idle_on,
                            idle_available=bool(self.idle and self.idle.topics), waiting=self.queue.waiting(now),
                            thanks_pending=self.queue.thanks_pending, says_pending=len(self.says),
                            banned=tuple(self.banned), ng_words=tuple(self.ng_words), chat_over=self.chat_over)

    def replied(self, decision: Decision, now: float) -> None:
        """A decision was carried out (a reply ended, whatever its stop reason)."""
        self.last_activity = now
        if isinstance(decision, Answer):
            self.moderator.note_answered(decision.comment, now)


def _privileged(comment: Comment) -> bool:
    return comment.author.is_owner or comment.author.is_moderator


def thanks_names(comments: Sequence[Comment], name_format: str, separator: str, others: str,
                 max_names: int) -> str:
    """The viewers of `comments` for a thanks text: each name once, at most `max_names`, then `others`."""
    names = list(dict.fromkeys(c.author.name for c in comments))
    shown = separator.join(name_format.format(name=n) for n in names[:max_names])
    return shown + (others if len(names) > max_names else "")
