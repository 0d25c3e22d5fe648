"""List commands, differential against redis-server: replies, errors, RESP3, events, blocking."""

import asyncio
import random
import socket
import threading

import pytest

from presence.store.blocking import release
from presence.store.config import Config
from presence.store.server import Server
from tests.helpers import wait_until_async
from tests.store.helpers import command_info_head, wait_blocked, wait_closed, watch_outcome
from tests.store.rawclient import RawClient


def port_of(client: RawClient) -> int:
    return client.sock.getpeername()[1]


def test_push_pop_len(pair, proto):
    for args in (
        ["LPUSH", "l", "a", "b", "c"],
        ["RPUSH", "l", "d", "e"],
        ["LPUSHX", "l", "x"],
        ["RPUSHX", "l", "y", "z"],
        ["LPUSHX", "nokey", "x"],
        ["RPUSHX", "nokey", "x"],
        ["LLEN", "l"],
        ["LLEN", "nokey"],
        ["LPOP", "l"],
        ["RPOP", "l"],
        ["LPOP", "l", "2"],
        ["RPOP", "l", "2"],
        ["LPOP", "l", "0"],
        ["RPOP", "nokey"],
        ["RPOP", "nokey", "2"],
        ["LPOP", "nokey", "0"],
        ["LPOP", "l", "100"],
        ["EXISTS", "l"],
        ["LPOP", "l"],
        ["EXISTS", "nokey"],
    ):
        pair.same(*args)


def test_push_pop_errors(pair):
    pair.same("SET", "s", "x")
    for args in (
        ["LPUSH", "s", "a"],
        ["RPUSH", "s", "a"],
        ["LPUSHX", "s", "a"],
        ["RPUSHX", "s", "a"],
        ["LPUSH", "l"],
        ["LPOP", "s"],
        ["RPOP", "s", "1"],
        ["LPOP", "s", "0"],
        ["LLEN", "s"],
        ["LPOP", "l", "-1"],
        ["LPOP", "l", "x"],
        ["LPOP", "l", "1", "2"],
        ["RPOP", "l", "1", "2"],
        ["LPOP"],
        ["LLEN", "a", "b"],
    ):
        pair.same(*args)


def test_ranges_and_index(pair, proto):
    pair.same("RPUSH", "l", *"abcdefg")
    for start, stop in [
        ("0", "-1"),
        ("1", "3"),
        ("-3", "-1"),
        ("-100", "100"),
        ("5", "2"),
        ("7", "10"),
        ("-1", "-1"),
        ("-8", "-7"),
        ("0", "0"),
    ]:
        pair.same("LRANGE", "l", start, stop)
    for index in ("0", "3", "-1", "-7", "-8", "7", "100"):
        pair.same("LINDEX", "l", index)
    pair.same("LRANGE", "nokey", "0", "-1")
    pair.same("LINDEX", "nokey", "0")
    pair.same("SET", "s", "x")
    for args in (
        ["LRANGE", "l", "x", "1"],
        ["LRANGE", "s", "0", "1"],
        ["LRANGE", "nokey", "x", "1"],
        ["LRANGE", "s", "x", "1"],
        ["LINDEX", "l", "x"],
        ["LINDEX", "s", "0"],
        ["LINDEX", "nokey", "x"],
        ["LINDEX", "s", "x"],
    ):
        pair.same(*args)


