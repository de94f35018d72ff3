"""`aituber model prepare ORG/NAME`: a tiny model made by the tests, served by a local server that speaks
the Hub's download protocol, downloaded with huggingface_hub (resumed when the connection breaks),
converted to CTranslate2 and run by the bot's engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from aituber.engine.base import GenerationOptions
from aituber.engine.ct2 import CTranslate2Engine
from aituber.engine.hub import download, hub_model_dir, is_repo_id, prepare_from_hub
from aituber.engine.modeldir import read_model_info
from aituber.engine.prepare import prepare_model
from aituber.errors import ModelError
from tests.conftest import REPO_ROOT
from tests.engine.fake_hub import FakeHub, HubRepo

pytestmark = pytest.mark.slow

REPO = "aituber-tests/tiny-llama"
GATED = "aituber-tests/gated-llama"
TOKEN = "hf_test_token_123"
TAG_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture
def hub(tiny_models):
    folder = tiny_models("llama").hf
    server = FakeHub({REPO: HubRepo(folder, revisions={"v1": TAG_COMMIT, TAG_COMMIT: TAG_COMMIT}),
                      GATED: HubRepo(folder, gated_token=TOKEN)}).start()
    yield server
    server.close()


def test_is_repo_id(tmp_path, monkeypatch):
    assert is_repo_id("Qwen/Qwen2.5-0.5B-Instruct") and is_repo_id("rinna/japanese-gpt-neox-3.6b")
    assert not is_repo_id("just-a-name") and not is_repo_id("a/b/c") and not is_repo_id("/abs/path")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert not is_repo_id("org/name")  # a folder on disk wins


def test_download_resumes_a_broken_connection_then_converts_and_runs(hub, tiny_models, tmp_path, monkeypatch):
    from huggingface_hub import constants

    # huggingface_hub writes (and so resumes from) whole 10 MiB pieces; the tiny weights are 0.5 MB, so
    # it reads them in 64 KiB pieces here, or the half received before the break would be dropped.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    source = tiny_models("llama").hf
    hub.drop_once.add("model.safetensors")
    lines: list[str] = []
    out = prepare_from_hub(REPO, out_dir=tmp_path / "model", cache_dir=tmp_path / "hf-cache", endpoint=hub.url,
                           quantization="float32", progress=lines.append)

    gets = [r for r in hub.file_gets() if r.path.endswith("/model.safetensors")]
    assert [g.range is None for g in gets] == [True, False], "the broken download was not resumed"
    half = (source / "model.safetensors").stat().st_size // 2
    resumed_at = int(gets[1].range.removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= half
    snapshot = tmp_path / "hf-cache" / "models--aituber-tests--tiny-llama" / "snapshots" / HubRepo(source).commit
    assert (snapshot / "model.safetensors").read_bytes() == (source / "model.safetensors").read_bytes()
    # Only what conversion needs was fetched.
    fetched = {g.path.rsplit("/", 1)[-1] for g in hub.file_gets()}
    assert "model.safetensors" in fetched and "config.json" in fetched and "tokenizer.json" in fetched

    info = read_model_info(out)
    assert info["hub_repo"] == REPO and info["hub_commit"] == HubRepo(source).commit and info["source"] == f"hub:{REPO}"
    assert any("downloading aituber-tests/tiny-llama@main" in line for line in lines)
    with CTranslate2Engine(out, device="cpu", compute_type="float32") as engine:
        chunks = engine.generate("こんにちは", GenerationOptions(max_new_tokens=6, temperature=0))
        assert chunks[-1].end in ("stop", "length")

    # Again: nothing is downloaded or converted twice.
    before = len(hub.file_gets())
    lines.clear()
    assert prepare_from_hub(REPO, out_dir=out, cache_dir=tmp_path / "hf-cache", endpoint=hub.url,
                            quantization="float32", progress=lines.append) == out
    assert len(hub.file_gets()) == before
    assert any("already prepared" in line for line in lines)


def test_an_interrupted_download_is_finished_by_the_next_run(hub, tmp_path):
    hub.fail.add("tokenizer.json")
    with pytest.raises(ModelError, match="run the command again to resume"):
        download(REPO, cache_dir=tmp_path / "c", endpoint=hub.url, progress=lambda line: None)
    done_first = {r.path.rsplit("/", 1)[-1] for r in hub.file_gets()}
    assert "model.safetensors" in done_first
    hub.fail.clear()
    hub.log.clear()
    got = download(REPO, cache_dir=tmp_path / "c", endpoint=hub.url, progress=lambda line: None)
    again = {r.path.rsplit("/", 1)[-1] for r in hub.file_gets()}
    assert "tokenizer.json" in again and "model.safetensors" not in again  # kept from the first run
    assert (got.path / "tokenizer.json").is_file() and (got.path / "model.safetensors").is_file()


def test_revision_tag_and_errors(hub, tmp_path):
    got = download(REPO, "v1", cache_dir=tmp_path / "c", endpoint=hub.url, progress=lambda line: None)
    assert got.commit == TAG_COMMIT and got.path.name == TAG_COMMIT and got.revision == "v1"
    with pytest.raises(ModelError, match="no revision 'nope'"):
        download(REPO, "nope", cache_dir=tmp_path / "c", endpoint=hub.url)
    with pytest.raises(ModelError, match="not found"):
        download("aituber-tests/missing", cache_dir=tmp_path / "c", endpoint=hub.url)
    with pytest.raises(ModelError, match="not a Hub model id"):
        download("no-slash", cache_dir=tmp_path / "c", endpoint=hub.url)
    with pytest.raises(ModelError, match="cannot reach|failed"):
        download(REPO, cache_dir=tmp_path / "c", endpoint="http://127.0.0.1:9")


def test_a_gated_model_needs_the_token(hub, tmp_path):
    with pytest.raises(ModelError, match=r"gated.*\$HF_TOKEN"):
        download(GATED, cache_dir=tmp_path / "c", endpoint=hub.url, token=False)  # type: ignore[arg-type]
    got = download(GATED, cache_dir=tmp_path / "c", endpoint=hub.url, token=TOKEN, progress=lambda line: None)
    assert (got.path / "model.safetensors").is_file()
    assert all(r.authorization == f"Bearer {TOKEN}" for r in hub.log[-3:])


def test_a_folder_on_disk_still_works(tiny_models, tmp_path):
    out = prepare_model(str(tiny_models("llama").hf), tmp_path / "from-folder", quantization="float32",
                        progress=lambda line: None)
    assert (out / "model.bin").is_file() and read_model_info(out)["source_dir"]
    with pytest.raises(ModelError, match="--revision goes with a Hub model id"):
        prepare_model(str(tiny_models("llama").hf), tmp_path / "x", revision="main")
    with pytest.raises(ModelError, match="neither a folder nor a Hub model id"):
        prepare_model("not/a/thing/at/all", tmp_path / "y")
    with pytest.raises(ModelError, match="the default model is int8"):
        prepare_model(None, tmp_path / "z", quantization="float16")


def test_the_command_downloads_through_hf_endpoint(hub, tmp_path):
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-home"),
           "AITUBER_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(REPO_ROOT), "HF_TOKEN": TOKEN,
           "HF_HUB_DISABLE_TELEMETRY": "1"}
    result = subprocess.run([sys.executable, "-m", "aituber", "model", "prepare", GATED, "--quantization", "float32"],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    out = hub_model_dir(GATED, "float32", tmp_path / "cache")
    assert out == tmp_path / "cache" / "models" / "aituber-tests--gated-llama-float32"
    assert f"model ready: {out}" in result.stdout
    assert json.loads((out / "aituber_model.json").read_text())["hub_repo"] == GATED
    assert TOKEN not in result.stdout + result.stderr
