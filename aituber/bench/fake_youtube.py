"""A fake YouTube for the live source: a real HTTP server on 127.0.0.1 that answers what pytchat (and
our channel-id lookup) asks for, with recorded or generated responses and injected faults. The tests
(tests/sources) and `aituber bench soak` share it.

pytchat first needs the video's channel id: our source reads it from `/embed/ID` (the page carries
it inside escaped JSON), else asks oEmbed (`/oembed?url=...`, whose `author_url` names the channel or
its @handle, whose page carries `"externalId"`), else the mobile watch page. Then pytchat POSTs
`/youtubei/v1/live_chat/get_live_chat` with a continuation token, again and again. Each chat POST
takes the next step of the script: a response, or a fault. When the script is used up, every chat
POST gets `ended` (by default a response without `continuationContents`: the stream is over), as
does the replay endpoint pytchat tries when a first page has no chat.

`continuation_pages` builds the pages that follow a recorded first page from single actions, the way
YouTube sends them today (`invalidationContinuationData`, a fresh token each); `stopped_page` is a
page after which a reader has no continuation (a reader that stops while the stream is live).

    python -m aituber.bench.fake_youtube --pages 100 --comments 10 --fault-every 10

serves a generated stream (`SimulatedStream`) and prints its port; `GET /__stats` says what it sent.
"""

from __future__ import annotations

import argparse
import collections
import copy
import itertools
import json
import random
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

CHANNEL_ID = "UCfakechannel00000000001"
HANDLE = "@fakechannel"


@dataclass(frozen=True)
class Fault:
    """`timeout` (no answer within `hang_s`), `status` (an HTTP error), `reset` (the connection
    is reset), `garbage` (200 with a body that is no JSON)."""

    kind: str
    status: int = 0
    hang_s: float = 0.0

    @property
    def name(self) -> str:
        return f"http_{self.status}" if self.kind == "status" else self.kind


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


def stopped_page(page: dict[str, Any]) -> dict[str, Any]:
    """`page` with no continuation token after it: the reader that gets it has nowhere to go on
    (what a pytchat reader does after about a day), though the stream is live."""
    page = copy.deepcopy(page)
    for continuation in page["continuationContents"]["liveChatContinuation"]["continuations"]:
        for data in continuation.values():
            data.pop("continuation", None)
    return page


