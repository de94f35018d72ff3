"""The streaming output guard: what it shows is exactly what the whole-text filter makes of the reply,
however the text is split, and nothing shown ever contains an NG word."""

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
    shown, _ = stream(["きょうも", "いい天気", "だよ！"])
    assert shown[:3] == ["きょうも", "いい天気", "だよ！"]


def test_a_last_kana_that_a_voicing_mark_could_turn_into_an_ng_word_waits():
    shown, _ = stream(["きょうは", "゙か"])  # は + ゙ = ば: "きょうばか"
    assert shown[0] == "きょう" and "".join(shown) == "きょう＊＊＊"


def test_drop_setting_withdraws_the_reply():
    moderator = Moderator(ModerationSettings(ng_words=("ばか",), output_ng_action="drop"))
    shown, guard = stream(["いい", "ば", "か"], moderator)
    assert guard.dropped and "ば" not in "".join(shown)


WORDS = ["ばか", "バカ", "くそがき", "くそおおがき", "いちご", "ゲーム", "、", "。", "ね", "ば", "か", " "]


def split(text, cuts):
    cuts = sorted(cuts)
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=12), st.data())
def test_nothing_shown_contains_an_ng_word(words, data):
    text = "".join(words)
    shown, guard = stream(split(text, data.draw(st.lists(st.integers(0, len(text)), max_size=6))))
    final = MODERATOR.filter_output(text)
    assert not MODERATOR.ng_hits(final.text)
    if not guard.dropped:
        assert "".join(shown) == final.text


# Pieces that normalisation or the analyser read together with their neighbours: half-width kana and
# their voicing marks (ﾊ + ﾞ = バ), combining marks, emoji with skin tones and ZWJ, variation
# selectors, the halves of a surrogate pair, NG words and the ordinary words that hold their letters.
TRICKY = [
    "ばか", "ﾊﾞｶ", "ﾊ", "ﾞ", "ﾟ", "ｶ", "ｶﾞ", "は", "\u3099", "\u309a", "か", "死ね", "しね", "ころす", "け",
    "こころすっきり", "楽しいですしね", "わたしね", "ちんこ", "ち○こ", "パチンコ", "korosu", "お前", "fuck you",
    "だよ", "e\u0301", "\u0301", "😀", "👍🏽", "👨\u200d👩\u200d👧", "\ufe0f", "\U000e0100", "\ud83d", "\ude00",
    "、", " ", "。", "ね", "いい天気", "ｼ", "ﾈ", "二", "ガ", "ー",
]  # fmt: skip
BUILTIN = Moderator(ModerationSettings(ng_words=("ばか", "re:くそ+がき")))


@settings(max_examples=250, deadline=None)
@given(st.lists(st.sampled_from(TRICKY), max_size=10), st.data())
def test_the_guard_emits_what_the_whole_text_filter_emits_for_every_split(words, data):
    text = "".join(words)
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=8))
    shown, guard = stream(split(text, cuts), BUILTIN)
    final = BUILTIN.filter_output(text)
    assert guard.dropped == final.dropped
    if not final.dropped:
        assert "".join(shown) == final.text, (text, cuts, shown)


def test_every_split_point_of_a_half_width_word_with_voicing_marks():
    # Issue 14: split between ﾊ and ﾞ, part of the NG word was shown before the mask.
    text = "きょうはﾊﾞｶだね"
    final = BUILTIN.filter_output(text).text
    assert final == "きょうは＊＊＊だね"
    for cut in range(len(text) + 1):
        shown, _ = stream([text[:cut], text[cut:]], BUILTIN)
        assert "".join(shown) == final, cut
        assert "ﾊ" not in shown[0]


def test_every_split_point_of_benign_text_that_holds_ng_letters():
    # Issue 14: at some split points, benign text was masked that the whole-text filter leaves alone.
    for text in ("ころすけかわいい", "こころすっきりしたね", "楽しいですしね", "パチンコ屋さん"):
        assert BUILTIN.filter_output(text).text == text
        for cut in range(len(text) + 1):
            shown, _ = stream([text[:cut], text[cut:]], BUILTIN)
            assert "".join(shown) == text, (text, cut)
