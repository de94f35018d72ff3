"""The live chat of a YouTube stream, read with pytchat in a worker thread.

pytchat 0.5.5 is synchronous (only `pytchat.create()` works with current httpx), so one worker
thread owns it: it polls `get()` at the interval YouTube asks for, converts the raw actions with
`aituber.core.youtube_items` (pytchat's `DummyProcessor` hands them over untouched: its own
processors drop gifts, deletions and milestone messages), and hands batches to the event loop
through a bounded queue.

Faults never end the source: a timeout, a reset connection, an HTTP error, a body that is no JSON
or any exception out of pytchat closes that pytchat instance and its client, waits (exponential
backoff with jitter, capped) and starts a fresh one, resuming at the last continuation token when
it is recent. Comments are de-duplicated by id (the last `dedupe_size`), so a resumed page never
repeats one. A reader that stops while the stream is live (no continuation after a page, as pytchat
readers do after about a day) is replaced by a fresh one at once. An ended stream (YouTube says so
twice in a row, the second time to a fresh reader) ends `items()` cleanly.

The channel id pytchat needs is looked up once per source, by us (`resolve_channel_id`): the embed
page (what pytchat 0.5.5 scrapes), else oEmbed (`author_url`: the channel, or its @handle page), else
the mobile watch page; pytchat is handed the result. (The fork pytchat-ng 0.6.0 asks oEmbed first,
but its lookup cannot work: it calls an undefined `_original_get_channelid` and uses httpx without
importing it, and it prints a line on import; so we keep pytchat 0.5.5 and do the lookup ourselves.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from aituber.core.comment import Comment, CommentDeleted, SourceItem
from aituber.core.youtube_items import AuthorCommentsDeleted, Ignored, RecentAuthors, RecentIds, expand_action
from aituber.errors import ChatSourceError
from aituber.sources.base import SourceStats
from aituber.sources.handoff import ThreadHandoff

log = logging.getLogger(__name__)

# -- video ids ---------------------------------------------------------------------------------------------

_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_YOUTUBE_HOSTS = ("youtube.com", "youtube-nocookie.com", "youtu.be")
_PATH_PREFIXES = ("live", "shorts", "embed", "v", "e")


def parse_video_id(text: str) -> str:
    """A bare 11-character video id or a YouTube URL -> the video id.

    Accepts `watch?v=ID` (any host: www., m., music., with other query parameters), `youtu.be/ID`,
    `/live/ID`, `/shorts/ID`, `/embed/ID`, `/v/ID`, with or without the scheme. Anything else is a
    ChatSourceError that says what was expected.
    """
    value = text.strip()
    if _VIDEO_ID.fullmatch(value):
        return value
    url = value if "://" in value else f"https://{value}"
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        host = ""
    if host.startswith("www."):
        host = host[4:]
    if host and any(host == h or host.endswith("." + h) for h in _YOUTUBE_HOSTS):
        segments = [s for s in parts.path.split("/") if s]
        candidate = ""
        if host == "youtu.be":
            candidate = segments[0] if segments else ""
        elif segments and segments[0] in ("watch", "watch_popup") or not segments:
            candidate = (parse_qs(parts.query).get("v") or [""])[0]
        elif len(segments) >= 2 and segments[0] in _PATH_PREFIXES:
            candidate = segments[1]
        if _VIDEO_ID.fullmatch(candidate):
            return candidate
    raise ChatSourceError(
        f"not a YouTube video id or URL: {text!r} (give the 11-character id or a link such as "
        "https://www.youtube.com/watch?v=ID, https://youtu.be/ID or https://www.youtube.com/live/ID)"
    )


# -- settings ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between reconnects: `initial_s`, times `factor` per failure, at most `max_s`; each wait
    is randomly shortened by up to `jitter` (a fraction), so many clients do not retry in step."""

    initial_s: float = 1.0
    max_s: float = 60.0
    factor: float = 2.0
    jitter: float = 0.3

    def delay_s(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        base = min(self.max_s, self.initial_s * self.factor ** max(0, failures - 1))
        return base * (1.0 - self.jitter * rand())


class _Fault(Exception):
    """A request that failed in a way pytchat would retry itself, blocking for 2 s each time, or
    not notice: raised by our transport so that our backoff handles it. `kind` names it in stats."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class _GuardedTransport(httpx.BaseTransport):
    """Turns transport errors, HTTP errors and non-JSON chat responses into `_Fault`."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = self._inner.handle_request(request)
            response.read()
        except httpx.TimeoutException as exc:
            raise _Fault("timeout", type(exc).__name__) from exc
        except httpx.TransportError as exc:
            raise _Fault("connection", f"{type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status >= 400:
            response.close()
            raise _Fault("http_429" if status == 429 else f"http_{status // 100}xx", f"HTTP {status}")
        if request.method == "POST":
            try:
                json.loads(response.content)
            except (ValueError, RecursionError) as exc:
                raise _Fault("bad_json", str(exc)[:80]) from exc
        return response

    def close(self) -> None:
        self._inner.close()


class _NoChannel(Exception):
    """Every way to find the video's channel said there is none (a wrong or private video)."""


class _ChatClient(httpx.Client):
    """Our client for one pytchat instance; carries the channel id we looked up, for pytchat."""

    channel_id: str | None = None


_EMBED_CHANNEL = re.compile(r'\\"channelId\\":\\"(UC[0-9A-Za-z_-]{22})\\"')
"""The embed page keeps its data in escaped JSON: `\"channelId\":\"UC...\"`."""
_PAGE_CHANNEL = re.compile(r'"(?:channelId|externalId)":\s*"(UC[0-9A-Za-z_-]{22})"')
_CHANNEL_URL = re.compile(r"/channel/(UC[0-9A-Za-z_-]{22})")


def channel_id_from_embed(html: str) -> str | None:
    """The channel id in an embed page (`/embed/ID`), or None."""
    match = _EMBED_CHANNEL.search(html) or _PAGE_CHANNEL.search(html)
    return match.group(1) if match else None


def channel_id_from_page(html: str) -> str | None:
    """The channel id in a channel or watch page (`"externalId"`, `"channelId"`, a canonical link)."""
    match = _PAGE_CHANNEL.search(html) or _CHANNEL_URL.search(html)
    return match.group(1) if match else None


def oembed_author(body: str) -> tuple[str | None, str | None]:
    """An oEmbed answer -> (channel id, when `author_url` names it; the author URL otherwise)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None, None
    url = data.get("author_url") if isinstance(data, dict) else None
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return None, None
    match = _CHANNEL_URL.search(url)
    return (match.group(1), url) if match else (None, url)


def resolve_channel_id(client: httpx.Client, video_id: str) -> str:
    """The channel of a video: the embed page, else oEmbed (its author's channel or @handle page), else
    the mobile watch page. Raises `_NoChannel` when every way answered and none named it; a transient
    failure (`_Fault`: timeout, reset, 429, 5xx) is raised as it is, to try again later."""
    answers: list[str] = []

    def get(url: str) -> str | None:
        try:
            return client.get(url, follow_redirects=True).text
        except _Fault as fault:
            if fault.kind != "http_4xx":
                raise
            answers.append(f"{url}: {fault}")
            return None

    quoted = quote(video_id)
    html = get(f"https://www.youtube.com/embed/{quoted}")
    if html is not None and (found := channel_id_from_embed(html)):
        return found
    body = get(f"https://www.youtube.com/oembed?url=https://www.youtube.com/watch%3Fv%3D{quoted}&format=json")
    if body is not None:
        found, author_url = oembed_author(body)
        if found:
            return found
        if author_url and (page := get(author_url)) is not None and (found := channel_id_from_page(page)):
            log.info("%s: channel found through oEmbed (the embed page does not name it)", video_id)
            return found
    page = get(f"https://m.youtube.com/watch?v={quoted}")
    if page is not None and (found := channel_id_from_page(page)):
        return found
    raise _NoChannel("no channel id in the embed page, oEmbed or the watch page"
                     + (f" ({'; '.join(answers)})" if answers else ""))


_HOOK_LOCK = threading.Lock()


def _hand_channel_ids_to_pytchat() -> None:
    """pytchat looks the channel up itself (`pytchat.util.get_channelid(client, video_id)`, by
    scraping the embed page) whenever it starts: for our clients it gets the one we looked up."""
    import pytchat.util

    with _HOOK_LOCK:
        original = pytchat.util.get_channelid
        if getattr(original, "aituber_hook", False):
            return

        def get_channelid(client: Any, video_id: str) -> str:
            known = client.channel_id if isinstance(client, _ChatClient) else None
            return known if known else original(client, video_id)

        get_channelid.aituber_hook = True  # type: ignore[attr-defined]
        pytchat.util.get_channelid = get_channelid


class _QuietLogger:
    """pytchat logs every exception as ERROR with a traceback; we log faults ourselves, once."""

    def __getattr__(self, level: str) -> Callable[..., None]:
        def note(msg: object, *args: object, **kwargs: object) -> None:
            lines = str(msg).strip().splitlines()
            log.debug("pytchat %s: %s", level, lines[-1] if lines else "")

        return note


_ENDED = object()


class YouTubeChatSource:
    """The live chat of one YouTube stream.

    `video`: an id or URL (see `parse_video_id`; a bad one raises ChatSourceError here).
    `timeout_s`: per HTTP request. `min_poll_s` / `max_poll_s`: bounds on the polling interval
    YouTube asks for. `backoff`: waits between reconnects. `resume_window_s`: a reconnect within
    this time of the last good response resumes at its continuation (no comment lost); later, it
    starts afresh at "now". `transport`: makes the httpx transport under each fresh client (default:
    HTTP/2 to YouTube; tests give one that sends youtube.com to a local server).
    """

    def __init__(self, video: str, *, timeout_s: float = 10.0, min_poll_s: float = 1.0,
                 max_poll_s: float = 10.0, backoff: Backoff = Backoff(), resume_window_s: float = 60.0,
                 dedupe_size: int = 20_000, queue_size: int = 64,
                 transport: Callable[[], httpx.BaseTransport] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.video_id = parse_video_id(video)
        self.name = f"youtube:{self.video_id}"
        self.stats = SourceStats()
        self.timeout_s = timeout_s
        self.min_poll_s = min_poll_s
        self.max_poll_s = max_poll_s
        self.backoff = backoff
        self.resume_window_s = resume_window_s
        self._dedupe_size = dedupe_size
        self._queue_size = queue_size
        self._transport = transport
        self._clock = clock

    async def items(self) -> AsyncIterator[SourceItem]:
        handoff: ThreadHandoff[list[SourceItem] | object | BaseException] = ThreadHandoff(
            asyncio.get_running_loop(), self._queue_size)
        worker = threading.Thread(target=self._work, args=(handoff,), name=f"aituber-{self.name}", daemon=True)
        worker.start()
        log.info("reading the live chat of %s", self.video_id)
        try:
            while True:
                batch = await handoff.get()
                if batch is _ENDED:
                    log.info("the live chat of %s has ended", self.video_id)
                    return
                if isinstance(batch, BaseException):
                    raise batch
                for item in batch:  # type: ignore[union-attr]
                    yield item
        finally:
            handoff.stop()  # the worker notices between two requests and returns

    # -- the worker thread --

    def _client(self) -> _ChatClient:
        import pytchat.config

        if self._transport is not None:
            inner = self._transport()
        else:
            try:
                inner = httpx.HTTPTransport(http2=True)
            except ImportError:  # the h2 package is missing: HTTP/1.1 works too
                inner = httpx.HTTPTransport()
        return _ChatClient(transport=_GuardedTransport(inner), timeout=self.timeout_s,
                           headers=dict(pytchat.config.headers))

    def _work(self, handoff: ThreadHandoff[Any]) -> None:
        try:
            outcome = _Poller(self, handoff).run()
        except BaseException as exc:  # a bug here must reach the loop, not die silently in the thread
            outcome = exc
        if outcome is not None:
            handoff.put(outcome)


class _Poller:
    """The worker thread's state: one pytchat instance at a time, reconnecting on faults."""

    def __init__(self, source: YouTubeChatSource, handoff: ThreadHandoff[Any]) -> None:
        self.source = source
        self.handoff = handoff
        self.stopped = handoff.stopped
        self.seen = RecentIds(source._dedupe_size)
        self.authors = RecentAuthors()
        self.started = source._clock()
        self.continuation: str | None = None
        self.last_ok = 0.0
        self.ever_ok = False
        self.failures = 0
        self.episode_start = 0.0
        self.end_signals = 0
        """YouTube said "no more chat" (or a reader stopped) this many times with no chat page between."""
        self.live_seen = False
        self.ever_replay = False
        self.channel_id: str | None = None

    def run(self) -> object | BaseException | None:
        """Poll until the stream ends (-> _ENDED), a fatal error (-> ChatSourceError) or a stop."""
        import pytchat
        from pytchat import exceptions as yt_errors

        _hand_channel_ids_to_pytchat()
        src = self.source
        while not self.stopped.is_set():
            client = src._client()
            try:
                if self.channel_id is None:
                    self.channel_id = resolve_channel_id(client, src.video_id)
                client.channel_id = self.channel_id
                chat = pytchat.create(src.video_id, processor=pytchat.DummyProcessor(), client=client,
                                      interruptable=False, hold_exception=False, logger=_QuietLogger())
                if self.continuation and time.monotonic() - self.last_ok <= src.resume_window_s:
                    chat.continuation = self.continuation  # resume where the last page ended
                while not self.stopped.is_set():
                    began = time.monotonic()
                    components = chat.get()
                    if chat.is_replay():
                        if self.live_seen:
                            return _ENDED  # the stream is over and its replay is up
                        if not self.ever_replay:
                            self.ever_replay = True
                            log.info("%s is not live: reading its chat replay", src.video_id)
                    else:
                        self.live_seen = True
                    self._recovered()
                    if not self._deliver(components):
                        return None
                    self.continuation = chat.continuation
                    if not chat.continuation or not chat.is_alive():
                        break  # the reader stopped: a fresh one finds out whether the stream is still on
                    self.end_signals = 0
                    interval = self._interval(components)
                    if self.stopped.wait(max(0.0, interval - (time.monotonic() - began))):
                        return None
                else:
                    return None
                if self._end_signal("the chat reader stopped (no continuation)", reader_stopped=True):
                    return _ENDED
                continue
            except (yt_errors.NoContents, yt_errors.ChatDataFinished, yt_errors.NoContinuation) as exc:
                if self._end_signal(str(exc)):
                    return _ENDED
                continue
            except yt_errors.ResponseContextError as exc:
                if not self.ever_ok:
                    return ChatSourceError(f"YouTube video {src.video_id}: no live chat (wrong id, private or "
                                           f"deleted video): {exc}")
                if self._end_signal(f"the video went away? ({exc})"):
                    return _ENDED  # the stream went private or was removed
                continue
            except (_NoChannel, yt_errors.InvalidVideoIdException) as exc:
                detail = str(getattr(exc, "doc", exc))
                if not self.ever_ok:
                    return ChatSourceError(f"YouTube video {src.video_id}: not found, or it has no chat ({detail})")
                self._fault("page", detail)
            except _Fault as exc:
                self._fault(exc.kind, str(exc))
            except Exception as exc:  # pytchat's own exceptions, a changed response shape, ...
                self._fault(type(exc).__name__, str(exc)[:200])
            finally:
                client.close()
            if self.stopped.wait(src.backoff.delay_s(self.failures)):
                return None
        return None

    def _end_signal(self, what: str, *, reader_stopped: bool = False) -> bool:
        """YouTube said there is no more chat, or the reader stopped. Said twice in a row (the second
        time to a fresh reader, started at once), the stream is over: True. A reader that stops while
        the stream goes on is counted (`faults["reader_stopped"]`) and replaced."""
        src = self.source
        self.end_signals += 1
        self.continuation = None  # the next reader starts afresh, at "now"
        if self.end_signals >= 2:
            log.info("%s: %s, again: the stream is over", src.name, what)
            return True
        if reader_stopped:
            src.stats.faults["reader_stopped"] += 1
            log.info("%s: %s; starting a fresh reader", src.name, what)
        else:
            log.debug("%s: %s; checking with a fresh reader", src.name, what)
        return False

    def _interval(self, components: list[Any]) -> float:
        src = self.source
        timeout = 0.0
        for component in components:
            if isinstance(component, dict):
                timeout = max(timeout, float(component.get("timeout") or 0.0))
        return min(src.max_poll_s, max(src.min_poll_s, timeout))

    def _deliver(self, components: list[Any]) -> bool:
        """Convert one response's actions and hand the new items to the loop."""
        src = self.source
        stats = src.stats
        now = src._clock()
        offset_s = now - self.started
        batch: list[SourceItem] = []
        for component in components:
            if not isinstance(component, dict):
                continue
            for action in component.get("chatdata") or ():
                try:
                    converted = expand_action(action)
                except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
                    log.warning("%s: unreadable chat item skipped: %s", src.name, exc)
                    stats.skipped["malformed"] += 1
                    continue
                for one in converted:
                    self._take(one, batch, now, offset_s)
        for item in batch:
            log.debug("%s: %s", src.name, item)
        return not batch or self.handoff.put(batch)

    def _take(self, converted: object, batch: list[SourceItem], now: float, offset_s: float) -> None:
        """One converted action -> new items in `batch` (repeats dropped), counted in stats."""
        stats = self.source.stats
        if isinstance(converted, Comment):
            if not self.seen.add(converted.id):
                stats.ignored["duplicate"] += 1
                return
            self.authors.note(converted)
            stats.kinds[converted.kind.value] += 1
            batch.append(Comment(converted.id, converted.author, converted.text, converted.kind,
                                 converted.amount, converted.currency, now, offset_s, converted.gift_name))
        elif isinstance(converted, CommentDeleted):
            stats.kinds["deleted"] += 1
            batch.append(CommentDeleted(converted.comment_id, offset_s))
        elif isinstance(converted, AuthorCommentsDeleted):
            for deleted in self.authors.deletions(converted):
                stats.kinds["deleted"] += 1
                batch.append(CommentDeleted(deleted.comment_id, offset_s))
        elif isinstance(converted, Ignored):
            stats.ignored[converted.reason] += 1

    def _fault(self, kind: str, detail: str) -> None:
        src = self.source
        src.stats.faults[kind] += 1
        self.failures += 1
        if self.failures == 1:
            self.episode_start = time.monotonic()
            log.warning("%s: %s; reconnecting (with backoff, up to %g s between tries)",
                        src.name, detail or kind, src.backoff.max_s)
        else:
            log.debug("%s: still failing (%d): %s", src.name, self.failures, detail or kind)

    def _recovered(self) -> None:
        self.last_ok = time.monotonic()
        self.ever_ok = True
        if self.failures:
            log.info("%s: reconnected after %d tries (%.1f s)", self.source.name, self.failures,
                     time.monotonic() - self.episode_start)
            self.failures = 0
