"""The sans-IO codec (presence/store/resp.py), without sockets.

Every parser test runs twice: on the reference parser and on the hiredis fast path
(`accelerate=True`), which must yield the same commands and the same errors. The error
texts are Redis's own (networking.c); tests/store/test_fuzz.py checks them against a
live redis-server.
"""

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presence.store.resp import (
    NIL_ARRAY,
    Double,
    Error,
    ProtocolError,
    Push,
    RequestParser,
    Set,
    Status,
    Verbatim,
    _encoded_total,
    encode,
    split_inline,
)

try:
    import hiredis  # noqa: F401

    PATHS = [False, True]
except ImportError:
    PATHS = [False]


@pytest.fixture(params=PATHS, ids=lambda fast: "hiredis" if fast else "reference")
def accelerate(request):
    return request.param


def parse(data: bytes, accelerate: bool = False, max_bulk_len: int | None = None) -> list:
    """Feed `data` at once; return the commands, then ("error", text) if parsing failed."""
    parser = _parser(accelerate, max_bulk_len)
    parser.feed(data)
    return drain(parser)


def _parser(accelerate, max_bulk_len=None):
    if max_bulk_len is None:
        return RequestParser(accelerate=accelerate)
    return RequestParser(max_bulk_len, accelerate=accelerate)


def drain(parser) -> list:
    out = []
    try:
        while (cmd := parser.next_command()) is not None:
            out.append(cmd)
    except ProtocolError as exc:
        out.append(("error", str(exc)))
    return out


def feed_in_chunks(data: bytes, cuts: list[int], accelerate: bool) -> list:
    parser = _parser(accelerate)
    out = []
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for a, b in itertools.pairwise(bounds):
        parser.feed(data[a:b])
        out += drain(parser)
        if out and type(out[-1]) is tuple:
            break
    return out


