"""Bitmap commands (presence/store/commands/bitmap.py), differential against redis-server."""

import random

import pytest

from tests.store.helpers import command_info_head
from tests.store.rawclient import RawClient

VALUE = b"\x00\xff\x0f\xf0\x81\x00\x01\x80"


def test_setbit_getbit(pair, proto):
    for args in (
        ["SETBIT", "k", "7", "1"],
        ["SETBIT", "k", "7", "1"],
        ["SETBIT", "k", "0", "1"],
        ["GET", "k"],
        ["SETBIT", "k", "100", "0"],
        ["GET", "k"],
        ["SETBIT", "k", "0", "0"],
        ["GETBIT", "k", "0"],
        ["GETBIT", "k", "7"],
        ["GETBIT", "k", "100"],
        ["GETBIT", "k", "1000"],
        ["GETBIT", "nokey", "3"],
        ["SET", "e", "x", "EX", "100"],
        ["SETBIT", "e", "1", "0"],
        ["TTL", "e"],
        ["GET", "e"],
        ["SETBIT", "k", "-1", "1"],
        ["SETBIT", "k", "x", "1"],
        ["SETBIT", "k", "1", "2"],
        ["SETBIT", "k", "1", "-1"],
        ["SETBIT", "k", "1", "x"],
        ["SETBIT", "k", "x", "x"],
        ["SETBIT", "k", "4294967296", "1"],
        ["SETBIT", "k", "9223372036854775807", "1"],
        ["GETBIT", "k", "-1"],
        ["GETBIT", "k", "x"],
        ["GETBIT", "k", "4294967296"],
        ["SETBIT", "k", "1"],
        ["GETBIT", "k"],
    ):
        pair.same(*args)
    pair.same("RPUSH", "l", "a")
    for args in (
        ["SETBIT", "l", "1", "1"],
        ["GETBIT", "l", "1"],
        ["SETBIT", "l", "x", "1"],
        ["SETBIT", "l", "1", "x"],
        ["GETBIT", "l", "x"],
    ):
        pair.same(*args)


RANGES = [
    [],
    ["0", "-1"],
    ["1", "2"],
    ["-3", "-1"],
    ["-1", "-3"],
    ["-100", "100"],
    ["5", "2"],
    ["8", "10"],
    ["0", "0", "BYTE"],
    ["1", "2", "byte"],
    ["0", "-1", "BIT"],
    ["3", "12", "bit"],
    ["5", "5", "BIT"],
    ["-5", "-1", "BIT"],
    ["-1", "-5", "BIT"],
    ["9", "9", "BIT"],
    ["8", "15", "BIT"],
    ["60", "70", "BIT"],
    ["-100", "3", "BIT"],
    ["0", "63", "BIT"],
    ["64", "64", "BIT"],
    ["2", "1", "BIT"],
    ["-2", "-2", "bit"],
]


def test_bitcount(pair, proto):
    pair.same("SET", "k", VALUE)
    pair.same("SET", "empty", "")
    for options in RANGES:
        pair.same("BITCOUNT", "k", *options)
        pair.same("BITCOUNT", "empty", *options)
        pair.same("BITCOUNT", "nokey", *options)
    pair.same("RPUSH", "l", "a")
    for args in (
        ["k", "0"],
        ["k", "0", "1", "WORD"],
        ["k", "x", "1"],
        ["k", "0", "x"],
        ["k", "0", "1", "BIT", "x"],
        ["nokey", "x", "1"],
        ["nokey", "0"],
        ["l"],
        ["l", "0", "1"],
        ["l", "x", "1"],
        ["l", "0"],
        [],
    ):
        pair.same("BITCOUNT", *args)


def test_bitpos(pair, proto):
    pair.same("SET", "k", VALUE)
    pair.same("SET", "ones", b"\xff\xff\xff")
    pair.same("SET", "zeros", b"\x00\x00")
    pair.same("SET", "empty", "")
    for key in ("k", "ones", "zeros", "empty", "nokey"):
        for bit in ("0", "1"):
            pair.same("BITPOS", key, bit)
            pair.same("BITPOS", key, bit, "2")
            pair.same("BITPOS", key, bit, "-1")
            pair.same("BITPOS", key, bit, "100")
            for options in RANGES[1:]:
                pair.same("BITPOS", key, bit, *options)
    pair.same("RPUSH", "l", "a")
    for args in (
        ["k", "2"],
        ["k", "x"],
        ["k", "-1"],
        ["k", "1", "x"],
        ["k", "1", "0", "x"],
        ["k", "1", "0", "1", "WORD"],
        ["k", "1", "0", "1", "BIT", "x"],
        ["nokey", "1", "x"],
        ["nokey", "2"],
        ["l", "1"],
        ["l", "1", "x"],
        ["l", "x"],
        ["k"],
        ["k", "1", "x", "1", "BIT"],
        ["k", "0", "0", "x", "BIT"],
    ):
        pair.same("BITPOS", *args)


