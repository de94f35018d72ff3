"""The voice in the real pipeline (a scripted language model): what is spoken is what is shown,
filtered first; replies never talk over each other; `!skip` stops the speech."""

from __future__ import annotations

import asyncio

import pytest

from aituber.app import Pipeline
from aituber.config import load_character
from aituber.core.commands import Command
from aituber.core.comment import Author, Comment
from aituber.core.events import (
    ReplyCancelled,
    ReplyEnded,
    ReplyStarted,
    SpeechEnded,
    SpeechStarted,
)
from aituber.outputs.base import EventBridge
from aituber.outputs.voice import VoiceOutput
from aituber.voice.base import VoiceSettings
from aituber.voice.openjtalk import OpenJTalkVoice
from tests.test_pipeline_behaviour import Collect, QueueSource
from tests.voice.helpers import RecordingVoice, ScriptedEngine, wait_until

pytestmark = pytest.mark.slow  # the character speaks in real time
NG_WORDS = ("死ね", "消えろ")


@pytest.fixture
def character(sample_character):
    return load_character(sample_character).character


async def speaking_pipeline(character, replies: list[str], **engine_kw):
    """A pipeline whose voice records what reaches its synthesiser; (pipeline, source, out, voice, run)."""
    out, source, bridge = Collect(), QueueSource(), EventBridge()
    voice = RecordingVoice(OpenJTalkVoice(VoiceSettings()))
    output = VoiceOutput(voice, bridge)
    engine = ScriptedEngine(replies, on_call=lambda: len(out.events), **engine_kw)
    pipeline = Pipeline(character=character, engine=engine, source=source, outputs=[out, output])
    bridge.bind(pipeline.emit)
    await output.start()
    runners = [asyncio.create_task(output.run()), asyncio.create_task(pipeline.run())]
    return pipeline, source, out, voice, output, engine, runners


async def finish(source, output, runners) -> None:
    source.close()
    await asyncio.wait_for(runners[1], 60)
    await output.close()
    await asyncio.wait_for(runners[0], 10)


def comment(i: int, text: str = "こんにちは") -> Comment:
    return Comment(id=f"c{i}", author=Author(f"viewer{i}", f"UC{i:022d}"), text=text)


async def test_a_masked_ng_word_is_never_synthesised(character):
    reply = "ねえ聞いて、死ねって言われたの。消えろとか、ひどいよね！"
    pipeline, source, out, voice, output, _, runners = await speaking_pipeline(character, [reply])
    source.put(comment(1, "どうしたの？"))
    await finish(source, output, runners)
    shown = "".join(e.text for e in out.of(SpeechStarted))
    assert "＊＊" in shown and not any(word in shown for word in NG_WORDS)  # masked on screen
    assert voice.texts, "nothing was synthesised"
    for text in voice.texts:
        assert not any(word in text for word in NG_WORDS), text
        assert "＊" not in text and "*" not in text and "アスタリスク" not in text, text
    masked = [e for e in out.of(SpeechStarted) if "＊" in e.text]
    assert masked and all(e.audio is not None for e in masked)  # spoken, with a pause for the word


async def test_a_withdrawn_reply_is_never_spoken_past_the_ng_word(character):
    strict = character.model_copy(update={"moderation": character.moderation.model_copy(
        update={"output_ng_action": "drop"})})
    reply = "こんにちは、ミカだよ。ところで死ねって思うんだ。"
    pipeline, source, out, voice, output, _, runners = await speaking_pipeline(strict, [reply])
    source.put(comment(1))
    await finish(source, output, runners)
    assert out.of(ReplyCancelled) and out.of(ReplyEnded)[0].stop_reason == "filtered"
    assert not any(word in text for text in voice.texts for word in NG_WORDS)
    assert not any("ところで" in e.text for e in out.of(SpeechStarted))
    cancelled_at = out.events.index(out.of(ReplyCancelled)[0])
    assert not any(isinstance(e, SpeechStarted) for e in out.events[cancelled_at:])


async def test_the_next_reply_is_generated_meanwhile_and_shown_once_the_speech_has_ended(character):
    replies = ["一つ目の返事だよ。ちゃんと聞いてね。", "二つ目の返事だよ。"]
    pipeline, source, out, voice, output, engine, runners = await speaking_pipeline(character, replies)
    source.put(comment(1))
    await wait_until(lambda: out.of(SpeechStarted))
    source.put(comment(2, "次のコメント"))
    await finish(source, output, runners)
    events = out.events
    r1_speech_end = max(i for i, e in enumerate(events) if isinstance(e, SpeechEnded) and e.reply_id == "r1")
    r2_start = next(i for i, e in enumerate(events) if isinstance(e, ReplyStarted) and e.reply_id == "r2")
    assert r2_start > r1_speech_end  # presented only when r1 had been heard
    assert engine.calls[1] < r1_speech_end  # ...but generated while r1 was being spoken
    assert [e.reply_id for e in out.of(SpeechStarted)] == sorted(e.reply_id for e in out.of(SpeechStarted))
    assert all(not e.stopped for e in out.of(SpeechEnded))


async def test_skip_stops_the_speech_of_a_finished_reply(character):
    replies = ["これはとても長い返事だよ。最後まで聞いてもらえるかな。まだまだ続くからね。", "次の返事だよ。"]
    pipeline, source, out, voice, output, engine, runners = await speaking_pipeline(character, replies)
    source.put(comment(1))
    await wait_until(lambda: out.of(ReplyEnded) and out.of(SpeechStarted))  # r1 generated, being spoken
    assert pipeline.skip()  # nothing waits behind it: the speech itself is withdrawn
    await wait_until(lambda: out.of(SpeechEnded) and out.of(SpeechEnded)[-1].stopped, 5)
    await asyncio.wait_for(output.drained(), 5)
    said_r1 = [e for e in out.of(SpeechStarted) if e.reply_id == "r1"]
    assert len(said_r1) < 3

    source.put(comment(2))  # r1 was withdrawn: the next reply is presented at once
    await wait_until(lambda: any(e.reply_id == "r2" for e in out.of(SpeechStarted)), 30)
    await finish(source, output, runners)
    assert [e.reply_id for e in out.of(ReplyCancelled)] == ["r1"]
    assert any(e.reply_id == "r2" and not e.stopped for e in out.of(SpeechEnded))


async def test_skip_while_the_next_reply_waits_goes_on_with_it(character):
    replies = ["これはとても長い返事だよ。最後まで聞いてもらえるかな。まだまだ続くからね。", "次の返事だよ。"]
    pipeline, source, out, voice, output, engine, runners = await speaking_pipeline(character, replies)
    source.put(comment(1))
    await wait_until(lambda: out.of(SpeechStarted))
    source.put(comment(2))
    await wait_until(lambda: len(engine.calls) == 2 and pipeline._waiting_on == "r1", 30)
    pipeline.execute(Command("skip", "", "chat"))
    await wait_until(lambda: any(e.reply_id == "r2" for e in out.of(SpeechStarted)), 30)
    stopped = [e for e in out.of(SpeechEnded) if e.reply_id == "r1" and e.stopped]
    assert stopped and out.of(ReplyCancelled)[0].reply_id == "r1"
    await finish(source, output, runners)
