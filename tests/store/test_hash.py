"""Hash commands against real redis-server: the same replies, byte for byte, and the same events."""

import pytest

from tests.store.helpers import (
    command_info_head,
    same_unordered,
    scan_all,
    split_aggregate,
    watch_outcome,
)

HASH_COMMANDS = [
    ("HSET", "k", "f", "v"),
    ("HSETNX", "k", "f", "v"),
    ("HMSET", "k", "f", "v"),
    ("HGET", "k", "f"),
    ("HMGET", "k", "f"),
    ("HGETALL", "k"),
    ("HKEYS", "k"),
    ("HVALS", "k"),
    ("HDEL", "k", "f"),
    ("HEXISTS", "k", "f"),
    ("HLEN", "k"),
    ("HSTRLEN", "k", "f"),
    ("HINCRBY", "k", "f", "1"),
    ("HINCRBYFLOAT", "k", "f", "1.5"),
    ("HRANDFIELD", "k"),
    ("HRANDFIELD", "k", "2"),
    ("HRANDFIELD", "k", "2", "WITHVALUES"),
    ("HSCAN", "k", "0"),
]


# ------------------------------------------------------------ writes and reads


def test_field_writes_and_reads(pair, proto):
    pair.same("HSET", "h", "f1", "v1", "f2", "v2")
    pair.same("HSET", "h", "f1", "x", "f3", "v3")
    pair.same("HSET", "h", "f1", "x")
    pair.same("HSET", "h", "dup", "1", "dup", "2")
    pair.same("HMSET", "h", "a", "1", "b", "")
    pair.same("HSETNX", "h", "f1", "y")
    pair.same("HSETNX", "h", "new", "y")
    pair.same("HSETNX", "fresh", "f", "v")
    for command in (
        ("HGET", "h", "f1"),
        ("HGET", "h", "nope"),
        ("HGET", "missing", "f"),
        ("HMGET", "h", "f1", "nope", "b", "f1"),
        ("HMGET", "missing", "a", "b"),
        ("HGETALL", "h"),
        ("HKEYS", "h"),
        ("HVALS", "h"),
        ("HLEN", "h"),
        ("HGETALL", "missing"),
        ("HKEYS", "missing"),
        ("HVALS", "missing"),
        ("HLEN", "missing"),
        ("HSTRLEN", "h", "f2"),
        ("HSTRLEN", "h", "b"),
        ("HSTRLEN", "h", "nope"),
        ("HSTRLEN", "missing", "f"),
        ("HEXISTS", "h", "a"),
        ("HEXISTS", "h", "nope"),
        ("HEXISTS", "missing", "a"),
        ("TYPE", "h"),
    ):
        pair.same(*command)


def test_hdel_deletes_fields_and_the_emptied_hash(pair):
    pair.same("HSET", "h", "a", "1", "b", "2", "c", "3")
    pair.same("HDEL", "h", "a", "nope", "a")
    pair.same("HDEL", "missing", "a")
    pair.same("HDEL", "h", "nope")
    pair.same("HGETALL", "h")
    pair.same("HDEL", "h", "b", "c", "b")
    pair.same("EXISTS", "h")
    pair.same("HLEN", "h")


def test_insertion_order_is_kept_for_small_hashes(pair, proto):
    pair.same("HSET", "h", "z", "1", "a", "2", "m", "3", "10", "4", "2", "5")
    pair.same("HSET", "h", "a", "updated")
    pair.same("HDEL", "h", "z")
    pair.same("HSET", "h", "z", "back")
    pair.same("HGETALL", "h")
    pair.same("HKEYS", "h")
    pair.same("HVALS", "h")


def test_big_hashes_hold_the_same_content(pair, proto):
    fields = [x for i in range(300) for x in (f"f{i}", f"v{i}")]
    pair.same("HSET", "big", *fields)
    pair.same("HSET", "long", "f", "x" * 100, "g", "1")
    for key in ("big", "long"):
        same_unordered(pair, "HGETALL", key, pairs=True)
        same_unordered(pair, "HKEYS", key)
        same_unordered(pair, "HVALS", key)
        pair.same("HLEN", key)


