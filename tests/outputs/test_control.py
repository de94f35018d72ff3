"""The control panel's server side over real sockets: who gets in (token, Host, Origin), and a real
WebSocket client driving the real pipeline (scripted engine) through it, with the commands on a real
mosquitto broker and in the transcript."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import aiomqtt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from aituber.app import run_pipeline
from aituber.config import load_character
from aituber.core.comment import Author, Comment
from aituber.core.events import CommandExecuted, ReplyEnded, StatusChanged
from aituber.outputs.base import ControlBridge, EventBridge, PortRoutes, StateBridge
from aituber.outputs.control import ControlPanel
from aituber.outputs.mqtt import MqttOutput
from aituber.outputs.overlay import OverlayServer
from aituber.outputs.transcript import TranscriptWriter
from aituber.settings import MqttSettings
from tests.outputs.test_mqtt import receive, until
from tests.scripted_engine import ScriptedEngine
from tests.test_pipeline_behaviour import Collect, QueueSource

TOKEN = "panel-secret-123"


async def http_status(port: int, path: str, host: str | None = None, **headers: str) -> tuple[int, str]:
    """(status, the whole response) of a raw HTTP/1.1 request, with the headers as given."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"GET {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}",
             *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()), "", ""]
    writer.write("\r\n".join(lines).encode())
    await writer.drain()
    data = b""
    async with asyncio.timeout(5):
        while b"\r\n\r\n" not in data:
            chunk = await reader.read(65536)
            if not chunk:
                break
            data += chunk
    writer.close()
    text = data.decode("utf-8", "replace")
    return int(text.split()[1]), text


def ws_headers(**extra: str) -> dict[str, str]:
    return {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13", **extra}


@contextlib.asynccontextmanager
async def panel_on_overlay(overlay_token: str | None = None) -> AsyncIterator[tuple[OverlayServer, ControlPanel]]:
    routes = PortRoutes()
    overlay = OverlayServer(port=0, routes=routes, token=overlay_token)
    panel = ControlPanel(routes, ControlBridge(), StateBridge(), token=TOKEN)
    await overlay.start()
    await panel.start()
    try:
        yield overlay, panel
    finally:
        await panel.close()
        await overlay.close()


async def test_the_panel_needs_its_own_token_even_on_loopback():
    async with panel_on_overlay() as (overlay, panel):
        port = overlay.port
        assert panel.url == f"http://127.0.0.1:{port}/control.html?token={TOKEN}"
        assert (await http_status(port, "/control.html"))[0] == 401
        assert (await http_status(port, "/control.html?token=wrong-token"))[0] == 403
        status, response = await http_status(port, f"/control.html?token={TOKEN}")
        assert status == 200 and "X-Frame-Options: DENY" in response and "Referrer-Policy: no-referrer" in response
        # Spelt otherwise, it is still the panel's page, behind the panel's token.
        for spelling in ("/%63ontrol.html", "/./control.html", "//control.html"):
            assert (await http_status(port, spelling))[0] == 401, spelling
        # The overlay pages and the panel's script stay as they were (no token on loopback).
        assert (await http_status(port, "/index.html"))[0] == 200
        assert (await http_status(port, "/control.js"))[0] == 200
        # The WebSocket: no token, wrong token, then in.
        for query, code in (("", 401), ("?token=nope-nope", 403)):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"ws://127.0.0.1:{port}/control/ws{query}"):
                    pass
            assert refused.value.response.status_code == code
        async with connect(f"ws://127.0.0.1:{port}/control/ws?token={TOKEN}") as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert hello["type"] == "panel" and hello["queue"] == {"type": "queue", "ready": False, "items": [],
                                                                   "ts": hello["queue"]["ts"]}
        assert (await http_status(port, "/control/ws?token=" + TOKEN))[0] == 400  # not a WebSocket request


async def test_foreign_hosts_and_origins_are_refused():
    async with panel_on_overlay() as (overlay, _):
        port = overlay.port
        # A web site whose name points at this machine (DNS rebinding) is refused even with the token.
        assert (await http_status(port, f"/control.html?token={TOKEN}", host=f"evil.example:{port}"))[0] == 403
        assert (await http_status(port, f"/control.html?token={TOKEN}", host=f"localhost:{port}"))[0] == 200
        ws = f"/control/ws?token={TOKEN}"
        assert (await http_status(port, ws, host=f"evil.example:{port}", **ws_headers()))[0] == 403
        for origin in ("https://evil.example", f"http://localhost:{port + 1}", "null"):
            status, _ = await http_status(port, ws, **ws_headers(Origin=origin))
            assert status == 403, origin
        assert (await http_status(port, ws, **ws_headers(Origin=f"http://127.0.0.1:{port}")))[0] == 101


async def test_the_overlay_token_and_the_panel_token_are_separate():
    async with panel_on_overlay(overlay_token="overlay-token-1") as (overlay, _):
        port = overlay.port
        assert (await http_status(port, "/control.html?token=overlay-token-1"))[0] == 403
        assert (await http_status(port, f"/index.html?token={TOKEN}"))[0] == 403
        assert (await http_status(port, f"/control.html?token={TOKEN}"))[0] == 200


async def test_without_a_panel_its_page_is_not_served():
    overlay = OverlayServer(port=0)
    await overlay.start()
    try:
        assert (await http_status(overlay.port, "/control.html"))[0] == 404
        assert (await http_status(overlay.port, "/%63ontrol.html"))[0] == 404
    finally:
        await overlay.close()


