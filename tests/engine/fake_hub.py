"""A local HTTP server that speaks the part of the Hugging Face Hub's protocol `huggingface_hub` uses to
download a model (set `HF_ENDPOINT`, or pass `endpoint=`), serving folders made by the tests.

What huggingface_hub asks (read from its source: hf_api.py, file_download.py, _snapshot_download.py):

- `GET /api/models/{repo}/revision/{rev}`: the model info, with `sha` (the commit) and `siblings`;
- `GET /api/models/{repo}/tree/{commit}?recursive=...`: the file list (`type`, `path`, `size`, `oid`,
  and `lfs` {oid: sha256, size, pointerSize} for large files);
- `HEAD /{repo}/resolve/{commit}/{file}`: `X-Repo-Commit`, `ETag` and `Content-Length`;
- `GET` on the same with `Range: bytes=N-` to resume (206 and `Content-Range`).

Errors carry `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `GatedRepo`, `EntryNotFound`) as the Hub
sends them. `drop_once` names files whose first download is cut half-way (the connection is closed
after half the bytes), to check that the download resumes; `fail` names files whose download (the GET, not the HEAD) is answered with HTTP 503.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin")


@dataclass
class HubRepo:
    folder: Path
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    revisions: dict[str, str] = field(default_factory=dict)
    """Branch or tag name -> commit (main is always there)."""
    gated_token: str | None = None
    """When set, only a request with this bearer token gets the files."""

    def files(self) -> dict[str, bytes]:
        return {p.relative_to(self.folder).as_posix(): p.read_bytes()
                for p in sorted(self.folder.rglob("*")) if p.is_file()}


@dataclass
class Logged:
    method: str
    path: str
    range: str | None
    authorization: str | None


class FakeHub:
    def __init__(self, repos: dict[str, HubRepo]) -> None:
        self.repos = repos
        self.log: list[Logged] = []
        self.drop_once: set[str] = set()
        self.fail: set[str] = set()
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                hub._handle(self, head=False)

            def do_HEAD(self) -> None:
                hub._handle(self, head=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-hub", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def file_gets(self) -> list[Logged]:
        return [r for r in self.log if r.method == "GET" and "/resolve/" in r.path]

    # -- answering ----------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        path = unquote(urlsplit(h.path).path)
        with self._lock:
            self.log.append(Logged("HEAD" if head else "GET", path, h.headers.get("Range"),
                                   h.headers.get("Authorization")))
        if path.startswith("/api/models/"):
            self._api(h, path[len("/api/models/"):])
        elif "/resolve/" in path:
            self._resolve(h, path.lstrip("/"), head)
        else:
            self._error(h, 404, "EntryNotFound")

    def _repo(self, h: BaseHTTPRequestHandler, repo_id: str) -> HubRepo | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            self._error(h, 401, "RepoNotFound")
            return None
        if repo.gated_token and h.headers.get("Authorization") != f"Bearer {repo.gated_token}":
            self._error(h, 403, "GatedRepo")
            return None
        return repo

    def _commit(self, h: BaseHTTPRequestHandler, repo: HubRepo, revision: str) -> str | None:
        commit = {"main": repo.commit, repo.commit: repo.commit, **repo.revisions}.get(revision)
        if commit is None:
            self._error(h, 404, "RevisionNotFound")
        return commit

    def _api(self, h: BaseHTTPRequestHandler, rest: str) -> None:
        for marker in ("/revision/", "/tree/"):
            if marker in rest:
                repo_id, _, revision = rest.partition(marker)
                break
        else:
            repo_id, marker, revision = rest, "/revision/", "main"
        repo = self._repo(h, repo_id)
        if repo is None or (commit := self._commit(h, repo, revision)) is None:
            return
        files = repo.files()
        if marker == "/revision/":
            body = {"id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
                    "gated": "manual" if repo.gated_token else False,
                    "siblings": [{"rfilename": name} for name in files]}
        else:
            body = []
            for name, data in files.items():
                entry = {"type": "file", "path": name, "size": len(data), "oid": _git_oid(data)}
                if name.endswith(LFS_SUFFIXES):
                    entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
                body.append(entry)
        self._send(h, 200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _resolve(self, h: BaseHTTPRequestHandler, rest: str, head: bool) -> None:
        repo_part, _, tail = rest.partition("/resolve/")
        revision, _, name = tail.partition("/")
        repo = self._repo(h, repo_part)
        if repo is None or (commit := self._commit(h, repo, revision)) is None:
            return
        data = repo.files().get(name)
        if data is None:
            self._error(h, 404, "EntryNotFound", {"X-Repo-Commit": commit})
            return
        if name in self.fail and not head:
            self._error(h, 503, None, {"X-Repo-Commit": commit})
            return
        etag = hashlib.sha256(data).hexdigest() if name.endswith(LFS_SUFFIXES) else _git_oid(data)
        headers = {"X-Repo-Commit": commit, "ETag": f'"{etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        start = 0
        status = 200
        wanted = h.headers.get("Range")
        if wanted and not head:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        if head:
            self._send(h, 200, b"", {**headers, "Content-Length": str(len(data))}, head=True)
            return
        if name in self.drop_once and status == 200:
            self.drop_once.discard(name)
            h.send_response(200)
            for key, value in {**headers, "Content-Length": str(len(body))}.items():
                h.send_header(key, value)
            h.end_headers()
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)  # the connection breaks half-way through the file
            return
        self._send(h, status, body, headers)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str],
              head: bool = False) -> None:
        h.send_response(status)
        for key, value in headers.items():
            h.send_header(key, value)
        if "Content-Length" not in headers:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)

    def _error(self, h: BaseHTTPRequestHandler, status: int, code: str | None,
               extra: dict[str, str] | None = None) -> None:
        body = json.dumps({"error": code or "Internal Error"}).encode()
        headers = {"Content-Type": "application/json", **(extra or {})}
        if code:
            headers["X-Error-Code"] = code
        self._send(h, status, body, headers, head=h.command == "HEAD")


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
