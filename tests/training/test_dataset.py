"""Dataset reading, validation (every problem with FILE:LINE), the seeded split, and labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aituber.core.prompt import INSTRUCTION, PromptBuilder
from training.dataset import (
    IGNORE_INDEX,
    DatasetError,
    Example,
    Exchange,
    PromptEncoder,
    load_comments,
    load_dataset,
    read_examples,
    split_examples,
)


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reads_single_and_multi_turn(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", [
        '{"instruction": "こんにちは", "input": "", "output": "こんにちはだよ"}',
        "",
        '{"instruction": "歌って", "output": "いいよ〜", "input": "視聴者名: たぬき"}',
        '{"turns": [{"instruction": "やあ", "output": "やあ！"}, {"instruction": "元気？", "output": "元気だよ"}]}',
    ])
    examples = load_dataset(path)
    assert [e.source for e in examples] == [f"{path}:1", f"{path}:3", f"{path}:4"]
    assert examples[1].turns == (Exchange("歌って", "いいよ〜", "視聴者名: たぬき"),)
    assert [t.instruction for t in examples[2].turns] == ["やあ", "元気？"]


def test_every_problem_is_reported_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.jsonl", [
        '{"instruction": "ok", "output": "fine"}',
        '{"instruction": "no output"}',
        '{"instruction": "  ", "output": "x"}',
        '{"instruction": "broken", "output": ',
        '{"instruction": "ok", "output": "fine"}',
        '{"instruction": "typo", "outptu": "x", "output": "y"}',
        json.dumps({"instruction": "long", "output": "あ" * 60}, ensure_ascii=False),
        '{"turns": []}',
        '{"turns": [{"instruction": "a", "output": "b"}, {"instruction": "c"}]}',
        '["not", "an", "object"]',
        '{"instruction": 3, "output": "x"}',
    ])
    with pytest.raises(DatasetError) as caught:
        load_dataset(path, max_chars=50)
    problems = caught.value.problems
    expected = {
        2: "missing 'output'", 3: "'instruction' is empty", 4: "bad JSON", 5: "duplicate of line 1",
        6: "unknown key 'outptu'", 7: "characters, over the limit of 50", 8: "'turns' must be a non-empty list",
        9: "turn 2: missing 'output'", 10: "expected an object", 11: "'instruction' must be a string",
    }
    assert len(problems) == len(expected), problems
    for line, reason in expected.items():
        assert any(p.startswith(f"{path}:{line}: ") and reason in p for p in problems), (line, problems)
    assert f"{path}:5: duplicate of line 1" in str(caught.value)


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="file not found"):
        load_dataset(tmp_path / "nope.jsonl")
    with pytest.raises(DatasetError, match="no examples"):
        load_dataset(write(tmp_path / "empty.jsonl", [""]))


def test_eval_comments_need_only_the_instruction(tmp_path: Path) -> None:
    path = write(tmp_path / "eval.jsonl", ['{"instruction": "こんにちは", "input": ""}', '{"input": "x"}'])
    with pytest.raises(DatasetError, match=rf"{path}:2: missing or empty 'instruction'"):
        load_comments(path)


def test_split_is_seeded_disjoint_and_complete() -> None:
    examples = [Example(f"f:{i}", (Exchange(f"c{i}", "r"),)) for i in range(50)]
    train, held = split_examples(examples, 0.2, seed=7)
    assert len(held) == 10 and len(train) == 40
    assert {e.source for e in train} | {e.source for e in held} == {e.source for e in examples}
    assert split_examples(examples, 0.2, seed=7) == (train, held)
    assert split_examples(examples, 0.2, seed=8)[1] != held
    assert split_examples(examples, 0.0, seed=7) == (examples, [])


def char_encoder(persona: str = "ペルソナ", static_prompt: bool = True) -> PromptEncoder:
    """One id per character (ord), BOS 1, EOS 2: easy to read back."""
    return PromptEncoder(PromptBuilder(INSTRUCTION, persona), lambda text: [ord(c) for c in text], bos_id=1,
                         eos_id=2, static_prompt=static_prompt)


def text_of(ids) -> str:
    return "".join(chr(i) for i in ids if i > 2)


def test_loss_is_only_on_the_reply_and_the_end_token() -> None:
    encoder = char_encoder()
    example = Example("f:1", (Exchange("こんにちは", "やっほー", "視聴者名: たぬき"),))
    (item,) = encoder.encode(example)
    prompt, completion = encoder.builder.training_example("こんにちは", "やっほー", "視聴者名: たぬき")
    n_prompt = 1 + len(prompt)
    assert item.input_ids[0] == 1 and text_of(item.input_ids[:n_prompt]) == prompt
    assert prompt.startswith("ペルソナ\n\n") and prompt.endswith("### output:\n")
    assert item.labels[:n_prompt] == (IGNORE_INDEX,) * n_prompt
    assert item.labels[n_prompt:] == item.input_ids[n_prompt:]
    assert text_of(item.labels[n_prompt:]) == completion == "やっほー" and item.labels[-1] == 2
    assert item.prompt_length == n_prompt


def test_multi_turn_trains_each_reply_with_the_earlier_turns_as_memory() -> None:
    """In the "comments" form (the default) the earlier comments, never the earlier replies."""
    encoder = char_encoder()
    example = Example("f:3", (Exchange("やあ", "やあ！", "視聴者名: しお"), Exchange("元気？", "元気だよ")))
    first, second = encoder.encode(example)
    assert second.source == "f:3: turn 2"
    prompt = text_of(second.input_ids[:second.prompt_length])
    assert prompt.endswith("### instruction:\n元気？\n\n### input:\n前のコメント: しお「やあ」\n\n### output:\n")
    assert "やあ！" not in prompt
    assert text_of(l for l in second.labels if l != IGNORE_INDEX) == "元気だよ"
    assert text_of(l for l in first.labels if l != IGNORE_INDEX) == "やあ！"


def test_memory_in_training_is_the_bots_memory_with_viewer_names() -> None:
    """Each remembered turn has its viewer's name, as the bot's memory has it; the form, the number of
    turns and the budget are the bot's."""
    from aituber.core.conversation import Conversation

    turns = (Exchange("こんにちは", "こんにちは！", "視聴者名: たぬき / 前回のコメント: 眠い"),
             Exchange("歌って", "いいよ〜", "視聴者名: ねこ"), Exchange("何歌う？", "星の歌かな", "視聴者名: しお"),
             Exchange("楽しみ", "ありがとう！", "視聴者名: ねこ"))
    for memory in ("comments", "replies"):
        builder = PromptBuilder(INSTRUCTION, "ペルソナ", memory=memory)
        encoder = PromptEncoder(builder, lambda text: [ord(c) for c in text], 1, 2, memory_turns=2,
                                memory_tokens=160)
        bot = Conversation(builder, len, memory_turns=2, memory_tokens=160)
        for turn, item in zip(turns, encoder.encode(Example("f:1", turns)), strict=True):
            viewer = turn.input.split("視聴者名: ")[1].split(" /")[0]
            expected = bot.builder.training_example(turn.instruction, turn.output, turn.input, bot.history())[0]
            assert text_of(item.input_ids[:item.prompt_length]) == expected
            bot.remember(turn.instruction, viewer, turn.output)
        last = text_of(item.input_ids[:item.prompt_length])
        assert "こんにちは" not in last and "視聴者名: ねこ" in last  # two turns kept, with their names


