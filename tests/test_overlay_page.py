"""Browser tests of the OBS overlay pages in obs_overlay/ (index, subtitles, history).

Self-contained: obs_overlay/ is served by a tiny http.server thread, and a scripted
`websockets` server (in its own thread and event loop) plays the bot's side of the protocol.
Debian's chromium is driven with the sync Playwright API; no browser is ever downloaded.
"""

from __future__ import annotations

import asyncio
import json
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "needs Debian chromium at /usr/bin/chromium (apt-get install chromium); "
        "Playwright's own browser download is never used",
        allow_module_level=True,
    )
playwright_sync = pytest.importorskip(
    "playwright.sync_api", reason="needs the playwright Python package (pip install playwright)"
)
pytest.importorskip("websockets", reason="needs the websockets package")
from websockets.asyncio.server import serve  # noqa: E402

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
OVERLAY = REPO / "obs_overlay"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 10_000
VIEWPORT = {"width": 1280, "height": 720}

CHARACTER = {"id": "mika", "name": "星乃ミカ"}
STATE_IDLE = {"type": "state", "version": 1, "character": CHARACTER, "current": None}


def author(name: str, **roles: bool) -> dict[str, Any]:
    base = {"name": name, "channel_id": "UCxxxx", "owner": False, "moderator": False}
    return base | {"member": False, "verified": False} | roles


def comment(cid: str, name: str, text: str, kind: str = "text", amount=None, currency=None, **roles):
    return {
        "id": cid,
        "author": author(name, **roles),
        "text": text,
        "kind": kind,
        "amount": amount,
        "currency": currency,
    }


def reply_script(rid: str, com: dict[str, Any], deltas: list[str], stop: str = "stop") -> list[dict]:
    """A whole reply as the bot sends it: selected, start, deltas (+ sentences), end."""
    ts = 1764300000.0
    msgs: list[dict] = [
        {"type": "comment_selected", "reply_id": rid, "comment": com, "ts": ts},
        {"type": "reply_start", "reply_id": rid, "comment_id": com["id"], "ts": ts},
    ]
    msgs += [{"type": "reply_delta", "reply_id": rid, "text": d, "ts": ts} for d in deltas]
    full = "".join(deltas)
    msgs.append({"type": "reply_sentence", "reply_id": rid, "text": full, "ts": ts})
    msgs.append({"type": "reply_end", "reply_id": rid, "text": full, "stop_reason": stop, "ts": ts})
    return msgs


# ---------------------------------------------------------------------------- servers


