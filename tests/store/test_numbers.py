"""Cursor and scan-option parsing shared by SCAN, HSCAN, SSCAN and ZSCAN (numbers.py),
compared with redis-server."""

import pytest

CURSORS = ["", " 1", "1 ", "+0", "-0", "-", "+", "abc", "18446744073709551616", "0x1", "00"]


@pytest.fixture
def keys(pair):
    for command in (("HSET", "h", "f", "v"), ("SADD", "s", "m"), ("ZADD", "z", "1", "m")):
        pair.same(*command)
    return pair


@pytest.mark.parametrize("cursor", CURSORS)
@pytest.mark.parametrize("command", [("SCAN",), ("HSCAN", "h"), ("SSCAN", "s"), ("ZSCAN", "z")])
def test_cursor_errors(keys, command, cursor):
    ours, theirs = keys.call(*command, cursor)
    if theirs.startswith(b"-"):
        assert ours == theirs
    else:  # a valid cursor: the store's positions are its own, the shape is the same
        assert ours.startswith(b"*2\r\n") and theirs.startswith(b"*2\r\n"), (ours, theirs)


@pytest.mark.parametrize(
    "options",
    [
        ("COUNT", "0"),
        ("COUNT", "x"),
        ("MATCH",),
        ("TYPE", "string"),
        ("COUNT", "0", "TYPE", "string"),
        ("BOGUS", "1"),
        ("MATCH", "*", "COUNT", "5"),
    ],
)
@pytest.mark.parametrize("command", [("HSCAN", "h"), ("SSCAN", "s"), ("ZSCAN", "z")])
def test_scan_option_errors(keys, command, options):
    keys.same(*command, "0", *options)
