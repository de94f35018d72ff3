"""The overlay server: one port for the OBS browser source (static files over HTTP) and its
WebSocket (`/ws`), which broadcasts the pipeline's events as JSON.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http
import json
import logging
import mimetypes
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from aituber.core.events import CommentSelected, Event, ReplyDelta, ReplyEnded
from aituber.core.messages import PROTOCOL_VERSION, comment_message, event_to_message
from aituber.errors import ConfigError

log = logging.getLogger(__name__)

WS_PATH = "/ws"
OVERLAY_DIR = Path(__file__).resolve().parents[2] / "obs_overlay"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml",
          ".json": "application/json"}


class _Client:
    """One connected page: its own bounded queue, so a slow page never slows the others."""

    def __init__(self, connection: ServerConnection, queue_size: int) -> None:
        self.connection = connection
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)


class OverlayServer:
    def __init__(self, static_dir: Path = OVERLAY_DIR, host: str = "127.0.0.1", port: int = 8765,
                 character: dict[str, Any] | None = None, client_queue_size: int = 1024) -> None:
        self.static_dir = static_dir.resolve()
        self.host = host
        self.port = port
        self.character = character or {}
        self._client_queue_size = client_queue_size
        self._clients: set[_Client] = set()
        self._server: Server | None = None
        self._current: dict[str, Any] | None = None  # the reply being typed, for late joiners

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def start(self) -> None:
        try:
            self._server = await serve(self._handle, self.host, self.port,
                                       process_request=self._process_request, ping_interval=20,
                                       ping_timeout=20)
        except OSError as exc:
            raise ConfigError(f"overlay: cannot listen on {self.host}:{self.port}: {exc.strerror}; "
                              "choose another with --port") from exc
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("overlay at %s", self.url)

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        try:
            async with asyncio.timeout(2):
                await self._server.wait_closed()
        except TimeoutError:
            log.warning("overlay: some connections did not close in time")
        self._server = None

    # -- events in -------------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        self._track(event)
        message = event_to_message(event, time.time())
        if message is None or not self._clients:
            return
        data = json.dumps(message, ensure_ascii=False)
        for client in list(self._clients):
            try:
                client.queue.put_nowait(data)
            except asyncio.QueueFull:
                log.warning("overlay: a client fell %d messages behind; disconnecting it",
                            self._client_queue_size)
                self._clients.discard(client)
                asyncio.ensure_future(client.connection.close(1008, "too slow"))

    def _track(self, event: Event) -> None:
        match event:
            case CommentSelected(comment=comment, reply_id=reply_id):
                self._current = {"comment": comment_message(comment), "reply_id": reply_id, "text": ""}
            case ReplyDelta(reply_id=reply_id, text=text) if self._current and self._current["reply_id"] == reply_id:
                self._current["text"] += text
            case ReplyEnded(reply_id=reply_id) if self._current and self._current["reply_id"] == reply_id:
                self._current = None

    # -- connections -----------------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        client = _Client(connection, self._client_queue_size)
        hello = {"type": "state", "version": PROTOCOL_VERSION, "character": self.character,
                 "current": self._current, "ts": time.time()}
        client.queue.put_nowait(json.dumps(hello, ensure_ascii=False))
        self._clients.add(client)
        try:
            while True:
                data = await client.queue.get()
                await connection.send(data)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == WS_PATH:
            return None  # the WebSocket handshake goes on
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return connection.respond(http.HTTPStatus.NOT_FOUND, f"WebSocket is at {WS_PATH}\n")
        file = self._static_file(path)
        if file is None:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
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

    def _static_file(self, url_path: str) -> Path | None:
        """The file under the overlay folder for a URL path; None for anything outside it."""
        from urllib.parse import unquote

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
