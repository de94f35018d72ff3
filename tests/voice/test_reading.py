"""Reading normalisation and clause splitting: pure, no engine (one test checks the readings with
OpenJTalk's own analysis)."""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aituber.voice.clauses import ClauseSplitter
from aituber.voice.english import spell, to_katakana
from aituber.voice.numbers import integer_to_kanji, number_to_kanji
from aituber.voice.reading import ReadingRules, to_reading

RULES = ReadingRules(english=to_katakana)


@pytest.mark.parametrize(("text", "want"), [
    ("それは＊＊＊って意味だよ", "それは、って意味だよ"),  # a masked NG word is a pause
    ("＊＊＊！", ""),
    ("これ見て https://example.com/x?y=1 すごい", "これ見て すごい"),
    ("www.youtube.com見た？", "見た？"),
    ("おはよう😊✨🎉", "おはよう"),
    ("よろしくね(*^▽^*)", "よろしくね"),
    ("それは草ｗｗｗ", "それはあはは"),
    ("草生えるw", "あはは"),
    ("まじかw", "まじかあはは"),
    ("草原に行こう", "草原に行こう"),  # not laughter
    ("薬草。", "薬草。"),
    ("1,200円だよ", "千二百円だよ"),
    ("12:30に集合！", "十二時三十分に集合！"),
    ("3/14はホワイトデー", "三月十四日はホワイトデー"),
    ("5km走った", "五キロメートル走った"),
    ("30%オフ", "三十パーセントオフ"),
    ("¥500", "五百円"),
    ("気温は25℃", "気温は二十五度"),
    ("3.14", "三点一四"),
    ("0120-333-906", "〇一二〇、三三三、九〇六"),
    ("AIのVTuberだよ", "エーアイのブイチューバーだよ"),
    ("Minecraftやろう", "マインクラフトやろう"),
    ("hello world", "ハロー ワールド"),
    ("FPSゲーム", "エフピーエスゲーム"),
])
def test_reading(text, want):
    assert to_reading(text, RULES) == want


def test_reading_rules_are_parameters():
    assert to_reading("草ｗ", ReadingRules(laughter="ふふっ")) == "ふふっ"
    assert to_reading("それな草", ReadingRules(laughter="")) == "それな"
    assert to_reading("hello", ReadingRules()) == "hello"  # no lookup: the engine reads it its own way


def test_numbers():
    assert integer_to_kanji(0) == "〇"
    assert integer_to_kanji(10) == "十" and integer_to_kanji(1000) == "千" and integer_to_kanji(10000) == "一万"
    assert integer_to_kanji(123456789) == "一億二千三百四十五万六千七百八十九"
    assert integer_to_kanji(-3) == "マイナス三"
    assert number_to_kanji("007") == "〇〇七" and number_to_kanji("1.05") == "一点〇五"
    assert number_to_kanji("1" * 25) == "一" * 25


def test_english_lookup():
    assert to_katakana("YouTube") == "ユーチューブ"
    assert to_katakana("NG") == "エヌジー" and spell("obs") == "オービーエス"
    assert to_katakana("game") is not None
    assert to_katakana("zzqxjw") is None  # unknown: left to the engine


def test_openjtalk_reads_the_normalised_text_as_meant():
    with contextlib.redirect_stdout(io.StringIO()):
        import pyopenjtalk

    def kana(text: str) -> str:
        return pyopenjtalk.g2p(to_reading(text, RULES), kana=True)

    assert kana("12:30") == "ジューニジサンジュップン"
    assert kana("1,200円") == "センニヒャクエン"
    assert kana("5km") == "ゴキロメートル"
    assert "アスタリスク" not in kana("それは＊＊だよ") and kana("それは＊＊だよ").startswith("ソレワ")
    assert "ダブリュー" not in kana("まじかwww")


def split_all(pieces: list[str], **kw) -> list[str]:
    splitter = ClauseSplitter(**kw)
    out = []
    for piece in pieces:
        out += splitter.feed(piece)
    return out + splitter.flush()


def test_clauses_at_sentence_ends_and_long_enough_commas():
    text = "こんにちは、ミカだよ。今日はとってもいい天気だから、お散歩に行きたいな！また来てね"
    assert split_all(list(text)) == ["こんにちは、", "ミカだよ。", "今日はとってもいい天気だから、",
                                     "お散歩に行きたいな！", "また来てね"]
    # After the first clause, a short phrase before 、 stays with what follows.
    assert split_all(["うん。そう、だよね。"]) == ["うん。", "そう、だよね。"]


def test_a_mark_at_the_end_waits_for_what_follows():
    splitter = ClauseSplitter()
    assert splitter.feed("ほんと！") == []
    assert splitter.feed("？すごい") == ["ほんと！？"]
    assert splitter.feed("「やった。") == []
    assert splitter.feed("」って") == ["すごい「やった。」"]
    assert splitter.flush() == ["って"]


def test_a_long_first_clause_is_cut_at_a_phrase_end():
    from aituber.core.morphemes import phrase_ends

    text = "いちごパフェは毎日食べても飽きないくらい大好きなんだよね。"
    assert phrase_ends("いちごパフェは大好き") == [len("いちごパフェは")]
    assert phrase_ends("君のことが好き") == [len("君のことが")]  # not after の (君の|こと)
    # Streamed token by token: the first clause ends at a particle once past 10 characters, not at
    # whatever has arrived (the word there may go on), and only the first clause is cut that way.
    fed = [text[i:i + 2] for i in range(0, len(text), 2)]
    clauses = split_all(fed, first_max_chars=10, phrase_ends=phrase_ends)
    assert "".join(clauses) == text
    assert clauses[0] in ("いちごパフェは", "いちごパフェは毎日食べても") and len(clauses) == 2
    # Without the limit (or the analyser) the first clause runs to the sentence end.
    assert split_all(fed) == [text]
    assert split_all(fed, first_max_chars=10) == [text]


def test_a_long_run_without_marks_is_cut():
    clauses = split_all(["あ" * 130], max_chars=60)
    assert [len(c) for c in clauses] == [60, 60, 10]
    clauses = split_all(["one two three four five six seven eight nine ten eleven twelve"], max_chars=20,
                        min_chars=5)
    assert all(len(c.replace(" ", "")) <= 20 for c in clauses) and "".join(clauses).count(" ") == 11
    assert all(c.endswith(" ") for c in clauses[:-1])  # cut at spaces, not inside words


@given(st.lists(st.text(alphabet="あいう、。！？!? \nabc「」", max_size=12), max_size=20),
       st.integers(1, 12), st.integers(12, 40))
def test_clauses_join_back_to_the_text(pieces, min_chars, max_chars):
    splitter = ClauseSplitter(min_chars=min_chars, max_chars=max_chars)
    out = []
    for piece in pieces:
        out += splitter.feed(piece)
    out += splitter.flush()
    text, joined = "".join(pieces), "".join(out)
    assert text.startswith(joined) and not text[len(joined):].strip()  # exact slices; only white space is left out
    assert all(c.strip() for c in out)
