"""The benchmarks run end to end on tiny models and return their figures (no timing is asserted)."""

from __future__ import annotations

import pytest

from aituber.bench import engine as engine_bench
from aituber.bench.pipeline import format_table as pipeline_table
from aituber.bench.pipeline import run_pipeline_bench

pytestmark = pytest.mark.slow

SIDE_KEYS = {"precision", "first_token_s", "full_reply_s", "tokens_per_s", "tokens", "memory_mib", "memory_kind"}


def check_engine_result(result: dict, new_tokens: int, prompts: int) -> None:
    assert {"model", "device", "new_tokens", "prompt_tokens", "transformers", "ctranslate2", "speedup",
            "first_token_speedup", "memory_ratio"} <= set(result)
    for side in ("transformers", "ctranslate2"):
        assert SIDE_KEYS <= set(result[side])
        assert result[side]["tokens"] == [new_tokens] * prompts  # exactly N new tokens, EOS or not
        assert result[side]["full_reply_s"] >= result[side]["first_token_s"] > 0
        assert result[side]["tokens_per_s"] == pytest.approx(new_tokens / result[side]["full_reply_s"])
    a, b = result["transformers"], result["ctranslate2"]
    assert result["speedup"] == pytest.approx(a["full_reply_s"] / b["full_reply_s"])
    assert result["first_token_speedup"] == pytest.approx(a["first_token_s"] / b["first_token_s"])
    table = engine_bench.format_table(result)
    assert "transformers" in table and "ctranslate2" in table and "ratio" in table


def test_engine_bench_on_a_converted_model(tiny_models):
    lines: list[str] = []
    result = engine_bench.run_engine_bench(tiny_models("llama").ct2, new_tokens=5, prompts=("こんにちは", "歌って！"),
                                           device="cpu", isolate=False, progress=lines.append)
    check_engine_result(result, 5, 2)
    assert result["transformers"]["precision"] == "float32" and result["ctranslate2"]["precision"] == "int8"
    assert lines and str(tiny_models("llama").hf) in "\n".join(lines)


def test_engine_bench_shape_builds_converts_and_compares(monkeypatch):
    tiny_shape = dict(engine_bench.SHAPES["rinna-3.6b"], vocab_size=256, hidden_size=64, num_hidden_layers=4,
                      num_attention_heads=4, intermediate_size=256)
    monkeypatch.setitem(engine_bench.SHAPES, "tiny", tiny_shape)
    monkeypatch.setattr(engine_bench, "SHAPE_PROMPT_TOKENS", 16)
    result = engine_bench.run_engine_bench(shape="tiny", layers=2, new_tokens=3, device="cpu", isolate=False,
                                           progress=lambda _: None)
    check_engine_result(result, 3, 1)
    assert result["prompt_tokens"] == [16] and "2 layers" in result["model"]


def test_pipeline_bench_compares_the_same_replies(tiny_models):
    result = run_pipeline_bench(tiny_models("llama").ct2, comments=3, device="cpu", compute_type="float32",
                                progress=lambda _: None)
    assert result["seen"] == 3 and result["compared"] == result["answered"] >= 1
    # Greedy on both sides: the pipeline's engine output is the raw engine's, token for token.
    assert result["identical_replies"] == result["compared"]
    assert {"engine_first_token_s", "engine_full_reply_s", "ws_first_delta_s", "ws_full_reply_s", "overhead_full_s",
            "first_delta_minus_engine_first_s", "overhead_full_same_run_s", "guard_hold_s"} <= set(result["figures"])
    assert result["figures"]["ws_full_reply_s"]["n"] == result["compared"]
    assert "overhead per reply" in pipeline_table(result)
