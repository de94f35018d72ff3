"""The prompts of one session: the character's prompt builder plus a short memory of the last
exchanges, within a token budget. No I/O: token counting comes in as a function."""

from __future__ import annotations

import collections
from collections.abc import Callable

from aituber.core.prompt import Prompt, PromptBuilder, PromptForm, Turn, select_history

__all__ = ["Conversation"]


class Conversation:
    """Builds each reply's prompt in the form the engine takes, and remembers what was said."""

    def __init__(self, builder: PromptBuilder, count_tokens: Callable[[str], int], *,
                 form: PromptForm = PromptForm.TEXT, memory_turns: int = 2, memory_tokens: int = 160,
                 topic_prompt: str = "{topic}") -> None:
        self.builder = builder
        self.form = form
        self._count = count_tokens
        self._memory_turns = memory_turns
        self._memory_tokens = memory_tokens
        self._topic_prompt = topic_prompt
        self.memory: collections.deque[Turn] = collections.deque(maxlen=max(memory_turns, 1))

    def history(self) -> list[Turn]:
        """The remembered turns that fit the token budget, oldest first."""
        if not self._memory_turns:
            return []
        return select_history(self.memory, self._count, self._memory_tokens)

    def for_comment(self, text: str, viewer: str | None) -> Prompt:
        """The prompt answering a comment (its text already made safe by moderation)."""
        return self.builder.build(text, viewer, self.history(), form=self.form)

    def for_topic(self, topic: str) -> Prompt:
        """The prompt for idle talk about `topic` (no memory: it starts something new)."""
        return self.builder.build(self._topic_prompt.format(topic=topic), form=self.form)

    def remember(self, comment: str, viewer: str | None, reply: str) -> None:
        """An exchange that ended normally joins the memory."""
        if reply:
            self.memory.append(Turn(comment, reply, viewer))
