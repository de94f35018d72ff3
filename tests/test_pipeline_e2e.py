"""The whole path with real parts: replay log -> moderation -> queue -> CTranslate2 -> WebSocket + transcript."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import ctranslate2
import pytest
from websockets.asyncio.client import connect

from aituber.app import Pipeline
from aituber.config import load_character
from aituber.core.comment import Author, Comment, CommentDeleted
from aituber.core.events import CommentSkipped
from aituber.engine.ct2 import CTranslate2Engine as Engine
from aituber.outputs.overlay import OverlayServer
from aituber.outputs.transcript import TranscriptWriter
from aituber.sources.replay import ReplayChatSource
from tests.conftest import FIXTURES

pytestmark = pytest.mark.slow


@pytest.fixture
def engine(tiny_model):
    with Engine(tiny_model, device="cpu", compute_type="float32") as engine:
        yield engine


async def test_replay_reaches_a_websocket_client_and_the_transcript(engine, sample_character, tmp_path):
    ctranslate2.set_random_seed(7)
    character = load_character(sample_character).character
    # Replies are shown as they stream; keep long ones whole (no cut at the last sentence) here.
    character = character.model_copy(update={
        "generation": character.generation.model_copy(update={"cut_long_replies": False})})
    overlay = OverlayServer(port=0, character={"id": character.id, "name": character.name})
    await overlay.start()
    transcript = TranscriptWriter(tmp_path / "transcript.jsonl")
    await transcript.start()
    source = ReplayChatSource(FIXTURES / "chat_small.jsonl", fast=True)
    messages: list[dict] = []
    try:
        async with connect(f"ws://127.0.0.1:{overlay.port}/ws", ping_interval=None) as ws:
            hello = json.loads(await ws.recv())
            assert hello["type"] == "state" and hello["character"]["name"] == character.name
            pipeline = Pipeline(character=character, engine=engine, source=source, outputs=[overlay, transcript])
            stats = await pipeline.run()
            async with asyncio.timeout(10):
                while sum(m["type"] == "reply_end" for m in messages) < stats.answered:
                    messages.append(json.loads(await ws.recv()))
    finally:
        await transcript.close()
        await overlay.close()

    # The log has 11 chat lines and 1 deletion; 3 lines are malformed (not JSON, no author, bad kind).
    assert source.stats.skipped["malformed"] == 3
    assert stats.seen == 8
    assert stats.skipped["empty"] == 1
    assert stats.answered >= 5

    records = [json.loads(line) for line in (tmp_path / "transcript.jsonl").read_text(encoding="utf-8").splitlines()]
    replies = [r for r in records if r["type"] == "reply"]
    selected_order = [r["comment_id"] for r in records if r["type"] == "selected"]
    assert len(replies) == stats.answered

    # Per reply, in order: comment_selected, reply_start, deltas, reply_end; deltas joined == transcript text.
    deltas: dict[str, list[str]] = defaultdict(list)
    order: list[str] = []
    state: dict[str, str] = {}
    for m in messages:
        rid = m.get("reply_id")
        if m["type"] == "comment_selected":
            assert rid not in state
            state[rid] = "selected"
            order.append(m["comment"]["id"])
        elif m["type"] == "reply_start":
            assert state[rid] == "selected"
            state[rid] = "started"
        elif m["type"] == "reply_delta":
            assert state[rid] == "started" and m["text"]
            deltas[rid].append(m["text"])
        elif m["type"] == "reply_end":
            assert state[rid] == "started"
            state[rid] = "ended"
            transcript_reply = next(r for r in replies if r["reply_id"] == rid)
            assert "".join(deltas[rid]) == m["text"] == transcript_reply["text"]
    assert order == selected_order == [r["comment_id"] for r in replies]
    assert set(state.values()) == {"ended"}
    assert any(r["text"] for r in replies), "the tiny model should produce some text"
    # Whole characters only: nothing undecodable or control characters reach the overlay.
    for parts in deltas.values():
        for part in parts:
            assert "\ufffd" not in part and not any(ord(ch) < 32 and ch != "\n" for ch in part)

    # The HTML comment travels as data (the page inserts it as text).
    html = next(m for m in messages if m["type"] == "comment_selected" and m["comment"]["id"] == "s05")
    assert html["comment"]["text"].startswith("<img src=x")

    # The transcript is replayable as a chat log: the same comments come back.
    again = ReplayChatSource(tmp_path / "transcript.jsonl", fast=True)
    replayed = [item async for item in again.items()]
    assert [c.id for c in replayed] == [r["id"] for r in records if r["type"] == "comment"]
    assert again.stats.skipped["malformed"] == 0


async def test_late_client_gets_the_reply_so_far(engine, sample_character):
    overlay = OverlayServer(port=0)
    await overlay.start()
    try:
        from aituber.core.events import CommentSelected, ReplyDelta, ReplyStarted

        comment = Comment(id="c1", author=Author("たぬき丸"), text="こんにちは")
        overlay.publish(CommentSelected(comment, "r1", 0.0))
        overlay.publish(ReplyStarted("r1", "c1"))
        overlay.publish(ReplyDelta("r1", "やっほー"))
        overlay.publish(ReplyDelta("r1", "だよ"))
        async with connect(f"ws://127.0.0.1:{overlay.port}/ws") as ws:
            hello = json.loads(await ws.recv())
        assert hello["current"]["comment"]["text"] == "こんにちは"
        assert hello["current"]["text"] == "やっほーだよ"
    finally:
        await overlay.close()


def test_deletion_removes_a_queued_comment(sample_character):
    character = load_character(sample_character).character
    events = []

    class Collect:
        def publish(self, event):
            events.append(event)

    pipeline = Pipeline(character=character, engine=None, source=None, outputs=[Collect()])  # type: ignore[arg-type]
    comment = Comment(id="c1", author=Author("もち"), text="消されるコメント")
    pipeline.accept(comment)
    assert len(pipeline.queue) == 1
    pipeline.accept(CommentDeleted("c1"))
    assert len(pipeline.queue) == 0
    assert CommentSkipped(comment, "deleted") in events
    pipeline.accept(CommentDeleted("unknown"))  # a deletion of something never queued is harmless
