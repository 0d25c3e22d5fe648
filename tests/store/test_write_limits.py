"""maxmemory (OOM refusals, eviction) and min-replicas-to-write, against redis-server.

Both servers are shared by the session: every test puts the limits back (`limits` fixture).
"""

from __future__ import annotations

import time

import pytest
import redis

from tests.store.helpers import Listener, run, same_unordered
from tests.store.rawclient import RawClient
from tests.store.test_persistence import store_on

RESET = [
    ("CONFIG", "SET", "maxmemory", "0"),
    ("CONFIG", "SET", "maxmemory-policy", "noeviction"),
    ("CONFIG", "SET", "maxmemory-samples", "5"),
    ("CONFIG", "SET", "min-replicas-to-write", "0"),
    ("CONFIG", "SET", "min-replicas-max-lag", "10"),
]
OOM = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
NOREPLICAS = b"-NOREPLICAS Not enough good replicas to write.\r\n"


@pytest.fixture
def limits(pair):
    """A Pair whose limits are reset after the test, whatever happens."""
    try:
        yield pair
    finally:
        for client in (RawClient(pair.store_port), RawClient(pair.redis_port)):
            for command in RESET:
                client.call(*command)
            client.call("FLUSHALL")
            client.close()


def info_field(client: RawClient, section: str, name: str) -> str:
    text = client.call("INFO", section).decode()
    for line in text.split("\r\n"):
        if line.startswith(name + ":"):
            return line.split(":", 1)[1]
    raise AssertionError(f"{name} not in INFO {section}")


def stat_line(client: RawClient, prefix: str) -> str:
    text = client.call("INFO", "commandstats" if prefix.startswith("cmd") else "errorstats")
    for line in text.decode().split("\r\n"):
        if line.startswith(prefix):
            return line.split(":", 1)[1]
    return ""


# ------------------------------------------------------------------ CONFIG


@pytest.mark.parametrize(
    "name,value",
    [
        ("maxmemory", "abc"),
        ("maxmemory", "-1"),
        ("maxmemory", "1.5gb"),
        ("maxmemory-policy", "lru"),
        ("maxmemory-samples", "0"),
        ("maxmemory-samples", "x"),
        ("maxmemory-eviction-tenacity", "101"),
        ("min-replicas-to-write", "-1"),
        ("min-replicas-to-write", "many"),
        ("min-replicas-max-lag", "-1"),
        ("min-slaves-to-write", "-1"),
        ("min-slaves-max-lag", "2147483648"),
    ],
)
def test_config_set_refusals(limits, name, value):
    limits.same("CONFIG", "SET", name, value)


def test_config_get_and_units(limits):
    run(
        limits,
        "CONFIG SET maxmemory 100mb",
        "CONFIG GET maxmemory",
        "CONFIG SET maxmemory 1g",
        "CONFIG GET maxmemory",
        "CONFIG SET maxmemory 0",
        "CONFIG SET maxmemory-policy ALLKEYS-LRU",
        "CONFIG GET maxmemory-policy",
        "CONFIG SET min-slaves-to-write 3",
        "CONFIG GET min-replicas-to-write",
        "CONFIG SET min-replicas-to-write 0",
        "CONFIG GET min-replicas-max-lag",
        "CONFIG GET maxmemory-samples",
        "CONFIG GET maxmemory-eviction-tenacity",
    )
    same_unordered(limits, "CONFIG", "GET", "min-slaves-*", pairs=True)  # Redis: dict order


# ------------------------------------------------------------------ OOM


def test_denyoom_commands_refused_over_maxmemory(limits):
    run(limits, "SET x 123", "RPUSH l a", "CONFIG SET maxmemory 1")
    for command in ("SET y 1", "INCR x", "APPEND x y", "RPUSH l b", "HSET h f v", "SADD s m"):
        assert limits.same(*command.split()) == OOM
    # reads and commands that only free memory still run
    run(limits, "GET x", "LRANGE l 0 -1", "DEL l", "EXPIRE x 100", "DBSIZE", "PING")
    assert limits.same("GET", "x") == b"$3\r\n123\r\n"
    run(limits, "CONFIG SET maxmemory 0", "SET y 1")


