"""Turning a stream of token ids into clean reply text, without I/O.

`IncrementalDecoder` emits only whole characters: byte-fallback pieces of a multi-byte character are
held until the character is complete, and bytes that never form one are dropped. `ReplyShaper` then
decides what of that text may be shown: it strips leading and trailing white space, holds back
anything that could be the start of a stop string, ends the reply at a stop string, and caps its
length. Everything it emits, joined, is exactly the final reply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

REPLACEMENT = "\ufffd"
# Control characters never reach the screen (a model can emit any byte); newlines stay, tabs are spaces.
_CLEAN = {c: None for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)] if c != 0x0A} | {
    0x09: " ", ord(REPLACEMENT): None}


def clean_text(text: str) -> str:
    """Drop control characters and undecodable bytes from model text."""
    return text.translate(_CLEAN)


class IncrementalDecoder:
    """Token ids in, whole-character text deltas out. `decode` maps ids to text (special tokens skipped)."""

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        if len(new_text) > len(prefix_text) and not new_text.endswith(REPLACEMENT):
            delta = new_text[len(prefix_text) :]
            self._prefix = self._read
            self._read = len(self._ids)
            return clean_text(delta)
        return ""

    def flush(self) -> str:
        """What is left at the end of generation (incomplete characters dropped)."""
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return clean_text(new_text[len(prefix_text) :])

    @property
    def token_count(self) -> int:
        return len(self._ids)


class ReplyShaper:
    """Decoded text in, displayable deltas out; knows when the reply is over."""

    def __init__(self, stop_strings: Sequence[str] = (), max_chars: int | None = None) -> None:
        self._stops = tuple(s for s in stop_strings if s)
        self._max_chars = max_chars
        self._pending = ""
        self._emitted = 0
        self._started = False
        self.stop_reason: str | None = None
        """None while the reply goes on; "stop" or "length" once it is over."""

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    def feed(self, text: str) -> str:
        if self.done or not text:
            return ""
        self._pending += text
        if not self._started:
            self._pending = self._pending.lstrip()
            if not self._pending:
                return ""
            self._started = True
        cut = min((i for i in (self._pending.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            out = self._pending[:cut].rstrip()
            self._pending = ""
            self.stop_reason = "stop"
            return self._cap(out)
        # Hold back a possible stop-string start, and the white space before it (it may end the reply).
        out = self._pending[: len(self._pending) - self._stop_prefix_len()].rstrip()
        self._pending = self._pending[len(out) :]
        return self._cap(out)

    def finish(self) -> str:
        """The rest of the reply once generation has ended (end token or token limit)."""
        if self.done:
            return ""
        out = self._pending.rstrip()
        self._pending = ""
        out = self._cap(out)
        if self.stop_reason is None:
            self.stop_reason = "stop"
        return out

    def _stop_prefix_len(self) -> int:
        """Length of the longest tail of the pending text that is the start of a stop string."""
        best = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(self._pending)), best, -1):
                if self._pending.endswith(stop[:n]):
                    best = n
                    break
        return best

    def _cap(self, out: str) -> str:
        if self._max_chars is not None and self._emitted + len(out) >= self._max_chars:
            out = out[: self._max_chars - self._emitted]
            if self._emitted + len(out) >= self._max_chars and self.stop_reason is None:
                self.stop_reason = "length"
        self._emitted += len(out)
        return out


SENTENCE_ENDS = "。！？!?\n"
_CLOSERS = "」』）)】〉》\"'”’〜ー…♪☆★"


def _sentence_end(text: str, start: int = 0) -> int:
    """Index just past the first sentence end at or after `start` (closing marks included), or -1."""
    for i in range(start, len(text)):
        if text[i] in SENTENCE_ENDS:
            j = i + 1
            while j < len(text) and (text[j] in SENTENCE_ENDS or text[j] in _CLOSERS) and text[j] != "\n":
                j += 1
            return j
    return -1


class SentenceSplitter:
    """Reply deltas in, whole sentences out (split on 。！？!? and newlines), for TTS consumers."""

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        sentences = []
        while True:
            end = _sentence_end(self._buffer)
            # A mark at the very end may still grow ("！" then "？", "。" then "」"): wait for more.
            if end < 0 or end == len(self._buffer) and self._buffer[-1] != "\n":
                break
            sentence, self._buffer = self._buffer[:end].strip(), self._buffer[end:]
            if sentence:
                sentences.append(sentence)
        return sentences

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []


def cut_at_last_sentence(text: str) -> str:
    """A reply that ran over its length limit, cut after its last complete sentence (if it has one)."""
    last = -1
    pos = 0
    while (end := _sentence_end(text, pos)) >= 0:
        last, pos = end, end
    return text[:last].rstrip() if last > 0 else text
