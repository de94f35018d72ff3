"""Shared fixtures: a tiny CTranslate2 model built locally (no download), paths, and helpers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = REPO_ROOT.parent / "shared"
CHROMIUM = Path("/usr/bin/chromium")


def require_shared(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared fixtures beside the checkout); not present here")
    return path


def require_chromium() -> Path:
    if not CHROMIUM.exists() or shutil.which("chromium") is None and not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with a byte-level BPE tokenizer, converted to CTranslate2 float32."""
    from tests.tiny_model import build_ct2_model

    return build_ct2_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def sample_character() -> Path:
    return REPO_ROOT / "characters" / "mika"
