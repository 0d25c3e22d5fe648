"""Server commands (commands/server.py, introspection.py, info.py) against real redis-server."""

import re
import time

import pytest
import redis

from presence.testing import bundled_store, redis_server
from tests.helpers import wait_until
from tests.store.rawclient import RawClient


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def both(pair, request):
    """The differential pair, speaking RESP2 or RESP3."""
    if request.param == 3:
        pair.call("HELLO", "3")
    return pair


@pytest.fixture
def clients(store_port, redis_port):
    """redis-py clients (RESP2, decoded) to the store and to redis-server."""
    pair = [
        redis.Redis(port=p, protocol=2, decode_responses=True) for p in (store_port, redis_port)
    ]
    yield pair
    for client in pair:
        client.close()


@pytest.fixture(scope="module")
def debug_port():
    """A store and a redis-server that allow DEBUG, as Redis's own test suite needs."""
    with bundled_store("--enable-debug-command", "yes") as port:
        yield port


@pytest.fixture(scope="module")
def debug_redis_port():
    with redis_server("--enable-debug-command", "yes") as port:
        yield port


ENCODING_DEFAULTS = [
    "hash-max-listpack-entries",
    "128",
    "hash-max-listpack-value",
    "64",
    "zset-max-listpack-entries",
    "128",
    "zset-max-listpack-value",
    "64",
    "set-max-intset-entries",
    "512",
    "list-max-listpack-size",
    "-2",
]


@pytest.fixture
def defaults(pair):
    """Both servers with Redis's default encoding limits (other tests may change them)."""
    pair.same("CONFIG", "SET", *ENCODING_DEFAULTS)
    return pair


# ---------------------------------------------------------------- CONFIG

CONFIG_ERRORS = [
    ("CONFIG", "SET", "notify-keyspace-events", "xyz"),
    ("CONFIG", "SET", "foo", "bar"),
    ("CONFIG", "SET", "daemonize", "no"),
    ("CONFIG", "SET", "daemonize", "no", "foo", "bar"),
    ("CONFIG", "SET", "foo", "bar", "daemonize", "no"),
    ("CONFIG", "SET", "hz", "10", "HZ", "11"),
    ("CONFIG", "SET", "HZ", "abc"),
    ("CONFIG", "SET", "hz", "-5"),
    ("CONFIG", "SET", "maxclients", "0"),
    ("CONFIG", "SET", "timeout", "-1"),
    ("CONFIG", "SET", "maxmemory", "-1"),
    ("CONFIG", "SET", "maxmemory-policy", "bogus"),
    ("CONFIG", "SET", "loglevel", "loud"),
    ("CONFIG", "SET", "appendfsync", "sometimes"),
    ("CONFIG", "SET", "save", "bogus"),
    ("CONFIG", "SET", "appendonly", "maybe"),
    ("CONFIG", "SET", "enable-debug-command", "yes"),
    ("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1 2"),
    ("CONFIG", "SET", "hz", "10", "timeout"),
    ("CONFIG", "SET", "maxmemory-clients", "200%"),
    ("CONFIG", "SET", "maxmemory-clients", "x"),
    (
        "CONFIG",
        "SET",
        "maxmemory",
        "10000001",
        "maxmemory-clients",
        "200%",
        "client-query-buffer-limit",
        "invalid",
    ),
    ("CONFIG", "GET", "maxmemory"),
    ("CONFIG", "SET", "replicaof", "127.0.0.1 1"),
    ("CONFIG", "GET", "key-load-delay"),
    ("CONFIG", "GET", "key-load*"),
    ("CONFIG", "SET", "hz"),
    ("CONFIG", "GET"),
    ("CONFIG",),
    ("CONFIG", "FOO"),
    ("CONFIG", "REWRITE"),
    ("CONFIG", "REWRITE", "x"),
    ("CONFIG", "RESETSTAT", "x"),
    ("CONFIG", "HELP"),
    ("CONFIG", "HELP", "x"),
]


@pytest.mark.parametrize("args", CONFIG_ERRORS, ids=lambda a: " ".join(a))
def test_config_errors_and_help_match_redis(both, args):
    both.same(*args)


