"""Stream commands against real redis-server: the same replies, byte for byte, the same errors
and events; where a reply holds times (idle, delivery and seen times) the rest is compared."""

from __future__ import annotations

import random
import re

import pytest

from tests.store.helpers import (
    Events,
    run,
    same_unordered,
    split_aggregate,
    wait_blocked,
    watch_outcome,
)
from tests.store.rawclient import RawClient


def port_of(client: RawClient) -> int:
    return client.sock.getpeername()[1]


def parse(raw: bytes):
    """A RESP2/RESP3 reply as nested Python values (errors as ('err', text))."""
    value, _ = _parse(raw, 0)
    return value


def _parse(raw: bytes, pos: int):
    end = raw.index(b"\r\n", pos)
    kind, line = raw[pos : pos + 1], raw[pos + 1 : end]
    pos = end + 2
    if kind in (b"+", b"("):
        return line, pos
    if kind == b"-":
        return ("err", line), pos
    if kind == b":":
        return int(line), pos
    if kind == b"_":
        return None, pos
    if kind in (b"$", b"="):
        n = int(line)
        if n < 0:
            return None, pos
        return raw[pos : pos + n], pos + n + 2
    n = int(line)
    if n < 0:
        return None, pos
    if kind == b"%":
        n *= 2
    items = []
    for _ in range(n):
        item, pos = _parse(raw, pos)
        items.append(item)
    return items, pos


def same_but(pair, mask, *args):
    """Send `args` to both; compare the parsed replies after `mask` blanked what holds times."""
    ours, theirs = (parse(r) for r in pair.call(*args))
    assert mask(ours) == mask(theirs), f"{args!r}: store {ours!r} != redis {theirs!r}"
    return ours


def _pending_mask(reply):
    return [[e[0], e[1], "idle", e[3]] for e in reply] if isinstance(reply, list) else reply


def _consumers_mask(reply):
    return [[x if i != 5 else "idle" for i, x in enumerate(c)] for c in reply]


_TIMES = {b"seen-time"}


def _full_mask(reply):
    """XINFO STREAM FULL without delivery and seen times."""
    info = dict(zip(reply[::2], reply[1::2], strict=True))
    groups = []
    for group in info[b"groups"]:
        g = dict(zip(group[::2], group[1::2], strict=True))
        g[b"pending"] = [[p[0], p[1], "time", p[3]] for p in g[b"pending"]]
        consumers = []
        for consumer in g[b"consumers"]:
            c = dict(zip(consumer[::2], consumer[1::2], strict=True))
            c[b"seen-time"] = "time"
            c[b"pending"] = [[p[0], "time", p[2]] for p in c[b"pending"]]
            consumers.append(c)
        g[b"consumers"] = consumers
        groups.append(g)
    info[b"groups"] = groups
    return info


# ------------------------------------------------------------ XADD, XRANGE, XDEL, XTRIM


def test_xadd_ids_options_and_errors(pair, proto):
    run(
        pair,
        "XADD s 1-1 a 1 b 2",
        "XADD s 1-1 a 1",
        "XADD s 1-* a 1",
        "XADD s 2 f v",
        "XADD s 0-0 f v",
        "XADD z 0-0 f v",
        "XADD s * f",
        "XADD s 3-1 f v g",
        "XADD s NOMKSTREAM MAXLEN ~ 10 LIMIT 5 5-1 f v",
        "XADD s maxlen = 3 6-1 f v",
        "XADD s MINID 1 LIMIT 3 7-1 f v",
        "XADD s MAXLEN 1 MINID 1 8-1 f v",
        "XADD s MAXLEN -1 8-1 f v",
        "XADD s MAXLEN x 8-1 f v",
        "XADD s LIMIT 2 8-1 f v",
        "XADD s LIMIT -2 8-1 f v",
        "XADD s MINID - 8-1 f v",
        "XADD nos NOMKSTREAM * f v",
        "XADD s abc f v",
        "XADD s - f v",
        "XADD s 007-1 f v",
        "XADD s 8-007 f v",
        "XADD s 8--1 f v",
        "XADD s 1-18446744073709551616 f v",
        "XADD s 18446744073709551615-18446744073709551614 f v",
        "XADD s 18446744073709551615-* f v",
        "XADD s * f v",
        "XLEN s",
        "XLEN nos",
        "TYPE s",
        "OBJECT ENCODING s",
        "XRANGE s - +",
        "EXISTS nos z",
    )
    auto = pair.store.call("XADD", "t", "*", "f", "v")
    assert re.fullmatch(rb"\$\d+\r\n\d{13}-0\r\n", auto)
    assert re.fullmatch(rb"\$\d+\r\n\d{13}-0\r\n", pair.redis.call("XADD", "t", "*", "f", "v"))
    assert pair.store.call("XADD", "t", "1-*", "f", "v").startswith(b"-ERR The ID specified")


