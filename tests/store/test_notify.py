"""Keyspace notifications (presence/store/notify.py and the commands' events), against redis-server.

A listener on each server PSUBSCRIBEs to every keyspace and keyevent channel; the same
commands run on both; the messages each listener received must be identical, in order.
"""

import time

import pytest

from tests.store.helpers import Listener, run
from tests.store.rawclient import RawClient


@pytest.fixture
def events(pair):
    """Configure KEA on both servers and return a Listener (overrides conftest's `events`)."""
    for client in (pair.store, pair.redis):
        client.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
    listener = Listener(pair)
    yield listener
    listener.close()


def same_events(pair, events, *commands) -> list[bytes]:
    run(pair, *commands)
    ours, theirs = events.received()
    assert ours == theirs
    return ours


@pytest.mark.parametrize(
    "flags",
    [
        "KEA",
        "Ex",
        "A",
        "K",
        "E",
        "g",
        "$",
        "x",
        "Kx",
        "AKE",
        "Egx",
        "KA",
        "EA",
        "gKE",
        "Ag",
        "KEAn",
        "KEAm",
        "mE",
        "nK",
        "Axe",
        "K$lshzxetdn",
        "KEAmn",
        "t",
        "d",
        "",
        "EEKK",
        "q",
        "A ",
        "AKEq",
        "Kg$",
    ],
)
def test_config_flags_normalisation(pair, flags):
    run(
        pair,
        ["CONFIG", "SET", "notify-keyspace-events", flags],
        "CONFIG GET notify-keyspace-events",
    )


@pytest.mark.parametrize(
    "flags", ["KEA", "Kg", "E$", "K$", "Eg", "KEx", "Ks", "gE$K", "KEAm", "KEn", "En", "KEAn"]
)
def test_flags_select_events(pair, flags):
    for client in (pair.store, pair.redis):
        client.call("CONFIG", "SET", "notify-keyspace-events", flags)
    listener = Listener(pair)
    try:
        run(pair, "SET a 1", "EXPIRE a 100", "INCR a", "DEL a", "GET missing", "SET b 1 PX 1")
        time.sleep(0.05)
        run(pair, "GET b")
        ours, theirs = listener.received()
        assert ours == theirs
    finally:
        listener.close()


STRING_SEQUENCES = [
    [
        "SET a 1",
        "SET a 2 XX",
        "SET a 3 NX",
        "SET b 1 NX",
        "SET a 4 EX 100",
        "SET a 5 KEEPTTL",
        "SET a 6 GET",
    ],
    ["SET a 1 PX 100000", "SET a 2 EXAT 4000000000", "SET a 3 PXAT 4000000000000"],
    ["SETNX a 1", "SETNX a 2", "SETEX a 100 v", "PSETEX a 100000 v", "GETSET a x", "GETSET n x"],
    [
        "SET a v",
        "GETDEL a",
        "GETDEL a",
        "SET a v",
        "GETEX a",
        "GETEX a EX 100",
        "GETEX a PERSIST",
        "GETEX a PERSIST",
        "GETEX a PXAT 1",
        "EXISTS a",
    ],
    ["MSET a 1 b 2 a 3", "MSETNX a 1 c 3", "MSETNX c 3 d 4"],
    [
        "INCR n",
        "INCRBY n 5",
        "DECR n",
        "DECRBY n 2",
        "INCRBY n abc",
        "INCRBYFLOAT f 1.5",
        "INCRBYFLOAT f abc",
        "SET s x",
        "INCR s",
    ],
    [
        "APPEND a x",
        "APPEND a y",
        ["APPEND", "a", ""],
        "SETRANGE a 5 z",
        ["SETRANGE", "a", "0", ""],
        ["SETRANGE", "nokey", "0", ""],
        "SETRANGE nokey 0 z",
    ],
    [
        "SET a 1 EX 0",
        "SET a 1 GET EX abc",
        "SET a",
        "GET a",
        "MGET a b",
        "STRLEN a",
        "GETRANGE a 0 1",
    ],
]

