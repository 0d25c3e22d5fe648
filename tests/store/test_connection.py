"""Connection commands (presence/store/commands/connection.py), differential against redis-server.

AUTH with a password is tested on a separate store/redis pair started with --requirepass.
"""

import re

import pytest

from presence.testing import bundled_store, redis_server
from tests.store.helpers import Pair, run


def without_id(reply: bytes) -> bytes:
    """A HELLO reply with the connection id blanked (ids differ between servers)."""
    return re.sub(rb"\$2\r\nid\r\n:\d+\r\n", b"$2\r\nid\r\n:ID\r\n", reply)


def same_hello(pair, *args) -> bytes:
    ours, theirs = pair.call(*args)
    assert without_id(ours) == without_id(theirs), args
    return ours


def test_ping_echo(pair):
    run(
        pair,
        "PING",
        "PING hello",
        ["PING", ""],
        "PING a b",
        "ECHO",
        "ECHO a b",
        "ECHO x",
        ["ECHO", ""],
        "ping",
        "PiNg",
    )


@pytest.mark.parametrize(
    "args",
    [
        "HELLO 4",
        "HELLO 1",
        "HELLO 0",
        "HELLO -1",
        "HELLO abc",
        "HELLO 3.0",
        "HELLO 9223372036854775808",
        "HELLO 3 FOO",
        "HELLO 3 AUTH default",
        "HELLO 3 AUTH foo x",
        "HELLO 2 SETNAME",
        "HELLO 3 SETNAME a AUTH",
    ],
)
def test_hello_errors(pair, args):
    run(pair, args, "PING")


@pytest.mark.parametrize(
    "args",
    [
        "HELLO",
        "HELLO 2",
        "HELLO 3",
        "HELLO 3 AUTH default anything",
        "HELLO 2 SETNAME conn",
        "HELLO 3 auth default x setname n",
    ],
)
def test_hello_replies(pair, args):
    same_hello(pair, *args.split())
    run(pair, "PING", "GET missing", "HELLO 4")
    same_hello(pair, "HELLO")


def test_hello_setname_with_space_is_refused(pair):
    run(pair, ["HELLO", "2", "SETNAME", "a b"], ["HELLO", "2", "SETNAME", "a\nb"])


def test_hello_3_then_2_switches_back(pair):
    same_hello(pair, "HELLO", "3")
    run(pair, "GET missing", "MGET missing")
    same_hello(pair, "HELLO", "2")
    run(pair, "GET missing", "MGET missing")


def test_auth_without_requirepass(pair):
    run(pair, "AUTH x", "AUTH default x", "AUTH foo x", "AUTH a b c", "AUTH", "PING")


def test_select(pair):
    run(
        pair,
        "SELECT 16",
        "SELECT -1",
        "SELECT abc",
        "SELECT 1.5",
        "SELECT",
        "SELECT 9223372036854775808",
        "SELECT 15",
        "SET k v15",
        "SELECT 1",
        "GET k",
        "SELECT 15",
        "GET k",
        "SELECT 0",
        "GET k",
        "SELECT 015",
        "GET k",
    )


def test_reset(pair):
    same_hello(pair, "HELLO", "3")
    run(
        pair,
        "SELECT 3",
        "SET k 3",
        "MULTI",
        "SET a b",
        "RESET",
        "EXEC",
        "GET k",
        "GET missing",
        "RESET x",
        "RESET",
    )


def test_reset_leaves_subscribed_mode(pair):
    run(pair, "SUBSCRIBE c", "RESET", "GET missing", "PUBSUB NUMSUB c")


def test_quit(pair):
    for client in (pair.store, pair.redis):
        assert client.call("QUIT") == b"+OK\r\n"
        assert client.read_all() == b""


# ------------------------------------------------------------ requirepass


@pytest.fixture(scope="module")
def secured():
    with (
        redis_server("--requirepass", "s3cret") as rport,
        bundled_store("--requirepass", "s3cret") as sport,
    ):
        yield sport, rport


@pytest.fixture
def spair(secured):
    p = Pair(*secured)
    yield p
    p.close()


def test_noauth_refuses_commands(spair):
    run(
        spair,
        "GET k",
        "SET k v",
        "PING",
        "ECHO x",
        "SELECT 1",
        "NOSUCHCOMMAND",
        "GET",
        "MULTI",
        "SUBSCRIBE c",
    )


def test_auth_errors_and_success(spair):
    run(
        spair,
        "AUTH wrong",
        "GET k",
        "AUTH default wrong",
        "AUTH nobody s3cret",
        "AUTH a b c",
        "AUTH s3cret",
        "GET k",
        "AUTH s3cret",
        "AUTH wrong",
        "GET k",
    )


def test_auth_with_username(spair):
    run(spair, "AUTH default s3cret", "PING", "RESET", "PING")


def test_hello_with_auth(spair):
    run(spair, "HELLO 3", "HELLO 2 AUTH default wrong", "HELLO 3 AUTH nobody s3cret", "PING")
    same_hello(spair, "HELLO", "3", "AUTH", "default", "s3cret")
    run(spair, "GET k", "PING")


def test_hello_without_auth_is_refused_but_errors_come_first(spair):
    run(spair, "HELLO 4", "HELLO abc", "HELLO 3 FOO", "HELLO", "HELLO 2")


def test_reset_clears_name_and_db(pair):
    same_hello(pair, "HELLO", "2", "SETNAME", "conn")
    run(
        pair,
        "CLIENT GETNAME",
        "SELECT 2",
        "RESET",
        "CLIENT GETNAME",
        "SET k v",
        "SELECT 2",
        "GET k",
    )
