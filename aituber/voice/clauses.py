"""Reply text in, clauses to speak out, without I/O.

Speech starts with the first clause, not the first sentence: text is cut at sentence ends (。！？!? and
newlines, with their closing marks) and also at 、，, once the clause is long enough to be worth a
synthesis of its own (the first clause of a reply sooner: `first_min_chars`, so that the voice starts
early and the rest is synthesised while it plays); a first clause that runs past `first_max_chars`
without a mark is cut at the end of a phrase (a particle, as `phrase_ends` finds them) so that the
first synthesis stays short; a run without any mark is cut at `max_chars` (at a space when there is one).
The pieces are exact slices of the input: joined, they are the text fed in (subtitles show them as
they are).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

SENTENCE_ENDS = "。！？!?\n"
CLAUSE_MARKS = "、，,"
CLOSERS = "」』）)】〉》\"'”’〜ー…♪☆★"


def _visible(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


PhraseEnds = Callable[[str], Sequence[int]]
"""Where phrases of a text end (indexes just past a particle), for cutting the first clause early."""


class ClauseSplitter:
    """Feed reply deltas; get the clauses that are complete. `min_chars`: a clause is cut at 、 only
    once it has this many visible characters (`first_min_chars` for the first clause; None: the same);
    `max_chars`: the longest clause without a mark; `first_max_chars` (with `phrase_ends`): past this
    many visible characters the first clause is cut at a phrase end, never at the end of what has
    arrived (the word there may go on)."""

    def __init__(self, min_chars: int = 10, max_chars: int = 60, first_min_chars: int | None = 4,
                 first_max_chars: int | None = None, phrase_ends: PhraseEnds | None = None) -> None:
        first = min_chars if first_min_chars is None else min(first_min_chars, min_chars)
        if first < 1 or max_chars < min_chars:
            raise ValueError(f"need 1 <= min_chars <= max_chars, got {min_chars}, {max_chars}")
        self.min_chars = min_chars
        self.max_chars = max_chars
        self._first_min_chars = first
        self._first_max_chars = first_max_chars if phrase_ends is not None else None
        self._phrase_ends = phrase_ends
        self._emitted = 0
        self._buffer = ""
        self._scan = 0
        """Where the search for a mark goes on: everything before it has been looked at."""

    @property
    def pending(self) -> str:
        """Text fed but not yet part of a complete clause."""
        return self._buffer

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        clauses: list[str] = []
        while (end := self._next_end()) > 0:
            clauses.append(self._buffer[:end])
            self._buffer = self._buffer[end:]
            self._scan = 0
            self._emitted += 1
        return clauses

    def flush(self) -> list[str]:
        """The rest, at the end of the reply (nothing if it is only white space)."""
        rest, self._buffer, self._scan = self._buffer, "", 0
        return [rest] if rest.strip() else []

    def _next_end(self) -> int:
        """Index just past the first complete clause in the buffer, or 0 when there is none yet."""
        buf = self._buffer
        i = self._scan
        min_chars = self.min_chars if self._emitted else self._first_min_chars
        while i < len(buf):
            ch = buf[i]
            if ch in SENTENCE_ENDS:
                j = i + 1
                while j < len(buf) and buf[j] != "\n" and (buf[j] in SENTENCE_ENDS or buf[j] in CLOSERS):
                    j += 1
                if j == len(buf) and ch != "\n":
                    self._scan = i  # a mark at the very end may still grow ("！" then "？", "。" then "」")
                    return 0
                if _visible(buf[:j]) == 0:  # only white space and marks so far: keep them for the next clause
                    i = j
                    continue
                return j
            if ch in CLAUSE_MARKS and _visible(buf[: i + 1]) >= min_chars:
                return i + 1
            i += 1
        self._scan = i
        visible = _visible(buf)
        if not self._emitted and self._first_max_chars is not None and visible > self._first_max_chars:
            cut = self._first_phrase_end(buf)
            if cut:
                self._scan = 0
                return cut
        if visible >= self.max_chars:
            cut = _cut_point(buf, self.max_chars, min_chars)
            self._scan = 0
            return cut
        return 0

    def _first_phrase_end(self, buf: str) -> int:
        """The last phrase end in `buf` with at least `first_min_chars` before it and a whole word after
        it (a character past the next word), or 0."""
        assert self._phrase_ends is not None
        ends = [e for e in self._phrase_ends(buf) if e < len(buf) - 2 and _visible(buf[:e]) >= self._first_min_chars]
        return max(ends, default=0)


def _cut_point(buf: str, max_chars: int, min_chars: int) -> int:
    """Where to cut a run without marks: after the last space that leaves at least `min_chars`
    before it, else after `max_chars` visible characters."""
    seen = 0
    cut = len(buf)
    for k, ch in enumerate(buf):
        if not ch.isspace():
            seen += 1
            if seen == max_chars:
                cut = k + 1
                break
    space = max((k for k in range(cut) if buf[k].isspace() and _visible(buf[:k]) >= min_chars), default=-1)
    return space + 1 if space > 0 else cut