GENERIC_SEQUENCES = [
    ["SET a 1", "SET b 2", "DEL a b c", "UNLINK b", "SET a 1", "UNLINK a"],
    [
        "SET a 1",
        "EXPIRE a 100",
        "PEXPIRE a 100000",
        "EXPIREAT a 4000000000",
        "PEXPIREAT a 4000000000000",
        "EXPIRE a 100 NX",
        "EXPIRE a 200 GT",
        "PERSIST a",
        "PERSIST a",
        "EXPIRE missing 10",
    ],
    [
        "SET a 1",
        "EXPIRE a 0",
        "SET a 1",
        "PEXPIRE a -1",
        "SET a 1",
        "EXPIREAT a 1",
        "EXPIRE a 10 FOO",
    ],
    [
        "SET a 1",
        "RENAME a b",
        "RENAMENX b c",
        "SET d 1",
        "RENAMENX c d",
        "RENAME c c",
        "RENAME c d",
        "RENAMENX nokey x",
        "RENAME d d",
    ],
    ["SET a 1", "EXPIRE a 100", "RENAME a b", "TTL b", "SET c 1", "RENAME b c"],
    ["SET a 1", "TOUCH a", "EXISTS a", "TYPE a", "KEYS *", "TTL a", "RANDOMKEY"],
    ["SET a 1", "SELECT 3", "SET a 3", "DEL a", "SELECT 0", "DEL a"],
]


@pytest.mark.parametrize("commands", STRING_SEQUENCES + GENERIC_SEQUENCES)
def test_event_sequences(pair, events, commands):
    same_events(pair, events, *commands)


def test_events_inside_exec(pair, events):
    same_events(pair, events, "MULTI", "SET a 1", "INCR a", "DEL a", "EXEC")


def test_flushall_sends_no_key_events(pair, events):
    same_events(pair, events, "SET a 1", "SET b 1", "FLUSHALL", "FLUSHDB")


def test_expired_event_on_lazy_access(pair, events):
    run(pair, "SET a 1 PX 20")
    time.sleep(0.05)
    same_events(pair, events, "GET a", "EXISTS a")


def test_expired_event_by_active_expiry(pair, events):
    """Redis finds the key by sampling within a few hundred ms; the store at its deadline."""
    run(pair, "SET a 1 PX 30", "SET b 1 PX 40", "SET c 1")
    events.received()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if all(c.call("DBSIZE") == b":1\r\n" for c in (pair.store, pair.redis)):
            break
        time.sleep(0.02)
    ours, theirs = events.received()
    assert sorted(ours) == sorted(theirs)
    assert len(ours) == 4  # expired on __keyspace@0__:a / :b and __keyevent@0__:expired twice


def test_keymiss_events(pair):
    for client in (pair.store, pair.redis):
        client.call("CONFIG", "SET", "notify-keyspace-events", "KEm")
    listener = Listener(pair)
    try:
        run(
            pair,
            "GET missing",
            "MGET m1 m2",
            "SET a 1",
            "GET a",
            "EXISTS nokey",
            "STRLEN nokey",
            "GETDEL nokey",
            "GETRANGE nokey 0 1",
            "TTL nokey",
            "PTTL nokey",
            "EXPIRETIME nokey",
            "TYPE nokey",
            "GETEX nokey",
            "GETEX nokey EX 10",
            "APPEND m x",
            "INCR m2",
            "SETRANGE m3 0 x",
            "GETSET m4 x",
            "SET m5 x GET",
            "SET m5 y GET",
            "SETNX m6 x",
            "PERSIST nokey",
            "EXPIRE nokey 10",
            "RENAME nokey x",
            "DEL nokey",
            "TOUCH nokey",
            "SET z 1 NX",
            "SET nokey 2 XX",
            "MSETNX q 1",
            "INCRBYFLOAT m9 1",
            "GETDEL m5",
        )
        ours, theirs = listener.received()
        assert ours == theirs
    finally:
        listener.close()


