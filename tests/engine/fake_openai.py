"""A small OpenAI-compatible HTTP server for the faults a real server cannot be made to produce on
demand: malformed SSE lines, HTTP 4xx/5xx, a slow first token, a stall, a reply that never ends, a
connection dropped mid-reply. It speaks HTTP/1.1 with keep-alive and chunked server-sent events, as
vLLM and llama.cpp do, on 127.0.0.1 port 0.

A test gives a `handler(request) -> Script`: a status and the steps of the body (`Send` raw SSE text,
`Hang` until the client goes away, `Drop` the connection without ending the body).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    json: Any
    connection: int
    """Which TCP connection it came on (1, 2, ...)."""


@dataclass(frozen=True)
class Send:
    text: str


@dataclass(frozen=True)
class Hang:
    """Send nothing more until the client closes the connection."""


@dataclass(frozen=True)
class Drop:
    """Close the connection without finishing the body (a server that died)."""


@dataclass(frozen=True)
class Forever:
    """Stream this piece again and again until the client goes away."""

    text: str


@dataclass
class Script:
    status: int = 200
    steps: Iterable[Send | Hang | Drop | Forever] = ()
    body: bytes | None = None
    """A whole body (an error answer, the model list) instead of a stream."""
    content_type: str = "text/event-stream"


def chat_chunk(text: str | None = None, finish: str | None = None, **extra: Any) -> str:
    delta = {} if text is None else {"content": text}
    payload = {"id": "c1", "object": "chat.completion.chunk", "model": "fake",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def completion_chunk(text: str, finish: str | None = None) -> str:
    payload = {"id": "t1", "object": "text_completion", "model": "fake",
               "choices": [{"index": 0, "text": text, "finish_reason": finish}]}
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


DONE = "data: [DONE]\n\n"


def reply_script(pieces: Iterable[str], finish: str = "stop", chat: bool = True) -> Script:
    if chat:
        steps = [Send(chat_chunk(None)), *(Send(chat_chunk(p)) for p in pieces), Send(chat_chunk(None, finish))]
    else:
        steps = [*(Send(completion_chunk(p)) for p in pieces), Send(completion_chunk("", finish))]
    return Script(steps=[*steps, Send(DONE)])


def models_script(names: Iterable[str] = ("fake-model",)) -> Script:
    body = json.dumps({"object": "list", "data": [{"id": n, "object": "model"} for n in names]}).encode()
    return Script(body=body, content_type="application/json")


@dataclass
class FakeOpenAIServer:
    handler: Callable[[Request], Script]
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    disconnects: int = 0
    """Streams the client closed before the body ended (what `!skip` and a cut do)."""
    port: int = 0
    _server: asyncio.Server | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> FakeOpenAIServer:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def _note(self) -> None:
        self._changed.set()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._writers.add(writer)
        self._note()
        try:
            while True:
                request = await self._read_request(reader, number)
                if request is None:
                    return
                self.requests.append(request)
                self._note()
                if not await self._answer(self.handler(request), reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()
            self._note()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader, number: int) -> Request | None:
        line = await reader.readline()
        if not line:
            return None
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return Request(method, path, headers, json.loads(body) if body else None, number)

    async def _answer(self, script: Script, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Write one answer; False when the connection is over."""
        head = f"HTTP/1.1 {script.status} X\r\nContent-Type: {script.content_type}\r\n"
        if script.body is not None:
            writer.write(f"{head}Content-Length: {len(script.body)}\r\n\r\n".encode() + script.body)
            await writer.drain()
            return True
        writer.write(f"{head}Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n\r\n".encode())
        await writer.drain()

        async def chunk(text: str) -> None:
            data = text.encode("utf-8")
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            await writer.drain()

        try:
            for step in script.steps:
                if isinstance(step, Send):
                    if step.text:
                        await chunk(step.text)
                elif isinstance(step, Drop):
                    writer.transport.abort()
                    return False
                elif isinstance(step, Hang):
                    await reader.read()  # returns at EOF: the client closed
                    raise ConnectionResetError
                elif isinstance(step, Forever):
                    while True:
                        await chunk(step.text)
                        await asyncio.sleep(0.002)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        except (ConnectionError, RuntimeError):
            self.disconnects += 1
            self._note()
            return False


class ThreadedServer:
    """The server on its own event loop in a thread, for code under test that runs `asyncio.run` itself."""

    def __init__(self, handler: Callable[[Request], Script]) -> None:
        import threading

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-openai", daemon=True)
        self._thread.start()
        self.server = asyncio.run_coroutine_threadsafe(FakeOpenAIServer(handler).start(), self._loop).result(10)

    @property
    def url(self) -> str:
        return self.server.url

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
