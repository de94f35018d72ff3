"""What of a streaming reply may be shown: the output NG filter applied before anything leaves. No I/O.

A reply arrives a few characters at a time, and an NG word may be split across pieces. The guard shows
only text whose filtering can no longer change: the moderator tells where the unsettled tail starts
(a partial match of an NG entry, a hit whose surrounding words are not all there yet, a last character
that a combining mark could still change); everything before it is filtered as the whole text will be,
and shown. What the guard emits, joined, is exactly what `filter_output` makes of the whole reply.
"""

from __future__ import annotations

from typing import Protocol

from aituber.core.ngwords import OutputVerdict


class OutputFilter(Protocol):
    def filter_output(self, text: str) -> OutputVerdict: ...

    def pending_start(self, text: str) -> int:
        """Index in `text` from which more text could still change the filtered result (len(text): none)."""
        ...


class OutputGuard:
    """Model text in, showable deltas out. What it emits, joined, is the filtered reply."""

    def __init__(self, moderator: OutputFilter) -> None:
        self._moderator = moderator
        self._raw = ""
        self._emitted = 0
        self.dropped = False
        self.hits: tuple[str, ...] = ()

    def feed(self, text: str) -> str:
        self._raw += text
        return self._release(final=False)

    def finish(self) -> str:
        return self._release(final=True)

    def _release(self, final: bool) -> str:
        if self.dropped or not self._raw:
            return ""
        verdict = self._moderator.filter_output(self._raw)
        self.hits = verdict.hits
        if verdict.dropped:
            self.dropped = True
            return ""
        masked = verdict.text
        safe = len(masked) if final else min(len(masked), self._moderator.pending_start(self._raw))
        out = masked[self._emitted : safe] if safe > self._emitted else ""
        self._emitted += len(out)
        return out
