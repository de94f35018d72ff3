"""Moderator commands: parsed from the owner's or moderators' chat ("!skip") or the MQTT control topic.

Pure parsing only; the dispatcher that acts on a `Command` lives in the app.

    !skip        stop the current reply
    !pause       stop selecting comments (chat keeps being read)
    !resume      start selecting again
    !ban NAME    block a viewer (name, @handle or channel id)
    !say TEXT    the character says TEXT
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass

from aituber.core.comment import Comment

__all__ = ["COMMANDS", "Command", "parse_command", "parse_control_payload"]

COMMANDS: dict[str, bool] = {"skip": False, "pause": False, "resume": False, "ban": True, "say": True}
"""Command name -> whether it needs an argument."""

_PREFIXES = ("!", "！")


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    """One of COMMANDS."""
    arg: str
    """The name for "ban", the text for "say", "" otherwise."""
    source: str
    """"chat" or "mqtt"."""
    author: str = ""
    """Who sent it in chat (display name); "" for MQTT."""


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
    if needs_arg is None or (needs_arg and not arg):
        return None
    return Command(name, arg if needs_arg else "", "chat", author.name)


def _usage() -> str:
    return "expected one of: skip, pause, resume, ban NAME, say TEXT"


def _build(name: str, arg: str, where: str) -> Command:
    needs_arg = COMMANDS.get(name)
    if needs_arg is None:
        raise ValueError(f"control payload: unknown command {name!r} ({where}); {_usage()}")
    if needs_arg and not arg:
        what = "a viewer name or channel id" if name == "ban" else "the text to say"
        raise ValueError(f"control payload: command {name!r} needs {what} ({where})")
    return Command(name, arg if needs_arg else "", "mqtt")


def parse_control_payload(payload: bytes | str) -> Command:
    """A command from the MQTT control topic: JSON such as {"command": "say", "text": "..."} (the
    argument may also be given as "arg", "name" or "viewer"), or plain text such as "!say hi" or "pause".

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
        for key in ("text", "arg", "name", "viewer"):
            value = data.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ValueError(f'control payload: "{key}" must be a string, got {type(value).__name__}')
            arg = value.strip()
            break
        name = unicodedata.normalize("NFKC", command.strip()).casefold().lstrip("!")
        return _build(name, arg, "JSON")
    if text.startswith(_PREFIXES):
        text = text[1:]
    name, arg = _split(text)
    return _build(name, arg, "text")
