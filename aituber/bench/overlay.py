"""Overlay fan-out benchmark: delta delivery latency from `OverlayServer.publish` to many pages.

The server runs here; the pages are WebSocket clients in a second process (as browsers would be),
so that their work does not queue behind the server's on one event loop. Each `reply_delta`
carries `time.perf_counter()` from just before `publish`; each client notes `perf_counter()` when
the frame arrives (one monotonic clock for the whole machine). Target: p99 <= 5 ms.

    python -m aituber.bench.overlay [--clients 50] [--messages 2000] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import statistics
import struct
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from aituber.bench.common import bench_main, load_average
from aituber.core.events import ReplyDelta
from aituber.core.stats import percentile
from aituber.outputs.overlay import OverlayServer

TARGET_P99_MS = 5.0


def run_overlay_bench(clients: int = 50, messages: int = 2000, rate_hz: float = 200.0,
                      delta_chars: int = 3) -> dict[str, Any]:
    """Publish `messages` deltas at `rate_hz` to `clients` pages; latency and publish-cost figures."""
    return asyncio.run(_bench(clients, messages, rate_hz, delta_chars))


async def _bench(clients: int, messages: int, rate_hz: float, delta_chars: int) -> dict[str, Any]:
    overlay = OverlayServer(port=0, client_queue_size=max(1024, messages + 8), ping_interval_s=None)
    await overlay.start()
    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=_clients_main, args=(overlay.port, clients, messages, theirs),
                       name="overlay-bench-clients", daemon=True)
    proc.start()
    try:
        async with asyncio.timeout(60):
            ready = await loop.run_in_executor(None, ours.recv)
            if ready != "ready":
                raise RuntimeError(f"bench clients failed: {ready}")
            while overlay.client_count < clients:
                await asyncio.sleep(0.01)
        filler = "あ" * delta_chars
        publish_s: list[float] = []
        publish_cpu_s: list[float] = []  # CPU time: what publish costs, whatever else runs on the machine
        period = 1.0 / rate_hz
        start = time.perf_counter()
        for i in range(messages):
            due = start + i * period
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            cpu = time.thread_time()
            sent = time.perf_counter()
            overlay.publish(ReplyDelta("r1", f"{sent!r}|{filler}"))
            publish_s.append(time.perf_counter() - sent)
            publish_cpu_s.append(time.thread_time() - cpu)
        duration_s = time.perf_counter() - start
        async with asyncio.timeout(60):
            result = await loop.run_in_executor(None, ours.recv)
        if isinstance(result, str):
            raise RuntimeError(f"bench clients failed: {result}")
    finally:
        await overlay.close()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    latencies_ms = sorted(x * 1000 for x in result)
    expected = clients * messages
    return {
        "clients": clients,
        "messages": messages,
        "rate_hz": rate_hz,
        "duration_s": round(duration_s, 3),
        "delivered": len(latencies_ms),
        "expected": expected,
        "dropped_clients": overlay.dropped_clients,
        "latency_ms": {
            "p50": round(_pct(latencies_ms, 50), 3),
            "p90": round(_pct(latencies_ms, 90), 3),
            "p99": round(_pct(latencies_ms, 99), 3),
            "max": round(latencies_ms[-1], 3),
            "mean": round(statistics.fmean(latencies_ms), 3),
        },
        "publish_us": {
            "p50": round(_pct(publish_s, 50) * 1e6, 1),
            "p99": round(_pct(publish_s, 99) * 1e6, 1),
            "cpu_p50": round(_pct(publish_cpu_s, 50) * 1e6, 1),
        },
        **load_average(),
        "target_p99_ms": TARGET_P99_MS,
        "meets_target": len(latencies_ms) == expected and _pct(latencies_ms, 99) <= TARGET_P99_MS,
    }


def _pct(values: list[float], q: float) -> float:
    return percentile(values, q) if values else float("nan")


# -- the client process ------------------------------------------------------------------------------


def _clients_main(port: int, clients: int, messages: int, conn: Connection) -> None:
    try:
        conn.send(asyncio.run(_clients(port, clients, messages, conn)))
    except BaseException as exc:  # report, do not hang the parent
        conn.send(f"{type(exc).__name__}: {exc}")
        raise


class _PageProtocol(asyncio.Protocol):
    """A minimal WebSocket client: does the handshake, then only stamps and keeps what arrives
    (frames are parsed after the run), so the clients' own work barely delays the figures."""

    def __init__(self, port: int, messages: int, done: asyncio.Future[None]) -> None:
        self.port = port
        self.frames_wanted = messages + 1  # the state message, then the deltas
        self.done = done
        self.head = b""
        self.upgraded = asyncio.get_running_loop().create_future()
        self.chunks: list[tuple[float, bytes]] = []
        self.pending = b""  # the frame in progress, to count frames as they complete
        self.frames = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                        .encode())

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.upgraded.done():
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            self.head, data = self.head.split(b"\r\n\r\n", 1)
            if not self.head.startswith(b"HTTP/1.1 101"):
                self.upgraded.set_exception(RuntimeError(self.head.decode(errors="replace")))
                return
            self.upgraded.set_result(None)
            if not data:
                return
        self.chunks.append((now, data))
        self.pending += data
        while len(self.pending) >= 2:
            size = _frame_size(self.pending)
            if size is None or len(self.pending) < size:
                break
            self.pending = self.pending[size:]
            self.frames += 1
        if self.frames >= self.frames_wanted and not self.done.done():
            self.done.set_result(None)

    def latencies(self) -> list[float]:
        """Per delta: arrival of its last byte minus the send time it carries."""
        out: list[float] = []
        buffer, offset = b"", 0
        for arrived, data in self.chunks:
            buffer += data
            while True:
                size = _frame_size(buffer, offset)
                if size is None or len(buffer) - offset < size:
                    break
                frame = buffer[offset:offset + size]
                offset += size
                payload = frame[_header_size(frame):]
                message = json.loads(payload)
                if message["type"] == "reply_delta":
                    out.append(arrived - float(message["text"].split("|", 1)[0]))
            buffer, offset = buffer[offset:], 0
        return out


