"""The full vocabulary against the trimmed one (`--vocab ja`): the same character, prompts and greedy replies.

Both models are loaded side by side and asked in turn, comment by comment (the order alternating), so
that load on the machine falls on both alike. The comments are the character's held-out ones
(`dataset/eval.jsonl`), asked with the bot's prompt builder and generation options (stop strings and
length limits included), greedily (temperature 0), so the two replies can be compared token for token.

Figures, for each model: time per token after the first text (the decoding speed, without the prompt's
prefill), first text and full reply p50/p95, the model folder's size, the peak resident memory of a
process that loads the engine and answers one comment (each model in its own process), and the share
of replies identical to the full model's (the others are listed side by side). A round-trip check
encodes and decodes the comments and a set of random Unicode strings with the trimmed tokenizer.

By default the models are the sample character's trained model with each vocabulary, built on first
use (`python -m training.export ensure characters/mika --vocab full|ja`, which needs torch).

    aituber bench vocab [--full DIR] [--trimmed DIR] [--character DIR] [--limit N] [--no-memory]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from aituber import paths
from aituber.bench.common import bench_main, build_engine, load_average
from aituber.config import Character, generation_options, load_character, prompt_builder
from aituber.core.stats import percentile
from aituber.engine.base import complete
from aituber.engine.modeldir import check_model_dir, read_model_info
from aituber.errors import ModelError

#: Targets (issue 17): trimmed / full ratios at most, identical share at least, absolute p50 at most.
PER_TOKEN_RATIO = 0.55
SIZE_RATIO = 0.6
IDENTICAL_SHARE = 0.95
FULL_REPLY_P50_S = 0.6
ROUND_TRIP_RANDOM = 2000
_MIB = 1024 * 1024


def eval_comments(character_dir: Path) -> list[tuple[str, str, str | None]]:
    """(where, comment, viewer name) for each line of the character's held-out comments."""
    from training.dataset import load_comments
    from training.evaluate import EVAL_FILE, _viewer

    return [(where, ex.instruction, _viewer(ex.input)) for where, ex in load_comments(character_dir / EVAL_FILE)]


def greedy(character: Character) -> Character:
    """The character with temperature 0: its other generation options (limits, stops) as they are."""
    return character.model_copy(update={"generation": character.generation.model_copy(update={"temperature": 0.0})})


def ensure_models(character_dir: Path, full: Path | None, trimmed: Path | None) -> tuple[Path, Path]:
    """`--full`/`--trimmed`, else the character's trained model with that vocabulary (built when missing)."""
    from training.export import tuned_model_status

    chosen = []
    for given, vocab in ((full, "full"), (trimmed, "ja")):
        if given is not None:
            chosen.append(check_model_dir(given))
            continue
        model_dir, ready = tuned_model_status(character_dir, paths.cache_dir(), vocab=vocab)
        if not ready:
            print(f"building {model_dir} (vocab {vocab}) ...", file=sys.stderr, flush=True)
            done = subprocess.run([sys.executable, "-m", "training.export", "ensure", str(character_dir),
                                   "--cache-dir", str(paths.cache_dir()), "--vocab", vocab])
            if done.returncode != 0:
                raise ModelError(f"could not build {model_dir} (see above)")
        chosen.append(model_dir)
    return chosen[0], chosen[1]


def _resident_job(job: dict) -> dict:
    """In a fresh process: the peak resident memory of loading the engine and answering one comment,
    above what the process held before (Python and aituber's own imports)."""
    base = _peak_rss_kib()
    folder = load_character(Path(job["character_dir"]))
    engine = build_engine(Path(job["model_dir"]), folder.character)
    try:
        asyncio.run(_one_reply(engine, folder.character, job["comment"]))
    finally:
        engine.close_now()
    peak = _peak_rss_kib()
    return {"peak_mib": peak / 1024, "growth_mib": (peak - base) / 1024}


def _peak_rss_kib() -> int:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss, not inherited across exec)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise ModelError("no VmHWM in /proc/self/status: cannot measure resident memory here")


async def _one_reply(engine: Any, character: Character, comment: str) -> None:
    await engine.start()
    prompt = prompt_builder(character, engine.info).build(comment, None, form=engine.info.prompt_form)
    await complete(engine, prompt, generation_options(character))


def resident_memory(model_dir: Path, character_dir: Path, comment: str) -> dict:
    job = {"model_dir": str(model_dir), "character_dir": str(character_dir), "comment": comment}
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_resident_job, job).result()


def folder_mib(model_dir: Path) -> float:
    return sum(p.stat().st_size for p in model_dir.iterdir() if p.is_file()) / _MIB