def test_multi_under_oom(limits):
    run(limits, "SET x 1", "CONFIG SET maxmemory 1", "MULTI")
    assert limits.same("GET", "x") == OOM  # MULTI refuses every command but EXEC, DISCARD
    limits.same("EXEC")
    run(limits, "MULTI", "DISCARD")


def test_exec_with_queued_denyoom_command(limits):
    run(limits, "SET x 1", "MULTI", "SET x 2", "GET x", "CONFIG SET maxmemory 1")
    limits.same("EXEC")  # EXECABORT: a queued command is denyoom
    run(limits, "CONFIG SET maxmemory 0", "GET x")


def test_scripts_under_oom(limits):
    run(limits, "SET x 123", "CONFIG SET maxmemory 1")
    # no shebang: refused at the first denyoom command, reads run
    limits.same("EVAL", "redis.call('set','x',1)\nreturn 1", "1", "x")
    limits.same("EVAL", "return redis.call('get','x')", "1", "x")
    limits.same("EVAL_RO", "return redis.call('get','x')", "1", "x")
    limits.same("EVAL", "return redis.pcall('set','x','y')", "1", "x")
    limits.same(
        "EVAL",
        "local t = redis.pcall('set','x','y')\nreturn t['err']",
        "1",
        "x",
    )
    # declared flags: refused before running unless allow-oom or no-writes
    limits.same("EVAL", "#!lua flags=\nreturn 1", "0")
    limits.same("EVAL", "#!lua\nreturn 1", "0")
    limits.same("EVAL", "#!lua flags=allow-oom\nredis.call('set','x',1)\nreturn 1", "1", "x")
    limits.same("EVAL", "#!lua flags=no-writes\nreturn redis.call('get','x')", "1", "x")
    limits.same("EVAL_RO", "#!lua flags=no-writes\nreturn redis.call('get','x')", "1", "x")
    sha = limits.same("SCRIPT", "LOAD", "#!lua\nreturn 1").split(b"\r\n")[1]
    limits.same("EVALSHA", sha, "0")
    run(limits, "CONFIG SET maxmemory 0", "GET x")


def test_functions_under_oom(limits):
    code = (
        "#!lua name=oomlib\n"
        "redis.register_function('w', function(keys) return redis.call('set', keys[1], 1) end)\n"
        "redis.register_function{function_name='ro', callback=function(keys) "
        "return redis.call('get', keys[1]) end, flags={'no-writes'}}\n"
        "redis.register_function{function_name='ao', callback=function(keys) "
        "return redis.call('set', keys[1], 2) end, flags={'allow-oom'}}\n"
    )
    run(limits, ("FUNCTION", "LOAD", "REPLACE", code), "SET x 1", "CONFIG SET maxmemory 1")
    try:
        limits.same("FCALL", "w", "1", "x")
        limits.same("FCALL", "ro", "1", "x")
        limits.same("FCALL_RO", "ro", "1", "x")
        limits.same("FCALL", "ao", "1", "x")
        run(limits, "CONFIG SET maxmemory 0", "GET x")
    finally:
        run(limits, "FUNCTION DELETE oomlib")


def test_oom_error_statistics(limits):
    run(limits, "CONFIG SET maxmemory 1", "CONFIG RESETSTAT")
    limits.same("EVAL", "return redis.call('set','x','y')", "1", "x")
    for client in (limits.store, limits.redis):
        assert stat_line(client, "errorstat_OOM") == "count=1"
        assert info_field(client, "stats", "total_error_replies") == "1"
        assert "rejected_calls=1,failed_calls=0" in stat_line(client, "cmdstat_set")
        assert "rejected_calls=0,failed_calls=1" in stat_line(client, "cmdstat_eval")
    run(limits, "CONFIG RESETSTAT", "SET x 1")
    for client in (limits.store, limits.redis):
        assert "rejected_calls=1" in stat_line(client, "cmdstat_set")


# ------------------------------------------------------------------ eviction


def _fill(client: RawClient, count: int, size: int, ttl: bool = False) -> list[bytes]:
    """Write `count` keys of `size` bytes each (pipelined); their replies."""
    value = b"v" * size
    for i in range(count):
        if ttl:
            client.send("SET", f"k{i}", value, "EX", str(1000 + i))
        else:
            client.send("SET", f"k{i}", value)
    return [client.read_reply() for _ in range(count)]


