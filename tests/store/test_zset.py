"""Sorted-set commands, differential against redis-server: replies, errors, RESP3, events."""

import random

import pytest

from tests.store.helpers import command_info_head, wait_blocked, watch_outcome
from tests.store.rawclient import RawClient

SCORES = ["1", "1.5", "0.1", "1.1", "-2.5", "1e17", "1e20", "inf", "-inf", "-0", "3"]


def fill(pair, key="z", n=5):
    pair.same("ZADD", key, *[x for i in range(n) for x in (str(i), f"m{i}")])


def test_zadd_and_score_formatting(pair, proto):
    for i, score in enumerate(SCORES):
        pair.same("ZADD", "z", score, f"m{i}")
    for i in range(len(SCORES)):
        if proto == 2 or SCORES[i] in ("1", "1.5", "inf", "-inf", "3", "-2.5", "-0"):
            pair.same("ZSCORE", "z", f"m{i}")
    pair.same("ZSCORE", "z", "nope")
    pair.same("ZSCORE", "nokey", "m")
    if proto == 2:
        pair.same("ZRANGE", "z", "0", "-1", "WITHSCORES")
        pair.same("ZINCRBY", "z", "0.1", "m2")
    pair.same("ZRANGE", "z", "0", "-1")
    pair.same("ZCARD", "z")
    pair.same("ZCARD", "nokey")


def test_zadd_flags(pair, proto):
    fill(pair)
    for args in (
        ["NX", "10", "m1", "10", "new"],
        ["XX", "10", "m1", "10", "new2"],
        ["GT", "0", "m2", "20", "m3", "5", "g"],
        ["LT", "0", "m2", "20", "m3"],
        ["CH", "1", "m1", "7", "m4", "4", "m4"],
        ["XX", "CH", "GT", "100", "m0"],
        ["INCR", "2", "m0"],
        ["NX", "INCR", "2", "m0"],
        ["XX", "INCR", "1", "zz"],
        ["GT", "INCR", "-1", "m0"],
        ["LT", "INCR", "-1", "m0"],
        ["ch", "nx", "1", "q"],
    ):
        pair.same("ZADD", "z", *args)
        pair.same("ZRANGE", "z", "0", "-1", "WITHSCORES")
    pair.same("ZADD", "new", "XX", "1", "a")
    pair.same("ZADD", "new", "XX", "INCR", "1", "a")
    pair.same("EXISTS", "new")
    pair.same("ZADD", "inf", "INCR", "inf", "a")
    pair.same("ZADD", "inf", "INCR", "-inf", "a")
    pair.same("ZINCRBY", "inf", "-inf", "a")


def test_zadd_errors(pair):
    pair.same("SET", "s", "x")
    for args in (
        ["z"],
        ["z", "1"],
        ["z", "1", "a", "2"],
        ["z", "NX", "XX", "1", "a"],
        ["z", "GT", "LT", "1", "a"],
        ["z", "NX", "GT", "1", "a"],
        ["z", "INCR", "1", "a", "2", "b"],
        ["z", "x", "a"],
        ["z", "nan", "a"],
        ["z", " 1", "a"],
        ["z", "1 ", "a"],
        ["z", "1_0", "a"],
        ["z", "NX"],
        ["s", "1", "a"],
        ["s", "x", "a"],
        ["z", "1", "a", "y", "b"],
    ):
        pair.same("ZADD", *args)
    pair.same("ZINCRBY", "z", "x", "a")
    pair.same("ZINCRBY", "s", "1", "a")
    pair.same("ZINCRBY", "z", "1")
    for name in ("ZSCORE", "ZRANK", "ZREVRANK"):
        pair.same(name, "s", "a")
        pair.same(name, "z")
    pair.same("ZMSCORE", "s", "a")
    pair.same("ZCARD", "s")
    pair.same("ZREM", "s", "a")
    pair.same("ZREM", "z")
    pair.same("EXISTS", "z")


def test_zrem_rank_mscore(pair, proto):
    fill(pair, n=6)
    pair.same("ZRANK", "z", "m3")
    pair.same("ZREVRANK", "z", "m3")
    pair.same("ZRANK", "z", "nope")
    pair.same("ZREVRANK", "nokey", "m")
    pair.same("ZMSCORE", "z", "m1", "nope", "m5")
    pair.same("ZMSCORE", "nokey", "a", "b")
    pair.same("ZREM", "z", "m1", "m1", "nope", "m2")
    pair.same("ZREM", "z", "m0", "m3", "m4", "m5")
    pair.same("EXISTS", "z")


