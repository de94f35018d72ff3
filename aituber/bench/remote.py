"""Many bots, one server: N sessions answering at once against one OpenAI-compatible server.

Each bot is what `aituber run --engine openai` builds: its own remote engine (its own connection),
the character's prompts (persona, the comment with the viewer's name) from the real prompt builder,
its sampling made greedy so every round asks the same work. For each N (default 1, 4, 8) the N bots
answer `--replies` comments each, all at once; the figures are replies per second for all of them
together, tokens per second, and the first-token latency (request sent -> first text) p50/p95 over
every reply, with the ratio of replies/s against N = 1 measured in the same run. A server that
batches requests (vLLM, llama.cpp's server with `--parallel`) gains with N; one that answers one
request at a time (llama-cpp-python) only queues them.

With `--mqtt-host`, each bot is the whole bot instead: the real pipeline (moderation, queue, reply
assembly) with a character of its own (`bench0`, `bench1`, ...) fed `--replies` comments, publishing
to one MQTT broker, and a subscriber on the broker counts every reply arriving on
`aituber/<character>/reply`; the first-token figures are then the pipeline's (comment picked -> first
text).

    aituber bench remote --remote http://127.0.0.1:8080/v1 [--bots 1,4,8] [--replies 4] [--tokens 32]
    aituber bench remote --remote http://127.0.0.1:8080/v1 --mqtt-host 127.0.0.1 [--mqtt-port 1883]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from aituber.bench.common import bench_main, load_average, sample_character
from aituber.config import generation_options, prompt_builder
from aituber.core.comment import Author, Comment
from aituber.core.prompt import PromptForm
from aituber.core.stats import percentile
from aituber.engine.base import GenerationOptions, complete
from aituber.engine.openai import OpenAIEngine, RemoteSettings, normalize_url
from aituber.errors import AituberError
from aituber.settings import MqttSettings

COMMENTS = (
    ("たぬき丸", "こんにちは！今日は何を食べた？"), ("もち", "初見です、よろしくお願いします"),
    ("ねこ太", "ゲームの配信楽しみにしてるよ"), ("そら", "今日は雨だね。傘持ってきた？"),
    ("いちご", "いちごのパフェが大好きなんだって？"), ("ゆき", "明日も配信ある？"),
    ("こはる", "最近ハマってる歌を教えて"), ("ほし", "星座だと何座が好き？"),
)


async def _bot(engine: OpenAIEngine, prompts: list, options, replies: int, offset: int) -> list[tuple[float, int]]:
    """One bot's replies in turn: (first-token seconds, tokens) each."""
    out = []
    for i in range(replies):
        done = await complete(engine, prompts[(offset + i) % len(prompts)], options)
        if done.stop_reason == "error":
            raise AituberError("a reply failed")
        out.append((done.first_text_s if done.first_text_s is not None else done.total_s, done.tokens))
    return out


async def _round(settings: RemoteSettings, bots: int, replies: int, prompts: list, options,
                 extra_body: dict) -> dict:
    engines = [OpenAIEngine(settings) for _ in range(bots)]
    try:
        for engine in engines:
            await engine.start()
        warm = GenerationOptions(max_new_tokens=1, temperature=0, max_chars=None)
        await asyncio.gather(*(complete(e, prompts[0], warm) for e in engines))  # connected, prompt cached
        for engine in engines:
            engine.extra_body = dict(extra_body)
        started = time.perf_counter()
        results = await asyncio.gather(*(_bot(e, prompts, options, replies, i) for i, e in enumerate(engines)))
        wall = time.perf_counter() - started
    finally:
        for engine in engines:
            await engine.close()
    firsts = [r[0] for bot in results for r in bot]
    tokens = sum(r[1] for bot in results for r in bot)
    return {"bots": bots, "replies": len(firsts), "wall_s": wall, "replies_per_s": len(firsts) / wall,
            "tokens_per_s": tokens / wall, "tokens": tokens,
            "first_token_p50_ms": statistics.median(firsts) * 1000,
            "first_token_p95_ms": (percentile(firsts, 95) or 0.0) * 1000, **load_average()}


class _Comments:
    """A chat source with a few comments, each from its own viewer (the moderation's per-viewer limits)."""

    name = "bench"

    def __init__(self, bot: int, count: int) -> None:
        from aituber.sources.base import SourceStats

        self.stats = SourceStats()
        self._items = [Comment(id=f"b{bot}-{i}", author=Author(f"{COMMENTS[i % len(COMMENTS)][0]}{i}", f"UCb{bot}v{i}"),
                               text=COMMENTS[(bot + i) % len(COMMENTS)][1], timestamp=time.time())
                       for i in range(count)]

    async def items(self):
        for item in self._items:
            yield item