def random_texts(count: int, seed: int = 0) -> list[str]:
    """Strings of arbitrary code points (no surrogates), short and long, every plane."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        chars = []
        for _ in range(rng.randint(1, 40)):
            while True:
                code = rng.choice((rng.randint(0x20, 0x7E), rng.randint(0, 0xFFFF), rng.randint(0, 0x10FFFF)))
                if not 0xD800 <= code <= 0xDFFF:
                    break
            chars.append(chr(code))
        texts.append("".join(chars))
    return texts


def round_trip(model_dir: Path, texts: list[str]) -> dict:
    """How many `texts` the model's tokenizer decodes back exactly (U+2581, which SentencePiece-style
    tokenizers read as a space, is compared as a space; so does the full tokenizer)."""
    import tokenizers

    tokenizer = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    failed = [t for t in texts if tokenizer.decode(tokenizer.encode(t, add_special_tokens=False).ids,
                                                   skip_special_tokens=False) != t.replace("\u2581", " ")]
    return {"texts": len(texts), "exact": len(texts) - len(failed), "failed": failed[:5]}


#: Figures taken from the evaluation's metrics (training.evaluate.ModelReport.metrics), per model.
FIGURES = ("per_token_p50_ms", "first_token_p50_ms", "first_token_p95_ms", "full_reply_p50_ms", "full_reply_p95_ms",
           "chars_p50")


def run_vocab_bench(character_dir: Path | None = None, full: Path | None = None, trimmed: Path | None = None,
                    limit: int | None = None, memory: bool = True) -> dict:
    from training.evaluate import run_models
    from training.settings import load_training_character

    character_dir = Path(character_dir or paths.sample_character_dir())
    full_dir, trimmed_dir = ensure_models(character_dir, full, trimmed)
    character = greedy(load_training_character(character_dir)[0])
    comments = eval_comments(character_dir)[:limit]

    def progress(done: int, total: int) -> None:
        print(f"\r{done}/{total} comments", end="\n" if done == total else "", file=sys.stderr, flush=True)

    load_before = load_average()
    reports = run_models(character, (full_dir, trimmed_dir), comments, stops="bot", progress=progress)
    load_after = load_average()
    pairs = list(zip(reports[0].replies, reports[1].replies))
    # Per-comment ratios of the decoding speed (both models answered the same comment at nearly the same time).
    ratios = [t.decode_per_token_s / f.decode_per_token_s for f, t in pairs
              if f.decode_per_token_s and t.decode_per_token_s]
    result: dict[str, Any] = {
        "character": str(character_dir), "comments": len(comments), "load_before": load_before,
        "load_after": load_after, "per_token_ratio_p50": percentile(ratios, 50),
        "identical": sum(1 for f, t in pairs if f.text == t.text),
        "replies": [{"comment": f.comment, "full": f.text, "trimmed": t.text, "same": f.text == t.text}
                    for f, t in pairs],
        "round_trip": round_trip(trimmed_dir, [c for _, c, _ in comments] + random_texts(ROUND_TRIP_RANDOM)),
    }
    for side, model_dir, model_report in (("full", full_dir, reports[0]), ("trimmed", trimmed_dir, reports[1])):
        metrics = model_report.metrics(character)
        result[side] = {"model": str(model_dir), "vocab_size": _vocab_size(model_dir),
                        "folder_mib": folder_mib(model_dir), **{k: metrics[k] for k in FIGURES}}
        if memory and comments:
            result[side]["rss"] = resident_memory(model_dir, character_dir, comments[0][1])
    result["targets"] = targets(result)
    return result


def _vocab_size(model_dir: Path) -> int | None:
    info = read_model_info(model_dir)
    if "vocab_size" in info:
        return int(info["vocab_size"])
    try:
        return len(json.loads((model_dir / "vocabulary.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def targets(r: dict) -> dict[str, tuple[bool, str]]:
    """Each target of the issue: (met, what was measured)."""
    f, t = r["full"], r["trimmed"]
    out: dict[str, tuple[bool, str]] = {}
    ratio = r["per_token_ratio_p50"]
    out[f"per-token time <= {PER_TOKEN_RATIO}x the full model's"] = (
        ratio is not None and ratio <= PER_TOKEN_RATIO, "-" if ratio is None else f"{ratio:.2f}x")
    share = r["identical"] / r["comments"] if r["comments"] else 0.0
    out[f"identical greedy replies >= {IDENTICAL_SHARE:.0%}"] = (share >= IDENTICAL_SHARE, f"{share:.1%}")
    size = t["folder_mib"] / f["folder_mib"]
    out[f"model size <= {SIZE_RATIO}x"] = (size <= SIZE_RATIO, f"{size:.2f}x")
    if "rss" in f and "rss" in t:
        rss = t["rss"]["growth_mib"] / f["rss"]["growth_mib"]
        out[f"RSS <= {SIZE_RATIO}x"] = (rss <= SIZE_RATIO, f"{rss:.2f}x")
    rt = r["round_trip"]
    out["every string round-trips"] = (rt["exact"] == rt["texts"], f"{rt['exact']}/{rt['texts']}")
    p50 = t["full_reply_p50_ms"]
    out[f"full reply p50 <= {FULL_REPLY_P50_S} s (absolute: quiet machine only)"] = (
        p50 is not None and p50 <= FULL_REPLY_P50_S * 1000, "-" if p50 is None else f"{p50:.0f} ms")
    return out


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}{unit}" if abs(value) >= 10 else f"{value:.1f}{unit}"
    return f"{value:,}{unit}"


def report(r: dict) -> str:
    from training.evaluate import _cell

    f, t = r["full"], r["trimmed"]
    rows = [("vocabulary (tokens)", "vocab_size", ""), ("model folder (MiB)", "folder_mib", ""),
            ("per token after the first p50 (ms)", "per_token_p50_ms", ""),
            ("first text p50 (ms)", "first_token_p50_ms", ""), ("first text p95 (ms)", "first_token_p95_ms", ""),
            ("full reply p50 (ms)", "full_reply_p50_ms", ""), ("full reply p95 (ms)", "full_reply_p95_ms", ""),
            ("reply length p50 (chars)", "chars_p50", "")]
    lines = [f"{r['comments']} held-out comments of {r['character']}, greedy, the bot's prompts and stops, "
             "the two models taking turns",
             f"load average {r['load_before']['load_average_1m']} before, {r['load_after']['load_average_1m']} "
             f"after, on {r['load_before']['cpus']} CPUs", "",
             "| | full | trimmed | trimmed / full |", "| --- | ---: | ---: | ---: |"]
    for label, key, unit in rows:
        a, b = f.get(key), t.get(key)
        ratio = f"{b / a:.2f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a else "-"
        lines.append(f"| {label} | {_fmt(a, unit)} | {_fmt(b, unit)} | {ratio} |")
    if "rss" in f and "rss" in t:
        for label, key in (("peak RSS, engine + one reply (MiB)", "growth_mib"), ("peak RSS, whole process (MiB)", "peak_mib")):
            a, b = f["rss"][key], t["rss"][key]
            lines.append(f"| {label} | {a:,.0f} | {b:,.0f} | {b / a:.2f} |")
    share = r["identical"] / r["comments"] if r["comments"] else 0.0
    ratio = r["per_token_ratio_p50"]
    lines += ["", f"per-token time, trimmed / full, per comment, p50: {'-' if ratio is None else f'{ratio:.2f}'}",
              f"identical replies: {r['identical']}/{r['comments']} ({share:.1%})",
              f"round trip (trimmed tokenizer): {r['round_trip']['exact']}/{r['round_trip']['texts']} strings exact",
              "", "targets:"]
    for name, (met, measured) in r["targets"].items():
        lines.append(f"- [{'x' if met else ' '}] {name}: {measured}")
    lines += ["", f"full: {f['model']}", f"trimmed: {t['model']}"]
    different = [d for d in r["replies"] if not d["same"]]
    if different:
        lines += ["", "replies that differ:", "", "| comment | full | trimmed |", "| --- | --- | --- |"]
        for d in different:
            lines.append(f"| {_cell(d['comment'])} | {_cell(d['full'])} | {_cell(d['trimmed'])} |")
    return "\n".join(lines)


def ok(r: dict) -> bool:
    """Every target but the absolute time (which only a quiet machine can show)."""
    return all(met for name, (met, _) in r["targets"].items() if "absolute" not in name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aituber bench vocab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--character", type=Path, metavar="DIR",
                        help="character folder (default: the sample character)")
    parser.add_argument("--full", type=Path, metavar="DIR",
                        help="the full-vocabulary model (default: the character's trained model, built if missing)")
    parser.add_argument("--trimmed", type=Path, metavar="DIR",
                        help="the trimmed model (default: the character's trained model with --vocab ja, built if "
                             "missing)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N held-out comments")
    parser.add_argument("--no-memory", action="store_true", help="skip the resident-memory runs (two processes)")
    return bench_main(parser, lambda a: run_vocab_bench(a.character, a.full, a.trimmed, a.limit, not a.no_memory),
                      report, argv, ok=ok)
