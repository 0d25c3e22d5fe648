"""Helpers shared by the store tests (import them from here; fixtures live in conftest.py).

Most compare the bundled store with redis-server: a Pair sends the same commands to both,
and the rest compare raw RESP replies, events and notifications.
"""

from __future__ import annotations

from tests.helpers import wait_until
from tests.store.rawclient import RawClient


class Pair:
    """One raw client to the bundled store and one to redis-server, fed the same commands."""

    def __init__(self, store_port: int, redis_port: int) -> None:
        self.store_port, self.redis_port = store_port, redis_port
        self.store = RawClient(store_port)
        self.redis = RawClient(redis_port)

    def call(self, *args) -> tuple[bytes, bytes]:
        return self.store.call(*args), self.redis.call(*args)

    def same(self, *args) -> bytes:
        """Send one command to both; assert the raw replies are identical; return the reply."""
        ours, theirs = self.call(*args)
        assert ours == theirs, f"{args!r}: store {ours!r} != redis {theirs!r}"
        return ours

    def close(self) -> None:
        self.store.close()
        self.redis.close()


def run(pair, *commands):
    for command in commands:
        pair.same(*command.split()) if isinstance(command, str) else pair.same(*command)


def array_items(reply: bytes) -> list[bytes]:
    """The elements of a flat RESP array of bulk strings, sorted."""
    lines = reply.split(b"\r\n")
    return sorted(lines[i] for i in range(2, len(lines) - 1, 2))


def split_aggregate(raw: bytes) -> tuple[bytes, list[bytes]]:
    """The header line of an aggregate reply and the raw bytes of each element."""
    parser = RawClient.__new__(RawClient)
    parser.buf = raw
    pos = raw.index(b"\r\n") + 2
    items = []
    while pos < len(raw):
        end = parser._reply_end(pos)
        items.append(raw[pos:end])
        pos = end
    return raw[: raw.index(b"\r\n") + 2], items


def canonical(raw: bytes, pairs: bool = False):
    """An aggregate reply with its elements (or element pairs) sorted: order-free comparison."""
    header, items = split_aggregate(raw)
    if pairs:
        items = [items[i] + items[i + 1] for i in range(0, len(items), 2)]
    return header, sorted(items)


def same_unordered(pair, *args, pairs: bool = False) -> bytes:
    """Like pair.same, where Redis's element order is an implementation detail."""
    ours, theirs = pair.call(*args)
    assert canonical(ours, pairs) == canonical(theirs, pairs), f"{args!r}: {ours!r} != {theirs!r}"
    return ours


def scan_all(client, command: str, key: str, *options) -> tuple[list[bytes], int]:
    """Every element a full HSCAN/SSCAN iteration returns, and the number of calls."""
    cursor, found, calls = b"0", [], 0
    while True:
        _header, (raw_cursor, raw_items) = split_aggregate(
            client.call(command, key, cursor, *options)
        )
        calls += 1
        cursor = raw_cursor.split(b"\r\n")[1]
        found += split_aggregate(raw_items)[1]
        if cursor == b"0":
            return found, calls


def command_info_head(raw: bytes) -> list[bytes]:
    """COMMAND INFO's name, arity, flags, key positions and ACL categories (not key specs)."""
    return split_aggregate(split_aggregate(raw)[1][0])[1][:7]


def watch_outcome(pair, store_port, redis_port, key: str, *command) -> bytes:
    """EXEC's reply after another client ran `command` on the WATCHed `key`, same on both."""
    replies = []
    for watcher, port in ((pair.store, store_port), (pair.redis, redis_port)):
        other = RawClient(port)
        watcher.call("WATCH", key)
        other.call(*command)
        other.close()
        watcher.call("multi")  # lower case: the store queues an upper-case EXEC (see report)
        watcher.call("PING")
        replies.append(watcher.call("exec"))
    assert replies[0] == replies[1], (command, replies)
    return replies[0]


def same_replies(pair, n: int, *command) -> list[bytes]:
    """Send `command` (if any) to both; read `n` replies from each; assert they are identical."""
    for client in (pair.store, pair.redis):
        if command:
            client.send(*command)
    got = []
    for _ in range(n):
        ours, theirs = pair.store.read_reply(), pair.redis.read_reply()
        assert ours == theirs, (command, ours, theirs)
        got.append(ours)
    return got


