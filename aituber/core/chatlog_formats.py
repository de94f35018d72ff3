"""Recorded chat logs in other tools' formats, decoded without I/O: bytes in, chat items out.

Formats (see docs/sources.md):

- ``aituber``: the project's JSON Lines and transcripts (`aituber.core.chatlog`).
- ``yt-dlp``: ``*.live_chat.json``, JSON Lines of ``{"replayChatItemAction": {"actions": [...],
  "videoOffsetTimeMsec": "..."}}``; lines captured live carry ``videoOffsetTimeMsec`` (maybe
  negative) and ``"isLive": true`` beside it instead.
- ``chat-downloader``: a JSON array or JSON Lines of flat objects (``message_type``, ``message``,
  ``author``, ``timestamp`` in µs, ``time_in_seconds``, ``money``); its 2026 fork adds Jewels gifts
  (``gift_message_view_model``), chat summaries (``banner_chat_summary``) and polls (``poll``).
- ``pytchat``: its ``JsonfileArchiver``: one raw YouTube action per line.
- ``get-live-chat``: raw responses of YouTube's ``get_live_chat`` / ``get_live_chat_replay`` as a
  browser's devtools save them (one, or several one after the other): actions under
  ``continuationContents.liveChatContinuation.actions`` (live, or ``replayChatItemAction`` with the
  video offset), under ``onResponseReceivedEndpoints[].*.continuationItems``, or under
  ``contents.liveChatRenderer.actions`` (the live_chat page's initial data).

Records are read by content, whatever the layout: JSON Lines, values pretty-printed over many lines
(as ``jq .`` writes them) one after the other, or the elements of a JSON array. A record over
`MAX_RECORD_CHARS` (or on a line that long) is refused without being parsed. The format is detected
from the first records (`detect_format`).

`decode_log` yields, per record, the line it starts on and either the decoded items or the reason it
is malformed. Offsets are seconds on the log's own clock: the video offset where the format has one,
else the time since the log's first timestamp. Every text is made valid (`aituber.core.sanitize`).
"""

from __future__ import annotations

import bisect
import enum
import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from aituber.core.chatlog import parse_record
from aituber.core.comment import (
    JEWELS_CURRENCY,
    Author,
    Comment,
    CommentDeleted,
    CommentKind,
)
from aituber.core.youtube_items import (
    BANNER,
    DONATION,
    ENGAGEMENT,
    GIFT_ANIMATION,
    MODE_CHANGE,
    OTHER,
    PLACEHOLDER,
    SYSTEM,
    TICKER,
    AuthorCommentsDeleted,
    Converted,
    Ignored,
    RecentIds,
    clean_converted,
    convert_action,
    currency_code,
    expand_action,
    offset_ms_to_s,
    parse_amount,
    parse_jewels_line,
)


class LogFormat(enum.StrEnum):
    AUTO = "auto"
    AITUBER = "aituber"
    YT_DLP = "yt-dlp"
    CHAT_DOWNLOADER = "chat-downloader"
    PYTCHAT = "pytchat"
    GET_LIVE_CHAT = "get-live-chat"


FORMAT_NAMES = tuple(f.value for f in LogFormat)

Decoded = Sequence[Converted]
LineResult = tuple[int, Decoded | ValueError]
"""(line number, the line's items or why it is unreadable)."""

_NO_ITEMS: tuple[Converted, ...] = ()


def parse_format(value: str | LogFormat) -> LogFormat:
    try:
        return LogFormat(value)
    except ValueError:
        raise ValueError(f"unknown chat-log format {value!r}; use one of {', '.join(FORMAT_NAMES)}") from None


# -- detection ---------------------------------------------------------------------------------------

_DETECT_RECORDS = 50
_DETECT_BYTES = 4 << 20
_RESPONSE_KEYS = ("continuationContents", "onResponseReceivedEndpoints")


def _looks_like_action(obj: dict[str, Any]) -> bool:
    return any(key.endswith(("Action", "Command")) for key in obj)


def _is_response(obj: dict[str, Any]) -> bool:
    """A get_live_chat response (or the live_chat page's initial data), maybe in a `response` wrapper."""
    if any(key in obj for key in _RESPONSE_KEYS):
        return True
    inner = obj.get("response")
    if isinstance(inner, dict) and any(key in inner for key in _RESPONSE_KEYS):
        return True
    contents = obj.get("contents")
    return isinstance(contents, dict) and "liveChatRenderer" in contents


