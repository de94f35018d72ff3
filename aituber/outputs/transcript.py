"""The transcript: one JSON line per event, flushed per line, replayable as a chat log.

Writing happens in a thread of its own, so a slow disk never holds up the event loop: `publish` only
queues the record. Each line is written and flushed as soon as the thread gets it, so a crash loses at
most what was queued in that instant, and never leaves half a line.

A write that fails (disk full, the file removed, an I/O error) never stops the stream: the line is
counted as lost (`lost_lines`), the first failure is logged, and the file is opened again for the
next line (after a failed open, a second later) until writing works again; the first line written after a loss is
`{"type": "gap", "lost": N}`, so the transcript itself says what is missing. A record that cannot be
encoded is lost the same way; nothing else is.
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
_REOPEN_EVERY_S = 1.0


class TranscriptWriter(OutputBase):
    """Appends to a JSONL file from a writer thread; see the module docstring."""

    name = "transcript"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None
        self._queue: queue.SimpleQueue[dict[str, Any] | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.write_errors = 0
        """Failed writes (and failed attempts to open the file again)."""
        self.lost_lines = 0
        """Lines that could not be written (each one is also in a `gap` line once writing works again)."""
        self._unreported = 0
        self._next_reopen = 0.0

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
        if self.lost_lines:
            log.error("transcript: %d line(s) could not be written to %s", self.lost_lines, self.path)

    def _write_loop(self) -> None:
        try:
            while (record := self._queue.get()) is not _STOP:
                self._write_record(record)  # type: ignore[arg-type]
        finally:
            if self._file is not None:
                try:
                    self._file.close()
                except OSError:
                    pass
                self._file = None

    def _write_record(self, record: dict[str, Any]) -> None:
        try:
            line = json.dumps(record, ensure_ascii=False) + "\n"
        except (TypeError, ValueError) as exc:
            self._lost(f"a {record.get('type')} record cannot be written as JSON: {exc}")
            return
        if self._file is None and not self._reopen():
            self._lost("the file is not open")
            return
        file = self._file
        assert file is not None
        try:
            if self._unreported:
                file.write(json.dumps({"type": "gap", "lost": self._unreported, "time": time.time()}) + "\n")
                self._unreported = 0
            try:
                file.write(line)
            except UnicodeEncodeError:  # a lone surrogate: the escaped form is valid JSON too
                file.write(json.dumps(record) + "\n")
            file.flush()
        except OSError as exc:
            self.write_errors += 1
            self._lost(str(exc))
            self._drop_file(retry_in_s=0.0)

    def _lost(self, why: str) -> None:
        self.lost_lines += 1
        self._unreported += 1
        if self.lost_lines == 1:
            log.error("transcript: cannot write %s: %s (the stream goes on; lost lines are counted)", self.path, why)
        else:
            log.debug("transcript: line lost: %s", why)

    def _drop_file(self, retry_in_s: float = _REOPEN_EVERY_S) -> None:
        """After a failed write the file is closed and opened again for the next line (it may have
        been removed, or the disk may have room again); after a failed open, a second later."""
        file, self._file = self._file, None
        self._next_reopen = time.monotonic() + retry_in_s
        if file is not None:
            try:
                file.close()
            except OSError:
                pass

    def _reopen(self) -> bool:
        if time.monotonic() < self._next_reopen:
            return False
        try:
            self._open()
            assert self._file is not None
            if self._file.tell() > 0 and not _ends_with_newline(self.path):
                self._file.write("\n")  # a line the failure cut in half stays alone on its line
        except OSError as exc:
            self.write_errors += 1
            self._drop_file()
            log.debug("transcript: cannot open %s again: %s", self.path, exc)
            return False
        log.info("transcript: writing to %s again", self.path)
        return True


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as file:
        file.seek(-1, 2)
        return file.read(1) == b"\n"


def create_output(context: OutputContext) -> TranscriptWriter | None:
    path = context.settings.transcript
    if path is None:
        return None
    context.announce(f"transcript: {path}")
    return TranscriptWriter(path)
