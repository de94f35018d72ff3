"""What a moderator sees and does at run time, without I/O: the queue listed with its scores, answering a
comment next, session NG words, unban, idle talk on and off, and the command event each command gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aituber.core.commands import Command, parse_command, parse_control_payload
from aituber.core.comment import Author, Comment, CommentKind
from aituber.core.director import POLL_S, Answer, Director, Idle, Wait
from aituber.core.events import CommandExecuted, CommentSeen, CommentSkipped, StatusChanged
from aituber.core.moderation import ModerationSettings, Moderator
from aituber.core.selection import IdleTalk, QueueSettings, SelectionQueue
from aituber.errors import ConfigError


def comment(i: int, text: str = "こんにちは", **kw) -> Comment:
    author = kw.pop("author", None) or Author(kw.pop("name", f"viewer{i}"), f"UC{i:022d}", **kw.pop("roles", {}))
    return Comment(id=f"c{i}", author=author, text=text, **kw)


def director(*, idle: IdleTalk | None = None, idle_on: bool = True, **queue) -> Director:
    return Director(Moderator(ModerationSettings()), SelectionQueue(QueueSettings(character_name="ミカ", **queue)),
                    idle, now=0.0, idle_on=idle_on)


def command(name: str, arg: str = "") -> Command:
    return Command(name, arg, "panel")


# -- the queue as the panel lists it -----------------------------------------------------------------


def test_waiting_lists_the_answer_order_with_each_score_and_why():
    q = SelectionQueue(QueueSettings(character_name="ミカ", decay_per_s=0.5))
    plain = comment(1, "こんにちは")
    question = comment(2, "ミカちゃん好きな食べ物は何？")
    paid = comment(3, "応援してます", kind=CommentKind.SUPER_CHAT, amount=1000.0, currency="JPY",
                   roles={"is_member": True})
    for c in (plain, question, paid):
        q.push(c, now=0.0)
    listed = q.waiting(now=4.0)
    assert [w.comment for w in listed] == [paid, question, plain]
    parts = {w.comment.id: dict(w.parts) for w in listed}
    assert set(parts["c3"]) == {"paid", "member", "age"}
    assert parts["c2"] == {"question": 10.0, "mention": 10.0, "age": -2.0}
    assert parts["c1"] == {"age": -2.0}
    for w in listed:
        assert w.score == pytest.approx(sum(points for _, points in w.parts))
        assert w.age_s == 4.0 and not w.promoted
    # The list is the order pop() takes them in, and listing changes nothing.
    assert len(q) == 3
    assert [q.pop(4.0)[0] for _ in range(3)] == [paid, question, plain]


def test_waiting_shows_the_fairness_penalties():
    q = SelectionQueue(QueueSettings(decay_per_s=0.0))
    author = Author("常連", "UCregular")
    q.push(comment(1, "一つ目", author=author), now=0.0)
    q.pop(0.0)  # answered once
    q.push(comment(2, "二つ目", author=author), now=1.0)
    q.push(comment(3, "三つ目", author=author), now=1.0)
    (first, second) = q.waiting(now=1.0)
    assert dict(first.parts) == {"queued": -5.0, "answered": -15.0}
    assert first.score == second.score == -20.0


def test_answer_next_goes_before_any_score_and_neither_expires_nor_is_dropped():
    q = SelectionQueue(QueueSettings(max_size=2, max_age_s=10.0))
    low, high = comment(1, "ふーん"), comment(2, "質問です、何が好き？", kind=CommentKind.SUPER_CHAT, amount=500.0)
    q.push(low, now=0.0)
    q.push(high, now=0.0)
    assert q.promote("c1") and not q.promote("nope")
    assert q.promoted == ("c1",)
    assert [w.comment.id for w in q.waiting(now=1.0)] == ["c1", "c2"] and q.waiting(now=1.0)[0].promoted
    # Full: the newcomer pushes out the lowest standing that is not promoted.
    assert [d.comment.id for d in q.push(comment(3, "はい"), now=1.0)] == ["c3"]
    # Stale for everyone else, the promoted one still waits.
    assert q.pop(now=30.0)[0] == low
    assert q.promoted == ()


def test_a_promoted_comment_that_leaves_the_queue_is_forgotten():
    q = SelectionQueue(QueueSettings())
    q.push(comment(1), now=0.0)
    q.push(comment(2), now=0.0)
    q.promote("c2")
    assert q.remove("c2") is not None
    assert q.promoted == () and q.pop(0.0)[0] == comment(1)


# -- commands through the director -------------------------------------------------------------------


def test_next_answers_that_comment_first_and_says_when_it_cannot():
    d = director()
    d.accept(comment(1, "ふつうのコメント"), now=0.0)
    d.accept(comment(2, "ミカちゃん何歳？"), now=0.0)
    assert d.execute(command("next", "c1"), now=0.0) == [CommandExecuted("next", "c1", "panel")]
    assert d.next(now=1.0)[0] == Answer(comment(1, "ふつうのコメント"))
    (event,) = d.execute(command("next", "c1"), now=1.0)
    assert not event.ok and "not waiting" in event.detail


def test_while_paused_only_the_comments_picked_by_hand_are_answered():
    d = director()
    d.execute(command("pause"), now=0.0)
    d.accept(comment(1, "一つ目"), now=0.0)
    d.accept(comment(2, "二つ目"), now=0.0)
    assert d.next(now=1.0)[0] == Wait(1.0 + POLL_S)
    d.execute(command("next", "c2"), now=1.0)
    assert d.next(now=1.0)[0] == Answer(comment(2, "二つ目"))
    assert d.next(now=1.0)[0] == Wait(1.0 + POLL_S)  # still paused: c1 waits
    assert d.snapshot(1.0).paused and [w.comment.id for w in d.snapshot(1.0).waiting] == ["c1"]


def test_a_session_ng_word_drops_waiting_comments_skips_new_ones_and_masks_replies():
    d = director()
    d.accept(comment(1, "バナナ食べたい"), now=0.0)
    d.accept(comment(2, "りんご派です"), now=0.0)
    d.accept(comment(3, "こんばんは", name="バナナ王"), now=0.0)
    events = d.execute(command("ng", "バナナ"), now=0.0)
    assert events == [CommentSkipped(comment(1, "バナナ食べたい"), "ng_word"),
                      CommentSkipped(comment(3, "こんばんは", name="バナナ王"), "ng_name"),
                      CommandExecuted("ng", "バナナ", "panel", "", True, "2 waiting comment(s) dropped")]
    assert d.accept(comment(4, "ばなな！"), now=1.0)[0][-1].reason == "ng_word"
    assert d.moderator.filter_output("バナナおいしいよ").text == "＊＊＊おいしいよ"
    assert d.snapshot(1.0).ng_words == ("バナナ",)


@pytest.mark.parametrize("word", ["   ", "re:(", "!!!"])
def test_a_bad_ng_word_changes_nothing_and_says_why(word):
    d = director()
    (event,) = d.execute(command("ng", word), now=0.0)
    assert not event.ok and event.detail
    assert d.snapshot(0.0).ng_words == ()
    with pytest.raises(ConfigError):
        Moderator(ModerationSettings()).add_ng_word(word)


def test_ban_then_unban():
    d = director()
    troll = Author("荒らし", "UCtroll")
    d.accept(comment(1, "うざい", author=troll), now=0.0)
    events = d.execute(command("ban", "UCtroll"), now=0.0)
    assert [type(e) for e in events] == [CommentSkipped, CommandExecuted] and events[0].reason == "blocked_viewer"
    assert d.snapshot(0.0).banned == ("UCtroll",)
    assert d.accept(comment(2, "また来た", author=troll), now=1.0)[0][-1].reason == "blocked_viewer"
    assert d.execute(command("unban", "UCtroll"), now=1.0) == [CommandExecuted("unban", "UCtroll", "panel")]
    assert d.snapshot(1.0).banned == ()
    assert d.accept(comment(3, "ごめんなさい", author=troll), now=2.0)[0] == [
        CommentSeen(comment(3, "ごめんなさい", author=troll))]  # queued again
    (event,) = d.execute(command("unban", "nobody"), now=2.0)
    assert event.ok and "not among" in event.detail


def test_idle_talk_off_and_on():
    idle = IdleTalk(["好きな食べ物"], idle_after_s=10.0, cooldown_s=0.0)
    d = director(idle=idle, idle_on=False)
    assert d.next(now=100.0)[0] == Wait(100.0 + POLL_S)  # off: quiet for long, no topic
    assert d.execute(command("idle", "on"), now=100.0) == [CommandExecuted("idle", "on", "panel")]
    assert d.snapshot(100.0).idle_on
    assert d.next(now=100.0)[0] == Idle("好きな食べ物")
    d.execute(command("idle", "off"), now=100.0)
    assert d.next(now=200.0)[0] == Wait(200.0 + POLL_S)


def test_idle_on_without_topics_says_so():
    d = director(idle=IdleTalk([], 10.0, 0.0), idle_on=False)
    (event,) = d.execute(command("idle", "on"), now=0.0)
    assert not event.ok and "topics" in event.detail
    assert not d.snapshot(0.0).idle_available


def test_pause_and_resume_report_what_they_did():
    d = director()
    assert d.execute(command("pause"), now=0.0) == [StatusChanged("paused"), CommandExecuted("pause", "", "panel")]
    assert d.execute(command("resume"), now=0.0) == [StatusChanged("online"), CommandExecuted("resume", "", "panel")]
    (event,) = d.execute(command("resume"), now=0.0)
    assert event.ok and event.detail == "not paused"


def test_snapshot_has_everything_the_panel_shows():
    d = director(thanks_settle_s=60.0, thanks_burst_size=1)
    d.accept(comment(1, "スパチャ", kind=CommentKind.SUPER_CHAT, amount=500.0, currency="JPY"), now=0.0)
    d.accept(comment(2), now=0.0)
    d.execute(command("say", "マイクテスト"), now=0.0)
    s = d.snapshot(0.0)
    assert (s.paused, s.thanks_pending, s.says_pending, len(s.waiting), s.chat_over) == (False, 1, 1, 1, False)


# -- parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ('{"command": "next", "comment_id": "abc:1"}', Command("next", "abc:1", "panel")),
        ('{"command": "ng", "word": "バナナ"}', Command("ng", "バナナ", "panel")),
        ('{"command": "unban", "name": "UCx"}', Command("unban", "UCx", "panel")),
        ('{"command": "idle", "arg": "OFF"}', Command("idle", "off", "panel")),
        ("idle on", Command("idle", "on", "panel")),
        ("!ng re:ば+なな", Command("ng", "re:ば+なな", "panel")),
    ],
)
def test_new_control_payloads(payload, expected):
    assert parse_control_payload(payload, "panel") == expected


@pytest.mark.parametrize(("payload", "message"), [
    ('{"command": "next"}', "needs a comment id"),
    ("idle maybe", '"on" or "off"'),
    ('{"command": "ng", "word": ""}', "needs the NG word"),
])
def test_bad_new_control_payloads(payload, message):
    with pytest.raises(ValueError, match=message):
        parse_control_payload(payload)


def test_chat_commands_for_moderators():
    owner = Author("配信者", is_owner=True)
    chat = lambda text: Comment(id="x", author=owner, text=text)  # noqa: E731
    assert parse_command(chat("!unban 荒らし")) == Command("unban", "荒らし", "chat", "配信者")
    assert parse_command(chat("!ng バナナ")) == Command("ng", "バナナ", "chat", "配信者")
    assert parse_command(chat("!idle off")) == Command("idle", "off", "chat", "配信者")
    assert parse_command(chat("!idle later")) is None  # not a command: ordinary chat
    assert parse_command(chat("!next c1")) is None  # comment ids are for MQTT and the panel


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["push", "push", "push", "pop", "promote"]), st.integers(0, 6),
                          st.sampled_from(["こんにちは", "ミカちゃん元気？", "なにしてるの", "草"]),
                          st.sampled_from(["text", "super_chat", "membership"]), st.booleans()),
                max_size=40))
def test_the_listed_order_is_the_order_pop_answers_in(steps):
    q = SelectionQueue(QueueSettings(character_name="ミカ", max_size=5, max_age_s=30.0, thanks_burst_size=0))
    now = 0.0
    for n, (op, who, text, kind, member) in enumerate(steps):
        now += 1.5
        if op == "push":
            paid = kind == "super_chat"
            q.push(Comment(id=f"c{n}", author=Author(f"v{who}", f"UC{who}", is_member=member), text=text,
                           kind=CommentKind(kind), amount=500.0 if paid else None, currency="JPY" if paid else None),
                   now)
        elif op == "promote" and len(q):
            q.promote(q.comments()[who % len(q)].id)
        else:
            q.pop(now)
        for w in q.waiting(now):
            assert w.score == pytest.approx(sum(points for _, points in w.parts))
    while len(q):
        listed = q.waiting(now)
        picked, dropped = q.pop(now)
        if not dropped:
            assert picked == listed[0].comment
