"""What the benchmarks share: the model and character they default to, building an engine, the load
average, and `bench_main` (parse, run, print the table, optional JSON, exit code)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aituber import paths
from aituber.config import Character, load_character
from aituber.engine.base import Engine, EngineSettings
from aituber.engine.modeldir import check_model_dir, is_prepared
from aituber.errors import AituberError, ModelError

Result = dict[str, Any]


def default_model(model: Path | str | None) -> Path:
    """`--model`, else the prepared default model (an error saying how to prepare it when it is not)."""
    if model is not None:
        return check_model_dir(model)
    model_dir = paths.default_model_dir()
    if not is_prepared(model_dir):
        raise ModelError(f"no model at {model_dir}: run 'aituber model prepare' or pass --model DIR")
    return model_dir


def sample_character(folder: Path | str | None = None) -> Character:
    """The character in `folder`, else the sample character."""
    return load_character(folder if folder is not None else paths.sample_character_dir()).character


def build_engine(model_dir: Path, character: Character | None = None, *, device: str = "auto",
                 compute_type: str = "auto", threads: int = 0, kind: str = "ctranslate2") -> Engine:
    """An engine as the bot builds it (blocking: loads the model)."""
    from aituber.engine.registry import create_engine

    return create_engine(EngineSettings(kind=kind, model=model_dir, device=device, compute_type=compute_type,
                                        threads=threads,
                                        cache_prefix=character.prompt.static_prompt if character else True))


def load_average() -> dict[str, Any]:
    """The 1-minute load average and the CPU count: how busy the machine was (figures are noisy)."""
    return {"load_average_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}


def add_model_arguments(parser: argparse.ArgumentParser, *, engine: bool = True) -> None:
    """--model (default: the prepared Gemma 3 270M); with `engine`, --device, --compute-type, --threads."""
    parser.add_argument("--model", type=Path, metavar="DIR",
                        help="CTranslate2 model folder (default: the prepared Gemma 3 270M)")
    if engine:
        parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
        parser.add_argument("--compute-type", default="auto", help="CTranslate2 compute type (default: auto)")
        parser.add_argument("--threads", type=int, default=0, metavar="N",
                            help="CPU threads for generation (default: the bot's: all cores but one, up to 8)")


def bench_main(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], Result],
               report: Callable[[Result], str], argv: list[str] | None = None, *,
               to_json: Callable[[Result], Any] | None = None,
               ok: Callable[[Result], bool] | None = None) -> int:
    """Parse `argv`, run, print `report(result)`; `--json` also prints the figures as JSON
    (`to_json(result)`, default the whole result). Exit code 0, 1 when `ok(result)` is false (a target
    missed), 2 for an aituber error (printed as one line)."""
    if not any("--json" in action.option_strings for action in parser._actions):
        parser.add_argument("--json", action="store_true", help="print the figures as JSON after the table")
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except AituberError as exc:
        print(f"aituber: error: {exc}", file=sys.stderr)
        return 2
    print(report(result))
    if args.json:
        print(json.dumps(to_json(result) if to_json else result, indent=2, ensure_ascii=False, default=str))
    return 0 if ok is None or ok(result) else 1
