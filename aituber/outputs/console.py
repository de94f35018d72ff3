"""The console: each answered comment and its reply, with latency."""

from __future__ import annotations

import sys
from typing import TextIO

from aituber.core.comment import Comment, CommentKind
from aituber.core.events import CommentSelected, CommentSkipped, Event, ReplyEnded
from aituber.outputs.base import OutputBase, OutputContext


def _badge(comment: Comment) -> str:
    if comment.kind is CommentKind.JEWELS:  # [jewels Gold coin, 10 Jewels]
        price = f"{comment.amount:,.0f} Jewels" if comment.amount is not None else ""
        detail = ", ".join(part for part in (comment.gift_name, price) if part)
        return f" [jewels {detail}]" if detail else " [jewels]"
    if comment.amount is not None:
        amount = f"{comment.amount:,.0f}" if comment.amount == int(comment.amount) else f"{comment.amount:,.2f}"
        return f" [{comment.kind.value} {amount} {comment.currency or ''}]".rstrip("]").rstrip() + "]"
    if comment.kind.value != "text":
        return f" [{comment.kind.value}]"
    return ""


class ConsoleOutput(OutputBase):
    name = "console"

    def __init__(self, stream: TextIO | None = None, show_skipped: bool = False) -> None:
        self._stream = stream or sys.stdout
        self._show_skipped = show_skipped
        self._selected: dict[str, Comment] = {}

    def publish(self, event: Event) -> None:
        match event:
            case CommentSelected(comment=comment, reply_id=reply_id):
                self._selected[reply_id] = comment
            case ReplyEnded():
                comment = self._selected.pop(event.reply_id, None)
                first = "-" if event.first_token_s is None else f"{event.first_token_s * 1000:.0f} ms"
                who = f"{comment.author.name}{_badge(comment)}: {comment.text}" if comment else "?"
                self._print(f"💬 {who}\n🤖 {event.text or '(no reply)'}\n   "
                            f"first token {first}, full reply {event.total_s * 1000:.0f} ms, "
                            f"{event.tokens} tokens, {event.stop_reason}")
            case CommentSkipped(comment=comment, reason=reason) if self._show_skipped:
                self._print(f"   skipped ({reason}): {comment.author.name}: {comment.text[:40]}")

    def _print(self, text: str) -> None:
        print(text, file=self._stream, flush=True)


def create_output(context: OutputContext) -> ConsoleOutput | None:
    return ConsoleOutput() if context.settings.console else None
