"""Cursor and scan-option parsing shared by SCAN, HSCAN, SSCAN and ZSCAN (numbers.py),
compared with redis-server."""

import pytest

from presence.store.numbers import string2ull

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


# Texts every float parser of numbers.py meets: strtod's syntax (hex, inf, nan, spaces),
# its ERANGE (overflow, underflow to zero, subnormals), and long doubles' wider range.
FLOATS = [
    "1.5",
    "-0",
    ".5",
    "5.",
    ".",
    "",
    " 1",
    "1 ",
    "1e",
    "1e5",
    "1_0",
    "0x1p3",
    "0x.8",
    "0x",
    "0x1p99999",
    "-0x1p99999",
    "1e400",
    "1e-400",
    "4e-320",
    "1e4000",
    "1e-5000",
    "0e-999",
    "inf",
    "-Infinity",
    "+inf",
    "nan",
    "-nan",
    "abc",
    "0.1",
]


@pytest.mark.parametrize("text", FLOATS)
def test_float_parsers(pair, text):
    """ZADD (getDoubleFromObject), ZRANGEBYSCORE (zslParseRange), SORT (strtod),
    INCRBYFLOAT and HINCRBYFLOAT (string2ld) read the same texts as Redis."""
    pair.same("DEL", "nz", "ns", "nf", "nh")
    pair.same("ZADD", "nz", text, "m")
    pair.same("ZRANGEBYSCORE", "nz", text, "+inf")
    pair.same("ZRANGEBYSCORE", "nz", "(" + text, "+inf")
    pair.same("RPUSH", "ns", text, "2")
    pair.same("SORT", "ns")
    pair.same("INCRBYFLOAT", "nf", text)
    pair.same("SET", "nf", text)
    pair.same("INCRBYFLOAT", "nf", "1")
    pair.same("HINCRBYFLOAT", "nh", "f", text)
    pair.same("HSET", "nh", "f", text)
    pair.same("HINCRBYFLOAT", "nh", "f", "0.1")
    pair.same("DEL", "nz", "ns", "nf", "nh")


@pytest.mark.parametrize(
    "text",
    [
        "1",
        "-1",
        "+1",
        " 1",
        "01",
        "-0",
        "9223372036854775807",
        "9223372036854775808",
        "",
        "-9223372036854775809",
        "18446744073709551616",
    ],
)
def test_integer_parsers(pair, text):
    """string2ll through INCRBY, SETRANGE's offset (getLongFromObject), SRANDMEMBER's count
    (getRangeLong) and SELECT (getInt), and the intset check of SMEMBERS's order."""
    pair.same("DEL", "ni", "nset")
    pair.same("INCRBY", "ni", text)
    pair.same("SRANDMEMBER", "nset", text)
    pair.same("SELECT", text)
    pair.same("SELECT", "0")
    pair.same("SADD", "nset", "3", text, "2")
    pair.same("OBJECT", "ENCODING", "nset")
    pair.same("SET", "ni", text)
    pair.same("OBJECT", "ENCODING", "ni")
    pair.same("OBJECT", "REFCOUNT", "ni")
    pair.same("DEL", "ni", "nset")


@pytest.mark.parametrize(
    "raw, value",
    [
        (b"0", 0),
        (b"18446744073709551615", (1 << 64) - 1),
        (b"18446744073709551616", None),
        (b"-1", None),
        (b"-9223372036854775809", (1 << 64) - 9223372036854775809),
        (b"  +7", 7),
        (b"7 ", None),
        (b"", None),
    ],
)
def test_string2ull_reads_as_redis(raw, value):
    """Redis's string2ull: negatives string2ll accepts are refused, others wrap as strtoull."""
    assert string2ull(raw) == value
