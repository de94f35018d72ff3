"""Events the pipeline emits to its outputs (overlay, MQTT, console, transcript)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aituber.core.comment import Comment


@dataclass(frozen=True, slots=True)
class RunStarted:
    """The first event of a run: who speaks, from which chat, with which model."""

    character: str
    source: str
    model: str
    """The engine's model (folder or served name)."""
    engine: str = ""
    """The engine kind ("ctranslate2", ...)."""


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
    """The final reply: the deltas joined; shorter only when a reply that ran over the length limit
    was cut at its last complete sentence (stop_reason "length")."""
    stop_reason: str
    """"stop" (end token or stop string), "length", "cancelled", "filtered" or "error"."""
    first_token_s: float | None
    """Selected -> first delta; None when the reply is empty."""
    total_s: float
    """Selected -> end."""
    tokens: int


@dataclass(frozen=True, slots=True)
class ReplySentence:
    """A complete sentence of the reply (split on 。！？!? and newlines), for TTS; the last one may
    lack a final mark."""

    reply_id: str
    text: str
    index: int


@dataclass(frozen=True, slots=True)
class ReplyCancelled:
    """The reply was withdrawn (`!skip`, an NG word with the drop setting): clear it from screens.
    A `ReplyEnded` with the same stop reason follows, for statistics and the transcript."""

    reply_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class StatusChanged:
    status: str
    """"online", "paused" or "offline"."""


@dataclass(frozen=True, slots=True)
class RunEnded:
    """The last event of a run, with its counts."""

    seen: int
    answered: int
    skipped: Mapping[str, int] = field(default_factory=dict)
    interrupted: bool = False


Event = (RunStarted | CommentSeen | CommentSkipped | CommentSelected | ReplyStarted | ReplyDelta | ReplySentence
         | ReplyCancelled | ReplyEnded | StatusChanged | RunEnded)
