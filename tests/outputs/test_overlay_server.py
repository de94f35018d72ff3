"""OverlayServer over real sockets: slow pages are dropped alone, keepalive, token and Origin
checks, and what a page is told when it connects."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from aituber.core.comment import Author, Comment
from aituber.core.events import (
    CommentSelected,
    ReplyCancelled,
    ReplyDelta,
    ReplyEnded,
    ReplyStarted,
    StatusChanged,
)
from aituber.core.messages import CLOSE_KEEPALIVE_TIMEOUT, CLOSE_TOO_SLOW
from aituber.outputs.overlay import OverlayServer, is_loopback

COMMENT = Comment(id="c1", author=Author("たぬき丸"), text="こんにちは")
OP_TEXT, OP_CLOSE, OP_PING = 0x1, 0x8, 0x9


@asynccontextmanager
async def serving(**kwargs) -> AsyncIterator[OverlayServer]:
    overlay = OverlayServer(port=0, character={"id": "mika", "name": "星乃ミカ"}, **kwargs)
    await overlay.start()
    try:
        yield overlay
    finally:
        await overlay.close()


class RawClient:
    """A WebSocket client on a plain socket that reads only when the test says so. Its receive
    buffer is small, so the server's writes back up quickly once it stops reading."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, path: str = "/ws", rcvbuf: int | None = None) -> RawClient:
        sock = socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                     f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                     .encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next frame (server frames are unmasked and unfragmented)."""
        b0, b1 = await self.reader.readexactly(2)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack(">H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack(">Q", await self.reader.readexactly(8))
        return b0 & 0x0F, await self.reader.readexactly(length)

    async def frames_until_close(self) -> tuple[list[tuple[int, bytes]], int, str]:
        """Every frame up to the close frame, and that frame's code and reason."""
        frames = []
        async with asyncio.timeout(10):
            while True:
                opcode, payload = await self.frame()
                if opcode == OP_CLOSE:
                    (code,) = struct.unpack(">H", payload[:2])
                    return frames, code, payload[2:].decode()
                frames.append((opcode, payload))

    def close(self) -> None:
        self.writer.transport.abort()


