"""Operator commands fed by the one place commands run: SLOWLOG, INFO commandstats, MONITOR.

Compared with redis-server where the output does not depend on timing (durations,
timestamps and client ports are masked).
"""

import re

import pytest

from presence.testing import bundled_store, redis_server
from tests.store.helpers import Pair, split_aggregate
from tests.store.rawclient import RawClient


@pytest.fixture
def logged(pair):
    """Both servers logging every command, with an empty slow log; restored afterwards."""
    for client in (pair.store, pair.redis):
        client.call("CONFIG", "SET", "slowlog-log-slower-than", "0")
        client.call("CONFIG", "SET", "slowlog-max-len", "128")
        client.call("SLOWLOG", "RESET")
    yield pair
    for client in (pair.store, pair.redis):
        client.call("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        client.call("SLOWLOG", "RESET")


def entries(client, *count) -> list[list[bytes]]:
    """SLOWLOG GET's entries as [id, args..., addr host, name] (time and port left out; ids
    relative to the oldest entry shown)."""
    _, items = split_aggregate(client.call("SLOWLOG", "GET", *count))
    shown = []
    for item in items:
        _, (entry_id, timestamp, micros, args, addr, name) = split_aggregate(item)
        assert int(micros[1:-2]) >= 0 and int(timestamp[1:-2]) > 1_600_000_000
        host = addr.split(b"\r\n")[1].rsplit(b":", 1)[0]
        shown.append([int(entry_id[1:-2]), *split_aggregate(args)[1], host, name])
    if shown:  # ids count from the server's start: compare them from the oldest shown
        oldest = shown[-1][0]
        for entry in shown:
            entry[0] -= oldest
    return shown


def test_slowlog_records_commands_newest_first(logged):
    pair = logged
    pair.same("SET", "k", "v")
    pair.same("CLIENT", "SETNAME", "me")
    pair.same("GET", "k")
    pair.same("HSET", "h", "f", "x" * 200)  # an argument cut at 128 bytes
    pair.same("DEL", *[f"k{i}" for i in range(40)])  # more than 32 arguments
    pair.same("MULTI")
    pair.same("INCR", "n")
    pair.same("EXEC")  # EXEC itself is not logged, its commands are
    pair.same("AUTH", "secret")  # redacted
    pair.same("GET")  # refused for its arity: never ran, not logged
    ours, theirs = entries(pair.store, "-1"), entries(pair.redis, "-1")
    assert ours == theirs
    assert len(ours) > 8
    pair.same("SLOWLOG", "LEN")


def test_slowlog_count_len_reset_and_max_len(logged):
    pair = logged
    for i in range(5):
        pair.same("SET", f"k{i}", "v")
    assert entries(pair.store, "2") == entries(pair.redis, "2")
    assert entries(pair.store, "0") == entries(pair.redis, "0") == []
    pair.same("SLOWLOG", "GET", "-2")
    pair.same("SLOWLOG", "GET", "x")
    pair.same("SLOWLOG", "GET", "1", "2")
    pair.same("CONFIG", "SET", "slowlog-max-len", "3")
    pair.same("PING")
    pair.same("SLOWLOG", "LEN")
    assert entries(pair.store) == entries(pair.redis)
    pair.same("SLOWLOG", "RESET")
    pair.same("SLOWLOG", "LEN")
    pair.same("CONFIG", "SET", "slowlog-log-slower-than", "-1")
    pair.same("SET", "k", "v")
    pair.same("SLOWLOG", "LEN")


@pytest.fixture(scope="module")
def debug_port():
    """A store of its own that runs DEBUG SLEEP (a command of known duration)."""
    with bundled_store("--enable-debug-command", "yes") as port:
        yield port


@pytest.fixture
def debuggable(debug_port):
    with RawClient(debug_port) as client:
        yield client


def test_slowlog_threshold_keeps_fast_commands_out(debuggable):
    store = debuggable
    store.call("CONFIG", "SET", "slowlog-log-slower-than", "1000000")
    store.call("SLOWLOG", "RESET")
    try:
        store.call("SET", "k", "v")
        store.call("DEBUG", "SLEEP", "0.05")
        assert store.call("SLOWLOG", "LEN") == b":0\r\n"
        store.call("CONFIG", "SET", "slowlog-log-slower-than", "20000")
        store.call("DEBUG", "SLEEP", "0.05")  # 50 ms, over the 20 ms threshold
        store.call("GET", "k")
        [(_entry_id, *args, _host, _name)] = entries(store)
        assert args == [b"$5\r\nDEBUG\r\n", b"$5\r\nSLEEP\r\n", b"$4\r\n0.05\r\n"]
        raw = split_aggregate(split_aggregate(store.call("SLOWLOG", "GET"))[1][0])[1][2]
        assert int(raw[1:-2]) >= 50_000
    finally:
        store.call("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        store.call("SLOWLOG", "RESET")


def commandstats(client) -> dict[str, dict[str, float]]:
    text = client.call("INFO", "commandstats").split(b"\r\n", 1)[1].decode()
    stats = {}
    for name, fields in re.findall(r"cmdstat_(\S+?):(\S+)", text):
        stats[name] = {k: float(v) for k, v in (f.split("=") for f in fields.split(","))}
    return stats


def test_commandstats_time_and_counts(pair):
    pair.same("CONFIG", "RESETSTAT")
    pair.same("SET", "k", "v")
    pair.same("GET", "k")
    pair.same("GET", "k")
    pair.same("LPUSH", "k", "x")  # failed: WRONGTYPE
    pair.same("GET")  # rejected: arity
    ours, theirs = commandstats(pair.store), commandstats(pair.redis)
    for name in ("set", "get", "lpush"):
        for field in ("calls", "rejected_calls", "failed_calls"):
            assert ours[name][field] == theirs[name][field], (name, field)
        assert ours[name]["usec_per_call"] == pytest.approx(
            ours[name]["usec"] / ours[name]["calls"], abs=0.01
        )
    assert set(ours["get"]) == set(theirs["get"])


def test_commandstats_time_is_measured(debuggable):
    store = debuggable
    store.call("CONFIG", "RESETSTAT")
    store.call("DEBUG", "SLEEP", "0.02")
    stats = commandstats(store)["debug"]
    assert stats["calls"] == 1 and stats["usec"] >= 20_000 and stats["usec_per_call"] >= 20_000


def monitored(port: int, commands) -> list[bytes]:
    """MONITOR's lines (time and port masked) while another client runs `commands`."""
    with RawClient(port) as watcher, RawClient(port) as other:
        assert watcher.call("MONITOR") == b"+OK\r\n"
        for command in commands:
            other.call(*command)
        other.call("ECHO", "end")
        lines = []
        while not lines or b'"end"' not in lines[-1]:
            lines.append(watcher.read_reply())
    return [
        re.sub(rb"^\+\d+\.\d{6} \[(\d+) 127\.0\.0\.1:\d+\]", rb"+T [\1 ADDR]", line)
        if b" lua]" not in line
        else re.sub(rb"^\+\d+\.\d{6} ", b"+T ", line)
        for line in lines
    ]


def test_monitor_lines(pair):
    commands = [
        ("SET", "k", "v"),
        ("SET", 'quote"back\\slash', "new\nline\r\t\x07\x08\x00\xff é"),
        ("SELECT", "2"),
        ("GET", "k"),
        ("CONFIG", "GET", "port"),  # admin: not shown
        ("CONFIG", "HELP"),  # a container's subcommand decides: CONFIG HELP is not admin
        ("CLIENT", "GETNAME"),
        ("CLIENT", "NO-EVICT", "off"),  # admin subcommand of a container that is not
        ("SLOWLOG", "LEN"),
        ("LATENCY", "HELP"),
        ("AUTH", "pw"),  # redacted
        ("HELLO", "2", "AUTH", "default", "pw"),
        ("MULTI",),
        ("INCR", "n"),
        ("EXEC",),
        ("GET",),  # refused for its arity: not shown
        ("SELECT", "0"),
        ("EVAL", "return redis.call('incr', KEYS[1])", "1", "n"),  # [0 lua] "incr" "n"
    ]
    ours, theirs = monitored(pair.store_port, commands), monitored(pair.redis_port, commands)
    assert ours == theirs
    assert ours[0] == b'+T [0 ADDR] "SET" "k" "v"\r\n'
    assert ours[-2] == b'+T [0 lua] "incr" "n"\r\n'


def test_a_second_monitor_gets_no_reply(pair):
    for port in (pair.store_port, pair.redis_port):
        with RawClient(port) as client:
            client.send("MONITOR")
            client.send("MONITOR")
            client.send("PING")
            assert client.read_reply() == b"+OK\r\n"
            assert client.read_reply() == b"+PONG\r\n"  # then its own line
            assert client.read_reply().endswith(b'"PING"\r\n')


@pytest.fixture(scope="module")
def debug_pair_ports(debug_port):
    """The DEBUG-enabled store above and a redis-server that runs DEBUG too."""
    with redis_server("--enable-debug-command", "yes") as redis_port:
        yield debug_port, redis_port


def latest_shape(raw: bytes) -> list[tuple[bytes, int, int]]:
    """LATENCY LATEST's events with their latest and worst milliseconds (time left out)."""
    shape = []
    for item in split_aggregate(raw)[1]:
        event, _when, latest, worst = split_aggregate(item)[1]
        shape.append((event, int(latest[1:-2]), int(worst[1:-2])))
    return sorted(shape)


def test_latency_monitor(debug_pair_ports):
    pair = Pair(*debug_pair_ports)
    try:
        pair.same("LATENCY", "RESET")
        pair.same("CONFIG", "SET", "latency-monitor-threshold", "0")
        pair.same("LATENCY", "DOCTOR")  # disabled
        pair.same("CONFIG", "SET", "latency-monitor-threshold", "40")
        pair.same("LATENCY", "DOCTOR")  # on, no spike yet
        pair.same("LATENCY", "LATEST")
        pair.same("DEBUG", "SLEEP", "0.01")  # under the threshold
        pair.same("LATENCY", "LATEST")
        pair.same("DEBUG", "SLEEP", "0.06")
        ours, theirs = pair.call("LATENCY", "LATEST")
        [(event, latest, worst)] = latest_shape(ours)
        assert [(e, w >= 60) for e, _, w in latest_shape(theirs)] == [(event, worst >= 60)]
        assert event == b"$7\r\ncommand\r\n" and latest == worst >= 60
        _, samples = split_aggregate(pair.store.call("LATENCY", "HISTORY", "command"))
        assert len(samples) == 1
        pair.same("LATENCY", "HISTORY", "nosuchevent")
        pair.same("LATENCY", "RESET", "nosuchevent")
        pair.same("LATENCY", "RESET", "command")
        pair.same("LATENCY", "LATEST")
    finally:
        for client in (pair.store, pair.redis):
            client.call("CONFIG", "SET", "latency-monitor-threshold", "0")
            client.call("LATENCY", "RESET")
        pair.close()
