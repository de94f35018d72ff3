"""Shared fixtures: a tiny CTranslate2 model built locally (no download), paths, and helpers."""

from __future__ import annotations

import os
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


FAIL_ON_SKIP = "AITUBER_FAIL_ON_SKIP"
"""Set by .ci/run: there everything a test needs is installed, so a skipped test (other than one
marked `gpu`) fails the run."""


def _unexpected_skips(config: pytest.Config) -> list[pytest.TestReport]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    return [r for r in skipped if "gpu" not in r.keywords]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if os.environ.get(FAIL_ON_SKIP) != "1":
        return
    unexpected = _unexpected_skips(config)
    if unexpected:
        terminalreporter.section(f"{len(unexpected)} test(s) skipped that must run here ({FAIL_ON_SKIP}=1)",
                                 red=True)
        for report in unexpected:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            terminalreporter.line(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get(FAIL_ON_SKIP) == "1" and session.exitstatus == 0 and _unexpected_skips(session.config):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with a byte-level BPE tokenizer, converted to CTranslate2 float32."""
    from tests.tiny_model import build_ct2_model

    return build_ct2_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def sample_character() -> Path:
    return REPO_ROOT / "characters" / "mika"
