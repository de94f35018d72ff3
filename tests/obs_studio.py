"""A real OBS Studio for the tests: Debian's `obs-studio` under `Xvfb`, software rendering, with its
obs-websocket 5 server enabled from `global.ini` (`[OBSWebSocket] ServerEnabled=true`) and a password.

obs-websocket listens on every interface. Where the machine allows it (root, or unprivileged user
namespaces), OBS runs in a network namespace of its own that has nothing but a loopback interface, so
nothing outside this test can reach it (and OBS's own update checks reach nowhere); a bridge carries
the test's connections in: 127.0.0.1:PORT (here) -> a Unix socket (shared through the file system) ->
127.0.0.1:OBS_PORT inside the namespace. Where namespaces are refused, OBS runs as is, on a random port
behind the password.

Run as a script, this module is one end of that bridge:

    python -m tests.obs_studio inner SOCKET OBS_PORT -- obs ...   (in the namespace: loopback up, OBS, Unix -> TCP)
    python -m tests.obs_studio outer SOCKET [PORT]                (here: prints the port, TCP -> Unix)
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import REPO_ROOT

OBS = "obs"
XVFB = "Xvfb"
START_TIMEOUT_S = 180.0


def missing() -> str | None:
    """Why OBS cannot run here, or None."""
    for program, package in ((OBS, "obs-studio"), (XVFB, "xvfb")):
        if shutil.which(program) is None:
            return f"needs Debian's {package} ({program} not found; apt-get install obs-studio xvfb)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the bridge ---------------------------------------------------------------------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connect) -> None:
    try:
        other_reader, other_writer = await connect()
    except OSError:
        writer.close()
        return
    await asyncio.gather(_pipe(reader, other_writer), _pipe(other_reader, writer))


def _loopback_up() -> None:
    """`ip link set lo up`, without needing iproute2."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sh", fcntl.ioctl(s, siocgifflags, struct.pack("16sh", b"lo", 0)))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))


async def _inner(sock: str, port: int, command: list[str]) -> int:
    _loopback_up()
    process = await asyncio.create_subprocess_exec(*command)
    server = await asyncio.start_unix_server(
        lambda r, w: _splice(r, w, lambda: asyncio.open_connection("127.0.0.1", port)), path=sock)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, process.terminate)
    async with server:
        code = await process.wait()
    return code