def same_reply_sets(pair, n: int, *command) -> None:
    """Like same_replies, for replies in Redis's hash-table order: compare them without the
    order, and without the running subscription counts (which follow the order)."""
    for client in (pair.store, pair.redis):
        if command:
            client.send(*command)
    ours = sorted(_without_count(pair.store.read_reply()) for _ in range(n))
    assert ours == sorted(_without_count(pair.redis.read_reply()) for _ in range(n)), command


def _without_count(reply: bytes) -> bytes:
    return reply.rsplit(b":", 1)[0] if reply.startswith((b"*3", b">3")) else reply


class Events:
    """Keyspace and keyevent notifications (KEA) captured from both servers."""

    def __init__(self, pair, store_port: int, redis_port: int) -> None:
        self.pair = pair
        self.subscribers = [RawClient(store_port), RawClient(redis_port)]
        for client, subscriber in zip((pair.store, pair.redis), self.subscribers, strict=False):
            client.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
            subscriber.send("PSUBSCRIBE", "__key*@0__:*", "end-of-events")
            subscriber.read_reply()
            subscriber.read_reply()

    def collect(self) -> tuple[list[bytes], list[bytes]]:
        """Messages published since the last collect(), from the store and from Redis."""
        out = []
        for client, subscriber in zip(
            (self.pair.store, self.pair.redis), self.subscribers, strict=False
        ):
            client.call("PUBLISH", "end-of-events", "x")
            messages = []
            while (message := subscriber.read_reply()).find(b"end-of-events") < 0:
                messages.append(message)
            out.append(messages)
        return out[0], out[1]

    def assert_same(self, expected_count: int | None = None) -> list[bytes]:
        ours, theirs = self.collect()
        assert ours == theirs
        if expected_count is not None:
            assert len(ours) == expected_count, ours
        return ours

    def close(self) -> None:
        for subscriber in self.subscribers:
            subscriber.close()


class Listener:
    """A raw client on each server, pattern-subscribed to every notification channel."""

    def __init__(self, pair, pattern="__key*__:*") -> None:
        self.clients = [
            RawClient(pair.store.sock.getpeername()[1]),
            RawClient(pair.redis.sock.getpeername()[1]),
        ]
        for client in self.clients:
            client.call("PSUBSCRIBE", pattern)

    def received(self) -> list[list[bytes]]:
        """The messages each listener got so far (a PING marks the end), store first."""
        out = []
        for client in self.clients:
            client.send("PING")
            got = []
            while (reply := client.read_reply()) != b"*2\r\n$4\r\npong\r\n$0\r\n\r\n":
                got.append(reply)
            out.append(got)
        return out

    def close(self) -> None:
        for client in self.clients:
            client.close()


def client_line(port: int, client: RawClient) -> bytes | None:
    """The CLIENT LIST line (on the server at `port`) of the connection `client`, or None."""
    addr = b"addr=%s:%d " % (client.sock.getsockname()[0].encode(), client.sock.getsockname()[1])
    with RawClient(port) as admin:
        for line in admin.call("CLIENT", "LIST").split(b"\n"):
            if addr in line:
                return line
    return None


def wait_blocked(port: int, client: RawClient, command: str, timeout: float = 10.0) -> None:
    """Wait until the server at `port` runs `command` (a blocking one: BLPOP, ...) for
    `client`, that is, until its CLIENT LIST line says cmd=<command>; then the client is
    blocked in it (both Redis and the store set cmd= when a command starts)."""
    wanted = b" cmd=%s " % command.lower().encode()
    wait_until(
        lambda: wanted in (client_line(port, client) or b""),
        timeout=timeout,
        message=f"{command} not running on port {port}",
    )


def wait_closed(port: int, client: RawClient, timeout: float = 10.0) -> None:
    """Close `client` and wait until the server at `port` no longer lists the connection."""
    name = client.sock.getsockname()
    client.close()
    addr = b"addr=%s:%d " % (name[0].encode(), name[1])

    def gone() -> bool:
        with RawClient(port) as admin:
            return addr not in admin.call("CLIENT", "LIST")

    wait_until(gone, timeout=timeout, message=f"connection still listed on port {port}")
