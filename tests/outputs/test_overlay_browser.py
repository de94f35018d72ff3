"""The real OverlayServer with a token, in headless Chromium: the served page and an OBS-style
local file both get in with the token (passed from the page URL to the WebSocket), not without."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import pytest

from aituber.core.comment import Author, Comment
from aituber.core.events import CommentSelected, ReplyDelta, ReplyStarted
from aituber.outputs.overlay import OverlayServer
from aituber.paths import overlay_dir
from tests.conftest import require_chromium

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TOKEN = "s3cret-t0ken"


async def wait_js(page, js: str, arg=None, timeout_s: float = 10) -> None:
    """Poll the JS function `js(arg)` from Python until it is truthy: the pages' CSP (no
    'unsafe-eval') breaks Playwright's wait_for_function with string predicates."""
    async with asyncio.timeout(timeout_s):
        while not await page.evaluate(js, arg):
            await asyncio.sleep(0.03)


async def test_page_with_token_connects_and_without_is_refused():
    chromium = require_chromium()
    playwright = pytest.importorskip("playwright.async_api", reason="needs the playwright package")

    overlay = OverlayServer(port=0, token=TOKEN, character={"id": "mika", "name": "星乃ミカ"})
    await overlay.start()
    try:
        async with playwright.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                response = await page.goto(f"http://127.0.0.1:{overlay.port}/index.html?hide=0")
                assert response is not None and response.status == 401

                served = await browser.new_page()
                await served.goto(f"{overlay.url}&hide=0")
                await wait_js(served, "() => document.body.dataset.state === 'open'")

                local = await browser.new_page()
                query = urlencode({"ws": f"ws://127.0.0.1:{overlay.port}/ws", "token": TOKEN, "hide": 0})
                await local.goto((overlay_dir() / "subtitles.html").as_uri() + "?" + query)
                await wait_js(local, "() => document.body.dataset.state === 'open'")

                comment = Comment(id="c1", author=Author("たぬき丸"), text="鍵あり")
                overlay.publish(CommentSelected(comment, "r1", 0.0))
                overlay.publish(ReplyStarted("r1", "c1"))
                overlay.publish(ReplyDelta("r1", "ようこそ"))
                for pg, selector in ((served, "reply-text"), (local, "subs-text")):
                    await wait_js(pg, "id => document.getElementById(id).textContent === 'ようこそ'", selector)
                assert overlay.client_count == 2

                # A local file without the token cannot get in: it keeps retrying, never open.
                stranger = await browser.new_page()
                query = urlencode({"ws": f"ws://127.0.0.1:{overlay.port}/ws", "hide": 0})
                await stranger.goto((overlay_dir() / "index.html").as_uri() + "?" + query)
                await wait_js(stranger, "() => document.body.dataset.state === 'closed'")
                assert overlay.client_count == 2
            finally:
                await browser.close()
    finally:
        await overlay.close()
