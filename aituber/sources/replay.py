"""Replaying a recorded chat log (the project's JSONL format or a transcript) with its timing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from aituber.core.chatlog import parse_record
from aituber.core.comment import Comment, SourceItem
from aituber.errors import ChatLogLineError, ChatSourceError
from aituber.sources.base import SourceStats

log = logging.getLogger(__name__)


def read_chat_log(path: Path, data: bytes, stats: SourceStats, strict: bool = False) -> Iterator[SourceItem]:
    """Parse a JSONL chat log. A malformed line is a warning with file:line and is skipped."""
    for line_no, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            try:
                obj = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ValueError(f"not valid JSON ({exc.__class__.__name__}: {exc})") from None
            item = parse_record(obj, default_id=f"{path.name}:{line_no}")
        except ValueError as exc:
            error = ChatLogLineError(str(path), line_no, str(exc))
            if strict:
                raise error from None
            log.warning("%s (line skipped)", error)
            stats.skipped["malformed"] += 1
            continue
        if item is not None:
            yield item


class ReplayChatSource:
    """Yields a log's items at their original pace (`speed` times faster), or at once (`fast`)."""

    def __init__(self, path: str | Path, *, speed: float = 1.0, fast: bool = False, strict: bool = False,
                 clock=time.time) -> None:
        self.path = Path(path)
        if speed <= 0:
            raise ChatSourceError(f"--speed must be above 0, got {speed}")
        self.speed = speed
        self.fast = fast
        self.strict = strict
        self.name = f"replay:{self.path.name}"
        self.stats = SourceStats()
        self._clock = clock

    async def items(self) -> AsyncIterator[SourceItem]:
        try:
            data = await asyncio.to_thread(self.path.read_bytes)
        except FileNotFoundError:
            raise ChatSourceError(f"chat log not found: {self.path}") from None
        except OSError as exc:
            raise ChatSourceError(f"{self.path}: cannot read: {exc.strerror}") from exc
        loop = asyncio.get_running_loop()
        start_wall = loop.time()
        first_offset: float | None = None
        offset = 0.0
        for item in read_chat_log(self.path, data, self.stats, self.strict):
            if item.offset_s is not None:
                offset = max(offset, item.offset_s)  # logs out of order never rewind the clock
            if first_offset is None:
                first_offset = offset
            if self.fast:
                await asyncio.sleep(0)
            else:
                delay = start_wall + (offset - first_offset) / self.speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if isinstance(item, Comment):
                self.stats.kinds[item.kind.value] += 1
                item = dataclasses.replace(item, timestamp=self._clock(), offset_s=offset)
            else:
                self.stats.kinds["deleted"] += 1
            yield item
