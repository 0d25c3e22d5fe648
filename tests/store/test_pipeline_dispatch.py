"""Pipelines whose commands change the session mid-batch, sent in one write to both servers.

The store's dispatch loop runs plain data commands without the session gate and looks at
the session again after every other command; these pipelines check that a command
right after MULTI, AUTH, SUBSCRIBE, CLIENT REPLY or a blocking pop is treated exactly as
redis-server treats it. Each pipeline goes out in a single `sendall`, so both servers
read it in one piece.
"""

import socket

import pytest

from tests.store.helpers import wait_blocked
from tests.store.rawclient import RawClient, encode_command


def pipeline(*commands) -> bytes:
    return b"".join(encode_command(c) for c in commands)


def replies(client: RawClient, count: int) -> list[bytes]:
    return [client.read_reply() for _ in range(count)]


def same_pipeline(pair, commands, count=None):
    """Send `commands` in one write to both servers; assert identical replies."""
    data = pipeline(*commands)
    pair.store.send_raw(data)
    pair.redis.send_raw(data)
    count = len(commands) if count is None else count
    ours, theirs = replies(pair.store, count), replies(pair.redis, count)
    assert ours == theirs
    return ours


def test_multi_in_the_middle_of_a_pipeline_queues_what_follows(pair, proto):
    got = same_pipeline(
        pair,
        [
            ("SET", "a", "1"),
            ("MULTI",),
            ("SET", "a", "2"),
            ("GET", "a"),
            ("INCR", "a"),
            ("EXEC",),
            ("GET", "a"),
        ],
    )
    assert got[2] == b"+QUEUED\r\n"
    assert got[-1] == b"$1\r\n3\r\n"


def test_an_aborted_multi_in_a_pipeline(pair):
    got = same_pipeline(pair, [("MULTI",), ("SET", "a"), ("GET", "a"), ("EXEC",), ("GET", "a")])
    assert got[3].startswith(b"-EXECABORT")


def test_wrong_arity_of_a_data_command_inside_multi_spoils_it(pair):
    same_pipeline(pair, [("MULTI",), ("GET",), ("EXEC",)])


def test_client_reply_off_and_skip_inside_a_pipeline(pair):
    data = pipeline(
        ("CLIENT", "REPLY", "SKIP"),
        ("SET", "x", "1"),
        ("GET", "x"),
        ("CLIENT", "REPLY", "OFF"),
        ("SET", "y", "2"),
        ("GET", "y"),
        ("CLIENT", "REPLY", "ON"),
        ("GET", "y"),
    )
    for client in (pair.store, pair.redis):
        client.send_raw(data)
    ours, theirs = replies(pair.store, 3), replies(pair.redis, 3)
    assert ours == theirs == [b"$1\r\n1\r\n", b"+OK\r\n", b"$1\r\n2\r\n"]


def test_subscribe_in_a_pipeline_gates_the_data_commands_after_it(pair):
    same_pipeline(
        pair,
        [
            ("SET", "k", "v"),
            ("SUBSCRIBE", "ch"),
            ("GET", "k"),
            ("PING",),
            ("UNSUBSCRIBE", "ch"),
            ("GET", "k"),
        ],
    )


def test_protocol_error_after_valid_commands_runs_them_first(pair):
    data = pipeline(("SET", "p", "1"), ("GET", "p")) + b"*1\r\n+PING\r\n"
    for client in (pair.store, pair.redis):
        client.send_raw(data)
        assert replies(client, 2) == [b"+OK\r\n", b"$1\r\n1\r\n"]
    assert pair.store.read_all() == pair.redis.read_all()


def test_pipeline_behind_a_blocking_pop_runs_when_it_is_answered(pair, redis_port, store_port):
    for client, port in ((pair.store, store_port), (pair.redis, redis_port)):
        client.send_raw(pipeline(("BLPOP", "q", "0"), ("SET", "after", "1"), ("GET", "after")))
        wait_blocked(port, client, "BLPOP")
        with RawClient(port) as pusher:
            assert pusher.call("GET", "after") == b"$-1\r\n"  # not run while blocked
            assert pusher.call("RPUSH", "q", "item") == b":1\r\n"
        assert replies(client, 3) == [
            b"*2\r\n$1\r\nq\r\n$4\r\nitem\r\n",
            b"+OK\r\n",
            b"$1\r\n1\r\n",
        ]


@pytest.mark.parametrize("size", [1, 2, 7, 64, 1000])
def test_large_pipelines_cut_anywhere_give_every_reply(store_port, size):
    """A long pipeline sent in odd-sized pieces: every command answered, in order."""
    commands = [("SET", f"k{i}", "v" * (i % 50)) for i in range(3000)] + [
        ("GET", f"k{i}") for i in range(3000)
    ]
    data = pipeline(*commands)
    with socket.create_connection(("127.0.0.1", store_port)) as sock:
        for start in range(0, len(data), size * 97):
            sock.sendall(data[start : start + size * 97])
        client = RawClient.__new__(RawClient)
        client.sock, client.buf = sock, b""
        got = replies(client, len(commands))
    assert got[:3000] == [b"+OK\r\n"] * 3000
    assert got[3000:] == [b"$%d\r\n%s\r\n" % (i % 50, b"v" * (i % 50)) for i in range(3000)]
