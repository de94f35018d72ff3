"""The benchmarks behind `aituber bench` run on the tiny model and report their figures (no timing asserted)."""

import pytest

from aituber.bench.looplag import run_loop_lag_bench
from aituber.bench.static_prompt import run_static_prompt_bench

pytestmark = pytest.mark.slow


def test_loop_lag_bench_reports_percentiles(tiny_model):
    r = run_loop_lag_bench(tiny_model, rate=200, seconds=0.5)
    assert r["comments"] == 100  # every comment of the burst went through the pipeline
    assert r["answered"] >= 1  # and the model generated meanwhile: the lag was measured under load
    assert 0 <= r["lag_p50_ms"] <= r["lag_p99_ms"] <= r["lag_max_ms"]
    assert r["cpus"] >= 1 and r["load_average_1m"] >= 0


def test_static_prompt_bench_compares_both_ways(tiny_model, sample_character):
    from aituber.config import load_character
    from aituber.core.prompt import PromptBuilder
    from aituber.engine.ct2 import CTranslate2Engine

    r = run_static_prompt_bench(tiny_model, repeat_persona=1, rounds=1)
    character = load_character(sample_character).character
    with CTranslate2Engine(tiny_model, device="cpu") as engine:  # the persona prefix, as the bench sends it
        prefix = engine.encode_prompt(PromptBuilder(character.prompt_template, character.persona).build("x"))[0]
    assert r["cached"] and r["persona_tokens"] == len(prefix or []) and r["samples"] == 8
    assert r["speedup"] == pytest.approx(r["without_ms"] / r["with_static_ms"])
