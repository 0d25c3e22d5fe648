"""CLIENT PAUSE / UNPAUSE, compared with redis-server: what is held, what runs, in what order."""

import select
import time

import pytest

from tests.store.rawclient import RawClient


def nothing_yet(client: RawClient, seconds: float = 0.2) -> bool:
    """True if the server sent nothing within `seconds` (a held command is not answered)."""
    return not client.buf and not select.select([client.sock], [], [], seconds)[0]


@pytest.fixture
def clients(pair):
    """For each server (store, redis): the pausing admin client and another client."""
    opened = [(RawClient(port), RawClient(port)) for port in (pair.store_port, pair.redis_port)]
    yield opened
    for admin, other in opened:
        admin.call("CLIENT", "UNPAUSE")
        admin.close()
        other.close()


def test_pause_errors(pair):
    for args in (
        ("CLIENT", "PAUSE", "-1"),
        ("CLIENT", "PAUSE", "x"),
        ("CLIENT", "PAUSE", "x", "BOGUS"),
        ("CLIENT", "PAUSE", "10", "BOGUS"),
        ("CLIENT", "PAUSE", "10", "WRITE", "extra"),
        ("CLIENT", "PAUSE"),
        ("CLIENT", "UNPAUSE", "x"),
        ("CLIENT", "UNPAUSE"),
    ):
        pair.same(*args)


def test_write_pause_holds_writes_until_unpause(clients):
    got = []
    for admin, other in clients:
        admin.call("SET", "k", "old")
        assert admin.call("CLIENT", "PAUSE", "100000", "WRITE") == b"+OK\r\n"
        replies = [other.call("GET", "k"), other.call("MULTI"), other.call("GET", "k")]
        replies.append(other.call("EXEC"))  # read-only: runs
        other.send("SET", "k", "new")
        other.send("GET", "k")  # behind the held SET: waits too, answers after it
        assert nothing_yet(other)
        admin.send("PUBLISH", "c", "m")  # may replicate: held, even for the pausing client
        assert nothing_yet(admin)
        with RawClient(other.sock.getpeername()[1]) as third:
            assert third.call("CLIENT", "UNPAUSE") == b"+OK\r\n"
        replies += [other.read_reply(), other.read_reply(), admin.read_reply()]
        got.append(replies)
    assert got[0] == got[1]
    assert got[0][-3:] == [b"+OK\r\n", b"$3\r\nnew\r\n", b":0\r\n"]


def test_write_pause_holds_a_transaction_with_writes(clients):
    got = []
    for admin, other in clients:
        admin.call("CLIENT", "PAUSE", "100000", "WRITE")
        assert other.call("MULTI") == b"+OK\r\n"
        other.send("INCR", "n")  # queueing a write is held already, as in Redis
        assert nothing_yet(other)
        admin.call("CLIENT", "UNPAUSE")
        got.append([other.read_reply(), other.call("EXEC")])
    assert got[0] == got[1] == [b"+QUEUED\r\n", b"*1\r\n:1\r\n"]


def test_all_pause_holds_every_command_until_its_timeout(clients):
    got = []
    for admin, other in clients:
        admin.call("CLIENT", "PAUSE", "300", "ALL")
        other.send("PING")
        admin.send("ECHO", "mine")  # the pausing client waits too
        assert nothing_yet(other, 0.1) and nothing_yet(admin, 0.0)
        got.append([other.read_reply(), admin.read_reply()])  # the pause ends by itself
    assert got[0] == got[1] == [b"+PONG\r\n", b"$4\r\nmine\r\n"]


def test_a_pause_only_grows(clients):
    """A shorter pause while one is on changes nothing: writes stay held past its end."""
    got = []
    for admin, other in clients:
        admin.call("CLIENT", "PAUSE", "100000", "WRITE")
        assert admin.call("CLIENT", "PAUSE", "10", "WRITE") == b"+OK\r\n"
        time.sleep(0.05)
        other.send("SET", "k", "v")
        assert nothing_yet(other)
        admin.call("CLIENT", "UNPAUSE")
        got.append(other.read_reply())
    assert got[0] == got[1] == b"+OK\r\n"


def test_all_pause_holds_unpause_and_later_pauses_too(clients):
    """Under ALL even CLIENT UNPAUSE and CLIENT PAUSE wait; they run, in order, at its end."""
    got = []
    for admin, other in clients:
        admin.call("CLIENT", "PAUSE", "400", "ALL")
        other.send("CLIENT", "PAUSE", "10", "WRITE")
        admin.send("CLIENT", "UNPAUSE")
        assert nothing_yet(other, 0.1) and nothing_yet(admin, 0.0)
        got.append([other.read_reply(), admin.read_reply(), other.call("SET", "k", "v")])
    assert got[0] == got[1] == [b"+OK\r\n"] * 3


def test_expiry_waits_for_the_end_of_a_pause(clients, pair):
    got = []
    for (admin, _other), port in zip(clients, (pair.store_port, pair.redis_port), strict=True):
        admin.call("CONFIG", "SET", "notify-keyspace-events", "Ex")
        with RawClient(port) as subscriber:
            subscriber.call("SUBSCRIBE", "__keyevent@0__:expired")
            admin.call("SET", "gone", "v", "PX", "50")
            admin.call("CLIENT", "PAUSE", "100000", "WRITE")
            time.sleep(0.3)
            assert nothing_yet(subscriber)
            admin.call("CLIENT", "UNPAUSE")
            subscriber.sock.settimeout(5)
            got.append(subscriber.read_reply())
        admin.call("CONFIG", "SET", "notify-keyspace-events", "")
    assert got[0] == got[1]
    assert got[0].endswith(b"$4\r\ngone\r\n")
