"""Wiring: source -> moderation -> selection queue -> engine -> outputs, in one TaskGroup."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from aituber.config import Character
from aituber.core.comment import Comment, CommentDeleted
from aituber.core.events import (
    CommentSeen,
    CommentSelected,
    CommentSkipped,
    Event,
    ReplyCancelled,
    ReplyDelta,
    ReplyEnded,
    ReplySentence,
    ReplyStarted,
    StatusChanged,
)
from aituber.core.commands import Command, parse_command, parse_control_payload
from aituber.core.moderation import Moderator
from aituber.core.outputguard import OutputGuard
from aituber.core.prompt import Prompt, Turn, select_history
from aituber.core.selection import IdleTalk, SelectionQueue
from aituber.core.textstream import SentenceSplitter, cut_at_last_sentence
from aituber.core.stats import RunStats
from aituber.engine.generator import Engine
from aituber.stages import generation_options, moderation_settings, prompt_builder, queue_settings
from aituber.errors import GenerationError
from aituber.outputs.console import ConsoleOutput
from aituber.outputs.mqtt import MqttOutput, MqttSettings
from aituber.outputs.overlay import OverlayServer
from aituber.outputs.transcript import TranscriptWriter
from aituber.sources.base import ChatSource

log = logging.getLogger(__name__)


class Output(Protocol):
    def publish(self, event: Event) -> None:
        """Take one event; must not block (queue it if sending takes time)."""


class Pipeline:
    """Runs one chat session until the source ends and every queued comment is handled.

    Commands (moderators' `!skip`, `!pause`, `!resume`, `!ban NAME`, `!say TEXT`, and the same from the
    MQTT control topic) all go through `execute`.
    """

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
        self.queue = SelectionQueue(queue_settings(character))
        self.options = generation_options(character)
        self.prompts = prompt_builder(character, engine) if engine is not None or character.template != "chat" else None
        self.memory: collections.deque[Turn] = collections.deque(maxlen=max(character.prompt.memory_turns, 1))
        idle = character.idle
        self.idle = IdleTalk(character.topics, idle.after_s, idle.cooldown_s) if idle.after_s else None
        self.paused = False
        self._says: collections.deque[str] = collections.deque(maxlen=20)
        self._wake = asyncio.Event()
        self._source_done = False
        self._reply_seq = 0
        self._reply_task: asyncio.Task[None] | None = None
        self._last_activity = clock()

    def emit(self, event: Event) -> None:
        self.stats.record(event)
        for output in self.outputs:
            try:
                output.publish(event)
            except Exception:  # one broken output must not stop the stream
                log.exception("output %s failed on %s", type(output).__name__, type(event).__name__)

    async def run(self) -> RunStats:
        self.emit(StatusChanged("paused" if self.paused else "online"))
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._ingest(), name="ingest")
                tg.create_task(self._respond(), name="respond")
        finally:
            self.emit(StatusChanged("offline"))
        return self.stats

    # -- commands ------------------------------------------------------------------------------

    def execute(self, command: Command) -> None:
        log.info("command from %s: %s %s", command.source, command.name, command.arg)
        match command.name:
            case "skip":
                self.skip()
            case "pause":
                if not self.paused:
                    self.paused = True
                    self.emit(StatusChanged("paused"))
            case "resume":
                if self.paused:
                    self.paused = False
                    self.emit(StatusChanged("online"))
            case "ban":
                self.moderator.block(command.arg)
                for comment in self.queue.comments():
                    if self.moderator.is_blocked(comment) and self.queue.remove(comment.id) is not None:
                        self.emit(CommentSkipped(comment, "blocked_viewer"))
            case "say":
                self._says.append(command.arg)
        self._wake.set()

    def handle_control(self, payload: bytes | str) -> None:
        """A message on the MQTT control topic; a bad one is a warning, never an error."""
        try:
            command = parse_control_payload(payload)
        except ValueError as exc:
            log.warning("%s", exc)
            return
        self.execute(command)

    def skip(self) -> bool:
        """Cancel the reply being generated (it stops within one token). False if none is."""
        task = self._reply_task
        if task is None or task.done():
            return False
        task.cancel()
        return True

    # -- ingest ---------------------------------------------------------------------------------

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
        command = parse_command(item)
        if command is not None:
            self.emit(CommentSkipped(item, "command"))
            self.execute(command)
            return
        reason = self.moderator.check(item, now)
        if reason is not None:
            self.emit(CommentSkipped(item, reason))
            return
        for dropped in self.queue.push(item, now):
            self.emit(CommentSkipped(dropped.comment, dropped.reason))
        self._wake.set()

    # -- respond --------------------------------------------------------------------------------

    async def _respond(self) -> None:
        while True:
            now = self.clock()
            if self._says:
                await self.speak(self._says.popleft(), comment_id="say")
                continue
            thanks = self.queue.take_thanks(now)
            if thanks:
                await self.speak(self.thanks_text(thanks), comment_id="thanks:" + ",".join(c.id for c in thanks))
                continue
            if not self.paused:
                comment, expired = self.queue.pop(now)
                for dropped in expired:
                    self.emit(CommentSkipped(dropped.comment, dropped.reason))
                if comment is not None:
                    await self.reply(comment)
                    continue
                if self._source_done and len(self.queue) == 0 and self.queue.thanks_pending == 0:
                    return
                topic = self.idle.due(now, self._last_activity, len(self.queue)) if self.idle else None
                if topic is not None and not self._source_done:
                    await self.talk(topic)
                    continue
            elif self._source_done:
                return
            self._wake.clear()
            try:
                async with asyncio.timeout(0.5):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def thanks_text(self, comments: Sequence[Comment]) -> str:
        names = list(dict.fromkeys(c.author.name for c in comments))
        shown = "、".join(f"{n}さん" for n in names[:5]) + ("ほか" if len(names) > 5 else "")
        return self.character.thanks.format(names=shown)

    async def reply(self, comment: Comment) -> ReplyEnded:
        """Answer one comment with the model."""
        assert self.prompts is not None
        history = select_history(self.memory, self.engine.tokenizer.count, self.character.prompt.memory_tokens) \
            if self.character.prompt.memory_turns else []
        text = self.moderator.prompt_text(comment)
        prompt = self.prompts.build(text, comment.author.name, history)
        ended = await self._generate(prompt, comment=comment)
        self.moderator.note_answered(comment, self.clock())
        if ended.text and ended.stop_reason in ("stop", "length"):
            self.memory.append(Turn(text, ended.text, comment.author.name))
        return ended

    async def talk(self, topic: str) -> ReplyEnded:
        """Idle talk: the character brings up a topic of its own."""
        assert self.prompts is not None
        prompt = self.prompts.build(self.character.topic_prompt.format(topic=topic))
        ended = await self._generate(prompt, comment_id=f"idle:{topic}")
        self._last_activity = self.clock()
        return ended

    async def speak(self, text: str, comment_id: str) -> ReplyEnded:
        """Say a fixed text (`!say`, thanks) as the character, through the output filter."""
        return await self._generate(text, comment_id=comment_id, fixed=True)

    async def _generate(self, source: Prompt | str, *, comment: Comment | None = None, comment_id: str = "",
                        fixed: bool = False) -> ReplyEnded:
        self._reply_seq += 1
        reply_id = f"r{self._reply_seq}"
        comment_id = comment.id if comment is not None else comment_id
        picked = time.perf_counter()
        if comment is not None:
            self.emit(CommentSelected(comment, reply_id, queued_s=max(0.0, self.clock() - comment.timestamp)))
        self.emit(ReplyStarted(reply_id, comment_id))
        guard = OutputGuard(self.moderator)
        sentences = SentenceSplitter()
        parts: list[str] = []
        first_token_s: float | None = None
        stop, tokens, n_sentences = "stop", 0, 0

        def show(text: str) -> None:
            nonlocal first_token_s, n_sentences
            if not text:
                return
            if first_token_s is None:
                first_token_s = time.perf_counter() - picked
            parts.append(text)
            self.emit(ReplyDelta(reply_id, text))
            for sentence in sentences.feed(text):
                self.emit(ReplySentence(reply_id, sentence, n_sentences))
                n_sentences += 1

        async def consume() -> None:
            nonlocal stop, tokens
            if fixed:
                assert isinstance(source, str)
                show(guard.feed(source))
                return
            async with contextlib.aclosing(self.engine.stream(source, self.options)) as stream:
                async for chunk in stream:
                    show(guard.feed(chunk.text))
                    if guard.dropped:
                        stop = "filtered"
                        return
                    if chunk.end is not None:
                        stop, tokens = chunk.end, chunk.tokens

        task = asyncio.create_task(consume(), name=f"reply-{reply_id}")
        self._reply_task = task
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the whole run is stopping
            stop = "cancelled"
        except GenerationError as exc:
            log.error("reply %s failed: %s", reply_id, exc)
            stop = "error"
        finally:
            self._reply_task = None
        if guard.dropped:
            stop = "filtered"
            log.warning("reply %s dropped by the output filter (%s)", reply_id, ", ".join(guard.hits))
        text = "".join(parts)
        if stop in ("cancelled", "filtered"):
            self.emit(ReplyCancelled(reply_id, stop))
        else:
            show(guard.finish())
            text = "".join(parts)
            if stop == "length" and self.character.generation.cut_long_replies:
                text = cut_at_last_sentence(text)
            if text == "".join(parts):
                for sentence in sentences.flush():
                    self.emit(ReplySentence(reply_id, sentence, n_sentences))
                    n_sentences += 1
        ended = ReplyEnded(reply_id=reply_id, comment_id=comment_id, text=text, stop_reason=stop,
                           first_token_s=first_token_s, total_s=time.perf_counter() - picked, tokens=tokens)
        self.emit(ended)
        self._last_activity = self.clock()
        return ended


@dataclass(frozen=True, slots=True)
class SessionSettings:
    model_dir: Path
    device: str = "auto"
    compute_type: str = "auto"
    threads: int = 0
    """CPU threads for generation; 0 = all cores but one."""
    host: str = "127.0.0.1"
    port: int = 8765
    transcript: Path | None = None
    overlay: bool = True
    overlay_token: str | None = None
    mqtt: MqttSettings = field(default_factory=MqttSettings)


async def run_session(character: Character, source: ChatSource, settings: SessionSettings,
                      stats: RunStats, announce: Callable[[str], None] = print,
                      extra_outputs: Sequence[Output] = ()) -> RunStats:
    """Load the engine, start the outputs, run the pipeline; outputs are closed whatever happens.
    `stats` is filled as the run goes, so the caller has it even after an interrupt."""
    engine = await asyncio.to_thread(Engine, settings.model_dir, settings.device, settings.compute_type,
                                     settings.threads)
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
        overlay = OverlayServer(host=settings.host, port=settings.port, token=settings.overlay_token,
                                character={"id": character.id, "name": character.name})
        await overlay.start()
        outputs.append(overlay)
        announce(f"overlay: {overlay.url}  (OBS: add a Browser Source with this URL)")
    mqtt: MqttOutput | None = None
    mqtt_task: asyncio.Task[None] | None = None
    if settings.mqtt.enabled:
        mqtt = MqttOutput(settings.mqtt, character.id)
        outputs.append(mqtt)
        mqtt_task = asyncio.create_task(mqtt.run(), name="mqtt")
        announce(f"mqtt: {settings.mqtt.host}:{settings.mqtt.port} topics {mqtt.base_topic}/...")
    transcript: TranscriptWriter | None = None
    if settings.transcript is not None:
        transcript = TranscriptWriter(settings.transcript)
        transcript.open({"character": character.id, "source": source.name, "model": str(engine.model_dir)})
        outputs.append(transcript)
        announce(f"transcript: {settings.transcript}")
    pipeline = Pipeline(character=character, engine=engine, source=source, outputs=outputs, stats=stats)
    if mqtt is not None:
        mqtt.on_control = pipeline.handle_control
    interrupted = True
    try:
        await pipeline.run()
        interrupted = False
    finally:
        if transcript is not None:
            s = pipeline.stats
            transcript.close({"seen": s.seen, "answered": s.answered, "skipped": dict(s.skipped),
                              "interrupted": interrupted})
        if mqtt is not None:
            await mqtt.close()
            if mqtt_task is not None:
                mqtt_task.cancel()
        if overlay is not None:
            await overlay.close()
    return pipeline.stats