def test_zrange_by_rank(pair, proto):
    fill(pair, n=7)
    for start, stop in [
        ("0", "-1"),
        ("1", "3"),
        ("-3", "-1"),
        ("-100", "100"),
        ("5", "2"),
        ("7", "10"),
        ("-1", "-1"),
        ("0", "0"),
        ("-8", "-7"),
    ]:
        pair.same("ZRANGE", "z", start, stop)
        pair.same("ZRANGE", "z", start, stop, "REV")
        pair.same("ZREVRANGE", "z", start, stop, "WITHSCORES")
        pair.same("ZRANGE", "z", start, stop, "WITHSCORES", "REV")
    pair.same("ZRANGE", "nokey", "0", "-1")
    pair.same("ZRANGE", "z", "0", "-1", "LIMIT", "0", "-1")


def test_zrange_by_score(pair, proto):
    pair.same(
        "ZADD", "z", "1", "a", "2", "b", "2", "c", "3", "d", "inf", "e", "-inf", "f", "2.5", "g"
    )
    bounds = [
        ("-inf", "+inf"),
        ("1", "2"),
        ("(1", "2"),
        ("1", "(2"),
        ("(2", "(2"),
        ("2", "2"),
        ("3", "1"),
        ("(", "5"),
        ("", "3"),
        ("-inf", "-inf"),
        ("inf", "inf"),
        ("2", "+inf"),
        ("-Infinity", "1e1"),
        ("0x10", "20"),
    ]
    for low, high in bounds:
        pair.same("ZRANGEBYSCORE", "z", low, high)
        pair.same("ZRANGEBYSCORE", "z", low, high, "WITHSCORES")
        pair.same("ZREVRANGEBYSCORE", "z", high, low, "WITHSCORES")
        pair.same("ZRANGE", "z", low, high, "BYSCORE")
        pair.same("ZRANGE", "z", high, low, "BYSCORE", "REV", "WITHSCORES")
        pair.same("ZCOUNT", "z", low, high)
    for offset, count in [
        ("0", "2"),
        ("1", "2"),
        ("2", "-1"),
        ("-1", "2"),
        ("0", "0"),
        ("6", "5"),
        ("7", "1"),
        ("100", "1"),
        ("3", "100"),
    ]:
        pair.same("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", offset, count)
        pair.same("ZREVRANGEBYSCORE", "z", "+inf", "-inf", "WITHSCORES", "LIMIT", offset, count)
        pair.same("ZRANGE", "z", "(1", "3", "BYSCORE", "LIMIT", offset, count)
        pair.same("ZRANGE", "z", "3", "(1", "BYSCORE", "REV", "LIMIT", offset, count)


def test_zrange_by_lex(pair, proto):
    pair.same(
        "ZADD", "z", *[x for m in ["a", "b", "c", "d", "e", "ee", "f", "g"] for x in ("0", m)]
    )
    bounds = [
        ("-", "+"),
        ("[b", "[d"),
        ("(b", "(d"),
        ("[b", "(b"),
        ("[b", "[b"),
        ("+", "-"),
        ("-", "[c"),
        ("(e", "+"),
        ("[d", "[a"),
        ("[", "(e"),
        ("(", "+"),
        ("-", "-"),
        ("+", "+"),
    ]
    for low, high in bounds:
        pair.same("ZRANGEBYLEX", "z", low, high)
        pair.same("ZREVRANGEBYLEX", "z", high, low)
        pair.same("ZRANGE", "z", low, high, "BYLEX")
        pair.same("ZRANGE", "z", high, low, "BYLEX", "REV")
        pair.same("ZLEXCOUNT", "z", low, high)
        pair.same("ZRANGEBYLEX", "z", low, high, "LIMIT", "1", "2")
        pair.same("ZREVRANGEBYLEX", "z", high, low, "LIMIT", "1", "-1")


