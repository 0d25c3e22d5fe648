"""Request-size limits, compared with redis-server 7.0: what an unauthenticated client may
send, how many arguments a command may have, and the errors of the size options."""

import pytest

from presence.testing import bundled_store, redis_server
from tests.store.helpers import Pair
from tests.store.rawclient import RawClient


@pytest.fixture(scope="module")
def secured():
    with (
        redis_server("--requirepass", "pw") as rport,
        bundled_store("--requirepass", "pw") as sport,
    ):
        yield sport, rport


def answers_then_closes(port: int, raw: bytes) -> bytes:
    """What the server writes before closing, after `raw` (answered at once, nothing buffered)."""
    with RawClient(port) as client:
        client.send_raw(raw)
        return client.read_all()


@pytest.mark.parametrize(
    "raw",
    [
        b"*1\r\n$400000000\r\n",  # a huge argument announced, none of it sent
        b"*1\r\n$16385\r\n",
        b"*11\r\n",
        b"*2147483647\r\n",
        b"*2147483648\r\n",  # over INT_MAX: invalid before unauthenticated
        b"*1\r\n$600000000\r\n",  # over proto-max-bulk-len: invalid before unauthenticated
    ],
)
def test_unauthenticated_client_is_refused_at_the_header(secured, raw):
    store, redis = (answers_then_closes(port, raw) for port in secured)
    assert store == redis
    assert store.startswith(b"-ERR Protocol error")


@pytest.mark.parametrize(
    "raw",
    [
        b"*10\r\n$3\r\nDEL\r\n" + b"$1\r\nk\r\n" * 9,
        b"*2\r\n$4\r\nECHO\r\n$16384\r\n" + b"x" * 16384 + b"\r\n",
    ],
    ids=["10-arguments", "16384-bytes"],
)
def test_unauthenticated_limits_are_inclusive(secured, raw):
    """At the limits both servers read the command and answer NOAUTH."""
    got = []
    for port in secured:
        with RawClient(port) as client:
            client.send_raw(raw)
            got.append(client.read_reply())
    assert got[0] == got[1]
    assert got[0].startswith(b"-NOAUTH")


def test_auth_in_the_same_pipeline_lifts_the_limits(secured):
    """Limits apply to each command as it is read: after AUTH, the next one may be large."""
    big = b"v" * 100_000
    raw = b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n" % (
        len(big),
        big,
    )
    raw += b"*2\r\n$6\r\nSTRLEN\r\n$1\r\nk\r\n"
    got = []
    for port in secured:
        with RawClient(port) as client:
            client.send_raw(raw)
            got.append([client.read_reply() for _ in range(3)])
    assert got[0] == got[1] == [b"+OK\r\n", b"+OK\r\n", b":100000\r\n"]


def test_authenticated_multibulk_over_int_max_is_invalid(pair):
    got = [
        answers_then_closes(port, b"*2147483648\r\n") for port in (pair.store_port, pair.redis_port)
    ]
    assert got[0] == got[1] == b"-ERR Protocol error: invalid multibulk length\r\n"


def test_more_than_a_million_arguments_are_accepted(pair):
    count = 1024 * 1024 + 1
    raw = b"*%d\r\n$6\r\nEXISTS\r\n%s" % (count + 1, b"$1\r\nk\r\n" * count)
    got = []
    for client in (pair.store, pair.redis):
        client.send_raw(raw)
        got.append(client.read_reply())
    assert got[0] == got[1] == b":0\r\n"


@pytest.mark.parametrize("value", ["1", "1048575", "0", "-1", "1mb", "abc"])
def test_proto_max_bulk_len_below_one_megabyte_is_refused(pair, value):
    pair.same("CONFIG", "SET", "proto-max-bulk-len", value)
    pair.same("CONFIG", "GET", "proto-max-bulk-len")
    pair.same("CONFIG", "SET", "proto-max-bulk-len", "536870912")


def test_db_index_out_of_range(pair):
    pair.same("SET", "k", "v")
    for index in ("99999999999", "2147483648", "-2147483649", "-1", "16", "1.5", "x"):
        pair.same("COPY", "k", "k2", "DB", index)
        pair.same("MOVE", "k", index)
        pair.same("SELECT", index)


def test_memory_usage_samples_errors(pair):
    pair.same("SET", "k", "v")
    for samples in ("-1", "-99999999999", "abc", "99999999999999999999"):
        pair.same("MEMORY", "USAGE", "k", "SAMPLES", samples)
    pair.same("MEMORY", "USAGE", "k", "SAMPLES")
    pair.same("MEMORY", "USAGE", "missing", "SAMPLES", "-1")


def test_unauthenticated_limits_are_kept_by_a_partial_header(secured):
    """A header cut in two still meets the limit once its end arrives."""
    got = []
    for port in secured:
        with RawClient(port) as client:
            client.send_raw(b"*1\r\n$4000")
            client.send_raw(b"00000\r\n")
            got.append(client.read_all())
    assert got[0] == got[1] == b"-ERR Protocol error: unauthenticated bulk length\r\n"


def test_pair_secured_helper_still_works(secured):
    pair = Pair(*secured)
    try:
        pair.same("AUTH", "pw")
        pair.same("SET", "k", "x" * 20000)
        pair.same("STRLEN", "k")
    finally:
        pair.close()


@pytest.mark.parametrize("count", [2147483647, 100000])
def test_a_huge_argument_count_costs_nothing_until_the_arguments_come(pair, count):
    """Announcing INT_MAX arguments is valid: both servers wait for them, allocate nothing
    up front (hiredis would: 16 GiB for INT_MAX), and keep answering everyone."""
    for port in (pair.store_port, pair.redis_port):
        with RawClient(port) as announcer, RawClient(port) as other:
            announcer.send_raw(b"*%d\r\n$4\r\nPING\r\n" % count)
            assert other.call("PING") == b"+PONG\r\n"
            host, own_port = announcer.sock.getsockname()[:2]
            assert other.call("CLIENT", "KILL", "ADDR", f"{host}:{own_port}") == b":1\r\n"
            assert announcer.read_all() == b""
