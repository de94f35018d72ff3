"""Event-loop lag while a burst of comments arrives and a real model generates.

A ticker task sleeps 1 ms at a time and records how late it wakes up; meanwhile a source pushes
comments at a fixed rate through moderation and the queue, and the engine answers them. The
figure that matters is the p99 lag: the loop must stay responsive (overlay, MQTT, commands).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from aituber.bench.common import (
    add_model_arguments,
    bench_main,
    build_engine,
    default_model,
    load_average,
    sample_character,
)
from aituber.core.comment import Author, Comment
from aituber.core.stats import percentile
from aituber.sources.base import SourceStats


class BurstSource:
    """`rate` comments per second for `seconds`, from many viewers."""

    name = "burst"

    def __init__(self, rate: int, seconds: float) -> None:
        self.rate = rate
        self.seconds = seconds
        self.stats = SourceStats()

    async def items(self):
        loop = asyncio.get_running_loop()
        start = loop.time()
        total = int(self.rate * self.seconds)
        for i in range(total):
            due = start + i / self.rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.stats.kinds["text"] += 1
            yield Comment(id=f"b{i}", author=Author(f"viewer{i % 500}", f"UC{i % 500:022d}"),
                          text=f"こんにちは！今日の配信{i % 97}番目のコメントだよ、ゲームは何が好き？", timestamp=time.time())


async def _measure(model_dir: Path, rate: int, seconds: float) -> dict:
    from aituber.app import Pipeline

    character = sample_character()
    lags: list[float] = []
    engine = await asyncio.to_thread(build_engine, model_dir, character)
    try:
        await engine.start()
        source = BurstSource(rate, seconds)
        pipeline = Pipeline(character=character, engine=engine, source=source, outputs=[])
        stop = asyncio.Event()

        async def tick() -> None:
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                before = loop.time()
                await asyncio.sleep(0.001)
                lags.append(max(0.0, loop.time() - before - 0.001))

        ticker = asyncio.create_task(tick())
        start = time.perf_counter()
        await pipeline.run()
        elapsed = time.perf_counter() - start
        stop.set()
        await ticker
    finally:
        await engine.close()
    stats = pipeline.stats
    return {"rate": rate, "seconds": seconds, "comments": stats.seen, "answered": stats.answered,
            "elapsed_s": elapsed, "ticks": len(lags),
            "lag_p50_ms": (percentile(lags, 50) or 0) * 1000, "lag_p99_ms": (percentile(lags, 99) or 0) * 1000,
            "lag_max_ms": max(lags, default=0) * 1000, **load_average()}


def run_loop_lag_bench(model_dir: Path | None = None, rate: int = 1000, seconds: float = 5.0) -> dict:
    return asyncio.run(_measure(default_model(model_dir), rate, seconds))


def report(r: dict) -> str:
    return (f"burst {r['rate']} comments/s for {r['seconds']:g} s: {r['comments']} comments, "
            f"{r['answered']} answered by the model meanwhile\n"
            f"event-loop lag over {r['ticks']} ticks: p50 {r['lag_p50_ms']:.2f} ms, "
            f"p99 {r['lag_p99_ms']:.2f} ms, max {r['lag_max_ms']:.2f} ms (target p99 <= 5 ms); "
            f"load average {r['load_average_1m']} on {r['cpus']} CPUs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aituber bench looplag", description=__doc__.split("\n\n")[0])
    add_model_arguments(parser, engine=False)
    parser.add_argument("--rate", type=int, default=1000, help="comments per second (default: 1000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long the burst lasts (default: 5)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return bench_main(build_parser(), lambda args: run_loop_lag_bench(args.model, args.rate, args.seconds),
                      report, argv)