def test_xadd_ms_star_continues_the_sequence(pair):
    run(pair, "XADD s 5-3 f v", "XADD s 5-* f v", "XADD s 6-* f v", "XADD s 4-* f v",
        "XRANGE s - +")  # fmt: skip


def test_xrange_and_xrevrange(pair, proto):
    for i in range(1, 8):
        pair.same("XADD", "s", f"{i}-{i}", "f", str(i), "g", "x" * i)
    run(
        pair,
        "XRANGE s - +",
        "XRANGE s - + COUNT 2",
        "XRANGE s - + COUNT 0",
        "XRANGE s - + COUNT -3",
        "XRANGE s (1-1 +",
        "XRANGE s - (6-6",
        "XRANGE s ( +",
        "XRANGE s (- +",
        "XRANGE s - (+",
        "XRANGE s 2 5",
        "XRANGE s 5 2",
        "XRANGE s (18446744073709551615-18446744073709551615 +",
        "XRANGE s - (0-0",
        "XREVRANGE s + -",
        "XREVRANGE s + - COUNT 1",
        "XREVRANGE s (7-7 -",
        "XREVRANGE s 5 (2-2",
        "XRANGE s - + COUNT",
        "XRANGE s - + FOO 1",
        "XRANGE s - + COUNT x",
        "XRANGE nos - +",
        "XRANGE nos - + COUNT 0",
        "XRANGE s x +",
        "SET str x",
        "XRANGE str - +",
        "XLEN str",
        "XADD str * f v",
    )


def test_xdel_and_first_entry(pair, proto):
    for i in range(1, 6):
        pair.same("XADD", "s", f"{i}-0", "f", str(i))
    run(
        pair,
        "XDEL s 1-0 3-0 99-1",
        "XDEL s bad",
        "XDEL s 2-0 bad",
        "XDEL nos 1-0",
        "XLEN s",
        "XRANGE s - +",
        "XINFO STREAM s",
        "XDEL s 2-0 4-0 5-0",
        "XINFO STREAM s",
        "EXISTS s",
        "XADD s 5-0 f v",
        "XADD s 6-0 f v",
        "XINFO STREAM s",
    )


@pytest.fixture
def node_config(pair):
    """The tests that change stream-node-max-* put Redis's defaults back after them."""
    yield
    for client in (pair.store, pair.redis):
        client.call("CONFIG", "SET", "stream-node-max-entries", "100")
        client.call("CONFIG", "SET", "stream-node-max-bytes", "4096")


def test_xtrim_exact_and_approximate(pair, proto, node_config):
    for client in (pair.store, pair.redis):
        client.call("CONFIG", "SET", "stream-node-max-entries", "10")
    for i in range(1, 96):
        pair.same("XADD", "s", f"{i}-0", "f", str(i))
    run(
        pair,
        "XINFO STREAM s",
        "XTRIM s",
        "XTRIM s FOO 1",
        "XTRIM s MAXLEN",
        "XTRIM s MINID 0 LIMIT 1",
        "XTRIM s MAXLEN ~ 92",
        "XTRIM s MAXLEN ~ 88",
        "XINFO STREAM s",
        "XTRIM s MAXLEN ~ 40 LIMIT 25",
        "XTRIM s MAXLEN ~ 40 LIMIT 0",
        "XINFO STREAM s",
        "XTRIM s MAXLEN = 37",
        "XINFO STREAM s",
        "XTRIM s MINID ~ 75",
        "XTRIM s MINID 78",
        "XINFO STREAM s",
        "XADD s MAXLEN ~ 5 100-0 f v",
        "XADD s MINID 95-0 101-0 f v",
        "XINFO STREAM s",
        "XTRIM nos MAXLEN 0",
        "XTRIM s MAXLEN 0",
        "XINFO STREAM s",
    )


def test_nodes_split_by_bytes_as_in_redis(pair, node_config):
    """A node is full at stream-node-max-bytes too: listpack sizes are Redis's."""
    for i in range(60):
        pair.same("XADD", "s", f"{i + 1}-0", "field", "v" * (i * 7 % 300), "n", str(i * 1000))
        pair.same("XADD", "s", f"{i + 1}-1", "other", "12345678901")
    pair.same("XINFO", "STREAM", "s")
    pair.same("XTRIM", "s", "MAXLEN", "~", "50")
    pair.same("XINFO", "STREAM", "s")
    for client in (pair.store, pair.redis):
        client.call("CONFIG", "SET", "stream-node-max-bytes", "200")
    for i in range(40):
        pair.same("XADD", "s", f"{100 + i}-0", "f", "x" * (i % 5))
    pair.same("XINFO", "STREAM", "s")
    same_unordered(pair, "CONFIG", "GET", "stream-node-*", pairs=True)


