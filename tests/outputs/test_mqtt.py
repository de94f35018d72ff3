"""MqttOutput against a real mosquitto: topics, QoS 1, retained status and last will, control
messages, an unreachable broker, and a broker killed and restarted under a running bot."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiomqtt
import pytest

from aituber.core.comment import Author, Comment
from aituber.core.events import (
    CommentSeen,
    CommentSelected,
    CommentSkipped,
    ReplyCancelled,
    ReplyDelta,
    ReplyEnded,
    ReplySentence,
    ReplyStarted,
    StatusChanged,
)
from aituber.errors import ConfigError
from aituber.outputs.mqtt import MqttOutput
from aituber.settings import MqttSettings

BASE = "aituber/mika"
COMMENT = Comment(id="c1", author=Author("たぬき丸"), text="こんばんは")


async def until(predicate: Callable[[], bool], what: str, timeout_s: float = 10) -> None:
    """Wait for a condition (the timeout only bounds a hung test)."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.01)


@asynccontextmanager
async def running(output: MqttOutput) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(output.run(), name="mqtt-under-test")
    try:
        yield task
    finally:
        await output.close(timeout_s=5)
        assert task.done()


def make_output(port: int, on_control=None, **kwargs) -> MqttOutput:
    kwargs = {"retry_min_s": 0.05, "retry_max_s": 0.2, "timeout_s": 5} | kwargs
    return MqttOutput(MqttSettings(host="127.0.0.1", port=port), "mika", on_control, **kwargs)


async def receive(client: aiomqtt.Client, count: int) -> list[aiomqtt.Message]:
    out: list[aiomqtt.Message] = []
    async with asyncio.timeout(10):
        async for message in client.messages:
            out.append(message)
            if len(out) == count:
                return out
    return out


async def retained_status(port: int) -> str:
    """The retained status as a newly connected client sees it."""
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(f"{BASE}/status", qos=1)
        (message,) = await receive(client, 1)
        assert message.retain
        return message.payload.decode()


def reply_events() -> list:
    ended = ReplyEnded(reply_id="r1", comment_id="c1", text="やっほー。元気？", stop_reason="stop",
                       first_token_s=0.1, total_s=0.5, tokens=9)
    return [CommentSeen(COMMENT), CommentSelected(COMMENT, "r1", 1.25), ReplyStarted("r1", "c1"),
            ReplyDelta("r1", "やっほー。"), ReplySentence("r1", "やっほー。", 0), ReplyDelta("r1", "元気？"),
            ReplySentence("r1", "元気？", 1), ended,
            CommentSkipped(Comment(id="c2", author=Author("x"), text="spam"), "ng_word")]


def test_settings_turn_mqtt_off_without_a_host():
    assert not MqttSettings().enabled
    assert MqttSettings(host="broker.local").enabled
    with pytest.raises(ConfigError, match="no broker host"):
        MqttOutput(MqttSettings(), "mika")
    for prefix, character in (("a/+", "mika"), ("aituber", "mi#ka"), ("", "mika"), ("aituber/", "mika")):
        with pytest.raises(ConfigError, match="topic"):
            MqttOutput(MqttSettings(host="h", topic_prefix=prefix), character)


async def test_events_arrive_on_their_topics_with_qos1(mosquitto):
    output = make_output(mosquitto.port)
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as watcher, running(output):
        await watcher.subscribe(f"{BASE}/#", qos=1)
        (status,) = await receive(watcher, 1)
        assert (status.topic.value, status.payload, status.qos) == (f"{BASE}/status", b"online", 1)
        for event in reply_events():
            output.publish(event)
        output.publish(ReplyCancelled("r1", "skip"))
        got = await receive(watcher, 5)

    assert [m.topic.value for m in got] == [f"{BASE}/{t}" for t in ("comment", "sentence", "sentence", "reply",
                                                                     "cancelled")]
    assert all(m.qos == 1 and not m.retain for m in got)
    comment, first, second, reply, cancelled = (json.loads(m.payload) for m in got)
    assert comment["type"] == "comment_selected" and comment["reply_id"] == "r1"
    assert comment["comment"]["id"] == "c1" and comment["comment"]["author"]["name"] == "たぬき丸"
    assert [first["index"], first["text"], second["index"], second["text"]] == [0, "やっほー。", 1, "元気？"]
    assert {k: reply[k] for k in ("type", "reply_id", "comment_id", "text", "stop_reason")} == {
        "type": "reply_end", "reply_id": "r1", "comment_id": "c1", "text": "やっほー。元気？", "stop_reason": "stop"}
    assert cancelled["reply_id"] == "r1" and cancelled["reason"] == "skip"
    assert all(isinstance(json.loads(m.payload)["ts"], float) for m in got)
    # close() said goodbye: the retained status is offline.
    assert await retained_status(mosquitto.port) == "offline"