def test_lset_lrem_ltrim_linsert(pair, proto):
    pair.same("RPUSH", "l", *"abacabad")
    for args in (
        ["LSET", "l", "0", "z"],
        ["LSET", "l", "-1", "y"],
        ["LSET", "l", "8", "q"],
        ["LSET", "l", "-9", "q"],
        ["LSET", "l", "x", "q"],
        ["LSET", "nokey", "0", "q"],
        ["LSET", "nokey", "x", "q"],
        ["LREM", "l", "1", "a"],
        ["LREM", "l", "-1", "a"],
        ["LRANGE", "l", "0", "-1"],
        ["LREM", "l", "0", "b"],
        ["LREM", "l", "0", "nope"],
        ["LREM", "l", "x", "a"],
        ["LREM", "nokey", "1", "a"],
        ["LRANGE", "l", "0", "-1"],
        ["LINSERT", "l", "BEFORE", "c", "1"],
        ["LINSERT", "l", "after", "c", "2"],
        ["LINSERT", "l", "after", "nope", "2"],
        ["LINSERT", "l", "middle", "c", "2"],
        ["LINSERT", "nokey", "before", "c", "2"],
        ["LINSERT", "nokey", "x", "c", "2"],
        ["LRANGE", "l", "0", "-1"],
        ["LTRIM", "l", "1", "-2"],
        ["LRANGE", "l", "0", "-1"],
        ["LTRIM", "l", "x", "1"],
        ["LTRIM", "nokey", "0", "1"],
        ["LTRIM", "l", "5", "1"],
        ["EXISTS", "l"],
    ):
        pair.same(*args)
    pair.same("SET", "s", "x")
    for args in (
        ["LSET", "s", "0", "q"],
        ["LREM", "s", "0", "a"],
        ["LTRIM", "s", "0", "1"],
        ["LINSERT", "s", "before", "a", "b"],
        ["LINSERT", "s", "x", "a", "b"],
        ["LREM", "s", "x", "a"],
    ):
        pair.same(*args)


def test_lpos(pair, proto):
    pair.same("RPUSH", "l", *"abcabcabc")
    for options in (
        [],
        ["RANK", "2"],
        ["RANK", "-1"],
        ["RANK", "-3"],
        ["RANK", "4"],
        ["COUNT", "0"],
        ["COUNT", "2"],
        ["COUNT", "0", "RANK", "-1"],
        ["COUNT", "10", "RANK", "2"],
        ["MAXLEN", "4"],
        ["MAXLEN", "4", "COUNT", "0"],
        ["RANK", "-1", "MAXLEN", "2", "COUNT", "0"],
        ["RANK", "0"],
        ["RANK", "x"],
        ["COUNT", "-1"],
        ["COUNT", "x"],
        ["MAXLEN", "-1"],
        ["MAXLEN", "x"],
        ["RANK"],
        ["FOO", "1"],
        ["RANK", "-9223372036854775808"],
        ["RANK", "-9223372036854775807"],
    ):
        pair.same("LPOS", "l", "c", *options)
        pair.same("LPOS", "l", "nope", *options)
    pair.same("LPOS", "nokey", "a")
    pair.same("LPOS", "nokey", "a", "COUNT", "1")
    pair.same("LPOS", "nokey", "a", "RANK", "0")
    pair.same("SET", "s", "x")
    pair.same("LPOS", "s", "a")


def test_lmove(pair, proto):
    pair.same("RPUSH", "src", "a", "b", "c")
    for args in (
        ["LMOVE", "src", "dst", "LEFT", "RIGHT"],
        ["LMOVE", "src", "dst", "right", "left"],
        ["RPOPLPUSH", "src", "dst"],
        ["LMOVE", "src", "dst", "LEFT", "LEFT"],
        ["RPOPLPUSH", "nokey", "dst"],
        ["LRANGE", "dst", "0", "-1"],
        ["EXISTS", "src"],
        ["LMOVE", "dst", "dst", "LEFT", "RIGHT"],
        ["LRANGE", "dst", "0", "-1"],
        ["LMOVE", "dst", "dst", "up", "RIGHT"],
        ["LMOVE", "nokey", "dst", "LEFT", "down"],
    ):
        pair.same(*args)
    pair.same("SET", "s", "x")
    pair.same("RPUSH", "one", "a")
    for args in (
        ["LMOVE", "s", "dst", "LEFT", "LEFT"],
        ["LMOVE", "one", "s", "LEFT", "LEFT"],
        ["RPOPLPUSH", "one", "s"],
        ["RPOPLPUSH", "nokey", "s"],
        ["LRANGE", "one", "0", "-1"],
        ["LMOVE", "one", "one", "LEFT", "LEFT"],
        ["LRANGE", "one", "0", "-1"],
    ):
        pair.same(*args)