def test_wrong_type_and_arity_errors(pair):
    pair.same("SET", "k", "string")
    for command in HASH_COMMANDS:
        pair.same(*command)
        pair.same(command[0])
    for command in (
        ("HSET", "h", "f"),
        ("HSET", "h", "f", "v", "g"),
        ("HMSET", "h", "f"),
        ("HMSET", "h", "f", "v", "g"),
        ("HSETNX", "h", "f"),
        ("HSETNX", "h", "f", "v", "x"),
        ("HGET", "h"),
        ("HGET", "h", "f", "g"),
        ("HMGET", "h"),
        ("HGETALL", "h", "x"),
        ("HKEYS", "h", "x"),
        ("HVALS", "h", "x"),
        ("HDEL", "h"),
        ("HEXISTS", "h"),
        ("HLEN", "h", "x"),
        ("HSTRLEN", "h"),
        ("HINCRBY", "h", "f"),
        ("HINCRBYFLOAT", "h", "f", "1", "2"),
        ("HSCAN", "h"),
    ):
        pair.same(*command)
    pair.same("EXISTS", "h")


# ------------------------------------------------------------ counters


@pytest.mark.parametrize(
    "amount",
    [
        "1",
        "-1",
        "0",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "+1",
        " 1",
        "1 ",
        "1.0",
        "-0",
        "007",
        "",
        "abc",
        "1e3",
        "0x10",
    ],
)
def test_hincrby_parses_like_redis(pair, amount):
    pair.same("HINCRBY", "h", "f", amount)
    pair.same("HINCRBY", "h", "f", amount)
    pair.same("HGETALL", "h")
    pair.same("EXISTS", "h")


def test_hincrby_overflow_and_non_integer_values(pair):
    pair.same(
        "HSET",
        "h",
        "max",
        "9223372036854775807",
        "min",
        "-9223372036854775808",
        "text",
        "abc",
        "float",
        "1.5",
        "spaced",
        " 1",
        "big",
        "99999999999999999999",
    )
    for field, amount in (
        ("max", "1"),
        ("max", "0"),
        ("max", "-1"),
        ("min", "-1"),
        ("min", "1"),
        ("text", "1"),
        ("float", "1"),
        ("spaced", "1"),
        ("big", "1"),
    ):
        pair.same("HINCRBY", "h", field, amount)
    pair.same("HGETALL", "h")


@pytest.mark.parametrize(
    "start, amount",
    [
        (None, "0.1"),
        ("0.1", "0.2"),
        ("10.50", "0.1"),
        ("5.0e3", "2.0e2"),
        ("3", "-3"),
        ("1.23", "-1.23"),
        ("0", "-0"),
        (None, "1e308"),
        ("1e308", "1e308"),
        ("1e4931", "1e4932"),
        ("17179869184", "0.00000000001"),
        ("1", "1e-20"),
        (None, "0x1p3"),
        (None, "+.5"),
        (None, "5."),
        ("-1.5", "1"),
        (None, "3.0e3"),
        (None, "-1e-5"),
        ("2", "1e-18"),
        (None, "123456789012345678901234567890"),
        ("0.333333333333333333", "0.666666666666666667"),
        (None, "1" * 5000),
        (None, "0." + "0" * 4990 + "1"),
        ("-1e4932", "1e4931"),
        (None, "1e-4940"),
    ],
)
def test_hincrbyfloat_adds_in_long_double_like_redis(pair, proto, start, amount):
    if start is not None:
        pair.same("HSET", "h", "f", start)
    pair.same("HINCRBYFLOAT", "h", "f", amount)
    pair.same("HINCRBYFLOAT", "h", "f", amount)
    pair.same("HGET", "h", "f")


@pytest.mark.parametrize(
    "amount",
    [
        "abc",
        "",
        " 1",
        "1 ",
        "nan",
        "inf",
        "-inf",
        "infinity",
        "1e5000",
        "-1e5000",
        "1e-5000",
        "1_0",
        "1e",
        "0x",
        "--1",
        "1.5.5",
        "1" * 5200,
        "0x1p99999",
    ],
)
def test_hincrbyfloat_refuses_bad_increments(pair, amount):
    pair.same("HINCRBYFLOAT", "h", "f", amount)
    pair.same("EXISTS", "h")


