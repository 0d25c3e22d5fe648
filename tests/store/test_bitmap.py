"""Bitmap commands (presence/store/commands/bitmap.py), differential against redis-server."""
import random

import pytest

from tests.store.rawclient import RawClient
from tests.store.test_hash import command_info_head

VALUE = b"\x00\xff\x0f\xf0\x81\x00\x01\x80"


@pytest.fixture(params=[2, 3])
def proto(request, pair):
    """Runs the test under RESP2 and RESP3 (HELLO 3 on both connections)."""
    if request.param == 3:
        pair.store.call("HELLO", "3")
        pair.redis.call("HELLO", "3")
    return request.param


def test_setbit_getbit(pair, proto):
    for args in (["SETBIT", "k", "7", "1"], ["SETBIT", "k", "7", "1"], ["SETBIT", "k", "0", "1"], ["GET", "k"],
                 ["SETBIT", "k", "100", "0"], ["GET", "k"], ["SETBIT", "k", "0", "0"], ["GETBIT", "k", "0"],
                 ["GETBIT", "k", "7"], ["GETBIT", "k", "100"], ["GETBIT", "k", "1000"], ["GETBIT", "nokey", "3"],
                 ["SET", "e", "x", "EX", "100"], ["SETBIT", "e", "1", "0"], ["TTL", "e"], ["GET", "e"],
                 ["SETBIT", "k", "-1", "1"], ["SETBIT", "k", "x", "1"], ["SETBIT", "k", "1", "2"],
                 ["SETBIT", "k", "1", "-1"], ["SETBIT", "k", "1", "x"], ["SETBIT", "k", "x", "x"],
                 ["SETBIT", "k", "4294967296", "1"], ["SETBIT", "k", "9223372036854775807", "1"],
                 ["GETBIT", "k", "-1"], ["GETBIT", "k", "x"], ["GETBIT", "k", "4294967296"],
                 ["SETBIT", "k", "1"], ["GETBIT", "k"]):
        pair.same(*args)
    pair.same("RPUSH", "l", "a")
    for args in (["SETBIT", "l", "1", "1"], ["GETBIT", "l", "1"], ["SETBIT", "l", "x", "1"],
                 ["SETBIT", "l", "1", "x"], ["GETBIT", "l", "x"]):
        pair.same(*args)


RANGES = [[], ["0", "-1"], ["1", "2"], ["-3", "-1"], ["-1", "-3"], ["-100", "100"], ["5", "2"], ["8", "10"],
          ["0", "0", "BYTE"], ["1", "2", "byte"], ["0", "-1", "BIT"], ["3", "12", "bit"], ["5", "5", "BIT"],
          ["-5", "-1", "BIT"], ["-1", "-5", "BIT"], ["9", "9", "BIT"], ["8", "15", "BIT"], ["60", "70", "BIT"],
          ["-100", "3", "BIT"], ["0", "63", "BIT"], ["64", "64", "BIT"], ["2", "1", "BIT"], ["-2", "-2", "bit"]]


def test_bitcount(pair, proto):
    pair.same("SET", "k", VALUE)
    pair.same("SET", "empty", "")
    for options in RANGES:
        pair.same("BITCOUNT", "k", *options)
        pair.same("BITCOUNT", "empty", *options)
        pair.same("BITCOUNT", "nokey", *options)
    pair.same("RPUSH", "l", "a")
    for args in (["k", "0"], ["k", "0", "1", "WORD"], ["k", "x", "1"], ["k", "0", "x"], ["k", "0", "1", "BIT", "x"],
                 ["nokey", "x", "1"], ["nokey", "0"], ["l"], ["l", "0", "1"], ["l", "x", "1"], ["l", "0"], []):
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
    for args in (["k", "2"], ["k", "x"], ["k", "-1"], ["k", "1", "x"], ["k", "1", "0", "x"], ["k", "1", "0", "1", "WORD"],
                 ["k", "1", "0", "1", "BIT", "x"], ["nokey", "1", "x"], ["nokey", "2"], ["l", "1"], ["l", "1", "x"],
                 ["l", "x"], ["k"], ["k", "1", "x", "1", "BIT"], ["k", "0", "0", "x", "BIT"]):
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
    for args in (["SETBIT", "k", "3", "1"], ["SETBIT", "k", "3", "1"], ["SETBIT", "k", "3", "0"],
                 ["SETBIT", "k", "3", "0"], ["SETBIT", "k", "30", "0"], ["SETBIT", "z", "0", "0"],
                 ["GETBIT", "nokey", "1"], ["BITCOUNT", "nokey"], ["BITPOS", "nokey", "1"], ["SET", "end-marker", "1"]):
        pair.same(*args)
    ours, theirs = (_drain(sub) for sub in subs)
    assert ours == theirs
    for sub in subs:
        sub.close()


def _drain(sub):
    """Every message up to the `set` event of the final SET marker."""
    messages = []
    while not messages or b"__keyevent@0__:set" not in messages[-1]:
        messages.append(sub.read_reply())
    return messages


@pytest.mark.parametrize("name", ["setbit", "getbit", "bitcount", "bitpos"])
def test_command_info(pair, name):
    ours, theirs = pair.call("COMMAND", "INFO", name)
    assert command_info_head(ours)[:6] == command_info_head(theirs)[:6]  # ACL @bitmap: see introspection