def test_blocking_forms_answer_at_once(pair, proto):
    pair.same("RPUSH", "l", "a", "b")
    pair.same("SET", "s", "x")
    for args in (
        ["BLPOP", "nokey", "l", "0"],
        ["BRPOP", "l", "1"],
        ["BLPOP", "s", "l", "0"],
        ["BLPOP", "l", "x"],
        ["BLPOP", "l", "-1"],
        ["BLPOP", "l", "nan"],
        ["BLPOP", "l", "inf"],
        ["BLPOP", "l"],
        ["RPUSH", "l", "c", "e"],
        ["BLMOVE", "l", "d", "LEFT", "RIGHT", "0"],
        ["BRPOPLPUSH", "l", "d", "0"],
        ["EXISTS", "l"],
        ["BLMOVE", "l", "d", "x", "RIGHT", "0"],
        ["BLMOVE", "l", "d", "LEFT", "RIGHT", "x"],
        ["BRPOPLPUSH", "d", "s", "0"],
        ["BRPOPLPUSH", "s", "d", "0"],
        ["BLPOP", "d", "0.5"],
    ):
        pair.same(*args)


def test_blocking_in_multi_answers_nil(pair, proto):
    for client in (pair.store, pair.redis):
        client.call("MULTI")
        client.call("BLPOP", "nokey", "0")
        client.call("BLMOVE", "nokey", "d", "LEFT", "LEFT", "0")
        client.call("BRPOPLPUSH", "nokey", "d", "0")
    pair.same("EXEC")


def _blocked_pair(pair, *command):
    """Clients on both servers that sent `command` and are now blocked (nothing read yet)."""
    waiters = [RawClient(port_of(pair.store)), RawClient(port_of(pair.redis))]
    for w in waiters:
        w.send(*command)
    for w in waiters:
        wait_blocked(port_of(w), w, command[0])
    return waiters


def _read_both(waiters):
    replies = [w.read_reply() for w in waiters]
    for w in waiters:
        w.close()
    return replies


@pytest.mark.parametrize(
    "command, push, reply_shape",
    [
        (("BLPOP", "a", "b", "0"), ("RPUSH", "b", "x", "y"), None),
        (("BRPOP", "a", "b", "5"), ("LPUSH", "a", "x", "y"), None),
        (("BLMOVE", "a", "dst", "RIGHT", "LEFT", "0"), ("RPUSH", "a", "x", "y"), None),
        (("BRPOPLPUSH", "a", "dst", "0"), ("LPUSH", "a", "x"), None),
    ],
)
def test_blocked_client_is_served_by_a_push(pair, command, push, reply_shape):
    waiters = _blocked_pair(pair, *command)
    pair.same(*push)
    ours, theirs = _read_both(waiters)
    assert ours == theirs
    pair.same("LRANGE", "a", "0", "-1")
    pair.same("LRANGE", "b", "0", "-1")
    pair.same("LRANGE", "dst", "0", "-1")
    pair.same("EXISTS", "a", "b")


def test_blocked_clients_are_served_in_order_and_chain(pair):
    first = _blocked_pair(pair, "BLPOP", "q", "0")
    second = _blocked_pair(pair, "BLMOVE", "q", "r", "LEFT", "LEFT", "0")
    third = _blocked_pair(pair, "BRPOP", "r", "0")
    pair.same("RPUSH", "q", "1", "2", "3")
    for waiters in (first, second, third):
        ours, theirs = _read_both(waiters)
        assert ours == theirs
    pair.same("LRANGE", "q", "0", "-1")
    pair.same("EXISTS", "r")


def test_blocked_client_times_out(pair):
    for proto in (2, 3):
        waiters = [RawClient(port_of(pair.store)), RawClient(port_of(pair.redis))]
        for w in waiters:
            w.call("HELLO", str(proto))
            w.send("BLPOP", "nokey", "0.2")
        ours, theirs = _read_both(waiters)
        assert ours == theirs
        waiters = _blocked_pair(pair, "BLMOVE", "nokey", "d", "LEFT", "LEFT", "0.1")
        ours, theirs = _read_both(waiters)
        assert ours == theirs


