"""The wire format of pipeline events for the overlay WebSocket and MQTT: plain dicts, no I/O.

docs/protocol.md describes every message; `PROTOCOL_VERSION` goes up when a message changes in a
way an existing client would misread (new message types and new fields do not change it).
"""

from __future__ import annotations

import json
import struct
from typing import Any

from aituber.core.chatlog import comment_to_record
from aituber.core.comment import Comment
from aituber.core.events import (
    CommandExecuted,
    CommentSelected,
    CommentSkipped,
    Event,
    ReplyCancelled,
    ReplyDelta,
    ReplyEnded,
    ReplySentence,
    ReplyStarted,
    SpeechStarted,
    StatusChanged,
    VoiceStatus,
)
from aituber.core.selection import Waiting

PROTOCOL_VERSION = 2
"""2: speech (the `speech` and `voice` messages, audio frames for clients that ask with `?audio=1`,
`state.voice`, `state.current.spoken`); `reply_cancelled` may follow `reply_end` while it is spoken."""

STATUSES = ("online", "paused", "offline")
"""What the bot can be doing: answering, paused by a moderator, or gone."""

# WebSocket close codes the overlay server uses (RFC 6455 section 7.4; 4000-4999 are private).
CLOSE_GOING_AWAY = 1001
"""The server is shutting down."""
CLOSE_KEEPALIVE_TIMEOUT = 1011
"""The client did not answer a keepalive ping in time (sent by websockets itself)."""
CLOSE_TOO_SLOW = 4000
"""The client fell `client_queue_size` messages behind and was dropped; reconnecting is fine."""

Message = dict[str, Any]


def comment_message(comment: Comment) -> Message:
    record = comment_to_record(comment)
    record.pop("offset_s", None)
    return record


def event_to_message(event: Event, ts: float) -> Message | None:
    """The JSON message for an event, or None for events that are not sent (CommentSeen)."""
    match event:
        case CommentSelected(comment=comment, reply_id=reply_id, queued_s=queued_s):
            return {"type": "comment_selected", "reply_id": reply_id, "comment": comment_message(comment),
                    "queued_s": round(queued_s, 3), "ts": ts}
        case ReplyStarted(reply_id=reply_id, comment_id=comment_id):
            return {"type": "reply_start", "reply_id": reply_id, "comment_id": comment_id, "ts": ts}
        case ReplyDelta(reply_id=reply_id, text=text):
            return {"type": "reply_delta", "reply_id": reply_id, "text": text, "ts": ts}
        case ReplySentence(reply_id=reply_id, text=text, index=index):
            return {"type": "reply_sentence", "reply_id": reply_id, "index": index, "text": text, "ts": ts}
        case ReplyEnded():
            return {"type": "reply_end", "reply_id": event.reply_id, "comment_id": event.comment_id,
                    "text": event.text, "stop_reason": event.stop_reason, "ts": ts}
        case ReplyCancelled(reply_id=reply_id, reason=reason):
            return {"type": "reply_cancelled", "reply_id": reply_id, "reason": reason, "ts": ts}
        case CommentSkipped(comment=comment, reason=reason):
            return {"type": "skipped", "comment_id": comment.id, "reason": reason, "ts": ts}
        case StatusChanged(status=status):
            return status_message(status, ts)
        case SpeechStarted():
            return {"type": "speech", "reply_id": event.reply_id, "index": event.index, "text": event.text,
                    "duration_s": round(event.duration_s, 3), "start_ts": event.started_at,
                    "audio": event.audio is not None, "ts": ts}
        case VoiceStatus(engine=engine, available=available):
            return {"type": "voice", "engine": engine, "available": available, "ts": ts}
    return None


def command_message(event: CommandExecuted, ts: float) -> Message:
    """A command carried out (MQTT `command` topic, the control panel; not sent to the overlay pages)."""
    return {"type": "command", "command": event.command, "arg": event.arg, "source": event.source,
            "author": event.author, "ok": event.ok, "detail": event.detail, "ts": ts}


def waiting_message(waiting: Waiting) -> Message:
    """One waiting comment for the control panel: the comment, its score and the parts of it."""
    return {"comment": comment_message(waiting.comment), "score": round(waiting.score, 2),
            "parts": [[why, round(points, 2)] for why, points in waiting.parts], "age_s": round(waiting.age_s, 1),
            "promoted": waiting.promoted}


def speech_audio_frame(event: SpeechStarted, audio_format: str = "wav") -> bytes:
    """The binary WebSocket frame with a clause's audio: a 4-byte big-endian header length, the header
    (UTF-8 JSON: type "speech_audio", reply_id, index, format), then the audio file."""
    if event.audio is None:
        raise ValueError("this clause has no audio")
    header = json.dumps({"type": "speech_audio", "reply_id": event.reply_id, "index": event.index,
                         "format": audio_format}, ensure_ascii=False).encode()
    return struct.pack(">I", len(header)) + header + event.audio


def status_message(status: str, ts: float) -> Message:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    return {"type": "status", "status": status, "ts": ts}


def state_message(character: dict[str, Any], current: dict[str, Any] | None, status: str,
                  ts: float, voice: dict[str, Any] | None = None) -> Message:
    """The first message on every connection: who is speaking, the reply so far, the status, and the
    voice (null when the bot does not speak)."""
    return {"type": "state", "version": PROTOCOL_VERSION, "character": character, "current": current,
            "status": status, "voice": voice, "ts": ts}