@pytest.mark.parametrize(
    "name",
    [
        "hz",
        "HZ",
        "timeout",
        "maxmemory",
        "maxmemory-policy",
        "save",
        "appendonly",
        "appendfsync",
        "notify-keyspace-events",
        "client-output-buffer-limit",
        "hash-max-ziplist-entries",
        "databases",
        "nosuch",
        "slowlog-max-len",
    ],
)
def test_config_get_exact_name_matches_redis(defaults, both, name):
    both.same("CONFIG", "GET", name)


@pytest.mark.parametrize(
    "pattern",
    ["hash-max-*", "zset-*", "*lazyfree*", "slowlog*", "list-*", "HASH-MAX-*", "no-such-*"],
)
def test_config_get_glob_matches_redis(defaults, clients, pattern):
    ours, theirs = (c.config_get(pattern) for c in clients)
    assert ours == theirs


@pytest.mark.parametrize(
    "patterns",
    [
        ("hz", "timeout", "zset-*"),
        ("*of", "replicaof"),
        ("maxmemory", "maxmemory-[pc]*", "MAXMEMORY"),
    ],
)
def test_config_get_several_patterns(defaults, clients, patterns):
    """A map without duplicates, names and aliases both (reply order is Redis's hash order)."""
    ours, theirs = (c.execute_command("CONFIG", "GET", *patterns) for c in clients)
    assert len(set(ours[::2])) == len(ours) // 2
    assert dict(zip(ours[::2], ours[1::2], strict=False)) == dict(
        zip(theirs[::2], theirs[1::2], strict=False)
    )


def test_config_set_every_value_to_itself(store_port):
    """Redis's "CONFIG sanity": every settable directive takes back the value it shows."""
    from presence.store.config import DIRECTIVES, canonical

    with redis.Redis(port=store_port, decode_responses=True) as r:
        before = r.config_get("*")
        for name, value in before.items():
            if DIRECTIVES[canonical(name)].mutable and name != "requirepass":
                assert r.config_set(name, value), name
        assert r.config_get("*") == before
        assert "key-load-delay" not in before and "key-load-delay" in r.config_get("key-load-delay")
        with pytest.raises(redis.ResponseError, match="restart with the new value"):
            r.config_set("port", int(before["port"]) + 1)


def test_config_set_is_atomic(both):
    both.same("CONFIG", "SET", "hz", "20", "maxmemory-policy", "bogus")
    both.same("CONFIG", "GET", "hz")
    both.same("CONFIG", "SET", "hz", "20", "slowlog-max-len", "64", "notify-keyspace-events", "KEA")
    both.same("CONFIG", "GET", "hz")
    both.same("CONFIG", "GET", "slowlog-max-len")
    both.same("CONFIG", "GET", "notify-keyspace-events")
    both.same("CONFIG", "SET", "hz", "10", "slowlog-max-len", "128", "notify-keyspace-events", "")


def test_config_set_alias_updates_canonical_name(both):
    both.same("CONFIG", "SET", "hash-max-ziplist-entries", "100")
    both.same("CONFIG", "GET", "hash-max-listpack-entries")
    both.same("CONFIG", "SET", "hash-max-listpack-entries", "128")
    both.same("CONFIG", "GET", "hash-max-ziplist-entries")


def test_config_resetstat_zeroes_counters(store):
    store.call("PING")
    assert store.call("CONFIG", "RESETSTAT") == b"+OK\r\n"
    stats = _info(store, "stats")
    assert stats["total_commands_processed"] <= 2
    assert stats["expired_keys"] == 0


# ---------------------------------------------------------------- INFO


def _info(raw: RawClient, *sections) -> dict:
    """INFO over a raw client, parsed into {field: int or str}."""
    reply = raw.call("INFO", *sections)
    # Real redis-server reports error prefixes byte for byte (INFO errorstats), so a
    # test elsewhere in the session that provoked an error with non-UTF-8 bytes leaves
    # them in its INFO: decode leniently.
    body = reply.split(b"\r\n", 1)[1].decode(errors="backslashreplace")
    fields = {}
    for line in body.split("\r\n"):
        if ":" in line and not line.startswith("#"):
            key, value = line.split(":", 1)
            fields[key] = int(value) if re.fullmatch(r"-?\d+", value) else value
    return fields