@pytest.mark.parametrize(
    "value", ["abc", "", "inf", "-inf", "nan", " 1", "1e5000", "1e-5000", "0x10"]
)
def test_hincrbyfloat_on_odd_hash_values(pair, value):
    pair.same("HSET", "h", "f", value)
    pair.same("HINCRBYFLOAT", "h", "f", "1")
    pair.same("HGET", "h", "f")


# ------------------------------------------------------------ HRANDFIELD


def test_hrandfield_whole_hash_and_edge_counts(pair, proto):
    pair.same("HSET", "h", "a", "1", "b", "2", "c", "3")
    for args in (
        ("3",),
        ("10",),
        ("3", "WITHVALUES"),
        ("100", "withvalues"),
        ("0",),
        ("0", "WITHVALUES"),
    ):
        pair.same("HRANDFIELD", "h", *args)
    for args in ((), ("5",), ("-5",), ("5", "WITHVALUES"), ("0",)):
        pair.same("HRANDFIELD", "missing", *args)


def test_hrandfield_random_replies_have_redis_shape(pair, proto):
    pair.same("HSET", "h", *[x for i in range(20) for x in (f"f{i}", f"v{i}")])
    fields = {b"f%d" % i for i in range(20)}
    for args in ((), ("1",), ("-1",), ("5",), ("-30",), ("5", "WITHVALUES"), ("-30", "WITHVALUES")):
        ours, theirs = pair.call("HRANDFIELD", "h", *args)
        if not args:
            assert ours.split(b"\r\n")[1] in fields
            continue
        header, items = split_aggregate(ours)
        assert header == split_aggregate(theirs)[0]
        if proto == 3 and "WITHVALUES" in args:
            items = [x for item in items for x in split_aggregate(item)[1]]
        names = [item.split(b"\r\n")[1] for item in items[:: 2 if "WITHVALUES" in args else 1]]
        assert set(names) <= fields
        if not args[0].startswith("-"):
            assert len(set(names)) == len(names)
        if "WITHVALUES" in args:
            assert all(
                items[i + 1] == items[i].replace(b"f", b"v") for i in range(0, len(items), 2)
            )


def test_hrandfield_errors(pair):
    pair.same("HSET", "h", "a", "1")
    pair.same("SET", "s", "x")
    for args in (
        ("h", "abc"),
        ("h", "1", "WITHSCORES"),
        ("h", "1", "WITHVALUES", "x"),
        ("h", "-9223372036854775808"),
        ("h", "9223372036854775808"),
        ("h", "4611686018427387904", "WITHVALUES"),
        ("h", "-4611686018427387904", "WITHVALUES"),
        ("h", "4611686018427387903", "WITHVALUES"),
        ("s", "abc"),
        ("s", "0"),
        ("s",),
        ("missing", "abc"),
        ("missing", "1", "bad"),
    ):
        pair.same("HRANDFIELD", *args)


# ------------------------------------------------------------ HSCAN


def test_hscan_returns_small_hashes_whole(pair, proto):
    pair.same("HSET", "h", "one", "1", "two", "2", "three", "3", "ten", "10")
    for args in (
        ("0",),
        ("7",),
        ("0", "COUNT", "1"),
        ("0", "MATCH", "t*"),
        ("0", "match", "*"),
        ("0", "MATCH", "[ot]?e*", "COUNT", "2"),
        ("0", "COUNT", "2", "MATCH", "nothing"),
        ("18446744073709551615",),
    ):
        pair.same("HSCAN", "h", *args)


def test_hscan_errors(pair):
    pair.same("HSET", "h", "a", "1")
    pair.same("SET", "s", "x")
    for args in (
        ("h", "x"),
        ("h", "1.5"),
        ("h", " 1"),
        ("h", "18446744073709551616"),
        ("h", "0", "COUNT"),
        ("h", "0", "COUNT", "0"),
        ("h", "0", "COUNT", "-1"),
        ("h", "0", "COUNT", "x"),
        ("h", "0", "TYPE", "hash"),
        ("h", "0", "MATCH"),
        ("h", "0", "BOGUS", "1"),
        ("h", "0", "COUNT", "x", "TYPE", "hash"),
        ("h", "0", "TYPE", "hash", "COUNT", "x"),
        ("missing", "0", "COUNT", "x"),
        ("missing", "x"),
        ("s", "0"),
        ("s", "0", "COUNT", "x"),
    ):
        pair.same("HSCAN", *args)