def classify_record(obj: Any) -> LogFormat | None:
    """The format one decoded record belongs to, by its keys; None when it says nothing."""
    if not isinstance(obj, dict):
        return None
    if _is_response(obj):
        return LogFormat.GET_LIVE_CHAT
    if "replayChatItemAction" in obj:
        return LogFormat.YT_DLP
    if "message_type" in obj or "action_type" in obj:
        return LogFormat.CHAT_DOWNLOADER
    if _looks_like_action(obj):
        return LogFormat.PYTCHAT
    if "text" in obj or "author" in obj or "type" in obj:
        return LogFormat.AITUBER
    return None


def detect_format(data: bytes) -> LogFormat:
    """A log's format from its first records (lines, pretty-printed values or array elements); the
    project's own format when nothing fits."""
    for n, (_, obj) in enumerate(_records(data[:_DETECT_BYTES])):
        if n >= _DETECT_RECORDS:
            break
        fmt = classify_record(obj)
        if fmt is not None:
            return fmt
    return LogFormat.AITUBER


# -- per-format decoders -------------------------------------------------------------------------------

LineDecoder = Callable[[Any, int], Decoded]


def _aituber_decoder(name: str) -> LineDecoder:
    def decode(obj: Any, line_no: int) -> Decoded:
        item = parse_record(obj, default_id=f"{name}:{line_no}")
        return _NO_ITEMS if item is None else (item,)

    return decode


def _yt_dlp_decoder(name: str) -> LineDecoder:
    def decode(obj: Any, line_no: int) -> Decoded:
        if not isinstance(obj, dict):
            raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
        replay = obj.get("replayChatItemAction")
        if replay is None:
            if _looks_like_action(obj):  # a bare action (some tools write those too)
                return (convert_action(obj, offset_ms_to_s(obj.get("videoOffsetTimeMsec"))),)
            raise ValueError("no 'replayChatItemAction'")
        if not isinstance(replay, dict):
            raise ValueError("'replayChatItemAction' is not an object")
        offset = obj.get("videoOffsetTimeMsec")  # a line captured live keeps it outside
        offset_s = offset_ms_to_s(offset if offset is not None else replay.get("videoOffsetTimeMsec"))
        actions = replay.get("actions")
        if not isinstance(actions, list):
            raise ValueError("'replayChatItemAction.actions' is not a list")
        if len(actions) == 1:
            return (convert_action(actions[0], offset_s),)
        return [convert_action(action, offset_s) for action in actions]

    return decode


def _timestamp_usec(renderer_holder: Any) -> int | None:
    """The `timestampUsec` of an action's item, for logs without a video offset."""
    if not isinstance(renderer_holder, dict):
        return None
    for action in renderer_holder.values():
        if isinstance(action, dict):
            item = action.get("item") or action.get("replacementItem")
            if isinstance(item, dict):
                for renderer in item.values():
                    if isinstance(renderer, dict):
                        usec = renderer.get("timestampUsec")
                        try:
                            return int(usec) if usec is not None else None
                        except (TypeError, ValueError):
                            return None
    return None


def _pytchat_decoder(name: str) -> LineDecoder:
    """pytchat's JsonfileArchiver: one raw action per line, no video offset: the offset is the
    time since the first item's `timestampUsec`."""
    first_usec: int | None = None

    def decode(obj: Any, line_no: int) -> Decoded:
        nonlocal first_usec
        if not isinstance(obj, dict):
            raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
        replay = obj.get("replayChatItemAction")
        if replay is not None:  # an archive of a replay may keep the wrapper
            if not isinstance(replay, dict):
                raise ValueError("'replayChatItemAction' is not an object")
            offset_s = offset_ms_to_s(replay.get("videoOffsetTimeMsec"))
            actions = replay.get("actions")
            if not isinstance(actions, list):
                raise ValueError("'replayChatItemAction.actions' is not a list")
            return [convert_action(action, offset_s) for action in actions]
        if not _looks_like_action(obj):
            raise ValueError("no chat action in it (a pytchat archive line is one raw action, "
                             "such as {\"addChatItemAction\": ...})")
        usec = _timestamp_usec(obj)
        offset_s = None
        if usec:
            if first_usec is None:
                first_usec = usec
            offset_s = (usec - first_usec) / 1_000_000
        return (convert_action(obj, offset_s),)

    return decode


