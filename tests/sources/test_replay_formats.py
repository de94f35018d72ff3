"""Recorded logs in every supported format, from the fixtures in tests/fixtures/logs (written by
make_logs.py there; they do not need ../shared)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from aituber.core.chatlog_formats import LogFormat, detect_format
from aituber.core.comment import Comment, CommentDeleted, CommentKind, SourceItem
from aituber.errors import ChatLogLineError, ChatSourceError
from aituber.sources import replay as replay_module
from aituber.sources.base import SourceStats
from aituber.sources.replay import ReplayChatSource, read_chat_log
from tests.conftest import FIXTURES

LOGS = FIXTURES / "logs"
YT_DLP = LOGS / "stream.live_chat.json"
YT_DLP_LIVE = LOGS / "captured_live.live_chat.json"
PYTCHAT = LOGS / "pytchat_archive.json"
CD_ARRAY = LOGS / "chat_downloader.json"
CD_LINES = LOGS / "chat_downloader.jsonl"
OWN = FIXTURES / "chat_small.jsonl"
YT_DLP_2026 = LOGS / "stream_2026.live_chat.json"
CD_2026 = LOGS / "chat_downloader_2026.jsonl"

NOW = 1_800_000_000.0

# What the yt-dlp, captured-live and pytchat-archive fixtures hold (the same chat).
YT_EXPECTED = [
    ("yt-001", CommentKind.TEXT, "こんにちは", None),
    ("yt-002", CommentKind.TEXT, "おつかれさま〜😊😊😊", None),
    ("yt-003", CommentKind.TEXT, "配信はじめます！よろしくね", None),
    ("yt-004", CommentKind.TEXT, "コメントのルールを守ってね", None),
    ("yt-005", CommentKind.TEXT, "公式です、応援してます", None),
    ("yt-006", CommentKind.TEXT, "メンバーです🎉", None),
    ("yt-007", CommentKind.TEXT, "かわいい:customEmoji:", None),
    ("yt-008", CommentKind.TEXT, "すごい:clapping_hands:", None),
    ("yt-009", CommentKind.SUPER_CHAT, "いつも応援してます！", (1000.0, "JPY")),
    ("yt-010", CommentKind.SUPER_CHAT, "Hello from Czech Republic", (20.0, "CZK")),
    ("yt-011", CommentKind.SUPER_STICKER, "", (90.0, "JPY")),
    ("yt-012", CommentKind.MEMBERSHIP, "新規メンバー", None),
    ("yt-013", CommentKind.MEMBERSHIP, "上級エンジニア へようこそ！", None),
    ("yt-014", CommentKind.GIFT, "10 件の 上級エンジニア のメンバーシップ ギフトを贈りました", None),
    ("yt-017", CommentKind.TEXT, "これは消されるコメント", None),
    ("deleted", "yt-017"),
    ("yt-019", CommentKind.TEXT, "荒らしです", None),
    ("deleted", "yt-019"),  # the ban of its author
]

CD_EXPECTED = [
    ("cd-001", CommentKind.TEXT, "こんにちは！", None),
    ("cd-002", CommentKind.TEXT, "おつかれさま〜😊😊😊", None),
    ("cd-003", CommentKind.TEXT, "配信はじめます！", None),
    ("cd-004", CommentKind.TEXT, "ルールを守ってね", None),
    ("cd-005", CommentKind.TEXT, "公式です", None),
    ("cd-006", CommentKind.TEXT, "かわいい:_mikaHeart:", None),
    ("cd-007", CommentKind.SUPER_CHAT, "いつも応援してます！", (1000.0, "JPY")),
    ("cd-008", CommentKind.SUPER_CHAT, "Hello from the US", (5.0, "USD")),
    ("cd-009", CommentKind.SUPER_STICKER, "", (90.0, "JPY")),
    ("cd-010", CommentKind.MEMBERSHIP, "上級エンジニア へようこそ！", None),
    ("cd-011", CommentKind.MEMBERSHIP, "半年ありがとう！", None),
    ("cd-012", CommentKind.GIFT, "10 件の メンバーシップ ギフトを贈りました", None),
    ("cd-013", CommentKind.MEMBERSHIP, "ギフトさん からメンバーシップ ギフトを受け取りました", None),
    ("cd-016", CommentKind.TEXT, "これは消されるコメント", None),
    ("deleted", "cd-016"),
    ("cd-018", CommentKind.TEXT, "荒らしです", None),
    ("deleted", "cd-018"),
]


def summary(items: list[SourceItem]) -> list[tuple]:
    out: list[tuple] = []
    for item in items:
        if isinstance(item, CommentDeleted):
            out.append(("deleted", item.comment_id))
        else:
            money = None if item.amount is None else (item.amount, item.currency)
            out.append((item.id, item.kind, item.text, money))
    return out


async def replay(path: Path, **kwargs) -> tuple[list[SourceItem], ReplayChatSource]:
    source = ReplayChatSource(path, fast=True, clock=lambda: NOW, **kwargs)
    items = [item async for item in source.items()]
    return items, source


@pytest.mark.parametrize(("path", "fmt", "expected"), [
    (YT_DLP, LogFormat.YT_DLP, YT_EXPECTED),
    (YT_DLP_LIVE, LogFormat.YT_DLP, YT_EXPECTED),
    (PYTCHAT, LogFormat.PYTCHAT, YT_EXPECTED),
    (CD_ARRAY, LogFormat.CHAT_DOWNLOADER, CD_EXPECTED),
    (CD_LINES, LogFormat.CHAT_DOWNLOADER, CD_EXPECTED),
], ids=lambda v: v.name if isinstance(v, Path) else None)
async def test_each_format_is_detected_and_read_whole(path, fmt, expected, caplog):
    assert detect_format(path.read_bytes()) is fmt
    items, source = await replay(path)
    assert summary(items) == expected
    assert "WARNING" not in caplog.text
    comments = [i for i in items if isinstance(i, Comment)]
    assert all(c.timestamp == NOW for c in comments)  # stamped on arrival
    kinds = source.stats.kinds
    assert kinds["deleted"] == 2 and sum(kinds.values()) == len(expected)
    assert not source.stats.skipped
    # Forcing the format reads the same.
    forced, _ = await replay(path, format=fmt.value)
    assert summary(forced) == expected


async def test_authors_and_their_flags():
    by_id = {c.id: c for c in (await replay(YT_DLP))[0] if isinstance(c, Comment)}
    assert by_id["yt-003"].author.is_owner and by_id["yt-003"].author.name == "星乃ミカ"
    assert by_id["yt-004"].author.is_moderator
    assert by_id["yt-005"].author.is_verified
    assert by_id["yt-006"].author.is_member and by_id["yt-006"].author.channel_id == "UCtanuki00000000000000001"
    assert by_id["yt-013"].author.is_member  # a new member
    assert by_id["yt-014"].author.name == "ギフトさん" and by_id["yt-014"].author.channel_id == "UCgift0000000000000000001"
    assert not any([by_id["yt-001"].author.is_owner, by_id["yt-001"].author.is_moderator,
                    by_id["yt-001"].author.is_member, by_id["yt-001"].author.is_verified])
    cd = {c.id: c for c in (await replay(CD_ARRAY))[0] if isinstance(c, Comment)}
    assert cd["cd-003"].author.is_owner and cd["cd-004"].author.is_moderator and cd["cd-005"].author.is_verified
    assert cd["cd-006"].author.is_member and not cd["cd-001"].author.is_member


async def test_offsets_follow_each_format():
    offsets = {i.id: i.offset_s for i in (await replay(YT_DLP))[0] if isinstance(i, Comment)}
    assert offsets["yt-001"] == 1.25 and offsets["yt-002"] == offsets["yt-003"] == 1.5  # one line, two actions
    live = [i.offset_s for i in (await replay(YT_DLP_LIVE))[0]]
    assert live[0] == -0.75 and live[3] == 0.0  # captured before the stream began: negative
    archive = {i.id: i.offset_s for i in (await replay(PYTCHAT))[0] if isinstance(i, Comment)}
    assert archive["yt-001"] == 0.0 and archive["yt-005"] == 1.0  # from timestampUsec
    cd = {i.id: i.offset_s for i in (await replay(CD_LINES))[0] if isinstance(i, Comment)}
    assert cd["cd-001"] == 1.25


async def test_passed_over_items_are_counted_per_reason():
    _, source = await replay(YT_DLP)
    assert source.stats.ignored == {"ticker": 1, "placeholder": 1, "engagement": 1}
    line = source.stats.summary_line()
    assert line.startswith("source: deleted 2, gift 1, membership 2, super_chat 2, super_sticker 1, text 10")
    assert "passed over: " in line and "unreadable" not in line
    _, cd = await replay(CD_ARRAY)
    assert cd.stats.ignored == {"ticker": 1, "engagement": 1}


async def test_the_projects_own_format_and_transcripts_still_replay():
    items, source = await replay(OWN)
    assert [i.id for i in items if isinstance(i, Comment)][:3] == ["s01", "s02", "s03"]
    assert source.stats.skipped["malformed"] == 3
    assert detect_format(OWN.read_bytes()) is LogFormat.AITUBER


@pytest.mark.parametrize("path", [YT_DLP, PYTCHAT, CD_LINES], ids=lambda p: p.name)
async def test_a_malformed_line_is_a_warning_with_file_and_line(path, tmp_path, caplog):
    lines = path.read_text(encoding="utf-8").splitlines()
    broken = lines[:3] + ["{not json", '{"replayChatItemAction": 5}', "[1, 2]"] + lines[3:]
    log = tmp_path / path.name
    log.write_text("\n".join(broken) + "\n", encoding="utf-8")
    items, source = await replay(log, format=detect_format(path.read_bytes()).value)
    assert len(items) == len((await replay(path))[0])
    assert source.stats.skipped["malformed"] == 3
    assert f"{log}:4: not valid JSON" in caplog.text
    assert f"{log}:6: " in caplog.text
    with pytest.raises(ChatLogLineError) as raised:
        await replay(log, strict=True)
    assert raised.value.line_no == 4 and raised.value.path == str(log)


async def test_a_truncated_chat_downloader_array_keeps_what_came_before(tmp_path, caplog):
    text = CD_ARRAY.read_text(encoding="utf-8")
    cut = tmp_path / "cut.json"
    cut.write_text(text[: text.index('"cd-010"')], encoding="utf-8")
    items, source = await replay(cut)
    assert [i.id for i in items] == [f"cd-00{n}" for n in range(1, 10)]
    assert source.stats.skipped["malformed"] == 1
    assert "the rest of the array is unreadable" in caplog.text


async def test_crlf_line_separators_and_a_bom(tmp_path):
    data = YT_DLP.read_bytes().replace(b"\n", b"\r\n")
    log = tmp_path / "crlf.live_chat.json"
    log.write_bytes(b"\xef\xbb\xbf" + data)
    items, source = await replay(log)
    assert summary(items) == YT_EXPECTED and not source.stats.skipped


async def test_a_line_separator_inside_a_message_is_no_line_break(tmp_path):
    record = {"id": "u1", "author": "ねこ", "text": "一行目\u2028二行目\u0085三"}
    log = tmp_path / "sep.jsonl"
    log.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    items, source = await replay(log)
    # U+2028 is kept; U+0085 (NEL, a C1 control) becomes the newline it stands for (aituber.core.sanitize).
    assert [i.text for i in items] == ["一行目\u2028二行目\n三"] and not source.stats.skipped


async def test_invalid_utf8_spoils_only_its_line(tmp_path):
    lines = YT_DLP.read_bytes().split(b"\n")
    lines.insert(2, b'{"text": "\xff\xfe", "author": "x"}')
    log = tmp_path / "bad.live_chat.json"
    log.write_bytes(b"\n".join(lines))
    items, source = await replay(log)
    assert summary(items) == YT_EXPECTED and source.stats.skipped["malformed"] == 1


async def test_start_and_end_offsets_cut_the_log():
    items, source = await replay(YT_DLP, start_s=2.0, end_s=4.25)
    assert [i.id for i in items] == ["yt-004", "yt-005", "yt-006", "yt-007", "yt-008", "yt-009", "yt-010",
                                     "yt-011", "yt-012", "yt-013"]
    assert source.stats.ignored["before_start"] == 3
    live, _ = await replay(YT_DLP_LIVE, start_s=-0.5, end_s=0.0)
    assert [i.id for i in live] == ["yt-002", "yt-003", "yt-004"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"format": "csv"}, "unknown chat-log format 'csv'"),
    ({"speed": 0}, "--speed must be above 0"),
    ({"start_s": 5.0, "end_s": 1.0}, "--end .* is before --start"),
])
def test_bad_settings_are_errors(kwargs, message):
    with pytest.raises(ChatSourceError, match=message):
        ReplayChatSource(YT_DLP, **kwargs)


async def test_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(ChatSourceError, match="chat log not found"):
        await replay(tmp_path / "nope.live_chat.json")


async def test_original_timing_is_kept_at_the_given_speed(monkeypatch):
    """The source asks to sleep until each item's offset (divided by speed); no clock is asserted."""
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        delays.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(replay_module.asyncio, "sleep", fake_sleep)
    source = ReplayChatSource(YT_DLP, speed=2.0)
    items = [i async for i in source.items()]
    assert len(items) == len(YT_EXPECTED)
    # The last item is at 6.0 s of the log, the first at 1.25 s: 2.375 s at twice the speed.
    assert max(delays) == pytest.approx(2.375, abs=0.2)
    assert max(delays) > 2.0 and len([d for d in delays if d > 0]) >= 10


