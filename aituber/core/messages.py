"""The wire format of events for the overlay WebSocket (and later MQTT): plain dicts, no I/O."""

from __future__ import annotations

from typing import Any

from aituber.core.chatlog import comment_to_record
from aituber.core.events import (
    CommentSelected,
    CommentSkipped,
    Event,
    ReplyDelta,
    ReplyEnded,
    ReplyStarted,
)

PROTOCOL_VERSION = 1


def comment_message(comment) -> dict[str, Any]:
    record = comment_to_record(comment)
    record.pop("offset_s", None)
    return record


def event_to_message(event: Event, ts: float) -> dict[str, Any] | None:
    """The JSON message for an event, or None for events the overlay does not get."""
    match event:
        case CommentSelected(comment=comment, reply_id=reply_id):
            return {"type": "comment_selected", "reply_id": reply_id, "comment": comment_message(comment), "ts": ts}
        case ReplyStarted(reply_id=reply_id, comment_id=comment_id):
            return {"type": "reply_start", "reply_id": reply_id, "comment_id": comment_id, "ts": ts}
        case ReplyDelta(reply_id=reply_id, text=text):
            return {"type": "reply_delta", "reply_id": reply_id, "text": text, "ts": ts}
        case ReplyEnded():
            return {"type": "reply_end", "reply_id": event.reply_id, "comment_id": event.comment_id,
                    "text": event.text, "stop_reason": event.stop_reason, "ts": ts}
        case CommentSkipped(comment=comment, reason=reason):
            return {"type": "skipped", "comment_id": comment.id, "reason": reason, "ts": ts}
    return None
