"""Set commands against real redis-server: the same replies, byte for byte, and the same events.

Redis replies in a defined order only for intset-encoded sets (integers, ascending); other
replies are compared with their elements sorted.
"""

import pytest

from tests.store.helpers import (
    command_info_head,
    same_unordered,
    scan_all,
    split_aggregate,
    watch_outcome,
)

SET_COMMANDS = [
    ("SADD", "k", "m"),
    ("SREM", "k", "m"),
    ("SMEMBERS", "k"),
    ("SISMEMBER", "k", "m"),
    ("SMISMEMBER", "k", "m", "n"),
    ("SCARD", "k"),
    ("SPOP", "k"),
    ("SPOP", "k", "2"),
    ("SRANDMEMBER", "k"),
    ("SRANDMEMBER", "k", "2"),
    ("SRANDMEMBER", "k", "-2"),
    ("SMOVE", "k", "s", "m"),
    ("SMOVE", "s", "k", "a"),
    ("SINTER", "k"),
    ("SINTER", "s", "k"),
    ("SINTERCARD", "2", "s", "k"),
    ("SUNION", "s", "k"),
    ("SDIFF", "s", "k"),
    ("SDIFF", "missing", "k"),
    ("SINTERSTORE", "d", "s", "k"),
    ("SUNIONSTORE", "d", "k"),
    ("SDIFFSTORE", "d", "s", "k"),
    ("SSCAN", "k", "0"),
    ("SINTER", "missing", "k"),
]


def members(raw: bytes) -> set[bytes]:
    return {item.split(b"\r\n")[1] for item in split_aggregate(raw)[1]}


# ------------------------------------------------------------ membership


def test_add_remove_and_membership(pair, proto):
    pair.same("SADD", "s", "a", "b", "c", "a")
    pair.same("SADD", "s", "a")
    pair.same("SADD", "s", "d", "a")
    for command in (
        ("SISMEMBER", "s", "a"),
        ("SISMEMBER", "s", "z"),
        ("SISMEMBER", "missing", "a"),
        ("SMISMEMBER", "s", "a", "z", "d", "a"),
        ("SMISMEMBER", "missing", "a", "b"),
        ("SCARD", "s"),
        ("SCARD", "missing"),
        ("SMEMBERS", "missing"),
        ("TYPE", "s"),
    ):
        pair.same(*command)
    same_unordered(pair, "SMEMBERS", "s")
    pair.same("SREM", "s", "a", "z", "a")
    pair.same("SREM", "s", "z")
    pair.same("SREM", "missing", "a")
    same_unordered(pair, "SMEMBERS", "s")
    pair.same("SREM", "s", "b", "c", "d")
    pair.same("EXISTS", "s")


def test_integer_sets_reply_in_ascending_order(pair, proto):
    pair.same(
        "SADD", "ints", "10", "-5", "3", "9223372036854775807", "-9223372036854775808", "0", "7"
    )
    pair.same("SMEMBERS", "ints")
    pair.same("SADD", "other", "3", "7", "100", "-5")
    for command in (
        ("SINTER", "ints", "other"),
        ("SUNION", "ints", "other"),
        ("SDIFF", "ints", "other"),
        ("SRANDMEMBER", "ints", "100"),
        ("SSCAN", "ints", "0"),
        ("SSCAN", "ints", "0", "MATCH", "*7*"),
    ):
        pair.same(*command)
    pair.same("SPOP", "other", "10")
    pair.same("EXISTS", "other")
    # not integers to Redis either: a set holding them is a hash table, its order unspecified
    pair.same("SADD", "mixed", "1", "01", "+2", "9223372036854775808", "-0")
    same_unordered(pair, "SMEMBERS", "mixed")


def test_big_sets_hold_the_same_content(pair, proto):
    pair.same("SADD", "bigints", *range(600))
    pair.same("SADD", "strings", *[f"m{i}" for i in range(300)])
    for key in ("bigints", "strings"):
        same_unordered(pair, "SMEMBERS", key)
        pair.same("SCARD", key)


def test_wrong_type_and_arity_errors(pair):
    pair.same("SET", "k", "string")
    pair.same("SADD", "s", "a")
    for command in SET_COMMANDS:
        pair.same(*command)
        pair.same(command[0])
    for command in (
        ("SADD", "s"),
        ("SREM", "s"),
        ("SMEMBERS", "s", "x"),
        ("SISMEMBER", "s"),
        ("SISMEMBER", "s", "a", "b"),
        ("SMISMEMBER", "s"),
        ("SCARD", "s", "x"),
        ("SMOVE", "s", "d"),
        ("SMOVE", "s", "d", "a", "b"),
        ("SINTERSTORE", "d"),
        ("SUNIONSTORE", "d"),
        ("SDIFFSTORE", "d"),
        ("SINTERCARD", "1"),
        ("SSCAN", "s"),
    ):
        pair.same(*command)
    pair.same("GET", "k")