def _headers(reply: bytes) -> list[bytes]:
    return re.findall(rb"# (\w+)\r\n", reply)


@pytest.mark.parametrize(
    "sections",
    [
        (),
        ("default",),
        ("all",),
        ("everything",),
        ("server", "clients"),
        ("KEYSPACE",),
        ("nosuch",),
        ("stats", "cpu", "memory", "persistence", "replication"),
    ],
)
def test_info_has_redis_sections(both, sections):
    ours, theirs = both.call("INFO", *sections)
    assert _headers(ours) == _headers(theirs)
    assert ours[:1] == theirs[:1]  # '$' under RESP2, '=' (verbatim) under RESP3


@pytest.mark.parametrize("section", ["nosuch", "modules", "cluster", "MODULES"])
def test_info_fixed_sections_match_redis(both, section):
    both.same("INFO", section)


def test_info_fields_redis_has_are_present(pair):
    ours, theirs = _info(pair.store, "everything"), _info(pair.redis, "everything")
    wanted = {
        "redis_version",
        "redis_mode",
        "tcp_port",
        "uptime_in_seconds",
        "connected_clients",
        "maxclients",
        "blocked_clients",
        "used_memory",
        "used_memory_human",
        "maxmemory",
        "maxmemory_policy",
        "loading",
        "rdb_changes_since_last_save",
        "rdb_bgsave_in_progress",
        "rdb_last_save_time",
        "aof_enabled",
        "total_connections_received",
        "total_commands_processed",
        "instantaneous_ops_per_sec",
        "rejected_connections",
        "expired_keys",
        "evicted_keys",
        "keyspace_hits",
        "keyspace_misses",
        "pubsub_channels",
        "pubsub_patterns",
        "total_error_replies",
        "role",
        "connected_slaves",
        "master_repl_offset",
        "used_cpu_sys",
        "used_cpu_user",
        "cluster_enabled",
    }
    assert wanted <= set(theirs)
    assert wanted <= set(ours)
    assert ours["redis_version"] == theirs["redis_version"]
    assert ours["role"] == "master" and ours["connected_slaves"] == 0
    assert ours["used_memory"] > 0 and ours["loading"] == 0


def test_info_keyspace_matches_redis(both):
    both.same("INFO", "keyspace")
    for args in [
        ("SET", "a", "1"),
        ("SET", "b", "2"),
        ("SELECT", "3"),
        ("HSET", "h", "f", "v"),
        ("SELECT", "0"),
    ]:
        both.same(*args)
    both.same("INFO", "keyspace")


def test_info_keyspace_counts_expires(store):
    store.call("SET", "a", "1", "EX", "100")
    store.call("SET", "b", "1")
    assert _info(store, "keyspace")["db0"] == "keys=2,expires=1,avg_ttl=0"


def test_info_stats_count_commands_clients_and_pubsub(store, store_port):
    before = _info(store, "stats")
    for _ in range(20):
        store.call("PING")
    subs = [RawClient(store_port), RawClient(store_port)]
    subs[0].call("SUBSCRIBE", "news")
    subs[1].call("PSUBSCRIBE", "n*")
    after = _info(store, "stats")
    assert after["total_commands_processed"] >= before["total_commands_processed"] + 22
    assert after["total_connections_received"] == before["total_connections_received"] + 2
    assert after["pubsub_channels"] >= 1 and after["pubsub_patterns"] >= 1
    assert _info(store, "clients")["connected_clients"] >= 3
    for sub in subs:
        sub.close()


def test_info_counts_expired_keys_and_ops_rate(store):
    store.call("CONFIG", "RESETSTAT")
    store.call("SET", "gone", "1", "PX", "20")
    _info(store, "stats")  # first rate sample
    for _ in range(50):
        store.call("PING")
    # the store expires the key at its deadline; the rate needs a sample 100 ms old
    stats = wait_until(
        lambda: (
            (s := _info(store, "stats"))["expired_keys"] == 1
            and s["instantaneous_ops_per_sec"] > 0
            and s
        ),
        message="expired_keys 1 and a rate in INFO stats",
    )
    assert stats["expired_keys"] == 1
    assert stats["instantaneous_ops_per_sec"] > 0


