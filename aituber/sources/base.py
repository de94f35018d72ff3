"""The chat-source interface: anything that yields comments (and deletions) to the pipeline."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from aituber.core.comment import SourceItem


@dataclass(slots=True)
class SourceStats:
    """What a source read: items per kind, what it passed over (tickers, banners... per reason),
    lines or items it had to skip as unreadable (per reason), and connection faults it recovered
    from (per kind)."""

    kinds: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)

    def summary_line(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.kinds.items())) or "none"
        line = f"source: {kinds}"
        if self.ignored:
            line += "; passed over: " + ", ".join(f"{k} {v}" for k, v in self.ignored.most_common())
        if self.skipped:
            line += "; unreadable: " + ", ".join(f"{k} {v}" for k, v in self.skipped.most_common())
        if self.faults:
            line += "; reconnects: " + ", ".join(f"{k} {v}" for k, v in self.faults.most_common())
        return line


class ChatSource(Protocol):
    """Yields chat items as they arrive and returns when the chat is over (log ended, stream ended).

    A source stamps `Comment.timestamp` with the time the item arrives (unix seconds), keeps the
    log's `offset_s` where it knows one, and never raises for a bad item: it logs a warning, counts
    it in `stats.skipped` and goes on (unless told to be strict).
    """

    name: str
    stats: SourceStats

    def items(self) -> AsyncIterator[SourceItem]: ...
