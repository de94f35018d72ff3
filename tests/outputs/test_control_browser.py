"""The control panel in headless Chromium, against the real pipeline: every button changes what the
pipeline does, the same commands show on a real mosquitto broker and in the transcript, viewer text
with markup stays text. The outputs are built by their factories, as `aituber run` builds them.

The first test writes the screenshot the README shows (docs/control-panel.png, see DOCS_SCREENSHOT)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from aituber.app import run_pipeline
from aituber.config import IdleConfig, load_character
from aituber.core.comment import Author, Comment, CommentKind
from aituber.core.events import (
    CommandExecuted,
    CommentSkipped,
    ReplyCancelled,
    ReplyEnded,
    ReplyStarted,
    SpeechStarted,
    StatusChanged,
)
from aituber.outputs.base import OutputContext
from aituber.outputs.control import ControlPanel
from aituber.outputs.registry import build_outputs
from aituber.settings import MqttSettings, OverlaySettings, SessionSettings, VoiceRunSettings
from tests.conftest import REPO_ROOT, require_chromium
from tests.outputs.test_overlay_browser import CHROMIUM_ARGS, wait_js
from tests.scripted_engine import ScriptedEngine
from tests.test_pipeline_behaviour import Collect, QueueSource

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOKEN = "panel-test-token"
SCREENSHOT = REPO_ROOT / "test-artifacts" / "control-panel.png"
DOCS_SCREENSHOT = REPO_ROOT / "docs" / "control-panel.png"
"""The README's copy: written when it is missing, or again with AITUBER_UPDATE_SCREENSHOTS=1 (the
test-artifacts copy is written every run, so a test run leaves the checkout as it was)."""
MARKUP_NAME = '<img src=x onerror="window.__pwned=1">荒らし'
MARKUP_TEXT = '<script>window.__pwned=2</script><b>太字</b>にして'


def comment(cid: str, text: str, name: str, channel: str = "", **kw) -> Comment:
    roles = {k: kw.pop(k) for k in ("is_member", "is_moderator", "is_owner") if k in kw}
    return Comment(id=cid, author=Author(name, channel or f"UC-{cid}", **roles), text=text, **kw)


class Session:
    """The outputs as `run_session` builds them (the panel among them), and the pipeline running."""

    def __init__(self, character, engine, tmp_path: Path, broker_port: int | None, voice: str) -> None:
        self.source, self.out, self.announced = QueueSource(), Collect(), []
        settings = SessionSettings(overlay=OverlaySettings(port=0, control_token=TOKEN),
                                   mqtt=MqttSettings(host="127.0.0.1" if broker_port else None,
                                                     port=broker_port or 1883),
                                   voice=VoiceRunSettings(engine=voice), transcript=tmp_path / "t.jsonl", console=False)
        self.context = OutputContext(character, settings, self.announced.append)
        self.outputs = [*build_outputs(self.context), self.out]
        self.panel = next(o for o in self.outputs if isinstance(o, ControlPanel))
        self.task = asyncio.create_task(run_pipeline(character, self.source, engine, self.outputs,
                                                     control=self.context.control, events=self.context.events,
                                                     state=self.context.state))

    async def started(self) -> str:
        async with asyncio.timeout(30):
            while not any(line.startswith("control: ") for line in self.announced):
                if self.task.done():
                    self.task.result()
                await asyncio.sleep(0.02)
        line = next(line for line in self.announced if line.startswith("control: "))
        return line.split()[1]

    def index(self, predicate: Callable[[object], bool]) -> int:
        return next(i for i, e in enumerate(self.out.events) if predicate(e))

    def executed(self, name: str, arg: str | None = None) -> list[CommandExecuted]:
        return [e for e in self.out.of(CommandExecuted) if e.command == name and (arg is None or e.arg == arg)]

    async def stop(self) -> None:
        self.source.close()
        await asyncio.wait_for(self.task, 60)


async def mqtt_commands(port: int, into: list[dict], ready: asyncio.Event) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe("aituber/mika/command", qos=1)
        ready.set()
        async for message in client.messages:
            into.append(json.loads(message.payload))


async def test_every_button_drives_the_pipeline(sample_character, mosquitto, tmp_path):
    chromium = require_chromium()
    playwright = pytest.importorskip("playwright.async_api", reason="needs the playwright package")
    character = load_character(sample_character).character
    # Idle talk after a short quiet spell (switched off first thing, on again at the end).
    character = character.model_copy(update={"idle": IdleConfig(after_s=0.3, cooldown_s=0.0)})
    engine = ScriptedEngine(default="うん、そうだね。")
    on_mqtt: list[dict] = []
    subscribed = asyncio.Event()
    subscriber = asyncio.create_task(mqtt_commands(mosquitto.port, on_mqtt, subscribed))
    await asyncio.wait_for(subscribed.wait(), 10)
    s = Session(character, engine, tmp_path, mosquitto.port, voice="openjtalk")
    out = s.out
    try:
        url = await s.started()
        assert url == s.panel.url and url.endswith(f"/control.html?token={TOKEN}")
        async with playwright.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
                await page.goto(url)
                await wait_js(page, "() => document.body.dataset.state === 'open'")
                await wait_js(page, "() => document.getElementById('idle').getAttribute('aria-pressed') === 'true'")

                # Idle talk off, then pause: nothing new is answered while paused.
                await page.click("#idle")
                await out.wait_for(lambda: s.executed("idle", "off"))
                await page.click("#pause")
                await out.wait_for(lambda: any(e.status == "paused" for e in out.of(StatusChanged)))
                await wait_js(page, "() => document.getElementById('status').dataset.status === 'paused'")
                assert await page.is_disabled("#pause") and not await page.is_disabled("#resume")
                for c in (comment("c1", "こんにちは", "たぬき丸"),
                          comment("c2", "ミカちゃん好きな食べ物は何？", "きつね"),
                          comment("c3", MARKUP_TEXT, MARKUP_NAME, channel="UCtroll"),
                          comment("c4", "もう一回<i>斜体</i>", MARKUP_NAME, channel="UCtroll"),
                          comment("c5", "http://spam.example 見に来て", "宣伝")):
                    s.source.put(c)
                # The queue with scores and why, and the skip with its reason.
                await wait_js(page, "() => document.querySelectorAll('#queue li').length === 4")
                await wait_js(page, "() => document.querySelector('#skips li[data-reason=url]') !== null")
                assert await page.locator("#queue li[data-id=c2] .cp-part[data-part=question]").count() == 1
                assert await page.locator("#queue li[data-id=c2] .cp-part[data-part=mention]").count() == 1
                assert await page.locator("#queue li").first.get_attribute("data-id") == "c2"
                # Markup stays text: shown as written, no element made of it, no script ran.
                assert await page.text_content("#queue li[data-id=c3] .cp-text") == MARKUP_TEXT
                assert await page.text_content("#queue li[data-id=c3] .cp-name") == MARKUP_NAME
                assert await page.locator("#queue img, #queue script, #queue b, #queue i").count() == 0
                assert await page.evaluate("() => window.__pwned") is None
                # Paused: none of the waiting comments was answered meanwhile.
                assert not [e for e in out.of(ReplyStarted) if e.comment_id in ("c1", "c2", "c3", "c4")]
                # The skip filter shows one reason at a time.
                await page.select_option("#skip-filter", "url")
                assert await page.locator("#skips li:not([hidden])").count() == 1

                # Ban (click the name): the viewer's waiting comments leave the queue.
                await page.click("#queue li[data-id=c3] .cp-name")
                await page.click("#menu-ban")
                await out.wait_for(lambda: {e.comment.id for e in out.of(CommentSkipped)
                                            if e.reason == "blocked_viewer"} == {"c3", "c4"})
                await wait_js(page, "() => document.querySelectorAll('#queue li').length === 2")
                await wait_js(page, "() => document.querySelector('#banned li') !== null")
                assert await page.text_content("#banned li span") == MARKUP_NAME
                # Unban from the list.
                await page.click("#banned li button[data-action=unban]")
                await out.wait_for(lambda: s.executed("unban", "UCtroll"))
                await wait_js(page, "() => document.querySelector('#banned li') === null")

                # Answer next: the lowest-scored comment, picked by hand while paused, is answered now.
                await page.click("#queue li[data-id=c1] button[data-action=next]")
                await out.wait_for(lambda: any(e.comment_id == "c1" for e in out.of(ReplyEnded)), 30)
                assert not any(e.comment_id == "c2" for e in out.of(ReplyEnded))

                # An NG word for this session masks a later reply.
                await page.fill("#ng-word", "バナナ")
                await page.press("#ng-word", "Enter")
                await out.wait_for(lambda: s.executed("ng", "バナナ"))
                await wait_js(page, "() => document.getElementById('ng-words').textContent === 'バナナ'")
                engine.add("バナナおいしいよ。")
                await page.click("#resume")
                await out.wait_for(lambda: any(e.comment_id == "c2" for e in out.of(ReplyEnded)), 30)
                (masked,) = [e for e in out.of(ReplyEnded) if e.comment_id == "c2"]
                assert masked.text == "＊＊＊おいしいよ。"
                await wait_js(page, "t => document.querySelector('#now .cp-reply').textContent === t", masked.text)

                # Skip cancels the reply being generated (once it is on screen: the one before it has
                # been spoken; a skip before that withdraws the one still being spoken).
                engine.hold_after(2)
                engine.add("とっても長いお返事をしているところだよ。")
                s.source.put(comment("c6", "長い話して", "うさぎ"))
                await out.wait_for(lambda: any(e.comment_id == "c6" for e in out.of(ReplyStarted)), 30)
                await asyncio.wait_for(engine.holding.wait(), 30)
                await page.click("#skip")
                await out.wait_for(lambda: any(isinstance(e, ReplyCancelled) for e in out.events
                                               [s.index(lambda e: isinstance(e, ReplyStarted)
                                                        and e.comment_id == "c6"):]), 30)
                engine.release()
                await out.wait_for(lambda: any(e.comment_id == "c6" for e in out.of(ReplyEnded)))
                assert [e.stop_reason for e in out.of(ReplyEnded) if e.comment_id == "c6"] == ["cancelled"]

                # Say: the text box.
                await page.fill("#say-text", "マイクテスト中です。")
                await page.click("#say-form button")
                await out.wait_for(lambda: any(e.comment_id == "say" for e in out.of(ReplyEnded)), 30)
                assert [e.text for e in out.of(ReplyEnded) if e.comment_id == "say"] == ["マイクテスト中です。"]

                # Idle talk on: the character brings up a topic once it is quiet. (Off since the first
                # click: an idle reply decided before it may still have been shown after it, but none
                # after c1's, which waited for every reply before it.)
                off = s.index(lambda e: isinstance(e, ReplyStarted) and e.comment_id == "c1")
                await page.click("#idle")
                await out.wait_for(lambda: s.executed("idle", "on"))
                on = s.index(lambda e: isinstance(e, CommandExecuted) and e.command == "idle" and e.arg == "on")
                await out.wait_for(lambda: any(e.comment_id.startswith("idle:") for e in out.events[on:]
                                               if isinstance(e, ReplyStarted)), 30)
                assert not [e for e in out.events[off:on] if isinstance(e, ReplyStarted)
                            and e.comment_id.startswith("idle:")]

                # Warnings of the run show in the panel.
                logging.getLogger("aituber.test").warning("テスト用の警告: VOICEVOX に接続できません")
                await wait_js(page, "() => document.getElementById('errors').textContent.includes('テスト用の警告')")

                # The latency chart has the replies, with first audio from the real voice.
                await out.wait_for(lambda: out.of(SpeechStarted))
                await wait_js(page, "() => Number(document.getElementById('latency').dataset.points) >= 4")
                await wait_js(page, "() => !document.querySelector('[data-series=first_audio_s] b')"
                                    ".textContent.includes('–')", timeout_s=30)

                # For the README: paused, a few comments waiting, a few skipped.
                await page.click("#pause")
                await out.wait_for(lambda: len(s.executed("pause")) == 2)
                for c in (comment("s1", "いつも応援してます！新衣装かわいい", "星見る人", kind=CommentKind.SUPER_CHAT,
                                  amount=1000.0, currency="JPY", is_member=True),
                          comment("s2", "ミカちゃんの好きな星座はなに？", "まる", is_member=True),
                          comment("s3", "初見です", "はじめまして"),
                          comment("s4", "www.example.com で配信中", "宣伝マン"),
                          comment("s5", "バナナの話して", "くだもの")):
                    s.source.put(c)
                await wait_js(page, "() => document.querySelectorAll('#queue li').length === 3")
                await page.select_option("#skip-filter", "")
                await wait_js(page, "() => document.querySelector('#skips li[data-id=s5]') !== null")
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(SCREENSHOT), full_page=True)
                if not DOCS_SCREENSHOT.exists() or os.environ.get("AITUBER_UPDATE_SCREENSHOTS") == "1":
                    shutil.copyfile(SCREENSHOT, DOCS_SCREENSHOT)
            finally:
                await browser.close()
    finally:
        await s.stop()
        subscriber.cancel()
    clicked = ["idle", "pause", "ban", "unban", "next", "ng", "resume", "skip", "say", "idle", "pause"]
    assert [c["command"] for c in on_mqtt] == clicked
    assert all(c["source"] == "panel" and c["ok"] for c in on_mqtt), on_mqtt
    lines = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [line["command"] for line in lines if line["type"] == "command"] == clicked


async def test_the_panel_follows_the_tiny_model(sample_character, tiny_model, tmp_path):
    chromium = require_chromium()
    playwright = pytest.importorskip("playwright.async_api", reason="needs the playwright package")
    from aituber.engine.ct2 import CTranslate2Engine

    character = load_character(sample_character).character
    with CTranslate2Engine(tiny_model, device="cpu", compute_type="float32") as engine:
        s = Session(character, engine, tmp_path, None, voice="none")
        try:
            url = await s.started()
            async with playwright.async_playwright() as p:
                browser = await p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
                try:
                    page = await browser.new_page()
                    response = await page.goto(url.split("?")[0])
                    assert response is not None and response.status == 401
                    await page.goto(url)
                    await wait_js(page, "() => document.body.dataset.state === 'open'")
                    await wait_js(page, "() => document.getElementById('character').textContent === '星乃ミカ'")
                    await page.click("#pause")
                    await s.out.wait_for(lambda: any(e.status == "paused" for e in s.out.of(StatusChanged)))
                    for i in range(3):
                        s.source.put(comment(f"c{i}", f"こんにちは{i}回目", f"viewer{i}"))
                    s.source.put(comment("bad", "しね", "荒らし"))
                    await wait_js(page, "() => document.querySelectorAll('#queue li').length === 3")
                    await wait_js(page, "() => document.querySelector('#skips li[data-reason=ng_word]') !== null")
                    assert not s.out.of(ReplyEnded)
                    await page.click("#resume")
                    await s.out.wait_for(lambda: len(s.out.of(ReplyEnded)) == 3, 60)
                    await wait_js(page, "() => document.querySelectorAll('#queue li').length === 0")
                    await wait_js(page, "() => document.getElementById('latency').dataset.points === '3'")
                    last = s.out.of(ReplyEnded)[-1]
                    await wait_js(page, "t => document.querySelector('#now .cp-reply').textContent === t", last.text)
                finally:
                    await browser.close()
        finally:
            await s.stop()
