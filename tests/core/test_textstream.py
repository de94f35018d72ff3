from hypothesis import given
from hypothesis import strategies as st

from aituber.core.textstream import IncrementalDecoder, ReplyShaper, clean_text


def byte_decode(ids: list[int]) -> str:
    """A byte-level 'tokenizer': each id is one byte (what byte-fallback pieces look like)."""
    return bytes(ids).decode("utf-8", errors="replace")


def test_multibyte_characters_come_out_whole():
    decoder = IncrementalDecoder(byte_decode)
    deltas = [decoder.push(b) for b in "こんにちは🍓!".encode()]
    assert all("\ufffd" not in d for d in deltas)
    assert [d for d in deltas if d] == ["こ", "ん", "に", "ち", "は", "🍓", "!"]


def test_invalid_bytes_are_dropped_not_shown():
    decoder = IncrementalDecoder(byte_decode)
    out = "".join(decoder.push(b) for b in b"a\xff\xfeb\xe3\x81")  # junk, then a cut-off character
    out += decoder.flush()
    assert out == "ab"


@given(st.text(max_size=40))
def test_decoding_any_text_byte_by_byte_gives_it_back(text):
    decoder = IncrementalDecoder(byte_decode)
    out = "".join(decoder.push(b) for b in text.encode()) + decoder.flush()
    assert out == clean_text(text)


def shape(pieces, stops=("###", "\n\n"), max_chars=None):
    shaper = ReplyShaper(stops, max_chars)
    deltas = [shaper.feed(p) for p in pieces]
    deltas.append(shaper.finish())
    return "".join(deltas), shaper.stop_reason, deltas


def test_stop_string_split_across_pieces_is_never_shown():
    text, reason, deltas = shape(["やっほー", "だよ", "\n", "\n", "#", "## instruction"])
    assert text == "やっほーだよ" and reason == "stop"
    assert not any("\n" in d or "#" in d for d in deltas)


def test_partial_marker_at_the_end_is_held_then_released_when_it_was_not_a_stop():
    text, reason, _ = shape(["C#", "の勉強", "\nしてる"])
    assert text == "C#の勉強\nしてる" and reason == "stop"


def test_leading_and_trailing_space_trimmed():
    assert shape(["\n  ", " はい", "  "])[0] == "はい"


def test_max_chars_caps_and_reports_length():
    text, reason, _ = shape(["あいうえお", "かきくけこ"], max_chars=7)
    assert text == "あいうえおかき" and reason == "length"


@given(st.lists(st.text(alphabet="ab#\n 。", max_size=6), max_size=12))
def test_deltas_join_to_a_text_without_stop_strings(pieces):
    text, _, _ = shape(pieces)
    assert "###" not in text and "\n\n" not in text
    assert text == text.strip()


def test_clean_text_keeps_newlines_drops_controls():
    assert clean_text("a\x04b\nc\td\x7f\ufffd") == "ab\nc d"


from aituber.core.textstream import SentenceSplitter, cut_at_last_sentence  # noqa: E402


def split(pieces):
    s = SentenceSplitter()
    out = [x for p in pieces for x in s.feed(p)]
    return out + s.flush()


def test_sentences_split_on_japanese_and_ascii_marks_and_newlines():
    assert split(["こんにちは！今日", "は晴れだね。", "元気？ yes! ", "next\nline"]) == [
        "こんにちは！", "今日は晴れだね。", "元気？", "yes!", "next", "line"]


def test_sentence_marks_and_closers_stay_together():
    assert split(["「すごい！", "」って言った", "よ！？", "ほんと…"]) == ["「すごい！」", "って言ったよ！？", "ほんと…"]


@given(st.lists(st.text(alphabet="あい。！？!?\n 」", max_size=5), max_size=10))
def test_sentences_cover_the_text(pieces):
    text = "".join(pieces)
    sentences = split(pieces)
    assert "".join("".join(x.split()) for x in sentences) == "".join(text.split())
    assert all(x == x.strip() and x for x in sentences)


def test_cut_at_last_sentence():
    assert cut_at_last_sentence("いちごが好きだよ！パフェも食べた") == "いちごが好きだよ！"
    assert cut_at_last_sentence("句点なしの長い文") == "句点なしの長い文"
    assert cut_at_last_sentence("一文目。二文目」。三") == "一文目。二文目」。"
