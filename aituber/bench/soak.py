"""Soak: hours of a live stream's chat at high speed, with every kind of fault, through the real bot.

    aituber bench soak [--hours 6] [--speed 0] [--comments 10] [--page-s 5] [--fault-every 40] [--json]

A fake YouTube (`aituber.bench.fake_youtube`, in a process of its own so that its work is not counted
here) serves a generated stream: `--hours` of stream time as get_live_chat pages of `--page-s` seconds
and `--comments` chat items each (text, super chats, memberships, deletions, from a pool of viewers).
Every `--fault-every` pages a fault comes first, in turn: a timeout, a reset connection, HTTP 429,
500 and 503, a body that is no JSON, and a reader that stops (a page with no continuation after it).
The bot reads it with the real live source (pytchat in its worker thread, our backoff, de-duplication
and reader restarts), polling as fast as the fake answers instead of every `timeoutMs` (or, with
`--speed N`, every `timeoutMs` / N: N times real time), so hours of stream time take minutes. The pipeline is the real one (moderation, queue, director, reply assembly,
the overlay server and the transcript writer), on the stream's clock (`StreamClock`: moderation
windows and queue ages see the stream's pace, not the speed-up); the engine is `QuickEngine`, which
answers every comment with the same short reply in a few chunks within `--reply-ms` (no model: the
soak is about the bot around it).

Reported: stream time and the speed-up; faults injected and recovered; comments sent, read and
transcribed (every comment read must have its transcript line, none lost, none twice); RSS after
warm-up (`--warmup`, a share of the stream) and its growth to the end; event-loop lag (a 1 ms ticker)
p50/p99/max, beside the same ticker's lag with nothing else running in the process just before (the
machine's own share) and the load average; asyncio tasks and threads during and after the run. Exit code 1
when a target is missed: 0 crashes, 0 lost comments or lines, RSS growth <= `--max-rss-growth-mb`,
loop-lag p99 <= `--max-lag-p99-ms`.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aituber.bench.common import bench_main, load_average, sample_character
from aituber.bench.fake_youtube import SimulatedStream
from aituber.core.events import CommentSeen, Event, RunEnded
from aituber.core.prompt import Prompt, PromptForm
from aituber.core.stats import RunStats, percentile
from aituber.engine.base import EngineInfo, GenerationOptions, ReplyChunk
from aituber.errors import AituberError
from aituber.outputs.base import OutputBase

__all__ = ["QuickEngine", "main", "run_soak"]

VIDEO = "soakSoak01A"
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class QuickEngine:
    """An Engine without a model: every prompt gets `reply`, in `chunks` pieces spread over `reply_s`
    (a model's answer time, scaled down with the soak's speed)."""

    def __init__(self, reply: str = "ありがとう！また来てね。", chunks: int = 4, reply_s: float = 0.002) -> None:
        size = max(1, -(-len(reply) // chunks))
        self._pieces = [reply[i:i + size] for i in range(0, len(reply), size)]
        self._pause_s = reply_s / len(self._pieces)
        self.replies = 0

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(name="quick", model="soak:quick", detail="no model", prompt_form=PromptForm.TEXT)

    def count_tokens(self, text: str) -> int:
        return len(text)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def stream(self, prompt: Prompt, options: GenerationOptions) -> AsyncIterator[ReplyChunk]:
        self.replies += 1
        for piece in self._pieces:
            await asyncio.sleep(self._pause_s)
            yield ReplyChunk(text=piece)
        yield ReplyChunk(end="stop", tokens=len(self._pieces))


class _Tap(OutputBase):
    """Counts what the pipeline saw: how often each of the stream's comment ids was seen (one byte
    per id, so that the tally weighs next to nothing in the RSS it helps measure), and the run's end."""

    name = "soak-tap"

    def __init__(self, stream: SimulatedStream) -> None:
        self._per_page = stream.comments
        self.counts = bytearray(stream.pages * stream.comments)
        self.read = 0
        self.unexpected: list[str] = []
        self.ended: RunEnded | None = None

    def publish(self, event: Event) -> None:
        if type(event) is CommentSeen:
            self.read += 1
            index = self.index(event.comment.id)
            if index is None:
                if len(self.unexpected) < 100:
                    self.unexpected.append(event.comment.id)
            elif self.counts[index] < 255:
                self.counts[index] += 1
        elif type(event) is RunEnded:
            self.ended = event

    def index(self, comment_id: str) -> int | None:
        """The place of a stream's comment id ("sim-PAGE-N") in `counts`; None for any other id."""
        _, _, rest = comment_id.partition("sim-")
        page, _, n = rest.partition("-")
        if not (page.isdigit() and n.isdigit()) or int(n) >= self._per_page:
            return None
        index = (int(page) - 1) * self._per_page + int(n)
        return index if 0 <= index < len(self.counts) else None