def test_a_token_that_cannot_go_into_a_url_is_refused():
    from aituber.errors import ConfigError

    for bad in ("short", "has space in it", "a&b=cdefgh"):
        with pytest.raises(ConfigError, match="control token"):
            ControlPanel(PortRoutes(), ControlBridge(), StateBridge(), token=bad)


# -- commands through the panel's WebSocket, with the real pipeline ------------------------------------


def comment(i: int, text: str, name: str | None = None) -> Comment:
    return Comment(id=f"c{i}", author=Author(name or f"viewer{i}", f"UC{i:022d}"), text=text)


class PanelClient:
    """A program connected like the panel page: it keeps every message it gets."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.messages: list[dict] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for data in self.ws:
            self.messages.append(json.loads(data))

    def of(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m["type"] == kind]

    async def send(self, **command) -> None:
        await self.ws.send(json.dumps(command, ensure_ascii=False))


@pytest.mark.slow
async def test_commands_from_the_panel_drive_the_pipeline_and_reach_mqtt_and_the_transcript(
        sample_character, mosquitto, tmp_path):
    character = load_character(sample_character).character
    routes, control, state, events = PortRoutes(), ControlBridge(), StateBridge(), EventBridge()
    overlay = OverlayServer(port=0, routes=routes)
    panel = ControlPanel(routes, control, state, token=TOKEN, refresh_s=0.05)
    mqtt = MqttOutput(MqttSettings(host="127.0.0.1", port=mosquitto.port), "mika", on_control=control,
                      retry_min_s=0.05)
    transcript = TranscriptWriter(tmp_path / "t.jsonl")
    out = Collect()
    engine = ScriptedEngine(default="うん、そうだね。")
    source = QueueSource()
    run = asyncio.create_task(run_pipeline(character, source, engine, [transcript, overlay, panel, mqtt, out],
                                           control=control, events=events, state=state))
    try:
        await until(lambda: panel_ready(routes) and mqtt.connected, "the panel and MQTT up", 20)
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as sub, \
                connect(f"ws://127.0.0.1:{overlay.port}/control/ws?token={TOKEN}") as ws:
            await sub.subscribe("aituber/mika/command", qos=1)
            client = PanelClient(ws)
            await until(lambda: client.of("panel"), "the hello")
            await client.send(command="pause")
            await out.wait_for(lambda: any(e.status == "paused" for e in out.of(StatusChanged)))
            (on_mqtt,) = await receive(sub, 1)
            assert json.loads(on_mqtt.payload) | {"ts": 0} == {
                "type": "command", "command": "pause", "arg": "", "source": "panel", "author": "", "ok": True,
                "detail": "", "ts": 0}
            for c in (comment(1, "こんにちは"), comment(2, "ミカちゃん好きな食べ物は何？"),
                      comment(3, "http://spam.example 見て"), comment(4, "荒らしです", "荒らし")):
                source.put(c)
            # The queue, with scores and why, and the skip with its reason.
            await until(lambda: any(len(q["items"]) == 3 for q in client.of("queue")), "three waiting")
            await until(lambda: any(s["reason"] == "url" for m in client.of("skips") for s in m["items"]), "url skip")
            queue = [q for q in client.of("queue") if len(q["items"]) == 3][-1]
            assert queue["paused"] and queue["items"][0]["comment"]["id"] == "c2"
            assert dict(queue["items"][0]["parts"])["question"] == 10.0
            assert all(item["score"] == pytest.approx(sum(p for _, p in item["parts"]), abs=0.05)
                       for item in queue["items"])
            # Ban drops the viewer's waiting comment; answer-next while paused answers exactly that one.
            await client.send(command="ban", name="UC0000000000000000000004")
            await client.send(command="next", comment_id="c1")
            await out.wait_for(lambda: any(e.comment_id == "c1" for e in out.of(ReplyEnded)))
            assert not any(e.comment_id == "c2" for e in out.of(ReplyEnded))  # still paused
            await until(lambda: client.of("latency"), "a latency point")
            assert client.of("latency")[-1]["kind"] == "answer" and client.of("latency")[-1]["total_s"] >= 0
            # A bad payload is answered to this panel only, and changes nothing.
            await client.send(command="dance")
            await until(lambda: client.of("command_rejected"), "the rejection")
            assert "unknown command 'dance'" in client.of("command_rejected")[0]["error"]
            await client.send(command="resume")
            await out.wait_for(lambda: any(e.comment_id == "c2" for e in out.of(ReplyEnded)))
            received = [json.loads(m.payload) for m in await receive(sub, 3)]
            assert [(m["command"], m["ok"]) for m in received] == [("ban", True), ("next", True), ("resume", True)]
            assert received[0]["detail"] == "1 waiting comment(s) dropped"
            assert [m["command"] for m in client.of("command")] == ["pause", "ban", "next", "resume"]
        assert [e.command for e in out.of(CommandExecuted)] == ["pause", "ban", "next", "resume"]
    finally:
        source.close()
        await asyncio.wait_for(run, 30)
    lines = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()]
    commands = [line for line in lines if line["type"] == "command"]
    assert [(c["command"], c["source"]) for c in commands] == [("pause", "panel"), ("ban", "panel"),
                                                               ("next", "panel"), ("resume", "panel")]
    # The transcript with its command lines still replays as a chat log.
    from aituber.sources.replay import ReplayChatSource

    replayed = [item async for item in ReplayChatSource(tmp_path / "t.jsonl", fast=True, strict=True).items()]
    assert [c.id for c in replayed] == ["c1", "c2", "c3", "c4"]


def panel_ready(routes: PortRoutes) -> bool:
    return routes.base_url is not None and "/control/ws" in routes.handlers
