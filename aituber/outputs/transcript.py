"""The transcript: one JSON line per event, flushed per line, replayable as a chat log."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, TextIO

from aituber.core.chatlog import comment_to_record
from aituber.core.events import CommentSeen, CommentSelected, CommentSkipped, Event, ReplyEnded

log = logging.getLogger(__name__)


def event_to_record(event: Event) -> dict[str, Any] | None:
    match event:
        case CommentSeen(comment=comment):
            return {"type": "comment", **comment_to_record(comment)}
        case CommentSkipped(comment=comment, reason=reason):
            return {"type": "skipped", "comment_id": comment.id, "reason": reason}
        case CommentSelected(comment=comment, reply_id=reply_id, queued_s=queued_s):
            return {"type": "selected", "comment_id": comment.id, "reply_id": reply_id,
                    "queued_s": round(queued_s, 4)}
        case ReplyEnded():
            return {"type": "reply", "reply_id": event.reply_id, "comment_id": event.comment_id,
                    "text": event.text, "stop_reason": event.stop_reason,
                    "first_token_s": None if event.first_token_s is None else round(event.first_token_s, 4),
                    "total_s": round(event.total_s, 4), "tokens": event.tokens}
    return None


class TranscriptWriter:
    """Appends to a JSONL file; each line is written and flushed at once, so a crash loses nothing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None

    def open(self, meta: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8", buffering=1)
        self._write({"type": "run_start", "time": time.time(), **meta})

    def publish(self, event: Event) -> None:
        record = event_to_record(event)
        if record is not None:
            self._write(record)

    def close(self, summary: dict[str, Any] | None = None) -> None:
        if self._file is None:
            return
        self._write({"type": "run_end", "time": time.time(), **(summary or {})})
        self._file.close()
        self._file = None

    def _write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