class StreamClock:
    """The simulated stream's clock (unix seconds): it advances with the chat read, `page_s` seconds
    a page, so that everything measured in time (moderation windows, the queue's ages, idle talk)
    sees the stream's own pace rather than the soak's speed-up. Read from any thread."""

    def __init__(self, tap: _Tap, page_s: float, start: float = 1_764_300_000.0) -> None:
        self._tap = tap
        self._per_comment_s = page_s / max(1, tap._per_page)
        self._start = start

    def __call__(self) -> float:
        return self._start + self._tap.read * self._per_comment_s


async def _run_pipeline(character: Any, source: Any, engine: QuickEngine, outputs: list[Any], stats: RunStats,
                        clock: StreamClock) -> None:
    """`aituber.app.run_pipeline`, on the stream's clock: outputs started, the pipeline run in one
    TaskGroup with the outputs' tasks, the outputs closed in reverse order."""
    from aituber.app import Pipeline
    from aituber.core.events import RunStarted
    from aituber.outputs.base import close_outputs, run_output, start_outputs

    started = await start_outputs(outputs)
    pipeline = Pipeline(character=character, engine=engine, source=source, outputs=started, stats=stats, clock=clock)
    async with asyncio.TaskGroup() as tasks:
        runners = [tasks.create_task(run_output(o), name=f"output-{o.name}") for o in started]
        interrupted = True
        try:
            pipeline.emit(RunStarted(character.id, source.name, engine.info.model, engine.info.name))
            await pipeline.run(tasks)
            interrupted = False
        finally:
            pipeline.emit(RunEnded(stats.seen, stats.answered, dict(stats.skipped), interrupted))
            await close_outputs(started, 5.0)
            _, pending = await asyncio.wait(runners, timeout=5.0)
            for runner in pending:
                runner.cancel()


def _threads() -> int:
    """Threads alive, less the event loop's `to_thread` workers (they stay for reuse until the loop
    closes)."""
    return sum(1 for t in threading.enumerate() if not t.name.startswith("asyncio_"))


def _rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE_BYTES


def _start_server(stream: SimulatedStream) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aituber.bench.fake_youtube", "--pages", str(stream.pages), "--comments",
         str(stream.comments), "--page-s", str(stream.page_s), "--fault-every", str(stream.fault_every),
         "--seed", str(stream.seed), "--hang-s", str(stream.hang_s)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise AituberError(f"the fake YouTube did not start (it said {line!r})")
    return proc, int(line)


def _server_stats(port: int) -> dict[str, Any]:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/__stats", timeout=10).json()


