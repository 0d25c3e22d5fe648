"""Behaviours Redis's own test suite (tests/redis_suite) caught, checked against redis-server."""

import time

import pytest

from presence.testing import bundled_store, redis_server
from tests.store.helpers import wait_blocked
from tests.store.rawclient import RawClient


def test_function_flush_and_list_as_for_no_libraries(pair):
    for args in (
        ("FUNCTION", "FLUSH"),
        ("FUNCTION", "FLUSH", "SYNC"),
        ("FUNCTION", "FLUSH", "x"),
        ("FUNCTION", "LIST"),
        ("FUNCTION", "LIST", "WITHCODE"),
        ("FUNCTION", "LIST", "x"),
        ("FUNCTION",),
    ):
        pair.same(*args)


def test_client_reply_off_skip_on(pair):
    answers = []
    for client in (pair.store, pair.redis):
        client.send("CLIENT", "REPLY", "OFF")
        client.send("SET", "a", "1")
        client.send("CLIENT", "REPLY", "SKIP")
        client.send("INCR", "a")
        client.send("CLIENT", "REPLY", "ON")  # the first reply either sends
        client.send("INCR", "a")
        client.send("CLIENT", "REPLY", "SKIP")
        client.send("INCR", "a")  # skipped
        client.send("GET", "a")
        answers.append([client.read_reply() for _ in range(3)])
    assert answers[0] == answers[1] == [b"+OK\r\n", b":3\r\n", b"$1\r\n4\r\n"]
    pair.same("CLIENT", "REPLY", "MAYBE")


def test_pathological_pattern_does_not_match(pair):
    pair.same("SET", "foo", "bar")
    pair.same("KEYS", "*?" * 50000)


@pytest.mark.parametrize("command", [("SAVE",), ("SHUTDOWN",)])
def test_commands_refused_inside_multi(pair, command):
    pair.same("MULTI")
    pair.same(*command)
    pair.same("EXEC")


def test_exec_fails_when_a_watched_key_expired_lazily():
    with (
        bundled_store("--enable-debug-command", "yes") as store_port,
        redis_server("--enable-debug-command", "yes") as redis_port,
    ):
        answers = []
        for port in (store_port, redis_port):
            c = RawClient(port)
            c.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")
            c.call("SET", "k", "v", "PX", "100")
            c.call("WATCH", "k")
            time.sleep(0.3)
            c.call("MULTI")
            c.call("PING")
            answers.append(c.call("EXEC"))
            c.close()
        assert answers[0] == answers[1] == b"*-1\r\n"


@pytest.mark.parametrize(
    "create", [("RENAME", "src", "foo"), ("COPY", "src", "foo"), ("MOVE", "foo", "0")]
)
def test_a_key_created_by_rename_copy_move_wakes_blpop(store_port, redis_port, create):
    replies = []
    for port in (store_port, redis_port):
        setup = RawClient(port)
        setup.call("FLUSHALL")
        if create[0] == "MOVE":
            setup.call("SELECT", "1")
            setup.call("RPUSH", "foo", "x")
        else:
            setup.call("RPUSH", "src", "x")
        waiter = RawClient(port)
        waiter.send("BLPOP", "foo", "5")
        wait_blocked(port, waiter, "BLPOP")
        setup.call(*create)
        replies.append(waiter.read_reply())
        waiter.close()
        setup.close()
    assert replies[0] == replies[1] == b"*2\r\n$3\r\nfoo\r\n$1\r\nx\r\n"


@pytest.mark.parametrize("mode", [(), ("TIMEOUT",), ("ERROR",)])
def test_client_unblock(store_port, redis_port, mode):
    answers = []
    for port in (store_port, redis_port):
        waiter, admin = RawClient(port), RawClient(port)
        waiter_id = waiter.call("CLIENT", "ID")[1:-2]
        waiter.send("BLPOP", "nothing-here", "10")
        wait_blocked(port, waiter, "BLPOP")
        answers.append(
            (
                admin.call("CLIENT", "UNBLOCK", waiter_id, *mode),
                waiter.read_reply(),
                admin.call("CLIENT", "UNBLOCK", waiter_id, *mode),
                admin.call("CLIENT", "UNBLOCK", waiter_id, "MAYBE"),
                admin.call("CLIENT", "UNBLOCK", "abc"),
            )
        )
        waiter.close()
        admin.close()
    assert answers[0] == answers[1]