# ------------------------------------------------------------ random members


def test_spop(pair, proto):
    pair.same("SADD", "s", "a", "b", "c", "d", "e")
    for args in (("0",), ("-1",), ("x",), ("1", "2"), ("9223372036854775808",)):
        pair.same("SPOP", "s", *args)
    for args in ((), ("3",), ("0",)):
        pair.same("SPOP", "missing", *args)
    ours, theirs = pair.call("SPOP", "s")
    assert ours.split(b"\r\n")[1] in {b"a", b"b", b"c", b"d", b"e"}
    ours, theirs = pair.call("SPOP", "s", "2")
    assert split_aggregate(ours)[0] == split_aggregate(theirs)[0]
    assert len(members(ours)) == 2
    pair.same("SCARD", "s")
    ours, theirs = pair.call("SPOP", "s", "5")  # the rest, which differs after random pops
    assert (
        split_aggregate(ours)[0]
        == split_aggregate(theirs)[0]
        == (b"~2\r\n" if proto == 3 else b"*2\r\n")
    )
    pair.same("EXISTS", "s")


def test_srandmember(pair, proto):
    pair.same("SADD", "s", *[f"m{i}" for i in range(20)])
    universe = {b"m%d" % i for i in range(20)}
    for args in (("0",), ("x",), ("1", "2"), ("-9223372036854775808",), ("9223372036854775808",)):
        pair.same("SRANDMEMBER", "s", *args)
    for args in ((), ("3",), ("-3",), ("0",)):
        pair.same("SRANDMEMBER", "missing", *args)
    same_unordered(pair, "SRANDMEMBER", "s", "20")
    same_unordered(pair, "SRANDMEMBER", "s", "100")
    assert pair.store.call("SRANDMEMBER", "s").split(b"\r\n")[1] in universe
    for count in ("1", "-1", "5", "-50"):
        ours, theirs = pair.call("SRANDMEMBER", "s", count)
        assert split_aggregate(ours)[0] == split_aggregate(theirs)[0]
        assert members(ours) <= universe
        if not count.startswith("-"):
            assert len(members(ours)) == int(count)
    pair.same("SCARD", "s")


# ------------------------------------------------------------ SMOVE


def test_smove(pair):
    pair.same("SADD", "src", "a", "b")
    pair.same("SADD", "dst", "b", "c")
    pair.same("SET", "str", "x")
    for args in (
        ("src", "dst", "a"),
        ("src", "dst", "a"),
        ("src", "dst", "b"),
        ("missing", "dst", "a"),
        ("missing", "str", "a"),
        ("str", "dst", "a"),
        ("dst", "str", "c"),
        ("dst", "dst", "c"),
        ("dst", "dst", "z"),
        ("dst", "new", "c"),
        ("dst", "new", "zz"),
    ):
        pair.same("SMOVE", *args)
    for key in ("src", "dst", "new"):
        same_unordered(pair, "SMEMBERS", key)
        pair.same("EXISTS", key)


# ------------------------------------------------------------ algebra


@pytest.mark.parametrize("op", ["SINTER", "SUNION", "SDIFF"])
def test_algebra(pair, proto, op):
    pair.same("SADD", "a", "1", "2", "3", "x", "y")
    pair.same("SADD", "b", "2", "3", "4", "y", "z")
    pair.same("SADD", "c", "3", "y", "q")
    pair.same("SET", "str", "v")
    for keys in (
        ("a",),
        ("a", "b"),
        ("a", "b", "c"),
        ("b", "a"),
        ("a", "missing"),
        ("missing", "a"),
        ("a", "a"),
        ("missing",),
    ):
        same_unordered(pair, op, *keys)
    for keys in (("a", "str"), ("missing", "str"), ("str",), ("str", "missing")):
        pair.same(op, *keys)


@pytest.mark.parametrize("op", ["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"])
def test_algebra_store(pair, op):
    pair.same("SADD", "a", "1", "2", "x")
    pair.same("SADD", "b", "2", "x", "y")
    pair.same("SET", "str", "v")
    pair.same("SET", "dst", "was a string", "EX", "100")
    pair.same(op, "dst", "a", "b")
    pair.same("TTL", "dst")
    same_unordered(pair, "SMEMBERS", "dst")
    pair.same(op, "a", "a", "b")  # the destination may be a source
    same_unordered(pair, "SMEMBERS", "a")
    pair.same(op, "dst", "missing", "missing2")
    pair.same("EXISTS", "dst")
    pair.same(op, "dst", "a", "str")
    pair.same(op, "str", "a")
    pair.same("TYPE", "str")
    pair.same(op, "out", "missing")
    pair.same("EXISTS", "out")