async def test_fast_mode_lets_other_tasks_run(tmp_path):
    log = tmp_path / "many.jsonl"
    log.write_text("".join(json.dumps({"id": f"m{n}", "author": "a", "text": "やあ"}) + "\n" for n in range(2000)),
                   encoding="utf-8")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    seen_ticks = []
    async for _ in ReplayChatSource(log, fast=True).items():
        seen_ticks.append(ticks)
    task.cancel()
    assert seen_ticks[-1] >= 2000 // replay_module.YIELD_EVERY - 1


def test_read_chat_log_keeps_its_signature():
    stats = SourceStats()
    items = list(read_chat_log(OWN, OWN.read_bytes(), stats))
    assert items and stats.skipped["malformed"] == 3


def test_bans_remove_only_that_viewers_recent_comments(tmp_path):
    with_ban = [
        {"addChatItemAction": {"item": {"liveChatTextMessageRenderer": {
            "id": f"b{n}", "message": {"runs": [{"text": "あ"}]}, "authorName": {"simpleText": who},
            "authorExternalChannelId": who, "timestampUsec": str(1_700_000_000_000_000 + n)}}}}
        for n, who in enumerate(["UCa", "UCb", "UCa", "UCc"])
    ]
    with_ban.append({"markChatItemsByAuthorAsDeletedAction": {"externalChannelId": "UCa"}})
    log = tmp_path / "ban.json"
    log.write_text("".join(json.dumps(a) + "\n" for a in with_ban), encoding="utf-8")
    items = list(read_chat_log(log, log.read_bytes(), SourceStats()))
    assert [getattr(i, "comment_id", None) for i in items[-2:]] == ["b0", "b2"]


