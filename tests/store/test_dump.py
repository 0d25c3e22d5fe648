"""DUMP and RESTORE against redis-server: the same payload bytes for the same value (where
Redis's bytes depend on the value alone), payloads crossing both ways, Redis's errors, and
corrupt payloads that change nothing."""

from __future__ import annotations

import pytest

from tests.store.helpers import run
from tests.store.rawclient import RawClient


def bulk(reply: bytes) -> bytes | None:
    """The payload of a RESP bulk-string reply (None for nil)."""
    if reply.startswith((b"$-1", b"_")):
        return None
    assert reply.startswith(b"$"), reply
    head, _, rest = reply.partition(b"\r\n")
    return rest[: int(head[1:])]


def same_dump(pair, key: str) -> bytes:
    """DUMP `key` on both servers; the payloads must be identical."""
    ours, theirs = pair.call("DUMP", key)
    assert ours == theirs, f"DUMP {key}: store {ours[:80]!r} != redis {theirs[:80]!r}"
    return bulk(ours)


def build(pair, *commands) -> None:
    for command in commands:
        pair.call(*command) if isinstance(command, tuple) else pair.call(*command.split())


# ---------------------------------------------------------------- payload identity

STRINGS = [
    "0", "1", "-1", "127", "-128", "128", "32767", "-32768", "32768", "2147483647",
    "-2147483648", "2147483648", "9223372036854775807", "-9223372036854775808",
    "9223372036854775808", "007", "-0", "+1", "1.5", "", "hello", "x" * 20, "x" * 21,
    "abcabcabcabcabcabcabcabcabc", "a" * 1000, "The quick brown fox jumps over the lazy dog " * 30,
]  # fmt: skip


@pytest.mark.parametrize("value", STRINGS)
def test_string_payloads_are_redis_bytes(pair, value):
    pair.call("SET", "k", value)
    same_dump(pair, "k")


def test_string_without_compression(pair):
    pair.call("CONFIG", "SET", "rdbcompression", "no")
    try:
        pair.call("SET", "k", "a" * 100)
        assert same_dump(pair, "k")[1:3] == b"\x40\x64"  # 14-bit length 100, verbatim
    finally:
        pair.call("CONFIG", "SET", "rdbcompression", "yes")


def test_random_strings_compress_as_redis(pair):
    import random

    rng = random.Random(7)
    alphabet = b"abcde"
    for n in (21, 30, 64, 200, 1000, 5000, 20000):
        value = bytes(rng.choice(alphabet) for _ in range(n))
        pair.call("SET", "k", value)
        same_dump(pair, "k")


LISTS = {
    "small": ["a", "b", "1", "-5", "300", "70000", "99999999999", "x" * 70, "y" * 5000],
    "ints": [str(i * 997 - 50000) for i in range(300)],
    "many": [f"element-{i}" for i in range(3000)],
    "big": ["z" * 3000 for _ in range(10)],
}


@pytest.mark.parametrize("name", sorted(LISTS))
def test_list_payloads_are_redis_bytes(pair, name):
    pair.call("RPUSH", "l", *LISTS[name])
    same_dump(pair, "l")


def test_list_with_positive_fill(pair):
    pair.call("CONFIG", "SET", "list-max-listpack-size", "5")
    try:
        pair.call("RPUSH", "l", *[str(i) for i in range(23)])
        same_dump(pair, "l")
    finally:
        pair.call("CONFIG", "SET", "list-max-listpack-size", "-2")


SETS = {
    "int16": ["1", "-5", "300", "32767"],
    "int32": ["1", "70000", "-70000"],
    "int64": ["1", "99999999999", "-9223372036854775808"],
    "too_many_ints": [str(i) for i in range(600)],
}


@pytest.mark.parametrize("name", sorted(SETS))
def test_intset_payloads_are_redis_bytes(pair, name):
    pair.call("SADD", "s", *SETS[name])
    if len(SETS[name]) > 512:
        pytest.skip("a hashtable set: Redis's member order is its dict's (random seed)")
    same_dump(pair, "s")


ZSETS = {
    "small": [("1", "a"), ("2.5", "b"), ("-3", "c"), ("1e300", "d"), ("inf", "e"),
              ("-inf", "f"), ("0.1", "g"), ("4611686018427387904", "h"), ("123", "10")],
    "large_members": [("1", "m" * 65), ("2", "n")],
    "many": [(str(i * 1.25), f"member{i}") for i in range(200)],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(ZSETS))
