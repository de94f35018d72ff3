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
    """Memberships given to other viewers."""
    JEWELS = "jewels"
    """A Jewels gift ("sent Gold coin for 10 Jewels"): bought with money, like a super sticker."""

    @property
    def is_paid(self) -> bool:
        """Money went to the channel: ranked first, and always answered or thanked."""
        return self in _PAID_KINDS


_PAID_KINDS = frozenset({CommentKind.SUPER_CHAT, CommentKind.SUPER_STICKER, CommentKind.JEWELS})

JEWELS_CURRENCY = "JEWELS"
"""The `currency` of a Jewels gift: its `amount` is the number of Jewels it cost (YouTube's own
virtual currency, not an ISO 4217 code)."""


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
    """One chat item. `text` is the viewer's text as written (for items the viewer writes nothing in,
    YouTube's line about it); `timestamp` is unix seconds. `amount` and `currency` (ISO 4217, or
    `JEWELS_CURRENCY`) say what a paid item cost."""

    id: str
    author: Author
    text: str
    kind: CommentKind = CommentKind.TEXT
    amount: float | None = None
    currency: str | None = None
    timestamp: float = 0.0
    offset_s: float | None = field(default=None, compare=False)
    """Seconds since the start of the recorded log or run, where the source knows it."""
    gift_name: str | None = None
    """The gift of a Jewels gift ("Gold coin"); None for every other kind."""


@dataclass(frozen=True, slots=True)
class CommentDeleted:
    """The platform removed a comment (a moderator deleted it): drop it if still queued."""

    comment_id: str
    offset_s: float | None = None


SourceItem = Comment | CommentDeleted
