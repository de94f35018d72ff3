"""The transcript: one JSON line per event, flushed per line, replayable as a chat log.

Writing happens in a thread of its own, so a slow disk never holds up the event loop: `publish` only
queues the record. Each line is written and flushed as soon as the thread gets it, so a crash loses at
most what was queued in that instant, and never leaves half a line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from aituber.core.chatlog import comment_to_record
from aituber.core.events import (
    CommandExecuted,
    CommentSeen,
    CommentSelected,
    CommentSkipped,
    Event,
    ReplyEnded,
    RunEnded,
    RunStarted,
    SpeechEnded,
    VoiceStatus,
)
from aituber.errors import ConfigError
from aituber.outputs.base import OutputBase, OutputContext

log = logging.getLogger(__name__)


def event_to_record(event: Event, now: float | None = None) -> dict[str, Any] | None:
    """The transcript line for an event, or None for events it does not keep. `now`: for run lines."""
    match event:
        case RunStarted():
            return {"type": "run_start", "time": now, "character": event.character, "source": event.source,
                    "model": event.model, "engine": event.engine}
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
        case SpeechEnded():
            return {"type": "speech", "reply_id": event.reply_id, "index": event.index, "text": event.text,
                    "spoken": event.spoken, "clause_at": round(event.clause_at, 4),
                    "synthesis_s": None if event.synthesis_s is None else round(event.synthesis_s, 4),
                    "play_start": round(event.started_at, 4), "play_end": round(event.ended_at, 4),
                    "duration_s": round(event.duration_s, 4), "stopped": event.stopped,
                    **({"silent_reason": event.silent_reason} if event.silent_reason else {})}
        case CommandExecuted():
            return {"type": "command", "time": now, "command": event.command, "arg": event.arg,
                    "source": event.source, "author": event.author, "ok": event.ok, "detail": event.detail}
        case VoiceStatus(engine=engine, available=available, detail=detail):
            return {"type": "voice", "time": now, "engine": engine, "available": available, "detail": detail}
        case RunEnded():
            return {"type": "run_end", "time": now, "seen": event.seen, "answered": event.answered,
                    "skipped": dict(event.skipped), "interrupted": event.interrupted}
    return None


_STOP = object()


class TranscriptWriter(OutputBase):
    """Appends to a JSONL file from a writer thread; see the module docstring."""

    name = "transcript"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None
        self._queue: queue.SimpleQueue[dict[str, Any] | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.write_errors = 0

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self._open)
        except OSError as exc:
            raise ConfigError(f"transcript: cannot write {self.path}: {exc.strerror}") from exc
        self._thread = threading.Thread(target=self._write_loop, name="aituber-transcript", daemon=True)
        self._thread.start()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8", buffering=1)

    def publish(self, event: Event) -> None:
        record = event_to_record(event, time.time())
        if record is not None and self._thread is not None:
            self._queue.put(record)

    async def close(self) -> None:
        """Write what is queued, then close the file."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(thread.join)

    def _write_loop(self) -> None:
        file = self._file
        assert file is not None
        try:
            while (record := self._queue.get()) is not _STOP:
                line = json.dumps(record, ensure_ascii=False) + "\n"
                try:
                    try:
                        file.write(line)
                    except UnicodeEncodeError:  # a lone surrogate: the escaped form is valid JSON too
                        file.write(json.dumps(record) + "\n")
                    file.flush()
                except OSError as exc:
                    self.write_errors += 1
                    if self.write_errors == 1:
                        log.error("transcript: cannot write %s: %s (the stream goes on)", self.path, exc)
        finally:
            file.close()
            self._file = None


def create_output(context: OutputContext) -> TranscriptWriter | None:
    path = context.settings.transcript
    if path is None:
        return None
    context.announce(f"transcript: {path}")
    return TranscriptWriter(path)