def test_blocked_client_keeps_its_pipeline_in_order(store):
    """Commands pipelined behind a blocking one run after it is answered; others are not blocked."""
    waiter = RawClient(port_of(store))
    waiter.send_raw(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n*1\r\n$4\r\nPING\r\n")
    wait_blocked(port_of(store), waiter, "BLPOP")
    waiter.send("LLEN", "q")
    assert store.call("PING") == b"+PONG\r\n"
    assert store.call("RPUSH", "q", "a", "b") == b":2\r\n"
    assert waiter.read_reply() == b"*2\r\n$1\r\nq\r\n$1\r\na\r\n"
    assert waiter.read_reply() == b"+PONG\r\n"
    assert waiter.read_reply() == b":1\r\n"
    waiter.call("BLPOP", "q", "0")
    assert waiter.call("PING") == b"+PONG\r\n"
    waiter.close()


def test_disconnected_waiter_gets_nothing(store):
    gone = RawClient(port_of(store))
    gone.send("BLPOP", "q", "0")
    wait_blocked(port_of(store), gone, "BLPOP")
    wait_closed(port_of(store), gone)
    live = RawClient(port_of(store))
    live.send("BLPOP", "q", "0")
    wait_blocked(port_of(store), live, "BLPOP")
    store.call("RPUSH", "q", "a")
    assert live.read_reply() == b"*2\r\n$1\r\nq\r\n$1\r\na\r\n"
    live.close()


def test_redis_py_blpop_with_timeout(store_port):
    redis = pytest.importorskip("redis")
    client = redis.Redis(port=store_port)
    client.delete("q")
    threading.Timer(0.1, lambda: redis.Redis(port=store_port).rpush("q", "hello")).start()
    assert client.blpop(["q"], timeout=5) == (b"q", b"hello")
    assert client.blpop(["q"], timeout=0.1) is None
    client.close()


def test_keyspace_events(pair):
    subs = []
    for client in (pair.store, pair.redis):
        client.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        sub = RawClient(port_of(client))
        sub.call("PSUBSCRIBE", "__key*@0__:*")
        subs.append(sub)
    script = [
        ("RPUSH", "l", "a", "b", "c", "d", "e"),
        ("LPUSH", "l", "z"),
        ("LPUSHX", "nokey", "a"),
        ("RPUSHX", "l", "y"),
        ("LPOP", "l"),
        ("RPOP", "l", "2"),
        ("LPOP", "l", "0"),
        ("LSET", "l", "0", "q"),
        ("LREM", "l", "0", "nope"),
        ("LREM", "l", "1", "q"),
        ("LINSERT", "l", "BEFORE", "c", "x"),
        ("LINSERT", "l", "BEFORE", "nope", "x"),
        ("LTRIM", "l", "0", "-1"),
        ("LTRIM", "l", "1", "1"),
        ("LMOVE", "l", "m", "LEFT", "RIGHT"),
        ("RPOPLPUSH", "m", "m"),
        ("RPOPLPUSH", "m", "l"),
        ("RPUSH", "l", "a"),
        ("BLPOP", "l", "0"),
        ("RPUSH", "l", "a", "b"),
        ("BLMOVE", "l", "n", "LEFT", "LEFT", "0"),
        ("LTRIM", "l", "5", "6"),
        ("LREM", "n", "0", "a"),
        ("RPOP", "n", "5"),
        ("RPUSH", "m", "a", "b", "c"),
        ("LMPOP", "2", "nokey", "m", "LEFT"),
        ("LMPOP", "1", "m", "RIGHT", "COUNT", "9"),
        ("LMPOP", "1", "m", "LEFT"),
        ("RPUSH", "m", "a"),
        ("BLMPOP", "0", "1", "m", "RIGHT"),
    ]
    for command in script:
        pair.same(*command)
    waiters = _blocked_pair(pair, "BLMOVE", "w", "v", "RIGHT", "LEFT", "0")
    pair.same("RPUSH", "w", "1")
    ours, theirs = _read_both(waiters)
    assert ours == theirs
    waiters = _blocked_pair(pair, "BRPOP", "w", "0")
    pair.same("RPUSH", "w", "1", "2")
    ours, theirs = _read_both(waiters)
    assert ours == theirs
    pair.same("SET", "end-marker", "1")
    ours, theirs = (sub.read_until_set_event() for sub in subs)
    assert ours == theirs
    assert len(ours) > 50
    for sub in subs:
        sub.close()


def test_push_inside_exec_serves_waiters_after_the_transaction(pair):
    waiters = _blocked_pair(pair, "BLPOP", "q", "0")
    for client in (pair.store, pair.redis):
        client.call("MULTI")
        client.call("RPUSH", "q", "a", "b")
        client.call("LLEN", "q")
        client.call("LPOP", "q")
    pair.same("EXEC")
    ours, theirs = _read_both(waiters)
    assert ours == theirs
    pair.same("LRANGE", "q", "0", "-1")


def test_pipelined_push_then_read_sees_the_waiter_served(pair):
    waiters = _blocked_pair(pair, "BLPOP", "q", "0")
    for client in (pair.store, pair.redis):
        client.send_raw(b"RPUSH q a b\r\nLLEN q\r\n")
    assert (pair.store.read_reply(), pair.store.read_reply()) == (
        pair.redis.read_reply(),
        pair.redis.read_reply(),
    )
    ours, theirs = _read_both(waiters)
    assert ours == theirs


def test_random_command_sequences(pair):
    """A few hundred seeded random list commands give the same replies on both servers."""
    rng = random.Random(4321)
    values = list("abcde")

    def index():
        return str(rng.randint(-7, 7))

    makers = [
        lambda: [
            rng.choice(["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]),
            rng.choice("lm"),
            *rng.choices(values, k=rng.randint(1, 3)),
        ],
        lambda: [
            rng.choice(["LPOP", "RPOP"]),
            rng.choice("lm"),
            *rng.choice([[], [str(rng.randint(0, 3))]]),
        ],
        lambda: ["LRANGE", rng.choice("lm"), index(), index()],
        lambda: ["LINDEX", "l", index()],
        lambda: ["LSET", "l", index(), rng.choice(values)],
        lambda: ["LREM", "l", str(rng.randint(-2, 2)), rng.choice(values)],
        lambda: ["LTRIM", "l", index(), index()],
        lambda: ["LINSERT", "l", rng.choice(["BEFORE", "AFTER"]), rng.choice(values), "x"],
        lambda: [
            "LPOS",
            "l",
            rng.choice(values),
            "RANK",
            rng.choice(["1", "2", "-1", "-2"]),
            *rng.choice([[], ["COUNT", str(rng.randint(0, 3))]]),
            *rng.choice([[], ["MAXLEN", "3"]]),
        ],
        lambda: [
            "LMOVE",
            rng.choice("lm"),
            rng.choice("lm"),
            rng.choice(["LEFT", "RIGHT"]),
            rng.choice(["LEFT", "RIGHT"]),
        ],
        lambda: ["LLEN", rng.choice("lm")],
    ]
    for _ in range(400):
        pair.same(*rng.choice(makers)())
    pair.same("LRANGE", "l", "0", "-1")
    pair.same("LRANGE", "m", "0", "-1")


LIST_COMMANDS = [
    "lpush",
    "rpush",
    "lpushx",
    "rpushx",
    "lpop",
    "rpop",
    "llen",
    "lrange",
    "lindex",
    "lset",
    "lrem",
    "ltrim",
    "linsert",
    "lpos",
    "lmove",
    "rpoplpush",
    "blpop",
    "brpop",
    "blmove",
    "brpoplpush",
    "lmpop",
    "blmpop",
]


@pytest.mark.parametrize("name", LIST_COMMANDS)
def test_command_info(pair, name):
    ours, theirs = pair.call("COMMAND", "INFO", name)
    assert command_info_head(ours) == command_info_head(theirs)


@pytest.mark.parametrize(
    "command",
    [
        ("RPUSH", "l", "x"),
        ("LPUSHX", "l", "x"),
        ("LPOP", "l"),
        ("RPOP", "l", "0"),
        ("LSET", "l", "0", "z"),
        ("LREM", "l", "0", "nope"),
        ("LREM", "l", "0", "a"),
        ("LTRIM", "l", "0", "-1"),
        ("LTRIM", "l", "1", "1"),
        ("LINSERT", "l", "BEFORE", "nope", "x"),
        ("LINSERT", "l", "BEFORE", "a", "x"),
        ("LMOVE", "l", "l", "LEFT", "LEFT"),
        ("RPOPLPUSH", "l", "other"),
        ("BLPOP", "l", "0"),
        ("LRANGE", "l", "0", "-1"),
        ("RPUSH", "other", "a"),
    ],
)
def test_watch_sees_list_writes(pair, store_port, redis_port, command):
    pair.same("RPUSH", "l", "a", "b")
    watch_outcome(pair, store_port, redis_port, "l", *command)


def test_lmpop(pair, proto):
    pair.same("RPUSH", "a", "1", "2", "3")
    pair.same("RPUSH", "b", *"abcdef")
    pair.same("SET", "s", "x")
    for args in (
        ["1", "a", "LEFT"],
        ["2", "nokey", "b", "right", "COUNT", "2"],
        ["2", "a", "b", "LEFT", "count", "10"],
        ["2", "nokey", "a", "RIGHT"],
        ["1", "nokey", "LEFT"],
        ["2", "b", "s", "LEFT"],
        ["2", "s", "b", "LEFT"],
        ["0", "b", "LEFT"],
        ["-1", "b", "LEFT"],
        ["x", "b", "LEFT"],
        ["3", "b", "LEFT"],
        ["1", "b", "UP"],
        ["1", "b", "LEFT", "COUNT"],
        ["1", "b", "LEFT", "COUNT", "0"],
        ["1", "b", "LEFT", "COUNT", "-1"],
        ["1", "b", "LEFT", "COUNT", "x"],
        ["1", "b", "LEFT", "COUNT", "1", "COUNT", "1"],
        ["1", "b", "LEFT", "x"],
        ["1", "b"],
        ["1", "b", "RIGHT", "COUNT", "1"],
    ):
        pair.same("LMPOP", *args)
    pair.same("EXISTS", "a", "b")


def test_blmpop_answers_at_once(pair, proto):
    pair.same("RPUSH", "l", "a", "b", "c", "d")
    pair.same("SET", "s", "x")
    for args in (
        ["0", "2", "nokey", "l", "LEFT"],
        ["0.5", "1", "l", "RIGHT", "COUNT", "2"],
        ["x", "1", "l", "LEFT"],
        ["-1", "1", "l", "LEFT"],
        ["x", "0", "l", "LEFT"],
        ["0", "1", "l", "UP"],
        ["0", "1", "s", "LEFT"],
        ["0", "1", "l"],
        ["0", "1", "l", "LEFT", "COUNT", "0"],
        ["0", "1", "l", "LEFT", "COUNT", "9"],
    ):
        pair.same("BLMPOP", *args)
    for client in (pair.store, pair.redis):
        client.call("MULTI")
        client.call("BLMPOP", "0", "1", "nokey", "LEFT")
    pair.same("EXEC")


@pytest.mark.parametrize(
    "command, push",
    [
        (("BLMPOP", "0", "2", "a", "b", "LEFT", "COUNT", "2"), ("RPUSH", "b", "x", "y", "z")),
        (("BLMPOP", "5", "1", "a", "RIGHT"), ("LPUSH", "a", "x", "y")),
    ],
)
def test_blmpop_is_served_by_a_push(pair, command, push):
    waiters = _blocked_pair(pair, *command)
    pair.same(*push)
    ours, theirs = _read_both(waiters)
    assert ours == theirs
    pair.same("LRANGE", "a", "0", "-1")
    pair.same("LRANGE", "b", "0", "-1")


def test_blmpop_times_out(pair):
    for proto in (2, 3):
        waiters = [RawClient(port_of(pair.store)), RawClient(port_of(pair.redis))]
        for w in waiters:
            w.call("HELLO", str(proto))
            w.send("BLMPOP", "0.1", "1", "nokey", "LEFT")
        ours, theirs = _read_both(waiters)
        assert ours == theirs


def test_release_answers_a_blocked_client():
    """blocking.release (for CLIENT UNBLOCK): the timeout reply, or the UNBLOCKED error; False if not blocked."""
    asyncio.run(_release_scenario())


async def _release_scenario():
    config = Config()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config.set("port", str(port), startup=True)
    server = Server(config)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for command, error, reply in (
            (b"BLPOP q 0\r\n", False, b"*-1\r\n"),
            (b"BZPOPMIN z 0\r\n", True, b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"),
        ):
            writer.write(command + b"PING\r\n")
            blocked = await wait_until_async(
                lambda: [c for c in server.clients.values() if c.blocked is not None],
                message="no client blocked",
            )
            assert len(blocked) == 1 and release(blocked[0], error)
            assert not release(blocked[0], error)
            assert await reader.readuntil(b"+PONG\r\n") == reply + b"+PONG\r\n"
        writer.close()
    finally:
        await server.close()