def test_xsetid(pair, proto):
    run(
        pair,
        "XADD s 5-0 f v",
        "XSETID s 99-0",
        "XSETID s 1-0",
        "XSETID s 100-0 ENTRIESADDED 0",
        "XSETID s 100-0 ENTRIESADDED -1",
        "XSETID s 100-0 ENTRIESADDED 50 MAXDELETEDID 99-0",
        "XSETID s 100-0 MAXDELETEDID 101-0",
        "XSETID s 100-0 FOO 1",
        "XSETID s -",
        "XSETID nos 1-0",
        "XINFO STREAM s",
        "XADD s 100-0 f v",
        "XADD s 100-1 f v",
        "XDEL s 5-0 100-1",
        "XSETID s 0-1",
        "XINFO STREAM s",
    )


# ------------------------------------------------------------ keyspace


def test_stream_keys_in_the_keyspace(pair, proto):
    run(
        pair,
        "XADD s 1-0 f v",
        "XGROUP CREATE s g $",
        "XREADGROUP GROUP g c STREAMS s 0",
        "COPY s c",
        "XADD c 2-0 f v",
        "XLEN s",
        "XINFO GROUPS c",
        "RENAME c r",
        "TYPE r",
        "OBJECT ENCODING r",
        "EXPIRE r 100",
        "TTL r",
        "DEL r",
        "EXISTS r",
        "MULTI",
        "XADD m 1-0 a b",
        "XLEN m",
        "XRANGE m - +",
        "EXEC",
        ("EVAL", "return redis.call('XADD', KEYS[1], '3-0', 'k', 'v')", "1", "m"),
        ("EVAL", "return redis.call('XRANGE', KEYS[1], '-', '+')", "1", "m"),
        ("EVAL", "return redis.call('XREAD', 'STREAMS', KEYS[1], '0')", "1", "m"),
        ("EVAL", "return redis.pcall('XREAD', 'BLOCK', 0, 'STREAMS', KEYS[1], '$')", "1", "m"),
        ("EVAL", "return redis.pcall('xread', 'BLOCK', 0, 'STREAMS', KEYS[1], '$')", "1", "m"),
        ("EVAL", "return redis.pcall('XINFO', 'STREAM', KEYS[1])", "1", "m"),
    )
    found = [sorted(split_aggregate(split_aggregate(r)[1][1])[1])
             for r in pair.call("SCAN", "0", "TYPE", "stream")]  # fmt: skip
    assert found[0] == found[1] and len(found[0]) == 2
    pair.same("PEXPIRE", "m", "1")
    for client in (pair.store, pair.redis):
        while client.call("EXISTS", "m") != b":0\r\n":
            pass
    pair.same("XLEN", "m")


def test_stream_events(pair, events):
    run(
        pair,
        "XADD s 1-0 f v",
        "XADD s MAXLEN 1 2-0 f v",
        "XADD s MAXLEN 5 3-0 f v",
        "XDEL s 2-0",
        "XDEL s 9-0",
        "XTRIM s MAXLEN 0",
        "XTRIM s MAXLEN 0",
        "XSETID s 5-0",
        "XGROUP CREATE s g $",
        "XGROUP CREATE n g $ MKSTREAM",
        "XGROUP CREATECONSUMER s g c",
        "XGROUP SETID s g 0",
        "XADD s 6-0 f v",
        "XREADGROUP GROUP g c2 STREAMS s >",
        "XCLAIM s g c3 0 6-0",
        "XAUTOCLAIM s g c4 0 0",
        "XACK s g 6-0",
        "XGROUP DELCONSUMER s g c",
        "XGROUP DESTROY s g",
        "DEL s",
    )
    events.assert_same()


# ------------------------------------------------------------ XREAD


def test_xread(pair, proto):
    for i in range(1, 5):
        pair.same("XADD", "s", f"{i}-0", "f", str(i))
    pair.same("XADD", "t", "1-0", "a", "b")
    run(
        pair,
        "XREAD STREAMS s 0",
        "XREAD COUNT 2 STREAMS s 0",
        "XREAD COUNT -1 STREAMS s 2",
        "XREAD STREAMS s t 0 0",
        "XREAD STREAMS s s 0 3-0",
        "XREAD STREAMS s t nos 4-0 0 0",
        "XREAD STREAMS s $",
        "XREAD STREAMS s +",
        "XREAD STREAMS s -",
        "XREAD STREAMS s",
        "XREAD STREAMS s t 0",
        "XREAD COUNT 1",
        "XREAD FOO STREAMS s 0",
        "XREAD GROUP g c STREAMS s 0",
        "XREAD NOACK STREAMS s 0",
        "XREAD STREAMS s >",
        "XREAD BLOCK -1 STREAMS s 0",
        "XREAD BLOCK x STREAMS s 0",
        "XREAD BLOCK 0 STREAMS s 0",
        "XREAD COUNT x STREAMS s 0",
        "MULTI",
        "XREAD BLOCK 0 STREAMS s $",
        "EXEC",
        "SET str x",
        "XREAD STREAMS s str 0 0",
    )


def _blocked_pair(pair, *command, proto: int = 2):
    waiters = [RawClient(port_of(pair.store)), RawClient(port_of(pair.redis))]
    for w in waiters:
        if proto == 3:
            w.call("HELLO", "3")
        w.send(*command)
    for w in waiters:
        wait_blocked(port_of(w), w, command[0])
    return waiters


