"""Chat typed on the terminal: each line is a comment (for `aituber chat`, trying a character).

    こんにちは                 a comment from "viewer"
    たぬき丸: こんにちは        a comment from たぬき丸 ("name: text"; "名前：text" works too)
    /sc 500 がんばって         a super chat of 500 JPY ("/sc $5 hi" for another currency)
    たぬき丸: /sc 1000 応援!   both
    /quit                      the end (as is end of input, Ctrl-D)

stdin is read in a worker thread, so the event loop never blocks on it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TextIO

from aituber.core.comment import Author, Comment, CommentKind, SourceItem
from aituber.core.sanitize import clean_line, clean_text
from aituber.core.youtube_items import parse_amount
from aituber.sources.base import SourceStats
from aituber.sources.handoff import ThreadHandoff

log = logging.getLogger(__name__)

DEFAULT_VIEWER = "viewer"
MAX_NAME_CHARS = 32
HELP = "type a comment; 'name: text' to speak as someone; '/sc 500 text' for a super chat; '/quit' to end"


@dataclass(frozen=True, slots=True)
class ConsoleLine:
    """What one typed line means: a comment's parts, or the end (`quit`), or nothing (`None`)."""

    name: str
    text: str
    amount: float | None = None
    currency: str | None = None


QUIT = "quit"


def parse_console_line(line: str, default_name: str = DEFAULT_VIEWER) -> ConsoleLine | str | None:
    """One typed line -> a ConsoleLine, QUIT, None (blank), or an error message (a str) for the user.
    The text is made valid first (a terminal may hand over bytes that are no UTF-8 as surrogates)."""
    text = clean_text(line).strip()
    if not text:
        return None
    if text in ("/quit", "/exit", "/q"):
        return QUIT
    name = default_name
    for sep in (": ", "："):
        head, found, rest = text.partition(sep)
        if found and head.strip() and len(head.strip()) <= MAX_NAME_CHARS and not head.startswith("/"):
            name, text = clean_line(head.strip()), rest.strip()
            break
    if text.startswith("/sc"):
        parts = text.split(maxsplit=2)
        if parts[0] != "/sc" or len(parts) < 2:
            return "usage: /sc AMOUNT text (e.g. /sc 500 がんばって)"
        try:
            amount, currency = parse_amount(parts[1])
        except ValueError:
            return f"not an amount: {parts[1]!r} (e.g. 500, ￥500, $5)"
        return ConsoleLine(name=name, text=parts[2] if len(parts) > 2 else "", amount=amount,
                           currency=currency or "JPY")
    if text.startswith("/"):
        return f"unknown command {text.split()[0]!r}; {HELP}"
    return ConsoleLine(name=name, text=text)


class ConsoleChatSource:
    """Comments typed on stdin (or any text stream). `items()` ends at '/quit' or end of input."""

    def __init__(self, stream: TextIO | None = None, *, default_name: str = DEFAULT_VIEWER,
                 clock: Callable[[], float] = time.time, announce: Callable[[str], None] | None = print) -> None:
        self.stream = stream
        self.default_name = default_name
        self.name = "console"
        self.stats = SourceStats()
        self._clock = clock
        self._announce = announce

    async def items(self) -> AsyncIterator[SourceItem]:
        stream = self.stream if self.stream is not None else sys.stdin
        handoff: ThreadHandoff[str | None] = ThreadHandoff(asyncio.get_running_loop(), 16)

        def read() -> None:
            try:
                while not handoff.stopped.is_set():
                    line = stream.readline()
                    if not line or not handoff.put(line):
                        break
            except (OSError, ValueError) as exc:  # stdin closed under us
                log.debug("console input ended: %s", exc)
            handoff.put(None)

        threading.Thread(target=read, name="aituber-console", daemon=True).start()
        if self._announce is not None:
            self._announce(HELP)
        started = self._clock()
        count = 0
        try:
            while True:
                line = await handoff.get()
                if line is None:
                    return
                parsed = parse_console_line(line, self.default_name)
                if parsed is None:
                    continue
                if parsed == QUIT:
                    return
                if isinstance(parsed, str):
                    self.stats.skipped["bad_command"] += 1
                    if self._announce is not None:
                        self._announce(parsed)
                    continue
                count += 1
                now = self._clock()
                kind = CommentKind.TEXT if parsed.amount is None else CommentKind.SUPER_CHAT
                self.stats.kinds[kind.value] += 1
                yield Comment(id=f"console-{count}", author=Author(parsed.name, channel_id=f"console:{parsed.name}"),
                              text=parsed.text, kind=kind, amount=parsed.amount, currency=parsed.currency,
                              timestamp=now, offset_s=now - started)
        finally:
            handoff.stop()
