"""The engine's prompt handling: the static persona prefix is exact, and skipped past the model's window."""

from __future__ import annotations

import pytest

from aituber.core.prompt import INSTRUCTION, PromptBuilder
from aituber.engine.base import GenerationOptions
from aituber.engine.ct2 import CTranslate2Engine as Engine

pytestmark = pytest.mark.slow


def greedy(engine: Engine, prompt, static: bool) -> str:
    engine.static_prompt = static
    chunks = engine.generate(prompt, GenerationOptions(max_new_tokens=24, temperature=0, max_chars=None))
    return "".join(chunk.text for chunk in chunks)


def test_static_prefix_gives_the_same_reply_as_the_whole_prompt(tiny_model):
    prompt = PromptBuilder(INSTRUCTION, "あなたはミカです。いちごが大好きだよ。").build("こんにちは", "たろう")
    with Engine(tiny_model, device="cpu", compute_type="float32") as engine:
        static, rest = engine.encode_prompt(prompt)
        assert static is not None and static[0] == "<bos>" and rest[0] != "<bos>"
        whole = greedy(engine, prompt, static=False)
        assert greedy(engine, prompt, static=True) == whole
        assert greedy(engine, prompt, static=True) == whole  # and again, from the cache


def test_a_persona_longer_than_the_window_is_not_cached(tiny_model, caplog):
    prompt = PromptBuilder(INSTRUCTION, "長いペルソナ。" * 40).build("こんにちは")
    with Engine(tiny_model, device="cpu", compute_type="float32") as engine:
        engine.static_prompt_limit = 16
        static, rest = engine.encode_prompt(prompt)
        assert static is None and rest == engine.tokenizer.encode(prompt.text)
        assert "not cached" in caplog.text