# ---------------------------------------------------------------- databases

SIMPLE = [
    ("DBSIZE",),
    ("DBSIZE", "x"),
    ("FLUSHDB", "ASYNC"),
    ("FLUSHDB", "sync"),
    ("FLUSHDB", "sync", "x"),
    ("FLUSHALL", "foo"),
    ("FLUSHALL", "ASYNC"),
    ("SWAPDB", "a", "1"),
    ("SWAPDB", "1", "b"),
    ("SWAPDB", "1", "99"),
    ("SWAPDB", "-1", "2"),
    ("SWAPDB", "0", "1"),
    ("SWAPDB", "2", "2"),
    ("SWAPDB", "1"),
    ("LASTSAVE", "x"),
    ("SAVE", "x"),
    ("TIME", "x"),
    ("ROLE",),
    ("ROLE", "x"),
    ("WAIT", "0", "0"),
    ("WAIT", "0", "x"),
    ("WAIT", "0", "-1"),
    ("WAIT", "x", "0"),
    ("WAIT", "0"),
    ("READONLY",),
    ("READWRITE",),
    ("READONLY", "x"),
]


@pytest.mark.parametrize("args", SIMPLE, ids=lambda a: " ".join(a))
def test_simple_server_commands_match_redis(both, args):
    both.same(*args)


def test_dbsize_and_flushdb(both):
    for args in [
        ("MSET", "a", "1", "b", "2"),
        ("DBSIZE",),
        ("SELECT", "1"),
        ("SET", "c", "3"),
        ("DBSIZE",),
        ("FLUSHDB",),
        ("DBSIZE",),
        ("SELECT", "0"),
        ("DBSIZE",),
        ("FLUSHALL", "SYNC"),
        ("DBSIZE",),
    ]:
        both.same(*args)


def test_swapdb_moves_data_and_ttls(both):
    for args in [
        ("SET", "a", "0"),
        ("SET", "t", "x", "EX", "100"),
        ("SELECT", "1"),
        ("SET", "b", "1"),
        ("SWAPDB", "0", "1"),
        ("GET", "a"),
        ("GET", "b"),
        ("TTL", "t"),
        ("DBSIZE",),
        ("SELECT", "0"),
        ("GET", "a"),
        ("GET", "b"),
        ("EXISTS", "t"),
        ("SWAPDB", "1", "0"),
        ("GET", "a"),
        ("TTL", "t"),
    ]:
        both.same(*args)


def test_swapdb_expiry_fires_in_the_new_database(pair, store_port, redis_port):
    subs = []
    for port in (store_port, redis_port):
        sub = RawClient(port)
        sub.call("PSUBSCRIBE", "__keyevent@*__:expired")
        subs.append(sub)
    pair.same("CONFIG", "SET", "notify-keyspace-events", "Ex")
    pair.same("SET", "soon", "v", "PX", "50")
    pair.same("SWAPDB", "0", "5")
    for sub in subs:
        message = sub.read_reply()  # Redis's active expiry may take a few hundred ms
        assert b"__keyevent@5__:expired" in message and b"soon" in message
        sub.close()
    pair.same("SELECT", "5")
    pair.same("EXISTS", "soon")


def test_swapdb_touches_watched_keys(pair, store_port, redis_port):
    for client in (pair.store, pair.redis):
        client.call("SELECT", "1")
        client.call("SET", "w", "1")
        client.call("SELECT", "0")
    pair.same("watch", "w")
    others = [RawClient(p) for p in (store_port, redis_port)]
    for other in others:
        other.call("SWAPDB", "0", "1")
        other.close()
    pair.same("multi")
    pair.same("get", "w")
    pair.same("exec")


