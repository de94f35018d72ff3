"""`aituber train`: a character folder -> a LoRA adapter -> a merged CTranslate2 model the bot runs.

    aituber train characters/NAME [--base default|HF_DIR] --out DIR [--adapter-only] [--resume]
                  [--epochs N] [--batch-size N] [--learning-rate X] [--rank N] [--alpha N]
                  [--max-length N] [--seed N] [--mlp] [--quantize none|4bit|8bit]
                  [--gradient-checkpointing]

The output folder, when done:

    DIR/model.bin, config.json, tokenizer.json, ...   the merged model, CTranslate2 int8: `--model DIR`
    DIR/adapter/                                       the LoRA adapter (adapter_config.json + safetensors)
    DIR/checkpoints/epoch-NNN/                         per-epoch adapter + optimizer state (`--resume`)
    DIR/training_log.json                              settings, steps, time, losses per epoch

With `--adapter-only` nothing is merged or converted. The dataset is validated (every problem, with
its line) before the base model is even loaded. Settings come from the `[training]` table of the
character's character.toml (see `TrainSettings`), then from the command line.

`--quantize 4bit|8bit` is QLoRA: the base is loaded through bitsandbytes (nf4 / int8) for training
only; the adapter is merged into the full-precision base read from disk again, then converted.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aituber import paths
from aituber.config import Character
from aituber.engine.prepare import default_base_dir
from aituber.core.prompt import PromptBuilder
from aituber.errors import ConfigError, ModelError

from training.dataset import PromptEncoder, load_dataset, split_examples
from training.lora import CHECKPOINTS, EpochStats
from training.settings import QUANTIZE_CHOICES, TrainSettings, load_training_character

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

ADAPTER_INFO_FILE = "aituber_adapter.json"
"""Beside the adapter: which base it was trained on ("default" or a folder) and how."""
TRAINING_LOG = "training_log.json"


@dataclass(frozen=True, slots=True)
class TrainResult:
    out_dir: Path
    adapter_dir: Path
    model_dir: Path | None
    """The merged CTranslate2 model (the out folder itself), None with adapter_only."""
    settings: TrainSettings
    steps: int
    seconds: float
    history: tuple[EpochStats, ...]
    initial_eval_loss: float | None
    n_train: int
    n_eval: int


def resolve_base(base: str | Path, cache_dir: Path | None, progress: Progress = print) -> tuple[Path, str]:
    """(transformers folder, label): "default" is the default Gemma 3 270M, exported to the cache once."""
    if str(base) == "default":
        return default_base_dir(cache_dir or paths.cache_dir(), progress), "default"
    path = Path(base).expanduser()
    if not (path / "config.json").is_file():
        raise ModelError(f"--base {path}: not a transformers model folder (no config.json); "
                         "use 'default' or a folder with config.json, tokenizer and weights")
    return path, str(path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_encoder(character: Character, tokenizer: Any) -> PromptEncoder:
    """The prompt encoder for `character` with the base's tokenizer (`ConvertedTokenizer`, what the
    converted model will ship), so the ids equal what the engine feeds."""
    hf = tokenizer.hf
    # The same builder as the bot (aituber.app.prompt_builder), with the model's chat template.
    builder = PromptBuilder(character.prompt_template, character.persona,
                            viewer_names=character.prompt.viewer_names,
                            chat_template=getattr(hf, "chat_template", None),
                            special_tokens={k: v for k in ("bos_token", "eos_token")
                                            if isinstance(v := getattr(hf, k, None), str)})
    eos_id = hf.eos_token_id
    if eos_id is None:
        raise ModelError("the base model's tokenizer has no end token; cannot teach replies to end")
    bos_id = hf.bos_token_id if tokenizer.adds_bos and hf.bos_token_id is not None else None
    return PromptEncoder(builder, lambda text: hf(text, add_special_tokens=False)["input_ids"], bos_id, eos_id,
                         static_prompt=character.prompt.static_prompt)


def train_character(character_dir: str | Path, base: str | Path, out: str | Path, adapter_only: bool = False,
                    resume: bool = False, overrides: Mapping[str, Any] | None = None, *,
                    cache_dir: Path | None = None, quantization: str = "int8", progress: Progress = print,
                    show_bar: bool = True) -> TrainResult:
    """Validate the character's dataset, train a LoRA on `base`, merge and convert it into `out`."""
    started = time.monotonic()
    character_dir = Path(character_dir)
    out_dir = Path(out).expanduser()
    character, settings = load_training_character(character_dir)
    settings = settings.replace(overrides or {}, "command-line options")
    dataset_path = character_dir / settings.dataset
    examples = load_dataset(dataset_path, settings.max_chars)  # all problems, before any model is loaded
    train_examples, eval_examples = split_examples(examples, settings.eval_fraction, settings.seed)
    progress(f"{dataset_path}: {len(examples)} examples ({len(train_examples)} train, {len(eval_examples)} eval, "
             f"seed {settings.seed})")
    if out_dir.exists() and any(out_dir.iterdir()) and not resume and not (out_dir / TRAINING_LOG).is_file() \
            and not (out_dir / CHECKPOINTS).is_dir():
        raise ConfigError(f"--out {out_dir}: exists and is not a training output folder; choose a new folder")

    if settings.quantize != "none":
        from training.lora import require_bitsandbytes

        require_bitsandbytes(settings.quantize)  # before any folder is touched or model loaded
    if not resume and (out_dir / CHECKPOINTS).is_dir():
        progress(f"{out_dir}: starting over (without --resume); the old checkpoints are removed")
        shutil.rmtree(out_dir / CHECKPOINTS)
    base_dir, base_label = resolve_base(base, cache_dir, progress)
    from aituber.engine.convert import inspect_source, load_tokenizer
    from training.lora import check_quantizable

    source = inspect_source(base_dir)
    check_quantizable(base_dir, settings.quantize)
    tokenizer = load_tokenizer(base_dir)
    encoder = build_encoder(character, tokenizer)
    train_items = encoder.encode_all(train_examples, settings.max_length)
    eval_items = encoder.encode_all(eval_examples, settings.max_length)
    lengths = sorted(len(i) for i in train_items)
    progress(f"tokens per example: min {lengths[0]}, median {lengths[len(lengths) // 2]}, max {lengths[-1]} "
             f"(prompt with the persona, reply and end token)")
    pad_id = tokenizer.hf.pad_token_id if tokenizer.hf.pad_token_id is not None else encoder.eos_id

    from training.lora import train_lora

    fingerprint = {"base": base_label, "dataset_sha256": _sha256(dataset_path),
                   "persona_sha256": hashlib.sha256(character.persona.encode()).hexdigest(),
                   "template": character.template}
    run = train_lora(base_dir, train_items, eval_items, settings, out_dir, pad_id=pad_id, resume=resume,
                     base_label=base_label, progress=progress, show_bar=show_bar, fingerprint=fingerprint)
    info = {"character": character.id, "base": base_label, "architecture": source.architecture,
            "template": character.template, "settings": dataclasses.asdict(settings),
            "steps": run.steps, "train_seconds": round(run.seconds, 1), "device": run.device, "dtype": run.dtype,
            "initial_eval_loss": run.initial_eval_loss,
            "epochs": [dataclasses.asdict(h) for h in run.history],
            "n_train": len(train_items), "n_eval": len(eval_items), **fingerprint}
    (run.adapter_dir / ADAPTER_INFO_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n",
                                                     encoding="utf-8")
    model_dir = None
    if adapter_only and (out_dir / "model.bin").is_file():
        progress(f"{out_dir}: removing the merged model of an earlier run (it does not hold this adapter)")
        for name in ("model.bin", "aituber_model.json"):
            (out_dir / name).unlink(missing_ok=True)
    if not adapter_only:
        from training.export import convert_with_adapter

        if settings.quantize != "none":
            progress(f"merging into the full-precision base from {base_dir} (the {settings.quantize} weights were "
                     "for training only)")
        model_dir = convert_with_adapter(base_dir, run.adapter_dir, out_dir, quantization, progress=progress,
                                         info={"character": character.id, "base": base_label})
    total = time.monotonic() - started
    (out_dir / TRAINING_LOG).write_text(json.dumps({**info, "total_seconds": round(total, 1)}, ensure_ascii=False,
                                                   indent=2) + "\n", encoding="utf-8")
    progress(f"done in {total:.0f} s: adapter {run.adapter_dir}"
             + (f"; model {model_dir} (run it with --model {model_dir})" if model_dir else ""))
    return TrainResult(out_dir=out_dir, adapter_dir=run.adapter_dir, model_dir=model_dir, settings=settings,
                       steps=run.steps, seconds=run.seconds, history=tuple(run.history),
                       initial_eval_loss=run.initial_eval_loss, n_train=len(train_items), n_eval=len(eval_items))


