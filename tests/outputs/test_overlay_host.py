"""The overlay server against DNS rebinding (the Host header), and the URL it prints when bound to
all interfaces: real sockets, raw HTTP requests."""

from __future__ import annotations

import asyncio
import base64
import os
from urllib.parse import urlsplit

import pytest

from aituber.outputs.overlay import OverlayServer, lan_address


async def request(port: int, path: str, host: str | None, *, address: str = "127.0.0.1",
                  websocket: bool = False, origin: str | None = None) -> int:
    """The status of a GET with exactly the given Host header (None: no Host header at all)."""
    reader, writer = await asyncio.open_connection(address, port)
    lines = [f"GET {path} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {host}")
    if origin is not None:
        lines.append(f"Origin: {origin}")
    if websocket:
        key = base64.b64encode(os.urandom(16)).decode()
        lines += ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                  "Sec-WebSocket-Version: 13"]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    return int(status.split()[1])


async def test_a_rebound_domain_cannot_read_the_pages_or_the_feed():
    overlay = OverlayServer(port=0)
    await overlay.start()
    try:
        port = overlay.port
        # What a browser sends once evil.example resolves to 127.0.0.1: its own name, its own origin.
        rebound = f"evil.example:{port}"
        assert await request(port, "/", rebound) == 403
        assert await request(port, "/index.html", rebound) == 403
        assert await request(port, "/ws", rebound, websocket=True, origin=f"http://{rebound}") == 403
        # The names this server has.
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost", f"obs.localhost:{port}",
                     f"127.0.0.2:{port}"):
            assert await request(port, "/", host) == 200, host
        assert await request(port, "/ws", f"localhost:{port}", websocket=True) == 101
        assert await request(port, "/", None) == 200  # no browser sends no Host
        assert await request(port, "/", "bad host:x") == 403
    finally:
        await overlay.close()


async def test_bound_to_all_interfaces_the_printed_url_is_the_lan_address_and_it_works():
    address = lan_address()
    if address is None:
        pytest.skip("this machine has no network address but loopback")
    lines: list[str] = []
    overlay = OverlayServer(host="0.0.0.0", port=0, announce=lines.append)
    await overlay.start()
    try:
        url = urlsplit(overlay.url)
        assert url.hostname == address and url.port == overlay.port
        assert "0.0.0.0" not in lines[0] and overlay.url in lines[0]
        assert urlsplit(overlay.ws_url).hostname == address
        # The printed URL, opened as another PC would: by that address, with that Host.
        path = f"/?{url.query}"
        assert await request(overlay.port, path, url.netloc, address=address) == 200
        assert await request(overlay.port, path, f"evil.example:{overlay.port}", address=address) == 403
    finally:
        await overlay.close()


async def test_bound_to_a_name_that_name_is_accepted():
    overlay = OverlayServer(host="localhost", port=0)
    await overlay.start()
    try:
        assert await request(overlay.port, "/", f"localhost:{overlay.port}") == 200
        assert await request(overlay.port, "/", f"other.example:{overlay.port}") == 403
    finally:
        await overlay.close()
