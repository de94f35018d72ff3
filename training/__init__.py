"""Character LoRA training: dataset -> LoRA -> merge -> CTranslate2, and the evaluation.

Modules (torch is imported only when training, merging or converting actually runs):

- `training.dataset`   JSONL exchanges -> validated examples -> token ids, labels on the reply only
- `training.settings`  `TrainSettings` from the character's `[training]` table; `[model] adapter`
- `training.lora`      the peft LoRA training loop (checkpoints, resume)
- `training.train`     `train_character` / `cli_train`: `aituber train`
- `training.export`    merge + convert; `ensure_tuned_model` for the demo
- `training.evaluate`  `evaluate_character` / `cli_eval`: `aituber eval`

Never imports aituber.outputs, aituber.sources or aituber.app.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "train_character": "training.train", "cli_train": "training.train", "add_train_arguments": "training.train",
    "TrainResult": "training.train", "TrainSettings": "training.settings",
    "ensure_tuned_model": "training.export", "tuned_model_status": "training.export",
    "evaluate_character": "training.evaluate", "render_markdown": "training.evaluate",
    "cli_eval": "training.evaluate", "add_eval_arguments": "training.evaluate",
    "DatasetError": "training.dataset",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