async def _outer(sock: str, port: int) -> None:
    server = await asyncio.start_server(lambda r, w: _splice(r, w, lambda: asyncio.open_unix_connection(sock)),
                                        "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


# --- OBS ---------------------------------------------------------------------------------------------


@dataclass
class ObsStudio:
    url: str
    password: str
    home: Path
    isolated: bool
    """OBS runs in a network namespace of its own (loopback only)."""
    processes: list[subprocess.Popen] = field(default_factory=list)
    bridge: subprocess.Popen | None = None
    """The outer end of the bridge (isolated only)."""
    sock: str = ""

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def cut(self) -> None:
        """Break the connections to OBS and refuse new ones, as if OBS had gone (isolated only)."""
        assert self.bridge is not None, "only an isolated OBS has a bridge to cut"
        os.killpg(self.bridge.pid, signal.SIGKILL)
        self.bridge.wait(10)

    def restore(self) -> None:
        """The bridge back on the same port."""
        self.bridge, _ = _start_bridge(self.sock, self.port)
        self.processes.append(self.bridge)

    @property
    def log(self) -> str:
        logs = sorted((self.home / ".config" / "obs-studio" / "logs").glob("*.txt"))
        return logs[-1].read_text(encoding="utf-8", errors="replace")[-4000:] if logs else "(no OBS log)"

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


def _global_ini(port: int, password: str) -> str:
    return "\n".join([
        "[General]",
        "FirstRun=true",  # no auto-configuration wizard
        "ConfirmOnExit=false",
        "",
        "[OBSWebSocket]",
        "FirstLoad=false",
        "ServerEnabled=true",
        f"ServerPort={port}",
        "AlertsEnabled=false",
        "AuthRequired=true",
        f"ServerPassword={password}",
        "",
    ])


def _netns_works() -> bool:
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0:
                return True
        except (OSError, subprocess.TimeoutExpired):
            pass
    return False


def _unshare() -> list[str]:
    if subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0:
        return ["unshare", "-n"]
    return ["unshare", "-rn"]


def _start_xvfb(workdir: Path) -> tuple[subprocess.Popen, str]:
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen([XVFB, "-displayfd", str(write_fd), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                               pass_fds=(write_fd,), stdout=subprocess.DEVNULL,
                               stderr=(workdir / "xvfb.log").open("wb"), start_new_session=True)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        display = pipe.readline().strip()
    if not display:
        process.kill()
        raise RuntimeError(f"Xvfb did not start: {(workdir / 'xvfb.log').read_text(errors='replace')[-2000:]}")
    return process, f":{display}"


def _start_bridge(sock: str, port: int = 0) -> tuple[subprocess.Popen, int]:
    outer = subprocess.Popen([sys.executable, "-m", "tests.obs_studio", "outer", sock, str(port)],
                             env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, cwd=REPO_ROOT,
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert outer.stdout is not None
    line = outer.stdout.readline()
    if not line.strip().isdigit():
        outer.kill()
        raise RuntimeError(f"the bridge did not start (port {port} taken?)")
    return outer, int(line)


def start_obs(workdir: Path) -> ObsStudio:
    """OBS under Xvfb with its WebSocket server on; returns once the server answers (or raises)."""
    from aituber.outputs.obs import connect_obs, disconnect_obs

    home = workdir / "home"
    config = home / ".config" / "obs-studio"
    config.mkdir(parents=True)
    password = secrets.token_urlsafe(16)
    isolated = _netns_works()
    obs_port = 4455 if isolated else free_port()
    (config / "global.ini").write_text(_global_ini(obs_port, password), encoding="utf-8")
    studio = ObsStudio("", password, home, isolated)
    try:
        xvfb, display = _start_xvfb(workdir)
        studio.processes.append(xvfb)
        env = {**os.environ, "HOME": str(home), "DISPLAY": display, "LIBGL_ALWAYS_SOFTWARE": "1",
               "QT_QPA_PLATFORM": "xcb", "XDG_CONFIG_HOME": str(home / ".config")}
        env.pop("WAYLAND_DISPLAY", None)
        obs = [OBS, "--multi", "--disable-shutdown-check", "--minimize-to-tray", "--disable-missing-files-check"]
        obs_log = (workdir / "obs.out").open("wb")
        if isolated:
            sock = str(workdir / "obs.sock")
            inner = subprocess.Popen([*_unshare(), sys.executable, "-m", "tests.obs_studio", "inner", sock,
                                      str(obs_port), "--", *obs], env={**env, "PYTHONPATH": str(REPO_ROOT)},
                                     cwd=REPO_ROOT, stdout=obs_log, stderr=subprocess.STDOUT, start_new_session=True)
            studio.processes.append(inner)
            studio.sock = sock
            studio.bridge, port = _start_bridge(sock)
            studio.processes.append(studio.bridge)
            studio.url = f"ws://127.0.0.1:{port}"
        else:
            studio.processes.append(subprocess.Popen(obs, env=env, cwd=workdir, stdout=obs_log,
                                                     stderr=subprocess.STDOUT, start_new_session=True))
            studio.url = f"ws://127.0.0.1:{obs_port}"

        async def answers() -> bool:
            try:
                client = await connect_obs(studio.url, password, 5.0)
            except Exception:
                return False
            await disconnect_obs(client)
            return True

        deadline = time.monotonic() + START_TIMEOUT_S
        while not asyncio.run(answers()):
            if any(p.poll() is not None for p in studio.processes):
                raise RuntimeError(f"OBS exited while starting:\n{(workdir / 'obs.out').read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"OBS's WebSocket server did not answer within {START_TIMEOUT_S:g} s:\n"
                                   f"{studio.log}")
            time.sleep(0.5)
    except BaseException:
        studio.stop()
        raise
    return studio


def main(argv: list[str]) -> int:
    if argv[:1] == ["inner"]:
        sock, port, rest = argv[1], int(argv[2]), argv[3:]
        return asyncio.run(_inner(sock, port, rest[1:] if rest[:1] == ["--"] else rest))
    if argv[:1] == ["outer"]:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_outer(argv[1], int(argv[2]) if len(argv) > 2 else 0))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
