"""Text made valid at the edge: what a viewer or a log file sends becomes text every later stage can
hold, encode, tokenise, print and send. No I/O.

Where chat items are made (the log parsers, the YouTube converter, the console), every string of a
`Comment` goes through `clean_text`:

- a lone UTF-16 surrogate (JSON ``"\\ud800"``, or bytes a decoder let through with
  ``surrogateescape``) becomes U+FFFD, the replacement character: UTF-8 cannot encode it, and the
  tokenizer, the transcript, the overlay and the terminal would each fail on it;
- non-characters (U+FDD0..U+FDEF and U+xFFFE / U+xFFFF in every plane), byte-order marks (U+FEFF)
  and control characters (C0 but tab and newline, DEL, C1) are removed; a tab becomes a space and
  CR, CRLF or NEL (U+0085) a newline; in names, ids and other one-line fields every newline becomes a space;
- each field has a length cap (`MAX_TEXT_CHARS` for a comment's text, `MAX_NAME_CHARS` for a name,
  `MAX_ID_CHARS` for ids and codes): longer text is cut.

Clean text comes back as the very same object, so callers can tell (`cleaned is not original`).
"""

from __future__ import annotations

import re

from aituber.core.comment import Author, Comment, CommentDeleted

__all__ = ["MAX_ID_CHARS", "MAX_NAME_CHARS", "MAX_TEXT_CHARS", "clean_comment", "clean_deleted", "clean_line",
           "clean_text"]

MAX_TEXT_CHARS = 1000
"""A comment's text (YouTube allows 200 characters; a membership or gift line is shorter)."""
MAX_NAME_CHARS = 100
"""A viewer's name, a gift's name."""
MAX_ID_CHARS = 200
"""Ids, channel ids, currency codes."""

_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17))
_REMOVED = f"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff{_NONCHARACTERS}"
_SURROGATES = "\ud800-\udfff"

_NEEDS_WORK_TEXT = re.compile(f"[{_REMOVED}{_SURROGATES}\t\r]")  # (U+0085 NEL is in _REMOVED)
_NEEDS_WORK_LINE = re.compile(f"[{_REMOVED}{_SURROGATES}\t\r\n]")
_REMOVE = re.compile(f"[{_REMOVED}]+")
_SURROGATE = re.compile(f"[{_SURROGATES}]")
_NEWLINES = re.compile("\r\n?|\x85")


def clean_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Multi-line text (a comment) made valid and at most `max_chars` long (see the module doc)."""
    if len(text) <= max_chars and text.isprintable():  # the usual case, at C speed
        return text
    if _NEEDS_WORK_TEXT.search(text) is not None:
        text = _finish(_NEWLINES.sub("\n", text).replace("\t", " "))
    return text[:max_chars] if len(text) > max_chars else text


def clean_line(text: str, max_chars: int = MAX_NAME_CHARS) -> str:
    """One-line text (a name, an id) made valid and at most `max_chars` long: newlines become spaces."""
    if len(text) <= max_chars and text.isprintable():
        return text
    if _NEEDS_WORK_LINE.search(text) is not None:
        text = _finish(_NEWLINES.sub("\n", text).replace("\t", " ").replace("\n", " "))
    return text[:max_chars] if len(text) > max_chars else text


def _finish(text: str) -> str:
    return _SURROGATE.sub("\ufffd", _REMOVE.sub("", text))


def _clean_optional(text: str | None, max_chars: int) -> str | None:
    return None if text is None else clean_line(text, max_chars)


def clean_author(author: Author) -> Author:
    name = clean_line(author.name, MAX_NAME_CHARS)
    channel_id = clean_line(author.channel_id, MAX_ID_CHARS)
    if name is author.name and channel_id is author.channel_id:
        return author
    return Author(name, channel_id, author.is_owner, author.is_moderator, author.is_member, author.is_verified)


def clean_comment(comment: Comment) -> Comment:
    """The comment with every string field cleaned; the same object when nothing needed it."""
    comment_id = clean_line(comment.id, MAX_ID_CHARS)
    author = clean_author(comment.author)
    text = clean_text(comment.text, MAX_TEXT_CHARS)
    currency = _clean_optional(comment.currency, MAX_ID_CHARS)
    gift_name = _clean_optional(comment.gift_name, MAX_NAME_CHARS)
    if (comment_id is comment.id and author is comment.author and text is comment.text
            and currency is comment.currency and gift_name is comment.gift_name):
        return comment
    return Comment(comment_id, author, text, comment.kind, comment.amount, currency, comment.timestamp,
                   comment.offset_s, gift_name)


def clean_deleted(deleted: CommentDeleted) -> CommentDeleted:
    comment_id = clean_line(deleted.comment_id, MAX_ID_CHARS)
    return deleted if comment_id is deleted.comment_id else CommentDeleted(comment_id, deleted.offset_s)
