"""A trained adapter -> a model the bot runs: merge (peft `merge_and_unload`), then the engine's converter.

`ensure_tuned_model(character_dir, cache_dir)` is what the demo needs: the character's committed
adapter (`characters/NAME/adapter/`) merged into the default base and converted once to
`CACHE/models/<id>-gemma-3-270m-int8` (with the vocabulary TUNED_VOCAB; a trimmed one goes to a folder
named after it, `...-int8-ja`), redone only when the adapter's files change (the folder's
aituber_model.json records their hash and the vocabulary). `tuned_model_status` answers "is it there
already?" without importing torch, so the bot's process can check and run the conversion in a
subprocess only when needed:

    python -m training.export ensure characters/mika --cache-dir ~/.cache/aituber [--vocab full|ja]

prints progress and, as its last line, the model folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aituber import paths
from aituber.engine.modeldir import MODEL_INFO_FILE, model_vocab
from aituber.engine.vocab import VOCABS, check_vocab
from aituber.errors import ModelError

from training.lora import peft_deprecation_quiet, quiet_bitsandbytes_import

Progress = Callable[[str], None]

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
ADAPTER_INFO_FILE = "aituber_adapter.json"
TUNED_VOCAB = "ja"
"""The vocabulary of a character's tuned model on the default base, which the demo and `aituber run`
use (aituber.engine.vocab.VOCABS): trimmed, since on the sample character it halves the time per
token, the model size and the memory, and 117 of 122 held-out comments get the very same greedy reply
(`aituber bench vocab`; the others are English comments). On another base it is "full": that base's
tokenizer may not be trimmable (rinna's is unigram, Qwen's byte-level)."""


def tuned_vocab(base: str) -> str:
    """The vocabulary a tuned model on `base` ("default" or a folder) gets by default."""
    return TUNED_VOCAB if base == "default" else "full"


def merge_adapter(base_dir: str | Path, adapter_dir: str | Path, dtype: Any = None) -> Any:
    """The base with the LoRA merged into its weights (a plain transformers model, in eval mode)."""
    import torch

    quiet_bitsandbytes_import()
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=dtype or torch.float32)
    with peft_deprecation_quiet():
        return PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload().eval()


def convert_with_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path, quantization: str = "int8",
                         progress: Progress = print, info: Mapping[str, Any] | None = None) -> Path:
    """Merge `adapter_dir` into `base_dir` and convert into `out_dir`, which may already hold other
    things (the training output folder: adapter/, checkpoints/): the model files are added beside them."""
    from aituber.engine.convert import convert_model

    quiet_bitsandbytes_import()
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f".{out_dir.name}.model")
    shutil.rmtree(staging, ignore_errors=True)
    with peft_deprecation_quiet():
        convert_model(base_dir, staging, quantization, adapter=adapter_dir, info=dict(info or {}),
                      progress=lambda line: None if line.startswith("model ready:") else progress(line))
    for item in staging.iterdir():
        target = out_dir / item.name
        if target.is_dir():
            shutil.rmtree(target)
        item.replace(target)
    staging.rmdir()
    return out_dir


def adapter_sha256(adapter_dir: Path) -> str:
    """One hash over the adapter's config and weights (what decides whether a merge is stale)."""
    digest = hashlib.sha256()
    for name in ADAPTER_FILES:
        path = adapter_dir / name
        if not path.is_file():
            raise ModelError(f"{adapter_dir}: no {name}; not a trained adapter (train one with 'aituber train')")
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _adapter_base(adapter_dir: Path) -> str:
    info_path = adapter_dir / ADAPTER_INFO_FILE
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "default"
    except (OSError, ValueError) as exc:
        raise ModelError(f"{info_path}: unreadable: {exc}") from exc
    return str(info.get("base", "default"))