def _header_size(data: bytes, offset: int = 0) -> int:
    length = data[offset + 1] & 0x7F
    return 2 if length < 126 else 4 if length == 126 else 10


def _frame_size(data: bytes, offset: int = 0) -> int | None:
    """Size of the (unmasked, unfragmented) frame at `offset`, or None if its header is incomplete."""
    if len(data) - offset < 2:
        return None
    length = data[offset + 1] & 0x7F
    header = _header_size(data, offset)
    if len(data) - offset < header:
        return None
    if length == 126:
        (length,) = struct.unpack_from(">H", data, offset + 2)
    elif length == 127:
        (length,) = struct.unpack_from(">Q", data, offset + 2)
    return header + length


async def _clients(port: int, clients: int, messages: int, conn: Connection) -> list[float]:
    loop = asyncio.get_running_loop()
    pages: list[tuple[asyncio.Transport, _PageProtocol, asyncio.Future[None]]] = []
    for _ in range(clients):
        done = loop.create_future()
        transport, page = await loop.create_connection(lambda d=done: _PageProtocol(port, messages, d),
                                                       "127.0.0.1", port)
        await page.upgraded
        pages.append((transport, page, done))
    conn.send("ready")
    await asyncio.gather(*(done for _, _, done in pages))
    latencies: list[float] = []
    for transport, page, _ in pages:
        transport.abort()
        latencies += page.latencies()
    return latencies


def report(result: dict) -> str:
    lat = result["latency_ms"]
    return (f"overlay fan-out: {result['clients']} clients x {result['messages']} deltas at {result['rate_hz']:g}/s: "
            f"delivered {result['delivered']}/{result['expected']}, latency p50 {lat['p50']} ms, "
            f"p99 {lat['p99']} ms, max {lat['max']} ms (target p99 <= {TARGET_P99_MS:g} ms: "
            f"{'met' if result['meets_target'] else 'MISSED'}); publish() p50 {result['publish_us']['p50']} us "
            f"(CPU {result['publish_us']['cpu_p50']} us), p99 {result['publish_us']['p99']} us; "
            f"load average {result['load_average_1m']} on {result['cpus']} CPUs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aituber bench overlay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="deltas per second (default: 200)")
    return bench_main(parser, lambda args: run_overlay_bench(args.clients, args.messages, args.rate), report, argv,
                      ok=lambda result: result["meets_target"])


if __name__ == "__main__":
    sys.exit(main())
