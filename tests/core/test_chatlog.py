import json

import pytest

from aituber.core.chatlog import comment_to_record, parse_record
from aituber.core.comment import Author, Comment, CommentDeleted, CommentKind


def test_full_record_round_trips():
    comment = Comment(id="c1", author=Author("ねこ", "UCx", is_member=True, is_moderator=True),
                      text="こんにちは🍓", kind=CommentKind.SUPER_CHAT, amount=1000.0, currency="JPY",
                      timestamp=1764300000.5, offset_s=12.25)
    record = json.loads(json.dumps(comment_to_record(comment), ensure_ascii=False))
    assert parse_record(record, default_id="x") == comment
    assert parse_record(record, default_id="x").offset_s == 12.25


def test_a_jewels_gift_round_trips_with_its_gift():
    gift = Comment(id="g1", author=Author("@yaniescobar2170"), text="sent Gold coin for 10 Jewels",
                   kind=CommentKind.JEWELS, amount=10.0, currency="JEWELS", timestamp=1776000000.0,
                   gift_name="Gold coin")
    record = json.loads(json.dumps(comment_to_record(gift)))
    assert (record["kind"], record["amount"], record["currency"], record["gift_name"]) == (
        "jewels", 10.0, "JEWELS", "Gold coin")
    assert parse_record(record, default_id="x") == gift
    # The key is only written for a comment that has a gift name.
    assert "gift_name" not in comment_to_record(Comment(id="c", author=Author("x"), text="t"))
    assert parse_record({"author": "x", "text": "", "kind": "jewels"}, default_id="-").kind.is_paid


def test_minimal_record_with_author_string_gets_defaults():
    item = parse_record({"author": "たろう", "text": "やあ"}, default_id="log:3")
    assert item == Comment(id="log:3", author=Author("たろう"), text="やあ")


def test_transcript_lines_are_comments_or_ignored():
    record = {"type": "comment", **comment_to_record(Comment(id="a", author=Author("x"), text="t"))}
    assert isinstance(parse_record(record, default_id="-"), Comment)
    assert parse_record({"type": "reply", "text": "hi"}, default_id="-") is None
    assert parse_record({"type": "skipped", "comment_id": "a"}, default_id="-") is None
    assert parse_record({"type": "deleted", "comment_id": "a"}, default_id="-") == CommentDeleted("a")


@pytest.mark.parametrize(("record", "message"), [
    ([1, 2], "expected a JSON object"),
    ({"author": "x"}, "'text' is missing"),
    ({"text": "x"}, "'author' is missing"),
    ({"author": "x", "text": 3}, "'text' must be a string"),
    ({"author": {"channel_id": "UC"}, "text": "x"}, "'author.name'"),
    ({"author": {"name": "a", "member": "yes"}, "text": "x"}, "'author.member'"),
    ({"author": "x", "text": "x", "kind": "shout"}, "'kind' 'shout' is not one of"),
    ({"author": "x", "text": "x", "amount": "100"}, "'amount' must be a number"),
    ({"author": "x", "text": "", "kind": "jewels", "gift_name": 5}, "'gift_name' must be a string"),
    ({"author": "x", "text": "x", "offset_s": float("nan")}, "'offset_s' must be a number"),
    ({"author": "x", "text": "x", "type": "mystery"}, "unknown 'type'"),
    ({"type": "deleted"}, "'comment_id' is missing"),
])
def test_malformed_records_say_what_is_wrong(record, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_record(record, default_id="-")
