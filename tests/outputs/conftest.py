"""Fixtures for the outputs: a real mosquitto broker on a free loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """One mosquitto process on 127.0.0.1:`port`, anonymous, that a test can kill and restart.

    With `persistence=True` it saves its state after every change into `workdir`, so that a
    persistent session (clean_session=False) outlives a kill -9.
    """

    def __init__(self, workdir: Path, port: int, persistence: bool = False) -> None:
        self.workdir = workdir
        self.port = port
        self.persistence = persistence
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "mosquitto.log"

    @property
    def db(self) -> Path:
        return self.workdir / "mosquitto.db"

    def start(self) -> None:
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true"]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/",
                      "autosave_on_changes true", "autosave_interval 1"]
        else:
            lines.append("persistence false")
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to user "mosquitto", who cannot write here
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"mosquitto exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"mosquitto did not listen on {self.port}:\n{self.log.read_text()}")
                time.sleep(0.02)

    def kill(self) -> None:
        """kill -9: no goodbye to the clients, nothing saved."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def mosquitto_binary() -> str:
    """The broker found on PATH (Debian: /usr/sbin/mosquitto), or skip the test saying how to get it."""
    found = shutil.which("mosquitto")
    if found is None:
        pytest.skip("needs the mosquitto broker on PATH (apt-get install mosquitto)")
    return found


def _require_mosquitto() -> None:
    mosquitto_binary()


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator:
    """make(persistence=False, start=True) -> Mosquitto on a fresh free port; all stopped at the end."""
    _require_mosquitto()
    brokers: list[Mosquitto] = []

    def make(persistence: bool = False, start: bool = True) -> Mosquitto:
        workdir = tmp_path / f"mosquitto{len(brokers)}"
        workdir.mkdir()
        broker = Mosquitto(workdir, free_port(), persistence)
        brokers.append(broker)
        if start:
            broker.start()
        return broker

    try:
        yield make
    finally:
        for broker in brokers:
            broker.stop()


@pytest.fixture
def mosquitto(mosquitto_factory) -> Mosquitto:
    return mosquitto_factory()
