"""MULTI/EXEC/DISCARD/WATCH (presence/store/commands/transaction.py), differential against redis-server."""

import time

import pytest

from tests.store.helpers import Pair, run


def test_multi_exec_basics(pair):
    run(
        pair,
        "EXEC",
        "DISCARD",
        "MULTI",
        "MULTI",
        "SET a 1",
        "INCR a",
        "GET a",
        "EXEC",
        "EXEC",
        "MULTI",
        "EXEC",
        "MULTI",
        "SET a 2",
        "DISCARD",
        "GET a",
        "DISCARD",
    )


def test_queued_errors_abort_exec(pair):
    run(
        pair,
        "MULTI",
        "SET a 1",
        "NOSUCH x",
        "GET",
        "EXEC",
        "GET a",
        "MULTI",
        "SET a 1",
        "SET a",
        "DISCARD x",
        "EXEC",
        "MULTI",
        "GET a",
        "EXEC",
    )


def test_runtime_errors_inside_exec(pair):
    run(
        pair,
        "SET s notanumber",
        "MULTI",
        "SET a v",
        "INCR s",
        "INCR a",
        "GET a",
        "SELECT 99",
        "SET k v EX 0",
        "PING",
        "ECHO hi",
        "EXPIRE a 100 NX XX",
        "EXEC",
        "GET a",
    )


def test_select_inside_exec_changes_db(pair):
    run(pair, "MULTI", "SELECT 1", "SET x y", "EXEC", "GET x", "SELECT 0", "GET x")


def test_watch_errors(pair):
    run(pair, "WATCH", "UNWATCH x", "MULTI", "WATCH a", "EXEC", "UNWATCH", "WATCH a b", "UNWATCH")


def test_watch_unchanged_key_lets_exec_run(pair):
    run(pair, "SET a 1", "WATCH a missing", "GET a", "MULTI", "INCR a", "EXEC")


def _other(pair) -> Pair:
    return Pair(pair.store.sock.getpeername()[1], pair.redis.sock.getpeername()[1])


@pytest.mark.parametrize(
    "write",
    [
        "SET a 2",
        "DEL a",
        "EXPIRE a 100",
        "INCR a",
        "SET b 1",
        "SET a 1",
        "PERSIST a",
        "FLUSHALL",
        "FLUSHDB",
        "RENAME a z",
        "GET a",
        "SELECT 1|SET a 1",
        "APPEND a x",
        "GETDEL a",
    ],
)
def test_watch_invalidated_by_another_client(pair, write):
    run(pair, "SET a 1", "WATCH a", "MULTI", "INCR a")
    other = _other(pair)
    try:
        for command in write.split("|"):
            other.same(*command.split())
    finally:
        other.close()
    run(pair, "EXEC", "GET a")


def test_watch_invalidated_by_own_write_before_multi(pair):
    run(pair, "SET a 1", "WATCH a", "SET a 2", "MULTI", "INCR a", "EXEC", "GET a")


def test_unwatch_and_discard_forget_watches(pair):
    run(
        pair,
        "WATCH a",
        "UNWATCH",
        "SET a 1",
        "MULTI",
        "INCR a",
        "EXEC",
        "WATCH a",
        "MULTI",
        "DISCARD",
        "SET a 5",
        "MULTI",
        "INCR a",
        "EXEC",
    )


def test_watch_invalidated_by_expiry(pair):
    run(pair, "SET a 1 PX 50", "WATCH a", "MULTI", "INCR a")
    time.sleep(0.15)
    run(pair, "EXEC", "GET a")


def test_watch_of_key_expired_before_watch_is_not_invalidated(pair):
    run(pair, "SET a 1 PX 10")
    time.sleep(0.05)
    run(pair, "WATCH a", "MULTI", "SET a 2", "EXEC", "GET a")


def test_exec_with_subscribe_inside(pair):
    run(pair, "MULTI", "SUBSCRIBE c1 c2", "PING")
    # Redis writes "*2" then three replies (SUBSCRIBE answers once per channel): read the
    # array (which swallows both subscribe replies), then the PING reply.
    for client in (pair.store, pair.redis):
        client.send("EXEC")
    for _ in range(2):
        assert pair.store.read_reply() == pair.redis.read_reply()
    run(pair, "PING", "RESET", "PUBSUB NUMSUB c1 c2")


def test_refused_exec_aborts_the_transaction(pair):
    run(pair, "MULTI", "SET a 1", "EXEC x", "EXEC", "GET a")


def test_exec_under_resp3(pair):
    for client in (pair.store, pair.redis):
        client.call("HELLO", "3")
    run(pair, "MULTI", "SET a 1", "GET a", "GET missing", "TYPE a", "EXEC")


def test_commands_refused_inside_multi_do_not_abort(pair):
    run(
        pair,
        "MULTI",
        "SET a 1",
        "WATCH x",
        "MULTI",
        "EXEC",
        "MULTI",
        "SELECT 99",
        "UNWATCH",
        "EXEC",
        "MULTI",
        "SET a 2",
        "RESET",
        "EXEC",
        "GET a",
    )


def test_subscribe_inside_exec_under_resp3(pair):
    for client in (pair.store, pair.redis):
        client.call("HELLO", "3")
    run(pair, "MULTI", "SUBSCRIBE x", "EXEC", "PING", "RESET")


def test_aborted_exec_under_resp3_is_null(pair):
    for client in (pair.store, pair.redis):
        client.call("HELLO", "3")
    run(pair, "SET a 1", "WATCH a", "SET a 2", "MULTI", "INCR a", "EXEC", "MULTI", "GET", "EXEC")
