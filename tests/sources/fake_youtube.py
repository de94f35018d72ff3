"""A fake YouTube for the live source: a real HTTP server on 127.0.0.1 that answers what pytchat
asks for, in order, with recorded responses or injected faults.

pytchat first GETs `/embed/ID` (it reads the channel id from the page), then POSTs
`/youtubei/v1/live_chat/get_live_chat` with a continuation token, again and again. A chat POST
takes the next step of the script: a recorded response, or a fault. When the script is used up,
every chat POST gets `ended` (by default a response without `continuationContents`: the stream
is over), as does the replay endpoint pytchat tries when a first page has no chat.

`continuation_pages` builds the pages that follow a recorded first page from single recorded
actions, the way YouTube sends them today (`invalidationContinuationData`, a fresh token each).
"""

from __future__ import annotations

import copy
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

CHANNEL_ID = "UCfakechannel00000000001"


@dataclass(frozen=True)
class Fault:
    """`timeout` (no answer within `hang_s`), `status` (an HTTP error), `reset` (the connection
    is reset), `garbage` (200 with a body that is no JSON)."""

    kind: str
    status: int = 0
    hang_s: float = 0.0


TIMEOUT = Fault("timeout", hang_s=1.0)
TOO_MANY = Fault("status", status=429)
SERVER_ERROR = Fault("status", status=500)
RESET = Fault("reset")
GARBAGE = Fault("garbage")

Step = dict[str, Any] | Fault


def continuation_pages(first_page: dict[str, Any], actions: list[dict[str, Any]], per_page: int,
                       tag: str = "page") -> list[dict[str, Any]]:
    """`actions`, `per_page` to a page, as the get_live_chat responses that follow `first_page`:
    its response context and continuation kind, the token `<tag>-<n>`. The first page itself is
    served unchanged (its own token leads to page 1)."""
    continuation = first_page["continuationContents"]["liveChatContinuation"]["continuations"][0]
    kind, data = next(iter(continuation.items()))
    pages = []
    for n, start in enumerate(range(0, len(actions), per_page), start=1):
        next_data = copy.deepcopy(data)
        next_data["continuation"] = f"{tag}-{n}"
        pages.append({
            "responseContext": copy.deepcopy(first_page["responseContext"]),
            "continuationContents": {"liveChatContinuation": {
                "continuations": [{kind: next_data}],
                "actions": copy.deepcopy(actions[start:start + per_page]),
            }},
        })
    return pages


class FakeYouTube:
    def __init__(self, steps: list[Step], ended: dict[str, Any] | None = None,
                 channel_id: str | None = CHANNEL_ID) -> None:
        self._steps = list(steps)
        self._channel_id = channel_id
        self._ended = ended if ended is not None else {"responseContext": {"visitorData": "x"}}
        self._lock = threading.Lock()
        self.chat_posts = 0
        self.requests: list[tuple[str, str]] = []
        self.continuations: list[str | None] = []
        """The continuation token of each chat POST, in order."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                fake._note("GET", self.path)
                # The embed page carries the channel id inside escaped JSON, as YouTube's does.
                if fake._channel_id is None:
                    page = "<html>This video is unavailable</html>"
                else:
                    page = f'<html><script>var x = "{{\\"channelId\\":\\"{fake._channel_id}\\"}}";</script></html>'
                self._send(200, page.encode(), "text/html; charset=utf-8")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                fake._note("POST", self.path)
                if "get_live_chat_replay" in self.path:
                    self._send(200, json.dumps(fake._ended).encode())
                    return
                try:
                    continuation = json.loads(body).get("continuation")
                except ValueError:
                    continuation = None
                step = fake._next(continuation)
                if isinstance(step, Fault):
                    self._fault(step)
                else:
                    self._send(200, json.dumps(step, ensure_ascii=False).encode())

            def _fault(self, fault: Fault) -> None:
                if fault.kind == "status":
                    self._send(fault.status, b'{"error": {"code": %d}}' % fault.status)
                elif fault.kind == "garbage":
                    self._send(200, b'{"continuationContents": {"liveChatCont')
                elif fault.kind == "timeout":
                    time.sleep(fault.hang_s)
                    self.close_connection = True
                elif fault.kind == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, client_address: None  # resets are on purpose
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-youtube", daemon=True)

    def _note(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def _next(self, continuation: str | None) -> Step:
        with self._lock:
            self.chat_posts += 1
            self.continuations.append(continuation)
            return self._steps.pop(0) if self._steps else self._ended

    @property
    def steps_left(self) -> int:
        with self._lock:
            return len(self._steps)

    def transport(self) -> httpx.BaseTransport:
        """For the source's `transport=`: sends youtube.com requests here instead."""
        return LocalTransport(self.port)

    def __enter__(self) -> FakeYouTube:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class LocalTransport(httpx.BaseTransport):
    """Rewrites every request to http://127.0.0.1:PORT, keeping the path and query."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self._port)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()
