"""A burst of commands leaves no garbage in reference cycles in the store.

`presence-store` raises the collector's thresholds (presence.runtime.tune_gc), which is
only safe while commands free everything by reference counting. Behaviour, not timing:
with the collector off, clients connecting, running the node's command shapes (MULTI
blocks, expiring keys announced on a channel, pub/sub), errors, WATCH conflicts, blocking
pops, a protocol error and a disconnect while blocked, must leave nothing for
gc.collect() to find. Runs on uvloop when installed, like `presence-store`.
"""

import asyncio
import gc
import socket
import struct
from collections import Counter

from presence.store.config import Config
from presence.store.server import Server
from tests.helpers import wait_until_async

try:
    from uvloop import run
except ImportError:
    from asyncio import run

CLIENTS = 20


def command(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        arg = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


async def session(port: int, payload: bytes, until: bytes, reset: bool = False) -> None:
    """Connect, send `payload`, read until the replies end with `until`, close."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, payload)
        got = b""
        while not got.endswith(until):
            chunk = await loop.sock_recv(sock, 65536)
            if not chunk:
                break
            got += chunk
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


async def burst(server: Server, port: int, run: int) -> None:
    async def client(i: int) -> None:
        tag = f"{{c{i % 4}}}"
        done = f"done-{run}-{i}"
        node = b"".join(
            [
                command("MULTI"),
                command("SET", f"presence:{tag}:online:u{i}", 1, "PX", 30),
                command("ZADD", f"presence:{tag}:conns:u{i}", "XX", "CH", 1, "tab"),
                command("ZADD", f"presence:{tag}:members", i, f"u{i}"),
                command("INCR", f"presence:{tag}:seq"),
                command("RPUSH", f"presence:{tag}:events", '{"type":"join"}'),
                command("PUBLISH", "presence:wake", tag),
                command("EXEC"),
                command("ZRANGEBYSCORE", f"presence:{tag}:members", "-inf", "+inf", "WITHSCORES"),
                command("LRANGE", f"presence:{tag}:events", -10, -1),
                command("HSET", f"presence:{tag}:member:u{i}", "since", 1, "info", "{}"),
                command("HGETALL", f"presence:{tag}:member:u{i}"),
                command("LPUSH", f"presence:{tag}:seq", 1),  # WRONGTYPE
                command("NOSUCHCOMMAND"),
                command("CLIENT", "MAINT_NOTIFICATIONS", "ON"),  # what redis-py tries
                command("WATCH", f"w{i}"),
                command("SET", f"w{i}", 1),
                command("MULTI"),
                command("SET", f"w{i}", 2),
                command("EXEC"),  # aborted
                command("MULTI"),
                command("SET", "x"),
                command("EXEC"),  # EXECABORT
                command("BLPOP", f"nothing{i}", "0.01"),
                command("INFO"),
                command("ECHO", done),
            ]
        )
        await session(port, node, done.encode() + b"\r\n")
        # blocked, then gone; a protocol error; a half-sent command, reset
        loop = asyncio.get_running_loop()
        blocked = socket.socket()
        blocked.setblocking(False)
        await loop.sock_connect(blocked, ("127.0.0.1", port))
        await loop.sock_sendall(blocked, command("BLPOP", f"never{i}", 0))
        addr = "%s:%d" % blocked.getsockname()
        await wait_until_async(
            lambda: any(c.addr == addr and c.blocked for c in server.clients.values()),
            message="the BLPOP never blocked",
        )
        blocked.close()
        await session(port, b"*x\r\n", b"\r\n")
        await session(port, b"*3\r\n$3\r\nSET\r\n", b"", reset=True)

    async def subscriber() -> None:
        await session(
            port,
            command("SUBSCRIBE", "presence:expired", "presence:wake") + command("PING"),
            b"pong\r\n$0\r\n\r\n",
        )

    await asyncio.gather(subscriber(), *(client(i) for i in range(CLIENTS)))
    # the keys expire (PX 30) and are announced; the server sees the closes
    await wait_until_async(
        lambda: not server.clients and not server.keyspace.keys_with_deadline(),
        message="connections or expiring keys left after the burst",
    )


async def scenario() -> tuple[int, str]:
    config = Config()
    with socket.socket() as probe:  # port 0 means no TCP to the store: pick a free one
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    config.set("port", str(free), startup=True)
    config.set("keys-expire-notify", "presence:expired", startup=True)
    server = Server(config)
    await server.start()
    port = free
    try:
        await burst(server, port, 0)  # warm up
        gc.collect()
        gc.disable()
        try:
            await burst(server, port, 1)
            gc.set_debug(gc.DEBUG_SAVEALL)
            found = gc.collect()
            kinds = Counter(type(o).__qualname__ for o in gc.garbage).most_common(8)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    finally:
        await server.close()
    return found, ", ".join(f"{n} {kind}" for kind, n in kinds)


def test_commands_make_no_cyclic_garbage():
    found, kinds = run(scenario())
    assert found == 0, f"{CLIENTS} clients' commands left {found} objects in cycles: {kinds}"
