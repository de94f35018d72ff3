"""The streaming output guard: nothing shown ever contains an NG word, however the text is split."""

from hypothesis import given, settings
from hypothesis import strategies as st

from aituber.core.moderation import ModerationSettings, Moderator
from aituber.core.outputguard import OutputGuard

MODERATOR = Moderator(ModerationSettings(ng_words=("ばか", "re:くそ+がき")))


def stream(pieces, moderator=MODERATOR):
    guard = OutputGuard(moderator)
    shown = [guard.feed(p) for p in pieces]
    shown.append(guard.finish())
    return shown, guard


def test_a_word_split_across_pieces_is_masked_before_it_is_shown():
    shown, _ = stream(["こんにちは、", "ば", "か", "だね。"])
    assert "".join(shown) == "こんにちは、＊＊だね。"
    assert not any("ば" in part for part in shown)


def test_plain_text_flows_without_waiting():
    shown, _ = stream(["きょうは", "いい天気", "だよ！"])
    assert shown[:3] == ["きょうは", "いい天気", "だよ！"]


def test_drop_setting_withdraws_the_reply():
    moderator = Moderator(ModerationSettings(ng_words=("ばか",), output_ng_action="drop"))
    shown, guard = stream(["いい", "ば", "か"], moderator)
    assert guard.dropped and "ば" not in "".join(shown)


WORDS = ["ばか", "バカ", "くそがき", "くそおおがき", "いちご", "ゲーム", "、", "。", "ね", "ば", "か", " "]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=12), st.data())
def test_nothing_shown_contains_an_ng_word(words, data):
    text = "".join(words)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=6)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
    shown, guard = stream(pieces)
    for i in range(1, len(shown) + 1):  # at every moment, what is on screen is clean
        assert not MODERATOR.ng_hits("".join(shown[:i]))
    if not guard.dropped:
        assert "".join(shown) == MODERATOR.filter_output(text).text
