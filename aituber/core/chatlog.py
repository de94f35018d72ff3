"""The project's own chat-log format (JSON Lines), parsed and written without I/O.

One JSON object per line::

    {"id": "c0001", "offset_s": 12.5,
     "author": {"name": "たぬき丸", "channel_id": "UC...", "owner": false, "moderator": false,
                "member": false, "verified": false},
     "kind": "text", "text": "こんにちは", "amount": null, "currency": null, "timestamp": 1764300000.0}

A Jewels gift has ``"kind": "jewels"``, ``"amount"`` its price in Jewels, ``"currency": "JEWELS"`` and
``"gift_name"`` (``"Gold coin"``); the key is written only when a comment has a gift name.

Only ``text`` and ``author`` are required; ``author`` may also be a plain name string. A transcript
line is the same object with ``"type": "comment"``; transcript lines of other types (a ``gap`` says
how many lines the transcript could not write) are not comments and are ignored, except ``{"type": "deleted", "comment_id": ...}``, which deletes a queued comment.
"""

from __future__ import annotations

import math
from typing import Any

from aituber.core.comment import Author, Comment, CommentDeleted, CommentKind, SourceItem
from aituber.core.sanitize import clean_comment, clean_deleted

#: Transcript event types that carry no chat item (a transcript is replayable as a chat log).
NON_COMMENT_TYPES = frozenset(
    {"skipped", "selected", "reply", "run_start", "run_end", "say", "thanks", "status", "speech", "voice", "gap",
     "command"}
)

_AUTHOR_FLAGS = {"owner": "is_owner", "moderator": "is_moderator", "member": "is_member", "verified": "is_verified"}


def _number(obj: dict[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"'{key}' must be a number, got {value!r}")
    return float(value)


def _author(value: Any) -> Author:
    if isinstance(value, str):
        return Author(name=value)
    if not isinstance(value, dict):
        raise ValueError(f"'author' must be a name or an object, got {type(value).__name__}")
    name = value.get("name")
    if not isinstance(name, str):
        raise ValueError("'author.name' is missing or not a string")
    channel_id = value.get("channel_id", "")
    if not isinstance(channel_id, str):
        raise ValueError("'author.channel_id' must be a string")
    flags = {}
    for key, attr in _AUTHOR_FLAGS.items():
        flag = value.get(key, False)
        if not isinstance(flag, bool):
            raise ValueError(f"'author.{key}' must be true or false")
        flags[attr] = flag
    return Author(name=name, channel_id=channel_id, **flags)


def parse_record(obj: Any, *, default_id: str) -> SourceItem | None:
    """One decoded JSON value -> a chat item, its text made valid (`aituber.core.sanitize`); None for a
    transcript event that is no chat item.

    Raises ValueError with a short reason for anything malformed.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    record_type = obj.get("type", "comment")
    if record_type == "deleted":
        comment_id = obj.get("comment_id")
        if not isinstance(comment_id, str):
            raise ValueError("'comment_id' is missing on a deletion")
        return clean_deleted(CommentDeleted(comment_id=comment_id, offset_s=_number(obj, "offset_s")))
    if record_type in NON_COMMENT_TYPES:
        return None
    if record_type != "comment":
        raise ValueError(f"unknown 'type' {record_type!r}")
    if "text" not in obj:
        raise ValueError("'text' is missing")
    text = obj["text"]
    if not isinstance(text, str):
        raise ValueError("'text' must be a string")
    if "author" not in obj:
        raise ValueError("'author' is missing")
    kind_value = obj.get("kind", "text")
    try:
        kind = CommentKind(kind_value)
    except ValueError:
        allowed = ", ".join(k.value for k in CommentKind)
        raise ValueError(f"'kind' {kind_value!r} is not one of {allowed}") from None
    comment_id = obj.get("id", default_id)
    if not isinstance(comment_id, (str, int)) or isinstance(comment_id, bool):
        raise ValueError("'id' must be a string")
    currency = obj.get("currency")
    if currency is not None and not isinstance(currency, str):
        raise ValueError("'currency' must be a string such as \"JPY\"")
    gift_name = obj.get("gift_name")
    if gift_name is not None and not isinstance(gift_name, str):
        raise ValueError("'gift_name' must be a string such as \"Gold coin\"")
    offset_s = _number(obj, "offset_s")
    return clean_comment(Comment(
        id=str(comment_id),
        author=_author(obj["author"]),
        text=text,
        kind=kind,
        amount=_number(obj, "amount"),
        currency=currency,
        timestamp=_number(obj, "timestamp") or 0.0,
        offset_s=offset_s,
        gift_name=gift_name,
    ))


def comment_to_record(comment: Comment) -> dict[str, Any]:
    """The JSON object for a comment, in the chat-log format (what `parse_record` reads back)."""
    a = comment.author
    record: dict[str, Any] = {
        "id": comment.id,
        "author": {
            "name": a.name,
            "channel_id": a.channel_id,
            "owner": a.is_owner,
            "moderator": a.is_moderator,
            "member": a.is_member,
            "verified": a.is_verified,
        },
        "kind": comment.kind.value,
        "text": comment.text,
        "amount": comment.amount,
        "currency": comment.currency,
        "timestamp": comment.timestamp,
    }
    if comment.gift_name is not None:
        record["gift_name"] = comment.gift_name
    if comment.offset_s is not None:
        record["offset_s"] = round(comment.offset_s, 3)
    return record
