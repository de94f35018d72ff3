"""Many bots, one server: N sessions answering at once against one OpenAI-compatible server.

Each bot is what `aituber run --engine openai` builds: its own remote engine (its own connection),
the character's prompts (persona, the comment with the viewer's name) from the real prompt builder,
its sampling made greedy so every round asks the same work. For each N (default 1, 4, 8) the N bots
answer `--replies` comments each, all at once; the figures are replies per second for all of them
together, tokens per second, and the first-token latency (request sent -> first text) p50/p95 over
every reply, with the ratio of replies/s against N = 1 measured in the same run. A server that
batches requests (vLLM, llama.cpp's server with `--parallel`) gains with N; one that answers one
request at a time (llama-cpp-python) only queues them.

    aituber bench remote --remote http://127.0.0.1:8080/v1 [--bots 1,4,8] [--replies 4] [--tokens 32]
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
from aituber.core.prompt import PromptForm
from aituber.core.stats import percentile
from aituber.engine.base import GenerationOptions, complete
from aituber.engine.openai import OpenAIEngine, RemoteSettings, normalize_url
from aituber.errors import AituberError

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


async def _bench(url: str, model: str | None, api: str, bot_counts: list[int], replies: int, tokens: int,
                 character_dir: Path | None, progress) -> dict:
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
    for n in bot_counts:
        progress(f"{n} bot(s) x {replies} replies of {tokens} tokens ...")
        rounds.append(await _round(settings, n, replies, prompts, options, extra))
    base = rounds[0]["replies_per_s"]
    for r in rounds:
        r["vs_first"] = r["replies_per_s"] / base
    return {"url": settings.display_url, "model": probe.model, "api": api, "tokens": tokens,
            "replies_per_bot": replies, "rounds": rounds, **load_average()}


def run_remote_bench(url: str, model: str | None = None, api: str = "chat", bots: tuple[int, ...] = (1, 4, 8),
                     replies: int = 4, tokens: int = 32, character_dir: Path | None = None,
                     progress=print) -> dict:
    if not bots or min(bots) < 1 or replies < 1 or tokens < 1:
        raise AituberError("--bots, --replies and --tokens must be at least 1")
    return asyncio.run(_bench(url, model, api, list(bots), replies, tokens, character_dir, progress))


def report(r: dict) -> str:
    row = "{:>5} {:>8} {:>10} {:>10} {:>9} {:>15} {:>15} {:>6}"
    lines = [f"server: {r['url']} ({r['model']}, {r['api']} api); {r['replies_per_bot']} replies of "
             f"{r['tokens']} tokens per bot, greedy",
             "", row.format("bots", "replies", "wall", "replies/s", "tokens/s", "first token p50",
                            "first token p95", "vs 1")]
    for x in r["rounds"]:
        lines.append(row.format(x["bots"], x["replies"], f"{x['wall_s']:.1f} s", f"{x['replies_per_s']:.2f}",
                                f"{x['tokens_per_s']:.1f}", f"{x['first_token_p50_ms']:.0f} ms",
                                f"{x['first_token_p95_ms']:.0f} ms", f"{x['vs_first']:.2f}x"))
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
    return p


def main(argv: list[str] | None = None) -> int:
    def run(args: argparse.Namespace) -> dict:
        return run_remote_bench(args.remote, args.engine_model, args.api, args.bots, args.replies, args.tokens,
                                args.character)

    return bench_main(build_parser(), run, report, argv)


if __name__ == "__main__":
    sys.exit(main())