# ------------------------------------------------------------ keys-expire-notify in real time


@pytest.fixture(scope="module")
def notifying_store():
    from presence.testing import bundled_store

    with bundled_store("--keys-expire-notify", "expired-keys") as port:
        yield port


def test_keys_expire_notify_arrives_at_the_deadline_not_before(notifying_store):
    subscriber, writer = RawClient(notifying_store), RawClient(notifying_store)
    try:
        assert (
            subscriber.call("SUBSCRIBE", "expired-keys")
            == b"*3\r\n$9\r\nsubscribe\r\n$12\r\nexpired-keys\r\n:1\r\n"
        )
        start = time.monotonic()
        assert writer.call("SET", "presence:u1", "x", "PX", "400") == b"+OK\r\n"
        subscriber.sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            subscriber.read_reply()  # nothing before the deadline
        subscriber.sock.settimeout(5)
        message = subscriber.read_reply()
        elapsed = time.monotonic() - start
        assert message == b"*3\r\n$7\r\nmessage\r\n$12\r\nexpired-keys\r\n$11\r\npresence:u1\r\n"
        assert elapsed >= 0.4 - 0.002  # the deadline is whole milliseconds of wall time
        assert writer.call("EXISTS", "presence:u1") == b":0\r\n"
    finally:
        subscriber.close()
        writer.close()


def test_keys_expire_notify_is_settable_and_can_be_disabled(pair):
    store = pair.store
    assert store.call("CONFIG", "SET", "keys-expire-notify", "chan") == b"+OK\r\n"
    assert (
        store.call("CONFIG", "GET", "keys-expire-notify")
        == b"*2\r\n$18\r\nkeys-expire-notify\r\n$4\r\nchan\r\n"
    )
    listener = RawClient(store.sock.getpeername()[1])
    try:
        listener.call("SUBSCRIBE", "chan")
        store.call("SET", "k", "v", "PX", "1")
        listener.sock.settimeout(5)
        assert listener.read_reply() == b"*3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$1\r\nk\r\n"
        assert store.call("CONFIG", "SET", "keys-expire-notify", "") == b"+OK\r\n"
        store.call("SET", "k", "v", "PX", "1")
        time.sleep(0.05)
        assert store.call("EXISTS", "k") == b":0\r\n"
        listener.sock.settimeout(0.1)
        with pytest.raises(TimeoutError):
            listener.read_reply()
    finally:
        listener.close()