_CD_KINDS = {
    "text_message": CommentKind.TEXT,
    "paid_message": CommentKind.SUPER_CHAT,
    "paid_sticker": CommentKind.SUPER_STICKER,
    "membership_item": CommentKind.MEMBERSHIP,
    "legacy_paid_message": CommentKind.MEMBERSHIP,
    "sponsorships_gift_redemption_announcement": CommentKind.MEMBERSHIP,
    "sponsorships_gift_purchase_announcement": CommentKind.GIFT,
    "gift_message_view_model": CommentKind.JEWELS,
}
_CD_IGNORED = {
    "placeholder_item": PLACEHOLDER,
    "viewer_engagement_message": ENGAGEMENT,
    "mode_change_message": MODE_CHANGE,
    "donation_announcement": DONATION,
    "banner": BANNER,
    "banner_header": BANNER,
    "remove_banner": BANNER,
    "tooltip": SYSTEM,
    "purchased_product_message": SYSTEM,
}


def _cd_str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"'{key}' must be a string")
    return value


def _cd_author(obj: dict[str, Any], member: bool) -> Author:
    author = obj.get("author")
    if author is None:
        author = {}
    if not isinstance(author, dict):
        raise ValueError("'author' must be an object")
    name, channel_id = _cd_str(author, "name"), _cd_str(author, "id")
    owner = moderator = verified = False
    badges = author.get("badges")
    if badges is None:
        badges = []
    elif not isinstance(badges, list):
        raise ValueError("'author.badges' must be a list")
    for badge in badges:
        if not isinstance(badge, dict):
            continue
        icon = badge.get("icon_name")
        if icon == "owner":
            owner = True
        elif icon == "moderator":
            moderator = True
        elif icon in ("verified", "check_circle_thick", "official_artist_badge"):
            verified = True
        if badge.get("icons"):  # a custom badge image: the channel's membership badge
            member = True
    return Author(name=name, channel_id=channel_id, is_owner=owner, is_moderator=moderator,
                  is_member=member, is_verified=verified)


def _cd_money(obj: dict[str, Any]) -> tuple[float | None, str | None]:
    money = obj.get("money")
    if money is None:
        return None, None
    if not isinstance(money, dict):
        raise ValueError("'money' must be an object")
    amount, currency = money.get("amount"), money.get("currency")
    if isinstance(amount, (int, float)) and not isinstance(amount, bool):
        code = currency_code(currency) if isinstance(currency, str) and currency else None
        if code is None and isinstance(money.get("currency_symbol"), str):
            code = currency_code(money["currency_symbol"])
        return float(amount), code
    text = money.get("text")
    if isinstance(text, str):
        return parse_amount(text)
    raise ValueError("'money' has neither 'amount' nor 'text'")


def _cd_poll(obj: dict[str, Any]) -> Ignored:
    """The fork's `poll`: `poll_question` and `poll_choices[].text` (context only, never an error)."""
    question = obj.get("poll_question")
    choices = obj.get("poll_choices")
    options = tuple(c["text"] for c in choices if isinstance(c, dict) and isinstance(c.get("text"), str)) \
        if isinstance(choices, list) else ()
    return Ignored("poll", question if isinstance(question, str) else "", options)


def _cd_jewels(obj: dict[str, Any], message_id: str, offset_s: float | None, usec: float | None) -> Comment:
    """The fork's `gift_message_view_model`: YouTube's line in `message`, the sender's @handle."""
    text = _cd_str(obj, "message")
    label = obj.get("gift_image_a11y_label")
    gift, jewels = parse_jewels_line(text, label if isinstance(label, str) else "")
    author = _cd_author(obj, False)
    author = Author(name=author.name.strip(), channel_id=author.channel_id, is_owner=author.is_owner,
                    is_moderator=author.is_moderator, is_member=author.is_member, is_verified=author.is_verified)
    return Comment(id=message_id, author=author, text=text, kind=CommentKind.JEWELS,
                   amount=None if jewels is None else float(jewels), currency=JEWELS_CURRENCY,
                   timestamp=usec / 1_000_000 if usec else 0.0, offset_s=offset_s, gift_name=gift)


