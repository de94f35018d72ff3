"""The engine seam: what the pipeline, the evaluation and the benches need from a language model.

An engine streams a reply for a prompt, counts tokens, says which prompt form it wants and is closed
when done. The CTranslate2 engine (aituber.engine.ct2) is one implementation; `aituber.engine.registry`
maps a config name to a factory. Nothing here imports a model library.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from aituber.core.prompt import Prompt, PromptForm

__all__ = ["Completion", "Engine", "EngineInfo", "EngineSettings", "GenerationOptions", "PromptForm", "ReplyChunk",
           "complete"]


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    max_new_tokens: int = 64
    max_chars: int | None = 120
    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    no_repeat_ngram_size: int = 0
    stop_strings: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()
    """Texts (recent replies' fragments) whose runs of `avoid_ngram_size` tokens the reply must not
    repeat; engines that cannot suppress sequences ignore it."""
    avoid_ngram_size: int = 3
    avoid_keep: tuple[str, ...] = ()
    """Phrases `avoid` never keeps out (the character's name, first person, sentence endings): no
    avoided run ends with a token of one, so the model can always begin "ミカ" and finish it."""


@dataclass(frozen=True, slots=True)
class ReplyChunk:
    """A piece of a reply; the last one has `end` set with the stop reason and the token count."""

    text: str = ""
    end: str | None = None
    """"stop" (end token or stop string), "length" (token or character limit) or "cancelled"."""
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """What an engine is, for the prompt builder, the summary and the transcript."""

    name: str
    """Its registry name ("ctranslate2", ...)."""
    model: str
    """The model folder or the served model's name."""
    detail: str = ""
    """Device and precision, server address...: for people."""
    prompt_form: PromptForm = PromptForm.TEXT
    chat_template: str | None = None
    """The model's own chat template (Jinja), for the `chat` prompt template."""
    special_tokens: Mapping[str, str] = field(default_factory=dict)
    """bos_token/eos_token strings the chat template may use."""

    @property
    def label(self) -> str:
        return f"{self.model} ({', '.join(p for p in (self.name, self.detail) if p)})"


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """How to build an engine; read once at start-up from the command line and the character file."""

    kind: str = "ctranslate2"
    model: Path | str = ""
    """A model folder (local engines) or a model name (remote ones)."""
    device: str = "auto"
    compute_type: str = "auto"
    threads: int = 0
    """CPU threads for generation; 0 = the engine's default."""
    seed: int | None = None
    """Seed the engine's sampler once, when it loads: a run asked the same things in the same order
    samples the same replies (CTranslate2 seeds each worker thread's generator once, so a seed cannot
    be set reply by reply). None = random."""
    cache_prefix: bool = True
    """Keep the model state after the fixed persona prefix between replies, where the engine can
    (CTranslate2's `static_prompt`); the character's `[prompt] static_prompt`."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Settings only one kind of engine understands (a server's address...)."""


@runtime_checkable
class Engine(Protocol):
    """A language model that streams replies. `stream` must not block the event loop."""

    @property
    def info(self) -> EngineInfo: ...

    async def start(self) -> None:
        """Get ready to answer (warm up, check a server); called once before the first reply."""

    def count_tokens(self, text: str) -> int: ...

    def stream(self, prompt: Prompt, options: GenerationOptions) -> AsyncIterator[ReplyChunk]:
        """The reply's chunks; the last has `end` set. Closing or cancelling the consumer stops
        generation (within one token for local engines)."""
        ...

    async def close(self) -> None:
        """Free the model or the connection; the engine is not used afterwards."""


@dataclass(frozen=True, slots=True)
class Completion:
    """One whole reply, timed from the call."""

    text: str
    stop_reason: str
    tokens: int
    first_text_s: float | None
    total_s: float


async def complete(engine: Engine, prompt: Prompt, options: GenerationOptions,
                   clock: Callable[[], float] = time.perf_counter) -> Completion:
    """Stream one reply to its end and time it (the evaluation and the benches ask this way)."""
    started = clock()
    first: float | None = None
    parts: list[str] = []
    stop, tokens = "stop", 0
    async with aclosing(engine.stream(prompt, options)) as chunks:
        async for chunk in chunks:
            if chunk.text:
                if first is None:
                    first = clock() - started
                parts.append(chunk.text)
            if chunk.end is not None:
                stop, tokens = chunk.end, chunk.tokens
    return Completion("".join(parts), stop, tokens, first, clock() - started)
