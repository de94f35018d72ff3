"""A CTranslate2 model folder as `aituber model prepare/convert` writes it: checked and described
without loading a model library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aituber.errors import ModelError

MODEL_INFO_FILE = "aituber_model.json"
"""What conversion recorded about the model (architecture, source, window, adapter hash...)."""


def check_model_dir(model_dir: str | Path) -> Path:
    """The folder, if it holds a CTranslate2 model; a one-line ModelError saying what is wrong otherwise."""
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise ModelError(f"model folder not found: {path}")
    if not (path / "model.bin").is_file():
        found = ", ".join(sorted(p.name for p in path.iterdir())[:5]) or "nothing"
        raise ModelError(
            f"{path}: not a CTranslate2 model (no model.bin; found {found}); "
            "prepare one with 'aituber model prepare'"
        )
    return path


def is_prepared(model_dir: Path) -> bool:
    """A finished conversion (the info file is written last)."""
    return (model_dir / MODEL_INFO_FILE).is_file() and (model_dir / "model.bin").is_file()


def read_model_info(model_dir: Path) -> dict[str, Any]:
    """What conversion recorded about the model; {} for other folders."""
    try:
        info = json.loads((model_dir / MODEL_INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def model_vocab(info: dict[str, Any]) -> str:
    """The vocabulary a model was converted with (aituber.engine.vocab.VOCABS): "full" unless trimmed;
    "ja (an earlier selection)" for a folder trimmed before the selection's current version (asking
    for `ja` then converts it again)."""
    from aituber.engine.vocab import VOCAB_VERSIONS

    vocab = info.get("vocab")
    if not isinstance(vocab, str):
        return "full"
    if vocab in VOCAB_VERSIONS and info.get("vocab_version", 1) != VOCAB_VERSIONS[vocab]:
        return f"{vocab} (an earlier selection)"
    return vocab


def describe_vocab(model_dir: Path) -> str:
    """'vocab full' or 'vocab ja (49,734 of 262,144 tokens)', for the run summary."""
    info = read_model_info(model_dir)
    vocab = model_vocab(info)
    size, source = info.get("vocab_size"), info.get("source_vocab_size")
    if vocab != "full" and isinstance(size, int) and isinstance(source, int):
        return f"vocab {vocab} ({size:,} of {source:,} tokens)"
    return f"vocab {vocab}"
