"""`aituber init` as a user runs it: flags, questions on a terminal, the new character replayed with the
real pipeline (and an absent OBS that must not stop it), and no overwriting."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES, REPO_ROOT
from tests.obs_studio import free_port

pytestmark = pytest.mark.slow


def aituber(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aituber", *args], capture_output=True, text=True, timeout=180,
                          cwd=kw.pop("cwd", REPO_ROOT), **kw)


def test_init_then_replay_the_new_character(tmp_path, tiny_model):
    folder = tmp_path / "characters" / "sora"
    made = aituber("init", str(folder), "--name", "空野ソラ", "--first-person", "ソラ", "--endings", "だよ、なの",
                   "--voice", "voicevox", "--speaker", "3")
    assert made.returncode == 0, made.stderr
    assert f"created {folder}" in made.stdout and "character.toml" in made.stdout
    # The streamer turns on a BRB scene by uncommenting its example line.
    toml = folder / "character.toml"
    text = toml.read_text(encoding="utf-8")
    assert '# paused_scene = "BRB"' in text
    toml.write_text(text.replace('# paused_scene = "BRB"', 'paused_scene = "BRB"'), encoding="utf-8")

    transcript = tmp_path / "t.jsonl"
    result = aituber("replay", str(FIXTURES / "chat_small.jsonl"), "--character", str(folder),
                     "--model", str(tiny_model), "--fast", "--port", "0", "--transcript", str(transcript),
                     "--obs", f"127.0.0.1:{free_port()}")
    assert result.returncode == 0, result.stderr
    assert "character: 空野ソラ" in result.stdout and "=== summary ===" in result.stdout
    assert result.stdout.count("obs: ws://127.0.0.1:") == 1  # announced
    assert result.stderr.count("obs: cannot reach OBS") == 1 and "Traceback" not in result.stderr
    records = [json.loads(line) for line in transcript.read_text(encoding="utf-8").splitlines()]
    assert records[0]["type"] == "run_start" and records[0]["character"] == "sora"
    assert any(r["type"] == "reply" for r in records) and records[-1]["type"] == "run_end"


def test_init_refuses_an_existing_folder_and_a_bad_id(tmp_path):
    folder = tmp_path / "sora"
    assert aituber("init", str(folder), "--no-input").returncode == 0
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    again = aituber("init", str(folder), "--name", "別人")
    assert again.returncode == 2 and again.stderr.strip().count("\n") == 0
    assert "already exists" in again.stderr and str(folder) in again.stderr
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    bad = aituber("init", str(tmp_path / "空野"), "--no-input")
    assert bad.returncode == 2 and "--id" in bad.stderr and not (tmp_path / "空野").exists()
    named = aituber("init", str(tmp_path / "空野"), "--id", "sora2", "--no-input")
    assert named.returncode == 0 and 'id = "sora2"' in (tmp_path / "空野" / "character.toml").read_text("utf-8")


def test_init_asks_on_a_terminal(tmp_path):
    folder = tmp_path / "hikari"
    master, slave = os.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "aituber", "init", str(folder), "--template", "instruction"],
                                   stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=REPO_ROOT)
        # name, first person, endings, (template given), persona, voice engine
        os.write(master, "光野ヒカリ\nヒカリ\nだよ,だもん\n\nopenjtalk\n".encode())
        out, err = process.communicate(timeout=120)
    finally:
        os.close(master)
        os.close(slave)
    assert process.returncode == 0, out + err
    assert "display name" in out and "prompt template" not in out  # --template was given: not asked
    text = (folder / "character.toml").read_text(encoding="utf-8")
    assert 'name = "光野ヒカリ"' in text and 'first_person = "ヒカリ"' in text
    assert 'sentence_endings = ["だよ", "だもん"]' in text and "openjtalk" in text
