"""The voice output on its own: clauses in order, back-pressure, withdrawn replies, and the faults of a
VOICEVOX-compatible engine (a real process on loopback): down at start, killed mid-reply, slow, 500s."""

from __future__ import annotations

import asyncio
import logging

import pytest

from aituber.core.events import (
    ReplyCancelled,
    RunEnded,
    SpeechEnded,
    SpeechStarted,
    VoiceStatus,
)
from aituber.outputs.voice import VoiceOutput
from aituber.voice.base import VoiceSettings
from aituber.voice.openjtalk import OpenJTalkVoice
from aituber.voice.voicevox import VoicevoxVoice
from tests.voice.conftest import Fanout, free_port
from tests.voice.helpers import RecordingVoice, say, wait_until

pytestmark = pytest.mark.slow  # the character speaks in real time


async def running(engine, **kw) -> tuple[VoiceOutput, Fanout, asyncio.Task]:
    fan = Fanout()
    output = VoiceOutput(engine, fan, retry_min_s=0.2, retry_max_s=0.5, **kw)
    fan.outputs.append(output)  # it sees its own events, as in the pipeline
    await output.start()
    return output, fan, asyncio.create_task(output.run())


async def stop(output: VoiceOutput, runner: asyncio.Task) -> None:
    await output.close()
    await asyncio.wait_for(runner, 10)


def started(fan: Fanout, reply_id: str) -> list[SpeechStarted]:
    return [e for e in fan.of(SpeechStarted) if e.reply_id == reply_id]


async def test_clauses_play_in_order_and_drained_waits_for_the_end():
    voice = RecordingVoice(OpenJTalkVoice(VoiceSettings()))
    output, fan, runner = await running(voice)
    text = "こんにちは、ミカだよ。今日はいい天気だね！また来てね"
    say(fan, "r1", text)
    await asyncio.wait_for(output.drained(), 60)
    spoken = started(fan, "r1")
    assert [e.index for e in spoken] == list(range(len(spoken))) and len(spoken) >= 3
    assert "".join(e.text for e in spoken) == text  # the subtitles are the reply, whole
    assert all(e.audio is not None and e.duration_s > 0.3 for e in spoken)
    ended = [e for e in fan.of(SpeechEnded) if e.reply_id == "r1"]
    assert len(ended) == len(spoken) and not any(e.stopped for e in ended)
    for before, after in zip(ended, spoken[1:]):  # the next clause starts once the one before has played
        assert after.started_at >= before.ended_at - 0.001
    assert all(e.ended_at - e.started_at >= e.duration_s - 0.02 for e in ended)
    assert voice.texts[0] == "こんにちは"  # the first clause is short, so the voice starts early
    await stop(output, runner)


async def test_a_withdrawn_reply_stops_and_drained_returns():
    output, fan, runner = await running(OpenJTalkVoice(VoiceSettings()))
    say(fan, "r1", "一つ目の文はちょっと長めにしておくね。二つ目の文だよ。三つ目の文だよ。")
    await wait_until(lambda: started(fan, "r1"))
    fan(ReplyCancelled("r1", "cancelled"))
    await asyncio.wait_for(output.drained(), 5)
    ended = [e for e in fan.of(SpeechEnded) if e.reply_id == "r1"]
    assert ended[0].stopped and len(started(fan, "r1")) == 1  # the queued clauses were dropped
    assert ended[0].ended_at - ended[0].started_at < ended[0].duration_s
    await stop(output, runner)


async def test_a_reply_cut_at_its_last_sentence_does_not_say_the_cut_part():
    output, fan, runner = await running(OpenJTalkVoice(VoiceSettings()))
    say(fan, "r1", "これは言うよ。これは切られ", ended_text="これは言うよ。", stop_reason="length")
    await asyncio.wait_for(output.drained(), 30)
    assert [e.text for e in started(fan, "r1")] == ["これは言うよ。"]
    await stop(output, runner)


