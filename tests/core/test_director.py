"""The session policy (aituber.core.director): inputs in, decisions and events out. No loop, no model."""

from __future__ import annotations

import pytest

from aituber.core.commands import Command
from aituber.core.comment import Author, Comment, CommentDeleted, CommentKind
from aituber.core.director import (
    POLL_S,
    Answer,
    Director,
    Finish,
    Idle,
    Say,
    Thank,
    Wait,
    thanks_names,
)
from aituber.core.events import CommandExecuted, CommentSeen, CommentSkipped, StatusChanged
from aituber.core.moderation import ModerationSettings, Moderator
from aituber.core.selection import IdleTalk, QueueSettings, SelectionQueue


def comment(i: int, text: str = "こんにちは", **kw) -> Comment:
    author = kw.pop("author", None) or Author(kw.pop("name", f"viewer{i}"), f"UC{i:022d}")
    return Comment(id=f"c{i}", author=author, text=text, **kw)


def director(*, idle: IdleTalk | None = None, **queue) -> Director:
    return Director(Moderator(ModerationSettings()), SelectionQueue(QueueSettings(**queue)), idle, now=0.0)


def test_a_comment_is_seen_queued_and_answered():
    d = director()
    events, command = d.accept(comment(1), now=1.0)
    assert events == [CommentSeen(comment(1))] and command is None
    decision, expired = d.next(now=2.0)
    assert decision == Answer(comment(1)) and expired == []
    assert d.next(now=2.0)[0] == Wait(2.0 + POLL_S)


def test_moderation_skips_with_a_reason_and_nothing_is_queued():
    d = director()
    events, _ = d.accept(comment(1, "   "), now=1.0)
    assert events[-1] == CommentSkipped(comment(1, "   "), "empty")
    assert isinstance(d.next(now=1.0)[0], Wait)


def test_a_moderators_command_is_returned_not_queued():
    d = director()
    mod = comment(9, "!pause", author=Author("mod", "UCmod", is_moderator=True))
    events, command = d.accept(mod, now=1.0)
    assert command == Command("pause", "", "chat", "mod")
    assert events[-1] == CommentSkipped(mod, "command")
    assert d.execute(command, now=1.0) == [StatusChanged("paused"), CommandExecuted("pause", "", "chat", "mod")]
    # Already paused: no second status, and the command says it changed nothing.
    assert d.execute(command, now=1.0) == [CommandExecuted("pause", "", "chat", "mod", True, "already paused")]


def test_say_comes_first_then_thanks_then_answers():
    d = director(thanks_settle_s=0.0)
    d.accept(comment(1), now=0.0)
    d.accept(comment(2, "応援してます", kind=CommentKind.SUPER_CHAT, amount=500.0, currency="JPY"), now=0.0)
    d.queue.take_thanks(0.0)  # nothing yet: the super chat waits to be answered
    d.execute(Command("say", "こんばんは", "mqtt"), now=0.0)
    assert d.next(now=1.0)[0] == Say("こんばんは")
    # The super chat is answered before the plain comment (paid first).
    assert d.next(now=1.0)[0] == Answer(comment(2, "応援してます", kind=CommentKind.SUPER_CHAT, amount=500.0,
                                                currency="JPY"))
    assert d.next(now=1.0)[0] == Answer(comment(1))


def test_a_paid_message_that_waited_too_long_is_thanked_even_while_paused():
    d = director(paid_max_wait_s=5.0, thanks_settle_s=0.0)
    paid = comment(1, "スパチャ", kind=CommentKind.SUPER_STICKER, amount=300.0, currency="JPY")
    d.accept(paid, now=0.0)
    d.execute(Command("pause", "", "chat"), now=0.0)
    assert isinstance(d.next(now=1.0)[0], Wait)  # paused: not answered
    decision, _ = d.next(now=10.0)
    assert decision == Thank((paid,))


