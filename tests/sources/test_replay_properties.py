"""Whatever a log file holds, a (non-strict) replay never raises: it skips and counts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aituber.core.chatlog_formats import FORMAT_NAMES
from aituber.core.comment import Comment, CommentDeleted
from aituber.sources.base import SourceStats
from aituber.sources.replay import ReplayChatSource, read_chat_log
from tests.conftest import FIXTURES

LOGS = FIXTURES / "logs"
FIXTURE_FILES = sorted(LOGS.glob("*.json*")) + [FIXTURES / "chat_small.jsonl"]
FIXTURE_LINES = {p.name: p.read_bytes().split(b"\n") for p in FIXTURE_FILES}
FIXTURE_IDS = {
    p.name: {i.id for i in read_chat_log(p, p.read_bytes(), SourceStats()) if isinstance(i, Comment)}
    for p in FIXTURE_FILES
}
PATH = Path("prop.log")
FORMATS = st.sampled_from(FORMAT_NAMES)
quick = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def read_all(data: bytes, fmt: str) -> tuple[list, SourceStats]:
    stats = SourceStats()
    items = list(read_chat_log(PATH, data, stats, strict=False, format=fmt))
    for item in items:
        assert isinstance(item, (Comment, CommentDeleted))
    return items, stats


@quick
@given(st.binary(max_size=2000), FORMATS)
def test_arbitrary_bytes_never_raise(data, fmt):
    read_all(data, fmt)


json_ish = st.lists(st.sampled_from([
    b"{", b"}", b"[", b"]", b'"', b":", b",", b"\n", b"\\u30c6", b"\\ud800", b"\xe3\x83", b"null", b"1e999",
    b'"replayChatItemAction"', b'"actions"', b'"addChatItemAction"', b'"item"', b'"liveChatTextMessageRenderer"',
    b'"message_type"', b'"text_message"', b'"author"', b'"text"', b'"id"', b'"runs"', b'"videoOffsetTimeMsec"',
    b'"-12"', b'"money"', b'"amount"', b"NaN", b"-Infinity", b"\r", b"\xef\xbb\xbf"]), max_size=80).map(b"".join)


@quick
@given(json_ish, FORMATS)
def test_json_shaped_noise_never_raises(data, fmt):
    read_all(data, fmt)


@quick
@given(st.sampled_from(sorted(FIXTURE_LINES)), st.data())
def test_truncated_logs_never_raise_and_invent_nothing(name, data):
    raw = b"\n".join(FIXTURE_LINES[name])
    cut = data.draw(st.integers(0, len(raw)))
    items, _ = read_all(raw[:cut], "auto")
    assert {i.id for i in items if isinstance(i, Comment)} <= FIXTURE_IDS[name]


@quick
@given(st.sampled_from(sorted(FIXTURE_LINES)), st.data())
def test_reordered_dropped_or_repeated_lines_never_raise(name, data):
    lines = FIXTURE_LINES[name]
    picked = data.draw(st.lists(st.sampled_from(lines), max_size=2 * len(lines)))
    items, stats = read_all(b"\n".join(picked), "auto")
    assert {i.id for i in items if isinstance(i, Comment)} <= FIXTURE_IDS[name] | {
        f"{PATH.name}:{n}" for n in range(1, len(picked) + 1)}  # own-format lines without an id


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=800) | json_ish, fmt=FORMATS, start=st.none() | st.floats(-5, 10),
       speed=st.floats(100, 1e6))
def test_the_source_itself_never_raises(tmp_path_factory, data, fmt, start, speed):
    path = tmp_path_factory.mktemp("prop") / "log.json"
    path.write_bytes(data)
    source = ReplayChatSource(path, fast=speed > 1000, speed=speed, format=fmt, start_s=start)

    async def run() -> list:
        async with asyncio.timeout(10):
            return [i async for i in source.items()]

    items = asyncio.run(run())
    assert len(items) == sum(source.stats.kinds.values())