async def test_warnings_name_the_file_and_line(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    log = tmp_path / "x.jsonl"
    log.write_text('{"author": "a", "text": "ok"}\n{"author": "a"}\n', encoding="utf-8")
    items, _ = await replay(log)
    assert len(items) == 1 and f"{log}:2: 'text' is missing (line skipped)" in caplog.text


# -- logs of 2026 ----------------------------------------------------------------------------------------------


async def test_a_2026_yt_dlp_log_jewels_gifts_and_what_is_passed_over():
    assert detect_format(YT_DLP_2026.read_bytes()) is LogFormat.YT_DLP
    items, source = await replay(YT_DLP_2026)
    got = [(c.author.name, c.kind, c.text, c.amount, c.currency, c.gift_name, c.offset_s) for c in items]
    assert got == [
        ("@Sin_mikity", CommentKind.TEXT, "孔明の罠", None, None, None, 2.0),  # its "#3" chip left out
        ("@yaniescobar2170", CommentKind.JEWELS, "sent Gold coin for 10 Jewels", 10.0, "JEWELS", "Gold coin", 4.0),
        ("@franciscosaranteheredia1890", CommentKind.JEWELS, "sent Sparkles", None, "JEWELS", "Sparkles", 10.0),
        ("@shujieh2297", CommentKind.SUPER_STICKER, "", 14.0, "TWD", None, 12.0),
        ("@ショーンノ", CommentKind.MEMBERSHIP, "Welcome to 開拓者組合!", None, None, None, 14.0),
    ]
    stats = source.stats
    assert stats.ignored == {"engagement": 1, "pinned": 1, "chat_summary": 1, "poll": 4, "creator_goal": 1,
                             "ticker": 1, "banner": 2, "system_message": 1}
    assert not stats.skipped
    line = stats.summary_line()
    assert line.startswith("source: jewels 2, membership 1, super_sticker 1, text 1; passed over: poll 4, banner 2")


async def test_a_2026_chat_downloader_log():
    assert detect_format(CD_2026.read_bytes()) is LogFormat.CHAT_DOWNLOADER
    items, source = await replay(CD_2026)
    got = [(c.id, c.author.name, c.author.channel_id, c.kind, c.amount, c.currency, c.gift_name) for c in items]
    assert got == [
        ("cd26-002", "@Sin_mikity", "UCNsoRXBX1aTRSCxRydFZ7nw", CommentKind.TEXT, None, None, None),
        ("cd26-003", "@yaniescobar2170", "", CommentKind.JEWELS, 10.0, "JEWELS", "Gold coin"),
        ("cd26-004", "@K1NGBOB1212", "UCk1ngbob0000000000000001", CommentKind.JEWELS, 50.0, "JEWELS", "Girl power"),
    ]
    assert source.stats.ignored == {"engagement": 1, "chat_summary": 1, "poll": 1, "gift_animation": 1,
                                    "mode_change": 1}
    assert not source.stats.skipped


async def test_a_transcript_keeps_a_jewels_gift(tmp_path):
    """Written by the transcript writer, read back as a chat log: the same gift."""
    from aituber.core.events import CommentSeen
    from aituber.outputs.transcript import TranscriptWriter

    stats = SourceStats()
    [gift] = [c for c in read_chat_log(YT_DLP_2026, YT_DLP_2026.read_bytes(), stats) if c.kind is CommentKind.JEWELS
              and c.amount]
    transcript = TranscriptWriter(tmp_path / "t.jsonl")
    await transcript.start()
    transcript.publish(CommentSeen(gift))
    await transcript.close()
    line = json.loads((tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert (line["kind"], line["amount"], line["currency"], line["gift_name"]) == ("jewels", 10.0, "JEWELS", "Gold coin")
    [back] = read_chat_log(tmp_path / "t.jsonl", (tmp_path / "t.jsonl").read_bytes(), SourceStats())
    assert back == gift
