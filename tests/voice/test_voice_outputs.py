"""Where the voice's events go besides the pages: MQTT (a real mosquitto), the transcript, and the
overlay's state for a page that connects while the character speaks."""

from __future__ import annotations

import json

import aiomqtt
from websockets.asyncio.client import connect

from aituber.core.chatlog import parse_record
from aituber.core.comment import Author, Comment
from aituber.core.events import (
    CommentSelected,
    ReplyDelta,
    ReplyEnded,
    ReplyStarted,
    SpeechEnded,
    SpeechStarted,
    VoiceStatus,
)
from aituber.outputs.overlay import OverlayServer
from aituber.outputs.transcript import TranscriptWriter
from tests.outputs.conftest import mosquitto, mosquitto_factory  # noqa: F401 (fixtures)
from tests.outputs.test_mqtt import BASE, make_output, receive, running

T0 = 1764300000.0
CLAUSE = SpeechStarted("r1", 0, "こんにちは、", 1.25, T0 + 1, T0 + 0.9, 0.08, b"RIFF-not-sent-to-mqtt")


async def test_mqtt_announces_each_clause_for_lip_sync(mosquitto):  # noqa: F811
    output = make_output(mosquitto.port)
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as watcher, running(output):
        await watcher.subscribe(f"{BASE}/speech", qos=1)
        output.publish(CLAUSE)
        output.publish(SpeechEnded("r1", 0, "こんにちは、", T0 + 0.9, 0.08, T0 + 1, T0 + 2.25, 1.25, True, False))
        (message,) = await receive(watcher, 1)
    speech = json.loads(message.payload)
    assert message.topic.value == f"{BASE}/speech" and message.qos == 1
    assert {k: speech[k] for k in ("type", "reply_id", "index", "text", "duration_s", "start_ts", "audio")} == {
        "type": "speech", "reply_id": "r1", "index": 0, "text": "こんにちは、", "duration_s": 1.25,
        "start_ts": T0 + 1, "audio": True}


async def test_transcript_records_each_clause_and_stays_replayable(tmp_path):
    path = tmp_path / "t.jsonl"
    writer = TranscriptWriter(path)
    await writer.start()
    writer.publish(VoiceStatus("openjtalk", True))
    writer.publish(CLAUSE)  # the start is not a line: the end carries every time
    writer.publish(SpeechEnded("r1", 0, "こんにちは、", T0 + 0.9, 0.08, T0 + 1, T0 + 1.5, 1.25, True, True))
    writer.publish(SpeechEnded("r1", 1, "＊＊", T0 + 1, None, T0 + 1.5, T0 + 1.5, 0.0, False, False, "empty"))
    await writer.close()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["type"] for line in lines] == ["voice", "speech", "speech"]
    first = lines[1]
    assert (first["clause_at"], first["synthesis_s"], first["play_start"], first["play_end"], first["stopped"]) == (
        T0 + 0.9, 0.08, T0 + 1, T0 + 1.5, True)
    assert lines[2]["spoken"] is False and lines[2]["silent_reason"] == "empty"
    assert all(parse_record(line, default_id="x") is None for line in lines)  # a transcript is a chat log


async def test_a_page_connecting_mid_speech_gets_what_was_said_and_no_audio():
    overlay = OverlayServer(port=0, character={"id": "mika", "name": "星乃ミカ"})
    await overlay.start()
    try:
        url = f"ws://127.0.0.1:{overlay.port}/ws"
        async with connect(url + "?audio=1") as listening, connect(url) as silent:
            for ws in (listening, silent):
                assert json.loads(await ws.recv())["voice"] is None
            overlay.publish(VoiceStatus("openjtalk", True))
            overlay.publish(CommentSelected(Comment(id="c1", author=Author("たぬき丸"), text="やあ"), "r1", 0.1))
            overlay.publish(ReplyStarted("r1", "c1"))
            overlay.publish(ReplyDelta("r1", "こんにちは、ミカだよ。"))
            overlay.publish(ReplyEnded("r1", "c1", "こんにちは、ミカだよ。", "stop", 0.1, 0.3, 5))
            overlay.publish(CLAUSE)
            frames = [await listening.recv() for _ in range(7)]
            binary = [f for f in frames if isinstance(f, bytes)]
            assert len(binary) == 1 and binary[0].endswith(CLAUSE.audio)
            assert json.loads(frames[frames.index(binary[0]) + 1])["type"] == "speech"  # audio first, then its text
            plain = [await silent.recv() for _ in range(6)]
            assert all(isinstance(f, str) for f in plain)  # no audio unless asked for
            assert json.loads(plain[-1])["type"] == "speech"
            async with connect(url + "?audio=1") as late:
                state = json.loads(await late.recv())
                assert state["version"] == 2 and state["voice"] == {"engine": "openjtalk", "available": True}
                assert state["current"]["spoken"] == "こんにちは、" and state["current"]["ended"] is True
                overlay.publish(SpeechStarted("r1", 1, "ミカだよ。", 1.0, T0 + 2, T0 + 1, 0.05, b"RIFF2"))
                first = await late.recv()
                assert isinstance(first, bytes) and first.endswith(b"RIFF2")  # only what starts after it joined
    finally:
        await overlay.close()
