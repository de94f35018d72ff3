"""The sample character's data: enough original exchanges, varied openings, multi-turn sessions that do
not echo, held-out eval comments (with `expect` keywords) and a held-out chat log kept out of training."""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from aituber.core.comment import CommentKind
from aituber.sources.base import SourceStats
from aituber.sources.replay import read_chat_log
from training.dataset import Example, load_comments, read_examples

MIKA = Path(__file__).resolve().parents[2] / "characters" / "mika"
TRAIN = MIKA / "dataset" / "train.jsonl"
EVAL = MIKA / "dataset" / "eval.jsonl"
HELDOUT_CHAT = MIKA / "heldout_chat.jsonl"
SAMPLE_CHAT = MIKA / "sample_chat.jsonl"
MARKERS = ("ミカ", "だよ", "だね", "かな", "よ〜")  # first person and sentence endings (character.toml)
NEAR_SAME = 0.85


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    examples, problems = read_examples(TRAIN)
    assert problems == []
    return examples


def replies(examples: list[Example]) -> list[str]:
    return [turn.output for example in examples for turn in example.turns]


def norm(text: str) -> str:
    """NFKC, lower case, katakana as hiragana, letters and digits only."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")
    return "".join(chr(ord(ch) - 0x60) if "ァ" <= ch <= "ヶ" else ch for ch in text)


def message(text: str) -> str:
    """The viewer's own words: without a leading paid-event tag such as 【スーパーチャット ¥500】."""
    return norm(re.sub(r"^【[^】]*】", "", text.strip()))


def near_same(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Texts as (norm, message): the same normalised text, or own words at least NEAR_SAME alike."""
    if a[0] == b[0]:
        return True
    ma, mb = a[1], b[1]
    if not ma or not mb or 2 * min(len(ma), len(mb)) / (len(ma) + len(mb)) < NEAR_SAME:
        return False
    matcher = difflib.SequenceMatcher(None, ma, mb)
    return matcher.quick_ratio() >= NEAR_SAME and matcher.ratio() >= NEAR_SAME


def test_enough_original_exchanges_and_sessions(examples: list[Example]) -> None:
    assert sum(len(e.turns) for e in examples) >= 1000
    sessions = [e for e in examples if len(e.turns) > 1]
    assert len(sessions) >= 150
    assert all(2 <= len(e.turns) <= 4 for e in sessions)


def test_openings_are_varied(examples: list[Example]) -> None:
    texts = replies(examples)
    (opening, count), = Counter(t[:3] for t in texts).most_common(1)
    assert count / len(texts) <= 0.05, f"{opening!r} opens {count} of {len(texts)} replies"
    assert sum(t.startswith("ごめん") for t in texts) / len(texts) <= 0.01
    assert max(Counter(texts).values()) == 1  # no reply written twice


def test_replies_are_short_and_in_character(examples: list[Example]) -> None:
    texts = replies(examples)
    lengths = sorted(len(t) for t in texts)
    assert lengths[len(lengths) // 2] <= 40 and lengths[-1] <= 80
    assert sum(any(m in t for m in MARKERS) for t in texts) / len(texts) >= 0.9


def strip_names(text: str, names: list[str]) -> str:
    for name in names:
        text = text.replace(name + "さん", "＃").replace(name, "＃")
    return text


def test_sessions_do_not_echo_earlier_replies(examples: list[Example]) -> None:
    """A later reply shares no run of 6 characters with an earlier reply of its session (viewer names
    and the comment being answered aside): the data must not teach copying from memory."""
    echoes = []
    for example in (e for e in examples if len(e.turns) > 1):
        names = sorted({t.input.removeprefix("視聴者名: ") for t in example.turns if t.input}, key=len, reverse=True)
        for k, turn in enumerate(example.turns[1:], start=1):
            reply = strip_names(turn.output, names)
            runs = {reply[i:i + 6] for i in range(len(reply) - 5)}
            for earlier in example.turns[:k]:
                shared = {r for r in runs if r in strip_names(earlier.output, names) and r not in turn.instruction}
                if shared:
                    echoes.append((example.source, k + 1, min(shared)))
    assert echoes == []


def test_no_eval_comment_in_training(examples: list[Example]) -> None:
    def key(text: str) -> tuple[str, str]:
        return norm(text), message(text)

    trained = {t.instruction: key(t.instruction) for e in examples for t in e.turns}
    held_out = {ex.instruction: key(ex.instruction) for _, ex in load_comments(EVAL)}
    clashes = [(c, t) for c, ck in held_out.items() for t, tk in trained.items() if near_same(ck, tk)]
    assert clashes == []


def test_eval_comments_carry_expect_keywords() -> None:
    lines = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(load_comments(EVAL)) == len(lines)
    with_expect = [line for line in lines if "expect" in line]
    assert len(with_expect) >= 100
    for line in with_expect:
        expect = line["expect"]
        assert isinstance(expect, list) and expect, line
        assert all(isinstance(k, str) and k.strip() == k and k for k in expect), line
        assert len(set(expect)) == len(expect), line


def test_heldout_chat_replays_and_stays_out_of_training(examples: list[Example]) -> None:
    stats = SourceStats()
    items = list(read_chat_log(HELDOUT_CHAT, HELDOUT_CHAT.read_bytes(), stats, strict=True))
    assert 60 <= len(items) <= 80 and not stats.skipped
    kinds = Counter(i.kind for i in items)
    assert kinds[CommentKind.SUPER_CHAT] >= 2 and kinds[CommentKind.MEMBERSHIP] >= 1
    trained = {t.instruction for e in examples for t in e.turns}
    sample = {json.loads(line)["text"] for line in SAMPLE_CHAT.read_text(encoding="utf-8").splitlines() if line.strip()}
    texts = [i.text for i in items if i.text]  # a sticker has no text
    assert [t for t in texts if t in trained or t in sample] == []