def test_random_bitmaps(pair):
    """Seeded random strings and ranges give the same BITCOUNT/BITPOS/GETBIT on both servers."""
    rng = random.Random(7)
    for _ in range(60):
        value = bytes(rng.choice([0, 255, rng.randrange(256)]) for _ in range(rng.randint(1, 6)))
        pair.same("SET", "r", value)
        for _ in range(5):
            start, end = str(rng.randint(-50, 50)), str(rng.randint(-50, 50))
            unit = rng.choice([[], ["BIT"], ["BYTE"]])
            pair.same("BITCOUNT", "r", start, end, *unit)
            pair.same("BITPOS", "r", rng.choice("01"), start, end, *unit)
            pair.same("BITPOS", "r", rng.choice("01"), start)
            pair.same("SETBIT", "r", str(rng.randint(0, 60)), rng.choice("01"))
            pair.same("GETBIT", "r", str(rng.randint(0, 60)))
        pair.same("GET", "r")


def test_keyspace_events(pair):
    subs = []
    for client in (pair.store, pair.redis):
        client.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        sub = RawClient(client.sock.getpeername()[1])
        sub.call("PSUBSCRIBE", "__key*@0__:*")
        subs.append(sub)
    for args in (
        ["SETBIT", "k", "3", "1"],
        ["SETBIT", "k", "3", "1"],
        ["SETBIT", "k", "3", "0"],
        ["SETBIT", "k", "3", "0"],
        ["SETBIT", "k", "30", "0"],
        ["SETBIT", "z", "0", "0"],
        ["GETBIT", "nokey", "1"],
        ["BITCOUNT", "nokey"],
        ["BITPOS", "nokey", "1"],
        ["SET", "end-marker", "1"],
    ):
        pair.same(*args)
    ours, theirs = (sub.read_until_set_event() for sub in subs)
    assert ours == theirs
    for sub in subs:
        sub.close()


@pytest.mark.parametrize(
    "name", ["setbit", "getbit", "bitcount", "bitpos", "bitop", "bitfield", "bitfield_ro"]
)
def test_command_info(pair, name):
    ours, theirs = pair.call("COMMAND", "INFO", name)
    assert (
        command_info_head(ours)[:6] == command_info_head(theirs)[:6]
    )  # ACL @bitmap: see introspection


def test_bitop(pair, proto):
    pair.same("SET", "a", b"\x0f\xf0\xaa")
    pair.same("SET", "b", b"\xff\x01")
    pair.same("SET", "empty", "")
    pair.same("SET", "num", "123")
    pair.same("SET", "d", "old", "EX", "100")
    pair.same("RPUSH", "l", "x")
    for args in (
        ["AND", "d", "a", "b"],
        ["or", "d", "a", "b"],
        ["XOR", "d", "a", "b", "a"],
        ["NOT", "d", "a"],
        ["AND", "d", "a", "nokey"],
        ["OR", "d", "nokey", "b"],
        ["NOT", "d", "nokey"],
        ["OR", "d", "empty"],
        ["XOR", "d", "num", "a"],
        ["NOT", "a", "a"],
        ["NOT", "d", "a", "b"],
        ["NAND", "d", "a"],
        ["AND", "d", "a", "l"],
        ["AND", "d", "l", "nokey"],
        ["AND", "d"],
        ["OR", "l", "a"],
    ):
        pair.same("BITOP", *args)
        pair.same("GET", "d")
        pair.same("TTL", "d")
    pair.same("GET", "a")
    pair.same("TYPE", "l")


def test_bitop_events(pair):
    subs = []
    for client in (pair.store, pair.redis):
        client.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        sub = RawClient(client.sock.getpeername()[1])
        sub.call("PSUBSCRIBE", "__key*@0__:*")
        subs.append(sub)
    for args in (
        ["SET", "a", "x"],
        ["BITOP", "OR", "d", "a"],
        ["BITOP", "OR", "d", "nokey"],
        ["BITOP", "OR", "d", "nokey"],
        ["BITOP", "NOT", "n", "a"],
        ["SET", "end-marker", "1"],
    ):
        pair.same(*args)
    ours, theirs = (sub.read_until_set_event() for sub in subs)
    assert ours == theirs
    for sub in subs:
        sub.close()