def test_zrange_errors(pair):
    fill(pair)
    pair.same("SET", "s", "x")
    for args in (
        ["z", "a", "1"],
        ["z", "0", "b"],
        ["z", "0", "1", "LIMIT", "0", "1"],
        ["z", "0", "1", "LIMIT", "0"],
        ["z", "0", "1", "BYSCORE", "LIMIT", "x", "1"],
        ["z", "a", "1", "BYSCORE"],
        ["z", "(", "(a", "BYSCORE"],
        ["z", "1", "nan", "BYSCORE"],
        ["z", "a", "b", "BYLEX"],
        ["z", "[a", "b", "BYLEX"],
        ["z", "-", "+", "BYLEX", "WITHSCORES"],
        ["z", "0", "1", "REV", "REV"],
        ["z", "0", "1", "BYSCORE", "BYLEX"],
        ["z", "0", "1", "FOO"],
        ["s", "0", "1"],
        ["s", "a", "1", "BYSCORE"],
        ["s", "0", "1", "BYSCORE"],
        ["z", "0"],
        ["z", "1 ", "2", "BYSCORE"],
        ["z", " 1", "2", "BYSCORE"],
        ["z", "1_0", "2", "BYSCORE"],
    ):
        pair.same("ZRANGE", *args)
    pair.same("ZRANGEBYSCORE", "z", "0", "1", "BYSCORE")
    pair.same("ZRANGEBYSCORE", "z", "0", "1", "REV")
    pair.same("ZRANGEBYSCORE", "z", "x", "1")
    pair.same("ZRANGEBYSCORE", "z", "0", "1", "LIMIT", "1")
    pair.same("ZREVRANGE", "z", "0", "1", "REV")
    pair.same("ZREVRANGE", "z", "0", "1", "LIMIT", "0", "1")
    pair.same("ZRANGEBYLEX", "z", "-", "+", "WITHSCORES")
    pair.same("ZRANGEBYLEX", "z", "a", "+")
    pair.same("ZREVRANGEBYLEX", "z", "+", "a")
    pair.same("ZCOUNT", "z", "a", "1")
    pair.same("ZCOUNT", "s", "0", "1")
    pair.same("ZCOUNT", "s", "x", "1")
    pair.same("ZLEXCOUNT", "z", "a", "+")
    pair.same("ZLEXCOUNT", "s", "-", "+")
    pair.same("ZCOUNT", "nokey", "0", "1")
    pair.same("ZLEXCOUNT", "nokey", "-", "+")


def test_zrangestore(pair):
    fill(pair, n=6)
    pair.same("ZRANGESTORE", "d", "z", "1", "3")
    pair.same("ZRANGE", "d", "0", "-1", "WITHSCORES")
    pair.same("ZRANGESTORE", "d", "z", "(1", "+inf", "BYSCORE", "LIMIT", "1", "2")
    pair.same("ZRANGE", "d", "0", "-1", "WITHSCORES")
    pair.same("ZRANGESTORE", "d", "z", "5", "1", "BYSCORE", "REV")
    pair.same("ZRANGESTORE", "d", "z", "[m1", "[m3", "BYLEX")
    pair.same("ZRANGESTORE", "d", "z", "0", "-1", "WITHSCORES")
    pair.same("ZRANGESTORE", "d", "z", "9", "10")
    pair.same("EXISTS", "d")
    pair.same("SET", "d", "x")
    pair.same("ZRANGESTORE", "d", "z", "0", "0")
    pair.same("TYPE", "d")
    pair.same("ZRANGESTORE", "d", "nokey", "0", "1")
    pair.same("EXISTS", "d")
    pair.same("SET", "s", "x")
    pair.same("ZRANGESTORE", "d", "s", "0", "1")
    pair.same("ZRANGESTORE", "d", "z", "0")


def test_zremrange(pair):
    fill(pair, n=8)
    pair.same("ZREMRANGEBYRANK", "z", "5", "2")
    pair.same("ZREMRANGEBYRANK", "z", "-2", "-1")
    pair.same("ZREMRANGEBYSCORE", "z", "(1", "2")
    pair.same("ZREMRANGEBYSCORE", "z", "100", "200")
    pair.same("ZRANGE", "z", "0", "-1")
    pair.same("ZADD", "l", "0", "a", "0", "b", "0", "c")
    pair.same("ZREMRANGEBYLEX", "l", "(a", "+")
    pair.same("ZREMRANGEBYLEX", "l", "-", "+")
    pair.same("EXISTS", "l")
    pair.same("SET", "s", "x")
    for name, low, high in (
        ("ZREMRANGEBYRANK", "0", "1"),
        ("ZREMRANGEBYSCORE", "0", "1"),
        ("ZREMRANGEBYLEX", "-", "+"),
    ):
        pair.same(name, "s", low, high)
        pair.same(name, "nokey", low, high)
        pair.same(name, "z", "x", high)
    pair.same("ZREMRANGEBYSCORE", "z", "-inf", "+inf")
    pair.same("EXISTS", "z")


