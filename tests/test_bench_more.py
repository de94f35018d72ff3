"""The benchmarks behind `aituber bench` run on the tiny model and report their figures (no timing asserted)."""

import pytest

from aituber.bench.looplag import run_loop_lag_bench
from aituber.bench.static_prompt import run_static_prompt_bench

pytestmark = pytest.mark.slow


def test_loop_lag_bench_reports_percentiles(tiny_model):
    r = run_loop_lag_bench(tiny_model, rate=200, seconds=0.5)
    assert r["comments"] == 100 and r["ticks"] > 0
    assert 0 <= r["lag_p50_ms"] <= r["lag_p99_ms"] <= r["lag_max_ms"]


def test_static_prompt_bench_compares_both_ways(tiny_model):
    r = run_static_prompt_bench(tiny_model, repeat_persona=1, rounds=1)
    assert r["cached"] and r["persona_tokens"] > 10 and r["samples"] == 8
    assert r["with_static_ms"] > 0 and r["without_ms"] > 0