def mb(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


# ------------------------------------------------------------ whole, split, pipelined


def test_whole_multibulk(accelerate):
    assert parse(mb(b"SET", b"k", b"v"), accelerate) == [[b"SET", b"k", b"v"]]


def test_binary_and_empty_arguments(accelerate):
    args = [b"SET", b"", b"\r\n\x00\xff*$"]
    assert parse(mb(*args), accelerate) == [args]


def test_byte_by_byte(accelerate):
    data = mb(b"SET", b"key", b"x" * 300) + b"GET key\r\n" + mb(b"PING")
    parser = _parser(accelerate)
    out = []
    for i in range(len(data)):
        parser.feed(data[i : i + 1])
        out += drain(parser)
    assert out == [[b"SET", b"key", b"x" * 300], [b"GET", b"key"], [b"PING"]]


def test_incomplete_returns_none_until_complete(accelerate):
    parser = _parser(accelerate)
    parser.feed(b"*2\r\n$3\r\nGET\r\n$1\r")
    assert parser.next_command() is None
    parser.feed(b"\nk")
    assert parser.next_command() is None
    parser.feed(b"\r\n")
    assert parser.next_command() == [b"GET", b"k"]
    assert parser.next_command() is None


def test_pipelined_commands(accelerate):
    data = b"".join(mb(b"INCR", b"n%d" % i) for i in range(100))
    assert parse(data, accelerate) == [[b"INCR", b"n%d" % i] for i in range(100)]


def test_mixed_inline_and_multibulk(accelerate):
    data = mb(b"PING") + b"SET a b\r\n" + mb(b"GET", b"a") + b"ECHO 'x y'\r\n" + mb(b"PING")
    assert parse(data, accelerate) == [
        [b"PING"],
        [b"SET", b"a", b"b"],
        [b"GET", b"a"],
        [b"ECHO", b"x y"],
        [b"PING"],
    ]


def test_empty_lines_and_empty_multibulks_are_skipped(accelerate):
    data = b"\r\n\r\n   \r\n*0\r\n*-1\r\n" + mb(b"PING") + b"*0\r\n\r\nPING\r\n"
    assert parse(data, accelerate) == [[b"PING"], [b"PING"]]


def test_buffered_counts_unconsumed_bytes(accelerate):
    parser = _parser(accelerate)
    parser.feed(b"*1\r\n$4\r\nPI")
    assert parser.next_command() is None
    assert parser.buffered() > 0


# ------------------------------------------------------------ inline commands


@pytest.mark.parametrize(
    "line, args",
    [
        (b"GET key", [b"GET", b"key"]),
        (b"  SET   a \t b  ", [b"SET", b"a", b"b"]),
        (b'SET "a b" c', [b"SET", b"a b", b"c"]),
        (b"SET 'a b' c", [b"SET", b"a b", b"c"]),
        (b'ECHO "\\x41\\x42"', [b"ECHO", b"AB"]),
        (b'ECHO "\\x4"', [b"ECHO", b"x4"]),
        (b'ECHO "\\n\\r\\t\\b\\a\\\\\\""', [b"ECHO", b'\n\r\t\b\x07\\"']),
        (b"ECHO 'it\\'s'", [b"ECHO", b"it's"]),
        (b"ECHO 'a\\nb'", [b"ECHO", b"a\\nb"]),
        (b'ECHO ""', [b"ECHO", b""]),
        (b'ECHO a"b c"', [b"ECHO", b"ab c"]),
    ],
)
def test_inline_splitting(line, args, accelerate):
    assert split_inline(line) == args
    assert parse(line + b"\r\n", accelerate) == [args]


@pytest.mark.parametrize("line", [b'GET "abc', b"GET 'abc", b'GET "a"b', b"GET 'a'b", b'"'])
def test_inline_unbalanced_quotes(line, accelerate):
    assert parse(line + b"\r\n", accelerate) == [
        ("error", "Protocol error: unbalanced quotes in request")
    ]


def test_inline_terminated_by_bare_newline(accelerate):
    assert parse(b"PING\nECHO a\n", accelerate) == [[b"PING"], [b"ECHO", b"a"]]


def test_too_big_inline_request(accelerate):
    assert parse(b"x" * (64 * 1024 + 1), accelerate) == [
        ("error", "Protocol error: too big inline request")
    ]


# ------------------------------------------------------------ garbage


@pytest.mark.parametrize(
    "data, error",
    [
        (b"*abc\r\n", "Protocol error: invalid multibulk length"),
        (b"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\nx\r\n", "Protocol error: expected '$', got 'x'"),
        (b"*2\r\n$1\r\na\r\n:1\r\n", "Protocol error: expected '$', got ':'"),
        (b"*1\r\n+PING\r\n", "Protocol error: expected '$', got '+'"),
        (b"*" + b"1" * (64 * 1024 + 1), "Protocol error: too big mbulk count string"),
        (b"*1\r\n$" + b"1" * (64 * 1024 + 1), "Protocol error: too big bulk count string"),
    ],
)
def test_garbage_gets_redis_error_text(data, error, accelerate):
    assert parse(data, accelerate) == [("error", error)]


@pytest.mark.parametrize("header", [b"*+1", b"* 1", b"*01", b"*1_0"])
def test_multibulk_count_is_strict(header):
    assert parse(header + b"\r\n$4\r\nPING\r\n") == [
        ("error", "Protocol error: invalid multibulk length")
    ]


@pytest.mark.parametrize("header", [b"$+4", b"$ 4", b"$04"])
def test_bulk_length_is_strict(header):
    assert parse(b"*1\r\n" + header + b"\r\nPING\r\n") == [
        ("error", "Protocol error: invalid bulk length")
    ]


def test_expected_dollar_waits_for_the_line(accelerate):
    parser = _parser(accelerate)
    parser.feed(b"*1\r\n*")
    assert parser.next_command() is None
    parser.feed(b"\r\n")
    assert drain(parser) == [("error", "Protocol error: expected '$', got '*'")]


@pytest.mark.parametrize("byte, shown", [(b"\r", b" "), (b"\n", b" "), (b"\xff", b"\xff")])
def test_expected_dollar_error_quotes_the_raw_byte(byte, shown):
    parser = RequestParser(accelerate=False)
    parser.feed(b"*1\r\n" + byte + b"x\r\n")
    with pytest.raises(ProtocolError) as info:
        parser.next_command()
    assert (
        b"-ERR %s\r\n" % str(info.value).encode("utf-8", "surrogateescape")
        == b"-ERR Protocol error: expected '$', got '%s'\r\n" % shown
    )


def test_commands_before_garbage_are_returned(accelerate):
    assert parse(mb(b"PING") + b"*x\r\n", accelerate) == [
        [b"PING"],
        ("error", "Protocol error: invalid multibulk length"),
    ]


def test_bulk_over_limit_is_refused_from_the_header_reference():
    parser = RequestParser(100, accelerate=False)
    parser.feed(b"*2\r\n$3\r\nSET\r\n$101\r\n")
    with pytest.raises(ProtocolError, match=r"^Protocol error: invalid bulk length$"):
        parser.next_command()


@pytest.mark.skipif(True not in PATHS, reason="hiredis not installed")
def test_bulk_over_limit_is_refused_from_the_header_fast_path():
    parser = RequestParser(100, accelerate=True)
    parser.feed(b"*2\r\n$3\r\nSET\r\n$101\r\n")
    with pytest.raises(ProtocolError, match=r"^Protocol error: invalid bulk length$"):
        parser.next_command()


def test_bulk_at_limit_is_accepted(accelerate):
    assert parse(mb(b"x" * 100), accelerate, max_bulk_len=100) == [[b"x" * 100]]


def test_large_partial_bulk_is_bounded_on_the_fast_path():
    """Past 64 KiB the fast path hands over to the reference parser, which checks the limit."""
    parser = RequestParser(100_000, accelerate=True)
    parser.feed(b"*1\r\n$200000\r\n" + b"x" * 70_000)
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        parser.next_command()


# ------------------------------------------------------------ the fast path's hand-over


@pytest.mark.skipif(True not in PATHS, reason="hiredis not installed")
@pytest.mark.parametrize("cut", [1, 4, 5])
def test_fast_path_keeps_a_partial_header_for_replay(cut):
    data = mb(b"+")
    assert feed_in_chunks(data, [cut], True) == [[b"+"]]


@pytest.mark.skipif(True not in PATHS, reason="hiredis not installed")
@pytest.mark.parametrize("cut", range(1, 22))
def test_fast_path_split_anywhere_without_suspicious_bytes(cut):
    data = mb(b"a") + mb(b"b")
    assert feed_in_chunks(data, [cut], True) == [[b"a"], [b"b"]]


@pytest.mark.skipif(True not in PATHS, reason="hiredis not installed")
@pytest.mark.parametrize("cut", range(1, 52))
def test_a_cut_command_is_never_completed_by_the_probe(cut):
    # hiredis is fed `*0\r\n` after each chunk. Cut just after `$2\r\n`, those four bytes
    # would complete the command as GET "*0": it must come from the client's bytes only.
    data = mb(b"GET", b"ab") + mb(b"SET", b"k", b"*0")
    assert feed_in_chunks(data, [cut], True) == [[b"GET", b"ab"], [b"SET", b"k", b"*0"]]
    assert take_in_chunks(data, [cut], True, 64) == [[b"GET", b"ab"], [b"SET", b"k", b"*0"]]


@pytest.mark.skipif(True not in PATHS, reason="hiredis not installed")
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_empty_multibulks_sent_by_the_client_are_skipped_on_the_fast_path(where):
    empty = b"*0\r\n"
    data = {
        "start": empty + mb(b"a") + mb(b"b"),
        "middle": mb(b"a") + empty + mb(b"b"),
        "end": mb(b"a") + mb(b"b") + empty,
    }[where]
    assert take_in_chunks(data, [], True, 64) == [[b"a"], [b"b"]]
    parser = _parser(True)
    assert parser.take(data, 64) + parser.take(mb(b"c"), 64) == [[b"a"], [b"b"], [b"c"]]


def test_encoded_total_counts_what_the_commands_take_on_the_wire():
    cmds = [[b"GET", b"k"], [b"SET", b"x" * 1000, b""], [b"PING"]]
    assert _encoded_total(cmds) == len(b"".join(mb(*c) for c in cmds))
    assert _encoded_total([]) == 0


# ------------------------------------------------------------ properties

# Each property runs on the reference parser, and again on the fast path.

commands = st.lists(
    st.lists(st.binary(max_size=40), min_size=1, max_size=6), min_size=1, max_size=8
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(commands, st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_encoded_commands_parse_back_in_any_split(cmds, cuts):
    data = b"".join(mb(*c) for c in cmds)
    assert feed_in_chunks(data, cuts, False) == cmds


@pytest.mark.skipif(True not in PATHS, reason="hiredis not installed")
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(commands, st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_encoded_commands_parse_back_in_any_split_fast_path(cmds, cuts):
    data = b"".join(mb(*c) for c in cmds)
    assert feed_in_chunks(data, cuts, True) == cmds


inline_words = st.lists(
    st.from_regex(rb"[A-Za-z0-9_:.-]{1,12}", fullmatch=True), min_size=1, max_size=5
)


mixed = st.lists(
    st.one_of(inline_words.map(lambda w: ("inline", w)), commands.map(lambda c: ("mb", c[0])))
)
cut_points = st.lists(st.integers(min_value=0, max_value=10_000), max_size=12)


def _mixed_stream(items) -> bytes:
    return b"".join(
        b" ".join(args) + b"\r\n" if kind == "inline" else mb(*args) for kind, args in items
    )


@settings(max_examples=200)
@given(mixed, cut_points)
def test_inline_and_multibulk_mixed_in_any_split(items, cuts):
    assert feed_in_chunks(_mixed_stream(items), cuts, False) == [args for _, args in items]


@pytest.mark.skipif(True not in PATHS, reason="hiredis not installed")
@settings(max_examples=200)
@given(mixed, cut_points)
def test_inline_and_multibulk_mixed_in_any_split_fast_path(items, cuts):
    assert feed_in_chunks(_mixed_stream(items), cuts, True) == [args for _, args in items]


@settings(max_examples=500)
@given(
    st.binary(max_size=300),
    st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    st.sampled_from(PATHS),
)
def test_random_bytes_only_ever_raise_protocol_error(data, cuts, accelerate):
    feed_in_chunks(data, cuts, accelerate)  # any exception but ProtocolError fails the test


@settings(max_examples=300)
@given(
    st.lists(
        st.sampled_from(
            [
                b"*",
                b"$",
                b"1",
                b"3",
                b"-",
                b"\r\n",
                b"\r",
                b"\n",
                b"x",
                b'"',
                b"'",
                b"\\",
                b" ",
                b"*1\r\n",
                b"$3\r\n",
                b"abc",
            ]
        ),
        max_size=40,
    ),
    st.sampled_from(PATHS),
)
def test_resp_like_garbage_only_ever_raises_protocol_error(parts, accelerate):
    feed_in_chunks(b"".join(parts), list(range(0, 200, 7)), accelerate)


@pytest.mark.skipif(True not in PATHS, reason="hiredis not installed")
@settings(max_examples=300)
@given(st.binary(max_size=200), st.lists(st.integers(min_value=0, max_value=300), max_size=6))
def test_fast_path_agrees_with_reference(data, cuts):
    assert feed_in_chunks(data, cuts, True) == feed_in_chunks(data, cuts, False)


# ------------------------------------------------------------ encoder


@pytest.mark.parametrize(
    "value, resp2, resp3",
    [
        (b"abc", b"$3\r\nabc\r\n", b"$3\r\nabc\r\n"),
        (b"", b"$0\r\n\r\n", b"$0\r\n\r\n"),
        ("h\u00e9", b"$3\r\nh\xc3\xa9\r\n", b"$3\r\nh\xc3\xa9\r\n"),
        (bytearray(b"ab"), b"$2\r\nab\r\n", b"$2\r\nab\r\n"),
        (42, b":42\r\n", b":42\r\n"),
        (-1, b":-1\r\n", b":-1\r\n"),
        (None, b"$-1\r\n", b"_\r\n"),
        (NIL_ARRAY, b"*-1\r\n", b"_\r\n"),
        ([], b"*0\r\n", b"*0\r\n"),
        ([b"a", 1, None], b"*3\r\n$1\r\na\r\n:1\r\n$-1\r\n", b"*3\r\n$1\r\na\r\n:1\r\n_\r\n"),
        ((b"a",), b"*1\r\n$1\r\na\r\n", b"*1\r\n$1\r\na\r\n"),
        ([[b"x"], []], b"*2\r\n*1\r\n$1\r\nx\r\n*0\r\n", b"*2\r\n*1\r\n$1\r\nx\r\n*0\r\n"),
        (Status("OK"), b"+OK\r\n", b"+OK\r\n"),
        (Error("ERR bad"), b"-ERR bad\r\n", b"-ERR bad\r\n"),
        (
            {b"k": 1, b"j": b"v"},
            b"*4\r\n$1\r\nk\r\n:1\r\n$1\r\nj\r\n$1\r\nv\r\n",
            b"%2\r\n$1\r\nk\r\n:1\r\n$1\r\nj\r\n$1\r\nv\r\n",
        ),
        ({}, b"*0\r\n", b"%0\r\n"),
        (Set([b"a"]), b"*1\r\n$1\r\na\r\n", b"~1\r\n$1\r\na\r\n"),
        (Double(1.5), b"$3\r\n1.5\r\n", b",1.5\r\n"),
        (Double(3.0), b"$1\r\n3\r\n", b",3\r\n"),
        (Double(float("inf")), b"$3\r\ninf\r\n", b",inf\r\n"),
        (Double(float("-inf")), b"$4\r\n-inf\r\n", b",-inf\r\n"),
        (Double(0.1), b"$19\r\n0.10000000000000001\r\n", b",0.10000000000000001\r\n"),
        (
            Push([b"message", b"c", b"m"]),
            b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
            b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
        ),
        (Verbatim("a\r\nb"), b"$4\r\na\r\nb\r\n", b"=8\r\ntxt:a\r\nb\r\n"),
        (True, b":1\r\n", b"#t\r\n"),
        (False, b":0\r\n", b"#f\r\n"),
    ],
)
def test_encode(value, resp2, resp3):
    assert encode(value, 2) == resp2
    assert encode(value, 3) == resp3


def test_encode_refuses_unknown_types():
    with pytest.raises(TypeError):
        encode(object())


# ------------------------------------------------------------ batches: read_commands, unread


def read_all_batches(parser, limit: int) -> list:
    """read_commands(limit) until a short batch; every batch must respect the limit."""
    out = []
    while True:
        batch = parser.read_commands(limit)
        assert len(batch) <= limit
        out += batch
        if len(batch) < limit:
            return out


@pytest.mark.parametrize("limit", [1, 3, 64])
def test_read_commands_returns_at_most_limit_and_keeps_the_rest(accelerate, limit):
    parser = _parser(accelerate)
    cmds = [[b"INCR", b"n%d" % i] for i in range(100)]
    parser.feed(b"".join(mb(*c) for c in cmds))
    assert read_all_batches(parser, limit) == cmds
    assert parser.read_commands(limit) == [] and parser.error is None


def test_unread_commands_come_back_first_then_the_new_ones(accelerate):
    parser = _parser(accelerate)
    parser.feed(mb(b"BLPOP", b"q", b"0") + mb(b"SET", b"a", b"1") + mb(b"GET", b"a"))
    first, *rest = parser.read_commands()
    assert first == [b"BLPOP", b"q", b"0"]
    parser.unread(rest)  # the client blocked: the rest waits
    assert parser.buffered() > 0
    parser.feed(mb(b"PING") + mb(b"ECHO", b"x"))  # arrives while blocked
    assert parser.read_commands() == rest + [[b"PING"], [b"ECHO", b"x"]]
    parser.feed(mb(b"DEL", b"a"))  # the unread commands were not counted against a chunk
    assert parser.read_commands() == [[b"DEL", b"a"]]


def test_commands_before_a_fault_come_out_of_the_batch_and_the_error_stays(accelerate):
    parser = _parser(accelerate)
    parser.feed(mb(b"SET", b"a", b"1") + mb(b"GET", b"a") + b"*1\r\n+PING\r\n")
    assert parser.read_commands() == [[b"SET", b"a", b"1"], [b"GET", b"a"]]
    assert str(parser.error) == "Protocol error: expected '$', got '+'"
    assert parser.read_commands() == []
    with pytest.raises(ProtocolError):
        parser.next_command()


def test_a_nested_array_is_refused_like_redis_does(accelerate):
    data = mb(b"PING") + b"*2\r\n$3\r\nGET\r\n*1\r\n$1\r\na\r\n"
    assert parse(data, accelerate) == [
        [b"PING"],
        ("error", "Protocol error: expected '$', got '*'"),
    ]


@pytest.mark.skipif(True not in PATHS, reason="hiredis not installed")
def test_after_a_cut_command_the_rest_of_a_long_buffer_goes_back_to_hiredis(monkeypatch):
    reference_reads = []
    original = RequestParser._next_reference
    monkeypatch.setattr(
        RequestParser, "_next_reference", lambda self: reference_reads.append(1) or original(self)
    )
    cmds = [[b"SET", b"key:%d" % i, b"v" * (i % 40)] for i in range(400)]
    data = b"".join(mb(*c) for c in cmds)
    cut = len(mb(*cmds[0])) + 5  # inside the second command
    parser = RequestParser(accelerate=True)
    parser.feed(data[:cut])
    assert parser.read_commands() == cmds[:1]
    parser.feed(data[cut:])  # appended to the reference parser's buffer
    assert parser.read_commands() == cmds[1:]
    assert parser.buffered() == 0
    assert len(reference_reads) < 5  # the cut command only, not the 399 after it


def take_in_chunks(data: bytes, cuts: list[int], accelerate: bool, limit: int) -> list:
    """Like feed_in_chunks, through take(chunk, limit) and read_commands, as the server reads."""
    parser = _parser(accelerate)
    out = []
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for a, b in itertools.pairwise(bounds):
        batch = parser.take(data[a:b], limit)
        while True:
            assert len(batch) <= limit
            out += batch
            if len(batch) < limit:
                break
            batch = parser.read_commands(limit)
        if parser.error is not None:
            return out + [("error", str(parser.error))]
    return out


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mixed, cut_points, st.sampled_from([1, 2, 64]), st.sampled_from(PATHS))
def test_take_reads_what_feed_and_next_command_read(items, cuts, limit, accelerate):
    data = _mixed_stream(items)
    assert take_in_chunks(data, cuts, accelerate, limit) == [args for _, args in items]


@settings(max_examples=300)
@given(st.binary(max_size=200), cut_points, st.sampled_from([1, 64]), st.sampled_from(PATHS))
def test_take_meets_garbage_like_feed_and_next_command(data, cuts, limit, accelerate):
    assert take_in_chunks(data, cuts, accelerate, limit) == feed_in_chunks(data, cuts, accelerate)


def test_take_after_unread_returns_the_unread_commands_first(accelerate):
    parser = _parser(accelerate)
    _first, *rest = parser.take(mb(b"BLPOP", b"q", b"0") + mb(b"GET", b"a"))
    parser.unread(rest)
    assert parser.take(mb(b"PING"), 64) == [[b"GET", b"a"], [b"PING"]]
    assert parser.take(b"", 64) == []