def _read_both(waiters):
    replies = [w.read_reply() for w in waiters]
    for w in waiters:
        w.close()
    assert replies[0] == replies[1]
    return replies[0]


@pytest.mark.parametrize("proto", [2, 3])
def test_blocked_xread_is_served_by_xadd(pair, proto):
    pair.same("XADD", "s", "1-0", "f", "v")
    waiters = _blocked_pair(pair, "XREAD", "BLOCK", "0", "STREAMS", "a", "s", "0", "$",
                            proto=proto)  # fmt: skip
    pair.same("XADD", "other", "1-0", "f", "v")
    pair.same("XADD", "s", "2-0", "f", "v", "g", "w")
    assert b"2-0" in _read_both(waiters)
    waiters = _blocked_pair(pair, "XREAD", "BLOCK", "0", "COUNT", "1", "STREAMS", "a", "0",
                            proto=proto)  # fmt: skip
    pair.same("XADD", "a", "1-0", "x", "y")
    _read_both(waiters)


def test_blocked_xread_times_out(pair):
    for proto in (2, 3):
        waiters = _blocked_pair(pair, "XREAD", "BLOCK", "100", "STREAMS", "s", "$", proto=proto)
        assert _read_both(waiters) == (b"*-1\r\n" if proto == 2 else b"_\r\n")


