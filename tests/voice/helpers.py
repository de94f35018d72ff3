"""Shared by the voice tests: a scripted language-model engine, a recording voice, waiting helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from aituber.core.events import ReplyDelta, ReplyEnded, ReplyStarted
from aituber.engine.base import EngineInfo, GenerationOptions, ReplyChunk
from aituber.voice.base import Audio, VoiceEngine


async def wait_until(predicate: Callable[[], Any], timeout_s: float = 30.0, step_s: float = 0.01) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(step_s)


class ScriptedEngine:
    """A language model that answers with the given texts, in order, a few characters at a time.
    `calls` keeps, for each reply, what `on_call()` returned when it was asked (e.g. how many events
    had been emitted then)."""

    def __init__(self, replies: list[str], chunk: int = 3, delay_s: float = 0.01,
                 on_call: Callable[[], Any] = lambda: None) -> None:
        self.replies = list(replies)
        self.chunk = chunk
        self.delay_s = delay_s
        self.on_call = on_call
        self.calls: list[Any] = []

    @property
    def info(self) -> EngineInfo:
        return EngineInfo("scripted", "script")

    async def start(self) -> None:
        return None

    def count_tokens(self, text: str) -> int:
        return len(text)

    async def stream(self, prompt: Any, options: GenerationOptions) -> AsyncIterator[ReplyChunk]:
        self.calls.append(self.on_call())
        text = self.replies.pop(0) if self.replies else "おしまい。"
        for i in range(0, len(text), self.chunk):
            await asyncio.sleep(self.delay_s)
            yield ReplyChunk(text[i:i + self.chunk])
        yield ReplyChunk("", end="stop", tokens=len(text))

    async def close(self) -> None:
        return None


class RecordingVoice:
    """Wraps a real voice and keeps every text that reached its synthesiser."""

    def __init__(self, inner: VoiceEngine) -> None:
        self.inner = inner
        self.texts: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def label(self) -> str:
        return self.inner.label

    async def start(self) -> None:
        await self.inner.start()

    async def synthesize(self, text: str) -> Audio:
        self.texts.append(text)
        return await self.inner.synthesize(text)

    async def close(self) -> None:
        await self.inner.close()


def say(emit: Callable[[Any], None], reply_id: str, text: str, chunk: int = 4, ended_text: str | None = None,
        stop_reason: str = "stop") -> None:
    """A whole reply's events, as the pipeline emits them (deltas of `chunk` characters)."""
    emit(ReplyStarted(reply_id, "c"))
    for i in range(0, len(text), chunk):
        emit(ReplyDelta(reply_id, text[i:i + chunk]))
    emit(ReplyEnded(reply_id, "c", text if ended_text is None else ended_text, stop_reason, 0.1, 0.5, len(text)))
