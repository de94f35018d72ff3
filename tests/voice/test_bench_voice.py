"""`aituber bench voice` runs end to end (the tiny test model, the built-in voice, one comment)."""

from __future__ import annotations

import pytest

from aituber.bench import BENCHES
from aituber.bench.voice import report, run_voice_bench

pytestmark = pytest.mark.slow


def test_bench_voice_measures_a_spoken_reply(tiny_model):
    assert BENCHES["voice"] == "aituber.bench.voice"
    result = run_voice_bench(tiny_model, comments=1, progress=lambda line: None)
    assert result["replies"] == 1 and result["clauses"] >= 1
    assert result["audio_s"] > 0 and 0 < result["rtf"] < 5
    assert result["loop_lag_p99_ms"] is not None
    text = report(result)
    assert "voice adds after the first clause" in text and "load average" in text
