import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from aituber.core.comment import Author
from aituber.core.normalize import fold, name_key, normalize, normalize_spans, squash, strip_invisible, viewer_key

# Text that looks like Japanese chat, with the tricks people use to get around filters.
CHAT_ALPHABET = (
    "しねシネｼﾈﾞﾟ死殺すがガｶﾞぱﾊﾟ今日配信草ーｰ〜・、。！？!?.,/ 　\t\n"
    "abcSHINEｓｈｉｎｅＡＢ123１２３wｗ#<>|:：💢🎉\u200b\u200c\u200d\u2060\ufeff\u00ad\u3164"
)


def test_examples_from_the_spec() -> None:
    assert normalize("し.ね") == "しね"
    assert normalize("死 ね") == "死ね"
    assert normalize("ｓｈｉｎｅ") == "shine"
    assert normalize("s h i n e") == "shine"
    assert normalize("wwwwww") == "www"
    assert normalize("ーーーー") == "ーーー"
    assert normalize("ｗｗｗｗｗｗ草草草草") == "www草草草"


def test_width_case_and_kana_fold_together() -> None:
    assert normalize("シネ") == normalize("しね") == normalize("ｼﾈ") == "しね"
    assert normalize("ｶﾞｲｼﾞ") == "がいじ"
    assert normalize("ＨＥＬＬＯ") == "hello"
    assert normalize("ﾊﾟﾝﾂ") == "ぱんつ"


def test_invisible_and_control_characters_go() -> None:
    assert normalize("し\u200bね") == "しね"
    assert normalize("し\u200d\ufeff\u2060ね") == "しね"
    assert normalize("a\u0000b\u0007c") == "abc"
    assert strip_invisible("a\u200bb\nc") == "ab c"


def test_latin_words_keep_one_space_and_punctuation_goes() -> None:
    assert normalize("Hello,   World!!") == "hello world"
    assert normalize("I am a cat") == "i am a cat"
    assert normalize("こんにちは！ 今日も 配信?") == "こんにちは今日も配信"


def test_symbols_only_text_normalises_to_nothing() -> None:
    assert normalize("！！！🎉🎉？") == ""
    assert normalize("   ") == ""


def test_squash_and_viewer_keys() -> None:
    assert squash("i am a cat") == "iamacat"
    assert name_key("@Taro") == name_key("ｔａｒｏ") == "taro"
    assert viewer_key(Author(name="x", channel_id="UC1")) == "UC1"
    assert viewer_key(Author(name="@X")) == viewer_key(Author(name="x"))


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_normalize_is_idempotent_on_any_text(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=CHAT_ALPHABET, max_size=40))
def test_normalize_is_idempotent_on_chat_like_text(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert "  " not in once and once == once.strip()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=CHAT_ALPHABET, max_size=40))
def test_spans_agree_with_normalize_and_point_into_the_text(text: str) -> None:
    normalized, spans = normalize_spans(text)
    assert normalized == normalize(text)
    assert len(spans) == len(normalized)
    for start, end in spans:
        assert 0 <= start < end <= len(text)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_fold_output_is_nfkc_and_case_folded(text: str) -> None:
    folded = fold(text)
    assert unicodedata.is_normalized("NFKC", folded)
    assert folded.casefold() == folded
    assert not any("\u30a1" <= ch <= "\u30f6" for ch in folded)  # no katakana left