async def test_an_interrupted_run_stops_at_once():
    output, fan, runner = await running(OpenJTalkVoice(VoiceSettings()))
    say(fan, "r1", "しばらく話し続けるよ。まだまだ話すよ。")
    await wait_until(lambda: started(fan, "r1"))
    fan(RunEnded(1, 1, {}, interrupted=True))
    await asyncio.wait_for(output.close(), 5)
    await asyncio.wait_for(runner, 5)
    assert len(started(fan, "r1")) == 1


@pytest.mark.slow
async def test_engine_down_at_start_is_text_only_with_one_warning_then_speaks(voicevox_factory, caplog):
    caplog.set_level(logging.DEBUG, logger="aituber.outputs.voice")
    port = free_port()
    output, fan, runner = await running(VoicevoxVoice(VoiceSettings(engine="voicevox", url=f"http://127.0.0.1:{port}")))
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "text-only" in warnings[0].getMessage() and "retried" in warnings[0].getMessage()
    await wait_until(lambda: fan.of(VoiceStatus))
    assert fan.of(VoiceStatus)[0].available is False
    say(fan, "r1", "聞こえないけど、字幕は出るよ。")
    await asyncio.wait_for(output.drained(), 10)
    silent = started(fan, "r1")
    assert "".join(e.text for e in silent) == "聞こえないけど、字幕は出るよ。"
    assert all(e.audio is None and e.silent_reason == "unavailable" for e in silent)
    await asyncio.sleep(1.2)  # a few retries pass: they are not warnings
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1

    voicevox_factory(port=port)  # the engine comes up
    await wait_until(lambda: fan.of(VoiceStatus)[-1].available)
    say(fan, "r2", "やっと声が出たよ。")
    await asyncio.wait_for(output.drained(), 30)
    assert all(e.audio is not None for e in started(fan, "r2"))
    await stop(output, runner)


@pytest.mark.slow
async def test_engine_killed_mid_reply_text_goes_on_and_voice_comes_back(voicevox_factory):
    engine = voicevox_factory()
    output, fan, runner = await running(VoicevoxVoice(VoiceSettings(engine="voicevox", url=engine.url)))
    text = "一つ目の文だよ。二つ目の文だよ。三つ目の文だよ。四つ目の文だよ。五つ目の文だよ。"
    say(fan, "r1", text)
    await wait_until(lambda: any(e.audio for e in started(fan, "r1")))
    engine.kill()
    await asyncio.wait_for(output.drained(), 30)
    clauses = started(fan, "r1")
    assert "".join(e.text for e in clauses) == text  # the text went on
    assert clauses[0].audio is not None and any(e.silent_reason == "unavailable" for e in clauses)
    assert fan.of(VoiceStatus)[-1].available is False

    engine.start()
    await wait_until(lambda: fan.of(VoiceStatus)[-1].available)
    say(fan, "r2", "ただいま、戻ってきたよ。")
    await asyncio.wait_for(output.drained(), 30)
    assert all(e.audio is not None for e in started(fan, "r2"))
    await stop(output, runner)


@pytest.mark.slow
async def test_slow_synthesis_is_abandoned_and_500s_cost_one_clause(voicevox_factory):
    slow = voicevox_factory(delay_s=3.0)
    output, fan, runner = await running(VoicevoxVoice(VoiceSettings(engine="voicevox", url=slow.url)), timeout_s=0.5)
    say(fan, "r1", "おそいね。")
    await asyncio.wait_for(output.drained(), 10)
    assert [e.silent_reason for e in started(fan, "r1")] == ["timeout"]
    assert [s.available for s in fan.of(VoiceStatus)] == [True]  # slow is not down
    await stop(output, runner)

    failing = voicevox_factory(fail_text="エラー")
    output, fan, runner = await running(VoicevoxVoice(VoiceSettings(engine="voicevox", url=failing.url)))
    say(fan, "r1", "ここでエラーが出るよ。でも次は大丈夫。")
    await asyncio.wait_for(output.drained(), 30)
    clauses = started(fan, "r1")
    assert [e.silent_reason for e in clauses] == ["error", ""] and clauses[1].audio is not None
    assert [s.available for s in fan.of(VoiceStatus)] == [True]
    await stop(output, runner)
