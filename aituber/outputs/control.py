"""The control panel's server side: what the streamer sees and does during a stream.

The panel (obs_overlay/control.html; in OBS a custom browser dock) is served on the overlay's port, at
`/control.html` and its WebSocket `/control/ws`, always behind a token of its own (printed at start,
separate from the overlay's token, also on 127.0.0.1). On top of the token: the Host header must be an
IP address or `localhost` (a web site that points its name at this machine is refused), and the
WebSocket's Origin must pass the overlay's check and be the panel's own page (or absent: a program).

`ControlPanel` is an output. It follows the pipeline's events (the reply being generated and spoken,
skips, status, latency, commands carried out), reads the queue with its scores through `StateBridge`,
keeps the run's warnings and errors (log records, bounded), and sends all of it to the open panels;
the queue at most every `refresh_s`, and every `idle_refresh_s` anyway (scores change as comments
wait). What a panel sends is a command in the MQTT control format (`{"command": "ban", "name": ...}`);
it goes to the pipeline through `ControlBridge` with source "panel", so it is carried out, published on
MQTT and written to the transcript like a command from chat or MQTT. The messages are in docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import http
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from aituber.core.director import SessionState
from aituber.core.events import (
    CommandExecuted,
    CommentSeen,
    CommentSelected,
    CommentSkipped,
    Event,
    ReplyEnded,
    SpeechStarted,
    StatusChanged,
)
from aituber.core.messages import (
    CLOSE_GOING_AWAY,
    CLOSE_TOO_SLOW,
    Message,
    command_message,
    comment_message,
    event_to_message,
    waiting_message,
)
from aituber.errors import AituberError, ConfigError
from aituber.outputs.base import OutputBase, OutputContext, PortRoutes
from aituber.outputs.overlay import Refusal, _same_origin

log = logging.getLogger(__name__)

PAGE_PATH = "/control.html"
WS_PATH = "/control/ws"
PANEL_VERSION = 1
"""Goes up when a panel message changes in a way the shipped page would misread."""
PAGE_HEADERS: Mapping[str, str] = {
    "X-Frame-Options": "DENY",  # no other site may frame the panel and trick clicks on it
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
}
FORWARDED = frozenset({"comment_selected", "reply_start", "reply_delta", "reply_end", "reply_cancelled", "speech",
                       "status", "voice"})
"""Pipeline messages (aituber.core.messages) the panel gets as they are."""
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{8,200}")


def check_token(token: str) -> str:
    """A control token given by the user; ConfigError when it cannot be used."""
    if not _TOKEN.fullmatch(token):
        raise ConfigError("control: the control token must be 8 to 200 letters, digits or - . _ ~ "
                          "(it goes into the panel's URL)")
    return token


def _reply_kind(comment_id: str) -> str:
    if comment_id == "say":
        return "say"
    for kind in ("thanks", "idle"):
        if comment_id.startswith(kind + ":"):
            return kind
    return "answer"


class _Route:
    """One of the panel's two paths on the overlay's port (see aituber.outputs.overlay.PortRoute)."""

    __slots__ = ("panel", "websocket", "headers")

    def __init__(self, panel: ControlPanel, websocket: bool) -> None:
        self.panel = panel
        self.websocket = websocket
        self.headers = {} if websocket else PAGE_HEADERS

    def check(self, request: Request, query: str,
              check_origin: Callable[[Request], Refusal | None]) -> Refusal | None:
        return self.panel.check(request, query, check_origin, websocket=self.websocket)

    async def handle(self, connection: ServerConnection) -> None:
        await self.panel.handle(connection)


class _Client:
    __slots__ = ("connection", "queue", "dropped")

    def __init__(self, connection: ServerConnection, size: int) -> None:
        self.connection = connection
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=size)
        self.dropped = False


class _LogTap(logging.Handler):
    """WARNING and above, from any thread, to the panel on its event loop."""

    def __init__(self, take: Callable[[dict[str, Any]], None], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.WARNING)
        self._take = take
        self._loop = loop
        self._thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            entry = {"type": "log", "level": record.levelname, "logger": record.name, "message": message[:1000],
                     "ts": record.created}
            if threading.get_ident() == self._thread:
                self._take(entry)
            else:
                self._loop.call_soon_threadsafe(self._take, entry)
        except RuntimeError:  # the loop is closed: the run is over
            pass
        except Exception:
            self.handleError(record)


class ControlPanel(OutputBase):
    """See the module docstring. `routes`: the overlay's port (the overlay output must start first);
    `control(payload, source)`: the pipeline's command entry; `state()`: the session's state (None
    before the pipeline binds it). `token`: the panel's secret (default: a random one)."""

    name = "control"

    def __init__(self, routes: PortRoutes, control: Callable[[bytes | str, str], str | None],
                 state: Callable[[], SessionState | None], *, token: str | None = None,
                 character: dict[str, Any] | None = None, announce: Callable[[str], None] | None = None,
                 refresh_s: float = 0.25, idle_refresh_s: float = 1.0, max_skips: int = 200, max_errors: int = 100,
                 max_latencies: int = 30, max_commands: int = 50, client_queue_size: int = 512,
                 close_timeout_s: float = 5.0) -> None:
        if token is not None:
            check_token(token)
        if client_queue_size < 1:
            raise ConfigError(f"control: client_queue_size must be at least 1, not {client_queue_size}")
        self.token = token or secrets.token_urlsafe(16)
        self.routes = routes
        self.character = character or {}
        self._control = control
        self._state = state
        self._announce = announce
        self._refresh_s = refresh_s
        self._idle_refresh_s = idle_refresh_s
        self._client_queue_size = client_queue_size
        self._close_timeout_s = close_timeout_s
        self._clients: set[_Client] = set()
        self._dirty = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tap: _LogTap | None = None
        self._in_log = False
        self._status = "online"
        self._selected: dict[str, Any] | None = None
        self._current: dict[str, Any] | None = None
        self._skips: collections.deque[Message] = collections.deque(maxlen=max_skips)
        self._skip_counts: collections.Counter[str] = collections.Counter()
        self._new_skips: collections.deque[Message] = collections.deque(maxlen=max_skips)
        self._skips_lost = 0
        self._latency: collections.deque[Message] = collections.deque(maxlen=max_latencies)
        self._first_audio: dict[str, float] = {}
        self._errors: collections.deque[Message] = collections.deque(maxlen=max_errors)
        self._commands: collections.deque[Message] = collections.deque(maxlen=max_commands)
        self.dropped_clients = 0

    @property
    def url(self) -> str:
        """The panel's URL with its token (once the overlay listens)."""
        return f"{self.routes.base_url or 'http://127.0.0.1'}{PAGE_PATH}?token={self.token}"

    @property
    def client_count(self) -> int:
        return len(self._clients)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.routes.base_url is None:
            raise AituberError("control: the overlay server is not running; the panel is served on its port")
        self.routes.handlers[PAGE_PATH] = _Route(self, websocket=False)
        self.routes.handlers[WS_PATH] = _Route(self, websocket=True)
        self._tap = _LogTap(self._log, asyncio.get_running_loop())
        logging.getLogger().addHandler(self._tap)
        log.info("control panel at %s", self.url)
        if self._announce is not None:
            self._announce(f"control: {self.url}  (the streamer's panel; OBS: Docks > Custom Browser Docks)")

    async def run(self) -> None:
        """Send the queue to the open panels when it changed (at most every `refresh_s`) and every
        `idle_refresh_s` anyway; returns after `close()`."""
        while not self._stopping.is_set():
            try:
                async with asyncio.timeout(self._idle_refresh_s):
                    await self._dirty.wait()
            except TimeoutError:
                pass
            self._dirty.clear()
            if self._clients:
                try:
                    self._send_all(self._queue_message())
                except Exception:  # never let the panel's refresh die: log it and try again later
                    log.exception("control: could not read the queue")
                if self._new_skips or self._skips_lost:
                    self._send_all(self._skips_message(list(self._new_skips)))
            self._new_skips.clear()
            self._skips_lost = 0
            try:
                async with asyncio.timeout(self._refresh_s):
                    await self._stopping.wait()
            except TimeoutError:
                pass

    async def close(self) -> None:
        """Stop serving the panel, close the open ones (1001), stop following the log."""
        self._stopping.set()
        for path in (PAGE_PATH, WS_PATH):
            route = self.routes.handlers.get(path)
            if isinstance(route, _Route) and route.panel is self:
                del self.routes.handlers[path]
        if self._tap is not None:
            logging.getLogger().removeHandler(self._tap)
            self._tap = None
        clients, self._clients = list(self._clients), set()
        if clients:
            await asyncio.wait([asyncio.create_task(self._close_client(c, CLOSE_GOING_AWAY, "bot stopping"))
                                for c in clients], timeout=self._close_timeout_s + 1)

    async def _close_client(self, client: _Client, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(self._close_timeout_s):
                await client.connection.close(code, reason)
        except TimeoutError:
            client.connection.transport.abort()

    # -- events in -------------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        now = time.time()
        match event:
            case CommentSeen():
                self._dirty.set()
                return
            case CommentSkipped(comment=comment, reason=reason):
                skip = {"comment": comment_message(comment), "reason": reason, "ts": now}
                self._skips.append(skip)
                self._skip_counts[reason] += 1
                if len(self._new_skips) == self._new_skips.maxlen:
                    self._skips_lost += 1
                self._new_skips.append(skip)
                self._dirty.set()
                return
            case CommandExecuted():
                message = command_message(event, now)
                self._commands.append(message)
                self._send_all(message)
                self._dirty.set()
                return
            case CommentSelected() | StatusChanged():
                self._dirty.set()
            case SpeechStarted() if event.audio is not None or event.duration_s > 0:
                self._first_speech(event.reply_id, event.started_at)
            case ReplyEnded():
                self._latency_of(event, now)
        message = event_to_message(event, now)
        if message is None or message["type"] not in FORWARDED:
            return
        self._track(message)
        self._send_all(message)

    def _track(self, message: Message) -> None:
        """The reply being generated and spoken, for a panel that opens now."""
        kind = message["type"]
        if kind == "status":
            self._status = message["status"]
        elif kind == "comment_selected":
            self._selected = {"reply_id": message["reply_id"], "comment": message["comment"]}
        elif kind == "reply_start":
            selected = self._selected if self._selected and self._selected["reply_id"] == message["reply_id"] else None
            self._current = {"reply_id": message["reply_id"], "comment_id": message["comment_id"],
                             "comment": selected["comment"] if selected else None, "text": "", "spoken": "",
                             "ended": False, "stop_reason": None, "cancelled": False}
        elif self._current is None or message.get("reply_id") != self._current["reply_id"]:
            return
        elif kind == "reply_delta":
            self._current["text"] += message["text"]
        elif kind == "speech":
            self._current["spoken"] += message["text"]
        elif kind == "reply_end":
            self._current.update(ended=True, text=message["text"], stop_reason=message["stop_reason"])
        elif kind == "reply_cancelled":
            self._current["cancelled"] = True

    def _first_speech(self, reply_id: str, started_at: float) -> None:
        if reply_id in self._first_audio:
            return
        self._first_audio[reply_id] = started_at
        while len(self._first_audio) > 64:
            del self._first_audio[next(iter(self._first_audio))]
        for entry in self._latency:
            if entry["reply_id"] == reply_id and entry["first_audio_s"] is None:
                entry["first_audio_s"] = round(started_at - entry["picked_at"], 3)
                self._send_all(entry)

    def _latency_of(self, event: ReplyEnded, now: float) -> None:
        """Picked -> first text, -> whole reply (ReplyEnded), -> first audio (the first clause spoken)."""
        picked_at = now - event.total_s
        first_audio = self._first_audio.get(event.reply_id)
        entry = {"type": "latency", "reply_id": event.reply_id, "kind": _reply_kind(event.comment_id),
                 "first_text_s": None if event.first_token_s is None else round(event.first_token_s, 3),
                 "total_s": round(event.total_s, 3),
                 "first_audio_s": None if first_audio is None else round(first_audio - picked_at, 3),
                 "stop_reason": event.stop_reason, "picked_at": round(picked_at, 3), "ts": now}
        self._latency.append(entry)
        self._send_all(entry)

    def _log(self, entry: dict[str, Any]) -> None:
        self._errors.append(entry)
        if self._in_log:  # a warning while sending one (a panel dropped): it waits for the next panel
            return
        self._in_log = True
        try:
            self._send_all(entry)
        finally:
            self._in_log = False

    # -- messages out ----------------------------------------------------------------------------

    def _queue_message(self) -> Message:
        state = self._state()
        ts = time.time()
        if state is None:
            return {"type": "queue", "ready": False, "items": [], "ts": ts}
        return {"type": "queue", "ready": True, "items": [waiting_message(w) for w in state.waiting],
                "paused": state.paused, "idle_on": state.idle_on, "idle_available": state.idle_available,
                "thanks_pending": state.thanks_pending, "says_pending": state.says_pending,
                "banned": list(state.banned), "ng_words": list(state.ng_words), "chat_over": state.chat_over,
                "ts": ts}

    def _skips_message(self, items: list[Message]) -> Message:
        return {"type": "skips", "items": items, "counts": dict(self._skip_counts), "lost": self._skips_lost,
                "ts": time.time()}

    def _hello(self) -> Message:
        """The first message on every panel connection: everything it shows."""
        return {"type": "panel", "version": PANEL_VERSION, "character": self.character, "status": self._status,
                "current": self._current, "queue": self._queue_message(),
                "skips": self._skips_message(list(self._skips)), "latency": list(self._latency),
                "errors": list(self._errors), "commands": list(self._commands), "ts": time.time()}

    def _send_all(self, message: Message) -> None:
        if not self._clients:
            return
        data = json.dumps(message, ensure_ascii=False)
        for client in list(self._clients):
            self._send(client, data)

    def _send(self, client: _Client, data: str) -> None:
        try:
            client.queue.put_nowait(data)
        except asyncio.QueueFull:
            client.dropped = True
            self._clients.discard(client)
            self.dropped_clients += 1
            log.warning("control: a panel fell %d messages behind; disconnecting it (close code %d)",
                        self._client_queue_size, CLOSE_TOO_SLOW)

    # -- access and connections ------------------------------------------------------------------

    def check(self, request: Request, query: str,
              check_origin: Callable[[Request], Refusal | None], *,
              websocket: bool) -> Refusal | None:
        """Token, and for the WebSocket the Origin (the overlay's check, and the panel's own page). The
        overlay server has checked the Host header before any route (DNS rebinding)."""
        given = parse_qs(query).get("token")
        if not given:
            return http.HTTPStatus.UNAUTHORIZED, "control panel token required: use the URL printed at start"
        if not hmac.compare_digest(given[0].encode(), self.token.encode()):
            return http.HTTPStatus.FORBIDDEN, "wrong control panel token"
        if not websocket:
            return None
        refusal = check_origin(request)
        if refusal is not None:
            return refusal
        origin = request.headers.get("Origin")
        if origin is not None and not _same_origin(origin, request.headers.get("Host", "")):
            return http.HTTPStatus.FORBIDDEN, f"origin {origin[:100]} not allowed for the control panel"
        return None

    async def handle(self, connection: ServerConnection) -> None:
        """One open panel: its messages out (its own bounded queue), its commands in."""
        client = _Client(connection, self._client_queue_size)
        client.queue.put_nowait(json.dumps(self._hello(), ensure_ascii=False))
        self._clients.add(client)
        sender = asyncio.create_task(self._send_queued(client), name="control-send")
        reader = asyncio.create_task(self._read_commands(client), name="control-read")
        try:
            await asyncio.wait((sender, reader), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._clients.discard(client)
            sender.cancel()
            reader.cancel()
        if client.dropped:
            await self._close_client(client, CLOSE_TOO_SLOW, "too slow")

    async def _send_queued(self, client: _Client) -> None:
        try:
            while not client.dropped:
                data = await client.queue.get()
                await client.connection.send(data)
        except ConnectionClosed:
            pass

    async def _read_commands(self, client: _Client) -> None:
        try:
            async for payload in client.connection:
                try:
                    error = self._control(payload, "panel")
                except Exception as exc:  # a bug in a command must not take the panel down
                    log.exception("control: the command %r failed", payload[:200])
                    error = f"the command failed: {exc}"
                if error is not None:
                    self._send(client, json.dumps({"type": "command_rejected", "error": error, "ts": time.time()},
                                                  ensure_ascii=False))
        except ConnectionClosed:
            pass


def create_output(context: OutputContext) -> ControlPanel | None:
    """On whenever the overlay is: it is served on the overlay's port."""
    settings = context.settings.overlay
    if not settings.enabled:
        return None
    character = context.character
    return ControlPanel(context.routes, context.control, context.state, token=settings.control_token,
                        character={"id": character.id, "name": character.name}, announce=context.announce)
