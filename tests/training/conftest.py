"""A tiny character and a tiny random Llama, trained once per session (a few seconds on a CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TINY_PERSONA = "あなたはミカです。元気に話します。"
TINY_CHARACTER = f'''id = "tiny"
name = "ミカ"
first_person = "ミカ"
sentence_endings = ["だよ"]
persona = "{TINY_PERSONA}"

[generation]
max_new_tokens = 12
temperature = 0.0
'''
TRAIN_ROWS = [
    *({"instruction": comment, "input": "", "output": "ミカだよ！ありがとう"}
      for comment in ("こんにちは", "こんばんは", "すごい！", "歌ってほしいな", "明日も配信ある？", "おやすみなさい",
                      "ゲーム楽しみ", "今日は雨だね", "初見です", "星がきれい", "宿題が終わらない", "ありがとう")),
    {"instruction": "パフェ好き？", "input": "視聴者名: たぬき", "output": "いちごのパフェが大好きだよ！"},
    {"turns": [{"instruction": "やあ", "output": "やあだよ！"}, {"instruction": "元気？", "output": "元気だよ！"}]},
]


def write_character(folder: Path, rows: list[dict] | None = None, extra_toml: str = "") -> Path:
    (folder / "dataset").mkdir(parents=True, exist_ok=True)
    (folder / "character.toml").write_text(TINY_CHARACTER + extra_toml, encoding="utf-8")
    lines = [json.dumps(r, ensure_ascii=False) for r in (TRAIN_ROWS if rows is None else rows)]
    (folder / "dataset" / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "dataset" / "eval.jsonl").write_text(
        '{"instruction": "こんにちは！", "input": ""}\n{"instruction": "元気？", "input": "視聴者名: たろう"}\n'
        '{"instruction": "歌って", "input": ""}\n', encoding="utf-8")
    return folder


#: Quick settings for the tiny model: a high learning rate, no dropout (so runs are comparable).
TINY_OVERRIDES = {"epochs": 3, "batch_size": 4, "learning_rate": 5e-3, "dropout": 0.0, "eval_fraction": 0.2,
                  "max_length": 256}


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_model import build_llama

    return build_llama(tmp_path_factory.mktemp("tiny-base") / "llama")


@pytest.fixture(scope="session")
def tiny_character(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_character(tmp_path_factory.mktemp("tiny-character") / "tiny")


@pytest.fixture(scope="session")
def trained(tiny_base: Path, tiny_character: Path, tmp_path_factory: pytest.TempPathFactory):
    """train_character on the tiny model: adapter, merged float32 CTranslate2 model, the result."""
    from training.train import train_character

    out = tmp_path_factory.mktemp("tiny-trained") / "out"
    return train_character(tiny_character, tiny_base, out, overrides=TINY_OVERRIDES, quantization="float32",
                           progress=lambda line: None, show_bar=False)