def _chat_downloader_decoder(name: str) -> LineDecoder:
    """chat-downloader's flat objects. Offset: `time_in_seconds` (replays), else the time since
    the first `timestamp` (µs; chats saved live)."""
    first_usec: int | None = None

    def decode(obj: Any, line_no: int) -> Decoded:
        return [clean_converted(item) for item in decode_raw(obj, line_no)]

    def decode_raw(obj: Any, line_no: int) -> Decoded:
        nonlocal first_usec
        if not isinstance(obj, dict):
            raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
        offset_s = obj.get("time_in_seconds")
        if offset_s is not None:
            if isinstance(offset_s, bool) or not isinstance(offset_s, (int, float)) or offset_s != offset_s:
                raise ValueError("'time_in_seconds' must be a number")
            offset_s = float(offset_s)
        usec = obj.get("timestamp")
        if usec is not None and (isinstance(usec, bool) or not isinstance(usec, (int, float))
                                 or usec != usec or abs(usec) > 1e20):
            raise ValueError("'timestamp' must be a number (µs)")
        if offset_s is None and usec:
            if first_usec is None:
                first_usec = int(usec)
            offset_s = (usec - first_usec) / 1_000_000
        message_type = obj.get("message_type")
        action_type = obj.get("action_type")
        if message_type == "deleted_message" or action_type == "mark_chat_item_as_deleted":
            target = obj.get("target_message_id")
            if not isinstance(target, str):
                raise ValueError("a deletion has no 'target_message_id'")
            return (CommentDeleted(comment_id=target, offset_s=offset_s),)
        if message_type == "ban_user" or action_type == "mark_chat_items_by_author_as_deleted":
            author = obj.get("author")
            channel_id = author.get("id") if isinstance(author, dict) else obj.get("author_id")
            if not isinstance(channel_id, str):
                raise ValueError("a ban has no author id")
            return (AuthorCommentsDeleted(channel_id=channel_id, offset_s=offset_s),)
        if isinstance(action_type, str) and "ticker" in action_type:
            return (TICKER,)
        if isinstance(action_type, str) and "interactivity_widget" in action_type:
            return (GIFT_ANIMATION,)  # the gift's animation; the gift itself is its own item
        kind = _CD_KINDS.get(message_type) if isinstance(message_type, str) else None
        if kind is None:
            if message_type is None:
                raise ValueError("'message_type' is missing")
            if not isinstance(message_type, str):
                raise ValueError("'message_type' must be a string")
            if message_type.startswith("ticker_"):
                return (TICKER,)
            if message_type == "banner_chat_summary":
                summary = obj.get("message")
                return (Ignored("chat_summary", summary.strip() if isinstance(summary, str) else ""),)
            if message_type == "poll":
                return (_cd_poll(obj),)
            return (_CD_IGNORED.get(message_type, OTHER),)
        message_id = obj.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            message_id = f"{name}:{line_no}"
        if kind is CommentKind.JEWELS:
            return (_cd_jewels(obj, message_id, offset_s, usec),)
        text = _cd_str(obj, "message")
        if kind is CommentKind.MEMBERSHIP and not text:
            text = _cd_str(obj, "header_primary_text") or _cd_str(obj, "header_secondary_text")
        amount = currency = None
        if kind.is_paid:
            amount, currency = _cd_money(obj)
        return (Comment(id=message_id, author=_cd_author(obj, kind is CommentKind.MEMBERSHIP), text=text,
                        kind=kind, amount=amount, currency=currency,
                        timestamp=usec / 1_000_000 if usec else 0.0, offset_s=offset_s),)

    return decode