async def _soak(stream: SimulatedStream, port: int, transcript: Path, *, reply_s: float, warmup: float,
                sample_s: float, overlay: bool, progress: bool, baseline_s: float = 5.0,
                speed: float = 0.0) -> dict[str, Any]:
    from aituber.bench.fake_youtube import LocalTransport
    from aituber.outputs.overlay import OverlayServer
    from aituber.outputs.transcript import TranscriptWriter
    from aituber.sources.youtube import Backoff, YouTubeChatSource

    loop = asyncio.get_running_loop()
    character = sample_character()
    tap = _Tap(stream)
    clock = StreamClock(tap, stream.page_s)
    poll_s = stream.page_s / speed if speed > 0 else 0.0  # YouTube's timeoutMs, at the soak's speed
    source = YouTubeChatSource(VIDEO, timeout_s=0.25, min_poll_s=poll_s, max_poll_s=poll_s,
                               backoff=Backoff(initial_s=0.01, max_s=0.1), transport=lambda: LocalTransport(port),
                               clock=clock)
    engine = QuickEngine(reply_s=reply_s)
    writer = TranscriptWriter(transcript)
    outputs: list[Any] = [tap, writer]
    if overlay:
        outputs.append(OverlayServer(port=0, character={"id": character.id, "name": character.name}))
    total = stream.pages * stream.comments
    threads_before = _threads()
    lags = array.array("d")
    samples: list[dict[str, Any]] = []
    running = True

    async def ticker() -> None:
        while running:
            start = loop.time()
            await asyncio.sleep(0.001)
            lags.append(loop.time() - start - 0.001)

    async def sampler() -> None:
        began = time.monotonic()
        while running:
            read = tap.read
            samples.append({"t_s": round(time.monotonic() - began, 2), "read": read, "rss": _rss_bytes(),
                            "tasks": len(asyncio.all_tasks()), "threads": threading.active_count()})
            if progress:
                print(f"\rsoak: {read:,}/{total:,} comments ({read / total:.0%}), "
                      f"{_rss_bytes() / 2**20:.0f} MiB", end="", file=sys.stderr, flush=True)
            await asyncio.sleep(sample_s)

    # The baseline: the same ticker with nothing else running in this process (the machine's own load).
    baseline = array.array("d")
    until = loop.time() + baseline_s
    while loop.time() < until:
        start = loop.time()
        await asyncio.sleep(0.001)
        baseline.append(loop.time() - start - 0.001)
    tick = asyncio.create_task(ticker(), name="soak-ticker")
    sample = asyncio.create_task(sampler(), name="soak-sampler")
    crash: str | None = None
    started = time.monotonic()
    stats = RunStats()
    try:
        await _run_pipeline(character, source, engine, outputs, stats, clock)
    except Exception as exc:  # a crash is a figure here, not the end of the report
        crash = f"{type(exc).__name__}: {exc}"
    wall_s = time.monotonic() - started
    samples.append({"t_s": round(wall_s, 2), "read": tap.read, "rss": _rss_bytes(),
                    "tasks": len(asyncio.all_tasks()), "threads": threading.active_count()})
    running = False
    await asyncio.gather(tick, sample)
    if progress:
        print(file=sys.stderr)
    for _ in range(50):  # the worker thread finishes its last request, then the thread count settles
        if _threads() <= threads_before:
            break
        await asyncio.sleep(0.1)
    return {"crash": crash, "wall_s": wall_s, "lags": lags, "baseline_lags": baseline, "samples": samples, "tap": tap,
            "source": source.stats, "stats": stats, "replies": engine.replies, "lost_lines": writer.lost_lines,
            "threads_before": threads_before, "threads_after": _threads(),
            "tasks_after": len(asyncio.all_tasks()) - 1,
            "leftover_threads": sorted(t.name for t in threading.enumerate() if t.name.startswith("aituber-"))}


def _transcript_counts(path: Path, tap: _Tap) -> tuple[bytearray, int]:
    """How often each of the stream's comments has a line in the transcript, and the lines of others."""
    counts = bytearray(len(tap.counts))
    others = 0
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith('{"type": "comment"'):
                index = tap.index(json.loads(line)["id"])
                if index is None:
                    others += 1
                elif counts[index] < 255:
                    counts[index] += 1
    return counts, others


