"""The bot with MQTT on, against a real mosquitto: control messages drive the pipeline, and a
broker killed mid-run neither stops the answers nor loses the later events."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest

from aituber.app import Pipeline
from aituber.config import load_character
from aituber.core.comment import Author, Comment
from aituber.core.events import ReplyEnded, StatusChanged
from aituber.engine.ct2 import CTranslate2Engine as Engine
from aituber.outputs.mqtt import MqttOutput
from aituber.settings import MqttSettings
from tests.outputs.test_mqtt import receive, until
from tests.test_pipeline_behaviour import Collect, QueueSource

pytestmark = pytest.mark.slow
BASE = "aituber/mika"


def comment(i: int) -> Comment:
    return Comment(id=f"c{i}", author=Author(f"viewer{i}", f"UC{i:022d}"), text=f"こんにちは{i}")


async def test_control_topic_and_broker_restart_with_the_real_pipeline(mosquitto_factory, tiny_model,
                                                                       sample_character):
    broker = mosquitto_factory()
    character = load_character(sample_character).character
    source, out = QueueSource(), Collect()
    mqtt = MqttOutput(MqttSettings(host="127.0.0.1", port=broker.port), "mika", retry_min_s=0.05,
                      retry_max_s=0.2, timeout_s=5)
    with Engine(tiny_model, device="cpu", compute_type="float32") as engine:
        pipeline = Pipeline(character=character, engine=engine, source=source, outputs=[out, mqtt])
        mqtt.on_control = pipeline.handle_control
        mqtt_task = asyncio.create_task(mqtt.run())
        run = asyncio.create_task(pipeline.run())
        try:
            await until(lambda: mqtt.connected, "connected")
            async with aiomqtt.Client("127.0.0.1", broker.port) as client:
                await client.subscribe(f"{BASE}/reply", qos=1)
                # pause / say / resume through the control topic
                await client.publish(f"{BASE}/control", b"pause", qos=1)
                await out.wait_for(lambda: any(e.status == "paused" for e in out.of(StatusChanged)))
                source.put(comment(1))
                await client.publish(f"{BASE}/control", json.dumps({"command": "say", "text": "マイクテスト"}), qos=1)
                (said,) = await receive(client, 1)
                assert json.loads(said.payload)["text"] == "マイクテスト"
                assert not any(e.comment_id == "c1" for e in out.of(ReplyEnded))  # paused: not answered
                await client.publish(f"{BASE}/control", b'{"command": "resume"}', qos=1)
                (answer,) = await receive(client, 1)
                assert json.loads(answer.payload)["comment_id"] == "c1"

            broker.kill()
            await until(lambda: not mqtt.connected, "the loss noticed")
            source.put(comment(2))  # the bot keeps answering while the broker is down
            await out.wait_for(lambda: any(e.comment_id == "c2" for e in out.of(ReplyEnded)))
            broker.start()
            await until(lambda: mqtt.connected and not mqtt._queue, "reconnected, the outage's events sent")
            async with aiomqtt.Client("127.0.0.1", broker.port) as client:
                await client.subscribe(f"{BASE}/reply", qos=1)
                source.put(comment(3))
                texts = [json.loads(m.payload)["comment_id"] for m in await receive(client, 1)]
            assert texts == ["c3"]
        finally:
            source.close()
            await asyncio.wait_for(run, 60)
            await mqtt.close()
            await asyncio.wait_for(mqtt_task, 10)
