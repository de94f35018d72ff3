"""Where things are: the model cache, the default and tuned models, the sample character, the overlay.

The one place that reads `$AITUBER_CACHE` and knows the layout of a checkout or an installed wheel.
In a checkout (or an editable install) the overlay pages and the sample character are the top-level
`obs_overlay/` and `characters/` folders; a built wheel carries them as `aituber/assets/...`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from aituber.errors import ConfigError

CACHE_ENV = "AITUBER_CACHE"
DEFAULT_MODEL_NAME = "gemma-3-270m-int8"
"""The default model converted to CTranslate2 int8, under `<cache>/models/`."""
DEFAULT_HF_NAME = "gemma-3-270m-hf"
"""The default model as a transformers checkpoint (the base for training and merging)."""
DEFAULT_BASE_NAME = "gemma-3-270m"
SAMPLE_CHARACTER_ID = "mika"

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where prepared models live: $AITUBER_CACHE, else ~/.cache/aituber."""
    return Path(environ.get(CACHE_ENV) or Path.home() / ".cache" / "aituber").expanduser()


def models_dir(cache: Path | None = None) -> Path:
    return (cache if cache is not None else cache_dir()) / "models"


def default_model_dir(cache: Path | None = None) -> Path:
    return models_dir(cache) / DEFAULT_MODEL_NAME


def default_hf_dir(cache: Path | None = None) -> Path:
    return models_dir(cache) / DEFAULT_HF_NAME


def tuned_model_dir(character_id: str, cache: Path | None = None, base: str = "default") -> Path:
    """Where a character's adapter merged into `base` ("default" or a folder) is kept."""
    base_name = DEFAULT_BASE_NAME if base == "default" else Path(base).name
    return models_dir(cache) / f"{character_id}-{base_name}-int8"


def _asset(folder: str) -> Path:
    for candidate in (_CHECKOUT / folder, _PACKAGE / "assets" / folder):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"{folder}/ not found beside the aituber package ({_PACKAGE}); reinstall aituber")


def overlay_dir() -> Path:
    """The OBS browser-source pages (obs_overlay/)."""
    return _asset("obs_overlay")


def characters_dir() -> Path:
    """The shipped characters (characters/)."""
    return _asset("characters")


def sample_character_dir() -> Path:
    return characters_dir() / SAMPLE_CHARACTER_ID


def sample_chat() -> Path:
    """The sample character's recorded chat, which the demo replays."""
    return sample_character_dir() / "sample_chat.jsonl"
