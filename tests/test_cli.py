"""The `aituber` command as a user runs it: real processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import FIXTURES, REPO_ROOT

pytestmark = pytest.mark.slow


def aituber(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aituber", *args], capture_output=True, text=True,
                          timeout=120, cwd=kw.pop("cwd", REPO_ROOT), **kw)


def test_unknown_character_folder_is_a_one_line_error(tmp_path):
    result = aituber("replay", str(FIXTURES / "chat_small.jsonl"), "--character", str(tmp_path / "nobody"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "character folder not found" in result.stderr and "nobody" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_character_key_names_file_and_key(tmp_path):
    (tmp_path / "character.toml").write_text('id = "x"\nname = "X"\n[generation]\ntemprature = 1\n',
                                             encoding="utf-8")
    result = aituber("replay", str(FIXTURES / "chat_small.jsonl"), "--character", str(tmp_path))
    assert result.returncode == 2
    assert "character.toml" in result.stderr and "generation.temprature" in result.stderr


def test_unknown_model_folder_is_a_one_line_error(tmp_path, sample_character):
    result = aituber("replay", str(FIXTURES / "chat_small.jsonl"), "--character", str(sample_character),
                     "--model", str(tmp_path / "no-model"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "model folder not found" in result.stderr and "no-model" in result.stderr


def test_folder_without_weights_is_a_one_line_error(tmp_path, sample_character):
    (tmp_path / "config.json").write_text("{}")
    result = aituber("replay", str(FIXTURES / "chat_small.jsonl"), "--character", str(sample_character),
                     "--model", str(tmp_path))
    assert result.returncode == 2 and "no model.bin" in result.stderr


def test_replay_warns_with_file_and_line_and_never_imports_torch(tiny_model, sample_character, tmp_path):
    transcript = tmp_path / "t.jsonl"
    code = (
        "import sys; from aituber.cli import main; rc = main(sys.argv[1:]); "
        "print('TORCH_LOADED', 'torch' in sys.modules); sys.exit(rc)"
    )
    log = FIXTURES / "chat_small.jsonl"
    result = subprocess.run(
        [sys.executable, "-c", code, "replay", str(log), "--character", str(sample_character),
         "--model", str(tiny_model), "--fast", "--port", "0", "--transcript", str(transcript)],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert f"{log}:4: not valid JSON" in result.stderr
    assert f"{log}:7: 'author' is missing" in result.stderr
    assert f"{log}:11: 'kind' 'unknown_kind'" in result.stderr
    assert "TORCH_LOADED False" in result.stdout
    assert "=== summary ===" in result.stdout and "first token  p50" in result.stdout
    records = [json.loads(line) for line in transcript.read_text(encoding="utf-8").splitlines()]
    assert records[0]["type"] == "run_start" and records[-1]["type"] == "run_end"


def test_ctrl_c_stops_cleanly(tiny_model, sample_character, tmp_path):
    # A slow log: one comment a second for a minute.
    log = tmp_path / "slow.jsonl"
    log.write_text("".join(json.dumps({"id": f"c{i}", "offset_s": float(i), "author": "viewer",
                                       "text": f"コメント{i}です"}, ensure_ascii=False) + "\n"
                           for i in range(60)), encoding="utf-8")
    transcript = tmp_path / "t.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aituber", "replay", str(log), "--character", str(sample_character),
         "--model", str(tiny_model), "--port", "0", "--transcript", str(transcript)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until a reply was written
            if transcript.exists() and '"type": "reply"' in transcript.read_text(encoding="utf-8"):
                break
            time.sleep(0.2)
        else:
            pytest.fail("no reply within 60 s")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in stderr, stderr
    assert "stopped (Ctrl-C)" in stdout and "=== summary ===" in stdout
    lines = transcript.read_text(encoding="utf-8").splitlines()
    last = json.loads(lines[-1])  # every line is whole JSON, the last one closes the run
    assert all(json.loads(line) for line in lines)
    assert last["type"] == "run_end" and last["interrupted"] is True


def test_chat_rehearsal_from_stdin(tiny_model, sample_character, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "aituber", "chat", "--character", str(sample_character), "--model", str(tiny_model),
         "--no-overlay", "--transcript", str(tmp_path / "t.jsonl")],
        input="たろう: こんにちは！\n/quit\n", capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert "たろう" in result.stdout and "answered 1" in result.stdout


def test_bad_youtube_url_is_a_one_line_error(sample_character):
    result = aituber("run", "--youtube", "https://example.com/watch?v=abc", "--character", str(sample_character))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "YouTube" in result.stderr
