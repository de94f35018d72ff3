import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aituber.core.comment import Author, Comment, CommentKind
from aituber.core.selection import Dropped, IdleTalk, QueueSettings, SelectionQueue, is_question

_ids = iter(range(10**9))


def viewer(i: int, **flags: bool) -> Author:
    return Author(name=f"viewer{i}", channel_id=f"UC{i}", **flags)


def comment(
    text: str = "こんにちは",
    author: Author | None = None,
    kind: CommentKind = CommentKind.TEXT,
    amount: float | None = None,
    currency: str | None = None,
) -> Comment:
    n = next(_ids)
    return Comment(id=f"c{n}", author=author or viewer(n), text=text, kind=kind, amount=amount, currency=currency)


def paid(text: str = "応援してます", amount: float = 500, **kw: object) -> Comment:
    return comment(text, kind=CommentKind.SUPER_CHAT, amount=amount, **kw)  # type: ignore[arg-type]


def jewels(jewel_count: float | None = 10, author: Author | None = None) -> Comment:
    """A Jewels gift as YouTube's line says it: "sent Gold coin for 10 Jewels"."""
    n = next(_ids)
    return Comment(id=f"j{n}", author=author or viewer(n), text=f"sent Gold coin for {jewel_count} Jewels",
                   kind=CommentKind.JEWELS, amount=jewel_count, currency="JEWELS", gift_name="Gold coin")


PAID_KINDS = [k for k in CommentKind if k.is_paid]


def reasons(dropped: list[Dropped]) -> list[str]:
    return [d.reason for d in dropped]


# --- the basics ------------------------------------------------------------------------------------------


def test_empty_queue_pops_none() -> None:
    q = SelectionQueue(QueueSettings())
    assert q.pop(0.0) == (None, [])
    assert len(q) == 0


def test_bounded_drops_the_weakest_plain_comment() -> None:
    q = SelectionQueue(QueueSettings(max_size=2))
    question = comment("好きな食べ物は？")
    q.push(question, 0.0)
    plain = comment("こんにちは")
    q.push(plain, 1.0)
    dropped = q.push(comment("やっほー"), 2.0)
    assert len(q) == 2
    assert reasons(dropped) == ["queue_full"]
    assert dropped[0].comment is plain  # equal scores: the older one goes; the question stays
    assert question in q.comments()
    assert q.counts["queue_full"] == 1


def test_stale_on_push_and_pop() -> None:
    q = SelectionQueue(QueueSettings(max_age_s=10.0))
    old = comment()
    q.push(old, 0.0)
    dropped = q.push(comment(), 11.0)
    assert [(d.comment, d.reason) for d in dropped] == [(old, "stale")]
    got, dropped = q.pop(30.0)
    assert got is None and reasons(dropped) == ["stale"]
    assert q.counts["stale"] == 2


def test_remove_a_deleted_comment() -> None:
    q = SelectionQueue(QueueSettings())
    c = comment()
    q.push(c, 0.0)
    assert q.remove(c.id) is c
    assert q.remove(c.id) is None
    assert len(q) == 0 and q.counts["deleted"] == 1


def test_duplicate_push_is_ignored() -> None:
    q = SelectionQueue(QueueSettings())
    c = comment()
    q.push(c, 0.0)
    assert reasons(q.push(c, 1.0)) == ["duplicate"]
    assert len(q) == 1


# --- scoring ---------------------------------------------------------------------------------------------


def test_kind_order() -> None:
    q = SelectionQueue(QueueSettings(thanks_burst_size=0))
    plain = comment("こんにちは")
    question = comment("今日は何するの")
    member = comment("こんにちは", viewer(900, is_member=True))
    new_member = comment("", kind=CommentKind.MEMBERSHIP)
    super_chat = paid()
    for c in (plain, question, member, new_member, super_chat):
        q.push(c, 0.0)
    order = [q.pop(0.0)[0] for _ in range(5)]
    assert order == [super_chat, new_member, member, question, plain]