def test_swapdb_and_flush_emit_no_keyspace_events(pair, store_port, redis_port):
    subs = []
    for port in (store_port, redis_port):
        sub = RawClient(port)
        sub.call("PSUBSCRIBE", "__key*__:*")
        subs.append(sub)
    pair.same("CONFIG", "SET", "notify-keyspace-events", "KEA")
    for args in [
        ("SET", "a", "1"),
        ("SWAPDB", "0", "1"),
        ("FLUSHDB",),
        ("SELECT", "1"),
        ("FLUSHALL",),
        ("SELECT", "0"),
        ("SET", "end", "1"),
    ]:
        pair.same(*args)
    streams = []
    for sub in subs:
        got = [sub.read_reply() for _ in range(4)]  # SET a (2 messages), SET end (2 messages)
        assert b"end" in got[-1]
        streams.append(got)
        sub.close()
    assert streams[0] == streams[1]


def test_lastsave_and_save_are_honest(store):
    assert abs(int(store.call("LASTSAVE")[1:-2]) - time.time()) < 24 * 3600
    assert store.call("SAVE").startswith(b"-ERR")
    assert store.call("BGSAVE").startswith(b"-ERR")
    assert store.call("BGSAVE", "x") == b"-ERR syntax error\r\n"


# ---------------------------------------------------------------- COMMAND

COMMAND_CASES = [
    ("COMMAND", "GETKEYS", "nosuch", "a", "b"),
    ("COMMAND", "GETKEYS", "get", "a", "b"),
    ("COMMAND", "GETKEYS", "ping", "a"),
    ("COMMAND", "GETKEYS", "set", "a"),
    ("COMMAND", "GETKEYS", "get", "a"),
    ("COMMAND", "GETKEYS", "del", "a", "b", "c"),
    ("COMMAND", "GETKEYS", "mget", "a", "b"),
    ("COMMAND", "GETKEYS", "expire", "k", "1"),
    ("COMMAND", "GETKEYS", "get"),
    ("COMMAND", "GETKEYS"),
    ("COMMAND", "FOO"),
    ("COMMAND", "COUNT", "x"),
    ("COMMAND", "HELP"),
    ("COMMAND", "INFO", "nosuch"),
    ("COMMAND", "INFO", "get", "nosuch", "GET"),
    ("COMMAND", "INFO", "GET"),
    ("COMMAND", "LIST", "FILTERBY", "foo", "bar"),
    ("COMMAND", "LIST", "FILTERBY", "MODULE", "x"),
    ("COMMAND", "LIST", "FILTERBY", "PATTERN", "nosuch*"),
    ("COMMAND", "LIST", "x"),
    ("COMMAND", "GETKEYSANDFLAGS", "get", "a"),
    ("COMMAND", "DOCS", "nosuch"),
]


@pytest.mark.parametrize("args", COMMAND_CASES, ids=lambda a: " ".join(a))
def test_command_subcommands_match_redis(both, args):
    both.same(*args)


def test_command_table_parses_with_redis_py(store_port):
    for protocol in (2, 3):
        with redis.Redis(port=store_port, protocol=protocol) as r:
            table = r.command()
            assert table["get"]["arity"] == 2
            assert set(table["get"]["flags"]) == {"readonly", "fast"}
            assert table["config"]["arity"] == -2
            assert len(table) == r.command_count()


def test_command_list_and_docs(store_port):
    with redis.Redis(port=store_port, decode_responses=True) as r:
        names = r.command_list()
        assert {"get", "config", "config|get", "client|list", "info"} <= set(names)
        assert "config|get" in r.command_list(pattern="config*")
        assert "get" in r.command_list(category="string")
    raw = RawClient(store_port)
    raw.call("HELLO", "3")
    docs = raw.call("COMMAND", "DOCS", "get", "config")
    assert docs.startswith(b"%2\r\n$3\r\nget\r\n%") and b"$6\r\nconfig\r\n%" in docs
    raw.close()


def test_command_info_lists_subcommands(store):
    reply = store.call("COMMAND", "INFO", "config", "client")
    for sub in (b"config|get", b"config|set", b"config|resetstat", b"client|list", b"client|kill"):
        assert sub in reply


# ---------------------------------------------------------------- OBJECT and MEMORY