def test_zpop(pair, proto):
    fill(pair, n=6)
    for args in (
        ["ZPOPMIN", "z"],
        ["ZPOPMAX", "z"],
        ["ZPOPMIN", "z", "2"],
        ["ZPOPMAX", "z", "1"],
        ["ZPOPMIN", "z", "0"],
        ["ZPOPMIN", "z", "-1"],
        ["ZPOPMIN", "z", "x"],
        ["ZPOPMIN", "z", "1", "2"],
        ["ZPOPMAX", "nokey"],
        ["ZPOPMAX", "nokey", "3"],
        ["ZPOPMAX", "z", "10"],
        ["EXISTS", "z"],
    ):
        pair.same(*args)
    pair.same("SET", "s", "x")
    pair.same("ZPOPMIN", "s")
    pair.same("ZPOPMIN", "s", "0")


def test_zrandmember(pair, proto):
    pair.same("ZADD", "z", "1", "a")
    pair.same("ZRANDMEMBER", "z")
    pair.same("ZRANDMEMBER", "z", "1", "WITHSCORES")
    pair.same("ZRANDMEMBER", "z", "-3", "WITHSCORES")
    pair.same("ZRANDMEMBER", "z", "5")
    pair.same("ZRANDMEMBER", "z", "0")
    pair.same("ZRANDMEMBER", "nokey")
    pair.same("ZRANDMEMBER", "nokey", "3")
    pair.same("SET", "s", "x")
    for args in (
        ["s"],
        ["s", "1"],
        ["z", "x"],
        ["z", "1", "2"],
        ["z", "1", "WITHSCORES", "x"],
        ["z", "-9223372036854775808"],
        ["z", "-9223372036854775807", "WITHSCORES"],
        ["nokey", "0", "WITHSCORES"],
    ):
        pair.same("ZRANDMEMBER", *args)


def test_zrandmember_distinct(store):
    store.call("ZADD", "z", *[x for i in range(20) for x in (str(i), f"m{i}")])
    reply = store.call("ZRANDMEMBER", "z", "10")
    members = reply.split(b"\r\n")[2::2]
    assert len(set(members)) == 10
    assert store.call("ZRANDMEMBER", "z", "-30").startswith(b"*30\r\n")


def test_set_algebra(pair, proto):
    pair.same("ZADD", "a", "1", "x", "2", "y", "inf", "i", "3", "z")
    pair.same("ZADD", "b", "10", "y", "20", "z", "-inf", "i", "4", "w")
    for op in ("ZUNIONSTORE", "ZINTERSTORE"):
        for extra in (
            [],
            ["WEIGHTS", "2", "3"],
            ["AGGREGATE", "MIN"],
            ["AGGREGATE", "max", "WEIGHTS", "0", "1"],
            ["WEIGHTS", "1", "-1", "AGGREGATE", "SUM"],
        ):
            pair.same(op, "d", "2", "a", "b", *extra)
            pair.same("ZRANGE", "d", "0", "-1", "WITHSCORES")
        pair.same(op, "d", "2", "a", "nokey")
        pair.same("ZRANGE", "d", "0", "-1")
    pair.same("ZDIFFSTORE", "d", "2", "a", "b")
    pair.same("ZRANGE", "d", "0", "-1")
    pair.same("ZUNION", "2", "a", "b", "WITHSCORES")
    pair.same("ZINTER", "2", "a", "b")
    pair.same("ZDIFF", "2", "a", "b", "WITHSCORES")


def test_set_algebra_with_plain_sets(pair, proto):
    """Plain sets count as members with score 1 (needs the set commands in the store)."""
    if pair.store.call("SADD", "s", "x", "w", "v").startswith(b"-ERR unknown command"):
        pytest.skip("set commands not in the store yet")
    pair.redis.call("SADD", "s", "x", "w", "v")
    pair.same("ZADD", "a", "1", "x", "2", "y")
    for op in ("ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"):
        pair.same(op, "d", "2", "a", "s")
        pair.same("ZRANGE", "d", "0", "-1", "WITHSCORES")
    pair.same("ZINTER", "2", "a", "s", "WITHSCORES")
    pair.same("ZDIFF", "2", "s", "a", "WITHSCORES")


def test_set_algebra_errors(pair):
    pair.same("ZADD", "a", "1", "x")
    pair.same("SET", "str", "v")
    for args in (
        ["d", "0", "a"],
        ["d", "-1", "a"],
        ["d", "x", "a"],
        ["d", "2", "a"],
        ["d", "1", "a", "WEIGHTS"],
        ["d", "1", "a", "WEIGHTS", "x"],
        ["d", "1", "a", "WEIGHTS", "1", "2"],
        ["d", "1", "a", "AGGREGATE"],
        ["d", "1", "a", "AGGREGATE", "avg"],
        ["d", "1", "a", "WITHSCORES"],
        ["d", "2", "a", "str"],
        ["d", "1", "str", "WEIGHTS", "x"],
        ["d", "1"],
    ):
        pair.same("ZUNIONSTORE", *args)
        pair.same("ZINTERSTORE", *args)
    pair.same("ZDIFFSTORE", "d", "1", "a", "WEIGHTS", "1")
    pair.same("ZUNION", "1", "a", "WEIGHTS", "x")
    pair.same("ZINTERSTORE", "d", "2", "a", "nokey")
    pair.same("EXISTS", "d")


