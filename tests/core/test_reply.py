"""Reply assembly (aituber.core.reply): engine text in, the events outputs see out. No loop, no model."""

from __future__ import annotations

import pytest

from aituber.core.comment import Author, Comment
from aituber.core.events import (
    CommentSelected,
    ReplyCancelled,
    ReplyDelta,
    ReplyEnded,
    ReplySentence,
    ReplyStarted,
)
from aituber.core.moderation import ModerationSettings, Moderator
from aituber.core.reply import ReplyAssembler, ReplyTiming

COMMENT = Comment(id="c1", author=Author("たぬき丸"), text="こんにちは", timestamp=100.0)


def assembler(action: str = "mask", **kw) -> ReplyAssembler:
    moderator = Moderator(ModerationSettings(ng_words=("ばか",), use_builtin_ng_words=False,
                                             output_ng_action=action))
    return ReplyAssembler("r1", "", moderator, comment=COMMENT, timing=ReplyTiming(10.0, queued_s=2.5), **kw)


def feed_all(a: ReplyAssembler, pieces: list[str], start: float = 10.0) -> list:
    events = []
    for i, piece in enumerate(pieces):
        events += a.feed(piece, start + 0.1 * (i + 1))
    return events


def test_start_selects_the_comment_and_starts_the_reply():
    assert assembler().start() == [CommentSelected(COMMENT, "r1", 2.5), ReplyStarted("r1", "c1")]


def test_deltas_sentences_and_the_end_carry_the_same_text():
    a = assembler()
    events = feed_all(a, ["やっほー", "！元気", "だよ。ま", "たね"])
    events += a.finish("stop", tokens=9, now=11.0)
    deltas = "".join(e.text for e in events if isinstance(e, ReplyDelta))
    sentences = [e.text for e in events if isinstance(e, ReplySentence)]
    end = events[-1]
    assert isinstance(end, ReplyEnded)
    assert deltas == end.text == "やっほー！元気だよ。またね"
    assert sentences == ["やっほー！", "元気だよ。", "またね"]
    assert [e.index for e in events if isinstance(e, ReplySentence)] == [0, 1, 2]
    assert end.first_token_s == pytest.approx(0.1) and end.total_s == pytest.approx(1.0) and end.tokens == 9


def test_an_ng_word_split_across_chunks_is_masked_before_it_is_shown():
    a = assembler()
    events = feed_all(a, ["きみは", "ば", "かだね"])
    events += a.finish("stop", 3, 11.0)
    shown = "".join(e.text for e in events if isinstance(e, ReplyDelta))
    assert shown == "きみは＊＊だね" == events[-1].text
    assert not any("ば" in e.text for e in events if isinstance(e, ReplyDelta))


def test_drop_withdraws_the_reply():
    a = assembler("drop")
    events = feed_all(a, ["きみは", "ばか"])
    assert a.dropped
    events += a.finish("stop", 2, 11.0)
    assert ReplyCancelled("r1", "filtered") in events
    assert events[-1].stop_reason == "filtered"
    assert "ばか" not in "".join(e.text for e in events if isinstance(e, ReplyDelta))


def test_a_cancelled_reply_is_taken_off_screens_and_records_what_was_shown():
    a = assembler()
    shown = feed_all(a, ["ひとつめ。", "ふたつ"])
    events = a.finish("cancelled", 4, 11.0)
    assert events[0] == ReplyCancelled("r1", "cancelled")
    assert not any(isinstance(e, (ReplyDelta, ReplySentence)) for e in events)  # nothing more is shown
    assert events[-1].stop_reason == "cancelled"
    assert events[-1].text == "".join(e.text for e in shown if isinstance(e, ReplyDelta)) == "ひとつめ。ふたつ"
    assert a.finish("stop", 4, 12.0) == []  # finished once only


def test_a_reply_over_the_length_limit_is_cut_after_its_last_sentence():
    a = assembler()
    events = feed_all(a, ["うん。そうだね！それで", "ね"])
    events += a.finish("length", 12, 11.0)
    assert events[-1].text == "うん。そうだね！"
    assert [e.text for e in events if isinstance(e, ReplySentence)] == ["うん。", "そうだね！"]
    uncut = assembler(cut_long_replies=False)
    feed_all(uncut, ["うん。そうだね！それで", "ね"])
    assert uncut.finish("length", 12, 11.0)[-1].text == "うん。そうだね！それでね"


def test_nothing_shown_means_no_first_text_time():
    a = assembler()
    end = a.finish("error", 0, 12.0)[-1]
    assert end.text == "" and end.first_token_s is None and end.stop_reason == "error"


def test_a_fixed_text_has_no_comment_but_an_id():
    a = ReplyAssembler("r2", "say", Moderator(ModerationSettings()), timing=ReplyTiming(0.0))
    assert a.start() == [ReplyStarted("r2", "say")]