async def _pipeline_round(settings: RemoteSettings, bots: int, replies: int, character, tokens: int,
                          mqtt: MqttSettings) -> dict:
    """N whole bots (pipeline + MQTT output) against the server and the broker."""
    import aiomqtt

    from aituber.app import run_pipeline
    from aituber.outputs.mqtt import MqttOutput

    received: dict[str, int] = {}
    expected = bots * replies
    everything = asyncio.Event()

    async def subscribe(ready: asyncio.Event) -> None:
        async with aiomqtt.Client(mqtt.host or "127.0.0.1", mqtt.port) as client:
            await client.subscribe(f"{mqtt.topic_prefix}/+/reply", qos=1)
            ready.set()
            async for message in client.messages:
                bot = str(message.topic).split("/")[1]
                received[bot] = received.get(bot, 0) + 1
                if sum(received.values()) >= expected:
                    everything.set()

    engines = [OpenAIEngine(settings) for _ in range(bots)]
    ready = asyncio.Event()
    subscriber = asyncio.create_task(subscribe(ready))
    try:
        async with asyncio.timeout(30):
            await ready.wait()
        for engine in engines:
            await engine.start()
            engine.extra_body = {"min_tokens": tokens}
        characters = [character.model_copy(update={"id": f"bench{i}"}) for i in range(bots)]
        started = time.perf_counter()
        stats = await asyncio.gather(*(
            run_pipeline(c, _Comments(i, replies), e, [MqttOutput(mqtt, c.id)])
            for i, (c, e) in enumerate(zip(characters, engines))))
        async with asyncio.timeout(60):
            await everything.wait()
        wall = time.perf_counter() - started
    finally:
        subscriber.cancel()
        await asyncio.gather(subscriber, return_exceptions=True)
        for engine in engines:
            await engine.close()
    firsts = [f for s in stats for f in s.first_token_s]
    answered = sum(s.answered for s in stats)
    if answered != expected:
        raise AituberError(f"{answered} of {expected} comments answered (see the log above)")
    return {"bots": bots, "replies": answered, "wall_s": wall, "replies_per_s": answered / wall,
            "tokens_per_s": sum(s.tokens for s in stats) / wall, "tokens": sum(s.tokens for s in stats),
            "first_token_p50_ms": statistics.median(firsts) * 1000,
            "first_token_p95_ms": (percentile(firsts, 95) or 0.0) * 1000,
            "mqtt_replies": sum(received.values()), **load_average()}


async def _bench(url: str, model: str | None, api: str, bot_counts: list[int], replies: int, tokens: int,
                 character_dir: Path | None, progress, mqtt: MqttSettings | None = None) -> dict:
    character = sample_character(character_dir)
    settings = RemoteSettings(url=normalize_url(url), model=model, api=api, first_token_timeout_s=600,
                              read_timeout_s=120, reply_timeout_s=1200, max_connections=2)
    probe = OpenAIEngine(settings)
    try:
        await probe.start()
    finally:
        await probe.close()
    settings = replace(settings, model=probe.model)
    form = PromptForm.MESSAGES if api == "chat" else PromptForm.TEXT
    builder = prompt_builder(character, probe.info)
    prompts = [builder.build(text, viewer, form=form) for viewer, text in COMMENTS]
    options = replace(generation_options(character), max_new_tokens=tokens, max_chars=None, temperature=0.0,
                      stop_strings=())
    # Every reply the same length: the server may not end it early (llama.cpp and vLLM take min_tokens).
    extra = {"min_tokens": tokens}
    rounds = []
    # The whole bot: greedy replies of `tokens` tokens, no stop strings (the chat template has none).
    whole = character.model_copy(update={
        "template": "chat", "stop_strings": [],
        "generation": character.generation.model_copy(update={
            "max_new_tokens": tokens, "max_chars": 100_000, "temperature": 0.0, "cut_long_replies": False}),
        "queue": character.queue.model_copy(update={"max_age_s": 3600.0}),
        "idle": character.idle.model_copy(update={"after_s": None})})
    for n in bot_counts:
        progress(f"{n} bot(s) x {replies} replies of {tokens} tokens{' (pipeline + MQTT)' if mqtt else ''} ...")
        if mqtt is not None:
            rounds.append(await _pipeline_round(settings, n, replies, whole, tokens, mqtt))
        else:
            rounds.append(await _round(settings, n, replies, prompts, options, extra))
    base = rounds[0]["replies_per_s"]
    for r in rounds:
        r["vs_first"] = r["replies_per_s"] / base
    return {"url": settings.display_url, "model": probe.model, "api": api, "tokens": tokens,
            "replies_per_bot": replies, "rounds": rounds, "mqtt": f"{mqtt.host}:{mqtt.port}" if mqtt else None,
            **load_average()}