def test_paused_waits_with_comments_queued_and_resume_answers_them():
    d = director()
    d.execute(Command("pause", "", "chat"), now=0.0)
    d.accept(comment(1), now=0.0)
    assert d.next(now=1.0)[0] == Wait(1.0 + POLL_S)
    assert len(d.queue) == 1
    assert d.execute(Command("resume", "", "chat"), now=1.0) == [StatusChanged("online"),
                                                                 CommandExecuted("resume", "", "chat")]
    assert d.next(now=1.0)[0] == Answer(comment(1))


def test_ban_blocks_the_viewer_and_drops_their_queued_comments():
    d = director()
    d.accept(comment(1, "うざい", name="荒らし"), now=0.0)
    d.accept(comment(2, "こんばんは"), now=0.0)
    events = d.execute(Command("ban", "荒らし", "chat"), now=0.0)
    assert events == [CommentSkipped(comment(1, "うざい", name="荒らし"), "blocked_viewer"),
                      CommandExecuted("ban", "荒らし", "chat", "", True, "1 waiting comment(s) dropped")]
    assert d.accept(comment(3, "また来た", name="荒らし"), now=1.0)[0][-1].reason == "blocked_viewer"
    assert d.next(now=1.0)[0] == Answer(comment(2, "こんばんは"))


def test_a_deleted_comment_leaves_the_queue():
    d = director()
    d.accept(comment(1), now=0.0)
    events, _ = d.accept(CommentDeleted("c1"), now=0.0)
    assert events == [CommentSkipped(comment(1), "deleted")]
    assert d.accept(CommentDeleted("never-seen"), now=0.0) == ([], None)


def test_finish_only_when_the_chat_is_over_and_nothing_waits():
    d = director(thanks_settle_s=5.0)
    paid = comment(1, "", kind=CommentKind.SUPER_STICKER, amount=200.0, currency="JPY")
    d.accept(paid, now=0.0)
    d.accept(comment(2), now=0.0)
    d.source_done()
    assert isinstance(d.next(now=0.0)[0], Answer)
    assert isinstance(d.next(now=0.0)[0], Answer)
    assert d.next(now=0.0)[0] == Finish()


def test_the_chat_ending_while_paused_finishes():
    d = director()
    d.execute(Command("pause", "", "chat"), now=0.0)
    d.accept(comment(1), now=0.0)
    d.source_done()
    assert d.next(now=0.0)[0] == Finish()


def test_idle_talk_when_quiet_and_never_with_comments_waiting_or_after_the_chat_ends():
    d = director(idle=IdleTalk(["星の話"], idle_after_s=10.0, cooldown_s=30.0))
    assert isinstance(d.next(now=5.0)[0], Wait)
    assert d.next(now=11.0)[0] == Idle("星の話")
    d.replied(Idle("星の話"), now=12.0)
    assert isinstance(d.next(now=20.0)[0], Wait)  # quiet again, but the cooldown is not over
    d.accept(comment(1), now=50.0)
    assert isinstance(d.next(now=50.0)[0], Answer)
    d.source_done()
    assert d.next(now=500.0)[0] == Finish()


def test_replied_counts_towards_the_viewer_limit():
    d = Director(Moderator(ModerationSettings(max_answers_per_viewer=1)), SelectionQueue(QueueSettings()), now=0.0)
    d.accept(comment(1), now=0.0)
    decision, _ = d.next(now=0.0)
    d.replied(decision, now=1.0)
    events, _ = d.accept(comment(1, "また質問です、今日は何する？"), now=2.0)
    assert events[-1].reason == "viewer_limit"


@pytest.mark.parametrize(("names", "expected"), [
    (["a"], "aさん"),
    (["a", "b", "a"], "aさん、bさん"),
    (["a", "b", "c"], "aさん、bさんほか"),
])
def test_thanks_names_each_once_then_others(names, expected):
    comments = [comment(i, name=n) for i, n in enumerate(names)]
    assert thanks_names(comments, "{name}さん", "、", "ほか", max_names=2) == expected