def run_soak(hours: float = 6.0, *, comments: int = 10, page_s: float = 5.0, fault_every: int = 40,
             viewers: int = 500, seed: int = 1, reply_ms: float = 2.0, warmup: float = 0.1, sample_s: float = 1.0,
             overlay: bool = True, progress: bool = False, keep: Path | None = None,
             baseline_s: float = 5.0, speed: float = 0.0) -> dict[str, Any]:
    """Run the soak (see the module doc) and return its figures."""
    # Each fault episode is a WARNING and an INFO line of the live source: counted here instead.
    for name, level in (("aituber.sources.youtube", logging.ERROR), ("aituber.outputs.overlay", logging.ERROR)):
        logging.getLogger(name).setLevel(level)
    pages = max(1, round(hours * 3600 / page_s))
    stream = SimulatedStream(pages, comments, page_s=page_s, fault_every=fault_every, viewers=viewers, seed=seed,
                             hang_s=0.5)
    proc, port = _start_server(stream)
    try:
        with tempfile.TemporaryDirectory(prefix="aituber-soak-") as folder:
            transcript = (keep or Path(folder)) / "soak.jsonl"
            transcript.unlink(missing_ok=True)
            got = asyncio.run(_soak(stream, port, transcript, reply_s=reply_ms / 1000, warmup=warmup,
                                    sample_s=sample_s, overlay=overlay, progress=progress,
                                    baseline_s=baseline_s, speed=speed))
            lines, other_lines = _transcript_counts(transcript, got["tap"])
            server = _server_stats(port)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    tap: _Tap = got["tap"]
    seen = tap.counts
    expected = list(stream.comment_ids())
    lost = [expected[i] for i, n in enumerate(seen) if n == 0]
    missing_lines = sum(1 for n, line in zip(seen, lines) if n and not line)
    samples = got["samples"]
    total = len(expected)
    warm = next((s for s in samples if s["read"] >= warmup * total), samples[0])
    end = samples[-1]
    faults_injected = Counter(server["faults"])
    faults_injected["stop"] = stream.faults().count("stop")
    lags = got["lags"]
    stats: RunStats = got["stats"]
    source = got["source"]
    return {
        "stream_hours": round(stream.stream_s / 3600, 3), "speed_asked": speed or None,
        "pages": stream.pages, "pages_served": server["pages"],
        "pages_again": server["pages_again"],
        "wall_s": round(got["wall_s"], 1), "speedup": round(stream.stream_s / max(got["wall_s"], 1e-9)),
        "crashes": 0 if got["crash"] is None else 1, "crash": got["crash"],
        "faults_injected": dict(faults_injected), "faults_injected_total": sum(faults_injected.values()),
        "faults_recovered": dict(source.faults), "faults_recovered_total": sum(source.faults.values()),
        "comments_sent": total, "comments_read": tap.read, "comments_lost": len(lost), "lost_examples": lost[:5],
        "comments_twice": sum(1 for n in seen if n > 1), "unexpected": len(tap.unexpected),
        "transcript_lines": sum(lines) + other_lines, "transcript_missing": missing_lines,
        "transcript_twice": sum(1 for n in lines if n > 1), "transcript_lost_lines": got["lost_lines"],
        "answered": stats.answered, "skipped": dict(stats.skipped), "source_kinds": dict(source.kinds),
        "rss_warm_mb": round(warm["rss"] / 2**20, 1), "rss_end_mb": round(end["rss"] / 2**20, 1),
        "rss_max_mb": round(max(s["rss"] for s in samples) / 2**20, 1),
        "rss_growth_mb": round((end["rss"] - warm["rss"]) / 2**20, 1),
        "rss_by_share_mb": {f"{share:.0%}": round(next((x["rss"] for x in samples if x["read"] >= share * total),
                                                        end["rss"]) / 2**20, 1)
                            for share in (0.1, 0.25, 0.5, 0.75, 1.0)},
        "lag_p50_ms": _ms(percentile(lags, 50)), "lag_p99_ms": _ms(percentile(lags, 99)),
        "lag_max_ms": _ms(max(lags) if lags else None), "lag_samples": len(lags),
        "baseline_lag_p50_ms": _ms(percentile(got["baseline_lags"], 50)),
        "baseline_lag_p99_ms": _ms(percentile(got["baseline_lags"], 99)),
        "tasks_max": max(s["tasks"] for s in samples), "threads_max": max(s["threads"] for s in samples),
        "threads_before": got["threads_before"], "threads_after": got["threads_after"],
        "tasks_after": got["tasks_after"], "leftover_threads": got["leftover_threads"],
        **load_average(),
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def targets(result: dict[str, Any], max_rss_growth_mb: float = 50.0, max_lag_p99_ms: float = 5.0) -> dict[str, bool]:
    return {
        "0 crashes": result["crashes"] == 0 and result["pages_served"] == result["pages"],
        "0 lost comments": (result["comments_lost"] == 0 and result["comments_twice"] == 0
                            and result["unexpected"] == 0),
        "0 lost transcript lines": (result["transcript_missing"] == 0 and result["transcript_lost_lines"] == 0
                                    and result["transcript_twice"] == 0),
        f"RSS growth <= {max_rss_growth_mb:g} MB": result["rss_growth_mb"] <= max_rss_growth_mb,
        f"loop-lag p99 <= {max_lag_p99_ms:g} ms": (result["lag_p99_ms"] or 0.0) <= max_lag_p99_ms,
        "100+ faults (when 6 h+)": result["stream_hours"] < 6 or result["faults_injected_total"] >= 100,
    }


def format_table(result: dict[str, Any], goals: dict[str, bool]) -> str:
    r = result
    rows = [
        f"stream         {r['stream_hours']:g} h of chat ({r['pages']:,} pages) in {r['wall_s']:g} s: "
        f"{r['speedup']:,}x real time" + (f" ({r['pages_again']} pages sent again to a client that had given up)"
                                         if r["pages_again"] else ""),
        f"faults         injected {r['faults_injected_total']} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(r['faults_injected'].items()))}); "
        f"recovered {r['faults_recovered_total']} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(r['faults_recovered'].items()))})",
        f"crashes        {r['crashes']}" + (f" ({r['crash']})" if r["crash"] else ""),
        f"comments       sent {r['comments_sent']:,}, read {r['comments_read']:,}, lost {r['comments_lost']}, "
        f"twice {r['comments_twice']}; answered {r['answered']:,}",
        f"transcript     {r['transcript_lines']:,} comment lines, missing {r['transcript_missing']}, "
        f"lost writes {r['transcript_lost_lines']}",
        f"memory (RSS)   {r['rss_warm_mb']} MiB after warm-up, {r['rss_end_mb']} MiB at the end: "
        f"growth {r['rss_growth_mb']:+g} MiB (max {r['rss_max_mb']} MiB; along the stream: "
        f"{', '.join(f'{k} {v}' for k, v in r['rss_by_share_mb'].items())})",
        f"loop lag       p50 {r['lag_p50_ms']} ms, p99 {r['lag_p99_ms']} ms, max {r['lag_max_ms']} ms "
        f"({r['lag_samples']:,} ticks); idle baseline in this process just before: p50 {r['baseline_lag_p50_ms']} ms, "
        f"p99 {r['baseline_lag_p99_ms']} ms (load average {r['load_average_1m']} on {r['cpus']} CPUs)",
        f"tasks/threads  during: at most {r['tasks_max']} tasks, {r['threads_max']} threads; after: "
        f"{r['tasks_after']} tasks, {r['threads_after']} threads (before: {r['threads_before']}; "
        "not counting the loop's to_thread workers)"
        + (f"; left: {', '.join(r['leftover_threads'])}" if r["leftover_threads"] else ""),
        "targets        " + ", ".join(f"{name}: {'ok' if ok else 'MISSED'}" for name, ok in goals.items()),
    ]
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aituber bench soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=6.0, help="stream time to simulate (default: 6)")
    parser.add_argument("--comments", type=int, default=10, help="chat items per page (default: 10)")
    parser.add_argument("--page-s", type=float, default=5.0, help="stream seconds per page (default: 5)")
    parser.add_argument("--fault-every", type=int, default=40, help="a fault every N pages (default: 40; 0: none)")
    parser.add_argument("--viewers", type=int, default=500, help="distinct viewers (default: 500)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated chat (default: 1)")
    parser.add_argument("--speed", type=float, default=0.0,
                        help="stream time per wall second: the source polls every page-s / speed seconds, as YouTube "
                             "asks it to every page-s (default: 0, as fast as the fake answers)")
    parser.add_argument("--reply-ms", type=float, default=2.0, help="QuickEngine's time per reply (default: 2)")
    parser.add_argument("--warmup", type=float, default=0.1,
                        help="share of the stream before the RSS baseline is taken (default: 0.1)")
    parser.add_argument("--no-overlay", action="store_true", help="leave the overlay server out")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the transcript (soak.jsonl) in DIR")
    parser.add_argument("--max-rss-growth-mb", type=float, default=50.0, help="target (default: 50)")
    parser.add_argument("--max-lag-p99-ms", type=float, default=5.0, help="target (default: 5)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    return parser


def main(argv: list[str] | None = None) -> int:
    goals: dict[str, bool] = {}

    def run(args: argparse.Namespace) -> dict[str, Any]:
        result = run_soak(args.hours, comments=args.comments, page_s=args.page_s, fault_every=args.fault_every,
                          viewers=args.viewers, seed=args.seed, reply_ms=args.reply_ms, warmup=args.warmup,
                          overlay=not args.no_overlay, progress=not args.quiet, keep=args.keep, speed=args.speed)
        goals.update(targets(result, args.max_rss_growth_mb, args.max_lag_p99_ms))
        return result

    return bench_main(build_parser(), run, lambda r: format_table(r, goals), argv, ok=lambda r: all(goals.values()))


if __name__ == "__main__":
    sys.exit(main())
