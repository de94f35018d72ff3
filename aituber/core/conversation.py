"""The prompts of one session: the character's prompt builder plus a short memory of the last
exchanges, within a token budget, and the phrases of the last replies that the next one should not
repeat. No I/O: token counting comes in as a function."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable

from aituber.core.prompt import MemoryForm, Prompt, PromptBuilder, PromptForm, Turn, select_history

__all__ = ["Conversation", "avoid_fragments", "shared_mask"]

AVOID_MIN_SHARED = 3
"""A run of this many characters that a recent reply shares with the comment being answered or the
viewer's name is cut out of what the next reply must avoid: repeating the viewer is not an echo."""


def shared_mask(text: str, sources: Iterable[str], min_run: int) -> list[bool]:
    """For each character of `text`: whether it lies in a run of `min_run` or more characters that
    also occurs in one of `sources`."""
    mask = [False] * len(text)
    pool = [s for s in sources if len(s) >= min_run]
    if not pool:
        return mask
    for i in range(len(text) - min_run + 1):
        if any(text[i:i + min_run] in s for s in pool):
            for j in range(i, i + min_run):
                mask[j] = True
    return mask


def occurrence_mask(text: str, phrases: Iterable[str], interior: bool = False) -> list[bool]:
    """For each character of `text`: whether it lies in an occurrence of one of `phrases` (with
    `interior`, only after an occurrence's first character)."""
    mask = [False] * len(text)
    for phrase in phrases:
        if not phrase:
            continue
        start = text.find(phrase)
        while start >= 0:
            for j in range(start + 1 if interior else start, start + len(phrase)):
                mask[j] = True
            start = text.find(phrase, start + 1)
    return mask


def avoid_fragments(replies: Iterable[str], comment: str = "", viewer: str | None = None,
                    min_shared: int = AVOID_MIN_SHARED) -> tuple[str, ...]:
    """The parts of recent replies a new reply should not repeat, as fragments: each reply with the
    text it shares with `comment` or the viewer's name (runs of `min_shared` characters or more, and
    the name wherever it occurs, however short) cut out, split there; blank fragments are dropped.
    Pure: the engine turns fragments into runs of tokens (and never cuts the character's own phrases
    short: `GenerationOptions.avoid_keep`)."""
    sources = [comment.strip(), (viewer or "").strip()]
    out: list[str] = []
    for reply in replies:
        cut = [a or b for a, b in zip(shared_mask(reply, sources, min_shared),
                                      occurrence_mask(reply, [(viewer or "").strip()]), strict=True)]
        piece: list[str] = []
        for char, shared in zip(reply, cut, strict=True):
            if shared:
                if "".join(piece).strip():
                    out.append("".join(piece).strip())
                piece = []
            else:
                piece.append(char)
        if "".join(piece).strip():
            out.append("".join(piece).strip())
    return tuple(out)


class Conversation:
    """Builds each reply's prompt in the form the engine takes, and remembers what was said.

    `memory_turns` earlier exchanges (within `memory_tokens`) go into the prompt, in the builder's
    memory form (`PromptBuilder.memory`); the last `avoid_recent` replies, whatever the memory shows,
    are what `avoid(...)` gives the engine to keep out of the next reply (0 = nothing)."""

    def __init__(self, builder: PromptBuilder, count_tokens: Callable[[str], int], *,
                 form: PromptForm = PromptForm.TEXT, memory_turns: int = 2, memory_tokens: int = 160,
                 topic_prompt: str = "{topic}", avoid_recent: int = 0) -> None:
        self.builder = builder
        self.form = form
        self._count = count_tokens
        self._memory_turns = memory_turns
        self._memory_tokens = memory_tokens
        self._topic_prompt = topic_prompt
        self.memory: collections.deque[Turn] = collections.deque(maxlen=max(memory_turns, 1))
        self.recent_replies: collections.deque[str] = collections.deque(maxlen=max(avoid_recent, 1))
        self._avoid_recent = avoid_recent

    @property
    def memory_form(self) -> MemoryForm:
        return self.builder.memory

    def history(self) -> list[Turn]:
        """The remembered turns that fit the token budget, oldest first."""
        if not self._memory_turns:
            return []
        return select_history(self.memory, self._count, self._memory_tokens, self.builder.memory)

    def for_comment(self, text: str, viewer: str | None) -> Prompt:
        """The prompt answering a comment (its text already made safe by moderation)."""
        return self.builder.build(text, viewer, self.history(), form=self.form)

    def for_topic(self, topic: str) -> Prompt:
        """The prompt for idle talk about `topic` (no memory: it starts something new)."""
        return self.builder.build(self._topic_prompt.format(topic=topic), form=self.form)

    def avoid(self, comment: str = "", viewer: str | None = None) -> tuple[str, ...]:
        """Fragments of the last replies the next one should not repeat (`GenerationOptions.avoid`),
        without what they share with the comment being answered or the viewer's name."""
        if not self._avoid_recent:
            return ()
        return avoid_fragments(self.recent_replies, comment, viewer)

    def said(self, reply: str) -> None:
        """A reply that was shown (an answer or idle talk): the next replies avoid its phrases."""
        if reply.strip():
            self.recent_replies.append(reply.strip())

    def remember(self, comment: str, viewer: str | None, reply: str) -> None:
        """An exchange that ended normally joins the memory (and the replies to avoid)."""
        if reply:
            self.memory.append(Turn(comment, reply, viewer))
            self.said(reply)