def test_viewer_of_reads_the_name_from_the_input() -> None:
    from training.dataset import viewer_of

    assert viewer_of("視聴者名: たぬき丸") == "たぬき丸"
    assert viewer_of("視聴者名: あおいとり / 前回のコメント: 明日テスト") == "あおいとり"
    assert viewer_of("視聴者名: X/ 地域: 海外") == "X"
    assert viewer_of("天気: 雪") is None and viewer_of("") is None


def test_no_memory_when_the_character_remembers_nothing() -> None:
    encoder = PromptEncoder(PromptBuilder(INSTRUCTION, ""), lambda text: [ord(c) for c in text], 1, 2,
                            memory_turns=0)
    _, second = encoder.encode(Example("f:1", (Exchange("やあ", "やあ！"), Exchange("元気？", "元気だよ"))))
    assert text_of(second.input_ids[:second.prompt_length]) == "### instruction:\n元気？\n\n### output:\n"


def test_over_long_in_tokens_names_the_line() -> None:
    encoder = char_encoder()
    examples = [Example("d.jsonl:1", (Exchange("短い", "うん"),)), Example("d.jsonl:2", (Exchange("長い" * 40, "うん"),))]
    with pytest.raises(DatasetError, match=r"d.jsonl:2: \d+ tokens with the prompt, over max_length 60"):
        encoder.encode_all(examples, max_length=60)
    assert len(encoder.encode_all(examples[:1], max_length=60)) == 1


def test_static_prefix_is_tokenized_on_its_own_like_the_engine() -> None:
    """The engine encodes the persona prefix and the rest separately; training must too."""
    pieces: list[str] = []

    def encode(text: str) -> list[int]:
        pieces.append(text)
        return [ord(c) for c in text]

    encoder = PromptEncoder(PromptBuilder(INSTRUCTION, "ペルソナ"), encode, 1, 2, static_prompt=True)
    encoder.encode(Example("f:1", (Exchange("やあ", "うん"),)))
    assert pieces[:2] == ["ペルソナ\n\n", "### instruction:\nやあ\n\n### output:\n"]
    pieces.clear()
    PromptEncoder(PromptBuilder(INSTRUCTION, "ペルソナ"), encode, 1, 2, static_prompt=False).encode(
        Example("f:1", (Exchange("やあ", "うん"),)))
    assert pieces[0] == "ペルソナ\n\n### instruction:\nやあ\n\n### output:\n"


def test_sample_dataset_is_valid(sample_character: Path) -> None:
    examples, problems = read_examples(sample_character / "dataset" / "train.jsonl")
    assert problems == [] and len(examples) >= 300
    comments = load_comments(sample_character / "dataset" / "eval.jsonl")
    assert not {e.turns[0].instruction for e in examples} & {c.instruction for _, c in comments}