def _near_limit(client: RawClient, headroom: int) -> int:
    """Set maxmemory to what the server uses now plus `headroom` bytes; the limit."""
    client.call("CONFIG", "RESETSTAT")
    client.call("CONFIG", "SET", "maxmemory", "1gb")  # the store starts counting
    used = int(info_field(client, "memory", "used_memory"))
    client.call("CONFIG", "SET", "maxmemory", str(used + headroom))
    return used + headroom


@pytest.mark.parametrize("policy", ["allkeys-random", "allkeys-lru", "allkeys-lfu"])
def test_allkeys_policies_evict_and_never_refuse(limits, policy):
    for client in (limits.store, limits.redis):
        client.call("CONFIG", "SET", "maxmemory-policy", policy)
        _near_limit(client, 200_000)
        replies = _fill(client, 2000, 1000)
        assert set(replies) == {b"+OK\r\n"}
        keys = int(client.call("DBSIZE")[1:-2])
        evicted = int(info_field(client, "stats", "evicted_keys"))
        assert 0 < keys < 2000 and evicted > 0
        assert keys + evicted >= 2000  # Redis may evict again for INFO (its buffers count)


def test_noeviction_refuses_the_rest_of_a_pipeline(limits):
    for client in (limits.store, limits.redis):
        _near_limit(client, 100_000)
        client.call("CONFIG", "RESETSTAT")
        replies = _fill(client, 200, 2000)
        first = replies.index(OOM)
        assert 10 < first < 200
        assert set(replies[first:]) == {OOM}  # none after the first refusal is written
        rejected = f"rejected_calls={200 - first},failed_calls=0"
        assert rejected in stat_line(client, "cmdstat_set")
        assert stat_line(client, "errorstat_OOM") == f"count={200 - first}"
        assert client.call("DEL", "k0") == b":1\r\n"  # DEL is no denyoom command
        assert client.call("FLUSHDB") == b"+OK\r\n"
        assert client.call("SET", "k0", "v") == b"+OK\r\n"  # under the limit again


def test_object_freq_and_idletime_under_lfu_and_lru(limits):
    run(limits, "CONFIG SET maxmemory 1gb", "CONFIG SET maxmemory-policy allkeys-lfu")
    run(limits, "SET k v", "OBJECT FREQ k", "GET k", "OBJECT FREQ k", "OBJECT IDLETIME k")
    run(limits, "CONFIG SET maxmemory-policy allkeys-lru", "SET k v", "OBJECT IDLETIME k")
    run(limits, "OBJECT FREQ k")


def test_volatile_policies_need_keys_with_a_ttl(limits):
    for client in (limits.store, limits.redis):
        client.call("CONFIG", "SET", "maxmemory-policy", "volatile-lru")
        _near_limit(client, 100_000)
        replies = _fill(client, 1000, 1000)
        assert OOM in replies  # nothing may go: refused once full
        assert info_field(client, "stats", "evicted_keys") == "0"


def test_volatile_ttl_evicts_soonest_deadline_first(limits):
    for client in (limits.store, limits.redis):
        client.call("SET", "keep", "1")  # no TTL: never evicted by volatile-*
        client.call("CONFIG", "SET", "maxmemory-policy", "volatile-ttl")
        client.call("CONFIG", "SET", "maxmemory-samples", "64")
        _near_limit(client, 200_000)
        replies = _fill(client, 1000, 1000, ttl=True)
        assert set(replies) == {b"+OK\r\n"}
        assert client.call("GET", "keep") == b"$1\r\n1\r\n"
        assert client.call("EXISTS", "k999") == b":1\r\n"  # the latest deadline survives
        assert client.call("EXISTS", "k0") == b":0\r\n"