async def http_status(port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    return int(line.split()[1])


async def test_a_slow_page_is_dropped_without_delaying_a_fast_one():
    async with serving(client_queue_size=8, ping_interval_s=None, close_timeout_s=10) as overlay:
        slow = await RawClient.connect(overlay.port, rcvbuf=4096)
        fast_got: list[dict] = []
        arrived = asyncio.Event()
        async with connect(f"ws://127.0.0.1:{overlay.port}/ws", compression=None) as fast:

            async def read_fast() -> None:
                async for data in fast:
                    fast_got.append(json.loads(data))
                    arrived.set()

            reader = asyncio.create_task(read_fast())

            async def fast_has(count: int) -> None:
                async with asyncio.timeout(10):
                    while len(fast_got) < count:
                        arrived.clear()
                        await arrived.wait()

            await fast_has(1)
            assert fast_got[0]["type"] == "state" and overlay.client_count == 2
            filler = "あ" * 700  # ~2 KB a message: the slow page's buffers fill sooner
            sent = 0
            while overlay.dropped_clients == 0:
                assert sent < 20_000, "the page that stopped reading was never dropped"
                overlay.publish(ReplyDelta("r1", f"{sent}:{filler}"))
                sent += 1
                await fast_has(1 + sent - 4)  # the fast page reads along, a few messages behind at most
            for _ in range(10):
                overlay.publish(ReplyDelta("r1", f"{sent}:{filler}"))
                sent += 1
                await fast_has(1 + sent - 4)
            await fast_has(1 + sent)
            assert overlay.client_count == 1 and overlay.dropped_clients == 1
            reader.cancel()
            assert fast.close_code is None  # still open

        # The fast page got every message, in order, even while the slow one was stuck.
        numbers = [int(m["text"].split(":")[0]) for m in fast_got[1:]]
        assert numbers == list(range(sent))
        # The slow page, reading at last, finds what fitted in its buffers (in order, no gaps),
        # then the documented close code.
        frames, code, reason = await slow.frames_until_close()
        slow.close()
        assert (code, reason) == (CLOSE_TOO_SLOW, "too slow")
        texts = [json.loads(p) for op, p in frames if op == OP_TEXT]
        assert texts[0]["type"] == "state"
        got = [int(m["text"].split(":")[0]) for m in texts[1:]]
        assert got == list(range(len(got))) and 0 < len(got) < sent


async def test_keepalive_pings_and_drops_a_page_that_never_answers():
    async with serving(ping_interval_s=0.05, ping_timeout_s=0.2) as overlay:
        async with connect(f"ws://127.0.0.1:{overlay.port}/ws") as answering:  # answers pings itself
            mute = await RawClient.connect(overlay.port)  # reads, but never sends a pong
            frames, code, _ = await mute.frames_until_close()
            mute.close()
            assert [op for op, _ in frames][:2] == [OP_TEXT, OP_PING]
            assert code == CLOSE_KEEPALIVE_TIMEOUT
            assert json.loads(await answering.recv())["type"] == "state"
            overlay.publish(ReplyStarted("r1", "c1"))
            assert json.loads(await answering.recv())["type"] == "reply_start"  # still connected


async def test_state_on_connect_has_the_reply_so_far_and_the_status():
    async with serving() as overlay:
        url = f"ws://127.0.0.1:{overlay.port}/ws"

        async def hello() -> dict:
            async with connect(url) as ws:
                return json.loads(await ws.recv())

        first = await hello()
        assert {k: first[k] for k in ("type", "version", "character", "current", "status")} == {
            "type": "state", "version": 2, "character": {"id": "mika", "name": "星乃ミカ"}, "current": None,
            "status": "online"}
        overlay.publish(CommentSelected(COMMENT, "r1", 0.5))
        overlay.publish(ReplyStarted("r1", "c1"))
        overlay.publish(ReplyDelta("r1", "やっほー"))
        overlay.publish(ReplyDelta("r0", "よそ見"))  # another reply's delta is not part of it
        overlay.publish(ReplyDelta("r1", "だよ"))
        overlay.publish(StatusChanged("paused"))
        state = await hello()
        assert state["current"] == {"reply_id": "r1", "comment": state["current"]["comment"], "text": "やっほーだよ"}
        assert state["current"]["comment"]["text"] == "こんにちは" and state["status"] == "paused"
        overlay.publish(ReplyCancelled("r1", "skip"))
        assert (await hello())["current"] is None
        overlay.publish(CommentSelected(COMMENT, "r2", 0.5))
        overlay.publish(ReplyDelta("r2", "またね"))
        overlay.publish(ReplyEnded("r2", "c1", "またね", "stop", 0.1, 0.2, 3))
        assert (await hello())["current"] is None


def test_token_is_required_beyond_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10") and not is_loopback("")
    lan = OverlayServer(host="0.0.0.0", port=8765)
    assert lan.require_token and lan.token and len(lan.token) >= 16
    # Bound to all interfaces, the URLs name the machine's LAN address (tests/outputs/test_overlay_host.py).
    assert lan.url.endswith(f":8765/?token={lan.token}") and "0.0.0.0" not in lan.url
    assert lan.ws_url.endswith(f":8765/ws?token={lan.token}") and "0.0.0.0" not in lan.ws_url
    assert OverlayServer(host="0.0.0.0", token="abc").token == "abc"
    local = OverlayServer()
    assert not local.require_token and local.token is None and local.url == "http://127.0.0.1:8765/"
    assert OverlayServer(token="abc").require_token  # a token given is a token required
    assert OverlayServer(host="0.0.0.0", require_token=False).token is None


async def test_pages_and_websocket_need_the_token():
    async with serving(token="s3cret") as overlay:
        port = overlay.port
        assert await http_status(port, "/") == 401
        assert await http_status(port, "/index.html?token=nope") == 403
        assert await http_status(port, "/index.html?token=s3cret") == 200
        assert await http_status(port, "/?theme=dark&token=s3cret") == 200
        assert await http_status(port, "/subtitles.html") == 401
        assert await http_status(port, "/common.js") == 200  # the public overlay code itself
        assert await http_status(port, "/../pyproject.toml?token=s3cret") == 404

        async def ws_status(query: str, origin: str | None = None) -> int:
            headers = {"Origin": origin} if origin is not None else {}
            try:
                async with connect(f"ws://127.0.0.1:{port}/ws{query}", additional_headers=headers) as ws:
                    assert json.loads(await ws.recv())["type"] == "state"
                    return 101
            except InvalidStatus as exc:
                return exc.response.status_code

        assert await ws_status("") == 401
        assert await ws_status("?token=nope") == 403
        assert await ws_status("?token=s3cret") == 101  # a program: no Origin
        assert await ws_status("?token=s3cret", f"http://127.0.0.1:{port}") == 101  # the served page
        assert await ws_status("?token=s3cret", "null") == 101  # OBS local file
        assert await ws_status("?token=s3cret", "file://") == 101
        assert await ws_status("", "null") == 401  # ... but only with the token
        assert await ws_status("?token=s3cret", "http://evil.example") == 403
        assert await ws_status("?token=s3cret", f"http://127.0.0.1:{port + 1}") == 403
        assert await ws_status("?token=s3cret", f"http://localhost:{port}") == 403  # not the Host used


async def test_loopback_server_refuses_foreign_web_origins():
    async with serving() as overlay:
        url = f"ws://127.0.0.1:{overlay.port}/ws"
        for origin in (None, "null", f"http://127.0.0.1:{overlay.port}", "http://localhost:3000"):
            async with connect(url, additional_headers={"Origin": origin} if origin else {}) as ws:
                assert json.loads(await ws.recv())["type"] == "state"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers={"Origin": "https://evil.example"}):
                pass
        assert refused.value.response.status_code == 403
        assert await http_status(overlay.port, "/") == 200  # pages need no token here


async def test_close_sends_going_away_and_does_not_wait_for_a_stuck_page():
    overlay = OverlayServer(port=0, ping_interval_s=None, close_timeout_s=0.5)
    await overlay.start()
    stuck = await RawClient.connect(overlay.port, rcvbuf=4096)
    async with connect(f"ws://127.0.0.1:{overlay.port}/ws") as ws:

        async def read_all() -> ConnectionClosed:
            try:
                while True:
                    await ws.recv()
            except ConnectionClosed as exc:
                return exc

        reader = asyncio.create_task(read_all())
        for _ in range(100):  # the stuck page's buffers fill up; its queue (1024) does not
            overlay.publish(ReplyDelta("r1", "あ" * 3000))
            await asyncio.sleep(0)
        assert overlay.dropped_clients == 0
        async with asyncio.timeout(10):  # close_timeout_s bounds it, not the stuck page
            await overlay.close()
            closed = await reader
        assert closed.rcvd is not None and closed.rcvd.code == 1001
    stuck.close()
