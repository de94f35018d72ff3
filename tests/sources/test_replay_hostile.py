"""Recorded logs that used to be lost or misread: pretty-printed records, raw get_live_chat responses
saved from a browser's devtools, a truncated array of our own records, lone surrogates and control
characters, a 5 MB line; and a replay that reads nothing says why."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest

from aituber.core import chatlog_formats
from aituber.core.chatlog_formats import MAX_RECORD_CHARS, LogFormat, detect_format
from aituber.core.comment import Comment, CommentKind
from aituber.core.sanitize import MAX_TEXT_CHARS
from aituber.errors import ChatLogLineError
from aituber.sources.base import SourceStats
from aituber.sources.replay import ReplayChatSource, read_chat_log
from tests.conftest import FIXTURES, require_shared
from tests.sources.test_replay_formats import CD_LINES, OWN, PYTCHAT, YT_DLP, YT_EXPECTED, replay, summary

LOGS = FIXTURES / "logs"
PRETTY = LOGS / "stream.pretty.live_chat.json"
RESPONSE = LOGS / "get_live_chat.json"
PAGES = LOGS / "get_live_chat_pages.json"
REPLAY_RESPONSES = LOGS / "get_live_chat_replay.json"


@pytest.mark.parametrize(("path", "fmt"), [
    (PRETTY, LogFormat.YT_DLP),
    (RESPONSE, LogFormat.GET_LIVE_CHAT),
    (PAGES, LogFormat.GET_LIVE_CHAT),
    (REPLAY_RESPONSES, LogFormat.GET_LIVE_CHAT),
], ids=lambda v: v.name if isinstance(v, Path) else None)
async def test_pretty_printed_records_and_devtools_responses_read_whole(path, fmt, caplog):
    assert detect_format(path.read_bytes()) is fmt
    items, source = await replay(path)
    assert summary(items) == YT_EXPECTED
    assert "WARNING" not in caplog.text and not source.stats.skipped
    forced, _ = await replay(path, format=fmt.value)
    assert summary(forced) == YT_EXPECTED


async def test_devtools_responses_keep_offsets_and_pass_over_a_page_saved_twice():
    pretty, _ = await replay(PRETTY)
    replayed, _ = await replay(REPLAY_RESPONSES)
    assert [i.offset_s for i in replayed] == [i.offset_s for i in pretty]  # the video offsets
    live, source = await replay(PAGES)
    archive, _ = await replay(PYTCHAT)
    assert [i.offset_s for i in live] == [i.offset_s for i in archive]  # since the first timestampUsec
    assert source.stats.ignored["duplicate"] == 7  # the comments of the second page, saved twice


async def test_a_real_pretty_printed_2026_response():
    path = require_shared("fixtures", "youtube", "2026", "chat-downloader-fork", "live_chat_first_page.json")
    assert path.read_text(encoding="utf-8").startswith("{\n  ")  # as recorded: pretty-printed
    assert detect_format(path.read_bytes()) is LogFormat.GET_LIVE_CHAT
    items, source = await replay(path)
    assert len(items) == 69 and all(c.kind is CommentKind.TEXT for c in items)
    assert source.stats.ignored == {"engagement": 1, "chat_summary": 1} and not source.stats.skipped


async def test_real_replay_responses_one_after_another_on_one_line(tmp_path):
    shared = require_shared("fixtures", "youtube")
    replay_page = (shared / "pytchat" / "chatreplay.json").read_text(encoding="utf-8")
    live_page = (shared / "youtube-chat" / "get_live_chat.super-chat.json").read_text(encoding="utf-8")
    log = tmp_path / "saved.json"
    log.write_text(json.dumps(json.loads(replay_page)) + json.dumps(json.loads(live_page)), encoding="utf-8")
    items, source = await replay(log)
    assert len(items) == 48 + 1 and items[-1].kind is CommentKind.SUPER_CHAT
    assert items[0].text == "や" and not source.stats.skipped


async def test_a_pretty_printed_log_with_a_broken_record_loses_only_that_record(tmp_path, caplog):
    lines = PRETTY.read_text(encoding="utf-8").split("\n")
    starts = [n for n, line in enumerate(lines) if line == "{"]
    broken_at = starts[1]
    lines.insert(broken_at + 3, '  "oops": [1, 2,')  # inside the second record (two comments)
    log = tmp_path / "broken.live_chat.json"
    log.write_text("\n".join(lines), encoding="utf-8")
    items, source = await replay(log)
    assert summary(items) == YT_EXPECTED[:1] + YT_EXPECTED[3:]
    assert source.stats.skipped["malformed"] == 1
    assert f"{log}:{broken_at + 1}: not valid JSON" in caplog.text


async def test_a_truncated_array_of_our_own_records_is_our_format(tmp_path):
    records = [{"id": f"o{n}", "author": "たぬき", "text": f"コメント{n}"} for n in range(6)]
    text = json.dumps(records, ensure_ascii=False, indent=2)
    log = tmp_path / "own.json"
    log.write_text(text[: text.index('"o5"')], encoding="utf-8")
    assert detect_format(log.read_bytes()) is LogFormat.AITUBER
    items, source = await replay(log)
    assert [i.id for i in items] == ["o0", "o1", "o2", "o3", "o4"]
    assert source.stats.skipped["malformed"] == 1


async def test_a_devtools_response_with_format_pytchat_is_never_dropped_silently(caplog):
    items, source = await replay(RESPONSE, format="pytchat")
    assert items == [] and source.stats.skipped["malformed"] == 1
    assert f"{RESPONSE}:1: no chat action in it" in caplog.text
    assert "--format get-live-chat" in caplog.text
    assert source.nothing_read() is not None and "1 unreadable record" in source.nothing_read()


# -- text made valid at the edge --------------------------------------------------------------------------------


def _first_text_action(path: Path) -> tuple[list[str], int]:
    lines = path.read_text(encoding="utf-8").splitlines()
    n = next(i for i, line in enumerate(lines) if "liveChatTextMessageRenderer" in line)
    return lines, n


@pytest.mark.parametrize("path", [YT_DLP, PYTCHAT, CD_LINES, OWN, RESPONSE], ids=lambda p: p.name)
async def test_lone_surrogates_and_controls_are_made_valid_in_every_format(path, tmp_path):
    original = {c.id: c for c in (await replay(path))[0] if isinstance(c, Comment)}
    lines = path.read_text(encoding="utf-8").splitlines()
    hostile = []
    for line in lines:
        # In every text and name: a lone surrogate as JSON writes it, a NUL, a BOM and a non-character.
        for key in ('"simpleText":"', '"text":"', '"message":"', '"name":"', '"simpleText": "', '"text": "',
                    '"message": "', '"name": "'):
            line = line.replace(key, key + "\\ud800\\u0000\\ufeff\\uffff")
        hostile.append(line)
    log = tmp_path / path.name
    log.write_text("\n".join(hostile) + "\n", encoding="utf-8")
    items, source = await replay(log)
    comments = {c.id: c for c in items if isinstance(c, Comment)}
    assert set(comments) == set(original)  # nothing lost
    changed = 0
    for cid, comment in comments.items():
        for value in (comment.text, comment.author.name):
            value.encode("utf-8")  # strict: no surrogate left
            assert not any(ch in value for ch in "\x00\ufeff\uffff")
        if comment.text.startswith("\ufffd") or comment.author.name.startswith("\ufffd"):
            changed += 1
        assert comment.text.replace("\ufffd", "") == original[cid].text.replace("\ufffd", "")
    assert changed > len(comments) // 2


async def test_a_line_over_the_limit_is_refused_unread_with_its_line(tmp_path, caplog, monkeypatch):
    seen_lengths: list[int] = []
    real = chatlog_formats._DECODER

    class Watching:
        def decode(self, text: str):
            seen_lengths.append(len(text))
            return real.decode(text)

        def raw_decode(self, text: str, pos: int = 0):
            value, end = real.raw_decode(text, pos)
            seen_lengths.append(end - pos)
            return value, end

    monkeypatch.setattr(chatlog_formats, "_DECODER", Watching())
    huge = "あ" * (MAX_RECORD_CHARS + 100)
    log = tmp_path / "huge.jsonl"
    lines = [json.dumps({"id": "a1", "author": "たぬき", "text": "まえ"}, ensure_ascii=False),
             json.dumps({"id": "a2", "author": "荒らし", "text": huge}, ensure_ascii=False),
             json.dumps({"id": "a3", "author": "ねこ", "text": "あと" * 800}, ensure_ascii=False)]
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    items, source = await replay(log)
    assert [i.id for i in items] == ["a1", "a3"]
    assert len(items[1].text) == MAX_TEXT_CHARS  # a long comment is cut to the cap
    assert f"{log}:2: a line of {len(lines[1]):,} characters is over the limit" in caplog.text
    assert max(seen_lengths) < 10_000  # the long line never reached the JSON decoder
    assert source.stats.skipped["malformed"] == 1
    with pytest.raises(ChatLogLineError) as raised:
        await replay(log, strict=True)
    assert raised.value.line_no == 2


async def test_a_long_line_inside_a_pretty_printed_log(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    records = [{"id": "p1", "author": "a", "text": "ok"},
               {"id": "p2", "author": "b", "text": "x" * (MAX_RECORD_CHARS + 1)},
               {"id": "p3", "author": "c", "text": "ok3"}]
    log = tmp_path / "pretty.json"
    log.write_text("".join(json.dumps(r, indent=2) + "\n" for r in records), encoding="utf-8")
    items, source = await replay(log)
    assert [i.id for i in items] == ["p1", "p3"]
    assert f"{log}:9: a line of" in caplog.text  # the line of the long text
    assert source.stats.skipped["malformed"] == 2  # that line, and the record it spoiled


def test_invalid_utf8_in_a_pretty_printed_record_spoils_only_that_record(tmp_path):
    data = PRETTY.read_bytes().replace("おつかれさま".encode(), b"\xff\xfe", 1)
    log = tmp_path / "bad.live_chat.json"
    log.write_bytes(data)
    stats = SourceStats()
    items = list(read_chat_log(log, data, stats))
    assert summary(items) == YT_EXPECTED[:1] + YT_EXPECTED[3:] and stats.skipped["malformed"] == 1


# -- nothing read ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "kwargs", "reason"), [
    (b"", {}, "the file is empty"),
    (b"hello\nworld\n", {}, "2 unreadable records, the first at line 1: not valid JSON"),
    (YT_DLP.read_bytes(), {"start_s": 1000.0}, "no item between --start and --end"),
    (b'{"addLiveChatTickerItemAction": {}}\n', {}, "passed over: ticker 1"),
])
async def test_a_replay_that_reads_nothing_says_why(content, kwargs, reason, tmp_path):
    log = tmp_path / "log.json"
    log.write_bytes(content)
    items, source = await replay(log, **kwargs)
    assert items == []
    message = source.nothing_read()
    assert message is not None and message.startswith(f"{log}: nothing to replay") and reason in message


async def test_a_replay_that_read_something_has_no_complaint():
    _, source = await replay(YT_DLP)
    assert source.nothing_read() is None
    fresh = ReplayChatSource(YT_DLP)
    assert fresh.nothing_read() is None  # not run yet: nothing to say


def test_concatenated_pretty_and_single_line_values_detect_by_content():
    one_line = json.dumps(json.loads(RESPONSE.read_text(encoding="utf-8")))
    assert detect_format((one_line * 3).encode()) is LogFormat.GET_LIVE_CHAT
    response = json.loads(RESPONSE.read_text(encoding="utf-8"))
    wrapped = {"response": copy.deepcopy(response), "csn": "x"}  # the old pbj=1 wrapper
    assert detect_format(json.dumps(wrapped).encode()) is LogFormat.GET_LIVE_CHAT
    items = list(read_chat_log(Path("w.json"), json.dumps(wrapped).encode(), SourceStats()))
    assert summary(items) == YT_EXPECTED


async def test_a_pretty_printed_log_whose_first_record_is_broken_still_reads_the_rest(tmp_path):
    lines = PRETTY.read_text(encoding="utf-8").split("\n")
    lines.insert(2, '  "oops": [1, 2,')  # inside the first record
    log = tmp_path / "first_broken.live_chat.json"
    log.write_text("\n".join(lines), encoding="utf-8")
    items, source = await replay(log, format="yt-dlp")
    assert summary(items) == YT_EXPECTED[1:] and source.stats.skipped["malformed"] == 1
