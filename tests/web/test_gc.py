"""A burst of client requests leaves no garbage in reference cycles.

`presence serve` raises the collector's thresholds (presence.runtime.tune_gc), which is
only safe while requests free everything by reference counting: a cycle per request
would pile up until a rare, long full collection. Behaviour, not timing: with the
collector off, a burst of joins, polls (answered, timed out, and dropped by a reset
connection), heartbeats and leaves must leave nothing for gc.collect() to find.
"""

import asyncio
import gc
import json
import os
import socket
import struct
import sys
from collections import Counter

import pytest
from tornado.netutil import bind_sockets

from presence.web.app import WebSettings, make_app, make_server
from tests.service.helpers import make_presence

USERS = 20


@pytest.fixture
def model(store_url, io_loop):
    presence = make_presence(store_url, timeout=30, poll_timeout=0.2)
    yield presence
    io_loop.run_sync(presence.gateway.close)


@pytest.fixture
def port(model, tmp_path, io_loop, http_engine):
    server = make_server(make_app(model, WebSettings(static_dir=tmp_path)), http_engine)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    yield sockets[0].getsockname()[1]
    server.stop()
    io_loop.run_sync(server.close_all_connections)


class Tab:
    """One keep-alive HTTP/1.1 connection on a bare socket (loop.sock_*: no transport or
    stream objects, so the client side makes no cycles of its own)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.loop = asyncio.get_running_loop()
        self.sock = socket.socket()
        self.sock.setblocking(False)
        self.buffer = b""

    async def open(self) -> "Tab":
        await self.loop.sock_connect(self.sock, ("127.0.0.1", self.port))
        return self

    async def send(self, path: str) -> None:
        await self.loop.sock_sendall(self.sock, f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())

    async def _read_until(self, done) -> None:
        while not done():
            chunk = await self.loop.sock_recv(self.sock, 65536)
            assert chunk, "the server closed the connection"
            self.buffer += chunk

    async def get(self, path: str) -> dict | str:
        """The reply's JSON (its text when JSONP)."""
        await self.send(path)
        await self._read_until(lambda: b"\r\n\r\n" in self.buffer)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
        )
        await self._read_until(lambda: len(self.buffer) >= length)
        body, self.buffer = self.buffer[:length].decode(), self.buffer[length:]
        return body if body.startswith("/**/") else json.loads(body)

    def reset(self) -> None:
        """Close with a TCP reset, as a browser tab that goes away may."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


async def burst(port: int, run: int) -> None:
    """Every user joins, polls (answered at once, then until the poll timeout), beats,
    holds a poll that the reset of its connection cancels, rejoins and leaves."""

    async def user(i: int) -> None:
        me = f"user=u{i}&conn=c{run}"
        path = f"/channels/gc{run}-{i % 4}"
        tab = await Tab(port).open()
        joined = await tab.get(f"{path}/join?{me}")
        first = await tab.get(f"{path}/poll?{me}&cursor={joined['cursor']}")
        await tab.get(f"{path}/poll?{me}&cursor={first['cursor']}")  # empty: poll timeout
        await tab.get(f"{path}/heartbeat?{me}&callback=cb")
        cursor = (await tab.get(f"{path}/join?{me}"))["cursor"]
        await tab.send(f"{path}/poll?{me}&cursor={cursor}")
        await asyncio.sleep(0.05)  # the poll is held
        tab.reset()
        tab = await Tab(port).open()
        await tab.get(f"{path}/join?{me}")
        await tab.get(f"{path}/leave?{me}")
        assert (await tab.get("/nowhere"))["error"]
        tab.close()

    await asyncio.gather(*(user(i) for i in range(USERS)))
    await asyncio.sleep(0.1)  # the server sees the closes


def cyclic_garbage() -> tuple[int, str]:
    """Collect; (objects found in cycles, the commonest of their types)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        found = gc.collect()
        kinds = Counter(type(o).__qualname__ for o in gc.garbage).most_common(8)
        if os.environ.get("GC_REPORT"):
            sys.path.insert(0, os.environ["GC_REPORT"])
            import cycles

            cycles.report(gc.garbage, sys.stderr)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    return found, ", ".join(f"{n} {kind}" for kind, n in kinds)


@pytest.mark.gen_test(timeout=30)
async def test_requests_make_no_cyclic_garbage(port):
    await burst(port, 0)  # warm up: pool connections, caches, lazy imports
    gc.collect()
    gc.disable()
    try:
        await burst(port, 1)
        found, kinds = cyclic_garbage()
    finally:
        gc.enable()
    assert found == 0, f"{USERS} users' requests left {found} objects in cycles: {kinds}"
