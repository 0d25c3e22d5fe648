"""Fuzzing over live connections: garbage and random commands against the store subprocess.

Garbage is compared with redis-server byte for byte (same replies, same `-ERR Protocol
error: ...`, same close); random valid commands are compared reply by reply. After every
run the store must still answer PING on a fresh connection: one bad client never
disturbs the others.
"""

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.store.helpers import Listener
from tests.store.rawclient import RawClient, encode_command

FUZZ = settings(
    max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def exchange(port: int, data: bytes, idle: float = 0.15, until: bytes = b"") -> tuple[bytes, bool]:
    """Send `data` on a fresh connection; return (everything received, whether the server closed).

    Reading stops at close, after `idle` seconds of silence, or once the output ends with `until`.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(data)
        sock.settimeout(idle)
        got = b""
        while not until or not got.endswith(until):
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return got, False
            except ConnectionResetError:
                return got, True
            if not chunk:
                return got, True
            got += chunk
        return got, False


def assert_alive(port: int) -> None:
    client = RawClient(port)
    try:
        assert client.call("PING") == b"+PONG\r\n"
    finally:
        client.close()


PIECES = [
    b"*",
    b"$",
    b"0",
    b"1",
    b"2",
    b"3",
    b"-1",
    b"\r\n",
    b"\n",
    b"\r",
    b"PING",
    b"ECHO",
    b"GET",
    b"x",
    b" ",
    b'"',
    b"'",
    b"\\x41",
    b"\\",
    b":",
    b"+",
    b"*1\r\n",
    b"$4\r\nPING\r\n",
    b"*2\r\n$4\r\nECHO\r\n",
    b"\t",
    b"\xff",
    b"abc",
]
# No NUL byte: Redis finds line ends with strchr(), so a NUL in a header or inline line makes
# it wait for more input (until the 64 KiB limit); the store reads the line. Deliberate.
garbage = st.lists(st.sampled_from(PIECES), min_size=1, max_size=30).map(b"".join)


@FUZZ
@given(data=garbage)
def test_garbage_gets_the_same_answer_as_redis(store_port, redis_port, data):
    ours, theirs = exchange(store_port, data), exchange(redis_port, data)
    if ours != theirs:  # a busy machine can outlast the short idle wait
        ours, theirs = exchange(store_port, data, idle=1.5), exchange(redis_port, data, idle=1.5)
    assert ours == theirs, data
    assert_alive(store_port)


@pytest.mark.parametrize(
    "data",
    [
        b"*abc\r\n",
        b"*1\r\n$abc\r\n",
        b"*1\r\nx\r\n",
        b"*1\r\nx",
        b"*1\r\n\r\n",
        b"*1\r\n\xff\r\n",
        b"*1\r\n$-1\r\n",
        b'GET "x\r\n',
        b"GET 'x\r\n",
        b"*1\r\n$4\r\nPING\r\n*x\r\n",
        b"PING\r\n*2\r\n$3\r\nGET\r\n:1\r\n",
        b"*+1\r\n$4\r\nPING\r\n",
        b"*1\r\n$04\r\nPING\r\n",
        b"*1\r\n$ 4\r\nPING\r\n",
        b"*1\r\n$536870913\r\n",
        b'ECHO "a"b\r\n',
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n",
        b"\r\n\r\n*0\r\n*-1\r\nPING\n",
    ],
)
def test_malformed_resp_replies_then_closes_like_redis(store_port, redis_port, data):
    ours = exchange(store_port, data, idle=0.5)
    assert ours == exchange(redis_port, data, idle=0.5)
    if b"Protocol error" in ours[0]:
        assert ours[0].endswith(b"\r\n") and ours[1], "a protocol error closes the connection"
    assert_alive(store_port)


def test_too_big_inline_request_like_redis(store_port, redis_port):
    data = b"x" * (70 * 1024)
    assert (
        exchange(store_port, data)
        == exchange(redis_port, data)
        == (b"-ERR Protocol error: too big inline request\r\n", True)
    )


def test_too_big_count_strings_like_redis(store_port, redis_port):
    for data in (b"*" + b"1" * (70 * 1024), b"*1\r\n$" + b"1" * (70 * 1024)):
        assert exchange(store_port, data) == exchange(redis_port, data)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(min_size=1, max_size=500))
def test_random_bytes_never_hurt_the_server(store_port, data):
    exchange(store_port, data, idle=0.02)
    assert_alive(store_port)


# ------------------------------------------------------------ random valid commands

KEYS = st.sampled_from(["a", "b", "c", "n", "f"])
VALUES = st.sampled_from(
    [
        "",
        "0",
        "1",
        "-1",
        "10",
        "1.5",
        "abc",
        "9223372036854775807",
        "-9223372036854775808",
        "1e3",
        " 1",
        "0x10",
        "inf",
        "3.0",
        "x" * 20,
    ]
)
SMALL = st.integers(min_value=-20, max_value=20).map(str)
TTL = st.sampled_from(["1000", "5000", "-1", "0", "abc"])


def _cmd(name, *parts):
    return st.tuples(st.just(name), *parts)


COMMANDS = st.one_of(
    _cmd("SET", KEYS, VALUES),
    _cmd("GET", KEYS),
    _cmd("DEL", KEYS, KEYS),
    _cmd("EXISTS", KEYS, KEYS),
    _cmd("INCR", KEYS),
    _cmd("DECR", KEYS),
    _cmd("INCRBY", KEYS, VALUES),
    _cmd("DECRBY", KEYS, SMALL),
    _cmd("INCRBYFLOAT", KEYS, VALUES),
    _cmd("APPEND", KEYS, VALUES),
    _cmd("STRLEN", KEYS),
    _cmd("GETRANGE", KEYS, SMALL, SMALL),
    _cmd("SETRANGE", KEYS, st.integers(0, 30).map(str), VALUES),
    _cmd("MSET", KEYS, VALUES, KEYS, VALUES),
    _cmd("MGET", KEYS, KEYS, KEYS),
    _cmd("GETSET", KEYS, VALUES),
    _cmd("GETDEL", KEYS),
    _cmd("SETNX", KEYS, VALUES),
    _cmd("MSETNX", KEYS, VALUES, KEYS, VALUES),
    _cmd("TYPE", KEYS),
    _cmd("RENAME", KEYS, KEYS),
    _cmd("RENAMENX", KEYS, KEYS),
    _cmd("PERSIST", KEYS),
    _cmd("EXPIRE", KEYS, TTL),
    _cmd("PEXPIRE", KEYS, st.sampled_from(["100000", "-5", "x"])),
    _cmd("SET", KEYS, VALUES, st.sampled_from(["NX", "XX", "GET", "KEEPTTL"])),
    _cmd("SET", KEYS, VALUES, st.sampled_from(["EX", "PX"]), TTL),
    # a past EXAT leaves a due key that each server expires on its own schedule: future only
    _cmd("SET", KEYS, VALUES, st.just("EXAT"), st.sampled_from(["4000000000", "0", "x"])),
    _cmd("GETEX", KEYS, st.sampled_from(["PERSIST", "EX", "FOO"])),
    _cmd("ECHO", VALUES),
    _cmd("PING"),
    _cmd("MULTI"),
    _cmd("EXEC"),
    _cmd("DISCARD"),
    _cmd("WATCH", KEYS),
    _cmd("UNWATCH"),
    _cmd("NOSUCH", VALUES),
    _cmd("GET"),
    _cmd("SELECT", st.sampled_from(["0", "1", "16"])),
    _cmd("EXPIRE", KEYS, TTL, st.sampled_from(["NX", "XX", "GT", "LT", "nx", "FOO"])),
    _cmd(
        "EXPIREAT",
        KEYS,
        st.sampled_from(["4000000000", "1", "0"]),
        st.sampled_from(["GT", "LT", "XX"]),
    ),
    _cmd("GETEX", KEYS, st.sampled_from(["EX", "PX", "EXAT", "PXAT"]), TTL),
    _cmd("SETEX", KEYS, TTL, VALUES),
    _cmd("PSETEX", KEYS, TTL, VALUES),
    _cmd("TTL", KEYS),
    _cmd(
        "SET",
        KEYS,
        VALUES,
        st.sampled_from(["NX", "XX"]),
        st.just("GET"),
        st.sampled_from(["EX", "KEEPTTL"]),
    ),
    _cmd("TOUCH", KEYS),
    _cmd("UNLINK", KEYS, KEYS),
)


@FUZZ
@given(commands=st.lists(COMMANDS, min_size=1, max_size=25))
def test_random_commands_answer_like_redis(pair, commands):
    for client in (pair.store, pair.redis):
        client.call("FLUSHALL")
        client.call("SELECT", "0")
        if client.call("DISCARD") != b"+OK\r\n":
            client.call("UNWATCH")
    for command in commands:
        pair.same(*command)


@FUZZ
@given(commands=st.lists(COMMANDS, min_size=1, max_size=25))
def test_pipelined_random_commands_answer_like_redis(pair, commands):
    """The same commands sent as one pipeline, half as inline requests where that is safe."""
    payload = b"".join(
        b" ".join(part.encode() for part in command) + b"\r\n"
        if all(part and part.isalnum() for part in command)
        else encode_command(command)
        for command in commands
    )
    payload = b"FLUSHALL\r\n" + payload + b"DISCARD\r\nECHO end-of-pipeline\r\n"
    end = b"$15\r\nend-of-pipeline\r\n"
    ours = exchange(pair.store.sock.getpeername()[1], payload, idle=5, until=end)
    theirs = exchange(pair.redis.sock.getpeername()[1], payload, idle=5, until=end)
    assert ours == theirs


@FUZZ
@given(commands=st.lists(COMMANDS, min_size=1, max_size=20))
def test_random_commands_emit_the_same_keyspace_events(pair, commands):
    """Replies and, with KEA plus key-miss events, every notification in the same order."""
    for client in (pair.store, pair.redis):
        client.call("FLUSHALL")
        client.call("SELECT", "0")
        if client.call("DISCARD") != b"+OK\r\n":
            client.call("UNWATCH")
        client.call("CONFIG", "SET", "notify-keyspace-events", "KEAmn")
    listener = Listener(pair)
    try:
        for command in commands:
            pair.same(*command)
        ours, theirs = listener.received()
        assert ours == theirs
    finally:
        listener.close()
        for client in (pair.store, pair.redis):
            client.call("CONFIG", "SET", "notify-keyspace-events", "")
