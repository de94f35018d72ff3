"""The overlay benchmark runs end to end (tiny sizes; the figures themselves are not checked here)."""

from __future__ import annotations

from aituber.bench.overlay import run_overlay_bench


def test_bench_delivers_every_delta_to_every_client():
    result = run_overlay_bench(clients=4, messages=40, rate_hz=2000)
    assert result["delivered"] == result["expected"] == 160
    assert result["dropped_clients"] == 0
    lat = result["latency_ms"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"]
