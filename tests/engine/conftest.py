"""Tiny random models of every supported architecture, built and converted once per session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class TinyModel:
    arch: str
    hf: Path
    """The transformers checkpoint (tokenizer included)."""
    ct2: Path
    """Its CTranslate2 float32 conversion."""
    progress: tuple[str, ...]
    """What the conversion printed."""


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], TinyModel]:
    """`tiny_models(arch)`: the tiny model of `arch` (tests.tiny_model.ARCHITECTURES), built on first use."""
    from aituber.engine.convert import convert_model
    from tests.tiny_model import build_hf_model

    root = tmp_path_factory.mktemp("tiny-archs")
    built: dict[str, TinyModel] = {}

    def get(arch: str) -> TinyModel:
        if arch not in built:
            hf = build_hf_model(arch, root / arch / "hf")
            lines: list[str] = []
            ct2 = convert_model(hf, root / arch / "ct2", "float32", progress=lines.append)
            built[arch] = TinyModel(arch, hf, ct2, tuple(lines))
        return built[arch]

    return get
