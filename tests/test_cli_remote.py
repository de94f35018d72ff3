"""`aituber replay --engine openai ...` as a user runs it: a real llama-cpp-python server with an API key,
the server down at start (a clear error, or the local model with `fallback = "local"`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES, REPO_ROOT
from tests.engine.llama_server import LlamaServer, free_port, require_llama_cpp_server

pytestmark = pytest.mark.slow

KEY = "sk-aituber-test-0123456789"


def aituber(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aituber", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})})


def replay(*extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return aituber("replay", str(FIXTURES / "chat_small.jsonl"), *extra, "--fast", "--no-overlay", env=env)


def test_openai_engine_without_an_address_is_a_one_line_error(sample_character):
    result = replay("--character", str(sample_character), "--engine", "openai")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "--engine-url URL" in result.stderr


def test_server_down_at_start_is_a_clear_error(sample_character, tmp_path):
    result = replay("--character", str(sample_character), "--engine", "openai", "--engine-url",
                    f"http://127.0.0.1:{free_port()}/v1", "--transcript", str(tmp_path / "t.jsonl"))
    assert result.returncode == 2
    assert "cannot reach the engine server at http://127.0.0.1:" in result.stderr
    assert 'fallback = "local"' in result.stderr and "Traceback" not in result.stderr


def test_fallback_to_the_local_model_from_the_character_file(tiny_model, sample_character, tmp_path):
    folder = tmp_path / "bot"
    folder.mkdir()
    text = (sample_character / "character.toml").read_text(encoding="utf-8")
    (folder / "character.toml").write_text(
        text + f'\n[engine]\nkind = "openai"\nurl = "http://127.0.0.1:{free_port()}/v1"\nfallback = "local"\n'
               'connect_timeout_s = 3\n', encoding="utf-8")
    result = replay("--character", str(folder), "--model", str(tiny_model), "--transcript", str(tmp_path / "t.jsonl"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "cannot reach the engine server" in result.stderr and "falling back to the local model" in result.stderr
    records = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()]
    assert next(r for r in records if r["type"] == "run_start")["engine"] == "ctranslate2"
    assert sum(r["type"] == "reply" for r in records) >= 5


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    require_llama_cpp_server()
    server = LlamaServer(tmp_path_factory.mktemp("llama-key") / "server.log", api_key=KEY).start()
    yield server
    server.stop()


def test_replay_against_a_server_with_an_api_key(keyed_server, sample_character, tmp_path):
    transcript = tmp_path / "t.jsonl"
    result = replay("--character", str(sample_character), "--engine", "openai", "--engine-url", keyed_server.url,
                    "--transcript", str(transcript), env={"AITUBER_ENGINE_API_KEY": KEY})
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"served at {keyed_server.url}" in result.stdout and "answered" in result.stdout
    records = [json.loads(line) for line in transcript.read_text(encoding="utf-8").splitlines()]
    run_start = next(r for r in records if r["type"] == "run_start")
    assert run_start["engine"] == "openai" and run_start["model"] == "gemma-3-270m-it"
    replies = [r for r in records if r["type"] == "reply"]
    assert len(replies) >= 5 and all(r["stop_reason"] in ("stop", "length") for r in replies)
    for text in (result.stdout, result.stderr, transcript.read_text(encoding="utf-8")):
        assert KEY not in text

    wrong = replay("--character", str(sample_character), "--engine", "openai", "--engine-url", keyed_server.url,
                   "--transcript", str(tmp_path / "t2.jsonl"), env={"AITUBER_ENGINE_API_KEY": "wrong"})
    assert wrong.returncode == 2 and "HTTP 401" in wrong.stderr and "$AITUBER_ENGINE_API_KEY" in wrong.stderr


def test_help_documents_the_engine_options():
    result = aituber("replay", "--help")
    for option in ("--engine-url", "--engine-model", "--engine-api"):
        assert option in result.stdout
