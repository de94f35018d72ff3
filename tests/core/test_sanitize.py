"""Text made valid at the edge: lone surrogates, non-characters, controls and BOMs, and the caps."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from aituber.core.comment import Author, Comment, CommentDeleted, CommentKind
from aituber.core.sanitize import (
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_TEXT_CHARS,
    clean_comment,
    clean_deleted,
    clean_line,
    clean_text,
)


def test_a_lone_surrogate_becomes_the_replacement_character():
    text = json.loads('"こんにちは\\ud800です\\udfff"')  # what JSON gives for an unpaired escape
    assert clean_text(text) == "こんにちは\ufffdです\ufffd"
    clean_text(text).encode("utf-8")  # strict


def test_noncharacters_controls_and_boms_are_removed():
    assert clean_text("\ufeffa\x00b\x07c\x1bd\x7fe\x9ff\ufdd0g\ufffeh\U0010ffffi\U0001fffej") == "abcdefghij"


def test_line_breaks_and_tabs():
    assert clean_text("一行目\r\n二行目\r三行目\x85四\tタブ") == "一行目\n二行目\n三行目\n四 タブ"
    assert clean_line("たぬき\n丸\r\nさん\tです") == "たぬき 丸 さん です"


def test_valid_text_is_returned_as_the_same_object():
    for text in ["こんにちは", "emoji 👏🏿 and ZWJ 👨‍👩‍👧", "全角\u3000スペース", "", "一行目\u2028二行目"]:
        assert clean_text(text) is text


def test_the_caps():
    assert clean_text("あ" * (MAX_TEXT_CHARS + 5)) == "あ" * MAX_TEXT_CHARS
    assert clean_line("n" * 500) == "n" * MAX_NAME_CHARS
    assert len(clean_line("x" * 500, MAX_ID_CHARS)) == MAX_ID_CHARS


def test_every_string_of_a_comment_is_cleaned():
    bad = "\ud800"
    comment = Comment(id="c1" + bad, author=Author("ねこ" + bad, "UC" + bad, is_member=True), text="やあ" + bad,
                      kind=CommentKind.JEWELS, amount=10.0, currency="JEWELS" + bad, timestamp=5.0, offset_s=1.5,
                      gift_name="Gold coin\x00")
    clean = clean_comment(comment)
    assert (clean.id, clean.author.name, clean.author.channel_id, clean.text, clean.currency, clean.gift_name) == (
        "c1\ufffd", "ねこ\ufffd", "UC\ufffd", "やあ\ufffd", "JEWELS\ufffd", "Gold coin")
    assert clean.author.is_member and clean.amount == 10.0 and clean.offset_s == 1.5
    assert clean.kind is CommentKind.JEWELS
    ok = Comment(id="c2", author=Author("いぬ"), text="こんにちは")
    assert clean_comment(ok) is ok
    assert clean_deleted(CommentDeleted("x" + bad, 2.0)) == CommentDeleted("x\ufffd", 2.0)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=()) | st.sampled_from("\ud800\udfff\x00\x85\ufeff\uffff\r\t"),
               max_size=300))
def test_whatever_comes_in_goes_out_as_valid_utf8_without_controls(text):
    for cleaned, limit in ((clean_text(text), MAX_TEXT_CHARS), (clean_line(text), MAX_NAME_CHARS)):
        cleaned.encode("utf-8")  # never raises
        assert len(cleaned) <= limit
        assert not any(ord(ch) < 0x20 and ch != "\n" or 0x7F <= ord(ch) <= 0x9F or ch == "\ufeff" for ch in cleaned)
        assert clean_text(cleaned, limit) == cleaned  # cleaning is idempotent
    assert "\n" not in clean_line(text)