def test_zscan(pair):
    pair.same("ZADD", "z", *[x for i, s in enumerate(SCORES) for x in (s, f"m{i}")])
    pair.same("ZSCAN", "z", "0")
    pair.same("ZSCAN", "z", "0", "MATCH", "m1*", "COUNT", "100")
    pair.same("ZSCAN", "z", "x")
    pair.same("ZSCAN", "z", "-1")
    pair.same("ZSCAN", "z", "0", "COUNT", "0")
    pair.same("ZSCAN", "z", "0", "COUNT", "x")
    pair.same("ZSCAN", "z", "0", "MATCH")
    pair.same("ZSCAN", "z", "0", "FOO", "bar")
    pair.same("ZSCAN", "nokey", "0", "FOO")
    pair.same("SET", "s", "x")
    pair.same("ZSCAN", "s", "0")


def test_zscan_large_zset(pair):
    """Past 128 members Redis switches encoding and prints ZSCAN scores differently."""
    pair.same("ZADD", "z", *[x for i in range(140) for x in (f"{i}.1", f"m{i}")])
    pair.same("ZADD", "z", "1e20", "big", "inf", "top", "-0.5", "neg")
    ours, theirs = pair.call("ZSCAN", "z", "0", "COUNT", "1000")
    assert sorted(ours.split(b"\r\n")[3:]) == sorted(theirs.split(b"\r\n")[3:])


def test_keyspace_events(pair):
    subs = []
    for client, port in (
        (pair.store, pair.store.sock.getpeername()[1]),
        (pair.redis, pair.redis.sock.getpeername()[1]),
    ):
        client.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        sub = RawClient(port)
        sub.call("PSUBSCRIBE", "__key*@0__:*")
        subs.append(sub)
    script = [
        ("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"),
        ("ZADD", "z", "NX", "1", "a"),
        ("ZADD", "z", "CH", "9", "a"),
        ("ZINCRBY", "z", "1", "b"),
        ("ZADD", "z", "INCR", "0", "b"),
        ("ZREM", "z", "nope"),
        ("ZREM", "z", "a"),
        ("ZREMRANGEBYSCORE", "z", "100", "200"),
        ("ZREMRANGEBYSCORE", "z", "3", "3"),
        ("ZREMRANGEBYRANK", "z", "0", "0"),
        ("ZADD", "l", "0", "a", "0", "b"),
        ("ZREMRANGEBYLEX", "l", "-", "+"),
        ("ZPOPMIN", "z"),
        ("ZPOPMAX", "z", "0"),
        ("ZADD", "z", "1", "x"),
        ("ZUNIONSTORE", "u", "1", "z"),
        ("ZINTERSTORE", "u", "2", "z", "nokey"),
        ("ZUNIONSTORE", "u", "1", "nokey"),
        ("ZRANGESTORE", "r", "z", "0", "-1"),
        ("ZRANGESTORE", "r", "z", "5", "6"),
        ("ZDIFFSTORE", "r", "1", "z"),
        ("ZPOPMAX", "z", "5"),
        ("ZADD", "z", "XX", "1", "a"),
        ("ZADD", "m", "1", "a", "2", "b", "3", "c"),
        ("ZMPOP", "2", "nokey", "m", "MIN"),
        ("ZMPOP", "1", "m", "MAX", "COUNT", "5"),
        ("ZMPOP", "1", "m", "MAX"),
        ("ZADD", "m", "1", "a", "2", "b"),
        ("BZPOPMIN", "m", "0"),
        ("BZPOPMAX", "m", "0"),
        ("ZADD", "m", "1", "a"),
        ("BZMPOP", "0", "1", "m", "MAX"),
        ("ZINTERCARD", "1", "nokey"),
        ("PING",),
    ]
    for command in script:
        pair.same(*command)
    pair.same("SET", "end-marker", "1")
    ours, theirs = (sub.read_until_set_event() for sub in subs)
    assert ours == theirs
    assert len(ours) > 30
    for sub in subs:
        sub.close()


def test_resp3_scores_have_17_significant_digits(pair):
    pair.store.call("HELLO", "3")
    pair.redis.call("HELLO", "3")
    pair.same("ZADD", "z", "0.1", "a")
    pair.same("ZSCORE", "z", "a")