# --- command line ---------------------------------------------------------------------------------

#: `aituber train` options that override `[training]` keys.
OVERRIDE_OPTIONS = {"epochs": int, "batch_size": int, "learning_rate": float, "rank": int, "alpha": int,
                    "dropout": float, "max_length": int, "seed": int, "eval_fraction": float}


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The `aituber train` arguments (the CLI adds them to its subparser)."""
    parser.add_argument("character", type=Path, metavar="DIR", help="character folder (character.toml, dataset/)")
    parser.add_argument("--base", default="default", metavar="default|HF_DIR",
                        help="base model: the default Gemma 3 270M or a transformers folder (default: default)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--adapter-only", action="store_true", help="train the adapter only; no merge or conversion")
    parser.add_argument("--resume", action="store_true", help="continue from the last epoch checkpoint in --out")
    parser.add_argument("--quantization", default="int8", help="CTranslate2 quantization of the merged model")
    parser.add_argument("--mlp", action="store_true", default=None, help="also adapt the MLP projections")
    parser.add_argument("--quantize", choices=QUANTIZE_CHOICES, default=None,
                        help="QLoRA: load the base through bitsandbytes in 4bit (nf4) or 8bit (int8) for training "
                             "(needs bitsandbytes; for 3-8B bases on one GPU); the merge uses the full-precision "
                             "base (default: training.quantize, else none)")
    parser.add_argument("--gradient-checkpointing", action="store_true", default=None,
                        help="recompute activations in the backward pass: far less GPU memory, slower steps")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    for name, kind in OVERRIDE_OPTIONS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None, metavar="N" if kind is int else "X",
                            help=f"override training.{name}")


def cli_train(args: argparse.Namespace) -> TrainResult:
    """Run `aituber train` from parsed arguments; `args.cache_dir` (if set) is the model cache."""
    overrides = {name: getattr(args, name, None) for name in OVERRIDE_OPTIONS}
    for flag in ("mlp", "gradient_checkpointing"):
        if getattr(args, flag, None):
            overrides[flag] = True
    if getattr(args, "quantize", None) is not None:
        overrides["quantize"] = args.quantize
    return train_character(args.character, args.base, args.out, adapter_only=args.adapter_only,
                           resume=args.resume, overrides=overrides, cache_dir=getattr(args, "cache_dir", None),
                           quantization=getattr(args, "quantization", "int8"),
                           show_bar=not getattr(args, "no_progress", False))


def main(argv: list[str] | None = None) -> int:  # python -m training.train ...
    from aituber.errors import AituberError

    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cli_train(args)
    except AituberError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