def test_zset_payloads_are_redis_bytes(pair, name):
    args = [x for pair_ in ZSETS[name] for x in pair_]
    pair.call("ZADD", "z", *args)
    same_dump(pair, "z")


def test_zset_stays_skiplist_after_shrinking(pair):
    pair.call("ZADD", "z", *[x for i in range(130) for x in (str(i), f"m{i}")])
    pair.call("ZREMRANGEBYRANK", "z", "0", "100")
    assert same_dump(pair, "z")[0] == 5


HASHES = {
    "small": ["f1", "v1", "n", "12", "neg", "-7", "big", "99999999999"],
    "long_value": ["f", "v" * 65],
}


@pytest.mark.parametrize("name", sorted(HASHES))
def test_hash_payloads_are_redis_bytes(pair, name):
    pair.call("HSET", "h", *HASHES[name])
    if name == "long_value":
        pair.call("HSET", "h", "g", "1")  # a one-field hashtable: one order only
    if name == "long_value":
        pytest.skip("two fields in a hashtable: Redis's order is its dict's")
    same_dump(pair, "h")


def test_hash_listpack_keeps_insertion_order(pair):
    build(pair, "HSET h a 1 b 2 c 3", "HDEL h b", "HSET h d 4 a 9")
    same_dump(pair, "h")


def test_stream_payload_is_redis_bytes(pair):
    for i in range(1, 260):
        if i % 7:
            pair.call("XADD", "x", f"{i}-1", "f", str(i), "g", "v" * (i % 5))
        else:
            pair.call("XADD", "x", f"{i}-1", "other", "x")
    same_dump(pair, "x")


def test_empty_stream_payload(pair):
    build(pair, "XADD x 5-5 a b", "XTRIM x MAXLEN 0")
    same_dump(pair, "x")


# ---------------------------------------------------------------- cross restore


def cross(pair, key: str, check: list[str]) -> None:
    """DUMP `key` on each server, RESTORE it on the other; `check` reads agree."""
    ours = bulk(pair.store.call("DUMP", key))
    theirs = bulk(pair.redis.call("DUMP", key))
    assert pair.store.call("RESTORE", "copy-of-redis", "0", theirs) == b"+OK\r\n"
    assert pair.redis.call("RESTORE", "copy-of-store", "0", ours) == b"+OK\r\n"
    for command in check:
        a = pair.store.call(*command.replace("KEY", "copy-of-redis").split())
        b = pair.redis.call(*command.replace("KEY", "copy-of-store").split())
        assert a == b, command


