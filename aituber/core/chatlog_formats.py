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

`decode_log` yields, per line (or array element), the line number and either the decoded items or
the reason it is malformed. Offsets are seconds on the log's own clock: the video offset where the
format has one, else the time since the log's first timestamp.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from aituber.core.chatlog import parse_record
from aituber.core.comment import JEWELS_CURRENCY, Author, Comment, CommentDeleted, CommentKind
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
    convert_action,
    currency_code,
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

_DETECT_LINES = 50
_DETECT_BYTES = 1 << 20


def _looks_like_action(obj: dict[str, Any]) -> bool:
    return any(key.endswith(("Action", "Command")) for key in obj)


def detect_format(data: bytes) -> LogFormat:
    """Guess a log's format from its first lines; the project's own format when nothing fits."""
    head = data[:_DETECT_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        return LogFormat.CHAT_DOWNLOADER
    for raw in head.splitlines()[:_DETECT_LINES]:
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        if not isinstance(obj, dict):
            continue
        if "replayChatItemAction" in obj:
            return LogFormat.YT_DLP
        if "message_type" in obj or "action_type" in obj:
            return LogFormat.CHAT_DOWNLOADER
        if _looks_like_action(obj):
            return LogFormat.PYTCHAT
        if "text" in obj or "author" in obj or "type" in obj:
            return LogFormat.AITUBER
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


_DECODERS: dict[LogFormat, Callable[[str], LineDecoder]] = {
    LogFormat.AITUBER: _aituber_decoder,
    LogFormat.YT_DLP: _yt_dlp_decoder,
    LogFormat.PYTCHAT: _pytchat_decoder,
    LogFormat.CHAT_DOWNLOADER: _chat_downloader_decoder,
}


# -- records: lines, or the elements of a JSON array ------------------------------------------------------

_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _json_lines(data: bytes) -> Iterator[tuple[int, Any]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        yield from _json_byte_lines(data)  # let the lines that are valid UTF-8 through
        return
    if text.startswith("\ufeff"):
        text = text[1:]
    decode = json.JSONDecoder().decode
    # Split on "\n" only: str.splitlines would also cut at U+2028 and friends, which JSON allows
    # unescaped inside strings. A "\r" before it is JSON whitespace.
    for line_no, raw in enumerate(text.split("\n"), start=1):
        if not raw or raw.isspace():
            continue
        try:
            yield line_no, decode(raw)
        except (ValueError, RecursionError) as exc:
            yield line_no, ValueError(f"not valid JSON ({exc.__class__.__name__}: {exc})")


def _json_byte_lines(data: bytes) -> Iterator[tuple[int, Any]]:
    loads = json.loads
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        if not raw or raw.isspace():
            continue
        try:
            yield line_no, loads(raw)
        except (ValueError, RecursionError) as exc:
            yield line_no, ValueError(f"not valid JSON ({exc.__class__.__name__}: {exc})")


def _json_array(data: bytes) -> Iterator[tuple[int, Any]]:
    """The elements of a JSON array one by one, with the line each starts on. A syntax error ends
    the array there (what came before it is kept): a truncated download still replays."""
    text = data.decode("utf-8-sig", errors="replace")
    decoder = json.JSONDecoder()
    ws = _WHITESPACE.match
    pos = ws(text, 0).end()
    line_no, counted_to = 1, 0

    def line_at(index: int) -> int:
        nonlocal line_no, counted_to
        line_no += text.count("\n", counted_to, index)
        counted_to = index
        return line_no

    if not text.startswith("[", pos):
        yield line_at(pos), ValueError("expected a JSON array ('[')")
        return
    pos = ws(text, pos + 1).end()
    if text.startswith("]", pos):
        return
    while True:
        try:
            obj, end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            yield line_at(pos), ValueError(f"not valid JSON, the rest of the array is unreadable ({exc})")
            return
        yield line_at(pos), obj
        pos = ws(text, end).end()
        if text.startswith(",", pos):
            pos = ws(text, pos + 1).end()
        elif text.startswith("]", pos):
            if ws(text, pos + 1).end() != len(text):
                yield line_at(pos), ValueError("text after the end of the JSON array")
            return
        else:
            yield line_at(pos), ValueError("expected ',' or ']' in the JSON array (truncated file?)")
            return


def decode_log(data: bytes, fmt: LogFormat, name: str) -> Iterator[LineResult]:
    """Each record of a log: (line number, its items) or (line number, ValueError(reason)).

    `name` is the file name, for default ids (`FILE:LINE`). `fmt` AUTO detects the format.
    """
    if fmt is LogFormat.AUTO:
        fmt = detect_format(data)
    decode = _DECODERS[fmt](name)
    if fmt is LogFormat.CHAT_DOWNLOADER and data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
        records = _json_array(data)
    else:
        records = _json_lines(data)
    for line_no, obj in records:
        if type(obj) is ValueError:
            yield line_no, obj
            continue
        try:
            yield line_no, decode(obj, line_no)
        except ValueError as exc:
            yield line_no, exc
        except (TypeError, KeyError, AttributeError, IndexError, RecursionError) as exc:
            # The converters check what they read; this is the net for a shape they did not foresee.
            yield line_no, ValueError(f"unexpected structure ({exc.__class__.__name__}: {exc})")
