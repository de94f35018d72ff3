"""Wiring: source -> moderation -> selection queue -> engine -> outputs, in one TaskGroup.

The pipeline only moves data: the policy (what to do next) is `aituber.core.director.Director`, a
reply is assembled by `aituber.core.reply.ReplyAssembler`, prompts come from
`aituber.core.conversation.Conversation`; the engine and the outputs are protocols
(`aituber.engine.base.Engine`, `aituber.outputs.base.Output`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence

from aituber.config import Character, generation_options, moderation_settings, prompt_builder, queue_settings
from aituber.core.commands import Command, parse_control_payload
from aituber.core.comment import Comment, SourceItem
from aituber.core.conversation import Conversation
from aituber.core.director import (
    DEFAULT_IDLE_AFTER_S,
    Answer,
    Decision,
    Director,
    Finish,
    Idle,
    Say,
    SessionState,
    Thank,
    Wait,
    executed,
    thanks_names,
)
from aituber.core.events import (
    CommentSeen,
    CommentSkipped,
    Event,
    ReplyCancelled,
    ReplyEnded,
    RunEnded,
    RunStarted,
    StatusChanged,
)
from aituber.core.moderation import Moderator
from aituber.core.prompt import Prompt
from aituber.core.reply import ReplyAssembler, ReplyTiming
from aituber.core.selection import IdleTalk, SelectionQueue
from aituber.core.stats import RunStats
from aituber.engine.base import Engine, GenerationOptions
from aituber.engine.registry import create_engine
from aituber.errors import AituberError
from aituber.outputs.base import (
    ControlBridge,
    EventBridge,
    Output,
    OutputContext,
    StateBridge,
    close_outputs,
    run_output,
    start_outputs,
)
from aituber.outputs.registry import build_outputs
from aituber.settings import SessionSettings
from aituber.sources.base import ChatSource

log = logging.getLogger(__name__)

PRESENTATION_TIMEOUT_S = 120.0
"""The longest the pipeline waits for outputs to finish presenting a reply before it goes on."""


class _Presentation:
    """A reply's events, held back until the outputs have presented the previous reply."""

    def __init__(self, emit: Callable[[Event], None]) -> None:
        self._emit = emit
        self._held: list[Event] | None = []

    def put(self, events: Sequence[Event]) -> None:
        if self._held is None:
            for event in events:
                self._emit(event)
        else:
            self._held.extend(events)

    def open(self) -> None:
        held, self._held = self._held, None
        if held:
            self.put(held)