VALUES = [
    ("SET", "int", "1"),
    ("SET", "bigint", "12345678901"),
    ("SET", "neg", "-5"),
    ("SET", "lead0", "007"),
    ("SET", "short", "hello"),
    ("SET", "long", "x" * 45),
    ("SET", "edge", "y" * 44),
    ("SADD", "intset", "1", "2", "3"),
    ("SADD", "strset", "a", "1"),
    ("HSET", "hash", "f", "v"),
    ("HSET", "bighash", "f", "v" * 65),
    ("ZADD", "zset", "1", "a"),
    ("ZADD", "bigz", "1", "m" * 65),
    ("RPUSH", "list", "a", "b"),
]


def test_object_encoding_matches_redis(defaults, both):
    for args in VALUES:
        both.call(*args)
    for key in [
        "int",
        "bigint",
        "neg",
        "lead0",
        "short",
        "long",
        "edge",
        "intset",
        "strset",
        "hash",
        "bighash",
        "zset",
        "bigz",
        "list",
        "nokey",
    ]:
        both.same("OBJECT", "ENCODING", key)


def test_object_refcount_idletime_freq(both):
    for args in [("SET", "shared", "42"), ("SET", "big", "123456"), ("SET", "s", "abc")]:
        both.same(*args)
    for key in ("shared", "big", "s", "nokey"):
        both.same("OBJECT", "REFCOUNT", key)
    both.same("OBJECT", "FREQ", "s")
    both.same("OBJECT", "FREQ", "nokey")
    both.same("OBJECT", "IDLETIME", "nokey")
    both.same("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
    try:
        both.same("OBJECT", "IDLETIME", "s")
    finally:
        both.same("CONFIG", "SET", "maxmemory-policy", "noeviction")


@pytest.mark.parametrize(
    "args",
    [
        ("OBJECT",),
        ("OBJECT", "FOO"),
        ("OBJECT", "ENCODING"),
        ("OBJECT", "ENCODING", "a", "b"),
        ("OBJECT", "HELP"),
        ("MEMORY",),
        ("MEMORY", "FOO"),
        ("MEMORY", "USAGE"),
        ("MEMORY", "USAGE", "nokey"),
        ("MEMORY", "HELP"),
        ("MEMORY", "USAGE", "k", "SAMPLES", "x"),
        ("MEMORY", "USAGE", "k", "SAMPLES"),
        ("MEMORY", "USAGE", "k", "FOO", "1"),
        ("MEMORY", "PURGE"),
    ],
    ids=lambda a: " ".join(a),
)
def test_object_and_memory_errors_match_redis(both, args):
    both.call("SET", "k", "1")
    both.same(*args)


def test_memory_usage_grows_with_the_value(store):
    store.call("SET", "small", "x")
    store.call("SET", "large", "x" * 10000)
    store.call("RPUSH", "list", *[b"%d" % i for i in range(1000)])
    small = int(store.call("MEMORY", "USAGE", "small")[1:-2])
    large = int(store.call("MEMORY", "USAGE", "large")[1:-2])
    sampled = int(store.call("MEMORY", "USAGE", "list", "SAMPLES", "0")[1:-2])
    assert 0 < small < large and large >= 10000 and sampled > 1000


# ---------------------------------------------------------------- SLOWLOG, LATENCY


@pytest.mark.parametrize(
    "args",
    [
        ("SLOWLOG", "FOO"),
        ("SLOWLOG", "GET", "x"),
        ("SLOWLOG", "GET", "-2"),
        ("SLOWLOG", "GET", "1", "2"),
        ("SLOWLOG", "RESET"),
        ("SLOWLOG", "LEN"),
        ("SLOWLOG", "HELP"),
        ("LATENCY", "FOO"),
        ("LATENCY", "LATEST"),
        ("LATENCY", "HISTORY", "command"),
        ("LATENCY", "RESET"),
        ("LATENCY", "DOCTOR"),
        ("LATENCY", "HELP"),
        ("LATENCY", "HISTORY"),
    ],
    ids=lambda a: " ".join(a),
)
def test_slowlog_and_latency_match_redis(both, args):
    both.call("SLOWLOG", "RESET")
    both.same(*args)


# ---------------------------------------------------------------- DEBUG


def test_debug_is_refused_by_default_like_redis(both):
    both.same("DEBUG", "SLEEP", "0")
    both.same("DEBUG")


@pytest.mark.parametrize(
    "args",
    [
        ("DEBUG", "FOO"),
        ("DEBUG", "SLEEP", "0"),
        ("DEBUG", "SLEEP", "x"),
        ("DEBUG", "SET-ACTIVE-EXPIRE", "1"),
        ("DEBUG", "OBJECT", "nokey"),
        ("DEBUG", "DIGEST-VALUE", "nokey"),
        ("DEBUG", "SLEEP"),
        ("DEBUG", "RELOAD"),
    ],
    ids=lambda a: " ".join(a),
)
def test_debug_matches_redis_when_enabled(debug_port, debug_redis_port, args):
    ours, theirs = RawClient(debug_port), RawClient(debug_redis_port)
    assert ours.call(*args) == theirs.call(*args)
    ours.close()
    theirs.close()


def test_debug_object_digest_and_active_expire(debug_port):
    client = RawClient(debug_port)
    client.call("FLUSHALL")
    assert client.call("DEBUG", "DIGEST") == b"+" + b"0" * 40 + b"\r\n"
    client.call("SET", "k", "42")
    reply = client.call("DEBUG", "OBJECT", "k").decode()
    assert re.fullmatch(
        r"\+Value at:0x[0-9a-f]+ refcount:2147483647 encoding:int "
        r"serializedlength:\d+ lru:\d+ lru_seconds_idle:\d+\r\n",
        reply,
    )
    first = client.call("DEBUG", "DIGEST")
    client.call("SET", "k", "43")
    assert client.call("DEBUG", "DIGEST") != first
    client.call("SET", "k", "42")
    assert client.call("DEBUG", "DIGEST") == first
    assert client.call("DEBUG", "DIGEST-VALUE", "k") != client.call("DEBUG", "DIGEST-VALUE", "x")
    assert client.call("DEBUG", "SET-ACTIVE-EXPIRE", "0") == b"+OK\r\n"
    assert client.call("DEBUG", "SET-ACTIVE-EXPIRE", "1") == b"+OK\r\n"
    started = time.monotonic()
    assert client.call("DEBUG", "SLEEP", "0.1") == b"+OK\r\n"
    assert time.monotonic() - started >= 0.09
    assert client.call("DEBUG", "HELP").startswith(b"*")
    client.close()


def test_debug_local_allows_loopback_connections():
    with bundled_store("--enable-debug-command", "local") as port:
        client = RawClient(port)
        assert client.call("DEBUG", "SLEEP", "0") == b"+OK\r\n"
        client.close()


def test_memory_doctor_matches_a_fresh_redis_with_little_data():
    # Redis's report depends on the memory it holds (under 5 MB: "too little to judge"),
    # so the servers are fresh ones, not the shared pair other tests fill.
    with redis_server() as rport, bundled_store() as sport:
        replies = []
        for port in (sport, rport):
            client = redis.Redis(port=port, protocol=2)
            client.set("k", "v")
            replies.append(client.execute_command("MEMORY", "DOCTOR"))
            client.close()
        assert replies[0] == replies[1]
        assert replies[0].startswith(b"Hi Sam, this instance is empty")


def test_memory_doctor_finds_no_issue_once_there_are_5_megabytes_of_data():
    # Above 5 MB Redis also weighs its allocator's fragmentation, which the store has no
    # equivalent of: it gives Redis's answer for a healthy server.
    with bundled_store() as sport:
        client = redis.Redis(port=sport, protocol=2)
        pipe = client.pipeline(transaction=False)
        for i in range(60_000):
            pipe.set(f"key:{i}", b"x" * 100)
        pipe.execute()
        assert client.execute_command("MEMORY", "DOCTOR") == (
            b"Hi Sam, I can't find any memory issue in your instance. "
            b"I can only account for what occurs on this base.\n"
        )
        client.close()
