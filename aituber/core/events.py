"""Events the pipeline emits to its outputs (overlay, MQTT, console, transcript)."""

from __future__ import annotations

from dataclasses import dataclass

from aituber.core.comment import Comment


@dataclass(frozen=True, slots=True)
class CommentSeen:
    comment: Comment


@dataclass(frozen=True, slots=True)
class CommentSkipped:
    comment: Comment
    reason: str


@dataclass(frozen=True, slots=True)
class CommentSelected:
    comment: Comment
    reply_id: str
    queued_s: float
    """How long the comment waited in the queue."""


@dataclass(frozen=True, slots=True)
class ReplyStarted:
    reply_id: str
    comment_id: str


@dataclass(frozen=True, slots=True)
class ReplyDelta:
    reply_id: str
    text: str


@dataclass(frozen=True, slots=True)
class ReplyEnded:
    reply_id: str
    comment_id: str
    text: str
    """The whole reply: exactly the deltas joined."""
    stop_reason: str
    """"stop" (end token or stop string), "length", "cancelled" or "error"."""
    first_token_s: float | None
    """Selected -> first delta; None when the reply is empty."""
    total_s: float
    """Selected -> end."""
    tokens: int


Event = CommentSeen | CommentSkipped | CommentSelected | ReplyStarted | ReplyDelta | ReplyEnded