class Pipeline:
    """Runs one chat session until the source ends and every queued comment is handled.

    Commands (moderators' `!skip`, `!pause`, `!resume`, `!ban NAME`, `!say TEXT`, ..., and the same from
    the MQTT control topic and the control panel) all go through `execute`; `state()` is what the
    control panel shows. `outputs` need `publish`; `holds_replies` and
    `drained` (see aituber.outputs.base.Output) are used where present.

    No comment can end a session: a stage that fails on one comment costs that comment only, which
    is skipped with the reason (`CommentSkipped`: "moderation_error" when moderation or the queue
    failed on it, "engine_error" when its prompt could not be built or the engine failed on it); an
    output that fails on an event is logged (once per output, then counted in `output_failures`) and
    the other outputs still get it.
    """

    def __init__(self, *, character: Character, engine: Engine | None, source: ChatSource,
                 outputs: Sequence[Output], clock: Callable[[], float] = time.time,
                 stats: RunStats | None = None, timer: Callable[[], float] = time.perf_counter) -> None:
        self.character = character
        self.engine = engine
        self.source = source
        self.outputs = list(outputs)
        self.clock = clock
        """Wall time (unix seconds): the moderation and the queue's `now`."""
        self.timer = timer
        """A monotonic clock for latencies."""
        self.stats = stats if stats is not None else RunStats()
        self.moderator = Moderator(moderation_settings(character))
        self.queue = SelectionQueue(queue_settings(character))
        idle = character.idle
        # Idle talk can be switched on at run time (`idle on`): without `after_s`, after the default.
        self.director = Director(self.moderator, self.queue,
                                 IdleTalk(character.topics, idle.after_s or DEFAULT_IDLE_AFTER_S, idle.cooldown_s),
                                 now=clock(), idle_on=idle.after_s is not None)
        self.options = generation_options(character)
        self.conversation: Conversation | None = None
        if engine is not None:
            info = engine.info
            self.conversation = Conversation(
                prompt_builder(character, info), engine.count_tokens, form=info.prompt_form,
                memory_turns=character.prompt.memory_turns, memory_tokens=character.prompt.memory_tokens,
                topic_prompt=character.topic_prompt, avoid_recent=character.generation.avoid_recent)
        self._holding = [o for o in self.outputs if getattr(o, "holds_replies", False)]
        self._wake = asyncio.Event()
        self._reply_seq = 0
        self._reply_task: asyncio.Task[tuple[str, int]] | None = None
        self._waiting_on: str | None = None
        """The reply the outputs are still presenting while the next one waits to be shown."""
        self._last_reply: str | None = None
        self._withdrawn: str | None = None
        """The last reply that `skip` took back after it had ended (it may still be being spoken)."""
        self._tasks: asyncio.TaskGroup | None = None
        self.output_failures: Counter[str] = Counter()
        """Events each output failed to take (by output name)."""

    @property
    def paused(self) -> bool:
        return self.director.paused

    def emit(self, event: Event) -> None:
        self.stats.record(event)
        for output in self.outputs:
            try:
                output.publish(event)
            except Exception as exc:  # one broken output must not stop the stream
                self._output_failed(output, event, exc)

    def _output_failed(self, output: Output, event: Event, exc: Exception) -> None:
        name = getattr(output, "name", type(output).__name__)
        self.output_failures[name] += 1
        if self.output_failures[name] == 1:
            log.error("output %s failed on %s (the stream goes on; further failures of it are counted)",
                      name, type(event).__name__, exc_info=exc)
        else:
            log.debug("output %s failed on %s: %s", name, type(event).__name__, exc)

    def emit_all(self, events: Sequence[Event]) -> None:
        for event in events:
            self.emit(event)

    async def run(self, tasks: asyncio.TaskGroup | None = None) -> RunStats:
        """Run until the chat is over and everything is handled. The reading and answering tasks (and
        each reply) run in `tasks`, or in a TaskGroup of the pipeline's own."""
        if tasks is None:
            async with asyncio.TaskGroup() as group:
                await self.run(group)
            return self.stats
        self._tasks = tasks
        await asyncio.to_thread(self.moderator.prepare)  # not in the first reply, on the event loop
        self.emit(StatusChanged("paused" if self.paused else "online"))
        try:
            tasks.create_task(self._ingest(), name="ingest")
            await tasks.create_task(self._respond(), name="respond")
        finally:
            self.emit(StatusChanged("offline"))
        return self.stats

    # -- commands ------------------------------------------------------------------------------

    def execute(self, command: Command) -> None:
        """Carry out a command; a `CommandExecuted` event says it was (or why it changed nothing)."""
        log.info("command from %s: %s %s", command.source, command.name, command.arg)
        if command.name == "skip":
            skipped = self.skip()
            self.emit(executed(command, skipped, "" if skipped else "nothing to skip"))
        else:
            self.emit_all(self.director.execute(command, self.clock()))
            if command.name == "ng" and self._tasks is not None:  # the new NG list compiles off the loop
                with contextlib.suppress(RuntimeError):  # the run is over: the next one prepares it
                    self._tasks.create_task(asyncio.to_thread(self.moderator.prepare), name="ng-prepare")
        self._wake.set()

    def handle_control(self, payload: bytes | str, source: str = "mqtt") -> str | None:
        """A message on the MQTT control topic or from the control panel (`source`); a bad one is a
        warning, never an error. Returns None, or what is wrong with the payload."""
        try:
            command = parse_control_payload(payload, source)
        except ValueError as exc:
            log.warning("%s", exc)
            return str(exc)
        self.execute(command)
        return None

    def state(self) -> SessionState:
        """The session as the control panel shows it: the queue with scores, paused, idle talk."""
        return self.director.snapshot(self.clock())

    def skip(self) -> bool:
        """Stop what is being presented: the reply being generated (it stops within one token), or a
        reply the outputs are still presenting (speech): the one the next reply waits for, else the last
        one (with outputs that hold replies; withdrawn even if its speech has just ended). False if
        there is none."""
        if self._waiting_on is not None:
            self.emit(ReplyCancelled(self._waiting_on, "cancelled"))
            self._waiting_on = None
            return True
        task = self._reply_task
        if task is not None and not task.done():
            task.cancel()
            return True
        if self._holding and self._last_reply is not None and self._withdrawn != self._last_reply:
            # Nothing generating or waiting: the last reply may still be being presented (spoken).
            self._withdrawn = self._last_reply
            self.emit(ReplyCancelled(self._last_reply, "cancelled"))
            return True
        return False

    # -- ingest ---------------------------------------------------------------------------------

    async def _ingest(self) -> None:
        try:
            async for item in self.source.items():
                self.accept(item)
        finally:
            self.director.source_done()
            self._wake.set()

    def accept(self, item: SourceItem) -> None:
        """Source -> moderation -> queue, for one item. If they fail on it, the item is skipped
        ("moderation_error") and the stream goes on."""
        try:
            events, command = self.director.accept(item, self.clock())
        except Exception:
            log.exception("moderation failed on %s; skipped", getattr(item, "id", getattr(item, "comment_id", "?")))
            if isinstance(item, Comment):
                self.emit_all([CommentSeen(item), CommentSkipped(item, "moderation_error")])
            return
        self.emit_all(events)
        if command is not None:
            self.execute(command)
        self._wake.set()

    # -- respond --------------------------------------------------------------------------------

    async def _respond(self) -> None:
        while True:
            decision, events = self.director.next(self.clock())
            self.emit_all(events)
            match decision:
                case Finish():
                    await self._previous_presented()  # the run ends once the last reply is heard
                    return
                case Wait(until=until):
                    await self._wait(until)
                case _:
                    await self.carry_out(decision)

    async def _wait(self, until: float) -> None:
        self._wake.clear()
        try:
            async with asyncio.timeout(min(max(until - self.clock(), 0.0), 0.5)):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def carry_out(self, decision: Decision) -> ReplyEnded | None:
        """Say, thank, answer or talk, as the director decided."""
        ended: ReplyEnded | None = None
        match decision:
            case Say(text=text):
                ended = await self._reply(text, comment_id="say")
            case Thank(comments=comments):
                ended = await self._reply(self.thanks_text(comments),
                                          comment_id="thanks:" + ",".join(c.id for c in comments))
            case Answer(comment=comment):
                ended = await self.answer(comment)
            case Idle(topic=topic):
                try:
                    prompt = self._conversation.for_topic(topic)
                    options = self._avoiding(self._conversation.avoid())
                except Exception:
                    log.exception("the prompt for idle topic %r could not be built; skipped", topic)
                else:
                    ended = await self._reply(prompt, comment_id=f"idle:{topic}", options=options)
                    if ended.stop_reason in ("stop", "length"):
                        self._conversation.said(ended.text)
        self.director.replied(decision, self.clock())
        return ended

    @property
    def _conversation(self) -> Conversation:
        if self.conversation is None:
            raise AituberError("this pipeline has no engine: it cannot answer")
        return self.conversation

    def thanks_text(self, comments: Sequence[Comment]) -> str:
        c = self.character
        return c.thanks.format(names=thanks_names(comments, c.thanks_name, c.thanks_separator, c.thanks_others,
                                                  c.thanks_max_names))

    async def answer(self, comment: Comment) -> ReplyEnded | None:
        """Answer one comment with the model; a normal reply joins the memory. A comment whose prompt
        cannot be built, or on which the engine fails, is skipped ("engine_error"): None, or the
        reply that ended in "error"."""
        try:
            text = self.moderator.prompt_text(comment)
            viewer = self.moderator.prompt_name(comment)
            prompt = self._build_prompt(text, viewer, comment)
            options = self._avoiding(self._conversation.avoid(text, viewer))
        except Exception:
            log.exception("the prompt for comment %s could not be built; skipped", comment.id)
            self.emit(CommentSkipped(comment, "engine_error"))
            return None
        ended = await self._reply(prompt, comment=comment, options=options)
        if ended.stop_reason in ("stop", "length"):
            self._conversation.remember(text, viewer, ended.text)
        elif ended.stop_reason == "error":
            self.emit(CommentSkipped(comment, "engine_error"))
        return ended

    def _build_prompt(self, text: str, viewer: str, comment: Comment) -> Prompt:
        """The comment's prompt. If it cannot be built with the memory (a remembered exchange the
        tokenizer fails on would otherwise cost every later comment), the memory is let go."""
        conversation = self._conversation
        try:
            return conversation.for_comment(text, viewer)
        except Exception:
            if not conversation.memory:
                raise
            log.exception("the prompt for comment %s could not be built with the memory; forgetting it", comment.id)
            conversation.memory.clear()
            return conversation.for_comment(text, viewer)

    def _avoiding(self, avoid: tuple[str, ...]) -> GenerationOptions:
        """The character's generation options, keeping the recent replies' phrases out."""
        return dataclasses.replace(self.options, avoid=avoid) if avoid else self.options

    async def _reply(self, source: Prompt | str, *, comment: Comment | None = None,
                     comment_id: str = "", options: GenerationOptions | None = None) -> ReplyEnded:
        """One reply: the engine's text for a prompt, or a fixed text (`!say`, thanks), through the
        output filter. It is generated at once, and shown once the outputs have presented the last one."""
        self._reply_seq += 1
        reply_id = f"r{self._reply_seq}"
        queued_s = self.clock() - comment.timestamp if comment is not None else 0.0
        assembler = ReplyAssembler(reply_id, comment_id, self.moderator, comment=comment,
                                   timing=ReplyTiming(self.timer(), queued_s),
                                   cut_long_replies=self.character.generation.cut_long_replies)
        presentation = _Presentation(self.emit)
        presentation.put(assembler.start())

        generated_at: list[float] = []
        """When generation ended: the reply's latency, whatever wait for the outputs followed."""

        async def generate() -> tuple[str, int]:
            """(stop reason, tokens); never raises but for cancellation (it runs in the TaskGroup)."""
            try:
                return await stream_reply()
            finally:
                generated_at.append(self.timer())

        async def stream_reply() -> tuple[str, int]:
            if isinstance(source, str):
                presentation.put(assembler.feed(source, self.timer()))
                return "stop", 0
            assert self.engine is not None
            stop, tokens = "stop", 0
            try:
                async with contextlib.aclosing(self.engine.stream(source, options or self.options)) as stream:
                    async for chunk in stream:
                        presentation.put(assembler.feed(chunk.text, self.timer()))
                        if assembler.dropped:
                            return "filtered", tokens
                        if chunk.end is not None:
                            stop, tokens = chunk.end, chunk.tokens
            except Exception as exc:  # an engine failure costs this reply, never the stream
                log.error("reply %s failed: %s", reply_id, exc, exc_info=not isinstance(exc, AituberError))
                return "error", tokens
            return stop, tokens

        task = self._tasks.create_task(generate(), name=f"reply-{reply_id}") if self._tasks is not None \
            else asyncio.create_task(generate(), name=f"reply-{reply_id}")
        self._reply_task = task
        stop, tokens = "cancelled", 0
        try:
            await self._previous_presented()
            presentation.open()
            stop, tokens = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                task.cancel()
                # The whole run is stopping (Ctrl-C, a source error): the reply was not (all) shown,
                # and the outputs and the transcript say so.
                self._reply_task = None
                presentation.open()
                presentation.put(assembler.finish("cancelled", 0, self.timer()))
                raise
        finally:
            self._reply_task = None
            presentation.open()
        if assembler.dropped:
            log.warning("reply %s dropped by the output filter (%s)", reply_id, ", ".join(assembler.hits))
        presentation.put(assembler.finish(stop, tokens, generated_at[0] if generated_at else self.timer()))
        self._last_reply = reply_id
        assert assembler.ended is not None
        return assembler.ended

    async def _previous_presented(self) -> None:
        """Back-pressure: wait until the outputs that hold replies have presented the last one. An
        output whose `drained()` fails is logged and no longer waited for."""
        if not self._holding or self._last_reply is None:
            return
        self._waiting_on = self._last_reply
        try:
            async with asyncio.timeout(PRESENTATION_TIMEOUT_S):
                results = await asyncio.gather(*(output.drained() for output in self._holding),
                                               return_exceptions=True)
        except TimeoutError:
            log.warning("outputs still presenting after %g s; going on", PRESENTATION_TIMEOUT_S)
            results = []
        finally:
            self._waiting_on = None
        for output, result in zip(list(self._holding), results):
            if isinstance(result, Exception):
                log.error("output %s failed while presenting; no longer waiting for it", output.name,
                          exc_info=result)
                self._holding.remove(output)



