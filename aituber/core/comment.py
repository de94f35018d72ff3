"""What a chat source produces: comments and deletions, as frozen values with no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class CommentKind(enum.StrEnum):
    TEXT = "text"
    SUPER_CHAT = "super_chat"
    SUPER_STICKER = "super_sticker"
    MEMBERSHIP = "membership"
    GIFT = "gift"

    @property
    def is_paid(self) -> bool:
        return self in (CommentKind.SUPER_CHAT, CommentKind.SUPER_STICKER)


@dataclass(frozen=True, slots=True)
class Author:
    name: str
    channel_id: str = ""
    is_owner: bool = False
    is_moderator: bool = False
    is_member: bool = False
    is_verified: bool = False


@dataclass(frozen=True, slots=True)
class Comment:
    """One chat item. `text` is the viewer's text as written; `timestamp` is unix seconds."""

    id: str
    author: Author
    text: str
    kind: CommentKind = CommentKind.TEXT
    amount: float | None = None
    currency: str | None = None
    timestamp: float = 0.0
    offset_s: float | None = field(default=None, compare=False)
    """Seconds since the start of the recorded log or run, where the source knows it."""


@dataclass(frozen=True, slots=True)
class CommentDeleted:
    """The platform removed a comment (a moderator deleted it): drop it if still queued."""

    comment_id: str
    offset_s: float | None = None


SourceItem = Comment | CommentDeleted
