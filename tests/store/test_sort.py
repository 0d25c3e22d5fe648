"""SORT and SORT_RO, compared with redis-server."""

import pytest

from tests.store.helpers import run


@pytest.fixture
def data(pair):
    run(
        pair,
        "RPUSH l 3 10 1 2.5 -4 0x10 7",
        "RPUSH words banana apple cherry date",
        "SADD s 5 3 9 1",
        "ZADD z 3 c 1 a 2 b 5 e 4 d",
        "MSET w_3 30 w_10 1 w_1 100 w_2.5 2 w_-4 50 w_0x10 5 w_7 7",
        "HSET h_3 f x3 g 3",
        "HSET h_1 f x1 g 1",
        "HSET h_10 f x10",
        "MSET o_3 three o_1 one o_7 seven",
        "MSET wa_banana d wa_apple c wa_cherry b wa_date a",
    )
    return pair


@pytest.mark.parametrize(
    "command",
    [
        "SORT l",
        "SORT l DESC",
        "SORT l LIMIT 1 3",
        "SORT l LIMIT 2 -1",
        "SORT l LIMIT -5 2",
        "SORT l LIMIT 100 2",
        "SORT l LIMIT 0 0",
        "SORT l DESC LIMIT 1 2",
        "SORT l BY w_*",
        "SORT l BY w_* DESC LIMIT 0 3",
        "SORT l BY nosort",
        "SORT l BY nosort DESC",
        "SORT l BY nosort LIMIT 2 3",
        "SORT l BY nosort DESC LIMIT 2 3",
        "SORT l BY h_*->g",
        "SORT l GET # GET o_* GET h_*->f GET nokey GET h_*->",
        "SORT l BY w_* GET o_*",
        "SORT words ALPHA",
        "SORT words ALPHA DESC",
        "SORT words",
        "SORT words BY wa_* ALPHA",
        "SORT words BY wa_* ALPHA DESC LIMIT 1 2",
        "SORT s",
        "SORT s DESC GET #",
        "SORT z",
        "SORT z ALPHA",
        "SORT z BY nosort",
        "SORT z BY nosort DESC",
        "SORT z BY nosort LIMIT 1 2",
        "SORT z BY nosort DESC LIMIT 1 2",
        "SORT missing",
        "SORT missing BY x_* GET #",
        "SORT_RO l DESC",
        "SORT_RO words BY wa_* ALPHA GET #",
    ],
)
def test_sort_replies(data, proto, command):
    data.same(*command.split())


@pytest.mark.parametrize(
    "command",
    [
        "SORT",
        "SORT l BOGUS",
        "SORT l LIMIT 1",
        "SORT l LIMIT x 1",
        "SORT l LIMIT 1 99999999999999999999",
        "SORT l BY",
        "SORT l GET",
        "SORT l STORE",
        "SORT_RO l STORE dst",
        "SORT o_1",
        "SORT h_1",
        "SORT o_1 BOGUS",
        "SORT words BY w_*",
        "SORT l ALPHA BY nosort GET o_*",
    ],
)
def test_sort_errors(data, command):
    data.same(*command.split())


def test_sort_numbers_as_strtod_reads_them(pair):
    run(pair, "SET a x")
    for values in (
        ["1", " 2", "0x1f", "-inf", "inf", "1e3", ".5", "5."],
        ["1", "2 "],
        ["1", "nan"],
        ["1", ""],
        ["b", "a"],
    ):
        pair.same("DEL", "n")
        pair.same("RPUSH", "n", *values)
        pair.same("SORT", "n")
    pair.same("DEL", "n")
    pair.same("RPUSH", "n", "2", "1", "01", "1.0")  # equal numbers: ordered by their bytes
    pair.same("SORT", "n")
    pair.same("SORT", "n", "DESC")


def test_sort_refuses_numbers_out_of_a_double_range(store):
    """Redis too (strtod's ERANGE), but its errno then stays set and spoils every numeric
    SORT after it, so this one is not compared with the shared redis-server."""
    for value in ("1e400", "-1e400", "1e-400"):
        store.call("DEL", "n")
        store.call("RPUSH", "n", "1", value)
        assert (
            store.call("SORT", "n") == b"-ERR One or more scores can't be converted into double\r\n"
        )
    store.call("DEL", "n")
    store.call("RPUSH", "n", "1", "0e5", "0.000")
    assert store.call("SORT", "n") == b"*3\r\n$5\r\n0.000\r\n$3\r\n0e5\r\n$1\r\n1\r\n"


def test_sort_store(data, events):
    run(
        data,
        "SORT l STORE dst",
        "LRANGE dst 0 -1",
        "SORT l GET o_* STORE dst",
        "LRANGE dst 0 -1",
        "SORT s BY nosort STORE sdst",  # a set is sorted (ALPHA) when stored
        "LRANGE sdst 0 -1",
        "SET str v",
        "EXPIRE str 100",
        "SORT l LIMIT 0 2 STORE str",
        "TYPE str",
        "TTL str",
        "SORT missing STORE dst",
        "EXISTS dst",
        "SORT missing STORE dst",
        "SORT words BY w_* STORE dst",
    )
    ours, theirs = events.collect()
    assert ours == theirs


def test_sort_store_wakes_a_blocked_pop(pair, store_port, redis_port):
    from tests.store.rawclient import RawClient

    got = []
    for client, port in ((pair.store, store_port), (pair.redis, redis_port)):
        client.call("RPUSH", "src", "2", "1")
        with RawClient(port) as waiter:
            waiter.send("BLPOP", "dst", "5")
            client.call("PING")
            while client.call("CLIENT", "LIST", "TYPE", "normal").count(b"cmd=blpop") == 0:
                pass
            got.append([client.call("SORT", "src", "STORE", "dst"), waiter.read_reply()])
    assert got[0] == got[1] == [b":2\r\n", b"*2\r\n$3\r\ndst\r\n$1\r\n1\r\n"]


def test_sort_of_a_set_by_a_constant_is_ordered_inside_a_script(data):
    """Redis orders a set's SORT ... BY <constant> output when a script runs it (its
    CLIENT_SCRIPT rule), as it does with STORE; outside a script the order is the set's own."""
    run(data, "SADD letters c a b zz aa")
    data.same("EVAL", "return redis.call('SORT', KEYS[1], 'BY', 'nosort')", "1", "letters")
    data.same("EVAL", "return redis.call('SORT', KEYS[1], 'BY', 'x', 'GET', '#')", "1", "s")
    data.same("EVAL", "return redis.call('SORT', KEYS[1], 'BY', 'nosort')", "1", "l")
