"""First-token latency with and without CTranslate2's static prompt cache, on a long persona.

The same prompts go through the same engine twice per comment: once with the persona prefix sent
as `static_prompt` (its model state cached after the first call), once as part of the prompt. The
figure is the median first-token latency of each and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path

from aituber.config import load_character
from aituber.core.prompt import PromptBuilder
from aituber.engine.generator import Engine, GenerationOptions

SAMPLE_CHARACTER = Path(__file__).resolve().parents[2] / "characters" / "mika"
COMMENTS = ["こんばんは！", "好きな食べ物は？", "今日の配信なにするの？", "ゲームは得意？", "おやすみなさい",
            "初見です！", "歌ってほしいな", "明日も配信ある？"]


def first_token_s(engine: Engine, prompt, static: bool) -> float:
    done = threading.Event()
    start = time.perf_counter()
    first: list[float] = []

    def emit(chunk) -> None:
        if not first:
            first.append(time.perf_counter() - start)

    engine.generate_blocking(prompt, GenerationOptions(max_new_tokens=1, temperature=0, max_chars=None,
                                                       static_prompt=static, stop_strings=()), emit, done)
    return first[0]


def run_static_prompt_bench(model_dir: Path, repeat_persona: int = 3, rounds: int = 3) -> dict:
    character = load_character(SAMPLE_CHARACTER).character
    persona = "\n".join([character.persona.strip()] * repeat_persona)  # a long persona
    builder = PromptBuilder(character.prompt_template, persona)
    with Engine(model_dir) as engine:
        prompts = [builder.build(c, "たぬき丸") for c in COMMENTS]
        static_tokens = len(engine.encode_prompt(prompts[0])[0] or [])
        cached = engine.static_prompt_limit is None or static_tokens < engine.static_prompt_limit
        first_token_s(engine, prompts[0], True)  # warm up, and fill the cache
        with_cache, without = [], []
        for _ in range(rounds):
            for p in prompts:  # interleaved, so both see the same machine
                with_cache.append(first_token_s(engine, p, True))
                without.append(first_token_s(engine, p, False))
    a, b = statistics.median(with_cache), statistics.median(without)
    return {"persona_tokens": static_tokens, "cached": cached, "with_static_ms": a * 1000,
            "without_ms": b * 1000, "speedup": b / a, "samples": len(with_cache)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aituber bench static_prompt", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--repeat-persona", type=int, default=3, help="persona length: the sample's, N times")
    args = parser.parse_args(argv)
    r = run_static_prompt_bench(args.model, args.repeat_persona)
    note = "" if r["cached"] else " (over the model's window: not cached, both the same)"
    print(f"persona {r['persona_tokens']} tokens{note}, {r['samples']} prompts each:")
    print(f"first token with static_prompt {r['with_static_ms']:.0f} ms, without {r['without_ms']:.0f} ms "
          f"({r['speedup']:.2f}x)")
    return 0
