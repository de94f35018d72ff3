"""First-token latency with and without CTranslate2's static prompt cache, on a long persona.

The same prompts go through the same engine twice per comment: once with the persona prefix sent
as `static_prompt` (its model state cached after the first call), once as part of the prompt. The
figure is the median first-token latency of each and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from pathlib import Path

from aituber.bench.common import add_model_arguments, bench_main, default_model, load_average, sample_character
from aituber.core.prompt import Prompt, PromptBuilder
from aituber.engine.base import GenerationOptions, complete

COMMENTS = ["こんばんは！", "好きな食べ物は？", "今日の配信なにするの？", "ゲームは得意？", "おやすみなさい",
            "初見です！", "歌ってほしいな", "明日も配信ある？"]
_FIRST_TOKEN = GenerationOptions(max_new_tokens=1, temperature=0, max_chars=None, stop_strings=())


async def first_token_s(engine, prompt: Prompt, static: bool) -> float:
    """Time to the first token, with the persona cached as CTranslate2's static prompt or not."""
    engine.static_prompt = static
    done = await complete(engine, prompt, _FIRST_TOKEN)
    return done.first_text_s if done.first_text_s is not None else done.total_s


async def _measure(model_dir: Path, repeat_persona: int, rounds: int) -> dict:
    from aituber.engine.ct2 import CTranslate2Engine  # the cache is CTranslate2's own: this bench is about it

    character = sample_character()
    persona = "\n".join([character.persona.strip()] * repeat_persona)  # a long persona
    builder = PromptBuilder(character.prompt_template, persona)
    engine = await asyncio.to_thread(CTranslate2Engine, model_dir)
    try:
        prompts = [builder.build(c, "たぬき丸") for c in COMMENTS]
        static_tokens = len(engine.encode_prompt(prompts[0])[0] or [])
        cached = engine.static_prompt_limit is None or static_tokens < engine.static_prompt_limit
        await first_token_s(engine, prompts[0], True)  # warm up, and fill the cache
        with_cache, without = [], []
        for _ in range(rounds):
            for p in prompts:  # interleaved, so both see the same machine
                with_cache.append(await first_token_s(engine, p, True))
                without.append(await first_token_s(engine, p, False))
    finally:
        await engine.close()
    a, b = statistics.median(with_cache), statistics.median(without)
    return {"persona_tokens": static_tokens, "cached": cached, "with_static_ms": a * 1000,
            "without_ms": b * 1000, "speedup": b / a, "samples": len(with_cache), **load_average()}


def run_static_prompt_bench(model_dir: Path | None = None, repeat_persona: int = 3, rounds: int = 3) -> dict:
    return asyncio.run(_measure(default_model(model_dir), repeat_persona, rounds))


def report(r: dict) -> str:
    note = "" if r["cached"] else " (over the model's window: not cached, both the same)"
    return (f"persona {r['persona_tokens']} tokens{note}, {r['samples']} prompts each:\n"
            f"first token with static_prompt {r['with_static_ms']:.0f} ms, without {r['without_ms']:.0f} ms "
            f"({r['speedup']:.2f}x); load average {r['load_average_1m']} on {r['cpus']} CPUs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aituber bench static_prompt", description=__doc__.split("\n\n")[0])
    add_model_arguments(parser, engine=False)
    parser.add_argument("--repeat-persona", type=int, default=3, help="persona length: the sample's, N times")
    return bench_main(parser, lambda args: run_static_prompt_bench(args.model, args.repeat_persona), report, argv)