class FakeYouTube:
    """`steps`: the chat POSTs' answers in order (a list, or any iterable: a long generated stream).
    `channel_id`: None for a video that does not exist. `embed_channel`: False for an embed page that
    no longer carries the channel id (YouTube changed it): then oEmbed must be asked.
    `same_page_for_same_token`: a chat POST with the token that got the last page gets that page
    again, as from YouTube (a client that gave up waiting for a page asks again; the pages' own
    tokens must then all differ, as a `SimulatedStream`'s do)."""

    def __init__(self, steps: Iterable[Step], ended: dict[str, Any] | None = None,
                 channel_id: str | None = CHANNEL_ID, *, embed_channel: bool = True,
                 history: int = 10_000, same_page_for_same_token: bool = False) -> None:
        self._steps: Iterator[Step] = iter(steps)
        self._left = len(steps) if isinstance(steps, (list, tuple)) else None
        self._channel_id = channel_id
        self._embed_channel = embed_channel
        self._ended = ended if ended is not None else {"responseContext": {"visitorData": "x"}}
        self._lock = threading.Lock()
        self.chat_posts = 0
        self._requests: collections.deque[tuple[str, str]] = collections.deque(maxlen=history)
        self._continuations: collections.deque[str | None] = collections.deque(maxlen=history)
        self.faults: collections.Counter[str] = collections.Counter()
        """Faults served, by kind."""
        self.pages_served = 0
        self.pages_again = 0
        """Pages served again to a client that asked with the same token."""
        self._same_page = same_page_for_same_token
        self._last_page: tuple[str | None, dict[str, Any]] | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK wait

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
                status, body, content_type = fake._page(self.path)
                self._send(status, body, content_type)

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
                    try:
                        body = json.dumps(step, ensure_ascii=False).encode()
                    except UnicodeEncodeError:  # a lone surrogate: sent escaped, as YouTube would
                        body = json.dumps(step).encode()
                    self._send(200, body)

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

    # -- the pages ------------------------------------------------------------------------------------

    def _page(self, raw_path: str) -> tuple[int, bytes, str]:
        """(status, body, content type) for a GET: the embed page, oEmbed, a channel page, the mobile
        watch page, or this server's own statistics (`/__stats`)."""
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        html = "text/html; charset=utf-8"
        cid = self._channel_id
        if path == "/__stats":
            return 200, json.dumps(self.stats()).encode(), "application/json"
        if path == "/oembed":
            if cid is None:
                return 404, b"Not Found", "text/plain"
            url = (parse_qs(parts.query).get("url") or [""])[0]
            answer = {"title": "live", "author_name": "Fake", "author_url": f"https://www.youtube.com/{HANDLE}",
                      "type": "video", "version": "1.0", "provider_url": "https://www.youtube.com/", "url": url}
            return 200, json.dumps(answer).encode(), "application/json"
        if path.startswith("/@"):
            if cid is None or path.rstrip("/").removesuffix("/about") != f"/{HANDLE}":
                return 404, b"<html>404</html>", html
            return 200, f'<html><script>var ytInitialData = {{"metadata": {{"channelMetadataRenderer": '\
                        f'{{"externalId":"{cid}"}}}}}};</script></html>'.encode(), html
        if path.startswith("/embed/") and cid is not None and self._embed_channel:
            # The channel id inside escaped JSON, as YouTube's embed page carried it.
            return 200, f'<html><script>var x = "{{\\"channelId\\":\\"{cid}\\"}}";</script></html>'.encode(), html
        return 200, b"<html>This video is unavailable</html>", html

    def _note(self, method: str, path: str) -> None:
        with self._lock:
            self._requests.append((method, path))

    def _next(self, continuation: str | None) -> Step:
        with self._lock:
            self.chat_posts += 1
            self._continuations.append(continuation)
            if self._same_page and self._last_page is not None and self._last_page[0] == continuation:
                self.pages_again += 1
                return self._last_page[1]
            step = next(self._steps, None)
            if step is None:
                return self._ended
            if self._left is not None:
                self._left -= 1
            if isinstance(step, Fault):
                self.faults[step.name] += 1
            else:
                self.pages_served += 1
                self._last_page = (continuation, step)
            return step

    @property
    def requests(self) -> list[tuple[str, str]]:
        """The last `history` requests (method, path), in order."""
        with self._lock:
            return list(self._requests)

    @property
    def continuations(self) -> list[str | None]:
        """The continuation token of each chat POST, in order (the last `history`)."""
        with self._lock:
            return list(self._continuations)

    @property
    def steps_left(self) -> int:
        """Steps not served yet (for a list of steps)."""
        with self._lock:
            return self._left if self._left is not None else -1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"chat_posts": self.chat_posts, "pages": self.pages_served, "pages_again": self.pages_again,
                    "faults": dict(self.faults)}

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


# -- a generated stream ---------------------------------------------------------------------------------

#: The faults a simulated stream injects, in turn: each kind of failure the live source must survive.
FAULT_CYCLE = ("timeout", "reset", "http_429", "http_500", "http_503", "garbage", "stop")

_TEXTS = ("こんにちは！", "今日のゲーム楽しみ", "ミカちゃんかわいい", "おつかれさま〜", "初見です",
          "何時まで配信するの？", "このBGM好き", "草", "がんばれー！", "好きな食べ物は？", "雑談たのしい",
          "Hello from Brazil!", "今北産業", "歌って〜", "ナイス！", "おやすみなさい")


def _run(text: str) -> dict[str, Any]:
    return {"runs": [{"text": text}]}


