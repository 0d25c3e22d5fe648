"""COPY and MOVE, compared with redis-server."""

import pytest


@pytest.fixture
def filled(pair):
    for args in (
        ("SET", "s", "v"),
        ("PEXPIRE", "s", "100000"),
        ("HSET", "h", "f", "1"),
        ("SADD", "set", "a", "b"),
        ("RPUSH", "l", "1", "2"),
        ("ZADD", "z", "1", "m"),
    ):
        pair.same(*args)
    return pair


@pytest.mark.parametrize("key", ["s", "h", "set", "l", "z"])
def test_copy_each_type_is_independent(filled, key):
    pair = filled
    pair.same("COPY", key, "dst")
    pair.same("TYPE", "dst")
    pair.same("DEL", key)
    pair.same("EXISTS", "dst")


def test_copy_options_and_errors(filled):
    pair = filled
    pair.same("COPY", "s", "s")
    pair.same("COPY", "missing", "x")
    pair.same("COPY", "s", "h")
    pair.same("COPY", "s", "h", "REPLACE")
    pair.same("GET", "h")
    pair.same("COPY", "s", "other", "DB", "1")
    pair.same("COPY", "s", "s", "DB", "1")
    pair.same("COPY", "s", "x", "DB", "16")
    pair.same("COPY", "s", "x", "DB", "abc")
    pair.same("COPY", "s", "x", "BOGUS")
    pair.same("COPY", "s")
    pair.same("SELECT", "1")
    pair.same("GET", "other")
    ours, theirs = pair.call("PTTL", "other")
    assert ours.startswith(b":") and abs(int(ours[1:-2]) - int(theirs[1:-2])) < 2000


def test_move(filled):
    pair = filled
    pair.same("MOVE", "s", "0")
    pair.same("MOVE", "s", "16")
    pair.same("MOVE", "s", "x")
    pair.same("MOVE", "missing", "1")
    pair.same("MOVE", "s", "1")
    pair.same("EXISTS", "s")
    pair.same("SET", "h2", "x")
    pair.same("SELECT", "1")
    pair.same("SET", "h2", "y")
    pair.same("SELECT", "0")
    pair.same("MOVE", "h2", "1")
    pair.same("SELECT", "1")
    pair.same("GET", "s")
    pair.same("GET", "h2")


def test_copy_and_move_events(filled):
    pair = filled
    from tests.store.rawclient import RawClient

    subs = []
    for client, port in ((pair.store, pair.store_port), (pair.redis, pair.redis_port)):
        client.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        sub = RawClient(port)
        sub.call("PSUBSCRIBE", "__key*@*__:*")
        subs.append(sub)
    pair.same("COPY", "s", "c1")
    pair.same("MOVE", "c1", "2")
    pair.same("PING")
    got = []
    for sub in subs:
        sub.send("PING")
        messages = []
        while True:
            reply = sub.read_reply()
            if reply.startswith(b"*2\r\n$4\r\npong"):
                break
            messages.append(reply)
        got.append(messages)
        sub.close()
    assert got[0] == got[1] and got[0]
