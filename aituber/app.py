"""Wiring: source -> moderation -> selection queue -> engine -> outputs, in one TaskGroup."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aituber.config import Character
from aituber.core.comment import Comment, CommentDeleted
from aituber.core.events import (
    CommentSeen,
    CommentSelected,
    CommentSkipped,
    Event,
    ReplyDelta,
    ReplyEnded,
    ReplyStarted,
)
from aituber.core.moderation import ModerationSettings, Moderator
from aituber.core.prompt import build_prompt
from aituber.core.selection import QueueSettings, SelectionQueue
from aituber.core.stats import RunStats
from aituber.engine.generator import Engine, GenerationOptions
from aituber.errors import GenerationError
from aituber.outputs.console import ConsoleOutput
from aituber.outputs.overlay import OverlayServer
from aituber.outputs.transcript import TranscriptWriter
from aituber.sources.base import ChatSource

log = logging.getLogger(__name__)


class Output(Protocol):
    def publish(self, event: Event) -> None:
        """Take one event; must not block (queue it if sending takes time)."""


class OutputGuard:
    """Streams the model's text through the output filter: holds back the last `hold_chars`
    characters until they can no longer be the start of an NG word, masks hits, and tells when the
    reply must be dropped. What it emits, joined, is the final reply."""

    def __init__(self, moderator: Moderator, hold_chars: int = 8) -> None:
        self._moderator = moderator
        self._hold = hold_chars
        self._raw = ""
        self._emitted = 0
        self.dropped = False

    def feed(self, text: str) -> str:
        self._raw += text
        return self._release(final=False)

    def finish(self) -> str:
        return self._release(final=True)

    def _release(self, final: bool) -> str:
        if self.dropped:
            return ""
        verdict = self._moderator.filter_output(self._raw)
        if verdict.dropped:
            self.dropped = True
            return ""
        safe_len = len(verdict.text) if final else max(0, len(verdict.text) - self._hold)
        out = verdict.text[self._emitted:safe_len]
        self._emitted += len(out)
        return out


def moderation_settings(character: Character) -> ModerationSettings:
    m = character.moderation
    return ModerationSettings(
        max_comment_chars=m.max_comment_chars, truncate_long=m.truncate_long, ng_words=tuple(m.ng_words),
        use_builtin_ng_words=m.use_builtin_ng_words, output_ng_action=m.output_ng_action,
        block_urls=m.block_urls, max_answers_per_viewer=m.max_answers_per_viewer,
        viewer_window_s=m.viewer_window_s, blocked_viewers=tuple(m.blocked_viewers),
        character_name=character.name,
    )


def generation_options(character: Character) -> GenerationOptions:
    g = character.generation
    return GenerationOptions(
        max_new_tokens=g.max_new_tokens, max_chars=g.max_chars, temperature=g.temperature, top_k=g.top_k,
        top_p=g.top_p, repetition_penalty=g.repetition_penalty, no_repeat_ngram_size=g.no_repeat_ngram_size,
        stop_strings=character.prompt_template.stop_strings,
    )


class Pipeline:
    """Runs one chat session until the source ends and every queued comment is handled."""

    def __init__(self, *, character: Character, engine: Engine, source: ChatSource,
                 outputs: Sequence[Output], clock: Callable[[], float] = time.time,
                 stats: RunStats | None = None) -> None:
        self.character = character
        self.engine = engine
        self.source = source
        self.outputs = list(outputs)
        self.clock = clock
        self.stats = stats if stats is not None else RunStats()
        self.moderator = Moderator(moderation_settings(character))
        self.queue = SelectionQueue(QueueSettings(max_size=character.queue.max_size,
                                                  max_age_s=character.queue.max_age_s,
                                                  character_name=character.name))
        self.options = generation_options(character)
        self._wake = asyncio.Event()
        self._source_done = False
        self._reply_seq = 0

    def emit(self, event: Event) -> None:
        self.stats.record(event)
        for output in self.outputs:
            try:
                output.publish(event)
            except Exception:  # one broken output must not stop the stream
                log.exception("output %s failed on %s", type(output).__name__, type(event).__name__)

    async def run(self) -> RunStats:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._ingest(), name="ingest")
            tg.create_task(self._respond(), name="respond")
        return self.stats

    async def _ingest(self) -> None:
        try:
            async for item in self.source.items():
                self.accept(item)
        finally:
            self._source_done = True
            self._wake.set()

    def accept(self, item: Comment | CommentDeleted) -> None:
        """Source -> moderation -> queue, for one item."""
        now = self.clock()
        if isinstance(item, CommentDeleted):
            removed = self.queue.remove(item.comment_id)
            if removed is not None:
                self.emit(CommentSkipped(removed, "deleted"))
            return
        self.emit(CommentSeen(item))
        reason = self.moderator.check(item, now)
        if reason is not None:
            self.emit(CommentSkipped(item, reason))
            return
        for dropped in self.queue.push(item, now):
            self.emit(CommentSkipped(dropped.comment, dropped.reason))
        self._wake.set()

    async def _respond(self) -> None:
        while True:
            comment, expired = self.queue.pop(self.clock())
            for dropped in expired:
                self.emit(CommentSkipped(dropped.comment, dropped.reason))
            if comment is not None:
                await self.reply(comment)
                continue
            if self._source_done and len(self.queue) == 0:
                return
            self._wake.clear()
            try:
                async with asyncio.timeout(1.0):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def reply(self, comment: Comment) -> ReplyEnded:
        self._reply_seq += 1
        reply_id = f"r{self._reply_seq}"
        picked = time.perf_counter()
        self.emit(CommentSelected(comment, reply_id, queued_s=max(0.0, self.clock() - comment.timestamp)))
        self.emit(ReplyStarted(reply_id, comment.id))
        prompt = build_prompt(self.character.prompt_template, self.character.persona,
                              self.moderator.prompt_text(comment))
        guard = OutputGuard(self.moderator)
        parts: list[str] = []
        first_token_s: float | None = None
        stop, tokens = "stop", 0

        def show(text: str) -> None:
            nonlocal first_token_s
            if text:
                if first_token_s is None:
                    first_token_s = time.perf_counter() - picked
                parts.append(text)
                self.emit(ReplyDelta(reply_id, text))

        stream = self.engine.stream(prompt, self.options)
        try:
            async for chunk in stream:
                show(guard.feed(chunk.text))
                if guard.dropped:
                    stop = "filtered"
                    break
                if chunk.end is not None:
                    stop, tokens = chunk.end, chunk.tokens
        except GenerationError as exc:
            log.error("reply to %s failed: %s", comment.id, exc)
            stop = "error"
        finally:
            await stream.aclose()
        if not guard.dropped:
            show(guard.finish())
        self.moderator.note_answered(comment, self.clock())
        ended = ReplyEnded(reply_id=reply_id, comment_id=comment.id, text="".join(parts), stop_reason=stop,
                           first_token_s=first_token_s, total_s=time.perf_counter() - picked, tokens=tokens)
        self.emit(ended)
        return ended


@dataclass(frozen=True, slots=True)
class SessionSettings:
    model_dir: Path
    device: str = "auto"
    compute_type: str = "auto"
    host: str = "127.0.0.1"
    port: int = 8765
    transcript: Path | None = None
    overlay: bool = True


async def run_session(character: Character, source: ChatSource, settings: SessionSettings,
                      stats: RunStats, announce: Callable[[str], None] = print,
                      extra_outputs: Sequence[Output] = ()) -> RunStats:
    """Load the engine, start the outputs, run the pipeline; outputs are closed whatever happens.
    `stats` is filled as the run goes, so the caller has it even after an interrupt."""
    engine = await asyncio.to_thread(Engine, settings.model_dir, settings.device, settings.compute_type)
    try:
        await asyncio.to_thread(engine.warm_up)
        announce(f"model: {engine.model_dir} ({engine.device}, {engine.compute_type})")
        return await _run_with_engine(character, source, settings, stats, announce, extra_outputs, engine)
    finally:
        engine.close()


async def _run_with_engine(character: Character, source: ChatSource, settings: SessionSettings,
                           stats: RunStats, announce: Callable[[str], None], extra_outputs: Sequence[Output],
                           engine: Engine) -> RunStats:
    outputs: list[Output] = [ConsoleOutput(), *extra_outputs]
    overlay: OverlayServer | None = None
    if settings.overlay:
        overlay = OverlayServer(host=settings.host, port=settings.port,
                                character={"id": character.id, "name": character.name})
        await overlay.start()
        outputs.append(overlay)
        announce(f"overlay: {overlay.url}  (OBS: add a Browser Source with this URL)")
    transcript: TranscriptWriter | None = None
    if settings.transcript is not None:
        transcript = TranscriptWriter(settings.transcript)
        transcript.open({"character": character.id, "source": source.name, "model": str(engine.model_dir)})
        outputs.append(transcript)
        announce(f"transcript: {settings.transcript}")
    pipeline = Pipeline(character=character, engine=engine, source=source, outputs=outputs, stats=stats)
    interrupted = True
    try:
        await pipeline.run()
        interrupted = False
    finally:
        if transcript is not None:
            s = pipeline.stats
            transcript.close({"seen": s.seen, "answered": s.answered, "skipped": dict(s.skipped),
                              "interrupted": interrupted})
        if overlay is not None:
            await overlay.close()
    return pipeline.stats
