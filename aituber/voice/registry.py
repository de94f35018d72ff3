"""Voice engine names -> factories. `[voice] engine` and `--voice` take exactly these names (and "none").

A factory is `module:function` taking `VoiceSettings` and returning a `VoiceEngine`, imported only
when that engine is chosen; it must not block (loading happens in `start`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from aituber.errors import ConfigError
from aituber.voice.base import VoiceEngine, VoiceSettings

VOICES: dict[str, str] = {
    "openjtalk": "aituber.voice.openjtalk:create_engine",
    "voicevox": "aituber.voice.voicevox:create_engine",
}
NO_VOICE = "none"

VoiceFactory = Callable[[VoiceSettings], VoiceEngine]


def create_voice(settings: VoiceSettings) -> VoiceEngine:
    target = VOICES.get(settings.engine)
    if target is None:
        raise ConfigError(f"unknown voice engine {settings.engine!r} (known: {', '.join([*VOICES, NO_VOICE])})")
    module_name, _, function = target.partition(":")
    return cast(VoiceFactory, getattr(importlib.import_module(module_name), function))(settings)
