"""A scripted Engine for policy tests: it "generates" given replies, chunk by chunk, with no model.

Each script entry is one reply: a string (split into chunks of `chunk_chars` characters), a list of
chunks, an exception to raise (an engine failing mid-reply raises it after the chunks before it), or a
`Reply` (text and the stop reason the engine reports, e.g. "length").
`hold_after(n)` makes every reply pause after n chunks until `release()` (to test !skip); what each
reply was asked is kept in `prompts`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

from aituber.core.prompt import Prompt, PromptForm
from aituber.engine.base import EngineInfo, GenerationOptions, ReplyChunk



@dataclass(frozen=True)
class Reply:
    text: str
    end: str = "stop"


Script = str | Sequence[str | BaseException] | BaseException | Reply


class ScriptedEngine:
    def __init__(self, replies: Iterable[Script] = (), *, default: str = "うん、そうだね。", chunk_chars: int = 2,
                 form: PromptForm = PromptForm.TEXT) -> None:
        self._replies: deque[Script] = deque(replies)
        self._default = default
        self._chunk_chars = chunk_chars
        self._info = EngineInfo(name="scripted", model="scripted", prompt_form=form)
        self.prompts: list[Prompt] = []
        self.options: list[GenerationOptions] = []
        self.chunks_sent = 0
        self.closed = False
        self._hold_after: int | None = None
        self._release = asyncio.Event()
        self.holding = asyncio.Event()
        """Set while a reply waits in `hold_after`."""

    @property
    def info(self) -> EngineInfo:
        return self._info

    def add(self, *replies: Script) -> None:
        self._replies.extend(replies)

    def hold_after(self, chunks: int) -> None:
        self._hold_after = chunks
        self._release.clear()

    def release(self) -> None:
        self._hold_after = None
        self._release.set()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.closed = True

    def count_tokens(self, text: str) -> int:
        return len(text)

    def _chunks(self, script: Script) -> list[str | BaseException]:
        if isinstance(script, Reply):
            return self._chunks(script.text)
        if isinstance(script, BaseException):
            return [script]
        if isinstance(script, str):
            n = self._chunk_chars
            return [script[i:i + n] for i in range(0, len(script), n)]
        return list(script)

    async def stream(self, prompt: Prompt, options: GenerationOptions) -> AsyncIterator[ReplyChunk]:
        self.prompts.append(prompt)
        self.options.append(options)
        script = self._replies.popleft() if self._replies else self._default
        tokens = 0
        for i, piece in enumerate(self._chunks(script)):
            if self._hold_after is not None and i == self._hold_after:
                self.holding.set()
                try:
                    await self._release.wait()
                finally:
                    self.holding.clear()
            await asyncio.sleep(0)  # a real engine's text arrives from another thread, between loop steps
            if isinstance(piece, BaseException):
                raise piece
            tokens += 1
            self.chunks_sent += 1
            yield ReplyChunk(text=piece)
        yield ReplyChunk(end=script.end if isinstance(script, Reply) else "stop", tokens=tokens)
