"""The console source: lines typed on stdin become comments."""

from __future__ import annotations

import asyncio
import io
import os
import threading

import pytest

from aituber.core.comment import CommentKind
from aituber.sources.console import QUIT, ConsoleChatSource, ConsoleLine, parse_console_line


@pytest.mark.parametrize(("line", "expected"), [
    ("こんにちは\n", ConsoleLine("viewer", "こんにちは")),
    ("たぬき丸: こんばんは", ConsoleLine("たぬき丸", "こんばんは")),
    ("たぬき丸：こんばんは", ConsoleLine("たぬき丸", "こんばんは")),
    ("see: http://example.com", ConsoleLine("see", "http://example.com")),
    ("12:30 に始まる？", ConsoleLine("viewer", "12:30 に始まる？")),
    ("/sc 500 がんばって", ConsoleLine("viewer", "がんばって", 500.0, "JPY")),
    ("/sc ￥1,000 いつもありがとう", ConsoleLine("viewer", "いつもありがとう", 1000.0, "JPY")),
    ("Emily: /sc $5 hi Mika", ConsoleLine("Emily", "hi Mika", 5.0, "USD")),
    ("/sc 200", ConsoleLine("viewer", "", 200.0, "JPY")),
    ("   ", None),
    ("/quit", QUIT),
])
def test_parse_console_line(line, expected):
    assert parse_console_line(line) == expected


@pytest.mark.parametrize("line", ["/sc", "/sc lots wow", "/dance", "/scx 5 a"])
def test_bad_commands_are_explained(line):
    message = parse_console_line(line)
    assert isinstance(message, str) and message != QUIT


async def test_typed_lines_become_comments_until_quit():
    typed = io.StringIO("こんにちは\nたぬき丸: ミカちゃん元気？\n/sc 500 おうえん\n/oops\n\n/quit\nnot read\n")
    said: list[str] = []
    source = ConsoleChatSource(typed, clock=lambda: 100.0, announce=said.append)
    items = [c async for c in source.items()]
    assert [(c.author.name, c.text, c.kind) for c in items] == [
        ("viewer", "こんにちは", CommentKind.TEXT),
        ("たぬき丸", "ミカちゃん元気？", CommentKind.TEXT),
        ("viewer", "おうえん", CommentKind.SUPER_CHAT),
    ]
    assert items[2].amount == 500.0 and items[2].currency == "JPY"
    assert [c.id for c in items] == ["console-1", "console-2", "console-3"]
    assert all(c.timestamp == 100.0 for c in items)
    assert source.stats.kinds == {"text": 2, "super_chat": 1} and source.stats.skipped["bad_command"] == 1
    assert any("unknown command '/oops'" in s for s in said)


async def test_end_of_input_ends_the_source():
    source = ConsoleChatSource(io.StringIO("やあ"), announce=None)
    assert [c.text async for c in source.items()] == ["やあ"]


async def test_reading_never_blocks_the_loop():
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "r", encoding="utf-8")
    source = ConsoleChatSource(reader, announce=None)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    items = source.items()
    pending = asyncio.ensure_future(anext(items))
    started = ticks
    async with asyncio.timeout(5):  # nothing typed yet: the loop keeps running (ticking) meanwhile
        while ticks < started + 10:
            await asyncio.sleep(0)
    assert not pending.done()
    threading.Thread(target=lambda: os.write(write_fd, "こんにちは\n".encode())).start()
    async with asyncio.timeout(5):
        comment = await pending
    assert comment.text == "こんにちは"
    os.close(write_fd)
    async with asyncio.timeout(5):
        assert [c async for c in items] == []
    ticker.cancel()
    reader.close()
