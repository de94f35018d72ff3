"""The remote engine: any OpenAI-compatible server (vLLM, llama.cpp's server, llama-cpp-python, Ollama).

Replies stream from `/v1/chat/completions` (the persona as the system message, memory as turns, the
comment with the viewer's name: `PromptForm.MESSAGES`; the server applies the model's chat template)
or from `/v1/completions` (the character's own template rendered here: `PromptForm.TEXT`, e.g. the
seed's `### instruction` format on a base or tuned model). Both speak server-sent events.

The stop strings and the character limit are applied here too (the same `ReplyShaper` as the local
engine), so a reply ends the same way whatever the server supports. Faults end the reply with a
`GenerationError` (the pipeline records it as stop reason "error" and goes on to the next comment):
the server unreachable or dying mid-reply, an HTTP error, no first token within
`first_token_timeout_s`, no data for `read_timeout_s`. A reply that never ends is cut at the length
limit (`max_new_tokens` pieces, `max_chars`, or `reply_timeout_s`). Closing the stream (`!skip`, a stop
string, the length limit) closes the connection, so the server stops generating.

One `httpx.AsyncClient` per engine: connections are reused between replies; nothing blocks the loop.
The API key comes in `EngineSettings.options` (read from an environment variable by the CLI) and is
never logged or shown.

`create_engine` is the registry's factory; with a `fallback` (the local CTranslate2 settings) it
returns a `FallbackEngine` that switches to the local model when the server is down at start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from aituber.core.prompt import Prompt, PromptForm
from aituber.core.textstream import ReplyShaper, clean_text
from aituber.engine.base import Engine, EngineInfo, EngineSettings, GenerationOptions, ReplyChunk
from aituber.errors import ConfigError, GenerationError

log = logging.getLogger(__name__)

__all__ = ["APIS", "ApiKey", "FallbackEngine", "OpenAIEngine", "RemoteSettings", "SseLines", "create_engine",
           "estimate_tokens", "parse_event", "normalize_url"]

APIS = ("chat", "completions")
"""`chat`: /v1/chat/completions with messages; `completions`: /v1/completions with a rendered prompt."""
OPENAI_STOP_LIMIT = 4
"""OpenAI's own API takes at most 4 stop strings (the rest are applied here only)."""
_ERROR_BODY_CHARS = 2000


class ApiKey(str):
    """The API key: a string whose repr never shows it (settings may be logged or printed)."""

    def __repr__(self) -> str:
        return "ApiKey('***')"


@dataclass(frozen=True, slots=True)
class RemoteSettings:
    """How to reach the server and how long to wait; built once from `EngineSettings`."""

    url: str
    """The API base, ending in /v1 (`normalize_url`)."""
    model: str | None = None
    """The served model's name; None = the first one the server lists."""
    api: str = "chat"
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str = "AITUBER_ENGINE_API_KEY"
    """Where the key came from (for error messages only)."""
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 60.0
    """From sending the request to the first text (the server's queue and prompt processing)."""
    read_timeout_s: float = 30.0
    """The longest gap between two pieces of a reply."""
    reply_timeout_s: float = 120.0
    """A reply still streaming after this long is cut as if at the length limit."""
    extended_sampling: bool = True
    """Also send top_k and the repetition penalty (vLLM, llama.cpp, Ollama take them; OpenAI's API refuses
    them) and every stop string (OpenAI's API: at most 4)."""
    max_connections: int = 4
    seed: int | None = None
    """Sent with every request (servers that take one sample the same reply for the same prompt)."""

    @classmethod
    def from_engine_settings(cls, settings: EngineSettings) -> RemoteSettings:
        """From `--engine-url`/`[engine]` (in `settings.options`, checked by aituber.config) and the model."""
        known = {f.name for f in fields(cls)} - {"url", "model", "seed"}
        options = dict(settings.options)
        options.pop("fallback", None)
        url = options.pop("url", None)
        if not url:
            raise ConfigError("the openai engine needs the server's address: --engine-url URL or [engine] url")
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"the openai engine takes no option(s) {', '.join(unknown)}")
        api = options.get("api", "chat")
        if api not in APIS:
            raise ConfigError(f"unknown api {api!r} for the openai engine (known: {', '.join(APIS)})")
        for name in ("connect_timeout_s", "first_token_timeout_s", "read_timeout_s", "reply_timeout_s"):
            if name in options and not (isinstance(options[name], (int, float)) and options[name] > 0):
                raise ConfigError(f"{name} must be a number of seconds above 0, not {options[name]!r}")
        model = str(settings.model) if settings.model else None
        return cls(url=normalize_url(str(url)), model=model, seed=settings.seed, **options)

    @property
    def display_url(self) -> str:
        """The address without any user name or password in it (for logs, errors and the transcript)."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def normalize_url(url: str) -> str:
    """`http://host:port` or `http://host:port/v1` (or any API base path) -> the base without a
    trailing slash; a bare host gets `/v1`. A ConfigError for what is not an http(s) address."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"engine url {url!r}: expected http://HOST:PORT[/v1]")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ConfigError(f"engine url {url!r}: {exc}") from None
    path = parts.path.rstrip("/")
    for suffix in ("/chat/completions", "/completions"):
        if path.endswith(suffix):  # the endpoint given instead of the base
            path = path[: -len(suffix)]
    if not path:
        path = "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def estimate_tokens(text: str) -> int:
    """Roughly how many tokens `text` is, without the server's tokenizer: about one per Japanese
    character and one per four ASCII characters (it sizes the memory, nothing exact depends on it)."""
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    return math.ceil(ascii_chars / 4) + (len(text) - ascii_chars)