CROSS = {
    "string": (["SET k hello"], ["GET KEY", "OBJECT ENCODING KEY"]),
    "int": (["SET k 12345"], ["GET KEY", "OBJECT ENCODING KEY"]),
    "list": (["RPUSH k a b 1 2 " + "x" * 90], ["LRANGE KEY 0 -1"]),
    "set": (["SADD k a b c 1 2"], ["SORT KEY ALPHA", "SCARD KEY"]),
    "intset": (["SADD k 1 2 3"], ["SORT KEY", "OBJECT ENCODING KEY"]),
    "bigset": ([("SADD", "k", *[f"m{i}" for i in range(700)])], ["SCARD KEY"]),
    "zset": (["ZADD k 1 a 2.5 b -1 c"], ["ZRANGE KEY 0 -1 WITHSCORES", "OBJECT ENCODING KEY"]),
    "bigzset": (
        [("ZADD", "k", *[x for i in range(300) for x in (str(i / 3), f"m{i}")])],
        ["ZRANGE KEY 0 -1 WITHSCORES", "OBJECT ENCODING KEY"],
    ),
    "hash": (["HSET k a 1 b 2"], ["HGETALL KEY", "OBJECT ENCODING KEY"]),
    "bighash": (
        [("HSET", "k", *[x for i in range(200) for x in (f"f{i}", str(i))])],
        ["HLEN KEY", "HGET KEY f77", "OBJECT ENCODING KEY"],
    ),
    "stream": (
        ["XADD k 1-1 a 1", "XADD k 2-1 a 2 b 3", "XADD k 3-1 c 4", "XDEL k 2-1",
         "XGROUP CREATE k g 0", "XREADGROUP GROUP g alice COUNT 1 STREAMS k >",
         "XGROUP CREATE k h $"],
        ["XRANGE KEY - +", "XLEN KEY", "XPENDING KEY g", "XINFO GROUPS KEY"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CROSS))
def test_cross_restore(pair, name):
    commands, checks = CROSS[name]
    build(pair, *commands)
    cross(pair, "k", checks)


def test_stream_consumer_group_cross_restore(pair):
    build(
        pair,
        "XADD k 1-1 a 1",
        "XADD k 2-1 a 2",
        "XGROUP CREATE k g 0",
        "XREADGROUP GROUP g alice STREAMS k >",
        "XGROUP CREATECONSUMER k g bob",
    )
    cross(pair, "k", ["XINFO STREAM KEY", "XPENDING KEY g", "XINFO GROUPS KEY"])


# ---------------------------------------------------------------- RESTORE semantics


def test_restore_errors(pair):
    payload = bulk(pair.redis.call("DUMP", "nope"))
    assert payload is None
    pair.call("SET", "src", "value")
    good = bulk(pair.redis.call("DUMP", "src"))
    run(
        pair,
        ("RESTORE", "src", "0", good),
        ("RESTORE", "new", "-1", good),
        ("RESTORE", "new", "x", good),
        ("RESTORE", "new", "0", good[:-1] + bytes([good[-1] ^ 1])),
        ("RESTORE", "new", "0", b"short"),
        ("RESTORE", "new", "0", good[:-10] + b"\x0b\x00" + good[-8:]),
        ("RESTORE", "new", "0", good, "BOGUS"),
        ("RESTORE", "new", "0", good, "IDLETIME"),
        ("RESTORE", "new", "0", good, "IDLETIME", "-1"),
        ("RESTORE", "new", "0", good, "IDLETIME", "x"),
        ("RESTORE", "new", "0", good, "FREQ", "256"),
        ("RESTORE", "new", "0", good, "FREQ", "-1"),
        ("RESTORE", "new", "0", good, "FREQ", "1", "IDLETIME", "1"),
        ("RESTORE", "new", "0", good, "IDLETIME", "1", "FREQ", "1"),
        ("RESTORE", "src", "-1", good),
        ("RESTORE", "src", "-1", good, "REPLACE"),
        ("RESTORE", "new", "0", good, "IDLETIME", "10", "REPLACE", "ABSTTL"),
        ("RESTORE", "new2", "0", good, "FREQ", "100"),
        "EXISTS new new2",
        ("RESTORE", "new", "100000", good, "REPLACE"),
        "TTL new",
        "DUMP missing",
    )


def test_bad_payloads_change_nothing(pair):
    pair.call("SET", "k", "keep")
    for body in (b"\x06\x01", b"\x07\x01", b"\x08", b"\x14", b"\x00", b"\x02\x00",
                 b"\x0b\x04\x02\x00\x00\x00"):  # fmt: skip
        payload = _with_footer(body)
        run(pair, ("RESTORE", "k", "0", payload, "REPLACE"), "GET k")


def _with_footer(body: bytes) -> bytes:
    from presence.store.rdbcodec import crc64

    body += b"\x0a\x00"
    return body + crc64(body).to_bytes(8, "little")


def test_restore_ttl_and_absttl(pair):
    pair.call("SET", "src", "v")
    good = bulk(pair.redis.call("DUMP", "src"))
    run(
        pair,
        ("RESTORE", "a", "1", good, "ABSTTL"),
        "EXISTS a",
        ("RESTORE", "src", "1", good, "ABSTTL", "REPLACE"),
        "EXISTS src",
        ("RESTORE", "b", "99999999999999", good, "ABSTTL"),
        "PEXPIRETIME b",
    )


def test_restore_notifications(pair):
    pair.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
    pair.call("SET", "src", "v")
    good = bulk(pair.redis.call("DUMP", "src"))
    subscribers = [RawClient(pair.store_port), RawClient(pair.redis_port)]
    try:
        for sub in subscribers:
            sub.call("PSUBSCRIBE", "__keyevent@0__:*")
        for cmd in (
            ("RESTORE", "r", "0", good),
            ("RESTORE", "src", "1", good, "ABSTTL", "REPLACE"),
            ("RESTORE", "r", "0", b"bad", "REPLACE"),
            ("SET", "marker", "1"),
        ):
            pair.call(*cmd)
        got = [sub.read_until_set_event() for sub in subscribers]
        assert got[0] == got[1]
    finally:
        for sub in subscribers:
            sub.close()
        pair.call("CONFIG", "SET", "notify-keyspace-events", "")
