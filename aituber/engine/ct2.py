"""The CTranslate2 engine: one Generator loaded once, replies streamed to the event loop.

`generate_tokens` blocks, so it runs in a worker thread; each delta reaches the loop through
`loop.call_soon_threadsafe`. Cancelling the consumer stops generation within one token. This is the
only module that imports ctranslate2 (with aituber.engine.convert, which the bot does not load).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import ctranslate2

from aituber.core.conversation import occurrence_mask
from aituber.core.prompt import Prompt
from aituber.core.textstream import IncrementalDecoder, ReplyShaper
from aituber.engine.base import EngineInfo, EngineSettings, GenerationOptions, PromptForm, ReplyChunk
from aituber.engine.modeldir import check_model_dir, read_model_info
from aituber.engine.tokenizer import TextTokenizer
from aituber.errors import ConfigError, GenerationError, ModelError

log = logging.getLogger(__name__)

#: Tokens that end a turn in the model families we support, where the vocabulary has them.
END_TOKENS = ("<eos>", "</s>", "<|endoftext|>", "<end_of_turn>", "<|im_end|>", "<|eot_id|>")


def choose_device(device: str = "auto", compute_type: str = "auto") -> tuple[str, str]:
    """CUDA when CTranslate2 sees a GPU (int8_float16), else CPU (int8); either may be forced."""
    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "int8_float16" if device == "cuda" else "int8"
    return device, compute_type


def token_ngrams(token_lists: list[list[str]], n: int, limit: int = 4096,
                 may_end: list[list[bool]] | None = None) -> list[list[str]]:
    """Every distinct run of `n` (>= 2) consecutive tokens in the lists, in order of first
    appearance, at most `limit`: CTranslate2's `suppress_sequences`, which then never lets a reply
    complete one of them (a single token would be banned outright, so n < 2 gives nothing). With
    `may_end`, a run is left out when its last token may not end one (it would cut a phrase short)."""
    if n < 2:
        return []
    seen: dict[tuple[str, ...], None] = {}
    for k, tokens in enumerate(token_lists):
        for i in range(len(tokens) - n + 1):
            if may_end is not None and not may_end[k][i + n - 1]:
                continue
            seen.setdefault(tuple(tokens[i:i + n]))
            if len(seen) >= limit:
                return [list(g) for g in seen]
    return [list(g) for g in seen]


def default_threads() -> int:
    """CPU threads for generation: all cores but one (the event loop, and OBS, need one), at most 8."""
    return max(1, min((os.cpu_count() or 1) - 1, 8))


class CTranslate2Engine:
    """Loads the model once (in the constructor: call it in a worker thread from async code).
    `stream()` yields a reply's text as it is produced.

    `static_prompt`: cache the model state after the prompt's fixed persona prefix (CTranslate2
    `static_prompt`). The cache is never freed, so only the persona prefix, which is the same for
    every comment, goes there; never past a Gemma 3 model's attention window.
    """

    def __init__(self, model_dir: str | Path, device: str = "auto", compute_type: str = "auto",
                 threads: int = 0, static_prompt: bool = True) -> None:
        self.model_dir = check_model_dir(model_dir)
        self.static_prompt = static_prompt
        self.device, self.compute_type = choose_device(device, compute_type)
        self.tokenizer = TextTokenizer(self.model_dir)
        try:
            self._generator = ctranslate2.Generator(
                str(self.model_dir), device=self.device, compute_type=self.compute_type,
                intra_threads=threads or default_threads(),
            )
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"{self.model_dir}: CTranslate2 cannot load it: {exc}") from exc
        self._end_tokens = [t for t in END_TOKENS if self.tokenizer.has_token(t)]
        if self.tokenizer.eos_token and self.tokenizer.eos_token not in self._end_tokens:
            self._end_tokens.append(self.tokenizer.eos_token)
        self._lock = threading.Lock()  # one generation at a time on this Generator
        self._warned_static = False
        info = read_model_info(self.model_dir)
        # Gemma 3 (sliding-window attention): CTranslate2 is exact only while a prompt fits the window,
        # and a cached static prompt longer than the window crashes it. Such prefixes are not cached.
        self.static_prompt_limit: int | None = info.get("exact_prompt_tokens")
        if self.static_prompt_limit is None and str(info.get("architecture", "")).startswith("Gemma3"):
            self.static_prompt_limit = 512  # converted before the window was recorded: Gemma 3's default
        self._info = EngineInfo(
            name="ctranslate2", model=str(self.model_dir), detail=f"{self.device}, {self.compute_type}",
            prompt_form=PromptForm.TEXT, chat_template=self.tokenizer.chat_template,
            special_tokens=dict(self.tokenizer.special_tokens))
        log.info("model %s loaded on %s (%s)", self.model_dir, self.device, self.compute_type)

    @property
    def info(self) -> EngineInfo:
        return self._info

    def count_tokens(self, text: str) -> int:
        return self.tokenizer.count(text)

    async def start(self) -> None:
        await asyncio.to_thread(self.warm_up)

    def encode_prompt(self, prompt: Prompt | str) -> tuple[list[str] | None, list[str]]:
        """(static prefix tokens or None, the rest): the prefix carries the BOS token."""
        if isinstance(prompt, str):
            return None, self.tokenizer.encode(prompt)
        if self.static_prompt and prompt.static:
            static = self.tokenizer.encode(prompt.static)
            if self.static_prompt_limit is None or len(static) < self.static_prompt_limit:
                return static, self.tokenizer.encode(prompt.dynamic, bos=False)
            if not self._warned_static:
                self._warned_static = True
                log.warning("the persona is %d tokens, over this model's %d-token window: not cached",
                            len(static), self.static_prompt_limit)
        return None, self.tokenizer.encode(prompt.text)

    def avoid_sequences(self, options: GenerationOptions) -> list[list[str]] | None:
        """`options.avoid` as token n-grams for `suppress_sequences` (None when there is nothing).
        CTranslate2 bans a run's last token after the others, so no run ends with a token that starts
        in one of `options.avoid_keep`: the character may always begin its own phrases, and finish
        them (after "ミ", "カ" stays possible)."""
        if not options.avoid:
            return None
        token_lists: list[list[str]] = []
        may_end: list[list[bool]] = []
        for text in options.avoid:
            spans = self.tokenizer.encode_spans(text)
            inside = occurrence_mask(text, options.avoid_keep)
            token_lists.append([token for token, _, _ in spans])
            may_end.append([not (start < len(inside) and inside[start]) for _, start, _ in spans])
        grams = token_ngrams(token_lists, options.avoid_ngram_size, may_end=may_end)
        return grams or None

    def _generate_blocking(self, prompt: Prompt | str, options: GenerationOptions,
                           emit: Callable[[ReplyChunk], None], cancel: threading.Event) -> None:
        """Run one generation in the calling thread, handing every chunk to `emit`."""
        static, tokens = self.encode_prompt(prompt)
        suppress = self.avoid_sequences(options)
        decoder = IncrementalDecoder(self.tokenizer.decode)
        shaper = ReplyShaper(options.stop_strings, options.max_chars)
        stop = "stop"
        with self._lock:
            if self._generator is None:
                raise GenerationError("the engine is closed")
            steps = self._generator.generate_tokens(
                tokens,
                max_length=options.max_new_tokens,
                sampling_temperature=max(options.temperature, 1e-5),
                sampling_topk=options.top_k if options.temperature > 0 else 1,
                sampling_topp=options.top_p,
                repetition_penalty=options.repetition_penalty,
                no_repeat_ngram_size=options.no_repeat_ngram_size,
                suppress_sequences=suppress,
                end_token=self._end_tokens or None,
                static_prompt=static,
                cache_static_prompt=static is not None,
            )
            try:
                for step in steps:
                    if cancel.is_set():
                        stop = "cancelled"
                        break
                    text = shaper.feed(decoder.push(step.token_id))
                    if text:
                        emit(ReplyChunk(text=text))
                    if shaper.done:
                        break
                else:
                    if decoder.token_count >= options.max_new_tokens:
                        stop = "length"
            except RuntimeError as exc:
                raise GenerationError(f"generation failed: {exc}") from exc
            finally:
                steps.close()
        if stop != "cancelled":
            text = shaper.feed(decoder.flush()) + shaper.finish()
            if text:
                emit(ReplyChunk(text=text))
            if shaper.stop_reason == "length":
                stop = "length"
        emit(ReplyChunk(end=stop, tokens=decoder.token_count))

    def generate(self, prompt: Prompt | str, options: GenerationOptions) -> list[ReplyChunk]:
        """A whole reply in the calling thread (a blocking call: tests and tools, never the event loop)."""
        chunks: list[ReplyChunk] = []
        self._generate_blocking(prompt, options, chunks.append, threading.Event())
        return chunks

    async def stream(self, prompt: Prompt | str, options: GenerationOptions) -> AsyncIterator[ReplyChunk]:
        """Yield the reply's chunks; closing or cancelling the consumer stops generation."""
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[ReplyChunk | BaseException] = asyncio.Queue()
        cancel = threading.Event()

        def emit(item: ReplyChunk | BaseException) -> None:
            try:
                loop.call_soon_threadsafe(chunks.put_nowait, item)
            except RuntimeError:  # the loop is gone (shutdown): nobody is listening any more
                cancel.set()

        def work() -> None:
            try:
                self._generate_blocking(prompt, options, emit, cancel)
            except BaseException as exc:  # handed to the loop, raised there
                emit(exc)

        thread = threading.Thread(target=work, name="aituber-generate", daemon=True)
        thread.start()
        try:
            while True:
                chunk = await chunks.get()
                if isinstance(chunk, BaseException):
                    raise chunk
                yield chunk
                if chunk.end is not None:
                    return
        finally:
            cancel.set()

    def close_now(self) -> None:
        """Free the model now (waits for a generation in progress to stop). CTranslate2 aborts the
        process if a Generator that has streamed tokens is still alive at interpreter exit, so every
        owner closes its engine."""
        with self._lock:
            self._generator = None

    async def close(self) -> None:
        await asyncio.to_thread(self.close_now)

    def __enter__(self) -> CTranslate2Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_now()

    def warm_up(self) -> None:
        """One short generation: the first call on a fresh Generator is slow."""
        self._generate_blocking("hello", GenerationOptions(max_new_tokens=2, temperature=0),
                                lambda chunk: None, threading.Event())


def create_engine(settings: EngineSettings) -> CTranslate2Engine:
    """The registry's factory (aituber.engine.registry): loads the model, so call it in a thread."""
    if settings.options:
        raise ConfigError(f"the ctranslate2 engine takes no option(s) {', '.join(sorted(settings.options))}")
    if settings.seed is not None:
        ctranslate2.set_random_seed(settings.seed)  # before the first sampled token of this engine's threads
    return CTranslate2Engine(settings.model, settings.device, settings.compute_type, settings.threads,
                             static_prompt=settings.cache_prefix)