class SimulatedStream:
    """`pages` get_live_chat pages of a live stream, `page_s` seconds of stream time each (YouTube's
    `timeoutMs`), `comments` chat items a page from a pool of `viewers`; every `fault_every` pages a
    fault from `FAULT_CYCLE` comes first (a "stop" is a page after which the reader has no
    continuation). Deterministic for a `seed`: `comment_ids()` lists, without building pages, every
    chat item id the stream sends, in order."""

    def __init__(self, pages: int, comments: int = 10, *, page_s: float = 5.0, fault_every: int = 40,
                 viewers: int = 500, seed: int = 1, hang_s: float = 0.5) -> None:
        self.pages = pages
        self.comments = comments
        self.page_s = page_s
        self.fault_every = fault_every
        self.viewers = viewers
        self.seed = seed
        self.hang_s = hang_s

    @property
    def stream_s(self) -> float:
        return self.pages * self.page_s

    def comment_ids(self) -> Iterator[str]:
        for page in range(1, self.pages + 1):
            for n in range(self.comments):
                yield f"sim-{page}-{n}"

    def faults(self) -> list[str]:
        """The faults the stream injects, in order."""
        every = self.fault_every
        return [FAULT_CYCLE[(k - 1) % len(FAULT_CYCLE)] for k in range(1, self.pages // every + 1)] if every else []

    def steps(self) -> Iterator[Step]:
        """The chat POSTs' answers, built as they are asked for (a long stream holds no pages in memory)."""
        rand = random.Random(self.seed)
        fault_no = 0
        for page in range(1, self.pages + 1):
            if self.fault_every and page % self.fault_every == 0:
                fault_no += 1
                kind = FAULT_CYCLE[(fault_no - 1) % len(FAULT_CYCLE)]
                if kind != "stop":
                    yield self._fault(kind)
                else:
                    yield stopped_page(self._page(page, rand))
                    continue
            yield self._page(page, rand)

    def _fault(self, kind: str) -> Fault:
        if kind == "timeout":
            return Fault("timeout", hang_s=self.hang_s)
        if kind.startswith("http_"):
            return Fault("status", status=int(kind[5:]))
        return Fault(kind)

    def _page(self, page: int, rand: random.Random) -> dict[str, Any]:
        base_usec = 1_764_300_000_000_000 + int(page * self.page_s * 1_000_000)
        actions = []
        for n in range(self.comments):
            viewer = rand.randrange(self.viewers)
            renderer: dict[str, Any] = {
                "id": f"sim-{page}-{n}", "timestampUsec": str(base_usec + n * 1000),
                "authorName": {"simpleText": f"視聴者{viewer}"},
                "authorExternalChannelId": f"UCsim{viewer:019d}",
                "message": _run(f"{rand.choice(_TEXTS)} ({page}-{n})"),
            }
            roll = rand.random()
            if roll < 0.02:
                renderer["purchaseAmountText"] = {"simpleText": f"￥{rand.choice((200, 500, 1000, 10000)):,}"}
                item = {"liveChatPaidMessageRenderer": renderer}
            elif roll < 0.03:
                renderer["headerSubtext"] = _run("メンバーシップへようこそ！")
                del renderer["message"]
                item = {"liveChatMembershipItemRenderer": renderer}
            else:
                item = {"liveChatTextMessageRenderer": renderer}
            actions.append({"addChatItemAction": {"item": item, "clientId": f"c{page}-{n}"}})
            if rand.random() < 0.01 and n:  # a moderator deletes an earlier comment of this page
                actions.append({"markChatItemAsDeletedAction": {"targetItemId": f"sim-{page}-{n - 1}",
                                                                "deletedStateMessage": _run("[削除済み]")}})
        return {
            "responseContext": {"visitorData": "Cgtmake", "serviceTrackingParams": []},
            "continuationContents": {"liveChatContinuation": {
                "continuations": [{"invalidationContinuationData": {
                    "invalidationId": {"objectSource": 1056, "topic": "chat~fake"},
                    "timeoutMs": int(self.page_s * 1000), "continuation": f"sim-{page}"}}],
                "actions": actions,
            }},
        }


def main(argv: list[str] | None = None) -> int:
    """Serve a simulated stream until stdin closes; print the port on the first line."""
    parser = argparse.ArgumentParser(description="Serve a simulated YouTube live stream to the live source.")
    parser.add_argument("--pages", type=int, default=100, help="pages of chat (default: 100)")
    parser.add_argument("--comments", type=int, default=10, help="chat items a page (default: 10)")
    parser.add_argument("--page-s", type=float, default=5.0, help="stream seconds a page (default: 5)")
    parser.add_argument("--fault-every", type=int, default=40, help="a fault every N pages (0: none; default 40)")
    parser.add_argument("--hang-s", type=float, default=0.5, help="how long a timeout fault hangs (default: 0.5)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    stream = SimulatedStream(args.pages, args.comments, page_s=args.page_s, fault_every=args.fault_every,
                             seed=args.seed, hang_s=args.hang_s)
    with FakeYouTube(stream.steps(), same_page_for_same_token=True) as server:
        print(server.port, flush=True)
        for _ in itertools.takewhile(bool, iter(sys.stdin.readline, "")):
            pass  # until the parent closes our stdin
    return 0


if __name__ == "__main__":
    sys.exit(main())
