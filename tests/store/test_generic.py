"""Generic key commands (presence/store/commands/generic.py), differential against redis-server."""

import pytest

from tests.store.helpers import array_items, run


def test_del_exists_touch_unlink(pair):
    run(
        pair,
        "SET a 1",
        "SET b 2",
        "EXISTS a b c",
        "EXISTS a a a",
        "TOUCH a c",
        "DEL a c",
        "UNLINK b b",
        "EXISTS a b",
        "DEL",
        "EXISTS",
        "UNLINK",
    )


@pytest.mark.parametrize("command", ["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"])
def test_expire_option_errors(pair, command):
    run(
        pair,
        "SET k v",
        f"{command} k 100 NX XX",
        f"{command} k 100 XX NX",
        f"{command} k 100 NX GT",
        f"{command} k 100 LT NX",
        f"{command} k 100 GT LT",
        f"{command} k 100 FOO",
        f"{command} k 100 nx nx",
        f"{command} k abc",
        f"{command} k 1.5",
        f"{command} k",
        f"{command} missing 100 NX",
    )


def test_expire_nx_xx_gt_lt(pair):
    run(
        pair,
        "SET k v",
        "EXPIRE k 100 XX",
        "TTL k",
        "EXPIRE k 100 GT",
        "EXPIRE k 100 LT",
        "TTL k",
        "EXPIRE k 100 NX",
        "EXPIRE k 200 NX",
        "EXPIRE k 50 GT",
        "EXPIRE k 500 GT",
        "TTL k",
        "EXPIRE k 600 LT",
        "EXPIRE k 50 LT",
        "TTL k",
        "EXPIRE k 1000 XX",
        "TTL k",
        "PERSIST k",
        "EXPIRE k 10 XX",
        "EXPIRE k 10 gt",
        "EXPIRE k 10 lt",
        "TTL k",
        "PERSIST k",
        "PERSIST k",
        "PERSIST missing",
        "EXPIRE missing 10",
        "EXPIRE missing 10 XX",
    )


@pytest.mark.parametrize(
    "args",
    [
        "EXPIRE k 9223372036854775807",
        "EXPIRE k 9223372036854775",
        "EXPIRE k 9223372036854774",
        "EXPIRE k -9223372036854775808",
        "EXPIRE k 9223372036854775808",
        "PEXPIRE k 9223372036854775807",
        "PEXPIRE k 9223372036854775000",
        "EXPIREAT k 9223372036854775807",
        "EXPIREAT k 9223372036854775",
        "PEXPIREAT k 9223372036854775807",
        "PEXPIREAT k -1",
    ],
)
def test_expire_overflow(pair, args):
    run(pair, "SET k v", args, "EXISTS k")


def test_expire_in_the_past_deletes(pair):
    run(
        pair,
        "SET a v",
        "EXPIRE a 0",
        "EXISTS a",
        "SET a v",
        "PEXPIRE a -5",
        "EXISTS a",
        "SET a v",
        "EXPIREAT a 1",
        "EXISTS a",
        "SET a v",
        "PEXPIREAT a 1000",
        "GET a",
    )


def test_ttl_family(pair):
    run(
        pair,
        "TTL missing",
        "PTTL missing",
        "EXPIRETIME missing",
        "PEXPIRETIME missing",
        "SET k v",
        "TTL k",
        "PTTL k",
        "EXPIRETIME k",
        "PEXPIRETIME k",
        "EXPIREAT k 4000000000",
        "EXPIRETIME k",
        "PEXPIRETIME k",
        "PEXPIREAT k 4000000000123",
        "EXPIRETIME k",
        "PEXPIRETIME k",
        "TTL k x",
    )
    ttl = int(pair.store.call("TTL", "k")[1:-2])
    assert ttl > 1_000_000


def test_ttl_rounds_like_redis(pair):
    run(
        pair,
        "SET k v",
        "PEXPIRE k 100300",
        "TTL k",
        "PEXPIRE k 1300",
        "TTL k",
        "PEXPIRE k 1700",
        "TTL k",
    )


def test_type(pair):
    run(pair, "SET s v", "TYPE s", "TYPE missing", "TYPE")


@pytest.mark.parametrize(
    "kind, create",
    [("hash", "HSET k f v"), ("set", "SADD k m"), ("list", "RPUSH k a"), ("zset", "ZADD k 1 m")],
)
def test_type_of_aggregates(pair, kind, create):
    if pair.store.call(*create.split()).startswith(b"-ERR unknown command"):
        pytest.skip(f"{kind} commands not in the store yet")
    pair.redis.call(*create.split())
    run(pair, "TYPE k")


KEYS = [
    "foo",
    "fao",
    "fbo",
    "f*o",
    "f?o",
    "hello",
    "hallo",
    "hxllo",
    "hllo",
    "heeeello",
    "a[b",
    "a\\b",
    "x-y",
    "-",
    "",
    "\xff",
]


