"""The voice in headless Chromium: the real pipeline (a scripted language model), the real overlay
server and the embedded voice, heard by the served page. Measured in the page (performance.now()):
clauses play in order, each subtitle appears as its audio starts, `!skip` stops the audio, a page that
reconnects does not play old audio again."""

from __future__ import annotations

import asyncio

import pytest

from aituber.app import Pipeline
from aituber.config import load_character
from aituber.core.commands import Command
from aituber.core.comment import Author, Comment
from aituber.core.events import ReplyCancelled, SpeechEnded, SpeechStarted
from aituber.outputs.base import EventBridge
from aituber.outputs.overlay import OverlayServer
from aituber.outputs.voice import VoiceOutput
from aituber.voice.base import VoiceSettings
from aituber.voice.openjtalk import OpenJTalkVoice
from tests.conftest import require_chromium
from tests.outputs.test_overlay_browser import CHROMIUM_ARGS, wait_js
from tests.test_pipeline_behaviour import Collect, QueueSource
from tests.voice.helpers import ScriptedEngine, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

R1 = "こんにちは、ミカだよ。今日はいい天気だね！"
R2 = "これはとっても長いお話なんだけど、最後まで聞いてくれるかな。まだまだ続くよ。"
R3 = "一つ目の文だよ。二つ目の文だよ。三つ目の文だよ。"
SPEECH = "() => window.__overlay.speech"


def entries(log: list[dict], reply_id: str) -> list[dict]:
    return [e for e in log if e["replyId"] == reply_id]


def said(out: Collect, kind: type, reply_id: str) -> list:
    return [e for e in out.of(kind) if e.reply_id == reply_id]


async def test_the_page_plays_the_voice_with_its_subtitles(sample_character):
    chromium = require_chromium()
    playwright = pytest.importorskip("playwright.async_api", reason="needs the playwright package")
    character = load_character(sample_character).character
    overlay = OverlayServer(port=0, character={"id": "mika", "name": "星乃ミカ"})
    bridge, out, source = EventBridge(), Collect(), QueueSource()
    voice = VoiceOutput(OpenJTalkVoice(VoiceSettings()), bridge)
    pipeline = Pipeline(character=character, engine=ScriptedEngine([R1, R2, R3]), source=source,
                        outputs=[out, overlay, voice])
    bridge.bind(pipeline.emit)
    await overlay.start()
    await voice.start()
    runners = [asyncio.create_task(voice.run()), asyncio.create_task(pipeline.run())]
    try:
        async with playwright.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(chromium),
                                              args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"])
            try:
                page = await browser.new_page()
                await page.goto(f"{overlay.url}?hide=0")
                await wait_js(page, "() => document.body.dataset.state === 'open'")
                await wait_until(lambda: any(c.audio for c in overlay._clients), 10)

                # 1. In order, each subtitle as its audio starts.
                source.put(Comment(id="c1", author=Author("たぬき丸"), text="こんにちは！"))
                await wait_until(lambda: said(out, SpeechEnded, "r1") and len(said(out, SpeechEnded, "r1"))
                                 == len(said(out, SpeechStarted, "r1")) and pipeline._reply_task is None, 60)
                await wait_js(page, "n => window.__overlay.speech.filter(e => e.replyId === 'r1' && e.endedAt)"
                                    ".length === n", len(said(out, SpeechStarted, "r1")), 15)
                log = entries(await page.evaluate(SPEECH), "r1")
                assert [e["index"] for e in log] == list(range(len(log))) and len(log) == 3
                assert [e["text"] for e in log] == ["こんにちは、", "ミカだよ。", "今日はいい天気だね！"]
                for e in log:
                    assert e["audible"], e
                    assert abs(e["subtitleAt"] - e["audioAt"]) <= 100, e
                    assert e["endedAt"] - e["startedAt"] >= e["duration"] * 1000 - 60, e  # played whole
                for before, after in zip(log, log[1:]):
                    assert after["startedAt"] >= before["endedAt"] - 1, (before, after)  # never over each other
                assert await page.evaluate("() => document.getElementById('reply-text').textContent") == R1

                # 2. !skip stops the audio and drops the queued clauses.
                source.put(Comment(id="c2", author=Author("たぬき丸"), text="お話して"))
                await wait_js(page, "() => window.__overlay.speech.some(e => e.replyId === 'r2' && e.audible)", None, 60)
                pipeline.execute(Command("skip", "", "chat"))
                await wait_js(page, "() => window.__overlay.speech.some(e => e.replyId === 'r2' && e.stopped"
                                    " && e.endedAt)", None, 10)
                log = entries(await page.evaluate(SPEECH), "r2")
                stopped = next(e for e in log if e["stopped"] and e["startedAt"] is not None)
                assert stopped["endedAt"] - stopped["stopReceivedAt"] <= 200
                assert stopped["endedAt"] < stopped["startedAt"] + stopped["duration"] * 1000 - 100  # cut short
                assert not [e for e in log if e["startedAt"] and e["startedAt"] > stopped["stopReceivedAt"]]
                assert [e.reply_id for e in out.of(ReplyCancelled)] == ["r2"]

                # 3. A page that reconnects mid-reply does not play old audio again.
                source.put(Comment(id="c3", author=Author("たぬき丸"), text="三つ言って"))
                await wait_js(page, "() => window.__overlay.speech.some(e => e.replyId === 'r3' && e.audible)", None, 60)
                for client in list(overlay._clients):
                    await client.connection.close()
                await wait_js(page, "() => document.body.dataset.state !== 'open'", None, 10)
                await wait_js(page, "() => document.body.dataset.state === 'open'", None, 15)
                source.close()
                await asyncio.wait_for(runners[1], 60)  # the run ends once r3 has been heard
                await wait_js(page, "n => window.__overlay.speech.filter(e => e.replyId === 'r3' && e.endedAt)"
                                    ".length >= n", 1, 15)
                log = entries(await page.evaluate(SPEECH), "r3")
                indices = [e["index"] for e in log]
                assert len(indices) == len(set(indices)), log  # nothing played twice
                assert len(said(out, SpeechStarted, "r3")) == 3
                shown = await page.evaluate("() => document.getElementById('reply-text').textContent")
                assert R3.startswith(shown) and shown  # what was spoken, not more
            finally:
                await browser.close()
    finally:
        source.close()
        await voice.close()
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        await overlay.close()
