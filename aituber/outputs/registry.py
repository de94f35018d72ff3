"""Output names -> factories, in the order outputs start (and the reverse of the order they close).

A factory is `module:function` taking an `OutputContext` and returning an `Output`, or None when the
run's settings leave that output off; modules are imported only when a run builds its outputs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from aituber.outputs.base import Output, OutputContext

OUTPUTS: dict[str, str] = {
    "transcript": "aituber.outputs.transcript:create_output",
    "console": "aituber.outputs.console:create_output",
    "overlay": "aituber.outputs.overlay:create_output",
    "control": "aituber.outputs.control:create_output",
    "mqtt": "aituber.outputs.mqtt:create_output",
    "obs": "aituber.outputs.obs:create_output",
    "voice": "aituber.outputs.voice:create_output",
}

OutputFactory = Callable[[OutputContext], Output | None]


def build_outputs(context: OutputContext, names: tuple[str, ...] | None = None) -> list[Output]:
    """The outputs the run's settings turn on, in registry order (`names`: only these)."""
    outputs: list[Output] = []
    for name, target in OUTPUTS.items():
        if names is not None and name not in names:
            continue
        module_name, _, function = target.partition(":")
        factory = cast(OutputFactory, getattr(importlib.import_module(module_name), function))
        output = factory(context)
        if output is not None:
            outputs.append(output)
    return outputs
