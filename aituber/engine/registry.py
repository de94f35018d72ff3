"""Engine names -> factories. `--engine` and `[engine] kind` take exactly these names.

A factory is `module:function`, imported only when that engine is chosen, so the bot never loads a
model library it does not use. A factory takes `EngineSettings` and returns an `Engine`; it may block
(load a model), so callers run it in a worker thread.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from aituber.engine.base import Engine, EngineSettings
from aituber.errors import ConfigError

ENGINES: dict[str, str] = {
    "ctranslate2": "aituber.engine.ct2:create_engine",
    "openai": "aituber.engine.openai:create_engine",
}

EngineFactory = Callable[[EngineSettings], Engine]


def engine_factory(kind: str) -> EngineFactory:
    """The factory registered for `kind`; a ConfigError listing the known kinds otherwise."""
    target = ENGINES.get(kind)
    if target is None:
        raise ConfigError(f"unknown engine {kind!r} (known: {', '.join(ENGINES)})")
    module_name, _, function = target.partition(":")
    return cast(EngineFactory, getattr(importlib.import_module(module_name), function))


def create_engine(settings: EngineSettings) -> Engine:
    """Build the engine `settings.kind` names (blocking: loads the model)."""
    return engine_factory(settings.kind)(settings)