def test_sintercard(pair):
    pair.same("SADD", "a", "1", "2", "3", "4")
    pair.same("SADD", "b", "2", "3", "4", "5")
    pair.same("SET", "str", "v")
    for args in (
        ("2", "a", "b"),
        ("1", "a"),
        ("2", "a", "missing"),
        ("2", "a", "b", "LIMIT", "2"),
        ("2", "a", "b", "limit", "0"),
        ("2", "a", "b", "LIMIT", "10"),
        ("2", "a", "b", "LIMIT", "1", "LIMIT", "3"),
        ("2", "a", "b", "LIMIT", "-1"),
        ("2", "a", "b", "LIMIT", "x"),
        ("2", "a", "b", "LIMIT"),
        ("2", "a", "b", "BOGUS", "1"),
        ("0", "a"),
        ("-1", "a"),
        ("x", "a"),
        ("3", "a", "b"),
        ("2", "a", "str"),
        ("2", "missing", "str"),
        ("1", "a", "b"),
        ("9223372036854775808", "a"),
    ):
        pair.same("SINTERCARD", *args)


# ------------------------------------------------------------ SSCAN


def test_sscan_small_and_errors(pair, proto):
    pair.same("SADD", "ints", "5", "1", "30", "-2")
    pair.same("SADD", "strs", "one")
    pair.same("SET", "str", "v")
    for args in (
        ("ints", "0"),
        ("ints", "99"),
        ("ints", "0", "COUNT", "1"),
        ("ints", "0", "MATCH", "-*"),
        ("strs", "0"),
        ("strs", "0", "MATCH", "o?e"),
        ("missing", "0"),
        ("missing", "0", "COUNT", "x"),
        ("ints", "x"),
        ("ints", "0", "COUNT", "0"),
        ("ints", "0", "TYPE", "set"),
        ("ints", "0", "COUNT"),
        ("str", "0"),
        ("ints", "0", "NOVALUES"),
    ):
        pair.same("SSCAN", *args)


@pytest.mark.parametrize(
    "members_", [[f"m{i}" for i in range(300)], list(range(1000))], ids=["strings", "ints"]
)
def test_sscan_iterates_big_sets_completely(pair, members_):
    pair.same("SADD", "s", *members_)
    for options in ((), ("COUNT", "20"), ("MATCH", "*1*", "COUNT", "100")):
        ours, calls = scan_all(pair.store, "SSCAN", "s", *options)
        theirs, _ = scan_all(pair.redis, "SSCAN", "s", *options)
        assert sorted(ours) == sorted(theirs)
        assert len(ours) == len(set(ours))
        if not options:
            assert calls > 1


# ------------------------------------------------------------ keyspace events


def test_set_keyspace_events(pair, events):
    pair.same("SADD", "s", "a", "b", "c")
    pair.same("SADD", "s", "a")
    pair.same("SREM", "s", "zz")
    pair.same("SREM", "s", "a")
    pair.same("SMOVE", "s", "t", "b")
    pair.same("SMOVE", "s", "t", "zz")
    pair.same("SMOVE", "s", "t", "c")
    pair.same("SADD", "u", "1", "2")
    pair.same("SPOP", "u", "0")
    pair.same("SPOP", "u", "5")
    pair.same("SADD", "v", "1")
    pair.same("SPOP", "v")
    pair.same("SADD", "w", "1", "2")
    pair.call("SPOP", "w")  # a random member, but the same events
    pair.same("SREM", "t", "b", "c")
    events.assert_same(expected_count=34)


@pytest.mark.parametrize("op", ["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"])
def test_store_keyspace_events(pair, events, op):
    pair.same("SADD", "a", "1", "2")
    pair.same("SADD", "b", "2", "3")
    pair.same(op, "d", "a", "b")
    pair.same(op, "d", "a", "b")
    pair.same(op, "d", "missing", "missing")
    pair.same(op, "d", "missing", "missing")
    pair.same(op, "d", "a", "a") if op == "SDIFFSTORE" else pair.same(op, "d", "a", "b")
    events.assert_same()


@pytest.mark.parametrize(
    "command",
    [
        ("SADD", "s", "a"),
        ("SADD", "s", "new"),
        ("SREM", "s", "nope"),
        ("SREM", "s", "a"),
        ("SMOVE", "s", "t", "a"),
        ("SMOVE", "t", "s", "a"),
        ("SMOVE", "s", "s", "a"),
        ("SPOP", "s", "0"),
        ("SINTERSTORE", "s", "s"),
        ("SDIFFSTORE", "s", "missing"),
        ("SUNIONSTORE", "x", "s"),
        ("SMEMBERS", "s"),
    ],
)
def test_watch_sees_set_writes(pair, store_port, redis_port, command):
    pair.same("SADD", "s", "a", "b")
    watch_outcome(pair, store_port, redis_port, "s", *command)


@pytest.mark.parametrize("name", sorted({c[0] for c in SET_COMMANDS}))
def test_command_info(pair, name):
    ours, theirs = pair.call("COMMAND", "INFO", name)
    assert command_info_head(ours) == command_info_head(theirs)