def test_a_jewels_gift_ranks_with_the_paid_items_by_its_yen_value() -> None:
    q = SelectionQueue(QueueSettings(thanks_burst_size=0))
    gift = jewels(10)
    assert q.yen(gift) == 15.0  # about one US cent, ¥1.5, a Jewel
    new_member = comment("", kind=CommentKind.MEMBERSHIP)
    owner_question = comment("ミカちゃん何してるの？", viewer(901, is_owner=True, is_member=True))
    small_chat = paid(amount=10)
    big_gift = jewels(1000)  # ¥1,500
    big_chat = paid(amount=1000)
    for c in (new_member, owner_question, gift, small_chat, big_gift, big_chat):
        q.push(c, 0.0)
    order = [q.pop(0.0)[0] for _ in range(6)]
    assert order == [big_gift, big_chat, gift, small_chat, new_member, owner_question]


@pytest.mark.parametrize("kind", PAID_KINDS)
def test_every_paid_kind_is_never_dropped_and_is_thanked_when_overdue(kind: CommentKind) -> None:
    q = SelectionQueue(QueueSettings(max_size=1, max_age_s=60.0, paid_max_wait_s=45.0, thanks_burst_size=0,
                                     thanks_settle_s=0.0))
    item = comment("", kind=kind, amount=1.0, currency="JEWELS" if kind is CommentKind.JEWELS else "JPY")
    q.push(item, 0.0)
    plain = comment("こんにちは")
    assert [(d.comment, d.reason) for d in q.push(plain, 1.0)] == [(plain, "queue_full")]  # the paid one stays
    assert q.take_thanks(46.0) == [item]


def test_a_burst_of_jewels_gifts_and_stickers_is_thanked_together() -> None:
    q = SelectionQueue(QueueSettings(thanks_burst_size=3, thanks_burst_window_s=10.0, thanks_settle_s=2.0))
    gift, sticker, other_gift = jewels(10), comment("", kind=CommentKind.SUPER_STICKER, amount=90.0,
                                                   currency="JPY"), jewels(None)
    q.push(gift, 0.0)
    q.push(sticker, 1.0)
    dropped = q.push(other_gift, 2.0)
    assert {d.comment.id for d in dropped} == {gift.id, sticker.id, other_gift.id}
    assert set(reasons(dropped)) == {"paid_thanked"}
    assert q.take_thanks(4.5) == [gift, sticker, other_gift]


def test_bigger_amount_first_across_currencies() -> None:
    q = SelectionQueue(QueueSettings(thanks_burst_size=0))
    small = paid(amount=200)
    big = paid(amount=20, currency="USD")
    q.push(small, 0.0)
    q.push(big, 0.0)
    assert q.pop(0.0)[0] is big


def test_mentioning_the_character_scores_higher() -> None:
    q = SelectionQueue(QueueSettings(character_name="ミク"))
    q.push(comment("こんにちは"), 0.0)
    mention = comment("ﾐｸちゃんこんにちは")
    q.push(mention, 0.0)
    assert q.pop(0.0)[0] is mention


def test_freshness_newer_plain_comment_first() -> None:
    q = SelectionQueue(QueueSettings())
    q.push(comment("a"), 0.0)
    newer = comment("b")
    q.push(newer, 20.0)
    assert q.pop(20.0)[0] is newer


def test_fairness_recently_answered_viewer_waits() -> None:
    q = SelectionQueue(QueueSettings())
    chatty = viewer(1)
    q.push(comment("一つ目", chatty), 0.0)
    assert q.pop(0.0)[0] is not None
    q.push(comment("二つ目", chatty), 1.0)
    other = comment("はじめまして", viewer(2))
    q.push(other, 0.5)
    assert q.pop(1.0)[0] is other


def test_fairness_viewer_with_many_queued_comments_scores_lower() -> None:
    q = SelectionQueue(QueueSettings())
    spammy = viewer(1)
    for i in range(3):
        q.push(comment(f"見て{i}", spammy), 1.0)
    quiet = comment("やっほー", viewer(2))
    q.push(quiet, 0.0)
    assert q.pop(1.0)[0] is quiet