async def test_status_is_retained_and_follows_the_bot(mosquitto):
    output = make_output(mosquitto.port)
    async with running(output):
        await until(lambda: output.connected, "connected")
        assert await retained_status(mosquitto.port) == "online"
        output.publish(StatusChanged("paused"))
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as watcher:
            await watcher.subscribe(f"{BASE}/status", qos=1)
            seen = [m.payload for m in await receive(watcher, 1)]
            if seen == [b"online"]:  # subscribed before the change went out
                seen += [m.payload for m in await receive(watcher, 1)]
        assert seen[-1] == b"paused"
        assert await retained_status(mosquitto.port) == "paused"
    assert await retained_status(mosquitto.port) == "offline"


async def test_last_will_says_offline_when_the_connection_dies(mosquitto):
    output = make_output(mosquitto.port)
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as watcher, running(output):
        await watcher.subscribe(f"{BASE}/status", qos=1)
        assert [m.payload for m in await receive(watcher, 1)] == [b"online"]
        # Cut the bot's TCP connection without an MQTT DISCONNECT, as a crash or a pulled cable would.
        output._client._client.socket().shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
        # The broker publishes the will; the output reconnects and claims the status back.
        assert [m.payload for m in await receive(watcher, 2)] == [b"offline", b"online"]
        assert output.connects == 2


async def test_control_messages_reach_the_callback(mosquitto, caplog):
    got: list[bytes] = []

    def on_control(payload: bytes) -> None:
        got.append(payload)
        if payload == b"boom":
            raise ValueError("a broken handler")

    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as admin:
        # A retained command is stale by the time the bot connects: it must not run.
        await admin.publish(f"{BASE}/control", b"!ban old", qos=1, retain=True)
        output = make_output(mosquitto.port, on_control)
        async with running(output):
            await until(lambda: output.connected, "connected")
            await until(lambda: any("retained" in r.getMessage() for r in caplog.records), "retained warning")
            commands = [json.dumps({"command": "say", "text": "こんにちは"}, ensure_ascii=False).encode(),
                        b"boom", b"!say hi", b"pause"]
            for payload in commands:
                await admin.publish(f"{BASE}/control", payload, qos=1)
            await until(lambda: len(got) == 4, "four commands")
            assert output.connects == 1  # the failing handler did not break the connection
        await admin.publish(f"{BASE}/control", b"", qos=1, retain=True)  # clear the retained one
    assert got == commands
    assert any("control handler failed" in r.getMessage() for r in caplog.records)


async def test_unreachable_broker_at_start_is_retried(mosquitto_factory, caplog):
    caplog.set_level(logging.DEBUG, logger="aituber.outputs.mqtt")
    broker = mosquitto_factory(start=False)
    output = make_output(broker.port)
    async with running(output) as task:
        await until(lambda: sum("still cannot reach" in r.getMessage() for r in caplog.records) >= 2, "retries")
        output.publish(ReplySentence("r1", "まだ誰もいない。", 0))  # queued, no error
        assert not task.done() and not output.connected
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "cannot reach the broker" in warnings[0].getMessage()

        broker.start()
        async with aiomqtt.Client("127.0.0.1", broker.port) as watcher:
            await watcher.subscribe(f"{BASE}/sentence", qos=1)
            await until(lambda: output.connected, "connected")
            output.publish(ReplySentence("r1", "来た！", 1))
            texts: list[str] = []
            async with asyncio.timeout(10):
                async for message in watcher.messages:
                    texts.append(json.loads(message.payload)["text"])
                    if texts[-1] == "来た！":
                        break
    # The one queued before the broker came up went out first (unless the watcher subscribed
    # after it did; test_broker_killed_and_restarted checks the queue without that race).
    assert texts in (["まだ誰もいない。", "来た！"], ["来た！"])


async def test_broker_killed_and_restarted(mosquitto_factory):
    broker = mosquitto_factory(persistence=True, start=True)
    # A persistent session (saved before the kill) collects what the broker receives while the
    # watcher is away, so nothing depends on who reconnects first after the restart.
    watcher = dict(hostname="127.0.0.1", port=broker.port, identifier="watcher", clean_session=False)
    async with aiomqtt.Client(**watcher) as client:
        await client.subscribe(f"{BASE}/sentence", qos=1)
    await until(broker.db.exists, "the broker saved the session")

    output = make_output(broker.port, queue_size=5)
    async with running(output) as task:
        await until(lambda: output.connected, "connected")
        broker.kill()
        await until(lambda: not output.connected, "the loss noticed")
        for i in range(1, 9):  # more than the queue holds: the oldest three are dropped
            output.publish(ReplySentence("r1", f"s{i}", i))
        assert output.dropped == 3 and not task.done()

        broker.start()
        await until(lambda: output.connects == 2 and not output._queue, "reconnected and flushed")
        output.publish(ReplySentence("r2", "later", 0))
        await until(lambda: not output._queue, "sent")
        async with aiomqtt.Client(**watcher) as client:
            texts = [json.loads(m.payload)["text"] for m in await receive(client, 6)]
    assert texts == ["s4", "s5", "s6", "s7", "s8", "later"]
