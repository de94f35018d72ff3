"""Moderator commands: parsed from the owner's or moderators' chat ("!skip") or the MQTT control topic.

Pure parsing only; the dispatcher that acts on a `Command` lives in the app.

    !skip        stop the current reply
    !pause       stop selecting comments (chat keeps being read)
    !resume      start selecting again
    !ban NAME    block a viewer (name, @handle or channel id); their waiting comments are dropped
    !unban NAME  lift a ban
    !say TEXT    the character says TEXT
    !ng WORD     an NG word for this session (as in `ng_words`: a word, or re:REGEX)
    !idle on|off idle talk on or off
    next ID      answer this waiting comment next (by comment id: MQTT and the control panel only)
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass

from aituber.core.comment import Comment

__all__ = ["COMMANDS", "NOT_IN_CHAT", "SOURCES", "Command", "parse_command", "parse_control_payload"]

COMMANDS: dict[str, bool] = {"skip": False, "pause": False, "resume": False, "ban": True, "unban": True,
                             "say": True, "next": True, "ng": True, "idle": True}
"""Command name -> whether it needs an argument."""

NOT_IN_CHAT = frozenset({"next"})
"""Commands that only come from MQTT and the control panel (chat shows no comment ids)."""

SOURCES = ("chat", "mqtt", "panel")

_ARG_KEYS = ("text", "arg", "name", "viewer", "comment_id", "word")
"""JSON keys that carry a command's argument (the first one present is used)."""

_WHAT = {"ban": "a viewer name or channel id", "unban": "a viewer name or channel id", "say": "the text to say",
         "next": "a comment id", "ng": "the NG word", "idle": '"on" or "off"'}

_PREFIXES = ("!", "！")


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    """One of COMMANDS."""
    arg: str
    """The name for "ban"/"unban", the text for "say", the comment id for "next", the word for "ng",
    "on" or "off" for "idle"; "" otherwise."""
    source: str
    """One of SOURCES: "chat", "mqtt" or "panel" (the control panel)."""
    author: str = ""
    """Who sent it in chat (display name); "" otherwise."""


def _split(text: str) -> tuple[str, str]:
    head, _, rest = text.strip().partition(" ")
    if not rest:  # "!say　こんにちは" with an ideographic space
        head, _, rest = head.partition("\u3000")
    return unicodedata.normalize("NFKC", head).casefold(), rest.strip()


def parse_command(comment: Comment) -> Command | None:
    """A command from the owner or a moderator; None for other authors, other text, or a command
    missing its argument (such a message is treated as ordinary chat)."""
    author = comment.author
    if not (author.is_owner or author.is_moderator):
        return None
    text = comment.text.strip()
    if not text.startswith(_PREFIXES):
        return None
    name, arg = _split(text[1:])
    needs_arg = COMMANDS.get(name)
    if needs_arg is None or name in NOT_IN_CHAT or (needs_arg and not arg):
        return None
    if name == "idle":
        arg = _on_off(arg) or ""
        if not arg:
            return None
    return Command(name, arg if needs_arg else "", "chat", author.name)


def _on_off(arg: str) -> str | None:
    value = unicodedata.normalize("NFKC", arg).strip().casefold()
    return value if value in ("on", "off") else None


def _usage() -> str:
    return "expected one of: skip, pause, resume, ban NAME, unban NAME, say TEXT, next COMMENT_ID, ng WORD, idle on|off"


def _build(name: str, arg: str, where: str, source: str) -> Command:
    needs_arg = COMMANDS.get(name)
    if needs_arg is None:
        raise ValueError(f"control payload: unknown command {name!r} ({where}); {_usage()}")
    if needs_arg and not arg:
        raise ValueError(f"control payload: command {name!r} needs {_WHAT[name]} ({where})")
    if name == "idle":
        value = _on_off(arg)
        if value is None:
            raise ValueError(f'control payload: command "idle" takes "on" or "off", not {arg[:40]!r} ({where})')
        arg = value
    return Command(name, arg if needs_arg else "", source)


def parse_control_payload(payload: bytes | str, source: str = "mqtt") -> Command:
    """A command from the MQTT control topic or the control panel (`source`): JSON such as
    {"command": "say", "text": "..."} (the argument may also be given as "arg", "name", "viewer",
    "comment_id" or "word"), or plain text such as "!say hi", "pause" or "next c123".

    Raises ValueError saying what is wrong with the payload.
    """
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"control payload is not UTF-8 text: {exc}") from exc
    text = payload.strip().lstrip("\ufeff")
    if not text:
        raise ValueError(f"control payload is empty; {_usage()}")
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"control payload is not valid JSON: {exc.msg} at position {exc.pos}") from exc
        if not isinstance(data, dict):
            raise ValueError("control payload: the JSON must be an object")
        command = data.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ValueError(f'control payload: the JSON needs a "command" string; {_usage()}')
        arg = ""
        for key in _ARG_KEYS:
            value = data.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ValueError(f'control payload: "{key}" must be a string, got {type(value).__name__}')
            arg = value.strip()
            break
        name = unicodedata.normalize("NFKC", command.strip()).casefold().lstrip("!")
        return _build(name, arg, "JSON", source)
    if text.startswith(_PREFIXES):
        text = text[1:]
    name, arg = _split(text)
    return _build(name, arg, "text", source)