@pytest.mark.parametrize(
    "pattern",
    [
        "*",
        "f?o",
        "f*",
        "h[ae]llo",
        "h[^e]llo",
        "h[a-b]llo",
        "h[b-a]llo",
        "h*llo",
        "f\\*o",
        "f\\?o",
        "a[[]b",
        "a\\\\b",
        "*o",
        "x[-]y",
        "h[a-]llo",
        "[",
        "\\",
        "a[b",
        "?",
        "",
        "*\\",
        "h[^a-e]llo",
        "f[*?]o",
        "he*e*o",
        "[a-z]*",
        "\xff",
    ],
)
def test_keys_patterns(pair, pattern):
    for key in KEYS:
        pair.store.call("SET", key, "1")
        pair.redis.call("SET", key, "1")
    ours, theirs = pair.store.call("KEYS", pattern), pair.redis.call("KEYS", pattern)
    assert array_items(ours) == array_items(theirs), pattern


def _scan_all(client, *options) -> set[bytes]:
    cursor, seen = b"0", set()
    while True:
        reply = client.call("SCAN", cursor, *options)
        _head, _, rest = reply.partition(b"\r\n$")
        _, _, rest = rest.partition(b"\r\n")
        cursor, _, rest = rest.partition(b"\r\n")
        seen.update(array_items(b"*x\r\n" + rest.partition(b"\r\n")[2]))
        if cursor == b"0":
            return seen


@pytest.mark.parametrize(
    "options",
    [
        (),
        ("COUNT", "3"),
        ("MATCH", "k1*"),
        ("MATCH", "k[2-4]", "COUNT", "1"),
        ("TYPE", "string"),
        ("TYPE", "STRING", "MATCH", "*9"),
        ("TYPE", "hash"),
        ("MATCH", "*"),
        ("COUNT", "1000"),
    ],
)
def test_scan_visits_the_same_keys(pair, options):
    for i in range(40):
        pair.store.call("SET", f"k{i}", i)
        pair.redis.call("SET", f"k{i}", i)
    ours = _scan_all(pair.store, *options)
    assert ours == _scan_all(pair.redis, *options)
    assert options not in [(), ("COUNT", "3")] or len(ours) == 40


def test_scan_argument_errors(pair):
    run(
        pair,
        "SET a 1",
        "SCAN 0 COUNT 0",
        "SCAN 0 COUNT -1",
        "SCAN 0 COUNT abc",
        "SCAN abc",
        "SCAN 1.5",
        "SCAN 18446744073709551616",
        "SCAN 0 MATCH",
        "SCAN 0 FOO bar",
        "SCAN 0 COUNT",
        "SCAN 0 TYPE",
        "SCAN",
        ["SCAN", " 0"],
        ["SCAN", "0 "],
        "SCAN +0",
        "SCAN 0 TYPE nosuchtype",
    )


@pytest.mark.parametrize("cursor", ["-1", "18446744073709551615", "99999", "-18446744073709551615"])
def test_scan_cursor_past_the_end(pair, cursor):
    run(pair, "SET a 1", f"SCAN {cursor} MATCH nomatch")


def test_rename(pair):
    run(
        pair,
        "RENAME nokey x",
        "RENAMENX nokey x",
        "SET a 1",
        "RENAME a a",
        "RENAMENX a a",
        "SET b 2",
        "RENAMENX a b",
        "RENAME a b",
        "GET b",
        "EXISTS a",
        "SET c 3",
        "EXPIRE c 100",
        "RENAME c d",
        "TTL d",
        "EXISTS c",
        "SET e 1",
        "RENAME d e",
        "TTL e",
        "RENAMENX e f",
        "TTL f",
        "RENAME",
        "RENAME f",
    )


def test_rename_keeps_ttl_and_overwrites_destination_ttl(pair):
    run(
        pair,
        "SET a 1",
        "SET b 2",
        "EXPIRE b 100",
        "RENAME a b",
        "TTL b",
        "EXPIRE b 50",
        "RENAMENX b c",
        "TTL c",
        "PERSIST c",
        "TTL c",
    )


def test_randomkey(pair):
    run(pair, "RANDOMKEY", "SET only 1", "RANDOMKEY", "RANDOMKEY x")


def test_empty_arguments(pair):
    run(
        pair,
        "SET foo bar",
        ["EXPIRE", "foo", ""],
        ["SCAN", ""],
        ["SCAN", "0", "COUNT", ""],
        ["KEYS", ""],
        ["EXISTS", ""],
        ["SET", "", "v"],
        ["GET", ""],
        ["KEYS", ""],
        ["TYPE", ""],
        ["RENAME", "", "x"],
        ["SELECT", ""],
        ["SETEX", "foo", "", "v"],
        ["GETRANGE", "foo", "", "1"],
        ["INCRBY", "foo", ""],
    )
