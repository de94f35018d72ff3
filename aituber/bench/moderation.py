"""NG filter quality and cost: recall and false positives on the labelled corpus, and ingest throughput.

    aituber bench moderation [--corpus DIR] [--ingest N] [--misses]

The corpus is tests/core/ng_corpus in a source checkout (evasive variants generated from the shipped NG
list plus hand-written ones, and benign chat with near misses); `--corpus` points elsewhere. Recall is
the share of evasive comments skipped "ng_word", false positives the share of benign ones that are.
Ingest is `aituber bench ingest` (normalise + moderation + queue, comments per CPU second). The targets
(recall >= 98 %, false positives <= 1 %, ingest >= 50,000 comments/s) decide the exit code: 0 met, 1 not.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import os
import time
from pathlib import Path
from types import ModuleType

from aituber.core.comment import Author, Comment
from aituber.core.moderation import ModerationSettings, Moderator

__all__ = ["load_corpus", "main", "run_corpus"]

RECALL_TARGET = 0.98
FALSE_POSITIVE_TARGET = 0.01
INGEST_TARGET = 50_000


def _default_corpus() -> Path:
    return Path(__file__).resolve().parents[2] / "tests" / "core" / "ng_corpus"


def load_corpus(directory: Path) -> ModuleType:
    """The corpus generator module (generate.py) in `directory`."""
    path = directory / "generate.py"
    if not path.is_file():
        raise FileNotFoundError(
            f"no NG corpus at {directory} (generate.py missing): run from a source checkout or pass --corpus DIR"
        )
    spec = importlib.util.spec_from_file_location("aituber_ng_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_corpus(corpus: ModuleType) -> dict[str, object]:
    """Each corpus comment through a fresh-history `Moderator.check` (repeat, flood and per-viewer
    limits off, so that only the NG filters decide)."""
    moderator = Moderator(ModerationSettings(flood_threshold=0, near_duplicate_window_s=0.0, max_answers_per_viewer=0))
    author = Author(name="viewer", channel_id="UC_bench")
    evasive: list[tuple[str, str]] = corpus.evasive_corpus()
    benign: list[str] = corpus.benign_corpus()
    by_rule: collections.Counter[str] = collections.Counter()
    caught_by_rule: collections.Counter[str] = collections.Counter()
    missed: list[tuple[str, str]] = []
    blocked: list[str] = []
    start = time.process_time()
    for i, (text, rule) in enumerate(evasive):
        by_rule[rule] += 1
        if moderator.check(Comment(id=f"e{i}", author=author, text=text), 0.0) == "ng_word":
            caught_by_rule[rule] += 1
        else:
            missed.append((rule, text))
    for i, text in enumerate(benign):
        if moderator.check(Comment(id=f"b{i}", author=author, text=text), 0.0) == "ng_word":
            blocked.append(text)
    cpu_s = time.process_time() - start
    return {
        "evasive": len(evasive),
        "benign": len(benign),
        "recall": (len(evasive) - len(missed)) / len(evasive),
        "false_positive_rate": len(blocked) / len(benign),
        "by_rule": {rule: (caught_by_rule[rule], count) for rule, count in by_rule.most_common()},
        "missed": missed,
        "blocked": blocked,
        "cpu_ms_per_comment": 1000 * cpu_s / (len(evasive) + len(benign)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aituber bench moderation", description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=_default_corpus(), help="the corpus folder (generate.py)")
    parser.add_argument("--ingest", type=int, default=100_000, metavar="N",
                        help="comments for the ingest throughput run (default 100000; 0 skips it)")
    parser.add_argument("--misses", action="store_true", help="list the missed evasions and blocked benign comments")
    args = parser.parse_args(argv)
    try:
        corpus = load_corpus(args.corpus)
    except FileNotFoundError as exc:
        print(f"error: {exc}")
        return 2
    ingest: dict[str, object] | None = None
    if args.ingest > 0:  # first, in a process that has done nothing else yet (as `aituber bench ingest`)
        from aituber.bench.ingest import run_ingest_bench

        ingest = run_ingest_bench(args.ingest)
    result = run_corpus(corpus)
    recall, fp_rate = float(result["recall"]), float(result["false_positive_rate"])  # type: ignore[arg-type]
    caught = round(recall * int(result["evasive"]))  # type: ignore[call-overload]
    blocked: list[str] = result["blocked"]  # type: ignore[assignment]
    print(f"NG corpus: recall {recall:.1%} ({caught}/{result['evasive']} evasive variants skipped ng_word), "
          f"false positives {fp_rate:.1%} ({len(blocked)}/{result['benign']} benign comments); "
          f"{result['cpu_ms_per_comment']:.3f} ms CPU per corpus comment")
    by_rule: dict[str, tuple[int, int]] = result["by_rule"]  # type: ignore[assignment]
    print("  by rule: " + ", ".join(f"{rule} {hit}/{count}" for rule, (hit, count) in by_rule.items()))
    if args.misses:
        for rule, text in result["missed"]:  # type: ignore[attr-defined]
            print(f"  missed ({rule}): {text}")
        for text in blocked:
            print(f"  blocked: {text}")
    ok = recall >= RECALL_TARGET and fp_rate <= FALSE_POSITIVE_TARGET
    if ingest is not None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"ingest: {ingest['comments_per_s']:,} comments/s per CPU second, {ingest['wall_comments_per_s']:,} wall "
              f"({ingest['comments']:,} comments; load average {load:.2f} on {os.cpu_count()} CPUs)")
        ok = ok and int(ingest["comments_per_s"]) >= INGEST_TARGET  # type: ignore[call-overload]
    targets = (f"targets: recall >= {RECALL_TARGET:.0%}, false positives <= {FALSE_POSITIVE_TARGET:.0%}"
               + (f", ingest >= {INGEST_TARGET:,}/s" if args.ingest > 0 else ""))
    print(f"{targets}: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