def _unwrap(group: BaseExceptionGroup) -> BaseException:
    """The error to report for a TaskGroup's failure: its first aituber error, else the group."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for exc in leaves:
        if isinstance(exc, (AituberError, KeyboardInterrupt)):
            return exc
    return leaves[0] if len(leaves) == 1 else group


async def run_pipeline(character: Character, source: ChatSource, engine: Engine | None, outputs: Sequence[Output],
                       stats: RunStats | None = None, control: ControlBridge | None = None,
                       close_timeout_s: float = 5.0, events: EventBridge | None = None,
                       state: StateBridge | None = None) -> RunStats:
    """Start the outputs, run the pipeline, then close the outputs in reverse order, whatever happens.
    Everything runs in one TaskGroup; shutdown: stop reading, finish or cancel the reply, say offline,
    close each output within `close_timeout_s`."""
    started = await start_outputs(outputs)
    pipeline = Pipeline(character=character, engine=engine, source=source, outputs=started, stats=stats)
    if control is not None:
        control.bind(pipeline.handle_control)
    if events is not None:
        events.bind(pipeline.emit)
    if state is not None:
        state.bind(pipeline.state)
    model = engine.info if engine is not None else None
    try:
        async with asyncio.TaskGroup() as tasks:
            runners = [tasks.create_task(run_output(o), name=f"output-{o.name}") for o in started]
            interrupted = True
            try:
                pipeline.emit(RunStarted(character.id, source.name, model.model if model else "",
                                         model.name if model else ""))
                await pipeline.run(tasks)
                interrupted = False
            finally:
                s = pipeline.stats
                pipeline.emit(RunEnded(s.seen, s.answered, dict(s.skipped), interrupted))
                await close_outputs(started, close_timeout_s)
                if runners:  # each output's run() returns once it is closed; stragglers are cancelled
                    _, pending = await asyncio.wait(runners, timeout=close_timeout_s)
                    for runner in pending:
                        runner.cancel()
    except BaseExceptionGroup as group:
        raise _unwrap(group) from None
    return pipeline.stats


async def run_session(character: Character, source: ChatSource, settings: SessionSettings,
                      stats: RunStats, announce: Callable[[str], None] = print,
                      extra_outputs: Sequence[Output] = ()) -> RunStats:
    """Build and start the engine, build the outputs the settings turn on, run the pipeline; the
    engine is closed whatever happens. `stats` is filled as the run goes, so the caller has it even
    after an interrupt."""
    engine = await asyncio.to_thread(create_engine, settings.engine)
    try:
        await engine.start()
        announce(f"engine: {engine.info.name} ({engine.info.detail})")
        context = OutputContext(character, settings, announce)
        outputs = [*build_outputs(context), *extra_outputs]
        return await run_pipeline(character, source, engine, outputs, stats, context.control,
                                  settings.close_timeout_s, context.events, context.state)
    finally:
        await engine.close()
