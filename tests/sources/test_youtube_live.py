"""The live YouTube source against a fake YouTube (a real HTTP server on 127.0.0.1) that serves the
recorded responses in ../shared/fixtures/youtube in order, with injected faults."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from aituber.core.comment import Comment, CommentDeleted, CommentKind
from aituber.errors import ChatSourceError
from aituber.sources.youtube import Backoff, YouTubeChatSource
from tests.conftest import require_shared
from tests.sources import youtube_2026 as y2026
from aituber.bench.fake_youtube import (
    GARBAGE,
    RESET,
    SERVER_ERROR,
    TOO_MANY,
    FakeYouTube,
    Fault,
    Step,
    continuation_pages,
)

VIDEO = "dQw4w9WgXcQ"
CHAT_RENDERERS = ("liveChatTextMessageRenderer", "liveChatPaidMessageRenderer", "liveChatPaidStickerRenderer",
                  "liveChatMembershipItemRenderer", "liveChatSponsorshipsGiftPurchaseAnnouncementRenderer")
TIMEOUT = Fault("timeout", hang_s=0.6)  # the client gives up after 0.2 s


def shared_youtube() -> Path:
    return require_shared("fixtures", "youtube")


def load(name: str) -> dict[str, Any]:
    return json.loads((shared_youtube() / name).read_text(encoding="utf-8"))


def _actions(response: dict[str, Any]) -> list[dict[str, Any]]:
    return response["continuationContents"]["liveChatContinuation"].get("actions", [])


def _inner_actions(response: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for action in _actions(response):
        out.extend(action["replayChatItemAction"]["actions"] if "replayChatItemAction" in action else [action])
    return out


def unique(response: dict[str, Any], tag: str, continuation: str | None = None) -> dict[str, Any]:
    """The recorded responses reuse ids ("id", "dummy_id"): give each chat item its own."""
    response = copy.deepcopy(response)
    for n, action in enumerate(_inner_actions(response)):
        item = (action.get("addChatItemAction") or {}).get("item") or {}
        for renderer in item.values():
            renderer["id"] = f"{tag}-{n}"
    if continuation is not None:
        cont = response["continuationContents"]["liveChatContinuation"]["continuations"][0]
        next(iter(cont.values()))["continuation"] = continuation
    return response


def chat_ids(response: dict[str, Any]) -> list[str]:
    """The ids of the chat items in a response, read straight from the JSON."""
    ids = []
    for action in _inner_actions(response):
        item = (action.get("addChatItemAction") or {}).get("item") or {}
        for key, renderer in item.items():
            if key in CHAT_RENDERERS:
                ids.append(renderer["id"])
    return ids


def source_for(yt: FakeYouTube, **kwargs: Any) -> YouTubeChatSource:
    settings: dict[str, Any] = dict(timeout_s=0.2, min_poll_s=0.0, max_poll_s=0.0,
                                    backoff=Backoff(initial_s=0.01, max_s=0.05), transport=yt.transport)
    settings.update(kwargs)
    return YouTubeChatSource(f"https://www.youtube.com/watch?v={VIDEO}", **settings)


async def collect(source: YouTubeChatSource, limit_s: float = 20.0) -> list[Comment | CommentDeleted]:
    items = []
    async with asyncio.timeout(limit_s):
        async for item in source.items():
            items.append(item)
    return items


def actions_response(actions: list[dict[str, Any]]) -> dict[str, Any]:
    """Raw actions (chat-downloader's youtube_actions.json) as one get_live_chat response."""
    response = copy.deepcopy(load("youtube-chat/get_live_chat.normal.json"))
    response["continuationContents"]["liveChatContinuation"]["actions"] = actions
    return response


LIVE_RESPONSES = [
    "pytchat/test_stream.json", "pytchat/default_textmessage.json", "pytchat/default_superchat.json",
    "pytchat/default_supersticker.json", "pytchat/default_newSponsor_current.json",
    "pytchat/compatible_newSponsor_rev.json", "pytchat/unregistered_currency.json",
    "pytchat/chatreplay.json", "pytchat/default_replay_member_text.json",
    "youtube-chat/get_live_chat.normal.json", "youtube-chat/get_live_chat.no-chat.json",
    "youtube-chat/get_live_chat.from-owner.json", "youtube-chat/get_live_chat.from-moderator.json",
    "youtube-chat/get_live_chat.from-member.json", "youtube-chat/get_live_chat.from-verified.json",
    "youtube-chat/get_live_chat.custom-emoji.json", "youtube-chat/get_live_chat.global-emoji1.json",
    "youtube-chat/get_live_chat.global-emoji2.json", "youtube-chat/get_live_chat.super-chat.json",
    "youtube-chat/get_live_chat.super-sticker.json", "youtube-chat/get_live_chat.subscribe-member.json",
    "youtube-chat/get_live_chat.membership-gift.json",
]


async def test_every_item_kind_of_the_recorded_responses_and_the_end_of_the_stream():
    steps: list[Step] = [unique(load(name), name.split("/")[-1].removesuffix(".json")) for name in LIVE_RESPONSES]
    cd_actions = json.loads((shared_youtube() / "chat-downloader/youtube_actions.json").read_text(encoding="utf-8"))
    steps.append(actions_response(cd_actions))
    expected_ids = [i for step in steps for i in chat_ids(step)]

    with FakeYouTube(steps, ended=load("pytchat/finished_live.json")) as yt:
        source = source_for(yt)
        items = await collect(source)
        assert yt.steps_left == 0

    comments = {c.id: c for c in items if isinstance(c, Comment)}
    assert [c.id for c in items if isinstance(c, Comment)] == expected_ids  # nothing lost, nothing twice
    kinds = Counter(c.kind for c in comments.values())
    assert kinds == {CommentKind.TEXT: 60, CommentKind.SUPER_CHAT: 5, CommentKind.SUPER_STICKER: 4,
                     CommentKind.MEMBERSHIP: 4, CommentKind.GIFT: 1}

    # Authors' flags from their badges.
    assert comments["get_live_chat.from-owner-0"].author.is_owner
    assert comments["get_live_chat.from-moderator-0"].author.is_moderator
    assert comments["get_live_chat.from-verified-0"].author.is_verified
    assert comments["get_live_chat.from-member-0"].author.is_member
    assert comments["test_stream-1"].author.is_member and not comments["test_stream-0"].author.is_member
    # Emoji runs as their shortcut text; an emoji without a shortcut as the character itself.
    assert comments["get_live_chat.custom-emoji-0"].text == ":customEmoji:"
    assert comments["get_live_chat.global-emoji1-0"].text == ":clapping_hands:"
    assert comments["get_live_chat.global-emoji2-0"].text == "👏🏿"
    # Money: a number and an ISO code.
    paid = {c.id: (c.amount, c.currency) for c in comments.values() if c.kind.is_paid}
    assert paid["get_live_chat.super-chat-0"] == (1000.0, "JPY")
    assert paid["default_superchat-0"] == (800.0, "JPY")
    assert paid["test_stream-4"] == (10800.0, "JPY")
    assert paid["test_stream-5"] == (150.0, "JPY")
    assert paid["chatreplay-14"] == (20.0, "CZK")
    assert paid["get_live_chat.super-sticker-0"] == (90.0, "JPY")
    assert paid["unregistered_currency-0"] == (10800.0, "[UNREGISTERD]")  # kept as written
    sticker = comments["get_live_chat.super-sticker-0"]
    assert sticker.kind is CommentKind.SUPER_STICKER and sticker.text == ""
    # Memberships and the gift, in Japanese.
    assert comments["compatible_newSponsor_rev-0"].text == "新規メンバー"
    assert comments["get_live_chat.subscribe-member-0"].text == "上級エンジニア へようこそ！"
    assert comments["get_live_chat.subscribe-member-0"].author.is_member
    gift = comments["get_live_chat.membership-gift-0"]
    assert gift.kind is CommentKind.GIFT and gift.author.name == "authorName"
    assert gift.text == "10 件の 上級エンジニア のメンバーシップ ギフトを贈りました"
    assert comments["chatreplay-1"].text == "こんにちは"
    # The deletion in chat-downloader's actions; its ban names no comment seen here.
    deleted = [i for i in items if isinstance(i, CommentDeleted)]
    assert [d.comment_id for d in deleted] == [cd_actions[7]["markChatItemAsDeletedAction"]["targetItemId"]]
    # Arrival time and seconds since the source started.
    assert all(c.timestamp > 1.7e9 and c.offset_s is not None and c.offset_s >= 0 for c in comments.values())

    stats = source.stats
    assert stats.kinds["text"] == 60 and stats.kinds["deleted"] == 1
    assert stats.ignored["ticker"] == 6 and stats.ignored["placeholder"] == 4
    assert stats.ignored["banner"] == 1 and stats.ignored["pinned"] == 1 and stats.ignored["poll"] == 3
    assert not stats.faults and not stats.skipped


async def test_faults_reconnect_resume_and_lose_or_repeat_nothing(caplog):
    good = [unique(load(name), f"r{n}", continuation=f"cont-{n}") for n, name in enumerate([
        "youtube-chat/get_live_chat.normal.json", "pytchat/test_stream.json",
        "youtube-chat/get_live_chat.super-chat.json", "pytchat/chatreplay.json",
        "youtube-chat/get_live_chat.subscribe-member.json", "youtube-chat/get_live_chat.membership-gift.json",
        "youtube-chat/get_live_chat.super-sticker.json"])]
    steps: list[Step] = [good[0], TIMEOUT, good[1], TOO_MANY, good[2], SERVER_ERROR, good[3], RESET, good[4],
                         GARBAGE, good[5], good[5], good[6]]  # good[5] twice: a page YouTube sent again

    caplog.set_level(logging.INFO, logger="aituber.sources.youtube")
    with FakeYouTube(steps, ended=load("pytchat/finished_live.json")) as yt:
        source = source_for(yt)
        items = await collect(source)
        sent = yt.continuations

    expected = [i for page in good for i in chat_ids(page)]
    assert [c.id for c in items if isinstance(c, Comment)] == expected
    assert source.stats.faults == {"timeout": 1, "http_429": 1, "http_5xx": 1, "connection": 1, "bad_json": 1}
    assert source.stats.ignored["duplicate"] == len(chat_ids(good[5]))
    # After each fault the fresh connection asks again for the page that failed (resumes).
    for n, step in enumerate(steps):
        if isinstance(step, Fault):
            assert sent[n + 1] == sent[n], (n, sent)
    assert sent[1] == "cont-0" and sent[len(steps) - 1] == "cont-5"
    # Each fault episode is one warning; recovery is one line.
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 5 and all("reconnecting" in r.getMessage() for r in warnings)
    assert sum("reconnected after" in r.getMessage() for r in caplog.records) == 5


async def test_a_fault_episode_warns_once_and_backs_off(caplog):
    page = unique(load("youtube-chat/get_live_chat.normal.json"), "p")
    steps: list[Step] = [SERVER_ERROR, TOO_MANY, SERVER_ERROR, RESET, page]
    caplog.set_level(logging.INFO, logger="aituber.sources.youtube")
    with FakeYouTube(steps, ended=load("pytchat/finished_live.json")) as yt:
        source = source_for(yt)
        items = await collect(source)
    assert [i.id for i in items] == ["p-0"]
    assert sum(source.stats.faults.values()) == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "HTTP 500" in warnings[0]
    assert any("reconnected after 4 tries" in r.getMessage() for r in caplog.records)


async def test_an_ended_stream_ends_the_source():
    with FakeYouTube([], ended=load("pytchat/finished_live.json")) as yt:
        source = source_for(yt)
        assert await collect(source) == []
        assert any("get_live_chat_replay" in path for _, path in yt.requests)  # pytchat checked for a replay
    assert not source.stats.faults


async def test_a_video_without_chat_is_an_error():
    with FakeYouTube([], channel_id=None) as yt:
        with pytest.raises(ChatSourceError, match=VIDEO):
            await collect(source_for(yt))
    with FakeYouTube([{"responseContext": {"errors": {"error": [{"code": "NOT_FOUND"}]}}}]) as yt:
        with pytest.raises(ChatSourceError, match="private or deleted"):
            await collect(source_for(yt))


async def test_leaving_early_stops_the_worker():
    pages: list[Step] = [unique(load("youtube-chat/get_live_chat.normal.json"), f"p{n}") for n in range(50)]
    with FakeYouTube(pages) as yt:
        source = source_for(yt)
        async with asyncio.timeout(20):
            async for item in source.items():
                break
        assert item.id == "p0-0"
        name = f"aituber-{source.name}"
        async with asyncio.timeout(5):
            while any(t.name == name for t in threading.enumerate()):
                await asyncio.sleep(0.02)
        assert yt.steps_left > 0


def test_backoff_grows_is_capped_and_jittered():
    backoff = Backoff(initial_s=1.0, max_s=10.0, factor=2.0, jitter=0.5)
    assert [backoff.delay_s(n, rand=lambda: 0.0) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert backoff.delay_s(3, rand=lambda: 1.0) == 2.0
    assert all(2.0 <= backoff.delay_s(3) <= 4.0 for _ in range(100))


async def test_youtube_as_it_is_in_2026_through_the_live_source():
    """The 2026 first page, then pages of the 2026 single actions, with a fault between every two pages:
    every item comes out as its comment kind or is passed over for its reason; nothing else."""
    first = y2026.first_page()
    named = y2026.named_actions()
    assert set(named) == set(y2026.OUTCOMES)  # every recorded action has its expected outcome
    pages = continuation_pages(first, list(named.values()), per_page=7, tag="2026")
    faults = [TIMEOUT, TOO_MANY, RESET, GARBAGE, SERVER_ERROR]
    steps: list[Step] = [first]
    for n, page in enumerate(pages):
        steps += [faults[n % len(faults)], page] if n else [page]

    with FakeYouTube(steps, ended=load("pytchat/finished_live.json")) as yt:
        source = source_for(yt)
        items = await collect(source)
        assert yt.steps_left == 0
        sent = yt.continuations

    # After each fault, the fresh pytchat asks again for the page that failed: nothing is skipped.
    assert sent[1] == first["continuationContents"]["liveChatContinuation"]["continuations"][0][
        "invalidationContinuationData"]["continuation"]
    assert sent[2:len(steps)] == [f"2026-{n}" for n in range(1, len(pages)) for _ in (0, 1)]

    first_ids = [y2026.item_id(a) for a in y2026.page_actions(first)
                 if "liveChatTextMessageRenderer" in a.get("addChatItemAction", {}).get("item", {})]
    assert len(first_ids) == y2026.FIRST_PAGE_TEXTS
    expected_kinds = {i: CommentKind.TEXT for i in first_ids}
    expected_passed_over = Counter(y2026.FIRST_PAGE_PASSED_OVER)
    for name, action in named.items():
        outcome = y2026.OUTCOMES[name]
        if isinstance(outcome, CommentKind):
            expected_kinds[y2026.item_id(action)] = outcome
        else:
            expected_passed_over[outcome] += 1

    comments = [i for i in items if isinstance(i, Comment)]
    assert len(comments) == len(items)  # no deletions among them
    assert [c.id for c in comments] == list(expected_kinds)  # in order, nothing lost, nothing twice
    assert {c.id: c.kind for c in comments} == expected_kinds
    stats = source.stats
    assert stats.ignored == expected_passed_over
    assert stats.kinds == Counter(k.value for k in expected_kinds.values())
    assert not stats.skipped and "other" not in stats.ignored
    assert stats.faults == {"timeout": 1, "http_429": 1, "connection": 1, "bad_json": 1, "http_5xx": 1}
    assert sum(stats.kinds.values()) + sum(stats.ignored.values()) == y2026.FIRST_PAGE_TEXTS + sum(
        y2026.FIRST_PAGE_PASSED_OVER.values()) + len(named)

    by_id = {c.id: c for c in comments}
    # Leaderboard chips ("#3") sit beside the message, never in its text.
    chipped = y2026.chipped_texts(first)
    assert len(chipped) == y2026.FIRST_PAGE_CHIPS
    for comment_id, (chip, runs) in chipped.items():
        assert by_id[comment_id].text == runs and chip not in by_id[comment_id].text
    sin = by_id[y2026.item_id(named["ActionTestData.TextMessageWithLeaderboardRank_SinMikity"])]
    assert sin.text == "孔明の罠" and sin.author.is_member
    # Jewels gifts: the sender, the gift and what it cost in Jewels.
    gold = by_id[y2026.item_id(named["ActionTestData.GiftMessageViewModelAction"])]
    assert (gold.kind, gold.author.name, gold.gift_name, gold.amount, gold.currency) == (
        CommentKind.JEWELS, "@yaniescobar2170", "Gold coin", 10.0, "JEWELS")
    assert gold.kind.is_paid and gold.text == "sent Gold coin for 10 Jewels"
    sparkles = by_id[y2026.item_id(named["ActionTestData.GiftMessageViewModelWithAvatarAndGiftImage"])]
    assert (sparkles.author.name, sparkles.gift_name, sparkles.amount) == (
        "@franciscosaranteheredia1890", "Sparkles", None)
    bumper = by_id[y2026.item_id(named["SuperChatTestData.PaidStickerWithLowerBumper"])]
    assert (bumper.amount, bumper.currency, bumper.text) == (14.0, "TWD", "")