@pytest.mark.parametrize("size, value", [(600, "v"), (20, "x" * 65)])
def test_hscan_iterates_big_hashes_completely(pair, size, value):
    pair.same("HSET", "h", *[x for i in range(size) for x in (f"f{i}", f"{value}{i}")])
    for options in ((), ("COUNT", "7"), ("MATCH", "f1*", "COUNT", "50")):
        ours, calls = scan_all(pair.store, "HSCAN", "h", *options)
        theirs, _ = scan_all(pair.redis, "HSCAN", "h", *options)
        assert sorted(zip(ours[::2], ours[1::2], strict=False)) == sorted(
            zip(theirs[::2], theirs[1::2], strict=False)
        )
        assert len(ours) == len(set(ours[::2])) * 2
        if not options:
            assert calls > 1
    for cursor in ("18446744073709551615", "100000"):  # Redis's reply depends on its hash table
        ours, theirs = pair.call("HSCAN", "h", cursor, "COUNT", "5")
        assert ours.startswith(b"*2\r\n$") and theirs.startswith(b"*2\r\n$")


# ------------------------------------------------------------ keyspace events and expiry


def test_hash_keyspace_events(pair, events):
    pair.same("HSET", "h", "a", "1", "b", "2")
    pair.same("HSET", "h", "a", "1")
    pair.same("HMSET", "h", "c", "3")
    pair.same("HSETNX", "h", "a", "x")
    pair.same("HSETNX", "h", "d", "4")
    pair.same("HINCRBY", "h", "n", "5")
    pair.same("HINCRBYFLOAT", "h", "x", "1.5")
    pair.same("HINCRBY", "h", "a", "9223372036854775807")
    pair.same("HINCRBY", "h", "a", "x")
    pair.same("HDEL", "h", "nope")
    pair.same("HDEL", "h", "a", "b")
    pair.same("HDEL", "h", "c", "d", "n", "x")
    pair.same("HDEL", "h", "a")
    pair.same("HINCRBY", "new", "f", "1")
    pair.same("HINCRBYFLOAT", "new2", "f", "1")
    events.assert_same(expected_count=22)


def test_expired_hash_is_gone(pair):
    pair.same("HSET", "h", "a", "1")
    pair.same("PEXPIRE", "h", "1")
    import time

    time.sleep(0.05)
    for command in (
        ("HGET", "h", "a"),
        ("HLEN", "h"),
        ("HGETALL", "h"),
        ("HSETNX", "h", "a", "2"),
        ("HGETALL", "h"),
        ("TTL", "h"),
    ):
        pair.same(*command)


def test_writes_keep_the_ttl(pair):
    pair.same("HSET", "h", "a", "1")
    pair.same("EXPIRE", "h", "100")
    pair.same("HSET", "h", "b", "2")
    pair.same("HINCRBY", "h", "c", "1")
    pair.same("HDEL", "h", "a")
    pair.same("TTL", "h")


@pytest.mark.parametrize(
    "command",
    [
        ("HSET", "h", "a", "1"),
        ("HSET", "h", "new", "1"),
        ("HSETNX", "h", "a", "2"),
        ("HSETNX", "h", "b", "2"),
        ("HDEL", "h", "nope"),
        ("HDEL", "h", "a"),
        ("HINCRBY", "h", "n", "1"),
        ("HINCRBYFLOAT", "h", "n", "1"),
        ("HINCRBY", "h", "a", "x"),
        ("HGET", "h", "a"),
        ("HSET", "other", "a", "1"),
    ],
)
def test_watch_sees_hash_writes(pair, store_port, redis_port, command):
    pair.same("HSET", "h", "a", "1")
    watch_outcome(pair, store_port, redis_port, "h", *command)


@pytest.mark.parametrize("name", sorted({c[0] for c in HASH_COMMANDS}))
def test_command_info(pair, name):
    ours, theirs = pair.call("COMMAND", "INFO", name)
    assert command_info_head(ours) == command_info_head(theirs)