def test_blocked_xread_waits_past_a_deleted_key(pair):
    pair.same("XADD", "s", "666-0", "f", "v")
    waiters = _blocked_pair(pair, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    run(pair, "DEL s", "SET s x", "DEL s", "XADD s 667-0 f v")
    assert b"667-0" in _read_both(waiters)


# ------------------------------------------------------------ consumer groups


def test_xgroup(pair, proto):
    run(
        pair,
        "XGROUP CREATE s g $",
        "XGROUP CREATE s g $ MKSTREAM",
        "XGROUP CREATE s g $ MKSTREAM",
        "XGROUP CREATE s g2 0 ENTRIESREAD 3",
        "XGROUP CREATE s g3 0 ENTRIESREAD -2",
        "XGROUP CREATE s g3 0 ENTRIESREAD x",
        "XGROUP CREATE s g4 0 FOO",
        "XGROUP CREATE s g5 +",
        "XGROUP CREATE s g6 - ",
        "XGROUP CREATE s g7 0 MKSTREAM ENTRIESREAD 1 MKSTREAM",
        "XGROUP CREATE s g8 0 MKSTREAM ENTRIESREAD 1 MKSTREAM MKSTREAM",
        "XGROUP SETID s nog 0",
        "XGROUP SETID s g 0 ENTRIESREAD 1",
        "XGROUP SETID s g +",
        "XGROUP SETID s g 0 FOO",
        "XGROUP SETID s g 0 ENTRIESREAD 1 X",
        "XGROUP SETID nos g 0",
        "XGROUP CREATECONSUMER s g c9",
        "XGROUP CREATECONSUMER s g c9",
        "XGROUP CREATECONSUMER s nog c9",
        "XGROUP CREATECONSUMER nos g c9",
        "XGROUP DELCONSUMER s g c9",
        "XGROUP DELCONSUMER s g c9",
        "XGROUP DESTROY s g2",
        "XGROUP DESTROY s g2",
        "XGROUP DESTROY nos g2",
        "XGROUP CREATE s",
        "XGROUP CREATE s g x",
        "XGROUP FOO s g",
        "XGROUP HELP",
        "XGROUP HELP x",
        "XINFO GROUPS s",
        "SET str x",
        "XGROUP CREATE str g $",
    )


def test_xreadgroup_xack_xpending(pair, proto):
    run(
        pair,
        "XGROUP CREATE s g $ MKSTREAM",
        "XADD s 1-1 a 1",
        "XADD s 2-1 a 2",
        "XADD s 3-1 b 3",
        "XGROUP SETID s g 0",
        "XINFO GROUPS s",
        "XREADGROUP GROUP g c1 STREAMS s >",
        "XREADGROUP GROUP g c1 COUNT 1 STREAMS s 0",
        "XREADGROUP GROUP g c2 STREAMS s >",
        "XREADGROUP GROUP g c2 STREAMS s 0",
        "XINFO GROUPS s",
        "XPENDING s g",
        "XPENDING s nog",
        "XPENDING nos g",
        "XPENDING s g - +",
        "XPENDING s g IDLE 10 - +",
        "XPENDING s g - + x",
        "XPENDING s g x + 10",
        "XPENDING s g - + 10 nobody",
        "XPENDING s g - + 0",
        "XPENDING s g - (1-1 10",
        "XACK s g 1-1 9-9",
        "XACK s g bad",
        "XACK s nog 1-1",
        "XACK nos g 1-1",
        "XPENDING s g",
        "XREADGROUP GROUP g c1 STREAMS s $",
        "XREADGROUP GROUP nog c1 STREAMS s >",
        "XREADGROUP GROUP g c1 STREAMS nos >",
        "XREADGROUP STREAMS s 0",
        "XREADGROUP GROUP g c1 STREAMS s 0 x",
        "XREADGROUP GROUP g c1 BLOCK 0 STREAMS s 0",
        "XADD s 4-1 a 4",
        "XADD s 5-1 a 5",
        "XDEL s 2-1",
        "XREADGROUP GROUP g c3 NOACK COUNT 1 STREAMS s >",
        "XREADGROUP GROUP g c1 STREAMS s 0",
        "XREADGROUP GROUP g c1 COUNT 0 STREAMS s 0-0",
        "XINFO GROUPS s",
        "XPENDING s g",
        "MULTI",
        "XREADGROUP GROUP g c1 BLOCK 0 STREAMS s >",
        "EXEC",
        "XREADGROUP GROUP g c1 STREAMS s >",
        "XINFO GROUPS s",
    )
    same_but(pair, _pending_mask, "XPENDING", "s", "g", "-", "+", "10")
    same_but(pair, _pending_mask, "XPENDING", "s", "g", "-", "+", "10", "c1")
    same_but(pair, _pending_mask, "XPENDING", "s", "g", "(1-1", "+", "1")
    same_but(pair, _pending_mask, "XPENDING", "s", "g", "IDLE", "0", "-", "+", "10")
    same_but(pair, _consumers_mask, "XINFO", "CONSUMERS", "s", "g")
    same_but(pair, _full_mask, "XINFO", "STREAM", "s", "FULL")
    same_but(pair, _full_mask, "XINFO", "STREAM", "s", "FULL", "COUNT", "1")
    for args in (("STREAM", "s", "FULL"), ("CONSUMERS", "s", "g")):  # raw, times and idles out
        ours, theirs = (re.sub(rb"(seen-time|idle)\r\n:\d+|:1[6-9]\d{11}\r\n", b"T", r)
                        for r in pair.call("XINFO", *args))  # fmt: skip
        assert ours == theirs
    run(pair, "XINFO STREAM s FULL COUNT", "XINFO STREAM s FOO", "XINFO CONSUMERS s nog",
        "XINFO GROUPS nos", "XINFO FOO s", "XINFO HELP")  # fmt: skip


def test_xclaim_and_xautoclaim(pair, proto):
    run(
        pair,
        "XGROUP CREATE s g $ MKSTREAM",
        "XADD s 1-1 a 1",
        "XADD s 2-1 a 2",
        "XADD s 3-1 b 3",
        "XADD s 4-1 b 4",
        "XREADGROUP GROUP g c1 COUNT 3 STREAMS s >",
        "XDEL s 2-1",
        "XCLAIM s g c3 0 2-1 3-1",
        "XCLAIM s g c3 0 1-1 3-1 JUSTID",
        "XCLAIM s g c3 0 3-1 RETRYCOUNT 5 IDLE 1000 JUSTID",
        "XCLAIM s g c3 0 3-1 FOO",
        "XCLAIM s g c3 abc 3-1",
        "XCLAIM s nog c3 0 3-1",
        "XCLAIM nos g c3 0 3-1",
        "XCLAIM s g c3 0 3-1 IDLE abc",
        "XCLAIM s g c3 0 3-1 TIME abc",
        "XCLAIM s g c3 0 3-1 RETRYCOUNT abc",
        "XCLAIM s g c3 0 3-1 LASTID abc",
        "XCLAIM s g c3 3600000 3-1",
        "XCLAIM s g c4 0 4-1 FORCE JUSTID",
        "XCLAIM s g c4 0 4-1 LASTID 9-9 JUSTID",
        "XCLAIM s g c5 0 9-9 LASTID 10-0",
        "XINFO GROUPS s",
        "XAUTOCLAIM s g c5 0 0",
        "XAUTOCLAIM s g c5 0 0 COUNT 1",
        "XAUTOCLAIM s g c5 0 0 COUNT 0",
        "XAUTOCLAIM s g c5 0 0 COUNT x",
        "XAUTOCLAIM s g c5 0 0 JUSTID",
        "XAUTOCLAIM s g c5 0 (1-1 JUSTID",
        "XAUTOCLAIM s g c5 0 0 FOO",
        "XAUTOCLAIM s g c5 abc 0",
        "XAUTOCLAIM s g c5 0 x",
        "XAUTOCLAIM s nog c5 0 0",
        "XAUTOCLAIM s g c5 3600000 0",
        "XADD s 5-1 a 5",
        "XADD s 6-1 a 6",
        "XREADGROUP GROUP g c1 STREAMS s >",
        "XDEL s 5-1 6-1",
        "XAUTOCLAIM s g c6 0 0 COUNT 2",
        "XAUTOCLAIM s g c6 0 0",
        "XGROUP DELCONSUMER s g c6",
        "XPENDING s g",
    )
    same_but(pair, _pending_mask, "XPENDING", "s", "g", "-", "+", "10")
    same_but(pair, _consumers_mask, "XINFO", "CONSUMERS", "s", "g")


def test_lag_and_entries_read(pair):
    run(
        pair,
        "XGROUP CREATE s g $ MKSTREAM",
        "XINFO GROUPS s",
        "XADD s 1-0 f v",
        "XADD s 2-0 f v",
        "XADD s 3-0 f v",
        "XINFO GROUPS s",
        "XREADGROUP GROUP g c COUNT 1 STREAMS s >",
        "XINFO GROUPS s",
        "XDEL s 2-0",
        "XINFO GROUPS s",
        "XREADGROUP GROUP g c COUNT 1 STREAMS s >",
        "XINFO GROUPS s",
        "XGROUP CREATE s g2 0",
        "XGROUP CREATE s g3 1-0 ENTRIESREAD 1",
        "XINFO GROUPS s",
        "XDEL s 1-0",
        "XGROUP SETID s g2 0-0",
        "XINFO GROUPS s",
        "XTRIM s MAXLEN 0",
        "XINFO GROUPS s",
    )


def test_blocked_xreadgroup(pair):
    run(pair, "XADD s 1-0 f v", "XGROUP CREATE s g $")
    waiters = _blocked_pair(pair, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS",
                            "s", ">")  # fmt: skip
    pair.same("XADD", "s", "2-0", "f", "v")
    assert b"2-0" in _read_both(waiters)
    pair.same("XPENDING", "s", "g")
    for change in ("DEL s", "SET s x", "FLUSHALL", "XGROUP DESTROY s g"):
        run(pair, "DEL s", "XGROUP CREATE s g $ MKSTREAM")
        waiters = _blocked_pair(pair, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0",
                                "STREAMS", "s", ">")  # fmt: skip
        run(pair, change)
        assert _read_both(waiters).startswith(b"-")
    run(pair, "FLUSHALL", "XGROUP CREATE s g $ MKSTREAM")
    waiters = _blocked_pair(pair, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "100", "STREAMS",
                            "s", ">")  # fmt: skip
    assert _read_both(waiters) == b"*-1\r\n"


def test_getkeys_of_xread(pair):
    for command in (
        ("XREAD", "COUNT", "1", "STREAMS", "a", "b", "0", "0"),
        ("XREAD", "BLOCK", "1", "STREAMS", "a", "0"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", "b", ">", ">"),
        ("XREAD", "STREAMS", "a", "b", "0"),
        ("XADD", "s", "*", "f", "v"),
        ("XGROUP", "CREATE", "s", "g", "$"),
        ("XINFO", "STREAM", "s"),
    ):
        pair.same("COMMAND", "GETKEYS", *command)
        pair.same("COMMAND", "GETKEYSANDFLAGS", *command)
    _head, entries = split_aggregate(pair.store.call("COMMAND", "INFO", "XREAD"))
    assert b"keyword" in entries[0]


def test_events_fixture_sees_xadd(pair, store_port, redis_port):
    events = Events(pair, store_port, redis_port)
    pair.same("XADD", "s", "1-0", "f", "v")
    assert len(events.assert_same()) == 2
    events.close()


def test_xreadgroup_history_starts_after_the_id(pair):
    run(pair, "XGROUP CREATE s g $ MKSTREAM", "XADD s 666 k v", "XDEL s 666", "XADD s 667 k v",
        "XREADGROUP GROUP g c STREAMS s >")  # fmt: skip
    for sid in ("0", "600", "666", "666-0", "667", "667-0", "700"):
        pair.same("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", sid)
    run(pair, "XACK s g 667", "XREADGROUP GROUP g c STREAMS s 0")


def test_error_of_a_blocked_xreadgroup_is_counted(pair):
    run(pair, "CONFIG RESETSTAT", "XGROUP CREATE s g $ MKSTREAM")
    waiters = _blocked_pair(pair, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS",
                            "s", ">")  # fmt: skip
    pair.same("XGROUP", "DESTROY", "s", "g")
    assert _read_both(waiters).startswith(b"-NOGROUP")
    stats = [re.findall(rb"errorstat_\w+:count=\d+|total_error_replies:\d+", c.call("INFO"))
             for c in (pair.store, pair.redis)]  # fmt: skip
    assert stats[0] == stats[1] and stats[0]
    calls = [re.search(rb"cmdstat_xreadgroup:calls=1,.*,rejected_calls=0,failed_calls=1",
                       c.call("INFO", "commandstats")) for c in (pair.store, pair.redis)]  # fmt: skip
    assert all(calls)


def test_swapdb_serves_and_unblocks_waiters(pair):
    """SWAPDB: a waiter whose key now has data is served, an XREADGROUP whose stream is gone
    gets UNBLOCKED (Redis 7.0's scanDatabaseForReadyKeys / scanDatabaseForDeletedStreams)."""
    run(pair, "SELECT 4", "RPUSH l a", "SELECT 9", "FLUSHDB", "XADD s 1-0 f v",
        "XGROUP CREATE s g $")  # fmt: skip
    waiters = []
    for command in (("BLPOP", "l", "0"), ("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0",
                                          "STREAMS", "s", ">")):  # fmt: skip
        pair_waiters = [RawClient(port_of(pair.store)), RawClient(port_of(pair.redis))]
        for w in pair_waiters:
            w.call("SELECT", "9")
            w.send(*command)
        for w in pair_waiters:
            wait_blocked(port_of(w), w, command[0])
        waiters.append(pair_waiters)
    pair.same("SWAPDB", "4", "9")
    assert [_read_both(w) for w in waiters] == [b"*2\r\n$1\r\nl\r\n$1\r\na\r\n",
                                                b"-UNBLOCKED the stream key no longer exists\r\n"]  # fmt: skip
    run(pair, "FLUSHALL", "SELECT 0")


def test_client_unblock_error_is_counted(pair):
    """CLIENT UNBLOCK ... ERROR counts the UNBLOCKED error as Redis does (any blocking command;
    Redis also counts it as a failure of CLIENT UNBLOCK itself, the store does not)."""
    pair.same("CONFIG", "RESETSTAT")
    for command in (("BLPOP", "l", "0"), ("XREAD", "BLOCK", "0", "STREAMS", "s", "$")):
        waiters = _blocked_pair(pair, *command)
        for admin in (pair.store, pair.redis):
            line = admin.call("CLIENT", "LIST")
            ids = re.findall(rb"id=(\d+) .*?cmd=" + command[0].lower().encode(), line)
            assert admin.call("CLIENT", "UNBLOCK", ids[0], "ERROR") == b":1\r\n"
        assert _read_both(waiters).startswith(b"-UNBLOCKED")
    stats = [sorted(re.findall(rb"errorstat_\w+:count=\d+|total_error_replies:\d+|"
                               rb"cmdstat_(?:blpop|xread):calls=\d+,.*failed_calls=\d+",
                               c.call("INFO", "all"))) for c in (pair.store, pair.redis)]  # fmt: skip
    stats = [[re.sub(rb"usec=\d+,usec_per_call=[\d.]+,", b"", x) for x in s] for s in stats]
    assert stats[0] == stats[1] and stats[0]


@pytest.mark.parametrize("seed", range(6))
def test_random_stream_operations(pair, node_config, seed):
    """Random XADD/XDEL/XTRIM/XRANGE/XINFO STREAM sequences: the same replies, node layout
    (radix-tree figures) included, with small nodes split by count or by bytes."""
    rng = random.Random(seed)
    entries, max_bytes = rng.choice([(5, 4096), (10, 0), (100, 300), (7, 150), (100, 4096)])
    for client in (pair.store, pair.redis):
        client.call("CONFIG", "SET", "stream-node-max-entries", str(entries))
        client.call("CONFIG", "SET", "stream-node-max-bytes", str(max_bytes))
    ms, seq, ids = 1, 0, []

    def value() -> str:
        return rng.choice(
            ["", "7", "-12", "300", "65536", "9" * 19, "007", "x" * rng.randrange(90)]
        )

    for _ in range(250):
        op = rng.random()
        if op < 0.45:
            if rng.random() < 0.5:
                ms, seq = ms + rng.randrange(1, 5000), 0
            else:
                seq += rng.randrange(1, 3)
            fields = rng.choice([["a", value()], ["a", value(), "b", value()], ["c", value()]])
            trim = rng.choice([[], [], ["MAXLEN", "~", str(rng.randrange(60))],
                               ["MINID", "=", f"{max(1, ms - 20000)}"],
                               ["MAXLEN", "~", str(rng.randrange(60)), "LIMIT", "12"]])  # fmt: skip
            pair.same("XADD", "s", *trim, f"{ms}-{seq}", *fields)
            ids.append(f"{ms}-{seq}")
        elif op < 0.6 and ids:
            pair.same("XDEL", "s", *rng.sample(ids, min(len(ids), rng.randrange(1, 4))))
        elif op < 0.68:
            how = rng.choice(["~", "="])
            if rng.random() < 0.5:
                pair.same("XTRIM", "s", "MAXLEN", how, str(rng.randrange(80)))
            else:
                pair.same("XTRIM", "s", "MINID", how, f"{max(1, ms - rng.randrange(60000))}")
        elif op < 0.9 and ids:
            a, b = sorted(rng.sample(ids, 2)) if len(ids) > 1 else (ids[0], ids[0])
            a = rng.choice([a, "-", "(" + a])
            b = rng.choice([b, "+", "(" + b])
            command = rng.choice([("XRANGE", "s", a, b), ("XREVRANGE", "s", b, a)])
            pair.same(*command, "COUNT", str(rng.randrange(0, 40)))
        else:
            pair.same("XINFO", "STREAM", "s")
            pair.same("XLEN", "s")
    pair.same("XINFO", "STREAM", "s")
    pair.same("XRANGE", "s", "-", "+")


@pytest.mark.parametrize("seed", range(6))
def test_random_consumer_group_operations(pair, seed):
    """Random group traffic: deliveries, acks, claims, deletions, trims, SETID: the same
    replies, XINFO GROUPS' entries-read and lag and XPENDING's summary included."""
    rng = random.Random(seed)
    pair.same("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    pair.same("XGROUP", "CREATE", "s", "h", "0", "ENTRIESREAD", "0")
    ids, n = [], 0
    for _ in range(200):
        op = rng.random()
        group = rng.choice(["g", "h"])
        consumer = rng.choice(["c1", "c2", "c3"])
        if op < 0.3:
            n += 1
            pair.same("XADD", "s", f"{n}-0", "f", str(n))
            ids.append(f"{n}-0")
        elif op < 0.45:
            pair.same("XREADGROUP", "GROUP", group, consumer, "COUNT", str(rng.randrange(1, 4)),
                      *(["NOACK"] if rng.random() < 0.2 else []), "STREAMS", "s", ">")  # fmt: skip
        elif op < 0.5:
            pair.same("XREADGROUP", "GROUP", group, consumer, "STREAMS", "s",
                      rng.choice(["0", *ids[:2]]))  # fmt: skip
        elif op < 0.6 and ids:
            pair.same("XACK", "s", group, *rng.sample(ids, min(len(ids), 3)))
        elif op < 0.67 and ids:
            pair.same("XCLAIM", "s", group, consumer, "0", *rng.sample(ids, min(len(ids), 3)),
                      "JUSTID")  # fmt: skip
        elif op < 0.72:
            pair.same("XAUTOCLAIM", "s", group, consumer, "0", "0", "COUNT",
                      str(rng.randrange(1, 4)), "JUSTID")  # fmt: skip
        elif op < 0.8 and ids:
            pair.same("XDEL", "s", rng.choice(ids))
        elif op < 0.83:
            pair.same("XTRIM", "s", "MAXLEN", str(rng.randrange(10)))
        elif op < 0.86 and ids:
            pair.same("XGROUP", "SETID", "s", group, rng.choice(ids + ["0", "$"]),
                      *(["ENTRIESREAD", str(rng.randrange(n + 1))] if rng.random() < 0.5 else []))  # fmt: skip
        else:
            pair.same("XINFO", "GROUPS", "s")
            pair.same("XPENDING", "s", group)
    pair.same("XINFO", "GROUPS", "s")
    same_but(pair, _full_mask, "XINFO", "STREAM", "s", "FULL")


@pytest.mark.parametrize(
    "command",
    [
        ("XADD", "s", "9-0", "f", "v"),
        ("XDEL", "s", "1-0"),
        ("XDEL", "s", "7-0"),
        ("XTRIM", "s", "MAXLEN", "0"),
        ("XSETID", "s", "8-0"),
        ("XGROUP", "CREATE", "s", "g2", "$"),
        ("XGROUP", "CREATE", "n", "g", "$", "MKSTREAM"),
        ("XGROUP", "SETID", "s", "g", "0"),
        ("XGROUP", "CREATECONSUMER", "s", "g", "c"),
        ("XGROUP", "DESTROY", "s", "g"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"),
        ("XACK", "s", "g", "1-0"),
    ],
)
def test_watch_sees_what_redis_signals(pair, command):
    """WATCH is spoiled by XADD, XDEL, XTRIM and a stream XGROUP CREATE MKSTREAM makes, not
    by the group commands or XSETID (Redis's signalModifiedKey calls)."""
    run(pair, "XADD s 1-0 f v", "XGROUP CREATE s g 0", "XREADGROUP GROUP g c0 STREAMS s >")
    key = "n" if command[2] == "n" else "s"
    watch_outcome(pair, port_of(pair.store), port_of(pair.redis), key, *command)


def test_keyspace_hits_and_misses(pair):
    """Stream reads count hits and misses as Redis's lookups do (XREAD looks each key up
    twice; writes count nothing)."""
    run(pair, "CONFIG RESETSTAT", "XADD s 1-0 f v", "XGROUP CREATE s g 0")
    for command in ("XLEN s", "XLEN nos", "XRANGE nos - +", "XREVRANGE s + -",
                    "XREAD STREAMS s nos 0 0", "XREADGROUP GROUP g c STREAMS s >", "XACK s g 1-0",
                    "XACK nos g 1-0", "XPENDING s g", "XCLAIM s g c 0 1-0", "XINFO STREAM s",
                    "XINFO GROUPS nos", "XDEL s 9-0", "XTRIM nos MAXLEN 0", "XSETID s 5-0",
                    "XAUTOCLAIM s g c 0 0"):  # fmt: skip
        pair.call(*command.split())
    stats = [re.findall(rb"keyspace_(?:hits|misses):\d+", c.call("INFO", "stats"))
             for c in (pair.store, pair.redis)]  # fmt: skip
    assert stats[0] == stats[1] and len(stats[0]) == 2
