"""What the voice adds: the sample character answering comments with its voice, heard by a connected page.

The real pipeline (the character's model, the overlay server on a free port, the voice output) answers
N comments one at a time; a WebSocket client connected as the OBS page is (`?audio=1`) receives the
audio and the `speech` messages (a page starts a clause's audio when its message arrives). Printed:

- comment picked -> first audio at the page, p50/p95 (the model's first clause plus the voice);
- what the voice adds once the first clause is complete (its text all generated) until its audio is at
  the page: synthesis and delivery (target: p95 <= 150 ms);
- the synthesis real-time factor: synthesis time / audio duration over every clause (target <= 0.2
  with the embedded voice);
- the event loop's lag while it speaks: a 1 ms ticker's lateness over the time a clause plays, p99
  (target <= 5 ms).

Percentiles come with the load average: on a shared machine absolute times are noisy.

    aituber bench voice [--model DIR] [--comments 10] [--voice openjtalk|voicevox] [--voice-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aituber import paths
from aituber.bench.common import (
    add_model_arguments,
    bench_main,
    build_engine,
    default_model,
    load_average,
    sample_character,
)
from aituber.bench.pipeline import COMMENTS
from aituber.core.comment import Author, Comment
from aituber.core.events import CommentSelected, Event, ReplyEnded, SpeechStarted
from aituber.core.stats import percentile
from aituber.engine.modeldir import is_prepared
from aituber.errors import AituberError
from aituber.sources.base import SourceStats
from aituber.voice.registry import VOICES

TARGET_ADDED_P95_S = 0.150
TARGET_RTF = 0.2
TARGET_LAG_P99_S = 0.005


class OneAtATime:
    """Comments one by one: the next once the last reply has been heard (its speech ended)."""

    name = "bench"

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.stats = SourceStats()
        self.heard = asyncio.Event()
        self.heard.set()

    async def items(self) -> AsyncIterator[Comment]:
        for i, text in enumerate(self.texts):
            await self.heard.wait()
            self.heard.clear()
            self.stats.kinds["text"] += 1
            yield Comment(id=f"b{i}", author=Author(f"viewer{i}", f"UC{i:022d}"), text=text, timestamp=time.time())


class Recorder:
    """An output that notes when replies are picked and when their clauses start."""

    name = "bench-recorder"
    holds_replies = False

    def __init__(self) -> None:
        self.picked: dict[str, float] = {}
        self.clauses: list[SpeechStarted] = []
        self.ended: list[str] = []

    def publish(self, event: Event) -> None:
        match event:
            case CommentSelected(reply_id=reply_id):
                self.picked[reply_id] = time.time()
            case SpeechStarted():
                self.clauses.append(event)
            case ReplyEnded(reply_id=reply_id):
                self.ended.append(reply_id)


def _model(model: Path | None) -> Path:
    if model is not None:
        return default_model(model)
    tuned = paths.tuned_model_dir(paths.SAMPLE_CHARACTER_ID)
    return tuned if is_prepared(tuned) else default_model(None)


async def _measure(model_dir: Path, comments: int, voice: str | None, url: str | None, threads: int,
                   progress: Callable[[str], None]) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    from aituber.app import Pipeline
    from aituber.config import clause_splitter, reading_rules, voice_settings
    from aituber.outputs.base import EventBridge
    from aituber.outputs.overlay import OverlayServer
    from aituber.outputs.voice import VoiceOutput
    from aituber.voice.registry import create_voice

    character = sample_character()
    settings = voice_settings(character, engine=voice or character.voice.engine, url=url)
    if settings.engine not in VOICES:
        raise AituberError(f"the character's voice is {settings.engine!r}: choose one with --voice")
    engine = await asyncio.to_thread(build_engine, model_dir, character, threads=threads)
    overlay = OverlayServer(port=0, character={"id": character.id, "name": character.name})
    bridge = EventBridge()
    output = VoiceOutput(create_voice(settings), bridge, rules=reading_rules(character),
                         new_splitter=lambda: clause_splitter(character), timeout_s=settings.timeout_s)
    recorder = Recorder()
    texts = [COMMENTS[i % len(COMMENTS)] for i in range(comments)]
    source = OneAtATime(texts)
    heard: dict[str, float] = {}  # reply id -> first audio at the page
    ticks: list[tuple[float, float]] = []  # (unix time, lag)
    try:
        await engine.start()
        await overlay.start()
        await output.start()
        if not output.available:
            raise AituberError(f"voice: {output.engine.label} is not available")
        progress(f"voice: {output.engine.label}; model: {model_dir}; {comments} comments")
        pipeline = Pipeline(character=character, engine=engine, source=source, outputs=[recorder, overlay, output])
        bridge.bind(pipeline.emit)
        stop = asyncio.Event()

        async def page() -> None:
            async with connect(f"ws://127.0.0.1:{overlay.port}/ws?audio=1", max_size=2**24) as ws:
                async for frame in ws:
                    if isinstance(frame, str):
                        message = json.loads(frame)
                        if message.get("type") == "speech" and message["audio"]:
                            heard.setdefault(message["reply_id"], time.time())

        async def tick() -> None:
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                before = loop.time()
                await asyncio.sleep(0.001)
                ticks.append((time.time(), max(0.0, loop.time() - before - 0.001)))

        async def pace() -> None:  # the next comment once the reply before has been heard
            done = 0
            while done < comments:
                await asyncio.sleep(0.05)
                if len(recorder.ended) > done:
                    await output.drained()
                    done = len(recorder.ended)
                    progress(f"  {done}/{comments} replies heard")
                    source.heard.set()

        listener = asyncio.create_task(page())
        while not overlay.client_count:
            await asyncio.sleep(0.01)
        voice_task = asyncio.create_task(output.run())
        ticker = asyncio.create_task(tick())
        pacer = asyncio.create_task(pace())
        await pipeline.run()
        stop.set()
        for task in (listener, pacer, voice_task):
            task.cancel()
        await ticker
    finally:
        await output.close()
        await overlay.close()
        await engine.close()

    playing = sorted((c.started_at, c.started_at + c.duration_s) for c in recorder.clauses if c.duration_s > 0)
    lags = [lag for at, lag in ticks if _within(at, playing)]
    first = [c for c in recorder.clauses if c.index == 0 and c.audio is not None]
    picked_to_audio = [heard[c.reply_id] - recorder.picked[c.reply_id] for c in first
                       if c.reply_id in heard and c.reply_id in recorder.picked]
    added = [heard[c.reply_id] - c.clause_at for c in first if c.reply_id in heard]
    first_synthesis = [c.synthesis_s for c in first if c.synthesis_s is not None]
    delivery = [heard[c.reply_id] - c.started_at for c in first if c.reply_id in heard]
    voiced = [c for c in recorder.clauses if c.audio is not None and c.synthesis_s is not None]
    audio_s = sum(c.duration_s for c in voiced)
    synth_s = sum(c.synthesis_s or 0.0 for c in voiced)
    return {"voice": settings.engine, "model": str(model_dir), "replies": len(recorder.picked),
            "clauses": len(recorder.clauses), "clauses_spoken": len(voiced),
            "picked_to_audio_p50_ms": _ms(percentile(picked_to_audio, 50)),
            "picked_to_audio_p95_ms": _ms(percentile(picked_to_audio, 95)),
            "voice_adds_p50_ms": _ms(percentile(added, 50)), "voice_adds_p95_ms": _ms(percentile(added, 95)),
            "first_synthesis_p50_ms": _ms(percentile(first_synthesis, 50)),
            "first_synthesis_p95_ms": _ms(percentile(first_synthesis, 95)),
            "delivery_p50_ms": _ms(percentile(delivery, 50), 1), "delivery_p95_ms": _ms(percentile(delivery, 95), 1),
            "audio_s": round(audio_s, 2), "synthesis_s": round(synth_s, 2),
            "rtf": round(synth_s / audio_s, 3) if audio_s else None,
            "loop_lag_p50_ms": _ms(percentile(lags, 50), 2), "loop_lag_p99_ms": _ms(percentile(lags, 99), 2),
            "loop_lag_max_ms": _ms(max(lags, default=0.0), 2), **load_average()}


def _within(at: float, spans: list[tuple[float, float]]) -> bool:
    return any(start <= at <= end for start, end in spans)


def _ms(seconds: float | None, digits: int = 0) -> float | None:
    return None if seconds is None else round(seconds * 1000, digits)


def run_voice_bench(model: Path | None = None, comments: int = 10, voice: str | None = None, url: str | None = None,
                    threads: int = 0, progress: Callable[[str], None] = print) -> dict[str, Any]:
    if comments < 1:
        raise AituberError("comments must be at least 1")
    return asyncio.run(_measure(_model(model), comments, voice, url, threads, progress))


def ok(r: dict[str, Any]) -> bool:
    added = r["voice_adds_p95_ms"]
    rtf_ok = r["rtf"] is not None and (r["voice"] != "openjtalk" or r["rtf"] <= TARGET_RTF)
    return (added is not None and added <= TARGET_ADDED_P95_S * 1000 and rtf_ok
            and r["loop_lag_p99_ms"] is not None and r["loop_lag_p99_ms"] <= TARGET_LAG_P99_S * 1000)


def report(r: dict[str, Any]) -> str:
    return "\n".join([
        f"voice {r['voice']}, {r['replies']} replies, {r['clauses']} clauses ({r['clauses_spoken']} spoken), "
        f"{r['audio_s']} s of speech; load average {r['load_average_1m']} on {r['cpus']} CPUs",
        f"comment picked -> first audio at the page: p50 {r['picked_to_audio_p50_ms']} ms, "
        f"p95 {r['picked_to_audio_p95_ms']} ms",
        f"voice adds after the first clause is complete: p50 {r['voice_adds_p50_ms']} ms, "
        f"p95 {r['voice_adds_p95_ms']} ms (target p95 <= {TARGET_ADDED_P95_S * 1000:.0f} ms); of which the first "
        f"clause's synthesis p50 {r['first_synthesis_p50_ms']} ms, p95 {r['first_synthesis_p95_ms']} ms, and its "
        f"delivery to the page p50 {r['delivery_p50_ms']} ms, p95 {r['delivery_p95_ms']} ms",
        f"synthesis real-time factor: {r['rtf']} ({r['synthesis_s']} s for {r['audio_s']} s; target <= {TARGET_RTF} "
        "with the embedded voice)",
        f"event-loop lag while speaking: p50 {r['loop_lag_p50_ms']} ms, p99 {r['loop_lag_p99_ms']} ms, "
        f"max {r['loop_lag_max_ms']} ms (target p99 <= {TARGET_LAG_P99_S * 1000:.0f} ms)",
    ])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aituber bench voice", description=__doc__.split("\n\n")[0])
    add_model_arguments(parser, engine=False)
    parser.add_argument("--comments", type=int, default=10, help="comments answered, one at a time (default: 10)")
    parser.add_argument("--voice", choices=list(VOICES), help="the voice (default: the sample character's)")
    parser.add_argument("--voice-url", metavar="URL", help="VOICEVOX-compatible engine address")
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="CPU threads for generation (default: the bot's: all cores but one)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return bench_main(build_parser(), lambda a: run_voice_bench(a.model, a.comments, a.voice, a.voice_url, a.threads),
                      report, argv, ok=ok)
