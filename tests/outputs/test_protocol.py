"""The message schema (aituber.core.messages) that the overlay and MQTT send: no sockets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aituber.core.comment import Author, Comment, CommentKind
from aituber.core.events import (
    CommentSeen,
    CommentSelected,
    CommentSkipped,
    ReplyCancelled,
    ReplyDelta,
    ReplyEnded,
    ReplySentence,
    ReplyStarted,
    SpeechEnded,
    SpeechStarted,
    StatusChanged,
    VoiceStatus,
)
from aituber.core.messages import PROTOCOL_VERSION, event_to_message, speech_audio_frame, state_message

TS = 1764300000.5
PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
COMMENT = Comment(id="c1", author=Author("たぬき丸", channel_id="UC1", is_member=True), text="スパチャです",
                  kind=CommentKind.SUPER_CHAT, amount=1000.0, currency="JPY", timestamp=1764299990.0,
                  offset_s=12.5)


def test_every_event_becomes_one_typed_message():
    cases = [
        (CommentSelected(COMMENT, "r1", 1.23456),
         {"type": "comment_selected", "reply_id": "r1", "queued_s": 1.235, "ts": TS}),
        (ReplyStarted("r1", "c1"), {"type": "reply_start", "reply_id": "r1", "comment_id": "c1", "ts": TS}),
        (ReplyDelta("r1", "こん"), {"type": "reply_delta", "reply_id": "r1", "text": "こん", "ts": TS}),
        (ReplySentence("r1", "こんにちは。", 0),
         {"type": "reply_sentence", "reply_id": "r1", "index": 0, "text": "こんにちは。", "ts": TS}),
        (ReplyEnded("r1", "c1", "こんにちは。", "stop", 0.1, 0.4, 7),
         {"type": "reply_end", "reply_id": "r1", "comment_id": "c1", "text": "こんにちは。", "stop_reason": "stop",
          "ts": TS}),
        (ReplyCancelled("r1", "skip"), {"type": "reply_cancelled", "reply_id": "r1", "reason": "skip", "ts": TS}),
        (CommentSkipped(COMMENT, "queue_full"),
         {"type": "skipped", "comment_id": "c1", "reason": "queue_full", "ts": TS}),
        (StatusChanged("paused"), {"type": "status", "status": "paused", "ts": TS}),
        (SpeechStarted("r1", 0, "こんにちは、", 0.8123, TS - 1, TS - 1.2, 0.05, b"RIFF..."),
         {"type": "speech", "reply_id": "r1", "index": 0, "text": "こんにちは、", "duration_s": 0.812,
          "start_ts": TS - 1, "audio": True, "ts": TS}),
        (SpeechStarted("r1", 1, "＊＊", 0.0, TS, TS, None, None, "empty"),
         {"type": "speech", "reply_id": "r1", "index": 1, "text": "＊＊", "duration_s": 0.0, "start_ts": TS,
          "audio": False, "ts": TS}),
        (VoiceStatus("voicevox", False, "down"), {"type": "voice", "engine": "voicevox", "available": False, "ts": TS}),
    ]
    for event, want in cases:
        message = event_to_message(event, TS)
        assert message is not None
        message.pop("comment", None)
        assert message == want, type(event).__name__
    assert event_to_message(CommentSeen(COMMENT), TS) is None
    assert event_to_message(SpeechEnded("r1", 0, "x", TS, None, TS, TS, 0.0, False, False), TS) is None


def test_audio_frame_is_header_length_header_and_the_wav():
    event = SpeechStarted("r7", 3, "やっほー", 1.0, TS, TS, 0.1, b"RIFF\x00\x01")
    frame = speech_audio_frame(event)
    size = int.from_bytes(frame[:4], "big")
    assert json.loads(frame[4:4 + size]) == {"type": "speech_audio", "reply_id": "r7", "index": 3, "format": "wav"}
    assert frame[4 + size:] == b"RIFF\x00\x01"
    with pytest.raises(ValueError):
        speech_audio_frame(SpeechStarted("r7", 4, "", 0.0, TS, TS, None, None, "empty"))


def test_comment_carries_its_author_and_amount_but_not_the_replay_offset():
    message = event_to_message(CommentSelected(COMMENT, "r1", 0.0), TS)
    assert message is not None
    assert message["comment"] == {
        "id": "c1", "author": {"name": "たぬき丸", "channel_id": "UC1", "owner": False, "moderator": False,
                               "member": True, "verified": False},
        "kind": "super_chat", "text": "スパチャです", "amount": 1000.0, "currency": "JPY",
        "timestamp": 1764299990.0}
    json.dumps(message, ensure_ascii=False)  # plain JSON values only


def test_state_and_unknown_status():
    state = state_message({"id": "mika", "name": "星乃ミカ"}, None, "online", TS)
    assert state == {"type": "state", "version": PROTOCOL_VERSION, "character": {"id": "mika", "name": "星乃ミカ"},
                     "current": None, "status": "online", "voice": None, "ts": TS}
    with pytest.raises(ValueError, match="unknown status"):
        event_to_message(StatusChanged("sleeping"), TS)


def test_the_protocol_document_names_every_message_type():
    doc = PROTOCOL_DOC.read_text(encoding="utf-8")
    assert f"Protocol version: {PROTOCOL_VERSION}" in doc
    for kind in ("state", "comment_selected", "reply_start", "reply_delta", "reply_sentence", "reply_end",
                 "reply_cancelled", "skipped", "status", "speech", "voice", "speech_audio"):
        assert f"`{kind}`" in doc, kind
    for code in ("4000", "1001", "1011", "401", "403"):
        assert code in doc
