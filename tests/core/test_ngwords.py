"""NG-word matching that knows Japanese words: the labelled corpus, and each failure issue 14 found."""

from pathlib import Path

import pytest

from aituber.bench import moderation as bench
from aituber.core.comment import Author, Comment, CommentKind
from aituber.core.moderation import ModerationSettings, Moderator
from aituber.core.morphemes import morphemes
from aituber.core.ngwords import NgMatcher, builtin_matcher, evasion_form, load_builtin_allow_words
from tests.core.ng_corpus.generate import benign_corpus, evasive_corpus

VIEWER = Author(name="taro", channel_id="UC_taro")
CORPUS = Path(__file__).resolve().parent / "ng_corpus"


def open_moderator() -> Moderator:
    """Only the NG filters decide: no repeat, flood or per-viewer limits."""
    return Moderator(ModerationSettings(flood_threshold=0, near_duplicate_window_s=0.0, max_answers_per_viewer=0))


def check(moderator: Moderator, text: str) -> str | None:
    return moderator.check(Comment(id="c", author=VIEWER, text=text), 0.0)


# --- the labelled corpus ---------------------------------------------------------------------------------


def test_corpus_is_large_enough_and_labelled_by_rule() -> None:
    evasive, benign = evasive_corpus(), benign_corpus()
    assert len(evasive) >= 300 and len(benign) >= 300
    rules = {rule for _, rule in evasive}
    assert rules >= {"homoglyph", "mask", "leet", "stretched", "kanji_lookalike", "latin_touching_japanese", "hand"}
    assert not {text for text, _ in evasive} & set(benign)


def test_corpus_recall_and_false_positives_meet_the_targets(capsys: pytest.CaptureFixture[str]) -> None:
    """What `aituber bench moderation` reports (its ingest run left out: that one is a timing)."""
    assert bench.main(["--ingest", "0", "--corpus", str(CORPUS)]) == 0
    out = capsys.readouterr().out
    assert "NG corpus: recall" in out and "targets: recall >= 98%, false positives <= 1%: met" in out
    result = bench.run_corpus(bench.load_corpus(CORPUS))
    assert result["recall"] >= 0.98, result["missed"]
    assert result["false_positive_rate"] <= 0.01, result["blocked"]


def test_the_bench_says_where_the_corpus_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--ingest", "0", "--corpus", str(tmp_path)]) == 2
    assert "no NG corpus" in capsys.readouterr().out


def test_every_rule_of_the_corpus_is_caught_in_replies_too() -> None:
    """The model's reply goes through the same matcher: each evasion is masked, in place."""
    moderator = open_moderator()
    for text, rule in evasive_corpus():
        if rule == "hand":
            continue
        verdict = moderator.filter_output(f"ねえ、{text}。")
        assert verdict.hits and not verdict.dropped, text
        assert len(verdict.text) == len(text) + 4 and verdict.text.startswith("ねえ、") and verdict.text.endswith("。")
        assert not moderator.ng_hits(verdict.text), (text, verdict.text)


# --- issue 14: evasions that got through -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # Cyrillic and Greek letters inside romaji
        "kоrоsu", "fuсk you", "kіll yourself", "ѕex", "κys",
        # 伏字 masks in place of a kana
        "ち○こ", "ま〇こ", "キチ●イ", "セッ×ス", "オナ＊ー", "レ◯プ",
        # digits and punctuation inside words
        "k0r0su", "f*ck you", "f**k you", "k1ll yourself", "sh1ne yo", "n1gg3r", "ky$",
        # stretched words
        "しーね", "しっっね", "きもーい", "ころーす", "fuuuck you", "kkorosu",
        # kanji that look like katakana
        "コ口ス", "二ガー", "工口い", "夕ヒね", "オ力マ野郎",
        # English and romaji touching Japanese text
        "お前korosu", "fuck youだよ", "まじでkys", "retardｗｗｗ", "sexしたい",
    ],
)  # fmt: skip
def test_evasions_issue_14_found_are_caught(text: str) -> None:
    assert check(open_moderator(), text) == "ng_word"


# --- issue 14: ordinary chat that was blocked ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "こころすっきり",  # こころ|すっきり
        "楽しいですしね",  # です|し|ね
        "わたしね、今日",
        "少し、ねむい",
        "いちまんこ売れたって",  # 一万個
        "登録者ひゃくまんこえた！",  # 百万超えた
        "パチンコ行ってきた",
        "ロマンコメディ好き",
        "途中出したら止まった",
        "ドキドキもいいね",
        "相殺すると0になるね",
        "このコーヒーにがーい",
        "必死ねー",
    ],
)
def test_ordinary_chat_issue_14_found_blocked_passes(text: str) -> None:
    assert check(open_moderator(), text) is None