def tuned_model_status(character_dir: str | Path, cache_dir: Path, vocab: str | None = None) -> tuple[Path, bool]:
    """(where the tuned model with `vocab` goes, whether it is there for the current adapter). No torch.
    `vocab` None: the default for the adapter's base (`tuned_vocab`)."""
    from training.settings import adapter_dir, load_training_character

    character_dir = Path(character_dir)
    adapter = adapter_dir(character_dir)
    base = _adapter_base(adapter)
    vocab = check_vocab(vocab if vocab is not None else tuned_vocab(base))
    out = paths.tuned_model_dir(load_training_character(character_dir)[0].id, Path(cache_dir).expanduser(), base)
    if vocab != "full":
        out = out.with_name(f"{out.name}-{vocab}")
    digest = adapter_sha256(adapter)
    try:
        meta = json.loads((out / MODEL_INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return out, False
    ready = meta.get("adapter_sha256") == digest and model_vocab(meta) == vocab
    return out, ready and (out / "model.bin").is_file()


def character_texts(character_dir: str | Path) -> list[str]:
    """What a trimmed vocabulary must encode exactly as the full one: the character's persona and
    prompts (static prefix and turn, as the engine tokenizes them) and its dialogue data."""
    from aituber.config import prompt_builder
    from training.dataset import read_examples
    from training.settings import load_training_character

    character_dir = Path(character_dir)
    character, settings = load_training_character(character_dir)
    try:
        builder = prompt_builder(character)
    except ValueError:  # the `chat` template needs the model's chat template: the persona alone then
        builder = None
    texts = [character.persona]
    examples, _ = read_examples(character_dir / settings.dataset, settings.max_chars)
    for example in examples:
        for turn in example.turns:
            texts += [turn.instruction, turn.input, turn.output]
            if builder is not None:
                prompt = builder.build(turn.instruction)
                texts += [prompt.static, prompt.dynamic]
    return list(dict.fromkeys(t for t in texts if t))


def ensure_tuned_model(character_dir: str | Path, cache_dir: Path, progress: Progress = print,
                       vocab: str | None = None) -> Path:
    """The character's adapter merged into its base and converted to CTranslate2 int8 in the cache, the
    vocabulary trimmed to `vocab` (None: `tuned_vocab(base)`) after the merge; nothing is done when the
    folder already matches the adapter's hash and the vocabulary. Imports torch when it converts."""
    character_dir = Path(character_dir)
    cache_dir = Path(cache_dir).expanduser()
    out, ready = tuned_model_status(character_dir, cache_dir, vocab)
    if ready:
        progress(f"tuned model already prepared: {out}")
        return out
    from training.settings import adapter_dir as find_adapter

    adapter_dir = find_adapter(character_dir)
    base = _adapter_base(adapter_dir)
    vocab = vocab if vocab is not None else tuned_vocab(base)
    if base == "default":
        from aituber.engine.prepare import default_base_dir

        base_dir = default_base_dir(cache_dir, progress)
    else:
        base_dir = Path(base).expanduser()
    from aituber.engine.convert import convert_model

    quiet_bitsandbytes_import()
    progress(f"merging {adapter_dir} into {base_dir.name} and converting to {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    texts = character_texts(character_dir) if vocab != "full" else []
    with peft_deprecation_quiet():
        return convert_model(base_dir, out, "int8", adapter=adapter_dir, progress=progress, vocab=vocab,
                             keep_texts=texts,
                             info={"adapter_sha256": adapter_sha256(adapter_dir), "base": base,
                                   "character_dir": str(character_dir.absolute())})


def main(argv: list[str] | None = None) -> int:
    from aituber.errors import AituberError

    parser = argparse.ArgumentParser(prog="python -m training.export")
    sub = parser.add_subparsers(dest="action", required=True)
    ensure = sub.add_parser("ensure", help="merge the character's adapter into its base and convert (once)")
    ensure.add_argument("character", type=Path)
    ensure.add_argument("--cache-dir", type=Path, required=True)
    ensure.add_argument("--vocab", choices=list(VOCABS),
                        help=f"vocabulary: {'; '.join(f'{k}: {v}' for k, v in VOCABS.items())} (default: "
                             f"{TUNED_VOCAB} on the default base, full on another)")
    args = parser.parse_args(argv)
    try:
        out = ensure_tuned_model(args.character, args.cache_dir, progress=lambda m: print(m, file=sys.stderr),
                                 vocab=args.vocab)
    except AituberError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