# --- the wire format (no I/O) ---------------------------------------------------------------------


class SseLines:
    """Server-sent events, line by line: `feed(line)` returns an event's data once the blank line that
    ends it arrives (data lines joined with newlines). Comments (`:`) and other fields are skipped;
    `malformed` counts lines that are not SSE at all."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self.malformed = 0

    def feed(self, line: str) -> str | None:
        if not line:
            if not self._data:
                return None
            data, self._data = "\n".join(self._data), []
            return data
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, colon, value = line.partition(":")
        if not colon:
            self.malformed += 1
            return None
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name not in ("event", "id", "retry"):
            self.malformed += 1
        return None

    def finish(self) -> str | None:
        """An event left without its blank line at the end of the stream."""
        return self.feed("")


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One data event of a completion stream, as we need it."""

    text: str = ""
    finish_reason: str | None = None
    done: bool = False
    """`data: [DONE]`."""
    completion_tokens: int | None = None
    """From `usage`, when the server sends it."""
    server_ms: float | None = None
    """The server's own time for the whole reply (llama.cpp's `timings`), when it sends it."""
    error: str | None = None
    """An error object in the stream."""
    content: bool = False
    """The event carries a piece of the reply (possibly empty text)."""


def parse_event(data: str) -> StreamEvent | None:
    """The meaning of one event's data (chat or completions chunk); None when it is not valid JSON
    of that shape (a malformed event, skipped with a warning)."""
    if data.strip() == "[DONE]":
        return StreamEvent(done=True)
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    if payload.get("error"):
        error = payload["error"]
        message = error.get("message") if isinstance(error, dict) else error
        return StreamEvent(error=str(message))
    text, finish, content = "", None, False
    choices = payload.get("choices")
    if choices is not None:
        if not isinstance(choices, list):
            return None
        if choices:
            choice = choices[0]
            if not isinstance(choice, dict):
                return None
            delta = choice.get("delta")
            piece = delta.get("content") if isinstance(delta, dict) else choice.get("text")
            if piece is not None and not isinstance(piece, str):
                return None
            text, content = piece or "", piece is not None
            reason = choice.get("finish_reason")
            finish = reason if isinstance(reason, str) and reason else None
    elif "usage" not in payload and "timings" not in payload:
        return None
    usage = payload.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    timings = payload.get("timings")
    server_ms = None
    if isinstance(timings, dict):
        try:
            server_ms = float(timings.get("prompt_ms", 0.0)) + float(timings.get("predicted_ms", 0.0))
        except (TypeError, ValueError):
            server_ms = None
    return StreamEvent(text=text, finish_reason=finish, completion_tokens=tokens if isinstance(tokens, int) else None,
                       server_ms=server_ms, content=content)