def _response_actions(obj: dict[str, Any]) -> list[Any]:
    """The chat actions of one get_live_chat response, wherever this kind of response keeps them."""
    if not any(key in obj for key in _RESPONSE_KEYS) and isinstance(obj.get("response"), dict):
        obj = obj["response"]  # the old `pbj=1` wrapper
    actions: list[Any] = []
    found = False
    contents = obj.get("continuationContents")
    if contents is not None:
        found = True
        chat = contents.get("liveChatContinuation") if isinstance(contents, dict) else None
        if not isinstance(chat, dict):
            raise ValueError("'continuationContents' has no 'liveChatContinuation'")
        page = chat.get("actions", [])  # a page without chat has none
        if not isinstance(page, list):
            raise ValueError("'liveChatContinuation.actions' is not a list")
        actions += page
    endpoints = obj.get("onResponseReceivedEndpoints")
    if endpoints is not None:
        found = True
        if not isinstance(endpoints, list):
            raise ValueError("'onResponseReceivedEndpoints' is not a list")
        for endpoint in endpoints:  # {"appendContinuationItemsAction": {"continuationItems": [...]}}
            for command in endpoint.values() if isinstance(endpoint, dict) else ():
                items = command.get("continuationItems") if isinstance(command, dict) else None
                if isinstance(items, list):
                    actions += items
    renderer = obj.get("contents")
    renderer = renderer.get("liveChatRenderer") if isinstance(renderer, dict) else None
    if isinstance(renderer, dict):
        found = True
        initial = renderer.get("actions", [])
        if not isinstance(initial, list):
            raise ValueError("'liveChatRenderer.actions' is not a list")
        actions += initial
    if not found:
        raise ValueError("not a get_live_chat response (no 'continuationContents' or "
                         "'onResponseReceivedEndpoints')")
    return actions


def _get_live_chat_decoder(name: str) -> LineDecoder:
    """Raw get_live_chat responses: each record is a whole page of actions. A replay's actions carry
    the video offset; a live page's the time since the first item's `timestampUsec`. An item saved
    twice (overlapping pages) is passed over as a duplicate."""
    first_usec: int | None = None
    seen = RecentIds()

    def decode(obj: Any, line_no: int) -> Decoded:
        nonlocal first_usec
        if not isinstance(obj, dict):
            raise ValueError(f"expected a JSON object (a get_live_chat response), got {type(obj).__name__}")
        out: list[Converted] = []
        for action in _response_actions(obj):
            offset_s = None
            if not (isinstance(action, dict) and "replayChatItemAction" in action):
                usec = _timestamp_usec(action)
                if usec:
                    if first_usec is None:
                        first_usec = usec
                    offset_s = (usec - first_usec) / 1_000_000
            for item in expand_action(action, offset_s):
                if type(item) is Comment and not seen.add(item.id):
                    out.append(DUPLICATE)
                else:
                    out.append(item)
        return out

    return decode


DUPLICATE = Ignored("duplicate")


_DECODERS: dict[LogFormat, Callable[[str], LineDecoder]] = {
    LogFormat.AITUBER: _aituber_decoder,
    LogFormat.YT_DLP: _yt_dlp_decoder,
    LogFormat.PYTCHAT: _pytchat_decoder,
    LogFormat.CHAT_DOWNLOADER: _chat_downloader_decoder,
    LogFormat.GET_LIVE_CHAT: _get_live_chat_decoder,
}


# -- records: lines, pretty-printed values, or the elements of a JSON array ------------------------------

MAX_RECORD_CHARS = 2_000_000
"""The longest record (and line) read: a get_live_chat page of a busy stream is a few hundred kB."""

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_RAW_SURROGATE = re.compile("[\udc80-\udcff]")
"""What `surrogateescape` makes of bytes that are not UTF-8."""

Record = tuple[int, Any]
"""(line number, the decoded value or a ValueError saying why there is none)."""