def run_remote_bench(url: str, model: str | None = None, api: str = "chat", bots: tuple[int, ...] = (1, 4, 8),
                     replies: int = 4, tokens: int = 32, character_dir: Path | None = None,
                     progress=print, mqtt: MqttSettings | None = None) -> dict:
    if not bots or min(bots) < 1 or replies < 1 or tokens < 1:
        raise AituberError("--bots, --replies and --tokens must be at least 1")
    if mqtt is not None and api != "chat":
        raise AituberError("--mqtt-host runs the whole bot with the chat api")
    return asyncio.run(_bench(url, model, api, list(bots), replies, tokens, character_dir, progress, mqtt))


def report(r: dict) -> str:
    row = "{:>5} {:>8} {:>10} {:>10} {:>9} {:>15} {:>15} {:>6}"
    whole = f"; each bot the whole pipeline publishing to the MQTT broker {r['mqtt']}" if r.get("mqtt") else ""
    lines = [f"server: {r['url']} ({r['model']}, {r['api']} api); {r['replies_per_bot']} replies of "
             f"{r['tokens']} tokens per bot, greedy{whole}",
             "", row.format("bots", "replies", "wall", "replies/s", "tokens/s", "first token p50",
                            "first token p95", "vs 1")]
    for x in r["rounds"]:
        lines.append(row.format(x["bots"], x["replies"], f"{x['wall_s']:.1f} s", f"{x['replies_per_s']:.2f}",
                                f"{x['tokens_per_s']:.1f}", f"{x['first_token_p50_ms']:.0f} ms",
                                f"{x['first_token_p95_ms']:.0f} ms", f"{x['vs_first']:.2f}x"))
    if r.get("mqtt"):
        lines.append("replies received on the broker: "
                     + ", ".join(f"{x['mqtt_replies']} of {x['replies']}" for x in r["rounds"]))
    loads = ", ".join(str(x["load_average_1m"]) for x in r["rounds"])
    lines.append(f"load average (1 min) after each round: {loads} on {r['cpus']} CPUs")
    return "\n".join(lines)


def _bot_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,4,8, not {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("bot counts must be at least 1")
    return counts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aituber bench remote", description=__doc__.split("\n\n")[0])
    p.add_argument("--remote", required=True, metavar="URL", help="the OpenAI-compatible server (http://HOST:PORT/v1)")
    p.add_argument("--engine-model", metavar="NAME", help="the served model (default: the first one listed)")
    p.add_argument("--api", choices=["chat", "completions"], default="chat", help="which API (default: chat)")
    p.add_argument("--bots", type=_bot_counts, default=(1, 4, 8), metavar="N[,N...]",
                   help="how many bots at once, one round each (default: 1,4,8)")
    p.add_argument("--replies", type=int, default=4, metavar="N", help="replies per bot per round (default: 4)")
    p.add_argument("--tokens", type=int, default=32, metavar="N", help="tokens per reply (default: 32)")
    p.add_argument("--character", type=Path, metavar="DIR", help="character folder (default: the sample character)")
    p.add_argument("--mqtt-host", metavar="HOST", help="run each bot's whole pipeline, publishing to this MQTT broker")
    p.add_argument("--mqtt-port", type=int, default=1883, help="with --mqtt-host: the broker's port (default: 1883)")
    return p


def main(argv: list[str] | None = None) -> int:
    def run(args: argparse.Namespace) -> dict:
        mqtt = MqttSettings(host=args.mqtt_host, port=args.mqtt_port) if args.mqtt_host else None
        return run_remote_bench(args.remote, args.engine_model, args.api, args.bots, args.replies, args.tokens,
                                args.character, mqtt=mqtt)

    return bench_main(build_parser(), run, report, argv)


if __name__ == "__main__":
    sys.exit(main())
