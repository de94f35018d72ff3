"""Pipeline behaviour with a real tiny model: commands, thanks, memory, sentences, idle talk."""

from __future__ import annotations

import asyncio
import threading

import ctranslate2
import pytest

from aituber.app import Pipeline
from aituber.config import load_character
from aituber.core.commands import Command
from aituber.core.comment import Author, Comment, CommentKind
from aituber.core.events import (
    CommentSkipped,
    ReplyCancelled,
    ReplyDelta,
    ReplyEnded,
    ReplySentence,
    StatusChanged,
)
from aituber.core.prompt import Turn
from aituber.engine.base import GenerationOptions, ReplyChunk
from aituber.engine.ct2 import CTranslate2Engine as Engine
from aituber.sources.base import SourceStats

pytestmark = pytest.mark.slow


class QueueSource:
    """A chat source the test feeds by hand; `close()` ends it."""

    name = "test"

    def __init__(self) -> None:
        self.stats = SourceStats()
        self._queue: asyncio.Queue = asyncio.Queue()

    def put(self, item) -> None:
        self._queue.put_nowait(item)

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def items(self):
        while (item := await self._queue.get()) is not None:
            yield item


class Collect:
    def __init__(self) -> None:
        self.events: list = []
        self.changed = asyncio.Event()

    def publish(self, event) -> None:
        self.events.append(event)
        self.changed.set()

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, predicate, timeout: float = 20.0):
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
def engine(tiny_model):
    with Engine(tiny_model, device="cpu", compute_type="float32") as engine:
        yield engine


@pytest.fixture
def character(sample_character):
    return load_character(sample_character).character


def comment(i: int, text: str = "こんにちは", **kw) -> Comment:
    return Comment(id=f"c{i}", author=Author(kw.pop("name", f"viewer{i}"), f"UC{i:022d}"), text=text, **kw)


def long_replies(character):
    """No stop strings, no length cap: the tiny model talks until max_new_tokens."""
    return character.model_copy(update={
        "stop_strings": [], "template": "instruction",
        "generation": character.generation.model_copy(update={"max_new_tokens": 400, "max_chars": 100_000})})


def test_engine_stops_within_one_token_of_a_cancel(engine):
    cancel = threading.Event()
    chunks: list[ReplyChunk] = []

    def emit(chunk: ReplyChunk) -> None:
        chunks.append(chunk)
        if chunk.text:
            cancel.set()  # cancel as soon as the first text arrives

    engine._generate_blocking("こんにちは", GenerationOptions(max_new_tokens=400, max_chars=None, temperature=1.0),
                             emit, cancel)
    end = chunks[-1]
    assert end.end == "cancelled"
    first_text_token = next(i for i, c in enumerate(chunks) if c.text)  # chunks before text: none emitted
    assert first_text_token == 0
    assert end.tokens <= 8, "generation went on after the cancel"  # text needs a few tokens to form


async def test_skip_cancels_the_reply_and_the_queue_goes_on(engine, character):
    ctranslate2.set_random_seed(1)
    source, out = QueueSource(), Collect()
    pipeline = Pipeline(character=long_replies(character), engine=engine, source=source, outputs=[out])
    run = asyncio.create_task(pipeline.run())
    source.put(comment(1))
    await out.wait_for(lambda: out.of(ReplyDelta))
    deltas_at_skip = len(out.of(ReplyDelta))
    pipeline.execute(Command("skip", "", "chat"))
    await out.wait_for(lambda: out.of(ReplyEnded))
    assert out.of(ReplyCancelled)[0].reason == "cancelled"
    assert out.of(ReplyEnded)[0].stop_reason == "cancelled"
    assert len(out.of(ReplyDelta)) == deltas_at_skip  # nothing more was shown
    source.put(comment(2, "次のコメント"))
    source.close()
    await asyncio.wait_for(run, 60)
    ends = out.of(ReplyEnded)
    assert [e.comment_id for e in ends] == ["c1", "c2"] and ends[1].stop_reason != "cancelled"


async def test_pause_holds_answers_until_resume(engine, character):
    source, out = QueueSource(), Collect()
    pipeline = Pipeline(character=character, engine=engine, source=source, outputs=[out])
    run = asyncio.create_task(pipeline.run())
    await asyncio.sleep(0)  # the run has started
    pipeline.execute(Command("pause", "", "mqtt"))
    source.put(comment(1))
    await asyncio.sleep(0.3)
    assert not out.of(ReplyEnded) and len(pipeline.queue) == 1
    pipeline.execute(Command("resume", "", "mqtt"))
    await out.wait_for(lambda: out.of(ReplyEnded))
    source.close()
    await asyncio.wait_for(run, 60)
    assert [e.status for e in out.of(StatusChanged)] == ["online", "paused", "online", "offline"]


