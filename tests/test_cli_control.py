"""`aituber demo` prints the control panel's URL with its token; a token that cannot be used is a
one-line error before the model loads."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def test_demo_prints_the_control_url_with_the_chosen_token(tiny_model, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "aituber", "demo", "--model", str(tiny_model), "--fast", "--end", "2", "--port", "0",
         "--voice", "none", "--control-token", "my-panel-token", "--transcript", str(tmp_path / "t.jsonl")],
        capture_output=True, text=True, timeout=180, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    found = re.search(r"^control: (http://127\.0\.0\.1:(\d+)/control\.html\?token=my-panel-token) ", result.stdout,
                      re.MULTILINE)
    assert found, result.stdout
    overlay = re.search(r"^overlay: http://127\.0\.0\.1:(\d+)/ ", result.stdout, re.MULTILINE)
    assert overlay and overlay.group(1) == found.group(2)  # the same port as the overlay


def test_a_random_control_token_is_printed_when_none_is_given(tiny_model, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "aituber", "replay", str(REPO_ROOT / "tests" / "fixtures" / "chat_small.jsonl"),
         "--character", str(REPO_ROOT / "characters" / "mika"), "--model", str(tiny_model), "--fast", "--port", "0",
         "--voice", "none", "--transcript", str(tmp_path / "t.jsonl")],
        capture_output=True, text=True, timeout=180, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^control: http://127\.0\.0\.1:\d+/control\.html\?token=[A-Za-z0-9_-]{16,} ", result.stdout,
                     re.MULTILINE), result.stdout


def test_a_bad_control_token_is_a_one_line_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "aituber", "replay", str(REPO_ROOT / "tests" / "fixtures" / "chat_small.jsonl"),
         "--character", str(REPO_ROOT / "characters" / "mika"), "--model", str(tmp_path / "never-loaded"),
         "--control-token", "a b"],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "control token" in result.stderr