@pytest.mark.parametrize("text", ["好きな食べ物は？", "どうして?", "なんで", "何歳ですか", "教えて", "what is this"])
def test_questions(text: str) -> None:
    assert is_question(text)


@pytest.mark.parametrize("text", ["こんにちは", "どうも", "いつもありがとう", "草"])
def test_not_questions(text: str) -> None:
    assert not is_question(text)


# --- paid messages ---------------------------------------------------------------------------------------


def test_paid_message_waiting_too_long_is_thanked_not_stale() -> None:
    q = SelectionQueue(QueueSettings(max_age_s=60.0, paid_max_wait_s=45.0, thanks_settle_s=2.0))
    sc = paid()
    q.push(sc, 0.0)
    dropped = q.push(comment(), 46.0)
    assert [(d.comment, d.reason) for d in dropped] == [(sc, "paid_thanked")]
    assert q.take_thanks(47.0) == []  # settling
    assert q.take_thanks(48.5) == [sc]
    assert q.take_thanks(60.0) == []
    assert q.counts["stale"] == 0


def test_take_thanks_moves_overdue_paid_messages_itself() -> None:
    q = SelectionQueue(QueueSettings(paid_max_wait_s=10.0, thanks_settle_s=0.0))
    sc = paid()
    q.push(sc, 0.0)
    assert q.take_thanks(5.0) == []
    assert q.take_thanks(11.0) == [sc]
    assert len(q) == 0


def test_burst_of_paid_messages_is_thanked_together() -> None:
    q = SelectionQueue(QueueSettings(thanks_burst_size=3, thanks_burst_window_s=10.0, thanks_settle_s=2.0))
    first, second, third, fourth = paid(), paid(), paid(), paid()
    q.push(first, 0.0)
    q.push(second, 1.0)
    assert len(q) == 2
    dropped = q.push(third, 2.0)
    assert sorted(d.comment.id for d in dropped) == sorted(c.id for c in (first, second, third))
    assert set(reasons(dropped)) == {"paid_thanked"}
    q.push(fourth, 3.0)  # still the same burst
    assert len(q) == 0
    assert q.take_thanks(4.0) == []
    assert q.take_thanks(5.5) == [first, second, third, fourth]


def test_full_of_paid_messages_thanks_the_oldest() -> None:
    q = SelectionQueue(QueueSettings(max_size=2, thanks_burst_size=0, thanks_settle_s=0.0))
    a, b, c = paid(), paid(), paid()
    q.push(a, 0.0)
    q.push(b, 1.0)
    dropped = q.push(c, 2.0)
    assert [(d.comment, d.reason) for d in dropped] == [(a, "paid_thanked")]
    plain = comment()
    assert [(d.comment, d.reason) for d in q.push(plain, 3.0)] == [(plain, "queue_full")]
    assert q.take_thanks(3.0) == [a]


def test_deleted_paid_message_is_not_thanked() -> None:
    q = SelectionQueue(QueueSettings(paid_max_wait_s=1.0, thanks_settle_s=5.0))
    sc = paid()
    q.push(sc, 0.0)
    q.take_thanks(2.0)
    assert q.thanks_pending == 1
    assert q.remove(sc.id) is sc
    assert q.take_thanks(100.0) == []


# --- properties ------------------------------------------------------------------------------------------

