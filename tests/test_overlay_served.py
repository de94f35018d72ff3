"""The served overlay page in real headless Chromium, fed by the real pipeline and a tiny model."""

from __future__ import annotations

import json

import ctranslate2
import pytest

from aituber.app import Pipeline
from aituber.config import load_character
from aituber.engine.ct2 import CTranslate2Engine as Engine
from aituber.outputs.overlay import OverlayServer
from aituber.outputs.transcript import TranscriptWriter
from aituber.sources.replay import ReplayChatSource
from tests.conftest import require_chromium

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

# Record every value the reply element takes, to see the reply being typed out.
RECORD_TYPING = """
window.__typed = [];
const target = document.getElementById('reply-text');
new MutationObserver(() => window.__typed.push(target.textContent))
  .observe(target, {childList: true, characterData: true, subtree: true});
"""


async def test_served_page_types_the_reply(tiny_model, sample_character, tmp_path):
    chromium = require_chromium()
    from playwright.async_api import async_playwright

    ctranslate2.set_random_seed(3)
    character = load_character(sample_character).character
    log = tmp_path / "chat.jsonl"
    log.write_text(json.dumps({"id": "c1", "author": "たぬき丸", "text": "ミカちゃんこんばんは！"},
                              ensure_ascii=False) + "\n", encoding="utf-8")
    overlay = OverlayServer(port=0, character={"id": character.id, "name": character.name})
    await overlay.start()
    transcript = TranscriptWriter(tmp_path / "t.jsonl")
    await transcript.start()
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
            page = await browser.new_page()
            await page.goto(f"{overlay.url}?hide=0")
            await page.wait_for_function("document.body.dataset.state === 'open'", timeout=10_000)
            await page.evaluate(RECORD_TYPING)
            with Engine(tiny_model, device="cpu", compute_type="float32") as engine:
                pipeline = Pipeline(character=character, engine=engine,
                                    source=ReplayChatSource(log, fast=True), outputs=[overlay, transcript])
                stats = await pipeline.run()
            assert stats.answered == 1
            await transcript.close()  # its thread has written every line
            reply = next(json.loads(line) for line in (tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()
                         if json.loads(line)["type"] == "reply")
            assert reply["text"], "the tiny model produced an empty reply; pick another seed"
            await page.wait_for_function("t => document.getElementById('reply-text').textContent === t",
                                         arg=reply["text"], timeout=10_000)
            assert await page.text_content("#comment-text") == "ミカちゃんこんばんは！"
            assert await page.text_content("#comment-author") == "たぬき丸"
            typed = [t for t in await page.evaluate("window.__typed") if t]
            # Typed out: the page showed growing prefixes of the reply before the whole of it.
            assert len(set(typed)) > 1
            assert all(reply["text"].startswith(t) for t in typed)
            await browser.close()
    finally:
        await transcript.close()
        await overlay.close()


async def test_static_handler_refuses_paths_outside_the_overlay_folder():
    import asyncio

    overlay = OverlayServer(port=0)
    await overlay.start()
    try:
        async def get(path: str) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", overlay.port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            await writer.drain()
            data = await asyncio.wait_for(reader.read(65536), 5)
            writer.close()
            return data

        assert (await get("/")).startswith(b"HTTP/1.1 200")
        assert b"text/html" in await get("/index.html")
        for bad in ("/../pyproject.toml", "/%2e%2e/pyproject.toml", "/..%2fREADME.md", "/nope.html"):
            assert (await get(bad)).startswith(b"HTTP/1.1 404"), bad
    finally:
        await overlay.close()