def test_bitfield(pair, proto):
    pair.same("SET", "k", b"\x81\x7f\x00\xff", "EX", "100")
    for ops in (
        ["GET", "u8", "0"],
        ["GET", "i8", "0"],
        ["GET", "i5", "3", "GET", "u3", "#2", "GET", "i64", "0"],
        ["GET", "u63", "1"],
        ["GET", "i1", "0"],
        ["GET", "u4", "100"],
        ["SET", "i8", "0", "-1"],
        ["SET", "u4", "#1", "15", "GET", "u8", "0"],
        ["INCRBY", "i8", "8", "100"],
        ["INCRBY", "i8", "8", "100"],
        ["OVERFLOW", "SAT", "INCRBY", "i8", "8", "100"],
        ["OVERFLOW", "FAIL", "INCRBY", "i8", "8", "100"],
        [
            "OVERFLOW",
            "fail",
            "INCRBY",
            "u2",
            "0",
            "1",
            "OVERFLOW",
            "WRAP",
            "INCRBY",
            "u2",
            "0",
            "7",
        ],
        ["OVERFLOW", "SAT", "INCRBY", "u8", "16", "-300"],
        ["OVERFLOW", "WRAP", "INCRBY", "u8", "16", "-300"],
        ["SET", "u8", "40", "-1"],
        ["OVERFLOW", "SAT", "SET", "u8", "40", "-1"],
        ["OVERFLOW", "FAIL", "SET", "u8", "40", "-1"],
        ["OVERFLOW", "SAT", "SET", "i4", "0", "100"],
        ["SET", "i4", "0", "100"],
        ["SET", "i64", "64", "-9223372036854775808"],
        ["INCRBY", "i64", "64", "-1"],
        ["OVERFLOW", "SAT", "INCRBY", "i64", "64", "-1"],
        ["OVERFLOW", "SAT", "INCRBY", "u63", "0", "9223372036854775807"],
        ["SET", "u1", "7", "1"],
        [],
    ):
        pair.same("BITFIELD", "k", *ops)
        pair.same("GET", "k")
    pair.same("TTL", "k")
    pair.same("RPUSH", "l", "x")
    for args in (
        ["k", "GET", "u64", "0"],
        ["k", "GET", "i65", "0"],
        ["k", "GET", "I8", "0"],
        ["k", "GET", "u0", "0"],
        ["k", "GET", "x8", "0"],
        ["k", "GET", "u8", "-1"],
        ["k", "GET", "u8", "#-1"],
        ["k", "GET", "u8", "x"],
        ["k", "GET", "u8", "4294967296"],
        ["k", "SET", "u8", "0", "x"],
        ["k", "OVERFLOW", "BAD"],
        ["k", "OVERFLOW"],
        ["k", "GET", "u8"],
        ["k", "FOO"],
        ["k", "SET", "u8", "0"],
        ["l", "GET", "u8", "0"],
        ["l", "SET", "u8", "0", "1"],
        ["nokey", "GET", "u8", "0"],
        ["nokey", "OVERFLOW", "FAIL"],
        ["new", "OVERFLOW", "FAIL", "SET", "i4", "0", "100"],
        ["k", "GET", "i8", "#4294967295"],
    ):
        pair.same("BITFIELD", *args)
    pair.same("EXISTS", "new")
    for args in (
        ["k", "GET", "u8", "0"],
        ["k", "GET", "u8", "0", "SET", "u8", "0", "1"],
        ["k", "OVERFLOW", "SAT"],
        ["nokey", "GET", "i8", "0"],
        ["k", "SET", "u8", "0", "x"],
        ["l", "GET", "u8", "0"],
        ["k", "INCRBY", "u8", "0", "1"],
    ):
        pair.same("BITFIELD_RO", *args)


def test_bitfield_events(pair):
    subs = []
    for client in (pair.store, pair.redis):
        client.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        sub = RawClient(client.sock.getpeername()[1])
        sub.call("PSUBSCRIBE", "__key*@0__:*")
        subs.append(sub)
    for args in (
        ["BITFIELD", "k", "SET", "u8", "0", "0"],
        ["BITFIELD", "k", "SET", "u8", "0", "0"],
        ["BITFIELD", "k", "SET", "u8", "0", "5"],
        ["BITFIELD", "k", "GET", "u8", "0"],
        ["BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1000"],
        ["BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u8", "100", "1000"],
        ["BITFIELD", "n", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1000"],
        ["SET", "end-marker", "1"],
    ):
        pair.same(*args)
    ours, theirs = (sub.read_until_set_event() for sub in subs)
    assert ours == theirs
    for sub in subs:
        sub.close()
