"""Training settings: the `[training]` table of a character's character.toml, then command-line overrides."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aituber.config import CHARACTER_FILE, Character, load_character
from aituber.errors import ConfigError


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """What a training run uses; each key can be set in the character's `[training]` table."""

    dataset: str = "dataset/train.jsonl"
    """The training file, relative to the character folder."""
    eval_fraction: float = 0.1
    """Share of the dataset held out for the eval loss (a seeded split)."""
    seed: int = 42
    epochs: int = 3
    batch_size: int = 4
    learning_rate: float = 2e-4
    warmup_ratio: float = 0.05
    """Linear warm-up over this share of the steps, then linear decay to zero."""
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 512
    """Longest example in tokens, persona prompt included; a longer one is a dataset error."""
    max_chars: int = 1000
    """Longest exchange in characters (instruction + input + output)."""
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    mlp: bool = False
    """Also adapt the MLP projections (a larger adapter)."""
    quantize: str = "none"
    """QLoRA: load the base through bitsandbytes in "4bit" (nf4, double quantisation) or "8bit" (int8)
    and train the LoRA on top; "none" trains on the full-precision base. The merge always goes into a
    full-precision copy of the base."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: much less GPU memory for a 3-8B base, slower steps."""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "[training]") -> TrainSettings:
        """Settings from a TOML table or CLI overrides; an unknown key or a bad value is a ConfigError."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key not in fields:
                raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(fields)})")
            default = fields[key].default
            kind = type(default)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ConfigError(f"{where}: {key!r} must be {kind.__name__}, got {value!r}")
            kwargs[key] = value
        settings = cls(**kwargs)
        settings.check(where)
        return settings

    def replace(self, overrides: Mapping[str, Any], where: str = "overrides") -> TrainSettings:
        merged = {**dataclasses.asdict(self), **{k: v for k, v in overrides.items() if v is not None}}
        return TrainSettings.from_mapping(merged, where)

    def check(self, where: str) -> None:
        positive = ("epochs", "batch_size", "max_length", "max_chars", "rank", "alpha")
        for key in positive:
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}: {key!r} must be at least 1")
        if not 0 <= self.eval_fraction < 1:
            raise ConfigError(f"{where}: 'eval_fraction' must be in [0, 1)")
        if not 0 <= self.dropout < 1 or not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"{where}: 'dropout' and 'warmup_ratio' must be in [0, 1)")
        if self.learning_rate <= 0:
            raise ConfigError(f"{where}: 'learning_rate' must be positive")
        if self.quantize not in QUANTIZE_CHOICES:
            raise ConfigError(f"{where}: 'quantize' must be one of {', '.join(map(repr, QUANTIZE_CHOICES))}, "
                              f"got {self.quantize!r}")


QUANTIZE_CHOICES = ("none", "4bit", "8bit")
"""`quantize`: how the base is loaded for training (bitsandbytes nf4 / int8, or not at all)."""


#: Tables this package reads from character.toml itself (the character model may not know them yet).
OWN_TABLES = ("training", "model")
DEFAULT_ADAPTER = "adapter"


def _read_raw(folder: Path) -> dict[str, Any]:
    file = folder / CHARACTER_FILE
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        load_character(folder)  # raises the config's own message for a missing folder or file
        raise
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from exc


def _table(raw: Mapping[str, Any], name: str, file: Path) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: '{name}' must be a table ([{name}])")
    return table


def load_training_character(character_dir: str | Path) -> tuple[Character, TrainSettings]:
    """The character and its `[training]` settings (defaults where the table is absent).

    `[training]` and `[model]` are read from the raw TOML, so this works whether or not the
    character model knows them yet."""
    folder = Path(character_dir)
    file = folder / CHARACTER_FILE
    raw = _read_raw(folder)
    settings = TrainSettings.from_mapping(_table(raw, "training", file), f"{file}: [training]")
    try:
        character = load_character(folder).character
    except ConfigError:
        if not any(name in raw for name in OWN_TABLES):
            raise
        # The character model does not know these tables yet: validate the rest as the config does.
        rest = {k: v for k, v in raw.items() if k not in OWN_TABLES}
        try:
            character = Character.model_validate(rest)
        except Exception as exc:
            raise ConfigError(f"{file}: {exc}") from exc
    return character, settings


def adapter_dir(character_dir: str | Path) -> Path:
    """The character's LoRA adapter folder: `[model] adapter` (relative to the folder), default `adapter/`."""
    folder = Path(character_dir)
    file = folder / CHARACTER_FILE
    model = _table(_read_raw(folder), "model", file)
    unknown = sorted(set(model) - {"adapter"})
    if unknown:
        raise ConfigError(f"{file}: [model]: unknown key {unknown[0]!r} (known: adapter)")
    value = model.get("adapter", DEFAULT_ADAPTER)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{file}: [model]: 'adapter' must be a folder name relative to the character folder")
    return folder / value
