"""Fixtures for the voice tests: a VOICEVOX-compatible engine (tests.voice.fake_voicevox, backed by
pyopenjtalk) as a real process on a loopback port, which a test can kill and restart; and a pipeline
emit that fans events out to outputs the way aituber.app.Pipeline does."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeVoicevox:
    """One fake engine process on 127.0.0.1:`port`; `requests()` reads what it was asked."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self.log = workdir / f"voicevox-{port}.jsonl"
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, delay_s: float = 0.0, fail_text: str | None = None) -> None:
        args = [sys.executable, "-m", "tests.voice.fake_voicevox", "--port", str(self.port), "--log", str(self.log),
                "--delay-s", str(delay_s)]
        if fail_text:
            args += ["--fail-text", fail_text]
        self.proc = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until READY (or the process ends)
        if not line.startswith("READY"):
            self.proc.kill()
            pytest.fail(f"the fake VOICEVOX engine did not start: {line!r} {self.proc.stderr.read() if self.proc.stderr else ''}")
        assert time.monotonic() < deadline

    def kill(self) -> None:
        """kill -9: connections reset, nothing answered."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        entries = [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]
        return [e for e in entries if path is None or e["path"] == path]


@pytest.fixture
def voicevox_factory(tmp_path: Path) -> Iterator[Callable[..., FakeVoicevox]]:
    """make(start=True, port=None, **faults) -> FakeVoicevox; all killed at the end."""
    engines: list[FakeVoicevox] = []

    def make(start: bool = True, port: int | None = None, **faults: Any) -> FakeVoicevox:
        engine = FakeVoicevox(tmp_path, port or free_port())
        engines.append(engine)
        if start:
            engine.start(**faults)
        return engine

    try:
        yield make
    finally:
        for engine in engines:
            engine.kill()


class Fanout:
    """What Pipeline.emit does for outputs: each event to each output, and kept for the test."""

    def __init__(self, *outputs: Any) -> None:
        self.outputs = list(outputs)
        self.events: list[Any] = []

    def __call__(self, event: Any) -> None:
        self.events.append(event)
        for output in self.outputs:
            output.publish(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]