def request_body(settings: RemoteSettings, model: str | None, prompt: Prompt | str,
                 options: GenerationOptions) -> dict[str, Any]:
    """The JSON body of one streamed request: the prompt in the form the api takes, the character's
    sampling, stop strings and token limit."""
    body: dict[str, Any] = {"stream": True, "max_tokens": options.max_new_tokens,
                            "temperature": options.temperature, "top_p": options.top_p}
    if model:
        body["model"] = model
    if settings.api == "chat":
        if isinstance(prompt, str):
            messages: list[Mapping[str, str]] = [{"role": "user", "content": prompt}]
        elif prompt.messages:
            messages = list(prompt.messages)
        else:
            raise GenerationError("the chat api needs the prompt as messages (PromptForm.MESSAGES)")
        body["messages"] = [dict(m) for m in messages]
    else:
        body["prompt"] = prompt if isinstance(prompt, str) else prompt.text
    stops = list(dict.fromkeys(s for s in options.stop_strings if s))
    if stops:
        body["stop"] = stops if settings.extended_sampling else stops[:OPENAI_STOP_LIMIT]
    if settings.seed is not None:
        body["seed"] = settings.seed
    if settings.extended_sampling:
        if options.top_k > 0:
            body["top_k"] = options.top_k
        body["repeat_penalty"] = options.repetition_penalty  # llama.cpp
        body["repetition_penalty"] = options.repetition_penalty  # vLLM
    return body