def test_redis_py_reads_scores(store_port, redis_port):
    """redis-py 8 parses the store's zset replies exactly as it parses redis-server's, RESP2 and RESP3."""
    redis = pytest.importorskip("redis")
    for protocol in (2, 3):
        results = []
        for port in (store_port, redis_port):
            client = redis.Redis(port=port, protocol=protocol)
            client.delete("z")
            results.append(
                [
                    client.zadd("z", {"a": 1.5, "b": 2, "c": float("inf")}),
                    client.zscore("z", "a"),
                    client.zrange("z", 0, -1, withscores=True),
                    client.zrangebyscore("z", "(1.5", "+inf"),
                    client.zincrby("z", 1, "a"),
                    client.zpopmin("z"),
                    client.zpopmax("z", 2),
                    client.exists("z"),
                ]
            )
            client.close()
        assert results[0] == results[1]
        assert results[0][2] in (
            [(b"a", 1.5), (b"b", 2.0), (b"c", float("inf"))],
            [[b"a", 1.5], [b"b", 2.0], [b"c", float("inf")]],
        )


def test_random_command_sequences(pair):
    """A few hundred seeded random zset commands give the same replies on both servers."""
    rng = random.Random(1234)
    members = [f"m{i}" for i in range(12)]
    scores = ["0", "1", "2", "2.5", "-1", "inf", "-inf", "(1", "(2.5", "3"]
    lex = ["-", "+", "[m1", "(m1", "[m5", "(m9", "[m", "(m3"]

    def score():
        return rng.choice(scores[:7] + ["10", "0.5"])

    makers = [
        lambda: [
            "ZADD",
            "z",
            *rng.choice([[], ["NX"], ["XX"], ["GT"], ["LT", "CH"], ["CH"]]),
            *[x for _ in range(rng.randint(1, 4)) for x in (score(), rng.choice(members))],
        ],
        lambda: ["ZADD", "z", "INCR", rng.choice(["1", "-1", "0.5"]), rng.choice(members)],
        lambda: ["ZREM", "z", *rng.sample(members, 2)],
        lambda: [
            "ZRANGE",
            "z",
            str(rng.randint(-8, 8)),
            str(rng.randint(-8, 8)),
            *rng.choice([[], ["REV"], ["WITHSCORES"], ["REV", "WITHSCORES"]]),
        ],
        lambda: [
            "ZRANGE",
            "z",
            rng.choice(scores),
            rng.choice(scores),
            "BYSCORE",
            *rng.choice([[], ["REV"]]),
            "LIMIT",
            str(rng.randint(-1, 4)),
            str(rng.randint(-1, 4)),
        ],
        lambda: [
            "ZRANGE",
            "z",
            rng.choice(lex),
            rng.choice(lex),
            "BYLEX",
            *rng.choice([[], ["REV"]]),
        ],
        lambda: ["ZCOUNT", "z", rng.choice(scores), rng.choice(scores)],
        lambda: ["ZRANK", "z", rng.choice(members)],
        lambda: ["ZREVRANK", "z", rng.choice(members)],
        lambda: ["ZREMRANGEBYSCORE", "z", rng.choice(scores), rng.choice(scores)],
        lambda: ["ZREMRANGEBYRANK", "z", str(rng.randint(-5, 5)), str(rng.randint(-5, 5))],
        lambda: ["ZPOPMIN", "z", str(rng.randint(0, 3))],
        lambda: ["ZPOPMAX", "z"],
        lambda: ["ZCARD", "z"],
        lambda: ["ZMSCORE", "z", *rng.sample(members, 3)],
    ]
    for _ in range(400):
        pair.same(*rng.choice(makers)())
    pair.same("ZRANGE", "z", "0", "-1", "WITHSCORES")


ZSET_COMMANDS = [
    "zadd",
    "zincrby",
    "zrem",
    "zscore",
    "zmscore",
    "zcard",
    "zcount",
    "zlexcount",
    "zrank",
    "zrevrank",
    "zrange",
    "zrevrange",
    "zrangebyscore",
    "zrevrangebyscore",
    "zrangebylex",
    "zrevrangebylex",
    "zrangestore",
    "zremrangebyscore",
    "zremrangebyrank",
    "zremrangebylex",
    "zpopmin",
    "zpopmax",
    "zrandmember",
    "zunionstore",
    "zinterstore",
    "zdiffstore",
    "zunion",
    "zinter",
    "zdiff",
    "zscan",
    "zmpop",
    "bzmpop",
    "bzpopmin",
    "bzpopmax",
    "zintercard",
]


