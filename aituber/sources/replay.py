"""Replaying a recorded chat log with its timing: the project's JSONL or a transcript, yt-dlp's
`*.live_chat.json`, chat-downloader's JSON / JSON Lines, pytchat's JsonfileArchiver lines, raw
get_live_chat responses saved from a browser's devtools.

A replay that yields nothing says why (`ReplayChatSource.nothing_read`): the command then exits 2
instead of 0, so a log that could not be read is never mistaken for a quiet one."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aituber.core.chatlog_formats import LogFormat, decode_log, detect_format, parse_format
from aituber.core.comment import Comment, CommentDeleted, SourceItem
from aituber.core.youtube_items import Ignored, RecentAuthors
from aituber.errors import ChatLogLineError, ChatSourceError
from aituber.sources.base import SourceStats

log = logging.getLogger(__name__)

#: In fast mode (or when behind schedule) the source lets other tasks run every this many items.
YIELD_EVERY = 256


@dataclass(slots=True)
class ReadReport:
    """What `read_chat_log` found beyond the items: the format it read, the first malformed line."""

    format: LogFormat | None = None
    first_error: ChatLogLineError | None = None


def read_chat_log(path: Path, data: bytes, stats: SourceStats, strict: bool = False,
                  format: str | LogFormat = LogFormat.AUTO, report: ReadReport | None = None) -> Iterator[SourceItem]:
    """Parse a chat log (any supported format). A malformed line is a warning with file:line and
    is skipped (counted in `stats.skipped`), or raises ChatLogLineError when `strict`. Items that
    are no comment (tickers, banners...) are counted in `stats.ignored`. A ban (all of one viewer's
    messages deleted) becomes one deletion per recent comment of that viewer."""
    fmt = parse_format(format)
    if fmt is LogFormat.AUTO:
        fmt = detect_format(data)
        log.debug("%s: format %s", path, fmt)
    if report is not None:
        report.format = fmt
    authors = RecentAuthors()
    ignored = stats.ignored
    for line_no, result in decode_log(data, fmt, path.name):
        if isinstance(result, ValueError):
            error = ChatLogLineError(str(path), line_no, str(result))
            if report is not None and report.first_error is None:
                report.first_error = error
            if strict:
                raise error from None
            log.warning("%s (line skipped)", error)
            stats.skipped["malformed"] += 1
            continue
        for item in result:
            kind = type(item)
            if kind is Comment:
                authors.note(item)
                yield item
            elif kind is Ignored:
                ignored[item.reason] += 1
            elif kind is CommentDeleted:
                yield item
            else:  # AuthorCommentsDeleted
                yield from authors.deletions(item)


def _check_seconds(name: str, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ChatSourceError(f"{name} must be a number of seconds, got {value}")
    return value


class ReplayChatSource:
    """Yields a log's items at their original pace (`speed` times faster), or at once (`fast`).

    `format`: "auto" (detect), "aituber", "yt-dlp", "chat-downloader" or "pytchat".
    `start_s` / `end_s`: only the part of the log between these offsets (seconds on the log's
    clock: the video offset, else the time since its first item); replay starts at the first item
    kept, without waiting.
    """

    def __init__(self, path: str | Path, *, speed: float = 1.0, fast: bool = False, strict: bool = False,
                 format: str | LogFormat = LogFormat.AUTO, start_s: float | None = None,
                 end_s: float | None = None, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        if not speed > 0 or not math.isfinite(speed):
            raise ChatSourceError(f"--speed must be above 0, got {speed}")
        try:
            self.format = parse_format(format)
        except ValueError as exc:
            raise ChatSourceError(str(exc)) from None
        self.start_s = _check_seconds("--start", start_s)
        self.end_s = _check_seconds("--end", end_s)
        if start_s is not None and end_s is not None and end_s < start_s:
            raise ChatSourceError(f"--end ({end_s:g} s) is before --start ({start_s:g} s)")
        self.speed = speed
        self.fast = fast
        self.strict = strict
        self.name = f"replay:{self.path.name}"
        self.stats = SourceStats()
        self._clock = clock
        self._report = ReadReport()
        self._size: int | None = None
        self._after_end = False
        self._finished = False

    def nothing_read(self) -> str | None:
        """Why a finished replay yielded no item at all (a sentence naming the file); None when it
        yielded some, or has not finished."""
        if not self._finished or sum(self.stats.kinds.values()):
            return None
        stats, report = self.stats, self._report
        what = f"{self.path}: nothing to replay"
        if not self._size:
            return f"{what}: the file is empty"
        found: list[str] = []
        if report.format is not None:
            found.append(f"read as {report.format.value}" + (" (detected)" if self.format is LogFormat.AUTO else ""))
        if stats.skipped:
            count = sum(stats.skipped.values())
            first = report.first_error
            found.append(f"{count} unreadable record{'s' if count != 1 else ''}"
                         + (f", the first at line {first.line_no}: {first.reason}" if first is not None else ""))
        passed = {k: v for k, v in stats.ignored.items() if k != "before_start"}
        if passed:
            found.append("passed over: " + ", ".join(f"{k} {v}" for k, v in sorted(passed.items())))
        if stats.ignored["before_start"] or self._after_end:
            found.append("no item between --start and --end")
        if len(found) <= 1:
            found.append("no chat item in it")
        return f"{what}: " + "; ".join(found)

    async def items(self) -> AsyncIterator[SourceItem]:
        self._finished = False
        try:
            data = await asyncio.to_thread(self.path.read_bytes)
        except FileNotFoundError:
            raise ChatSourceError(f"chat log not found: {self.path}") from None
        except OSError as exc:
            raise ChatSourceError(f"{self.path}: cannot read: {exc.strerror}") from exc
        self._size = len(data)
        async for item in self._replay(data):
            yield item
        self._finished = True

    async def _replay(self, data: bytes) -> AsyncIterator[SourceItem]:
        loop = asyncio.get_running_loop()
        clock, stats, fast, speed = self._clock, self.stats, self.fast, self.speed
        kinds = stats.kinds
        start_s, end_s = self.start_s, self.end_s
        start_wall = 0.0
        first_offset: float | None = None
        offset: float | None = None
        since_yield = 0
        for item in read_chat_log(self.path, data, stats, self.strict, self.format, self._report):
            if item.offset_s is not None and (offset is None or item.offset_s > offset):
                offset = item.offset_s  # logs out of order never rewind the clock
            here = 0.0 if offset is None else offset
            if start_s is not None and here < start_s:
                stats.ignored["before_start"] += 1
                continue
            if end_s is not None and here > end_s:
                self._after_end = True
                return
            if first_offset is None:
                first_offset, start_wall = here, loop.time()
            since_yield += 1
            if not fast:
                delay = start_wall + (here - first_offset) / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                    since_yield = 0
            if since_yield >= YIELD_EVERY:  # let the rest of the program run
                await asyncio.sleep(0)
                since_yield = 0
            if type(item) is Comment:
                kinds[item.kind.value] += 1
                item = Comment(item.id, item.author, item.text, item.kind, item.amount, item.currency,
                               clock(), here, item.gift_name)
            else:
                kinds["deleted"] += 1
                item = CommentDeleted(item.comment_id, here)
            yield item