class _Text:
    """A log's text, its over-long lines blanked out (and reported), with line numbers by position."""

    def __init__(self, data: bytes, max_chars: int) -> None:
        try:
            text = data.decode("utf-8")
            self.bad_bytes: list[int] = []
        except UnicodeDecodeError:  # keep the lines that are valid UTF-8
            text = data.decode("utf-8", errors="surrogateescape")
            self.bad_bytes = [m.start() for m in _RAW_SURROGATE.finditer(text)]
        if text.startswith("\ufeff"):
            text = " " + text[1:]  # keeps positions (and the bad-byte index) as they are
        self.too_long: list[tuple[int, int]] = []
        """(line number, length) of each line over the limit, blanked out in `text`."""
        self.text = self._blank_long_lines(text, max_chars)
        self._line, self._counted_to = 1, 0

    def _blank_long_lines(self, text: str, max_chars: int) -> str:
        """Finds lines longer than `max_chars` without walking every line: a window of half that
        length with no newline in it lies inside such a line. Each is replaced by spaces (the
        newlines stay, and with them every line number)."""
        step = max(1, max_chars // 2)
        spans: list[tuple[int, int]] = []
        pos = 0
        while pos + step <= len(text):
            if text.find("\n", pos, pos + step) != -1:
                pos += step
                continue
            start = text.rfind("\n", 0, pos) + 1
            end = text.find("\n", pos)
            end = len(text) if end == -1 else end
            if end - start > max_chars:
                spans.append((start, end))
            pos = end + 1
        if not spans:
            return text
        parts: list[str] = []
        last = 0
        for start, end in spans:
            parts += [text[last:start], " "]
            self.too_long.append((start, end - start))
            last = end
        parts.append(text[last:])
        blanked = "".join(parts)
        line, counted = 1, 0
        for n, (start, length) in enumerate(self.too_long):
            line += text.count("\n", counted, start)
            counted = start
            self.too_long[n] = (line, length)
        if self.bad_bytes:
            self.bad_bytes = [m.start() for m in _RAW_SURROGATE.finditer(blanked)]
        return blanked

    def line_at(self, pos: int) -> int:
        """The line number of a position; positions must not go backwards between calls."""
        self._line += self.text.count("\n", self._counted_to, pos)
        self._counted_to = pos
        return self._line

    def has_bad_bytes(self, start: int, end: int) -> bool:
        if not self.bad_bytes:
            return False
        i = bisect.bisect_left(self.bad_bytes, start)
        return i < len(self.bad_bytes) and self.bad_bytes[i] < end


def _too_long_error(length: int, max_chars: int) -> ValueError:
    return ValueError(f"a line of {length:,} characters is over the limit of {max_chars:,}; skipped unread")


def _records(data: bytes, max_chars: int = MAX_RECORD_CHARS) -> Iterator[Record]:
    """Every record of a log, whatever its layout (see the module doc), with the line it starts on.

    JSON Lines are read line by line (a bad line spoils only itself); values spread over many lines
    one after another; a JSON array element by element (a syntax error ends the array there: a
    truncated download still replays what came before). Over-long lines are reported in order.
    """
    log = _Text(data, max_chars)
    text = log.text
    pos = _WHITESPACE.match(text, 0).end()
    if pos >= len(text):
        records: Iterator[Record] = iter(())
    elif text.startswith("[", pos):
        records = _json_array(log, pos, max_chars)
    elif _first_record_spans_lines(text, pos):
        records = _json_values(log, pos, max_chars)
    else:
        records = _json_lines(log, max_chars)
    if not log.too_long:
        yield from records
        return
    too_long = iter(log.too_long)
    pending = next(too_long, None)
    for line_no, obj in records:
        while pending is not None and pending[0] <= line_no:
            yield pending[0], _too_long_error(pending[1], max_chars)
            pending = next(too_long, None)
        yield line_no, obj
    while pending is not None:
        yield pending[0], _too_long_error(pending[1], max_chars)
        pending = next(too_long, None)


def _first_record_spans_lines(text: str, pos: int) -> bool:
    """Whether the first record is a value spread over several lines (pretty-printed)."""
    end_of_line = text.find("\n", pos)
    if end_of_line == -1:
        return False
    first_line = text[pos:end_of_line].strip()
    if first_line == "{":  # an object opened alone on its line: pretty-printed, even if it is broken
        return True
    try:
        json.loads(first_line)
        return False
    except (ValueError, RecursionError):
        pass
    try:
        _, end = _DECODER.raw_decode(text, pos)
    except (ValueError, RecursionError):
        return False
    return end > end_of_line


_DECODER = json.JSONDecoder()


def _json_lines(log: _Text, max_chars: int) -> Iterator[Record]:
    decode = _DECODER.decode
    text = log.text
    # Split on "\n" only: str.splitlines would also cut at U+2028 and friends, which JSON allows
    # unescaped inside strings. A "\r" before it is JSON whitespace.
    pos = 0
    for line_no, raw in enumerate(text.split("\n"), start=1):
        start, pos = pos, pos + len(raw) + 1
        if not raw or raw.isspace():
            continue
        if log.bad_bytes and log.has_bad_bytes(start, pos):
            yield line_no, ValueError("not valid UTF-8")
            continue
        try:
            yield line_no, decode(raw)
        except json.JSONDecodeError as exc:
            if exc.msg == "Extra data":  # values one after another on one line: `{...}{...}`
                yield from ((line_no, obj) for obj in _values_on_a_line(raw))
            else:
                yield line_no, ValueError(f"not valid JSON ({exc.__class__.__name__}: {exc})")
        except (ValueError, RecursionError) as exc:
            yield line_no, ValueError(f"not valid JSON ({exc.__class__.__name__}: {exc})")


def _values_on_a_line(line: str) -> Iterator[Any]:
    """The values of a line that holds several; a syntax error ends the line there."""
    raw_decode = _DECODER.raw_decode
    ws = _WHITESPACE.match
    pos = ws(line, 0).end()
    while pos < len(line):
        try:
            obj, end = raw_decode(line, pos)
        except (ValueError, RecursionError) as exc:
            yield ValueError(f"not valid JSON ({exc.__class__.__name__}: {exc})")
            return
        yield obj
        pos = ws(line, end).end()


def _json_values(log: _Text, pos: int, max_chars: int) -> Iterator[Record]:
    """Values one after the other, each over as many lines as it likes (`jq .`). After a syntax
    error, reading goes on at the next line that starts a value in its first column."""
    text = log.text
    raw_decode = _DECODER.raw_decode
    ws = _WHITESPACE.match
    while pos < len(text):
        line_no = log.line_at(pos)
        try:
            obj, end = raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            yield line_no, ValueError(f"not valid JSON ({exc.__class__.__name__}: {exc})")
            pos = _next_value_start(text, pos)
            continue
        if log.has_bad_bytes(pos, end):
            yield line_no, ValueError("not valid UTF-8")
        elif end - pos > max_chars:
            yield line_no, ValueError(f"a record of {end - pos:,} characters is over the limit of {max_chars:,}")
        else:
            yield line_no, obj
        pos = ws(text, end).end()


def _next_value_start(text: str, pos: int) -> int:
    """The next line (after `pos`) that begins with '{' or '[' in its first column, or the end."""
    found = len(text)
    for opener in ("\n{", "\n["):
        at = text.find(opener, pos)
        if at != -1:
            found = min(found, at + 1)
    return found


def _json_array(log: _Text, pos: int, max_chars: int) -> Iterator[Record]:
    """The elements of a JSON array one by one; a syntax error ends the array there (what came
    before it is kept)."""
    text = log.text
    ws = _WHITESPACE.match
    raw_decode = _DECODER.raw_decode
    pos = ws(text, pos + 1).end()
    if text.startswith("]", pos):
        return
    while True:
        try:
            obj, end = raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            yield log.line_at(pos), ValueError(f"not valid JSON, the rest of the array is unreadable ({exc})")
            return
        if log.has_bad_bytes(pos, end):
            yield log.line_at(pos), ValueError("not valid UTF-8")
        elif end - pos > max_chars:
            yield log.line_at(pos), ValueError(
                f"a record of {end - pos:,} characters is over the limit of {max_chars:,}")
        else:
            yield log.line_at(pos), obj
        pos = ws(text, end).end()
        if text.startswith(",", pos):
            pos = ws(text, pos + 1).end()
        elif text.startswith("]", pos):
            if ws(text, pos + 1).end() != len(text):
                yield log.line_at(pos), ValueError("text after the end of the JSON array")
            return
        else:
            yield log.line_at(pos), ValueError("expected ',' or ']' in the JSON array (truncated file?)")
            return


def decode_log(data: bytes, fmt: LogFormat, name: str) -> Iterator[LineResult]:
    """Each record of a log: (line number, its items) or (line number, ValueError(reason)).

    `name` is the file name, for default ids (`FILE:LINE`). `fmt` AUTO detects the format. A record
    that another format would read says so in its reason.
    """
    if fmt is LogFormat.AUTO:
        fmt = detect_format(data)
    decode = _DECODERS[fmt](name)
    for line_no, obj in _records(data):
        if type(obj) is ValueError:
            yield line_no, obj
            continue
        try:
            yield line_no, decode(obj, line_no)
        except ValueError as exc:
            yield line_no, _with_hint(exc, obj, fmt)
        except (TypeError, KeyError, AttributeError, IndexError, RecursionError) as exc:
            # The converters check what they read; this is the net for a shape they did not foresee.
            yield line_no, ValueError(f"unexpected structure ({exc.__class__.__name__}: {exc})")


def _with_hint(exc: ValueError, obj: Any, fmt: LogFormat) -> ValueError:
    other = classify_record(obj)
    if other is None or other is fmt:
        return exc
    return ValueError(f"{exc}; this looks like a {other.value} record (--format {other.value}, or auto)")
