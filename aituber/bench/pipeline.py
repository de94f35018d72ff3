"""What the pipeline adds to the engine: the real pipeline against the raw engine, same comments.

A chat log of N comments is replayed (fast) through aituber.app.Pipeline with the overlay server on
a free port and one WebSocket client connected, greedy decoding. Every prompt the pipeline hands the
engine (built by the pipeline itself: persona, memory, viewer name) is recorded, with the engine's
own timing inside that run (when each chunk of its stream reached the event loop); afterwards the same
prompts and options go through the engine directly (the raw engine, `Engine.stream`), twice, the second
pass showing how much two runs of the same work differ on this machine. Per reply:

- full reply: comment picked -> `reply_end` at the WebSocket client, against the raw engine's
  generation time; the difference is the pipeline's overhead (target: 10 ms at most). It splits
  into the pipeline's own time (against the engine's timing in the same run) and the engine running
  slower inside the pipeline (the event loop's work competes with it for the CPU and the GIL);
- first delta: comment picked -> first `reply_delta` at the client, against the raw engine's first
  text (target: at most 5 ms later). The output NG filter (aituber.core.outputguard) holds text that
  could still become an NG word; how much of the delay that hold explains is reported apart.

The client shares the event loop with the pipeline (an OBS browser source would not), so the
event-loop CPU time per reply includes its receiving.

    python -m aituber.bench.pipeline [--model DIR] [--comments 20] [--character DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aituber.bench.common import add_model_arguments, bench_main, build_engine, default_model, sample_character
from aituber.core.stats import percentile
from aituber.errors import AituberError

#: Distinct, harmless comments (the moderation's near-duplicate and flood checks let them all in).
COMMENTS = (
    "こんにちは！今日は何を食べた？", "初見です、よろしくお願いします", "ゲームの配信楽しみにしてるよ",
    "今日は雨だね。傘持ってきた？", "いちごのパフェが大好きなんだって？", "明日も配信ある？",
    "最近ハマってる歌を教えて", "星座だと何座が好き？", "宿題が終わらないよ〜助けて",
    "カレーとラーメンどっちが好き？", "休みの日は何してるの？", "おすすめの映画ある？",
    "猫と犬ならどっち派？", "朝ごはんはパン派？ご飯派？", "子どものころの夢はなんだった？",
    "行ってみたい場所はどこ？", "最近うれしかったことは？", "夜空がきれいな日は外に出る？",
    "好きな季節はいつ？", "ミカちゃんの得意料理を知りたい",
)


def run_pipeline_bench(model_dir: str | Path | None = None, comments: int = 20, *,
                       character_dir: str | Path | None = None, device: str = "auto", compute_type: str = "auto",
                       threads: int = 0, progress: Callable[[str], None] = print) -> dict:
    """Replay `comments` comments through the pipeline and the raw engine; return the figures."""
    if comments < 1:
        raise AituberError("comments must be at least 1")
    return asyncio.run(_bench(default_model(model_dir), comments, character_dir, device, compute_type, threads,
                              progress))


@dataclasses.dataclass(slots=True)
class _Generation:
    """One reply streamed by the engine, timed as its chunks reach the event loop (perf_counter)."""

    prompt: Any
    options: Any
    reply_id: str | None
    start: float
    chunks: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    end: float | None = None

    @property
    def text(self) -> str:
        return "".join(text for _, text in self.chunks)

    @property
    def first_s(self) -> float | None:
        return self.chunks[0][0] - self.start if self.chunks else None

    @property
    def total_s(self) -> float:
        assert self.end is not None
        return self.end - self.start


class _TimedEngine:
    """An Engine in front of the real one that times every reply it streams."""

    def __init__(self, engine: Any) -> None:
        self.inner = engine
        self.calls: list[_Generation] = []
        self.reply_id: str | None = None

    @property
    def info(self) -> Any:
        return self.inner.info

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def stream(self, prompt: Any, options: Any) -> AsyncIterator[Any]:
        record = _Generation(prompt, options, self.reply_id, time.perf_counter())
        self.calls.append(record)
        async with contextlib.aclosing(self.inner.stream(prompt, options)) as chunks:
            async for chunk in chunks:
                now = time.perf_counter()
                if chunk.text:
                    record.chunks.append((now, chunk.text))
                if chunk.end is not None:
                    record.end = now
                yield chunk

    async def run(self, prompt: Any, options: Any) -> _Generation:
        """One reply straight from the engine (the raw engine), timed."""
        async with contextlib.aclosing(self.stream(prompt, options)) as chunks:
            async for _ in chunks:
                pass
        return self.calls[-1]


class _Recorder:
    """An output that notes when each reply was picked and ended (perf_counter)."""

    def __init__(self, timer: _TimedEngine) -> None:
        self._timer = timer
        self.picked: dict[str, float] = {}
        self.ended: dict[str, Any] = {}

    def publish(self, event: Any) -> None:
        from aituber.core.events import CommentSelected, ReplyEnded

        if isinstance(event, CommentSelected):
            self.picked[event.reply_id] = time.perf_counter()
            self._timer.reply_id = event.reply_id
        elif isinstance(event, ReplyEnded):
            self.ended[event.reply_id] = event


async def _bench(model_dir: Path, n: int, character_dir: Path | None, device: str, compute_type: str,
                 threads: int, progress: Callable[[str], None]) -> dict:
    from websockets.asyncio.client import connect

    from aituber.app import Pipeline
    from aituber.config import moderation_settings, prompt_builder
    from aituber.core.moderation import Moderator
    from aituber.engine.base import complete
    from aituber.outputs.overlay import OverlayServer
    from aituber.sources.replay import ReplayChatSource

    character = sample_character(character_dir)
    engine = await asyncio.to_thread(build_engine, model_dir, character, device=device, compute_type=compute_type,
                                     threads=threads)
    try:
        await engine.start()
        progress(f"pipeline bench: {engine.info.label}, character {character.name}, {n} comments, greedy")
        timer = _TimedEngine(engine)
        recorder = _Recorder(timer)
        overlay = OverlayServer(port=0, character={"id": character.id, "name": character.name})
        await overlay.start()
        received: list[tuple[float, dict]] = []
        try:
            with tempfile.TemporaryDirectory(prefix="aituber-bench-") as tmp:
                log_path = Path(tmp) / "comments.jsonl"
                log_path.write_text("".join(
                    json.dumps({"id": f"b{i:03d}", "author": f"視聴者{i:03d}",
                                "text": COMMENTS[i % len(COMMENTS)] + ("" if i < len(COMMENTS) else f"（{i}）")},
                               ensure_ascii=False) + "\n" for i in range(n)), encoding="utf-8")
                pipeline = Pipeline(character=character, engine=timer, source=ReplayChatSource(log_path, fast=True),
                                    outputs=[recorder, overlay])
                pipeline.options = dataclasses.replace(pipeline.options, temperature=0.0)
                # Warm up, persona prefix included (CTranslate2 caches it): both passes start warm.
                warm = prompt_builder(character, engine.info).build("こんにちは", "warmup")
                await complete(engine, warm, pipeline.options)
                async with connect(overlay.ws_url) as ws:
                    received.append((time.perf_counter(), json.loads(await ws.recv())))  # the state message
                    reader = asyncio.create_task(_read(ws, received), name="bench-ws-reader")
                    progress("replaying through the pipeline ...")
                    loop_cpu = time.thread_time()  # this thread runs the event loop
                    stats = await pipeline.run()
                    loop_cpu = time.thread_time() - loop_cpu
                    answered = [c.reply_id for c in timer.calls if c.reply_id in recorder.ended]
                    try:
                        async with asyncio.timeout(30):
                            while not set(answered) <= {m.get("reply_id") for _, m in received
                                                        if m["type"] == "reply_end"}:
                                await asyncio.sleep(0.01)
                    finally:
                        reader.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await reader
        finally:
            await overlay.close()
        pipeline_calls = [c for c in timer.calls if c.reply_id in recorder.ended and c.end is not None]
        # Twice: the second pass shows how much two runs of the same work differ on this machine.
        raw_passes: list[list[_Generation]] = []
        for n_pass in (1, 2):
            progress(f"the raw engine on the same {len(pipeline_calls)} prompts (pass {n_pass} of 2) ...")
            raw_passes.append([])
            for call in pipeline_calls:
                timer.reply_id = None
                raw_passes[-1].append(await timer.run(call.prompt, call.options))
        moderator = Moderator(moderation_settings(character))
        replies = [_reply_figures(call, raw, again, recorder, received, moderator)
                   for call, raw, again in zip(pipeline_calls, *raw_passes, strict=True)]
    finally:
        await engine.close()
    return _summary(engine.info, character.name, n, stats, replies, loop_cpu)


async def _read(ws: Any, received: list[tuple[float, dict]]) -> None:
    from websockets.exceptions import ConnectionClosed

    try:
        async for raw in ws:
            received.append((time.perf_counter(), json.loads(raw)))
    except ConnectionClosed:
        pass


def _reply_figures(call: _Generation, raw: _Generation, again: _Generation, recorder: _Recorder,
                   received: list[tuple[float, dict]], moderator: Any) -> dict:
    from aituber.core.outputguard import OutputGuard

    rid = call.reply_id
    assert rid is not None
    picked = recorder.picked[rid]
    mine = [(t, m) for t, m in received if m.get("reply_id") == rid]
    ws_first = next((t for t, m in mine if m["type"] == "reply_delta"), None)
    ws_end = next(t for t, m in mine if m["type"] == "reply_end")
    # When the raw engine's text first got past the output filter's hold (same tokens, same text).
    guard = OutputGuard(moderator)
    showable = next((t - raw.start for t, text in raw.chunks if guard.feed(text)), None)
    if showable is None and raw.chunks and guard.finish():
        showable = raw.total_s
    return {
        "reply_id": rid,
        "same_text": call.text == raw.text == again.text,
        "chars": len(raw.text),
        "tokens": recorder.ended[rid].tokens,
        "raw_first_s": raw.first_s,
        "raw_total_s": raw.total_s,
        "raw_showable_s": showable,
        "raw_again_total_s": again.total_s,
        "engine_in_run_first_s": call.first_s,
        "engine_in_run_total_s": call.total_s,
        "ws_first_s": ws_first - picked if ws_first is not None else None,
        "ws_total_s": ws_end - picked,
        "pipeline_total_s": recorder.ended[rid].total_s,
        "start_overhead_s": call.start - picked,
    }


def _stat(values: list[float | None]) -> dict | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return {"median": percentile(present, 50), "p95": percentile(present, 95), "n": len(present)}


def _summary(engine: Any, character: str, n: int, stats: Any, replies: list[dict], loop_cpu_s: float) -> dict:
    def diff(a: str, b: str) -> list[float | None]:
        return [r[a] - r[b] if r[a] is not None and r[b] is not None else None for r in replies]

    figures = {
        "engine_first_token_s": _stat([r["raw_first_s"] for r in replies]),
        "engine_full_reply_s": _stat([r["raw_total_s"] for r in replies]),
        "ws_first_delta_s": _stat([r["ws_first_s"] for r in replies]),
        "ws_full_reply_s": _stat([r["ws_total_s"] for r in replies]),
        # The brief's definitions: against the separate raw-engine run.
        "overhead_full_s": _stat(diff("ws_total_s", "raw_total_s")),
        "first_delta_minus_engine_first_s": _stat(diff("ws_first_s", "raw_first_s")),
        # The same, against the engine's own timing inside the pipeline run (no run-to-run noise).
        "overhead_full_same_run_s": _stat(diff("ws_total_s", "engine_in_run_total_s")),
        "first_delta_minus_engine_first_same_run_s": _stat(diff("ws_first_s", "engine_in_run_first_s")),
        # What the output filter's hold explains: engine first text -> first text the filter lets out.
        "guard_hold_s": _stat(diff("raw_showable_s", "raw_first_s")),
        "first_delta_minus_showable_s": _stat(diff("ws_first_s", "raw_showable_s")),
        "picked_to_generation_start_s": _stat([r["start_overhead_s"] for r in replies]),
        # overhead (vs raw run) = the pipeline's own time (same run) + the engine running slower inside it.
        "engine_slowdown_in_pipeline_s": _stat(diff("engine_in_run_total_s", "raw_total_s")),
        "raw_run_to_run_s": _stat(diff("raw_again_total_s", "raw_total_s")),
    }
    return {"model": engine.model, "engine": engine.detail,
            "character": character, "comments": n, "seen": stats.seen, "answered": stats.answered,
            "compared": len(replies), "identical_replies": sum(r["same_text"] for r in replies),
            "loop_cpu_per_reply_s": loop_cpu_s / max(1, len(replies)),
            "figures": figures, "replies": replies}


def format_table(result: dict) -> str:
    f = result["figures"]

    def ms(stat: dict | None) -> str:
        return "-" if stat is None else f"{stat['median'] * 1000:9.1f} ms {stat['p95'] * 1000:9.1f} ms"

    rows = [
        ("raw engine: first text", "engine_first_token_s"),
        ("raw engine: full reply", "engine_full_reply_s"),
        ("pipeline: picked -> first delta on WS", "ws_first_delta_s"),
        ("pipeline: picked -> reply_end on WS", "ws_full_reply_s"),
        ("overhead per reply (vs raw run)", "overhead_full_s"),
        ("overhead per reply (vs engine, same run)", "overhead_full_same_run_s"),
        ("first delta - engine first text (raw run)", "first_delta_minus_engine_first_s"),
        ("first delta - engine first text (same run)", "first_delta_minus_engine_first_same_run_s"),
        ("  of which NG-filter hold", "guard_hold_s"),
        ("  first delta - first showable text", "first_delta_minus_showable_s"),
        ("picked -> generation starts", "picked_to_generation_start_s"),
        ("engine inside the pipeline - raw engine", "engine_slowdown_in_pipeline_s"),
        ("noise: raw engine pass 2 - pass 1", "raw_run_to_run_s"),
    ]
    lines = [
        f"model: {result['model']} ({result['engine']}); character {result['character']}",
        f"comments: {result['comments']} replayed, {result['seen']} seen, {result['answered']} answered, "
        f"{result['compared']} compared; identical text pipeline vs raw engine: "
        f"{result['identical_replies']}/{result['compared']}",
        f"event-loop CPU time per reply (ingest, moderation, output filter, WebSocket): "
        f"{result['loop_cpu_per_reply_s'] * 1000:.1f} ms",
        "",
        f"{'':<46}{'median':>12}{'p95':>13}",
        *(f"{label:<46}{ms(f[key])}" for label, key in rows),
        "",
        "targets: overhead per reply <= 10 ms; first delta <= engine first text + 5 ms",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aituber bench pipeline",
                                description="the pipeline's overhead against the raw engine, same comments")
    add_model_arguments(p)
    p.add_argument("--comments", type=int, default=20, metavar="N", help="comments to replay (default: 20)")
    p.add_argument("--character", type=Path, metavar="DIR", help="character folder (default: the sample, mika)")
    return p


def main(argv: list[str] | None = None) -> int:
    return bench_main(build_parser(), lambda args: run_pipeline_bench(
        args.model, args.comments, character_dir=args.character, device=args.device,
        compute_type=args.compute_type, threads=args.threads), format_table, argv,
        to_json=lambda result: {k: v for k, v in result.items() if k != "replies"})


if __name__ == "__main__":
    sys.exit(main())