KEYMISS_BY_GROUP = {
    "hash": [
        "HGET nokey f",
        "HMGET nokey f g",
        "HGETALL nokey",
        "HKEYS nokey",
        "HVALS nokey",
        "HLEN nokey",
        "HEXISTS nokey f",
        "HSTRLEN nokey f",
        "HRANDFIELD nokey",
        "HRANDFIELD nokey 2 WITHVALUES",
        "HSCAN nokey 0",
        "HDEL nokey f",
        "HINCRBY nokey f 1",
        "HSETNX nokey2 f v",
        "HSET h f v",
        "HGET h f",
        "HGET h nofield",
    ],
    "list": [
        "LRANGE nokey 0 -1",
        "LLEN nokey",
        "LINDEX nokey 0",
        "LPOS nokey a",
        "LPOP nokey",
        "RPOP nokey 2",
        "LREM nokey 0 x",
        "LTRIM nokey 0 1",
        "LSET nokey 0 x",
        "LINSERT nokey BEFORE a b",
        "LMOVE nokey d LEFT LEFT",
        "RPOPLPUSH nokey d",
        "LMPOP 1 nokey LEFT",
        "RPUSH l a",
        "LRANGE l 0 -1",
    ],
    "set": [
        "SISMEMBER nokey x",
        "SMISMEMBER nokey x y",
        "SMEMBERS nokey",
        "SCARD nokey",
        "SRANDMEMBER nokey",
        "SRANDMEMBER nokey 3",
        "SSCAN nokey 0",
        "SINTER nokey",
        "SUNION nokey nokey2",
        "SDIFF nokey",
        "SINTERCARD 1 nokey",
        "SINTERSTORE d nokey",
        "SUNIONSTORE d nokey nokey2",
        "SDIFFSTORE d nokey",
        "SMOVE nokey d x",
        "SREM nokey x",
        "SPOP nokey",
        "SADD s a",
        "SINTER s nokey",
    ],
    "zset": [
        "ZSCORE nokey m",
        "ZMSCORE nokey m n",
        "ZCARD nokey",
        "ZRANGE nokey 0 -1",
        "ZRANGEBYSCORE nokey 0 1",
        "ZREVRANGE nokey 0 -1",
        "ZRANGEBYLEX nokey - +",
        "ZRANK nokey m",
        "ZREVRANK nokey m",
        "ZCOUNT nokey 0 1",
        "ZLEXCOUNT nokey - +",
        "ZRANDMEMBER nokey",
        "ZSCAN nokey 0",
        "ZUNION 1 nokey",
        "ZINTER 2 nokey nokey2",
        "ZDIFF 1 nokey",
        "ZINTERCARD 1 nokey",
        "ZUNIONSTORE d 1 nokey",
        "ZINTERSTORE d 1 nokey",
        "ZDIFFSTORE d 1 nokey",
        "ZRANGESTORE d nokey 0 -1",
        "ZREM nokey m",
        "ZINCRBY nokey 1 m",
        "ZPOPMIN nokey",
        "ZMPOP 1 nokey MIN",
        "ZREMRANGEBYRANK nokey 0 1",
    ],
    "other": [
        "SUBSTR nokey 0 1",
        "COPY nokey d",
        "LCS nokey nokey2",
        "GETBIT nokey 0",
        "BITCOUNT nokey",
        "BITPOS nokey 1",
        "BITFIELD_RO nokey GET u8 0",
        "OBJECT ENCODING nokey",
        "SET str v",
        "COPY str d2",
    ],
}


@pytest.mark.parametrize("group", sorted(KEYMISS_BY_GROUP))
def test_keymiss_events_of_every_type(pair, group):
    # Redis emits keymiss where a command looks a key up to read it (lookupKeyRead: the
    # read commands, and the sources of SINTERSTORE, ZUNIONSTORE, COPY...), not where it
    # looks one up to write it (HDEL, LPOP, SMOVE...).
    for client in (pair.store, pair.redis):
        client.call("CONFIG", "SET", "notify-keyspace-events", "KEm")
    listener = Listener(pair)
    try:
        run(pair, *KEYMISS_BY_GROUP[group])
        ours, theirs = listener.received()
        assert ours == theirs
    finally:
        listener.close()


def _keyspace_stats(client) -> tuple[int, int]:
    info = client.call("INFO", "stats").decode()
    fields = dict(line.split(":", 1) for line in info.split("\r\n") if ":" in line)
    return int(fields["keyspace_hits"]), int(fields["keyspace_misses"])


@pytest.mark.parametrize("group", sorted(KEYMISS_BY_GROUP))
def test_keyspace_hits_and_misses_count_the_read_lookups(pair, group):
    # INFO's keyspace_hits/misses follow the same rule as keymiss (read lookups only),
    # OBJECT included (it counts, without notifying).
    extra = [
        "SET s1 v",
        "GET s1",
        "GET nokey",
        "MGET s1 nokey",
        "EXISTS s1 nokey",
        "TTL s1",
        "TYPE nokey",
        "OBJECT ENCODING s1",
        "OBJECT ENCODING nokey",
        "MEMORY USAGE gone",
        "HGET s1 f",
        "SET s1 w",
        "DEL s1",
        "INCR counter",
    ]
    for client in (pair.store, pair.redis):
        client.call("CONFIG", "RESETSTAT")
    run(pair, *KEYMISS_BY_GROUP[group], *extra)
    ours, theirs = _keyspace_stats(pair.store), _keyspace_stats(pair.redis)
    assert ours == theirs
    assert ours[0] > 0 and ours[1] > 0