async def test_moderator_commands_from_chat(engine, character):
    source, out = QueueSource(), Collect()
    pipeline = Pipeline(character=character, engine=engine, source=source, outputs=[out])
    pipeline.execute(Command("pause", "", "chat"))
    run = asyncio.create_task(pipeline.run())
    source.put(comment(1, "うざいコメント", name="荒らし"))
    mod = Comment(id="m1", author=Author("もでれーたー", "UCmod", is_moderator=True), text="!ban 荒らし")
    source.put(mod)
    source.put(Comment(id="m2", author=Author("もでれーたー", "UCmod", is_moderator=True), text="!say みんなありがとう！"))
    # A viewer who is not a moderator cannot command.
    source.put(comment(3, "!say 乗っ取り"))
    source.put(Comment(id="m3", author=Author("owner", "UCowner", is_owner=True), text="!resume"))
    source.close()
    await asyncio.wait_for(run, 60)
    skipped = {e.comment.id: e.reason for e in out.of(CommentSkipped)}
    assert skipped["c1"] == "blocked_viewer" and skipped["m1"] == skipped["m2"] == skipped["m3"] == "command"
    said = [e for e in out.of(ReplyEnded) if e.comment_id == "say"]
    assert [e.text for e in said] == ["みんなありがとう！"]
    answered = {e.comment_id for e in out.of(ReplyEnded)}
    assert "c3" in answered and "c1" not in answered  # c3 was answered as a normal comment


async def test_mqtt_style_control_payloads(engine, character):
    source, out = QueueSource(), Collect()
    pipeline = Pipeline(character=character, engine=engine, source=source, outputs=[out])
    run = asyncio.create_task(pipeline.run())
    pipeline.handle_control(b'{"command": "say", "text": "\\u3053\\u3093\\u3070\\u3093\\u306f"}')
    pipeline.handle_control(b"not a command")  # a warning, nothing else
    await out.wait_for(lambda: out.of(ReplyEnded))
    source.close()
    await asyncio.wait_for(run, 60)
    assert out.of(ReplyEnded)[0].text == "こんばんは"


async def test_a_burst_of_super_chats_is_thanked_together(engine, character):
    source, out = QueueSource(), Collect()
    pipeline = Pipeline(character=character, engine=engine, source=source, outputs=[out])
    pipeline.execute(Command("pause", "", "chat"))  # nothing is answered: the thanks still come
    run = asyncio.create_task(pipeline.run())
    for i in range(3):
        source.put(comment(i, "応援してます", name=f"スパチャ{i}", kind=CommentKind.SUPER_CHAT, amount=500.0,
                           currency="JPY"))
    await out.wait_for(lambda: any(e.comment_id.startswith("thanks:") for e in out.of(ReplyEnded)))
    thanks = next(e for e in out.of(ReplyEnded) if e.comment_id.startswith("thanks:"))
    assert all(f"スパチャ{i}さん" in thanks.text for i in range(3))
    pipeline.execute(Command("resume", "", "chat"))
    source.close()
    await asyncio.wait_for(run, 60)


async def test_memory_reaches_the_next_prompt_and_sentences_are_emitted(engine, character):
    ctranslate2.set_random_seed(5)
    source, out = QueueSource(), Collect()
    pipeline = Pipeline(character=character, engine=engine, source=source, outputs=[out])
    prompts = []
    original = pipeline.conversation.builder.build

    def spy(*args, **kw):
        prompt = original(*args, **kw)
        prompts.append(prompt)
        return prompt

    pipeline.conversation.builder.build = spy
    pipeline.conversation.memory.append(Turn("好きな食べ物は？", "いちごパフェだよ！", "たぬき丸"))
    source.put(comment(1, "ゲームは好き？", name="ねこ"))
    source.close()
    await asyncio.wait_for(pipeline.run(), 60)
    assert "いちごパフェだよ！" in prompts[0].dynamic and "視聴者名: ねこ" in prompts[0].dynamic
    assert prompts[0].static.startswith(character.persona.strip())
    ended = out.of(ReplyEnded)[0]
    sentences = [e.text for e in out.of(ReplySentence)]
    assert "".join("".join(s.split()) for s in sentences) == "".join(ended.text.split())


async def test_idle_talk_starts_when_quiet_and_stops_for_comments(engine, character):
    quiet = character.model_copy(update={"idle": character.idle.model_copy(update={"after_s": 0.2, "cooldown_s": 0.2})})
    source, out = QueueSource(), Collect()
    pipeline = Pipeline(character=quiet, engine=engine, source=source, outputs=[out])
    run = asyncio.create_task(pipeline.run())
    await out.wait_for(lambda: any(e.comment_id.startswith("idle:") for e in out.of(ReplyEnded)))
    topic = next(e for e in out.of(ReplyEnded) if e.comment_id.startswith("idle:")).comment_id[5:]
    assert topic in character.topics
    source.put(comment(1, "来たよ"))
    await out.wait_for(lambda: any(e.comment_id == "c1" for e in out.of(ReplyEnded)))
    source.close()
    await asyncio.wait_for(run, 60)