op = st.one_of(
    st.tuples(
        st.just("push"), st.sampled_from(["text", "paid", "jewels", "member", "question"]), st.integers(0, 5),
        st.floats(0, 20)
    ),
    st.tuples(st.just("pop"), st.just(""), st.just(0), st.floats(0, 20)),
    st.tuples(st.just("thanks"), st.just(""), st.just(0), st.floats(0, 20)),
    st.tuples(st.just("remove"), st.just(""), st.integers(0, 50), st.floats(0, 5)),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(op, max_size=80),
    st.integers(0, 6),
    st.floats(1, 60),
    st.floats(0, 60),
    st.integers(0, 4),
)
def test_queue_bound_and_no_paid_message_silently_dropped(
    ops: list[tuple[str, str, int, float]], max_size: int, max_age_s: float, paid_wait_s: float, burst: int
) -> None:
    q = SelectionQueue(
        QueueSettings(max_size=max_size, max_age_s=max_age_s, paid_max_wait_s=paid_wait_s, thanks_burst_size=burst)
    )
    now = 0.0
    pushed_paid: dict[str, Comment] = {}
    pushed: list[Comment] = []
    answered: set[str] = set()
    thanked: list[str] = []
    removed: set[str] = set()
    for name, kind, n, dt in ops:
        now += dt
        dropped: list[Dropped] = []
        if name == "push":
            if kind in ("paid", "jewels"):
                c = paid(author=viewer(n)) if kind == "paid" else jewels(n or None, author=viewer(n))
                pushed_paid[c.id] = c
            elif kind == "member":
                c = comment("やあ", viewer(n, is_member=True))
            else:
                c = comment("なに？" if kind == "question" else "やあ", viewer(n))
            pushed.append(c)
            dropped = q.push(c, now)
        elif name == "pop":
            got, dropped = q.pop(now)
            if got is not None:
                answered.add(got.id)
        elif name == "thanks":
            thanked += [c.id for c in q.take_thanks(now)]
        elif pushed:
            target = pushed[n % len(pushed)]
            if q.remove(target.id) is not None:
                removed.add(target.id)
        assert len(q) <= max_size
        for d in dropped:
            if d.comment.kind.is_paid:
                assert d.reason not in ("stale", "queue_full"), d
    queued = {c.id for c in q.comments()}
    thanked += [c.id for c in q.take_thanks(now + 10_000.0)]
    thanked += [c.id for c in q.take_thanks(now + 20_000.0)]  # overdue ones joined at +10,000 s and settled
    assert len(thanked) == len(set(thanked))
    for cid in pushed_paid:
        assert cid in answered or cid in thanked or cid in removed or cid in queued, cid
    assert sum(q.counts[r] for r in ("stale", "queue_full")) <= len(pushed) - len(pushed_paid)


# --- idle talk -------------------------------------------------------------------------------------------


def test_idle_talk_round_robin_with_cooldown() -> None:
    idle = IdleTalk(["天気", "ゲーム", "音楽"], idle_after_s=30.0, cooldown_s=60.0)
    assert idle.due(10.0, last_activity=0.0) is None  # not idle long enough
    assert idle.due(31.0, last_activity=0.0) == "天気"
    assert idle.due(50.0, last_activity=0.0) is None  # cooldown
    assert idle.due(100.0, last_activity=0.0, waiting=2) is None  # comments are waiting
    assert idle.due(100.0, last_activity=0.0) == "ゲーム"
    assert idle.due(200.0, last_activity=0.0) == "音楽"
    assert idle.due(300.0, last_activity=0.0) == "天気"


def test_idle_talk_seeded_shuffle_covers_every_topic() -> None:
    topics = [f"t{i}" for i in range(5)]
    a = IdleTalk(topics, 1.0, 0.0, seed=7)
    b = IdleTalk(topics, 1.0, 0.0, seed=7)
    got = [a.due(float(i + 10), 0.0) or "" for i in range(10)]
    assert got == [b.due(float(i + 10), 0.0) or "" for i in range(10)]
    assert sorted(got[:5]) == topics and sorted(got[5:]) == topics
    assert got != topics + topics  # shuffled, not round-robin
    assert IdleTalk([], 1.0, 0.0).due(100.0, 0.0) is None


def test_take_thanks_leaves_stale_drops_for_push_or_pop_to_report() -> None:
    q = SelectionQueue(QueueSettings(max_age_s=10.0))
    c = comment()
    q.push(c, 0.0)
    assert q.take_thanks(20.0) == []
    assert len(q) == 1 and q.counts["stale"] == 0
    got, dropped = q.pop(20.0)
    assert got is None and [(d.comment, d.reason) for d in dropped] == [(c, "stale")]
