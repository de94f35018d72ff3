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