def error_message(status: int, body: bytes, settings: RemoteSettings) -> str:
    """One line for an HTTP error answer: the status, the server's own message, and what to do."""
    text = body[:_ERROR_BODY_CHARS].decode("utf-8", "replace").strip()
    detail = text
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("detail", payload.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            detail = str(error)
    detail = " ".join(detail.split())[:300] or "(no message)"
    hint = ""
    if status in (401, 403):
        hint = f" (check the API key in ${settings.api_key_env})"
    elif status == 404:
        hint = f" (check --engine-url {settings.display_url} and the model name {settings.model!r})"
    return f"{settings.display_url}: HTTP {status}: {detail}{hint}"


# --- the engine -------------------------------------------------------------------------------------


class OpenAIEngine:
    """Streams replies from an OpenAI-compatible server."""

    def __init__(self, settings: RemoteSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 extra_body: Mapping[str, Any] | None = None) -> None:
        self.settings = settings
        self.extra_body = dict(extra_body or {})
        """Added to every request (the benches ask llama.cpp and vLLM for `min_tokens`)."""
        self.model = settings.model
        self.served: tuple[str, ...] = ()
        """The model names the server listed at start."""
        self.last_server_ms: float | None = None
        """The server's own time for the last reply, when it reports one (llama.cpp's `timings`)."""
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._info = self._make_info()

    def _make_info(self) -> EngineInfo:
        form = PromptForm.MESSAGES if self.settings.api == "chat" else PromptForm.TEXT
        return EngineInfo(name="openai", model=self.model or "(the server's model)",
                          detail=f"{self.settings.display_url}, {self.settings.api}", prompt_form=form)

    @property
    def info(self) -> EngineInfo:
        return self._info

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        return headers

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            s = self.settings
            # Read timeouts are ours (first token, gap between pieces), per read in `stream`.
            timeout = httpx.Timeout(connect=s.connect_timeout_s, read=None, write=s.connect_timeout_s,
                                    pool=s.first_token_timeout_s)
            limits = httpx.Limits(max_connections=s.max_connections, max_keepalive_connections=s.max_connections)
            self._client = httpx.AsyncClient(base_url=s.url + "/", timeout=timeout, limits=limits,
                                             headers=self._headers(), transport=self._transport)
        return self._client

    async def start(self) -> None:
        """Check the server answers and learn its model names; a GenerationError saying what to do when
        it does not."""
        s = self.settings
        try:
            async with asyncio.timeout(s.connect_timeout_s + s.read_timeout_s):
                response = await self.client.get("models")
                body = await response.aread()
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            raise GenerationError(
                f"cannot reach the engine server at {s.display_url}: {_describe(exc)}. Start the server, check "
                "--engine-url, or set [engine] fallback = \"local\" to answer with the local model instead") from exc
        if response.status_code in (401, 403):
            raise GenerationError(error_message(response.status_code, body, s))
        if response.status_code >= 400:
            log.warning("%s/models answered HTTP %d; going on without the list of models", s.display_url,
                        response.status_code)
        else:
            try:
                listing = json.loads(body)
                self.served = tuple(str(m["id"]) for m in listing.get("data", []) if isinstance(m, dict) and "id" in m)
            except (ValueError, AttributeError, TypeError):
                log.warning("%s/models: not the OpenAI model list; going on", s.display_url)
        if self.model is None:
            if not self.served:
                raise GenerationError(f"{s.display_url} lists no model: give its name with --engine-model NAME "
                                      "or [engine] model")
            self.model = self.served[0]
        elif self.served and self.model not in self.served:
            log.warning("model %r is not among those %s serves (%s); asking for it anyway", self.model,
                        s.display_url, ", ".join(self.served))
        self._info = self._make_info()
        log.info("engine server %s: model %s (%s api)", s.display_url, self.model, s.api)

    async def stream(self, prompt: Prompt | str, options: GenerationOptions) -> AsyncIterator[ReplyChunk]:
        """The reply's chunks; the last has `end` set. Closing the consumer closes the connection."""
        s = self.settings
        loop = asyncio.get_running_loop()
        started = loop.time()
        reply_deadline = started + s.reply_timeout_s
        body = {**request_body(s, self.model, prompt, options), **self.extra_body}
        endpoint = "chat/completions" if s.api == "chat" else "completions"
        shaper = ReplyShaper(options.stop_strings, options.max_chars)
        sse = SseLines()
        pieces = 0
        usage_tokens: int | None = None
        finish: str | None = None
        stop: str | None = None
        got_text = False
        bad_events = 0
        self.last_server_ms = None
        request = self.client.build_request("POST", endpoint, json=body)
        response: httpx.Response | None = None
        try:
            try:
                async with asyncio.timeout(s.first_token_timeout_s):
                    response = await self.client.send(request, stream=True)
            except TimeoutError:
                raise GenerationError(f"{s.display_url}: no answer within {s.first_token_timeout_s:g} s "
                                      "(first_token_timeout_s)") from None
            if response.status_code >= 400:
                try:
                    async with asyncio.timeout(s.read_timeout_s):
                        error_body = await response.aread()
                except TimeoutError:
                    error_body = b""
                raise GenerationError(error_message(response.status_code, error_body, s))
            lines = response.aiter_lines()
            last_data = loop.time()
            ended = False
            while not ended:
                now = loop.time()
                # Before the first text the clock runs from the request; after it, from the last event.
                idle_deadline = last_data + s.read_timeout_s if got_text else started + s.first_token_timeout_s
                wait = min(idle_deadline, reply_deadline) - now
                try:
                    if wait <= 0:
                        raise TimeoutError
                    async with asyncio.timeout(wait):
                        line = await anext(lines)
                except StopAsyncIteration:
                    data = sse.finish()
                    if data is None:
                        break
                    ended = True  # handle the last event, then end
                except TimeoutError:
                    if not got_text:
                        raise GenerationError(f"{s.display_url}: no first token within "
                                              f"{min(s.first_token_timeout_s, s.reply_timeout_s):g} s "
                                              "(first_token_timeout_s)") from None
                    if loop.time() >= reply_deadline:
                        log.warning("reply still streaming after %g s (reply_timeout_s): cut", s.reply_timeout_s)
                        stop = "length"
                        break
                    raise GenerationError(f"{s.display_url}: the reply stalled: nothing for {s.read_timeout_s:g} s "
                                          "(read_timeout_s)") from None
                else:
                    data = sse.feed(line.rstrip("\r"))
                    if data is None:
                        continue
                last_data = loop.time()
                event = parse_event(data)
                if event is None:
                    bad_events += 1
                    if bad_events == 1:
                        log.warning("%s: skipping a malformed event: %.80r", s.display_url, data)
                    continue
                if event.error is not None:
                    raise GenerationError(f"{s.display_url}: the server reported an error mid-reply: {event.error}")
                if event.server_ms is not None:
                    self.last_server_ms = event.server_ms
                if event.completion_tokens is not None:
                    usage_tokens = event.completion_tokens
                if event.done:
                    if finish is None and not shaper.done:
                        raise GenerationError(
                            f"{s.display_url}: the server ended the reply without finishing it (another request "
                            "interrupted it? llama-cpp-python needs --interrupt_requests False for several bots)")
                    break
                if event.text:
                    if pieces >= options.max_new_tokens:
                        stop = "length"  # the server goes on past max_tokens: cut here
                        break
                    pieces += 1
                    got_text = True
                    text = shaper.feed(clean_text(event.text))
                    if text:
                        yield ReplyChunk(text=text)
                    if shaper.done:
                        break  # a stop string or the character limit: close the stream
                if event.finish_reason is not None:
                    finish = event.finish_reason
                    # Keep reading: usage and timings may follow, then [DONE].
            if sse.malformed or bad_events:
                log.warning("%s: %d malformed line(s) and %d malformed event(s) skipped in this reply",
                            s.display_url, sse.malformed, bad_events)
            if finish is None and stop is None and not shaper.done:
                raise GenerationError(f"{s.display_url}: the stream ended mid-reply (the server went away?)")
            if finish is not None and stop is None and not shaper.done:
                await self._drain(lines)
        except httpx.HTTPError as exc:
            raise GenerationError(f"{s.display_url}: {_describe(exc)} mid-reply") from exc
        finally:
            if response is not None:
                await response.aclose()
        text = shaper.finish()
        if text:
            yield ReplyChunk(text=text)
        if stop is None:
            stop = "length" if finish == "length" else "stop"
        if shaper.stop_reason == "length":
            stop = "length"
        yield ReplyChunk(end=stop, tokens=usage_tokens if usage_tokens is not None else pieces)

    async def _drain(self, lines: AsyncIterator[str]) -> None:
        """Read what follows the end of a reply briefly, so the connection can be reused."""
        try:
            async with asyncio.timeout(min(1.0, self.settings.read_timeout_s)):
                async for _ in lines:
                    pass
        except (TimeoutError, httpx.HTTPError):
            pass  # closed instead: the next reply opens a new connection

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed ({exc or 'refused'})"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return f"the connection broke ({exc or type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# --- fallback to the local model --------------------------------------------------------------------


class FallbackEngine:
    """The remote engine, or the local one when the server is down at start (`fallback = "local"`)."""

    def __init__(self, remote: OpenAIEngine, local: EngineSettings) -> None:
        self.remote = remote
        self.local_settings = local
        self.active: Engine = remote
        self.fell_back = False

    @property
    def info(self) -> EngineInfo:
        return self.active.info

    def count_tokens(self, text: str) -> int:
        return self.active.count_tokens(text)

    async def start(self) -> None:
        try:
            await self.remote.start()
            return
        except GenerationError as exc:
            log.warning("%s", exc)
            log.warning("falling back to the local model %s", self.local_settings.model)
        await self.remote.close()
        from aituber.engine.registry import create_engine as create_local

        self.active = await asyncio.to_thread(create_local, self.local_settings)
        self.fell_back = True
        await self.active.start()

    def stream(self, prompt: Prompt | str, options: GenerationOptions) -> AsyncIterator[ReplyChunk]:
        return self.active.stream(prompt, options)

    async def close(self) -> None:
        await self.active.close()
        if self.active is not self.remote:
            await self.remote.close()


def create_engine(settings: EngineSettings) -> OpenAIEngine | FallbackEngine:
    """The registry's factory. `settings.options`: url, api, api_key, timeouts... and `fallback`, the
    local engine's EngineSettings when the character says fallback = "local"."""
    remote = OpenAIEngine(RemoteSettings.from_engine_settings(settings))
    fallback = settings.options.get("fallback")
    if fallback is None:
        return remote
    if not isinstance(fallback, EngineSettings) or fallback.kind == "openai":
        raise ConfigError("fallback: expected the local engine's settings")
    return FallbackEngine(remote, fallback)

