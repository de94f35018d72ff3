"""The live source's resilience against the fake YouTube: the channel id found through oEmbed when
the embed page no longer names it (and looked up once per source), a reader that stops while the
stream is live replaced at once, hostile text in live items made valid."""

from __future__ import annotations

import copy
import json
import logging

import pytest

from aituber.bench.fake_youtube import (
    CHANNEL_ID,
    HANDLE,
    RESET,
    SERVER_ERROR,
    FakeYouTube,
    Step,
    stopped_page,
)
from aituber.core.comment import Comment
from aituber.errors import ChatSourceError
from aituber.sources.youtube import channel_id_from_embed, channel_id_from_page, oembed_author
from tests.sources.test_youtube_live import VIDEO, chat_ids, collect, load, source_for, unique


def pages(n: int) -> list[dict]:
    return [unique(load("youtube-chat/get_live_chat.normal.json"), f"p{i}", continuation=f"cont-{i}")
            for i in range(n)]


def gets(yt: FakeYouTube, prefix: str) -> int:
    return sum(1 for method, path in yt.requests if method == "GET" and path.startswith(prefix))


async def test_the_channel_is_found_through_oembed_when_the_embed_page_no_longer_names_it(caplog):
    caplog.set_level(logging.INFO, logger="aituber.sources.youtube")
    good = pages(3)
    with FakeYouTube(good, ended=load("pytchat/finished_live.json"), embed_channel=False) as yt:
        items = await collect(source_for(yt))
        assert gets(yt, "/oembed") == 1 and gets(yt, f"/{HANDLE}") == 1
    assert [c.id for c in items] == [i for page in good for i in chat_ids(page)]
    assert "channel found through oEmbed" in caplog.text


async def test_the_channel_is_looked_up_once_however_often_the_source_reconnects():
    good = pages(4)
    steps: list[Step] = [good[0], RESET, good[1], SERVER_ERROR, good[2], RESET, good[3]]
    with FakeYouTube(steps, ended=load("pytchat/finished_live.json")) as yt:
        source = source_for(yt)
        items = await collect(source)
        assert gets(yt, "/embed/") == 1  # not once per reconnect
    assert sum(source.stats.faults.values()) == 3
    assert [c.id for c in items] == [i for page in good for i in chat_ids(page)]


async def test_a_video_nobody_knows_is_still_an_error_naming_it():
    with FakeYouTube([], channel_id=None) as yt:
        with pytest.raises(ChatSourceError, match=f"{VIDEO}: not found, or it has no chat"):
            await collect(source_for(yt))
        assert gets(yt, "/oembed") == 1  # every way was asked


async def test_a_reader_that_stops_while_the_stream_is_live_is_replaced():
    good = pages(5)
    steps: list[Step] = [good[0], good[1], stopped_page(good[2]), good[3], good[4]]
    with FakeYouTube(steps, ended=load("pytchat/finished_live.json")) as yt:
        source = source_for(yt)
        items = await collect(source)
        assert yt.steps_left == 0
    assert [c.id for c in items] == [i for page in good for i in chat_ids(page)]  # nothing lost after it
    assert source.stats.faults == {"reader_stopped": 1}


async def test_readers_that_stop_again_and_again_end_the_source():
    good = pages(2)
    steps: list[Step] = [good[0], stopped_page(good[1]), stopped_page(pages(3)[2])]
    with FakeYouTube(steps, ended=load("pytchat/finished_live.json")) as yt:
        source = source_for(yt)
        items = await collect(source)
    assert len(items) == 3 * len(chat_ids(good[0]))  # what they brought, then the end
    assert source.stats.faults == {"reader_stopped": 1}


async def test_surrogates_and_controls_in_live_items_are_made_valid():
    page = unique(load("youtube-chat/get_live_chat.normal.json"), "h")
    renderer = page["continuationContents"]["liveChatContinuation"]["actions"][0]["addChatItemAction"]["item"][
        "liveChatTextMessageRenderer"]
    renderer["message"] = {"runs": [{"text": "やあ\ud800\u0000"}, {"text": "\ufeffです"}]}
    renderer["authorName"] = {"simpleText": "荒らし\udfff\n"}
    with FakeYouTube([page], ended=load("pytchat/finished_live.json")) as yt:
        [comment] = await collect(source_for(yt))
    assert isinstance(comment, Comment)
    assert comment.text == "やあ\ufffdです" and comment.author.name == "荒らし\ufffd "
    comment.text.encode("utf-8")


def test_channel_ids_in_pages_and_oembed_answers():
    assert channel_id_from_embed(f'var x = "{{\\"channelId\\":\\"{CHANNEL_ID}\\"}}";') == CHANNEL_ID
    assert channel_id_from_embed("<html>This video is unavailable</html>") is None
    assert channel_id_from_page(f'{{"metadata":{{"externalId":"{CHANNEL_ID}"}}}}') == CHANNEL_ID
    assert channel_id_from_page(f'<link rel="canonical" href="https://www.youtube.com/channel/{CHANNEL_ID}">') == \
        CHANNEL_ID
    assert oembed_author(json.dumps({"author_url": f"https://www.youtube.com/channel/{CHANNEL_ID}"})) == (
        CHANNEL_ID, f"https://www.youtube.com/channel/{CHANNEL_ID}")
    assert oembed_author(json.dumps({"author_url": "https://www.youtube.com/@mika"})) == (
        None, "https://www.youtube.com/@mika")
    for bad in ("not json", "[]", json.dumps({"author_url": "javascript:alert(1)"}), json.dumps({"author_url": 3})):
        assert oembed_author(bad) == (None, None)
    assert copy.deepcopy(stopped_page(pages(1)[0]))["continuationContents"]["liveChatContinuation"][
        "continuations"] == [{"invalidationContinuationData": {
            k: v for k, v in pages(1)[0]["continuationContents"]["liveChatContinuation"]["continuations"][0][
                "invalidationContinuationData"].items() if k != "continuation"}}]