def test_allkeys_lru_keeps_recently_read_keys(limits):
    """Old keys go before recently read ones (Redis's LRU clock ticks once a second: the old
    keys are left idle for two)."""
    for client in (limits.store, limits.redis):
        client.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
        client.call("CONFIG", "SET", "maxmemory-samples", "64")
        _fill(client, 100, 10_000)
    time.sleep(2.1)
    for client in (limits.store, limits.redis):
        limit = _near_limit(client, 200_000)
        hot = [f"k{i}" for i in range(0, 100, 10)]
        for key in hot:
            client.call("GET", key)
        for i in range(40):
            assert client.call("SET", f"n{i}", "v" * 10_000) == b"+OK\r\n"
        assert 10 <= int(info_field(client, "stats", "evicted_keys")) <= 90
        for key in hot:
            assert client.call("EXISTS", key) == b":1\r\n", (key, client is limits.store)
        assert int(info_field(client, "memory", "used_memory")) <= limit + 100_000


def test_evicted_event_and_config_set_evicts_at_once(limits):
    listener = Listener(limits, "__keyevent@0__:evicted")
    try:
        gone = []
        for client in (limits.store, limits.redis):
            client.call("CONFIG", "SET", "notify-keyspace-events", "Ee")
            client.call("CONFIG", "SET", "maxmemory-policy", "allkeys-random")
            _fill(client, 50, 10_000)
            client.call("CONFIG", "SET", "maxmemory", "1gb")
            used = int(info_field(client, "memory", "used_memory"))
            client.call("CONFIG", "SET", "maxmemory", str(used - 200_000))
            keys = int(client.call("DBSIZE")[1:-2])
            assert 0 < keys < 50
            gone.append(50 - keys)
        received = listener.received()
        # one event per key evicted (Redis may evict a few more meanwhile: its buffers count)
        assert all(len(got) >= want for got, want in zip(received, gone, strict=True))
        assert len(received[0]) == gone[0]
        assert all(b"evicted" in message for message in received[0] + received[1])
    finally:
        listener.close()
        for client in (limits.store, limits.redis):
            client.call("CONFIG", "SET", "notify-keyspace-events", "")


# ------------------------------------------------------------------ min-replicas-to-write


def test_writes_refused_without_enough_replicas(limits):
    run(limits, "SET x v", "CONFIG SET min-replicas-to-write 1")
    for command in ("SET y 1", "DEL x", "EXPIRE x 10", "INCR n", "FLUSHALL"):
        assert limits.same(*command.split()) == NOREPLICAS
    run(limits, "GET x", "EXISTS x", "PING", "MULTI", "SET x 2", "GET x", "EXEC")
    for client in (limits.store, limits.redis):
        assert info_field(client, "replication", "min_slaves_good_slaves") == "0"
    run(limits, "CONFIG SET min-replicas-max-lag 0", "SET y 1", "GET y")
    run(
        limits,
        "CONFIG SET min-replicas-max-lag 10",
        "CONFIG SET min-replicas-to-write 0",
        "SET y 2",
    )


def test_scripts_without_enough_replicas(limits):
    run(limits, "SET x v", "CONFIG SET min-replicas-to-write 1")
    limits.same("EVAL", "#!lua flags=no-writes\nreturn redis.call('get','x')", "1", "x")
    limits.same("EVAL", "return redis.call('get','x')", "1", "x")
    limits.same("EVAL", "#!lua\nreturn redis.call('get','x')", "1", "x")
    limits.same("EVAL", "return redis.call('set','x', 1)", "1", "x")
    limits.same("EVAL", "return redis.pcall('set','x', 1)", "1", "x")
    run(limits, "CONFIG SET min-replicas-to-write 0", "GET x")


# ------------------------------------------------------------------ the append-only file


def test_loading_the_aof_obeys_no_maxmemory(tmp_path):
    """The AOF's commands are obeyed (Redis's mustObeyClient): all keys load, the limit
    applies to the next write; an evicted key is a DEL in the file."""
    with store_on(tmp_path) as store:
        r = store.start()
        r.mset({f"k{i}": b"v" * 10_000 for i in range(200)})
        store.stop()
        r = store.start("--maxmemory", "1mb")
        assert r.dbsize() == 200
        with pytest.raises(
            redis.exceptions.ResponseError, match="command not allowed when used memory"
        ):
            r.set("x", "y")
        r.config_set("maxmemory-policy", "allkeys-random")
        assert r.set("x", "y") is True
        kept = r.dbsize()
        assert kept < 200
        store.stop()
        r = store.start()  # no limit: the evictions were recorded as DELs
        assert r.dbsize() == kept