@pytest.mark.parametrize("name", ZSET_COMMANDS)
def test_command_info(pair, name):
    ours, theirs = pair.call("COMMAND", "INFO", name)
    assert command_info_head(ours) == command_info_head(theirs)


@pytest.mark.parametrize(
    "command",
    [
        ("ZADD", "z", "1", "a"),
        ("ZADD", "z", "2", "a"),
        ("ZADD", "z", "NX", "2", "a"),
        ("ZINCRBY", "z", "0", "a"),
        ("ZREM", "z", "nope"),
        ("ZREM", "z", "a"),
        ("ZPOPMIN", "z"),
        ("ZREMRANGEBYSCORE", "z", "5", "6"),
        ("ZREMRANGEBYRANK", "z", "0", "0"),
        ("ZUNIONSTORE", "z", "1", "z"),
        ("ZRANGESTORE", "z", "z", "0", "0"),
        ("ZSCORE", "z", "a"),
        ("ZADD", "other", "1", "a"),
    ],
)
def test_watch_sees_zset_writes(pair, store_port, redis_port, command):
    pair.same("ZADD", "z", "1", "a", "2", "b")
    watch_outcome(pair, store_port, redis_port, "z", *command)


def test_zmpop(pair, proto):
    fill(pair, "a", 3)
    fill(pair, "b", 6)
    pair.same("SADD", "s", "x")
    for args in (
        ["1", "a", "MIN"],
        ["2", "nokey", "b", "max", "COUNT", "2"],
        ["2", "a", "b", "MIN", "count", "10"],
        ["2", "nokey", "a", "MAX"],
        ["1", "nokey", "MIN"],
        ["2", "b", "s", "MIN"],
        ["2", "s", "b", "MIN"],
        ["0", "b", "MIN"],
        ["-1", "b", "MIN"],
        ["x", "b", "MIN"],
        ["3", "b", "MIN"],
        ["1", "b", "MID"],
        ["1", "b", "MIN", "COUNT"],
        ["1", "b", "MIN", "COUNT", "0"],
        ["1", "b", "MIN", "COUNT", "-1"],
        ["1", "b", "MIN", "COUNT", "x"],
        ["1", "b", "MIN", "COUNT", "1", "COUNT", "1"],
        ["1", "b", "MIN", "x"],
        ["1", "b"],
        ["1", "b", "MAX", "COUNT", "1"],
        ["9223372036854775807", "b", "MIN"],
    ):
        pair.same("ZMPOP", *args)
    pair.same("EXISTS", "a", "b")


def test_blocking_pops_answer_at_once(pair, proto):
    pair.same("ZADD", "z", "1", "a", "2", "b", "3.5", "c", "4", "d")
    pair.same("SET", "str", "x")
    for args in (
        ["BZPOPMIN", "nokey", "z", "0"],
        ["BZPOPMAX", "z", "1"],
        ["BZPOPMIN", "str", "z", "0"],
        ["BZPOPMIN", "z", "str", "0"],
        ["BZPOPMIN", "z", "x"],
        ["BZPOPMIN", "z", "-1"],
        ["BZPOPMAX", "z"],
        ["BZMPOP", "0", "2", "nokey", "z", "MIN"],
        ["BZMPOP", "0.5", "1", "z", "MAX", "COUNT", "9"],
        ["ZADD", "z", "1", "a", "2", "b"],
        ["BZMPOP", "x", "1", "z", "MIN"],
        ["BZMPOP", "-1", "1", "z", "MIN"],
        ["BZMPOP", "x", "0", "z", "MIN"],
        ["BZMPOP", "0", "1", "z", "MID"],
        ["BZMPOP", "0", "1", "str", "MIN"],
        ["BZMPOP", "0", "1", "z"],
        ["BZMPOP", "0", "1", "z", "MIN", "COUNT", "0"],
        ["ZRANGE", "z", "0", "-1"],
    ):
        pair.same(*args)
    for client in (pair.store, pair.redis):
        client.call("MULTI")
        client.call("BZPOPMIN", "nokey", "0")
        client.call("BZMPOP", "0", "1", "nokey", "MAX")
    pair.same("EXEC")


def _blocked_pair(pair, proto, *command):
    """Clients on both servers speaking `proto` that sent `command` and are now blocked."""
    waiters = [RawClient(c.sock.getpeername()[1]) for c in (pair.store, pair.redis)]
    for w in waiters:
        w.call("HELLO", str(proto))
        w.send(*command)
    for w in waiters:
        wait_blocked(w.sock.getpeername()[1], w, command[0])
    return waiters


