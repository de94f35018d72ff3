"""The overlay server: one port for the OBS browser source (static files over HTTP) and its
WebSocket (`/ws`), which broadcasts the pipeline's events as JSON (docs/protocol.md).

Each connected page has its own bounded queue and sender task: a page that keeps up gets each
frame written at once by `publish`; one whose socket is backed up gets frames queued instead, falls
behind alone, and is dropped with close code 4000 once its queue is full. `publish` never waits.
Bound to a loopback address nothing else is needed; bound anywhere else every page and the
WebSocket need `?token=`, and the WebSocket's Origin is checked. Every request's `Host` must name
this server (a loopback name, an IP address, the bound name or this machine's name), so that a web
page that rebinds its own domain name to 127.0.0.1 (DNS rebinding) cannot read the feed. Bound to
all interfaces, the printed URLs use the machine's LAN address.

Other outputs may serve paths on this port (`PortRoutes`: the control panel's page and WebSocket,
each behind its own token); the overlay dispatches to them.

Speech: a page that connects with `?audio=1` also gets each spoken clause's audio as a binary frame
just before its `speech` message; the others get the `speech` message only (subtitles in step with the
voice). Audio is sent live only: a page that (re)connects never gets audio of the past.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import http
import ipaddress
import json
import logging
import mimetypes
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State

from aituber import paths
from aituber.core.events import Event, SpeechStarted
from aituber.core.messages import CLOSE_TOO_SLOW, event_to_message, speech_audio_frame, state_message
from aituber.errors import ConfigError
from aituber.outputs.base import OutputBase, OutputContext, PortRoutes

log = logging.getLogger(__name__)

WS_PATH = "/ws"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml",
          ".json": "application/json"}
_WRITE_LIMIT = 2**15
"""Bytes waiting in a page's socket buffer beyond which it is behind (websockets' write limit)."""
_LOCAL_FILE_ORIGINS = ("null", "file://")
"""What Chromium (and OBS's CEF) send as Origin from a page opened as a local file."""
AUDIO_BACKLOG_BYTES = 8 * 2**20
"""Audio waiting for one page beyond which its next clauses are sent without audio (about 80 s)."""
ROUTED_PAGES = frozenset({"/control.html"})
"""Pages served only through a route (behind its own token): 404 while no output serves them."""

Refusal = tuple[http.HTTPStatus, str]


class PortRoute(Protocol):
    """A path that another output serves on this port (see `PortRoutes`)."""

    websocket: bool
    """True: a WebSocket path (handled by `handle`); False: the page of the same name in the overlay folder."""
    headers: Mapping[str, str]
    """Extra response headers for the page."""

    def check(self, request: Request, query: str, check_origin: Callable[[Request], Refusal | None]) -> Refusal | None:
        """Refuse the request (status, reason), or None to let it in; `check_origin` is the overlay's."""

    async def handle(self, connection: ServerConnection) -> None:
        """Serve an accepted WebSocket connection until it closes."""


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


def lan_address() -> str | None:
    """This machine's IPv4 address on its network (the one a route out would use; finding it sends
    no packet), else one its host name resolves to; None when it has only loopback."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: connecting a UDP socket sends nothing
            address = probe.getsockname()[0]
        if not ipaddress.ip_address(address).is_loopback and not ipaddress.ip_address(address).is_unspecified:
            return address
    except (OSError, ValueError):
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            address = str(info[4][0])
            if not ipaddress.ip_address(address).is_loopback:
                return address
    except (OSError, ValueError):
        pass
    return None


def _machine_names() -> frozenset[str]:
    try:
        name = socket.gethostname().lower()
        return frozenset({name, f"{name}.local", socket.getfqdn().lower()} - {""})
    except OSError:
        return frozenset()


class _Client:
    """One connected page: its own bounded queue, so a slow page never slows the others."""

    __slots__ = ("connection", "queue", "sender", "dropped", "audio", "audio_backlog")

    def __init__(self, connection: ServerConnection, queue_size: int, audio: bool = False) -> None:
        self.connection = connection
        self.queue: asyncio.Queue[tuple[bytes, bool]] = asyncio.Queue(maxsize=queue_size)
        """(frame payload, is text)."""
        self.sender: asyncio.Task[None] | None = None
        self.dropped = False
        self.audio = audio
        """The page asked for speech audio (`?audio=1`)."""
        self.audio_backlog = 0
        """Bytes of audio queued for it, not yet sent."""

    @property
    def caught_up(self) -> bool:
        connection = self.connection
        return (self.queue.empty() and connection.state is State.OPEN and connection.send_in_progress is None
                and connection.transport.get_write_buffer_size() < _WRITE_LIMIT)


class OverlayServer(OutputBase):
    """Serves `static_dir` (default: the overlay pages) and the event WebSocket on one port.

    `token`: the secret pages and the WebSocket must carry as `?token=`. `require_token`: None
    means "when bound to a non-loopback host, or when a token is given"; a required token that
    is not given is generated (see `url`). `client_queue_size`: messages a page may fall behind
    before it is dropped. `ping_interval_s`/`ping_timeout_s`: keepalive (None = off). `announce`
    gets a line with the URL once the server listens.
    """

    name = "overlay"

    def __init__(self, static_dir: Path | None = None, host: str = "127.0.0.1", port: int = 8765,
                 character: dict[str, Any] | None = None, client_queue_size: int = 1024, *,
                 token: str | None = None, require_token: bool | None = None,
                 ping_interval_s: float | None = 20.0, ping_timeout_s: float | None = 20.0,
                 close_timeout_s: float = 5.0, announce: Callable[[str], None] | None = None,
                 routes: PortRoutes | None = None) -> None:
        if client_queue_size < 1:
            raise ConfigError(f"overlay: client_queue_size must be at least 1, not {client_queue_size}")
        self.static_dir = (static_dir or paths.overlay_dir()).resolve()
        self.host = host
        self.port = port
        self.character = character or {}
        if require_token is None:
            require_token = token is not None or not is_loopback(host)
        if require_token and not token:
            token = secrets.token_urlsafe(16)
        self.require_token = require_token
        self.token = token if require_token else None
        self._client_queue_size = client_queue_size
        self._ping_interval_s = ping_interval_s
        self._ping_timeout_s = ping_timeout_s
        self._close_timeout_s = close_timeout_s
        self._announce = announce
        self._clients: set[_Client] = set()
        self._server: Server | None = None
        self._current: dict[str, Any] | None = None  # the reply being typed, for late joiners
        self._current_parts: list[str] = []
        self._spoken_parts: list[str] = []
        self._status = "online"
        self._voice: dict[str, Any] | None = None  # the voice's engine and availability; None: no voice
        self._public_host: str | None = None
        self._allowed_hosts = frozenset({host.lower().strip("[]")})
        """Names (besides loopback names and IP addresses) a request's Host may give; `start` adds this
        machine's own names when bound to all interfaces."""
        self.dropped_clients = 0
        """Pages dropped for falling too far behind, since start."""
        self.routes = routes if routes is not None else PortRoutes()

    @property
    def url(self) -> str:
        """The main page's URL, with the token when one is required."""
        return f"http://{self._netloc}/" + (f"?token={self.token}" if self.token else "")

    @property
    def ws_url(self) -> str:
        return f"ws://{self._netloc}{WS_PATH}" + (f"?token={self.token}" if self.token else "")

    @property
    def _netloc(self) -> str:
        host = self.host
        if host in _WILDCARD_HOSTS:  # "0.0.0.0" is no address to open: the one other PCs reach
            if self._public_host is None:
                self._public_host = lan_address() or "127.0.0.1"
            host = self._public_host
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{self.port}"

    @property
    def client_count(self) -> int:
        return len(self._clients)

    async def start(self) -> None:
        if self.host in _WILDCARD_HOSTS:  # name lookups may block: not on the event loop
            self._public_host = await asyncio.to_thread(lambda: lan_address() or "127.0.0.1")
            self._allowed_hosts |= await asyncio.to_thread(_machine_names)
        try:
            self._server = await serve(self._handle, self.host, self.port,
                                       process_request=self._process_request,
                                       ping_interval=self._ping_interval_s, ping_timeout=self._ping_timeout_s,
                                       close_timeout=self._close_timeout_s, write_limit=_WRITE_LIMIT,
                                       # Small messages on a LAN: deflate per page costs more than it saves,
                                       # and without extensions one frame serves every page (publish).
                                       compression=None,
                                       max_size=2**16)  # pages send nothing
        except OSError as exc:
            raise ConfigError(f"overlay: cannot listen on {self.host}:{self.port}: {exc.strerror}; "
                              "choose another with --port") from exc
        self.port = self._server.sockets[0].getsockname()[1]
        self.routes.base_url = f"http://{self._netloc}"
        log.info("overlay at %s", self.url)
        if self._announce is not None:
            self._announce(f"overlay: {self.url}  (OBS: add a Browser Source with this URL)")

    async def close(self) -> None:
        """Stop accepting, close every page (1001), abort the ones that do not answer in time."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        try:
            async with asyncio.timeout(self._close_timeout_s):
                await server.wait_closed()
        except TimeoutError:
            log.warning("overlay: some pages did not close in time; cutting them off")
            for connection in server.connections:
                connection.transport.abort()
            try:
                async with asyncio.timeout(1):
                    await server.wait_closed()
            except TimeoutError:
                log.warning("overlay: the server did not stop")

    # -- events in -------------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Send the event's message to every page, or queue it for a page that is behind; never
        waits. A page whose queue is full is dropped (close code 4000)."""
        message = event_to_message(event, time.time())
        if message is None:
            return
        self._track(message)
        if not self._clients:
            return
        if isinstance(event, SpeechStarted) and event.audio is not None:
            self._send_audio(event)
        self._send(json.dumps(message, ensure_ascii=False).encode(), text=True, clients=list(self._clients))

    def _send(self, data: bytes, *, text: bool, clients: list[_Client]) -> None:
        frame: bytes | None = None
        for client in clients:
            # A page that keeps up (nothing queued, socket accepting) gets the frame written now:
            # one frame built for all (no extensions: compression is off), one write each. A page
            # that is behind gets it queued after the rest, in order.
            if client.caught_up:
                if frame is None:
                    frame = Frame(Opcode.TEXT if text else Opcode.BINARY, data).serialize(mask=False, extensions=[])
                client.connection.transport.write(frame)
                continue
            try:
                client.queue.put_nowait((data, text))
            except asyncio.QueueFull:
                self._drop(client)
                continue
            if not text:
                client.audio_backlog += len(data)

    def _send_audio(self, event: SpeechStarted) -> None:
        """The clause's audio to the pages that asked for it, before its `speech` message; a page with
        too much audio waiting gets none (it shows the subtitle without sound)."""
        clients = [c for c in self._clients if c.audio]
        if not clients:
            return
        data = speech_audio_frame(event)
        able = [c for c in clients if c.audio_backlog + len(data) <= AUDIO_BACKLOG_BYTES]
        if len(able) < len(clients):
            log.warning("overlay: %d page(s) are too far behind for audio; this clause is sent without it",
                        len(clients) - len(able))
        self._send(data, text=False, clients=able)

    def _drop(self, client: _Client) -> None:
        log.warning("overlay: a page fell %d messages behind; disconnecting it (close code %d)",
                    self._client_queue_size, CLOSE_TOO_SLOW)
        client.dropped = True
        self._clients.discard(client)
        self.dropped_clients += 1
        if client.sender is not None:
            client.sender.cancel()  # its handler then closes the connection

    def _track(self, message: dict[str, Any]) -> None:
        """Keep what a page that connects now must be told: the reply so far (and, with a voice, what
        of it has been spoken), the status, the voice."""
        kind = message["type"]
        if kind == "status":
            self._status = message["status"]
        elif kind == "voice":
            self._voice = {"engine": message["engine"], "available": message["available"]}
        elif kind == "comment_selected" or kind == "reply_start" and (
                self._current is None or self._current["reply_id"] != message["reply_id"]):
            self._current = {"reply_id": message["reply_id"], "comment": message.get("comment"), "text": ""}
            self._current_parts = []
            self._spoken_parts = []
        elif self._current is None or message.get("reply_id") != self._current["reply_id"]:
            return
        elif kind == "reply_delta":
            self._current_parts.append(message["text"])
        elif kind == "speech":
            self._spoken_parts.append(message["text"])
        elif kind == "reply_end" and self._voice is not None:
            # Still being spoken: a page that connects now shows what has been said and follows the rest.
            self._current["ended"] = True
        elif kind in ("reply_end", "reply_cancelled"):
            self._current = None
            self._current_parts = []
            self._spoken_parts = []

    def _state(self) -> bytes:
        current = None
        if self._current is not None:
            current = self._current | {"text": "".join(self._current_parts)}
            if self._voice is not None:
                current["spoken"] = "".join(self._spoken_parts)
        return json.dumps(state_message(self.character, current, self._status, time.time(), self._voice),
                          ensure_ascii=False).encode()

    # -- connections -----------------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        if connection.request is not None:
            route = self.routes.handlers.get(connection.request.path.partition("?")[0])
            if route is not None:
                await route.handle(connection)
                return
        query = parse_qs(urlsplit(connection.request.path).query) if connection.request is not None else {}
        client = _Client(connection, self._client_queue_size, audio=query.get("audio", ["0"])[0] == "1")
        client.queue.put_nowait((self._state(), True))
        client.sender = asyncio.create_task(self._send_queued(client), name="overlay-send")
        self._clients.add(client)
        reader = asyncio.create_task(self._discard_incoming(connection), name="overlay-read")
        try:
            await asyncio.wait((client.sender, reader), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._clients.discard(client)
            client.sender.cancel()
            reader.cancel()
        if client.dropped:
            try:
                async with asyncio.timeout(self._close_timeout_s):
                    await connection.close(CLOSE_TOO_SLOW, "too slow")
            except TimeoutError:
                connection.transport.abort()  # it does not read at all: not even the close frame

    @staticmethod
    async def _send_queued(client: _Client) -> None:
        try:
            while True:
                data, text = await client.queue.get()
                if not text:
                    client.audio_backlog -= len(data)
                await client.connection.send(data, text=text)
        except ConnectionClosed:
            pass

    @staticmethod
    async def _discard_incoming(connection: ServerConnection) -> None:
        """Pages send nothing; read anyway so that pongs and the close are seen. Ends at close."""
        try:
            async for _ in connection:
                pass
        except ConnectionClosed:
            pass

    # -- HTTP: access checks and static files ----------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        refusal = self._check_host(request)
        if refusal is not None:
            log.warning("overlay: refused a request from %s: %s", connection.remote_address, refusal)
            return connection.respond(http.HTTPStatus.FORBIDDEN, refusal + "\n")
        routed = self._routed_path(path)
        if routed is not None:
            return self._serve_route(connection, request, routed, query)
        if path == WS_PATH:
            refusal = self._check_token(query) or self._check_origin(request)
            if refusal is not None:
                status, reason = refusal
                log.warning("overlay: refused a WebSocket from %s: %s", connection.remote_address, reason)
                return connection.respond(status, reason + "\n")
            return None  # the WebSocket handshake goes on
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return connection.respond(http.HTTPStatus.NOT_FOUND, f"WebSocket is at {WS_PATH}\n")
        file = self._static_file(path)
        if file is None:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
        if file.suffix == ".html":
            # Pages need the token; their scripts and styles (the public overlay code) do not,
            # since a page cannot pass it on to them.
            refusal = self._check_token(query)
            if refusal is not None:
                return connection.respond(refusal[0], refusal[1] + "\n")
        response = connection.respond(http.HTTPStatus.OK, "")
        body = file.read_bytes()
        headers = response.headers.copy()
        del headers["Content-Type"]
        del headers["Content-Length"]
        headers["Content-Type"] = _TYPES.get(file.suffix, mimetypes.guess_type(file.name)[0]
                                             or "application/octet-stream")
        headers["Content-Length"] = str(len(body))
        headers["Cache-Control"] = "no-cache"
        return dataclasses.replace(response, headers=headers, body=body)

    def _check_host(self, request: Request) -> str | None:
        """Why the request's `Host` does not name this server, or None. Accepted: loopback names
        (localhost and *.localhost, which browsers never look up), any IP address (no web page can
        rebind one), the bound name and, bound to all interfaces, this machine's own names. A
        request without `Host` comes from no browser, and is let through."""
        header = request.headers.get("Host")
        if header is None:
            return None
        try:
            name = urlsplit(f"//{header}").hostname
        except ValueError:
            name = None
        if not name:
            return f"bad Host header {header!r}"
        if name == "localhost" or name.endswith(".localhost") or name in self._allowed_hosts:
            return None
        try:
            ipaddress.ip_address(name)
            return None
        except ValueError:
            pass
        return f"host {name!r} is not this server (open it as http://{self._netloc}/)"

    def _check_token(self, query: str) -> tuple[http.HTTPStatus, str] | None:
        if self.token is None:
            return None
        given = parse_qs(query).get("token")
        if not given:
            return http.HTTPStatus.UNAUTHORIZED, "token required: add ?token=... to the URL"
        if not hmac.compare_digest(given[0].encode(), self.token.encode()):
            return http.HTTPStatus.FORBIDDEN, "wrong token"
        return None

    def _check_origin(self, request: Request) -> tuple[http.HTTPStatus, str] | None:
        """Browsers always send Origin; other programs need not. Accepted: the page's own
        host:port, a local file (only ever reached past the token check, or on loopback), and on
        a loopback-only server any loopback origin."""
        origin = request.headers.get("Origin")
        if origin is None or origin in _LOCAL_FILE_ORIGINS:
            return None
        if _same_origin(origin, request.headers.get("Host", "")):
            return None
        if self.token is None:
            host = urlsplit(origin).hostname
            if host is not None and is_loopback(host):
                return None
        return http.HTTPStatus.FORBIDDEN, f"origin {origin} not allowed"

    def _routed_path(self, path: str) -> str | None:
        """The routed path that `path` names, also when spelt otherwise (/%63ontrol.html, /./control.html)."""
        if path in self.routes.handlers or path in ROUTED_PAGES:
            return path
        file = self._static_file(path)
        if file is not None:
            for page in ROUTED_PAGES:
                if file == self.static_dir / page.lstrip("/"):
                    return page
        return None

    def _serve_route(self, connection: ServerConnection, request: Request, path: str, query: str) -> Response | None:
        """A path another output serves here: its own checks, then its WebSocket or its page."""
        route: PortRoute | None = self.routes.handlers.get(path)
        file = self._static_file(path) if route is not None and not route.websocket else None
        if route is None or (not route.websocket and file is None):
            return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
        refusal = route.check(request, query, self._check_origin)
        if refusal is not None:
            log.warning("overlay: refused %s from %s: %s", path, connection.remote_address, refusal[1])
            return connection.respond(refusal[0], refusal[1] + "\n")
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if route.websocket:
            return None if upgrade else connection.respond(http.HTTPStatus.BAD_REQUEST, "WebSocket only\n")
        if upgrade or file is None:
            return connection.respond(http.HTTPStatus.BAD_REQUEST, "not a WebSocket path\n")
        response = connection.respond(http.HTTPStatus.OK, "")
        body = file.read_bytes()
        headers = response.headers.copy()
        del headers["Content-Type"]
        del headers["Content-Length"]
        headers["Content-Type"] = _TYPES.get(file.suffix, "application/octet-stream")
        headers["Content-Length"] = str(len(body))
        headers["Cache-Control"] = "no-store"
        for name, value in route.headers.items():
            headers[name] = value
        return dataclasses.replace(response, headers=headers, body=body)

    def _static_file(self, url_path: str) -> Path | None:
        """The file under the overlay folder for a URL path; None for anything outside it."""
        rel = unquote(url_path).lstrip("/") or "index.html"
        try:
            file = (self.static_dir / rel).resolve()
        except (OSError, ValueError):
            return None
        if not file.is_relative_to(self.static_dir):
            return None
        if file.is_dir():
            file = file / "index.html"
        return file if file.is_file() else None


def _same_origin(origin: str, host_header: str) -> bool:
    """Whether `origin` (scheme://host[:port]) names the host:port the request was sent to."""
    try:
        o = urlsplit(origin)
        h = urlsplit(f"//{host_header}")
        o_port = o.port or {"http": 80, "https": 443}.get(o.scheme)
        h_port = h.port or {"http": 80, "https": 443}.get(o.scheme)
    except ValueError:
        return False
    return (o.scheme in ("http", "https") and o.hostname is not None
            and o.hostname == h.hostname and o_port == h_port)


def create_output(context: OutputContext) -> OverlayServer | None:
    settings = context.settings.overlay
    if not settings.enabled:
        return None
    character = context.character
    return OverlayServer(host=settings.host, port=settings.port, token=settings.token,
                         character={"id": character.id, "name": character.name}, announce=context.announce,
                         routes=context.routes)