class ScriptedWsServer:
    """A websockets server on 127.0.0.1 in a background thread with its own event loop.

    Each new client on /ws first gets `greeting` frames; send() broadcasts to all clients.
    """

    def __init__(self, port: int = 0, greeting: list[dict] | None = None) -> None:
        self.greeting = list(greeting if greeting is not None else [STATE_IDLE])
        self.clients: set[Any] = set()
        self.paths: list[str] = []
        """The request path (with query) of every WebSocket handshake."""
        self.ready = 0
        """Clients that got the greeting and receive broadcasts."""
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ws-server", daemon=True)
        self.thread.start()
        try:
            self.server = self._run(self._start(port))
        except BaseException:
            self._stop_loop()
            raise
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/ws"

    def _run(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self, port: int):
        return await serve(self._handler, "127.0.0.1", port)

    async def _handler(self, ws) -> None:
        self.paths.append(ws.request.path)
        if ws.request.path.split("?", 1)[0] != "/ws":
            await ws.close(1008, "wrong path")
            return
        try:
            for msg in self.greeting:
                await ws.send(json.dumps(msg, ensure_ascii=False))
            self.clients.add(ws)
            self.ready += 1
            await ws.wait_closed()
        finally:
            self.clients.discard(ws)

    def wait_client(self, count: int = 1, timeout: float = 10) -> None:
        """Wait until `count` clients in all have connected and been greeted."""
        deadline = time.monotonic() + timeout
        while self.ready < count:
            assert time.monotonic() < deadline, "the page did not connect to the WebSocket server"
            time.sleep(0.02)

    def send(self, *msgs: dict | str) -> None:
        async def go() -> None:
            for msg in msgs:
                data = msg if isinstance(msg, str) else json.dumps(msg, ensure_ascii=False)
                for ws in list(self.clients):
                    await ws.send(data)

        self._run(go())

    def stop(self) -> None:
        if self.loop.is_closed():
            return

        async def go() -> None:
            self.server.close()
            await self.server.wait_closed()

        try:
            self._run(go())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(OVERLAY)))
    thread = threading.Thread(target=httpd.serve_forever, name="overlay-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    ctx.on("weberror", lambda e: errors.append(str(e.error)))
    ctx.page_errors = errors  # type: ignore[attr-defined]
    try:
        yield ctx
        assert not errors, f"uncaught errors in the page: {errors}"
    finally:
        ctx.close()


@pytest.fixture
def page(context):
    pg = context.new_page()
    pg.console_lines = []  # type: ignore[attr-defined]
    pg.on("console", lambda m: pg.console_lines.append((m.type, m.text)))
    return pg


@pytest.fixture
def ws_server() -> Iterator[ScriptedWsServer]:
    server = ScriptedWsServer()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------- helpers


def open_page(page, http_base: str, name: str, server: ScriptedWsServer, **params: Any) -> None:
    query = {"ws": server.url} | {k: str(v) for k, v in params.items()}
    before = server.ready
    page.goto(f"{http_base}/{name}?{urlencode(query)}")
    wait_state(page, "open")
    server.wait_client(before + 1)


def wait_for(page, js: str, arg: Any = None, timeout_ms: int = WAIT_MS, what: str = "") -> Any:
    """Poll the JS function `js(arg)` until it returns something truthy.

    Polls from Python with page.evaluate, because the pages' Content-Security-Policy (no
    'unsafe-eval') blocks Playwright's in-page wait_for_function with string predicates.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        value = page.evaluate(js, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_ms} ms waiting for {what or js}")
        time.sleep(0.03)


def wait_state(page, *states: str) -> None:
    wait_for(
        page,
        "states => states.includes(document.body.dataset.state)",
        list(states),
        what=f"state in {states} (have {page.evaluate('document.body.dataset.state')!r})",
    )


def text_of(page, selector: str) -> str | None:
    return page.evaluate(
        "sel => { const e = document.querySelector(sel); return e ? e.textContent : null; }",
        selector,
    )


def wait_text(page, selector: str, want: str) -> None:
    try:
        wait_for(
            page,
            "([sel, want]) => { const e = document.querySelector(sel); return !!e && e.textContent === want; }",
            [selector, want],
        )
    except AssertionError:
        raise AssertionError(f"{selector}: want {want!r}, have {text_of(page, selector)!r}") from None


def read_png_rgba(data: bytes) -> tuple[int, int, list[bytearray]]:
    """Decode an 8-bit RGBA (or RGB) non-interlaced PNG: (width, height, rows of RGBA bytes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, bytearray(), None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    assert header is not None, "PNG without IHDR"
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, f"unsupported PNG {header}"
    bpp = 4 if color == 6 else 3
    stride = width * bpp
    raw = zlib.decompress(bytes(idat))
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        ftype = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        if ftype == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif ftype == 2:  # Up
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif ftype == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:  # Paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        else:
            assert ftype == 0, f"bad PNG filter {ftype}"
        rows.append(line)
        prev = line
    if bpp == 3:
        rows = [
            bytearray(b for x in range(width) for b in (*row[3 * x : 3 * x + 3], 255)) for row in rows
        ]
    return width, height, rows


def alpha_at(rows: list[bytearray], x: int, y: int) -> int:
    return rows[y][4 * x + 3]


# ---------------------------------------------------------------------------- tests


def test_deltas_render_in_order(page, http_base, ws_server):
    open_page(page, http_base, "index.html", ws_server, hide=0)
    com = comment("c1", "たぬき丸", "こんにちは")
    script = reply_script("r1", com, ["こん", "にち", "は！"])
    ws_server.send(*script[:2])
    wait_text(page, "#comment-author", "たぬき丸")
    assert text_of(page, "#comment-text") == "こんにちは"
    assert text_of(page, "#reply-name") == "星乃ミカ"

    ws_server.send(script[2])
    wait_text(page, "#reply-text", "こん")
    # A delta for another reply is ignored.
    ws_server.send({"type": "reply_delta", "reply_id": "r0", "text": "XX", "ts": 0})
    ws_server.send(*script[3:5])
    wait_text(page, "#reply-text", "こんにちは！")
    assert page.evaluate("document.querySelector('#reply').classList.contains('is-streaming')")

    ws_server.send(*script[5:])
    wait_for(page, "() => !document.querySelector('#reply').classList.contains('is-streaming')")
    assert text_of(page, "#reply-text") == "こんにちは！"
    assert page.is_visible("#comment") and page.is_visible("#reply")
    assert page.get_attribute("#overlay", "data-visible") == "true"
    stats = page.evaluate("window.__overlay")
    assert stats["lastReply"] == "こんにちは！"
    assert stats["messages"] == 1 + len(script) + 1  # greeting, the script, the stray delta


def test_comment_and_name_are_plain_text(page, http_base, ws_server):
    open_page(page, http_base, "index.html", ws_server, hide=0)
    img = '<img src=x onerror="window.__pwned=1">'
    script_tag = "<script>window.__pwned=1</script>"
    ws_server.send(
        *reply_script("r1", comment("c1", img, script_tag, "super_chat", 500, "JPY"), [img, script_tag])
    )
    wait_text(page, "#reply-text", img + script_tag)
    assert text_of(page, "#comment-author") == img
    assert text_of(page, "#comment-text") == script_tag
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#comment img, #comment script, #reply img, #reply script").count() == 0
    # the badge shows the amount, not markup
    assert text_of(page, "#comment-badge") == "￥500"


def test_badges_by_kind_and_tier(page, http_base, ws_server):
    open_page(page, http_base, "index.html", ws_server, hide=0)
    cases = [
        (comment("c1", "a", "x", "super_chat", 100, "JPY"), "blue", "￥100"),
        (comment("c2", "b", "x", "super_chat", 1000, "JPY"), "yellow", "￥1,000"),
        (comment("c3", "c", "x", "super_chat", 2000, "JPY"), "orange", "￥2,000"),
        (comment("c4", "d", "x", "super_sticker", 5000, "JPY"), "magenta", "￥5,000"),
        (comment("c5", "e", "x", "super_chat", 10000, "JPY"), "red", "￥10,000"),
        (comment("c6", "f", "x", "super_chat", 100, "USD"), "red", "$100.00"),
        (comment("c7", "g", "x", "membership"), "member", "メンバー"),
    ]
    for i, (com, tier, label) in enumerate(cases):
        ws_server.send({"type": "comment_selected", "reply_id": f"r{i}", "comment": com, "ts": 0})
        wait_text(page, "#comment-author", com["author"]["name"])
        assert page.get_attribute("#comment-badge", "data-tier") == tier, com
        assert text_of(page, "#comment-badge") == label
    ws_server.send({"type": "comment_selected", "reply_id": "r9", "comment": comment("c9", "h", "x"), "ts": 0})
    wait_text(page, "#comment-author", "h")
    assert not page.is_visible("#comment-badge")


def test_reconnects_on_the_same_port(page, http_base, ws_server):
    open_page(page, http_base, "index.html", ws_server, hide=0)
    backoff = page.evaluate("[0, 1, 2, 3, 4, 5, 6].map(window.AituberOverlay.backoffMs)")
    assert backoff == [500, 1000, 2000, 4000, 8000, 10000, 10000]
    ws_server.send(*reply_script("r1", comment("c1", "一人目", "やあ"), ["最初の", "返事"]))
    wait_text(page, "#reply-text", "最初の返事")

    port = ws_server.port
    ws_server.stop()
    wait_state(page, "closed", "connecting")

    second = ScriptedWsServer(port=port)
    try:
        wait_state(page, "open")
        second.wait_client()
        second.send(*reply_script("r2", comment("c2", "二人目", "おかえり"), ["また", "会えたね"]))
        wait_text(page, "#reply-text", "また会えたね")
        assert text_of(page, "#comment-author") == "二人目"
    finally:
        second.stop()


def test_state_on_connect_shows_reply_so_far(page, http_base):
    current = {"comment": comment("c7", "ねこ", "今日の天気は？"), "reply_id": "r7", "text": "今日は晴れ"}
    server = ScriptedWsServer(greeting=[{"type": "state", "version": 1, "character": CHARACTER, "current": current}])
    try:
        open_page(page, http_base, "index.html", server, hide=0)
        wait_text(page, "#reply-text", "今日は晴れ")
        assert text_of(page, "#comment-author") == "ねこ"
        assert text_of(page, "#comment-text") == "今日の天気は？"
        server.send({"type": "reply_delta", "reply_id": "r7", "text": "だよ！", "ts": 0})
        wait_text(page, "#reply-text", "今日は晴れだよ！")
        server.send({"type": "reply_cancelled", "reply_id": "r7", "reason": "skip", "ts": 0})
        wait_text(page, "#reply-text", "")
        assert not page.is_visible("#reply")
        # The reply_end that follows a cancel does not bring the withdrawn text back.
        server.send({"type": "reply_end", "reply_id": "r7", "text": "今日は晴れだよ！", "stop_reason": "cancelled",
                     "ts": 0}, {"type": "status", "status": "paused", "ts": 0})
        wait_for(page, "() => document.body.dataset.status === 'paused'")
        assert text_of(page, "#reply-text") == "" and not page.is_visible("#reply")
    finally:
        server.stop()


def test_token_passes_through_to_the_websocket(page, http_base, ws_server):
    open_page(page, http_base, "index.html", ws_server, token="t0k-en_1", hide=0)
    assert ws_server.paths[-1] == "/ws?token=t0k-en_1&audio=1"  # the page plays the voice by default
    ws_server.send(*reply_script("r1", comment("c1", "鍵", "トークン付き"), ["届いた"]))
    wait_text(page, "#reply-text", "届いた")
    resolve = """([search, href]) => {
        const u = new URL(href);
        return window.AituberOverlay.resolveWsUrl(search, {href, protocol: u.protocol, host: u.host, search});
    }"""
    cases = [
        ("?token=abc", "http://192.168.1.10:8765/index.html?token=abc", "ws://192.168.1.10:8765/ws?token=abc"),
        ("?token=abc", "https://obs.example/?token=abc", "wss://obs.example/ws?token=abc"),
        ("?ws=ws://h:1/ws&token=abc", "file:///o/index.html", "ws://h:1/ws?token=abc"),
        ("?ws=ws%3A%2F%2Fh%3A1%2Fws%3Ftoken%3Down&token=abc", "file:///o/index.html", "ws://h:1/ws?token=own"),
        ("", "http://127.0.0.1:8765/", "ws://127.0.0.1:8765/ws"),
        ("?token=", "http://127.0.0.1:8765/", "ws://127.0.0.1:8765/ws"),
        ("?token=abc", "file:///o/index.html", None),
    ]
    for search, href, want in cases:
        assert page.evaluate(resolve, [search, href]) == want, (search, href)


def test_hides_after_silence(page, http_base, ws_server):
    open_page(page, http_base, "index.html", ws_server, hide=1)
    assert page.get_attribute("#overlay", "data-visible") == "false"
    ws_server.send(*reply_script("r1", comment("c1", "うさぎ", "おやすみ"), ["おやすみ！"]))
    wait_text(page, "#reply-text", "おやすみ！")
    wait_for(page, "() => document.querySelector('#overlay').dataset.visible === 'false'", timeout_ms=5000)
    ws_server.send({"type": "comment_selected", "reply_id": "r2", "comment": comment("c2", "きつね", "おはよう"), "ts": 0})
    wait_for(page, "() => document.querySelector('#overlay').dataset.visible === 'true'")


def test_screenshot_background_is_transparent(page, http_base, ws_server):
    open_page(page, http_base, "index.html", ws_server, hide=0)
    com = comment("c1", "たぬき丸", "ミカちゃん、初見です！配信いつも楽しみにしてます", "super_chat", 2000, "JPY", member=True)
    deltas = ["初見さん", "いらっしゃい！", "スパチャ", "ありがとう〜！", "ゆっくりしていってね。"]
    ws_server.send(*reply_script("r1", com, deltas))
    wait_text(page, "#reply-text", "".join(deltas))
    for sel in ("html", "body"):
        bg = page.evaluate(f"getComputedStyle(document.querySelector('{sel}')).backgroundColor")
        assert bg in ("rgba(0, 0, 0, 0)", "transparent"), (sel, bg)

    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / "overlay.png"
    png = page.screenshot(path=str(out), omit_background=True, animations="disabled")
    assert out.read_bytes() == png
    width, height, rows = read_png_rgba(png)
    assert (width, height) == (VIEWPORT["width"], VIEWPORT["height"])
    for x, y in ((0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1), (width // 2, 10)):
        assert alpha_at(rows, x, y) == 0, f"pixel {(x, y)} is not transparent"
    # The reply card itself is drawn, and its panel is translucent.
    box = page.locator("#reply").bounding_box()
    assert box is not None
    a = alpha_at(rows, int(box["x"]) + 24, int(box["y"] + box["height"]) - 8)
    assert 120 < a < 255, f"reply panel alpha {a}"
    assert any(row[4 * x + 3] == 255 for row in rows[int(box["y"]) :] for x in range(0, width, 4))


def test_subtitles_and_history(context, http_base, ws_server):
    subs = context.new_page()
    hist = context.new_page()
    open_page(subs, http_base, "subtitles.html", ws_server, hide=0)
    open_page(hist, http_base, "history.html", ws_server, n=2)

    ws_server.send(*reply_script("r1", comment("c1", "一番", "最初"), ["ひとつめ"]))
    ws_server.send(*reply_script("r2", comment("c2", "<b>二番</b>", "<i>二つ目</i>", "super_chat", 10000, "JPY"), ["ふた", "つめ"]))
    wait_text(subs, "#subs-text", "ふたつめ")
    assert subs.get_attribute("#subs", "data-visible") == "true"

    wait_for(hist, "() => document.querySelectorAll('#history > li').length === 2")
    first = hist.locator("#history > li").first
    assert first.locator(".ov-author").text_content() == "<b>二番</b>"
    assert first.locator(".ov-comment-text").text_content() == "<i>二つ目</i>"
    assert first.locator(".ov-entry-reply").text_content() == "星乃ミカふたつめ"
    assert first.locator(".ov-entry-speaker").text_content() == "星乃ミカ"
    assert first.get_attribute("data-tier") == "red"
    assert hist.locator("#history b, #history i").count() == 0

    # A third answer pushes the oldest out (n=2); a cancelled one never shows up.
    ws_server.send(*reply_script("r3", comment("c3", "三番", "三つ目"), ["みっつめ"]))
    ws_server.send(*reply_script("r4", comment("c4", "四番", "取り消し"), ["途中"], stop="cancelled"))
    ws_server.send(*reply_script("r5", comment("c5", "五番", "最後"), ["いつつめ"])[:3])
    ws_server.send({"type": "reply_cancelled", "reply_id": "r5", "ts": 0})
    wait_text(subs, "#subs-text", "")
    names = hist.locator("#history .ov-author").all_text_contents()
    assert names == ["三番", "<b>二番</b>"]
    assert hist.evaluate("window.__overlay.messages") == subs.evaluate("window.__overlay.messages")


def test_local_file_needs_ws_param(page, ws_server):
    page.goto((OVERLAY / "index.html").as_uri())
    wait_state(page, "closed")
    deadline = time.monotonic() + 5
    while not any(t == "warning" and "?ws=" in s for t, s in page.console_lines):
        assert time.monotonic() < deadline, f"no console warning: {page.console_lines}"
        page.wait_for_timeout(50)
    assert not page.is_visible("#comment") and not page.is_visible("#reply")

    # With ?ws= it works from file:// too (classic scripts, CSP allows ws:).
    page.goto((OVERLAY / "index.html").as_uri() + "?" + urlencode({"ws": ws_server.url, "hide": 0}))
    wait_state(page, "open")
    ws_server.wait_client(1)
    ws_server.send(*reply_script("r1", comment("c1", "ローカル", "file://"), ["動いた"]))
    wait_text(page, "#reply-text", "動いた")


def test_url_parameters_apply(page, http_base, ws_server):
    open_page(page, http_base, "index.html", ws_server, theme="light", font=40, pos="top", lines=2, hide=0)
    assert page.evaluate("document.body.dataset.theme") == "light"
    assert page.evaluate("document.body.dataset.pos") == "top"
    assert page.evaluate("getComputedStyle(document.querySelector('#reply-text')).fontSize") == "40px"
    long_reply = ["とても長い返事です。" * 3, "\n二行目。", "\n三行目。", "\n四行目。", "\n五行目。"]
    ws_server.send(*reply_script("r1", comment("c1", "ながい", "長文お願い"), long_reply))
    wait_text(page, "#reply-text", "".join(long_reply))
    # lines=2: the window is two lines high and the older text is cut off.
    height = page.evaluate("document.querySelector('#reply-window').clientHeight")
    assert height == pytest.approx(2 * 1.5 * 40, abs=1)
    assert page.evaluate("document.querySelector('#reply-window').classList.contains('is-clipped')")
    # the newest line is the one at the bottom of the window, inside it
    # (measured in one go: the fade-in transition moves both while it runs)
    win_bottom, text_bottom, text_top, win_top = page.evaluate(
        """() => {
            const w = document.querySelector('#reply-window').getBoundingClientRect();
            const t = document.querySelector('#reply-text').getBoundingClientRect();
            return [w.bottom, t.bottom, t.top, w.top];
        }"""
    )
    assert abs(text_bottom - win_bottom) <= 1
    assert text_top < win_top - 40  # older lines are above the window, cut off
    # unknown values fall back to the defaults
    page.goto(f"{http_base}/index.html?" + urlencode({"ws": ws_server.url, "theme": "neon", "pos": "left", "font": "huge"}))
    wait_state(page, "open")
    assert page.evaluate("[document.body.dataset.theme, document.body.dataset.pos]") == ["dark", "bottom"]
    assert page.evaluate("getComputedStyle(document.querySelector('#reply-text')).fontSize") == "28px"