def _read_both(waiters):
    ours, theirs = [w.read_reply() for w in waiters]
    for w in waiters:
        w.close()
    assert ours == theirs


@pytest.mark.parametrize("wait_proto", [2, 3])
@pytest.mark.parametrize(
    "command, write",
    [
        (("BZPOPMIN", "a", "b", "0"), ("ZADD", "b", "2", "x", "1", "y")),
        (("BZPOPMAX", "a", "b", "5"), ("ZINCRBY", "a", "1.5", "x")),
        (
            ("BZMPOP", "0", "2", "a", "b", "MAX", "COUNT", "2"),
            ("ZADD", "a", "1", "x", "2", "y", "3", "z"),
        ),
        (("BZMPOP", "0", "1", "b", "MIN"), ("ZUNIONSTORE", "b", "1", "src")),
        (("BZPOPMIN", "b", "0"), ("ZRANGESTORE", "b", "src", "0", "0")),
        (("BZPOPMIN", "b", "0"), ("RENAME", "src", "b")),
    ],
)
def test_blocked_client_is_served_by_a_write(pair, wait_proto, command, write):
    pair.same("ZADD", "src", "1", "p", "2", "q")
    waiters = _blocked_pair(pair, wait_proto, *command)
    pair.same(*write)
    _read_both(waiters)
    for key in ("a", "b", "src"):
        pair.same("ZRANGE", key, "0", "-1", "WITHSCORES")


def test_zset_and_list_waiters_on_one_key(pair):
    """A zset serves only the zset waiters of a key; the list waiter ahead of them stays blocked."""
    lpop = _blocked_pair(pair, 2, "BLPOP", "k", "0")
    zpop = _blocked_pair(pair, 3, "BZPOPMIN", "k", "0")
    zmpop = _blocked_pair(pair, 2, "BZMPOP", "0", "1", "k", "MIN", "COUNT", "2")
    pair.same("ZADD", "k", "1", "a", "2", "b", "3", "c", "4", "d")
    _read_both(zpop)
    _read_both(zmpop)
    pair.same("ZRANGE", "k", "0", "-1")
    pair.same("DEL", "k")
    pair.same("RPUSH", "k", "x")
    _read_both(lpop)


def test_blocked_zpop_times_out(pair):
    for proto in (2, 3):
        _read_both(_blocked_pair(pair, proto, "BZPOPMIN", "nokey", "0.1"))
        _read_both(_blocked_pair(pair, proto, "BZMPOP", "0.1", "1", "nokey", "MIN"))


def test_served_waiter_events(pair):
    subs = []
    for client in (pair.store, pair.redis):
        client.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        sub = RawClient(client.sock.getpeername()[1])
        sub.call("PSUBSCRIBE", "__key*@0__:*")
        subs.append(sub)
    waiters = _blocked_pair(pair, 2, "BZPOPMAX", "w", "0")
    pair.same("ZADD", "w", "1", "a")
    _read_both(waiters)
    waiters = _blocked_pair(pair, 2, "BZMPOP", "0", "1", "w", "MIN", "COUNT", "1")
    pair.same("ZADD", "w", "1", "a", "2", "b")
    _read_both(waiters)
    pair.same("SET", "end-marker", "1")
    ours, theirs = (sub.read_until_set_event() for sub in subs)
    assert ours == theirs
    for sub in subs:
        sub.close()


def test_zintercard(pair, proto):
    pair.same("ZADD", "a", *[x for i in range(10) for x in (str(i), f"m{i}")])
    pair.same("ZADD", "b", *[x for i in range(0, 10, 2) for x in (str(i), f"m{i}")])
    pair.same("SADD", "s", "m0", "m2", "m3", "m4")
    pair.same("SET", "str", "x")
    for args in (
        ["2", "a", "b"],
        ["3", "a", "b", "s"],
        ["1", "a"],
        ["2", "a", "nokey"],
        ["2", "a", "b", "LIMIT", "2"],
        ["2", "a", "b", "LIMIT", "0"],
        ["2", "a", "b", "LIMIT", "100"],
        ["2", "a", "b", "limit", "1", "LIMIT", "3"],
        ["2", "a", "b", "LIMIT", "-1"],
        ["2", "a", "b", "LIMIT", "x"],
        ["2", "a", "b", "LIMIT"],
        ["2", "a", "b", "WITHSCORES"],
        ["2", "a", "str"],
        ["2", "nokey", "str"],
        ["0", "a"],
        ["-1", "a"],
        ["x", "a"],
        ["3", "a", "b"],
        ["2", "a", "str", "LIMIT", "x"],
        ["1"],
    ):
        pair.same("ZINTERCARD", *args)