@pytest.mark.parametrize(
    "text",
    ["わたしね、今日", "ころすけ懐かしい", "そんなことしねえよ", "shineって英語で輝くって意味だよ", "Essexから見てます"],
)
def test_near_misses_the_old_lookarounds_spared_are_still_spared(text: str) -> None:
    assert check(open_moderator(), text) is None


@pytest.mark.parametrize("text", ["死ねぇぇぇ", "しねええええ", "し.ね", "ｼﾈ", "死 ね", "しねしねしね", "キ チ ガ イ"])
def test_what_was_caught_before_still_is(text: str) -> None:
    assert check(open_moderator(), text) == "ng_word"


def test_a_word_that_is_only_the_entry_repeated_is_a_hit() -> None:
    matcher = NgMatcher(["ばか"])
    assert matcher.hits("ばかばかばか") == ("ばか",)  # the analyser reads ばかばか as one adverb


def test_the_allow_list_only_clears_hits_inside_its_words() -> None:
    assert "いちまんこ" in load_builtin_allow_words()
    matcher = builtin_matcher()
    assert not matcher.matches("いちまんこ")
    assert matcher.matches("いちまんこ、まんこ")  # the second one stands alone


def test_evasion_form_keeps_indices_and_leaves_plain_chat_alone() -> None:
    assert evasion_form("こんにちは、今日もいい天気") is None
    assert evasion_form("一緒に見よう") is None  # a look-alike kanji only counts among katakana
    for text in ("ち○こ", "kоrоsu", "コ口ス", "f@g", "二ガー"):
        form = evasion_form(text)
        assert form is not None and len(form) == len(text)
    assert evasion_form("コ口ス") == "コロス"
    assert evasion_form("kоrоsu") == "korosu"


def test_masks_in_a_reply_map_back_to_the_original_text() -> None:
    moderator = open_moderator()
    text = "ﾊﾟﾁﾝｺじゃなくて、ｺ ﾛ ｽって言った？　お前korosu！"
    verdict = moderator.filter_output(text)
    assert verdict.text == "ﾊﾟﾁﾝｺじゃなくて、＊＊＊＊＊って言った？　お前＊＊＊＊＊＊！"


def test_the_analyser_survives_what_mecab_cannot_read() -> None:
    moderator = open_moderator()
    for text in ("\x00死ね", "し\x00ね", "\ud800ころす", "死ね\udfff"):
        assert check(moderator, text) == "ng_word", repr(text)


def test_names_are_matched_the_same_way() -> None:
    moderator = open_moderator()
    assert moderator.check(Comment(id="c", author=Author(name="kоrоsu"), text="こんにちは"), 0.0) == "ng_name"
    assert moderator.check(Comment(id="c", author=Author(name="こころすっきり"), text="こんにちは"), 0.0) is None


def test_paid_messages_are_matched_too() -> None:
    paid = Comment(id="p", author=VIEWER, text="ち○こ", kind=CommentKind.SUPER_CHAT, amount=500.0)
    assert open_moderator().check(paid, 0.0) == "ng_word"


def test_morphemes_give_words_with_offsets_into_the_text() -> None:
    text = "楽しいですしね、ｼﾈ"
    words = morphemes(text)
    assert words is not None
    assert [text[start:end] for start, end, _ in words][:4] == ["楽しい", "です", "し", "ね"]
    assert [pos for _, _, pos in words][:4] == ["形容詞", "助動詞", "助詞", "助詞"]
    assert all(a[1] <= b[0] for a, b in zip(words, words[1:]))


def test_without_the_analyser_matching_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    import aituber.core.morphemes as morphemes_module

    monkeypatch.setattr(morphemes_module._Analyser, "_tagger", None)
    monkeypatch.setattr(morphemes_module._Analyser, "_failed", True)
    morphemes_module.morphemes.cache_clear()
    try:
        matcher = NgMatcher(["ころす"])
        assert matcher.matches("ころすぞ")
        assert matcher.matches("こころすっきり")  # more is blocked, nothing gets through
    finally:
        morphemes_module.morphemes.cache_clear()
