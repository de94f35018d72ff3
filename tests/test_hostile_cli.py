"""Hostile and broken input through the `aituber` command, as a user runs it: a real process, the tiny
model (its real tokenizer), a real transcript. Nothing a log holds may end the session; a log that
gives nothing is exit 2, never 0; `--strict` is one line, the summary and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, REPO_ROOT

pytestmark = pytest.mark.slow

SURROGATE_LOG = (
    # A lone surrogate as JSON writes it (\ud800), in a text, a name and an id; a BOM, a control
    # character, a non-character, and a record whose text is far over the cap.
    '{"id": "h1", "author": "たぬき", "text": "こんにちは\\ud800です"}\n'
    '{"id": "h2", "author": {"name": "ねこ\\udfff", "channel_id": "UC\\ud83d"}, "text": "やっほー"}\n'
    '{"id": "h3\\udc00", "author": "いぬ", "text": "\\ufeffゲーム\\u0000何が\\ufffe好き？"}\n'
    '{"id": "h4", "author": "うさぎ", "text": "' + "あ" * 5000 + '"}\n'
)


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aituber", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO_ROOT)


def replay(log: Path, model: Path, character: Path, transcript: Path, *extra: str) -> subprocess.CompletedProcess:
    return run("replay", str(log), "--character", str(character), "--model", str(model), "--fast",
               "--no-overlay", "--transcript", str(transcript), *extra)


def records(transcript: Path) -> list[dict]:
    data = transcript.read_bytes()
    data.decode("utf-8")  # strict: every byte is UTF-8
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def test_surrogates_and_control_characters_end_nothing(tiny_model, sample_character, tmp_path):
    log = tmp_path / "hostile.jsonl"
    log.write_text(SURROGATE_LOG, encoding="utf-8")
    transcript = tmp_path / "t.jsonl"
    result = replay(log, tiny_model, sample_character, transcript)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "TypeError" not in result.stderr, result.stderr
    lines = records(transcript)
    comments = {r["id"]: r for r in lines if r["type"] == "comment"}
    assert set(comments) == {"h1", "h2", "h3\ufffd", "h4"}  # every comment has its line
    assert comments["h1"]["text"] == "こんにちは\ufffdです"
    assert comments["h2"]["author"]["name"] == "ねこ\ufffd" and comments["h2"]["author"]["channel_id"] == "UC\ufffd"
    assert comments["h3\ufffd"]["text"] == "ゲーム何が好き？"
    assert len(comments["h4"]["text"]) == 1000  # cut at read time
    assert "\\ud8" not in transcript.read_text(encoding="utf-8")  # nothing escaped: nothing invalid left
    replies = [r for r in lines if r["type"] == "reply"]
    assert replies and all(r["stop_reason"] != "error" for r in replies), replies
    assert "engine_error" not in result.stdout


def test_strict_is_one_line_the_summary_and_exit_2(tiny_model, sample_character, tmp_path):
    log = tmp_path / "strict.jsonl"
    log.write_text(
        '{"id": "p1", "author": "たぬき", "text": "応援してます", "kind": "super_chat", "amount": 500, '
        '"currency": "JPY"}\n'
        '{"id": "p2", "author": "ねこ", "text": "がんばって", "kind": "super_chat", "amount": 300, '
        '"currency": "JPY"}\n'
        'this line is not json\n'
        '{"id": "p3", "author": "いぬ", "text": "こんにちは"}\n', encoding="utf-8")
    transcript = tmp_path / "t.jsonl"
    result = replay(log, tiny_model, sample_character, transcript, "--strict")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith(("INFO ", "DEBUG "))]
    assert errors == [f"aituber: error: {log}:3: not valid JSON (JSONDecodeError: Expecting value: "
                      "line 1 column 1 (char 0))"]
    assert "=== summary ===" in result.stdout and "comments seen 2" in result.stdout
    lines = records(transcript)
    assert lines[-1]["type"] == "run_end" and lines[-1]["interrupted"] is True
    # Nothing is recorded as said that was not: every reply the run started has its end, and one cut
    # short by the error says "cancelled", never "stop".
    started = {r["reply_id"] for r in lines if r["type"] == "selected"}
    ended = {r["reply_id"]: r for r in lines if r["type"] == "reply"}
    assert started <= set(ended)
    assert all(r["stop_reason"] in ("stop", "length", "cancelled") for r in ended.values())
    assert not any(r["comment_id"] == "p3" for r in ended.values())


NOTHING = [b"", b"\n\n", b"this is not a chat log\nnor this\n", b"\xff\xfe\x00garbage",
           b'{"responseContext": {}, "continuationContents": {"liveChatContinuation": {}}}\n']


@pytest.mark.parametrize("content", NOTHING, ids=["empty", "blank", "text", "binary", "response-without-chat"])
def test_a_log_with_nothing_to_replay_is_exit_2_with_the_reason(content, tiny_model, sample_character, tmp_path):
    log = tmp_path / "nothing.json"
    log.write_bytes(content)
    result = replay(log, tiny_model, sample_character, tmp_path / "t.jsonl")
    assert result.returncode == 2, result.stdout
    [error] = [line for line in result.stderr.splitlines() if line.startswith("aituber: error:")]
    assert f"{log}: nothing to replay" in error
    assert "=== summary ===" in result.stdout


def test_a_devtools_response_with_format_pytchat_is_warned_about_and_exit_2(tiny_model, sample_character, tmp_path):
    log = tmp_path / "devtools.json"
    log.write_bytes((FIXTURES / "logs" / "get_live_chat.json").read_bytes())
    result = replay(log, tiny_model, sample_character, tmp_path / "t.jsonl", "--format", "pytchat")
    assert result.returncode == 2
    assert f"{log}:1: no chat action in it" in result.stderr
    assert "this looks like a get-live-chat record" in result.stderr
    # Detected by content, the same file replays.
    result = replay(log, tiny_model, sample_character, tmp_path / "t2.jsonl")
    assert result.returncode == 0, result.stderr
    assert "source: " in result.stdout and "text " in result.stdout
