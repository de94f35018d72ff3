"""MQTT output: the pipeline's events on `<prefix>/<character>/...` (QoS 1), the bot's status
retained (with "offline" as last will), and `<prefix>/<character>/control` handed to a callback.

`publish` only puts the message on a bounded queue (when full the oldest is dropped and counted);
`run` connects, sends the queue, listens for control messages, and reconnects with backoff for as
long as the bot runs: an unreachable broker never stops the bot. Topics and payloads are in
docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Callable

import aiomqtt

from aituber.core.events import CommandExecuted, Event
from aituber.core.messages import command_message, event_to_message
from aituber.errors import ConfigError
from aituber.outputs.base import OutputBase, OutputContext, wait_run_end
from aituber.settings import MqttSettings

log = logging.getLogger(__name__)

QOS = 1
TOPICS = {"comment_selected": "comment", "reply_sentence": "sentence", "reply_end": "reply",
          "reply_cancelled": "cancelled", "speech": "speech"}
"""Message type -> topic name under `<prefix>/<character>/`; other messages are not sent.
The status goes to `status` as plain text, retained."""
STATUS_TOPIC = "status"
CONTROL_TOPIC = "control"
COMMAND_TOPIC = "command"
"""Each command carried out (from chat, MQTT or the control panel), as the `command` message."""


def _check_topic_part(what: str, value: str) -> None:
    if not value or any(ch in value for ch in "+#\0") or value.startswith("/") or value.endswith("/"):
        raise ConfigError(f"mqtt: {what} {value!r} cannot be used in a topic: it must be non-empty, "
                          "without '+', '#' or a leading/trailing '/'")


class MqttOutput(OutputBase):
    """See the module docstring. `on_control(payload)` gets the raw payload of each (non-retained)
    message on the control topic; it runs on the event loop and must not block. It may be set
    after construction (`output.on_control = pipeline.handle_control`); until then they are dropped.

    `queue_size`: messages kept while the broker is away. `retry_min_s`/`retry_max_s`: reconnect
    backoff (doubling). `keepalive_s`: MQTT keepalive; the broker publishes the last will about 1.5
    times this long after the bot vanishes. `timeout_s`: for each acknowledgement.
    """

    name = "mqtt"

    def __init__(self, settings: MqttSettings, character_id: str,
                 on_control: Callable[[bytes], None] | None = None, *, queue_size: int = 256,
                 retry_min_s: float = 1.0, retry_max_s: float = 30.0, keepalive_s: int = 30,
                 timeout_s: float = 10.0) -> None:
        if not settings.enabled:
            raise ConfigError("mqtt: no broker host set")
        if queue_size < 1:
            raise ConfigError(f"mqtt: queue_size must be at least 1, not {queue_size}")
        _check_topic_part("topic prefix", settings.topic_prefix)
        _check_topic_part("character id", character_id)
        self.settings = settings
        self.on_control = on_control
        self.base_topic = f"{settings.topic_prefix}/{character_id}"
        self._queue: collections.deque[tuple[str, bytes] | None] = collections.deque(maxlen=queue_size)
        """(topic, payload) to send; None: send the status if it changed."""
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._keepalive_s = keepalive_s
        self._timeout_s = timeout_s
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._done = asyncio.Event()
        self._status = "online"
        self._status_sent: str | None = None  # what the broker holds, as far as this connection knows
        self._run_task: asyncio.Task[None] | None = None
        self._client: aiomqtt.Client | None = None
        self._warned_full = False
        self._dropped_reported = 0
        self.dropped = 0
        """Messages dropped because the queue was full, since start."""
        self.connects = 0
        """Successful connections to the broker, since start."""

    def topic(self, name: str) -> str:
        return f"{self.base_topic}/{name}"

    @property
    def connected(self) -> bool:
        return self._client is not None

    # -- events in (never waits) -----------------------------------------------------------------

    def publish(self, event: Event) -> None:
        if isinstance(event, CommandExecuted):
            message = command_message(event, time.time())
            self._enqueue((self.topic(COMMAND_TOPIC), json.dumps(message, ensure_ascii=False).encode()))
            return
        message = event_to_message(event, time.time())
        if message is None:
            return
        if message["type"] == "status":
            self._status = message["status"]
            self._enqueue(None)  # sent in its place among the others, with the status of that moment
            return
        name = TOPICS.get(message["type"])
        if name is not None:
            self._enqueue((self.topic(name), json.dumps(message, ensure_ascii=False).encode()))

    def _enqueue(self, item: tuple[str, bytes] | None) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
            if not self._warned_full:
                self._warned_full = True
                log.warning("mqtt: %d messages waiting for the broker; dropping the oldest (counted in "
                            "MqttOutput.dropped)", self._queue.maxlen)
        self._queue.append(item)
        self._wake.set()

    # -- the connection --------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and stay connected until `close()`; failures are logged and retried with backoff."""
        self._run_task = asyncio.current_task()
        delay = self._retry_min_s
        failing = False
        try:
            while not self._stopping.is_set():
                connects = self.connects
                try:
                    await self._session()
                    continue  # a clean stop
                except aiomqtt.MqttError as exc:
                    if self.connects > connects:  # it was up: start the backoff again
                        delay = self._retry_min_s
                        log.warning("mqtt: lost the connection to %s (%s); reconnecting", self._where, exc)
                    elif not failing:
                        log.warning("mqtt: cannot reach the broker at %s (%s); the bot goes on and "
                                    "retries every %g s at most", self._where, exc, self._retry_max_s)
                    else:
                        log.debug("mqtt: still cannot reach %s: %s", self._where, exc)
                except Exception:  # a bug here must not take the stream down
                    log.exception("mqtt: unexpected error; reconnecting")
                failing = True
                try:
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
                except TimeoutError:
                    pass
                delay = min(delay * 2, self._retry_max_s)
        finally:
            self._client = None
            self._done.set()

    @property
    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def _new_client(self) -> aiomqtt.Client:
        s = self.settings
        tls = aiomqtt.TLSParameters(ca_certs=str(s.ca_file) if s.ca_file else None) if s.tls or s.ca_file else None
        will = aiomqtt.Will(self.topic(STATUS_TOPIC), b"offline", qos=QOS, retain=True)
        return aiomqtt.Client(s.host or "", s.port, username=s.username, password=s.password,
                              identifier=s.client_id, will=will, tls_params=tls, keepalive=self._keepalive_s,
                              timeout=self._timeout_s, max_queued_incoming_messages=100)

    async def _session(self) -> None:
        """One connection: returns after a clean stop, raises MqttError when it fails or breaks."""
        async with self._new_client() as client:
            self._client = client
            self.connects += 1
            self._status_sent = None  # (re)claim the retained status: the last will may have replaced it
            log.info("mqtt: connected to %s as %s/...", self._where, self.base_topic)
            if self.dropped > self._dropped_reported:
                log.warning("mqtt: %d messages were dropped while the broker was away",
                            self.dropped - self._dropped_reported)
                self._dropped_reported = self.dropped
            try:
                # The receiver also notices a broken connection (aiomqtt's pending calls only time
                # out), so it starts first and stops the sender, which subscribes, then publishes.
                receiver = asyncio.create_task(self._receive(client), name="mqtt-receive")
                sender = asyncio.create_task(self._send(client), name="mqtt-send")
                try:
                    done, _ = await asyncio.wait((receiver, sender), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    receiver.cancel()
                    sender.cancel()
                    await asyncio.gather(receiver, sender, return_exceptions=True)
                for task in done:
                    if not task.cancelled():
                        task.result()  # MqttError when the connection broke
            finally:
                self._client = None

    async def _send(self, client: aiomqtt.Client) -> None:
        """Subscribe to the control topic; send the status (the last will may have replaced it),
        then the queue in order; at a stop, once the queue is empty, "offline"."""
        await client.subscribe(self.topic(CONTROL_TOPIC), qos=QOS)
        while True:
            if self._status_sent is None:
                await self._send_status(client)
            elif self._queue:
                item = self._queue.popleft()
                if item is None:
                    await self._send_status(client)
                    continue
                try:
                    await client.publish(item[0], item[1], qos=QOS)
                except BaseException:
                    # Not acknowledged: send it again on the next connection (at least once).
                    if len(self._queue) < (self._queue.maxlen or 0):
                        self._queue.appendleft(item)
                    else:
                        self.dropped += 1
                    raise
                if not self._queue:
                    self._warned_full = False
            elif self._stopping.is_set():
                self._status = "offline"
                await self._send_status(client)
                return
            else:
                self._wake.clear()
                await self._wake.wait()

    async def _send_status(self, client: aiomqtt.Client) -> None:
        status = self._status
        if status != self._status_sent:
            await client.publish(self.topic(STATUS_TOPIC), status.encode(), qos=QOS, retain=True)
            self._status_sent = status

    async def _receive(self, client: aiomqtt.Client) -> None:
        """Hand control messages to the callback; raises MqttError when the connection breaks."""
        async for message in client.messages:
            if message.retain:
                log.warning("mqtt: ignoring a retained message on %s (commands must not be retained)",
                            message.topic)
                continue
            payload = message.payload
            if not isinstance(payload, bytes):
                payload = b"" if payload is None else str(payload).encode()
            if self.on_control is None:
                continue
            try:
                self.on_control(payload)
            except Exception:
                log.exception("mqtt: the control handler failed on %r", payload[:200])

    async def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued, publish "offline" (retained), disconnect, and let `run` return.
        Past `timeout_s` the run task is cancelled (the broker then publishes the last will)."""
        self._stopping.set()
        self._wake.set()
        await wait_run_end(self._run_task, self._done, timeout_s,
                           f"mqtt: could not say offline within {timeout_s:g} s; leaving it to the last will")


def create_output(context: OutputContext) -> MqttOutput | None:
    settings = context.settings.mqtt
    if not settings.enabled:
        return None
    output = MqttOutput(settings, context.character.id, on_control=context.control)
    context.announce(f"mqtt: {settings.host}:{settings.port} topics {output.base_topic}/...")
    return output
