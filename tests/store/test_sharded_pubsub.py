"""Sharded pub/sub (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, PUBSUB SHARD*), differential against
redis-server 7.0.15 in a non-cluster setup, under RESP2 and RESP3; then redis-py's API."""

import asyncio
import os
import socket

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presence.testing import bundled_store
from tests.helpers import wait_until, wait_until_async
from tests.store.helpers import (
    Pair,
    array_items,
    run,
    same_replies,
    same_reply_sets,
    split_aggregate,
)
from tests.store.rawclient import RawClient


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def proto_pair(pair, request):
    """A pair speaking RESP2 or RESP3, on servers with no shard channel left by earlier tests."""
    settle(pair)
    if request.param == 3:
        for client in (pair.store, pair.redis):
            client.call("HELLO", "3")
    pair.protocol = request.param
    return pair


@pytest.fixture
def publisher(pair):
    """A second pair of connections to the same two servers."""
    p = Pair(pair.store_port, pair.redis_port)
    yield p
    p.close()


def settle(pair, timeout: float = 5.0) -> None:
    """Wait until both servers forgot the subscriptions of connections closed earlier."""
    for client in (pair.store, pair.redis):
        wait_until(
            lambda client=client: (
                client.call("PUBSUB", "SHARDCHANNELS") == b"*0\r\n"
                and client.call("PUBSUB", "CHANNELS") == b"*0\r\n"
            ),
            timeout=timeout,
            interval=0.01,
            message="earlier subscriptions were never dropped",
        )


def wait_same(pair, *command, timeout: float = 5.0) -> bytes:
    """Poll `command` on both servers until the replies agree (a disconnect is processed
    asynchronously); return the reply."""
    replies: list[bytes] = []

    def agree() -> bool:
        replies[:] = pair.call(*command)
        return replies[0] == replies[1]

    wait_until(
        agree,
        timeout=timeout,
        interval=0.01,
        message=lambda: f"{command!r}: store {replies[0]!r} != redis {replies[1]!r}",
    )
    return replies[0]


# ---------------------------------------------------------------- replies and counts


def test_ssubscribe_sequence(proto_pair):
    pair = proto_pair
    same_replies(pair, 2, "SSUBSCRIBE", "a", "b")
    same_replies(pair, 1, "SSUBSCRIBE", "a")  # already subscribed: the count stays 2
    same_replies(pair, 1, "SUNSUBSCRIBE", "a")
    same_replies(pair, 1, "SUNSUBSCRIBE", "nosuch")
    same_replies(pair, 1, "SUNSUBSCRIBE", "b")
    same_replies(pair, 1, "SUNSUBSCRIBE")  # nothing left: one reply with a nil channel
    same_replies(pair, 1, "SUNSUBSCRIBE")
    same_replies(pair, 3, "SSUBSCRIBE", "x", "x", "")
    same_replies(pair, 2, "SUNSUBSCRIBE", "x", "x")
    same_replies(pair, 1, "SUNSUBSCRIBE", "")
    run(pair, "PING", "GET missing")


def test_shard_count_is_apart_from_channels_and_patterns(proto_pair):
    """ssubscribe/sunsubscribe count shard channels only; (p)subscribe leave them out."""
    pair = proto_pair
    same_replies(pair, 2, "SSUBSCRIBE", "a", "b")
    same_replies(pair, 1, "SUBSCRIBE", "a")
    same_replies(pair, 1, "PSUBSCRIBE", "p*")
    same_replies(pair, 2, "SSUBSCRIBE", "c", "a")
    same_replies(pair, 1, "UNSUBSCRIBE")
    same_replies(pair, 1, "PUNSUBSCRIBE")
    same_replies(pair, 1, "UNSUBSCRIBE")  # none left: nil, 0, though shard channels remain
    same_replies(pair, 1, "PUNSUBSCRIBE")
    same_replies(pair, 1, "SUNSUBSCRIBE", "b")
    same_reply_sets(pair, 2, "SUNSUBSCRIBE")  # a and c, in Redis's hash order
    same_replies(pair, 1, "SUNSUBSCRIBE")
    run(pair, "PING", "GET k")


def test_sunsubscribe_all_replies_one_per_channel(proto_pair):
    same_replies(proto_pair, 4, "SSUBSCRIBE", "x", "y", "z", "w")
    same_replies(proto_pair, 1, "SUBSCRIBE", "x")
    same_reply_sets(proto_pair, 4, "SUNSUBSCRIBE")
    same_replies(proto_pair, 1, "UNSUBSCRIBE")


def test_arity_errors(proto_pair):
    run(
        proto_pair,
        "SSUBSCRIBE",
        "SPUBLISH",
        "SPUBLISH a",
        "SPUBLISH a b c",
        "PUBSUB SHARDCHANNELS a b",
        "PUBSUB shardchannels a b c",
        "PUBSUB SHARDNUMSUB",
    )


# ---------------------------------------------------------------- delivery


def test_spublish_delivery(proto_pair, publisher):
    pair = proto_pair
    same_replies(pair, 2, "SSUBSCRIBE", "news", "other")
    publisher.same("SPUBLISH", "news", "hello")
    same_replies(pair, 1)
    publisher.same("SPUBLISH", "nothing", "x")
    publisher.same("SPUBLISH", "other", "")
    publisher.same("SPUBLISH", "news", b"\x00\xff\r\n")
    same_replies(pair, 2)
    same_replies(pair, 1, "SUNSUBSCRIBE", "news")
    publisher.same("SPUBLISH", "news", "gone")
    same_replies(pair, 1, "PING")  # no smessage was queued before the PING's reply


def test_shard_channels_are_a_namespace_apart(proto_pair, publisher):
    """SUBSCRIBE x and PSUBSCRIBE * get no SPUBLISH x; SSUBSCRIBE x gets no PUBLISH x."""
    pair = proto_pair
    same_replies(pair, 1, "SUBSCRIBE", "x")
    same_replies(pair, 1, "PSUBSCRIBE", "*")
    same_replies(pair, 1, "SSUBSCRIBE", "x")
    publisher.same("SPUBLISH", "x", "shard")
    same_replies(pair, 1)  # the smessage alone
    publisher.same("PUBLISH", "x", "plain")
    same_replies(pair, 2)  # message, then pmessage: no smessage
    publisher.same("PUBSUB", "NUMSUB", "x")
    publisher.same("PUBSUB", "SHARDNUMSUB", "x")
    publisher.same("PUBSUB", "NUMPAT")
    publisher.same("PUBSUB", "CHANNELS")
    publisher.same("PUBSUB", "SHARDCHANNELS")
    same_replies(pair, 1, "UNSUBSCRIBE", "x")
    publisher.same("SPUBLISH", "x", "still")
    same_replies(pair, 1)
    same_replies(pair, 1, "SUNSUBSCRIBE", "x")
    publisher.same("SPUBLISH", "x", "none")
    publisher.same("PUBLISH", "x", "pattern only")
    same_replies(pair, 1)


def test_spublish_counts_every_subscriber(pair, publisher):
    settle(pair)
    third = Pair(pair.store_port, pair.redis_port)
    try:
        same_replies(pair, 1, "SSUBSCRIBE", "c")
        same_replies(third, 2, "SSUBSCRIBE", "c", "d")
        same_replies(third, 1, "SUBSCRIBE", "c")
        publisher.same("SPUBLISH", "c", "m")
        same_replies(pair, 1)
        same_replies(third, 1)
        publisher.same("SPUBLISH", "d", "m")
        same_replies(third, 1)
        publisher.same("PUBSUB", "SHARDNUMSUB", "c", "d", "e", "c")
        publisher.same("PUBSUB", "NUMSUB", "c", "d")
    finally:
        third.close()


def test_spublish_to_self_under_resp3(pair):
    settle(pair)
    for client in (pair.store, pair.redis):
        client.call("HELLO", "3")
    same_replies(pair, 1, "SSUBSCRIBE", "me")
    same_replies(pair, 2, "SPUBLISH", "me", "hi")  # the push, then the count
    same_replies(pair, 1, "PUBLISH", "me", "hi")  # not a channel subscriber: just 0


def test_pubsub_shard_introspection(pair, publisher):
    settle(pair)
    run(publisher, "PUBSUB SHARDCHANNELS", "PUBSUB SHARDNUMSUB", "PUBSUB SHARDNUMSUB a")
    same_replies(pair, 4, "SSUBSCRIBE", "abc", "abd", "x", "\xff")
    for pattern in ["*", "ab?", "x", "nomatch", "a[b]c", "[^a]*", "\\x", "", "\xff"]:
        ours, theirs = publisher.call("PUBSUB", "SHARDCHANNELS", pattern)
        assert array_items(ours) == array_items(theirs), pattern
        publisher.same("PUBSUB", "CHANNELS", pattern)  # no regular channel is active
    assert array_items(publisher.store.call("PUBSUB", "SHARDCHANNELS")) == array_items(
        publisher.redis.call("PUBSUB", "SHARDCHANNELS")
    )
    publisher.same("PUBSUB", "SHARDNUMSUB", "abc", "x", "none", "abc", "\xff")
    publisher.same("PUBSUB", "HELP")
    publisher.same("PUBSUB", "shardnumsub")


# ---------------------------------------------------------------- the subscribed context


@pytest.mark.parametrize(
    "command",
    ["GET k", "SET k v", "SPUBLISH c m", "PUBLISH c m", "PUBSUB SHARDNUMSUB c", "MULTI", "NOSUCH"],
)
def test_resp2_shard_subscriber_is_in_the_subscribed_context(pair, command):
    settle(pair)
    same_replies(pair, 1, "SSUBSCRIBE", "c")
    run(pair, command, "PING", "PING hi", "PING a b")
    same_replies(pair, 1, "SUBSCRIBE", "d")
    same_replies(pair, 1, "PSUBSCRIBE", "e*")
    same_replies(pair, 1, "UNSUBSCRIBE")
    same_replies(pair, 1, "PUNSUBSCRIBE")
    run(pair, command, "PING")  # still shard-subscribed: still in the context
    same_replies(pair, 1, "SUNSUBSCRIBE")
    run(pair, "PING", "GET k", "PING hi")  # out of it


def test_resp3_shard_subscriber_may_run_anything(pair):
    settle(pair)
    for client in (pair.store, pair.redis):
        client.call("HELLO", "3")
    same_replies(pair, 1, "SSUBSCRIBE", "c")
    run(pair, "SET k v", "GET k", "PING", "PING hi", "ECHO x", "PUBSUB SHARDNUMSUB c")
    for client in (pair.store, pair.redis):
        client.call("HELLO", "2")  # (its reply holds the client id)
    run(pair, "GET k", "PING")  # back under RESP2, in the subscribed context


def test_ssubscribe_is_refused_inside_exec(proto_pair, publisher):
    """Redis 7.0 refuses SSUBSCRIBE to a DENY_BLOCKING client (EXEC), where SUBSCRIBE works."""
    pair = proto_pair
    run(pair, "MULTI", "SSUBSCRIBE q", "SUBSCRIBE q", "SPUBLISH q m", "SUNSUBSCRIBE q")
    same_replies(pair, 1, "EXEC")
    same_replies(pair, 1, "UNSUBSCRIBE")
    publisher.same("PUBSUB", "SHARDNUMSUB", "q")
    same_replies(pair, 2, "SSUBSCRIBE", "a", "b")
    if pair.protocol == 3:  # a RESP2 subscriber may not MULTI
        run(pair, "MULTI", "SUNSUBSCRIBE b", "SPUBLISH a m", "SPUBLISH b m", "SSUBSCRIBE c")
        same_replies(pair, 1, "EXEC")  # the smessage push in the middle of EXEC's array
        same_replies(pair, 1, "SUNSUBSCRIBE")
    else:
        same_reply_sets(pair, 2, "SUNSUBSCRIBE")
    run(pair, "PING")


def test_pushes_get_through_client_reply_off(proto_pair, publisher):
    """(S)SUBSCRIBE confirmations and smessages are pushes: CLIENT REPLY OFF does not mute them."""
    pair = proto_pair
    for client in (pair.store, pair.redis):
        client.send("CLIENT", "REPLY", "OFF")
        client.send("PING")
    same_replies(pair, 1, "SSUBSCRIBE", "quiet")
    publisher.same("SPUBLISH", "quiet", "hello")
    same_replies(pair, 1)
    same_replies(pair, 1, "SUNSUBSCRIBE", "quiet")
    for client in (pair.store, pair.redis):
        client.send("CLIENT", "REPLY", "ON")
    same_replies(pair, 2, "PING")  # ON's +OK, then PING's reply


def test_reset_drops_shard_subscriptions(proto_pair, publisher):
    pair = proto_pair
    same_replies(pair, 2, "SSUBSCRIBE", "r1", "r2")
    same_replies(pair, 1, "SUBSCRIBE", "r1")
    run(pair, "RESET", "PING", "GET k")
    publisher.same("PUBSUB", "SHARDNUMSUB", "r1", "r2")
    publisher.same("PUBSUB", "SHARDCHANNELS")
    publisher.same("SPUBLISH", "r1", "m")
    run(pair, "PING")  # and no smessage arrived


def test_disconnect_drops_shard_subscriptions(pair, publisher):
    settle(pair)
    gone = Pair(pair.store_port, pair.redis_port)
    same_replies(gone, 2, "SSUBSCRIBE", "d1", "d2")
    publisher.same("PUBSUB", "SHARDNUMSUB", "d1", "d2")
    gone.close()
    assert wait_same(publisher, "PUBSUB", "SHARDNUMSUB", "d1", "d2") == (
        b"*4\r\n$2\r\nd1\r\n:0\r\n$2\r\nd2\r\n:0\r\n"
    )
    publisher.same("PUBSUB", "SHARDCHANNELS")
    publisher.same("SPUBLISH", "d1", "m")


# ---------------------------------------------------------------- CLIENT, INFO, COMMAND


def client_fields(line: bytes) -> dict[str, str]:
    """The fields of one CLIENT LIST/INFO line that do not depend on the implementation."""
    fields = dict(item.split("=", 1) for item in line.decode().split())
    return {k: fields[k] for k in ("name", "flags", "db", "sub", "psub", "ssub", "multi", "cmd")}


def client_lines(reply: bytes) -> list[bytes]:
    """The lines of a CLIENT LIST/INFO reply (bulk or verbatim string)."""
    body = reply.split(b"\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
    if reply[:1] == b"=":
        body = body[4:]  # the "txt:" of a verbatim string
    return [line for line in body.split(b"\n") if line]


def test_client_list_and_info_show_shard_subscriptions(proto_pair, publisher):
    pair = proto_pair
    for client in (pair.store, pair.redis):
        client.call("CLIENT", "SETNAME", "shardsub")
    same_replies(pair, 3, "SSUBSCRIBE", "a", "b", "c")
    same_replies(pair, 1, "PSUBSCRIBE", "p*")
    for args in (("CLIENT", "LIST", "TYPE", "pubsub"), ("CLIENT", "LIST")):
        ours, theirs = publisher.call(*args)
        mine = [client_fields(line) for line in client_lines(ours)]
        redis_ = [client_fields(line) for line in client_lines(theirs)]
        assert [f for f in mine if f["name"] == "shardsub"] == [
            f for f in redis_ if f["name"] == "shardsub"
        ]
    ours, theirs = publisher.call("CLIENT", "LIST", "TYPE", "normal")
    assert b"name=shardsub" not in ours and b"name=shardsub" not in theirs
    same_replies(pair, 1, "PUNSUBSCRIBE")
    ours, theirs = publisher.call("CLIENT", "LIST", "TYPE", "pubsub")
    assert b"name=shardsub" in ours and b"name=shardsub" in theirs  # shard channels alone
    if pair.protocol == 3:  # CLIENT INFO may run in the RESP3 subscribed context
        ours, theirs = pair.call("CLIENT", "INFO")
        assert client_fields(client_lines(ours)[0]) == client_fields(client_lines(theirs)[0])


def info_field(reply: bytes, name: str) -> bytes:
    for line in reply.split(b"\r\n"):
        if line.startswith(name.encode() + b":"):
            return line
    raise AssertionError(f"{name} missing from INFO")


def test_info_stats_counts_shard_channels(pair, publisher):
    settle(pair)
    fields = ("pubsub_channels", "pubsub_patterns", "pubsubshard_channels")

    def same_info():
        ours, theirs = publisher.call("INFO", "stats")
        for name in fields:
            assert info_field(ours, name) == info_field(theirs, name)

    same_info()
    same_replies(pair, 3, "SSUBSCRIBE", "i1", "i2", "i3")
    same_replies(pair, 1, "SUBSCRIBE", "i1")
    same_info()
    third = Pair(pair.store_port, pair.redis_port)
    same_replies(third, 1, "SSUBSCRIBE", "i1")
    same_info()
    same_replies(pair, 1, "SUNSUBSCRIBE", "i1")
    same_info()
    third.close()
    wait_same(publisher, "PUBSUB", "SHARDNUMSUB", "i1")
    same_info()


SHARD_COMMANDS = ["ssubscribe", "sunsubscribe", "spublish"]
PUBSUB_COMMANDS = ["subscribe", "psubscribe", "unsubscribe", "punsubscribe", "publish"]


@pytest.mark.parametrize("name", SHARD_COMMANDS + PUBSUB_COMMANDS)
def test_command_info_matches_redis(pair, proto, name):
    """Arity, flags, legacy key positions, ACL categories and key specs, byte for byte."""
    pair.same("COMMAND", "INFO", name)
    pair.same("COMMAND", "INFO", name.upper(), "nosuch")


def test_command_info_pubsub_lists_shard_subcommands(pair):
    ours, theirs = pair.call("COMMAND", "INFO", "pubsub")
    (ours,), (theirs,) = split_aggregate(ours)[1], split_aggregate(theirs)[1]
    ours, theirs = split_aggregate(ours)[1], split_aggregate(theirs)[1]
    assert ours[:9] == theirs[:9]
    assert sorted(split_aggregate(ours[9])[1]) == sorted(split_aggregate(theirs[9])[1])
    for sub in ("numsub", "channels", "numpat", "shardchannels", "shardnumsub", "help"):
        pair.same("COMMAND", "INFO", f"pubsub|{sub}")


@pytest.mark.parametrize(
    "args",
    [
        ("COMMAND", "GETKEYS", "ssubscribe", "a", "b"),
        ("COMMAND", "GETKEYS", "spublish", "a", "b"),
        ("COMMAND", "GETKEYS", "spublish", "a"),
        ("COMMAND", "GETKEYS", "sunsubscribe", "a"),
        ("COMMAND", "GETKEYSANDFLAGS", "ssubscribe", "a"),
        ("COMMAND", "GETKEYS", "publish", "a", "b"),
        ("COMMAND", "GETKEYS", "pubsub", "shardnumsub", "a"),
    ],
    ids=lambda a: " ".join(a),
)
def test_command_getkeys_finds_no_keys(pair, args):
    pair.same(*args)


def test_command_list_and_count(pair):
    for args in (
        ("COMMAND", "LIST", "FILTERBY", "ACLCAT", "pubsub"),
        ("COMMAND", "LIST", "FILTERBY", "PATTERN", "s*sub*"),
        ("COMMAND", "LIST", "FILTERBY", "PATTERN", "pubsub*"),
    ):
        ours, theirs = pair.call(*args)
        assert array_items(ours) == array_items(theirs), args
    count = int(pair.store.call("COMMAND", "COUNT")[1:-2])
    table = split_aggregate(pair.store.call("COMMAND"))[1]
    assert count == len(table)
    for name in SHARD_COMMANDS:
        assert any(
            entry.startswith(b"*10\r\n$%d\r\n%s\r\n" % (len(name), name.encode()))
            for entry in table
        )


# ---------------------------------------------------------------- random sequences

NAMES = st.sampled_from(["a", "b", "ab", "a*", "*", ""])
ACTIONS = st.one_of(
    st.tuples(
        st.sampled_from(["SSUBSCRIBE", "SUNSUBSCRIBE", "SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE"]),
        st.lists(NAMES, min_size=1, max_size=3),
    ),
    st.tuples(st.sampled_from(["SUNSUBSCRIBE", "UNSUBSCRIBE"]), st.just([])),
    st.tuples(st.sampled_from(["SPUBLISH", "PUBLISH"]), st.lists(NAMES, min_size=1, max_size=1)),
    st.tuples(st.just("PING"), st.just([])),
)


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(protocol=st.sampled_from(["2", "3"]), actions=st.lists(ACTIONS, min_size=1, max_size=15))
def test_random_shard_sequences_match_redis(pair, protocol, actions):
    """Replies per step; an unsubscribe-all and pattern messages compared as sets."""
    subscriber = Pair(pair.store_port, pair.redis_port)
    held = {"SUNSUBSCRIBE": set(), "UNSUBSCRIBE": set()}  # the subscriber's (shard) channels
    try:
        for client in (subscriber.store, subscriber.redis):
            client.call("HELLO", protocol)
        for name, args in actions:
            if name in ("SPUBLISH", "PUBLISH"):
                count = pair.same(name, args[0], "m")
                same_reply_sets(subscriber, int(count[1:-2]))
            elif args:
                same_replies(subscriber, len(args), name, *args)
                if name in ("SSUBSCRIBE", "SUBSCRIBE"):
                    held["S" * (name == "SSUBSCRIBE") + "UNSUBSCRIBE"].update(args)
                elif name in held:
                    held[name].difference_update(args)
            elif name == "PING":
                same_replies(subscriber, 1, name)
            else:  # all of them, in Redis's hash order
                same_reply_sets(subscriber, max(1, len(held[name])), name)
                held[name].clear()
            pair.same("PUBSUB", "SHARDNUMSUB", "a", "b", "ab", "")
            pair.same("PUBSUB", "NUMSUB", "a", "b", "ab", "")
    finally:
        subscriber.close()
        settle(pair)


# ---------------------------------------------------------------- output buffer limit


def test_slow_shard_subscriber_is_disconnected_at_the_pubsub_limit():
    with bundled_store("--client-output-buffer-limit", "pubsub", "1mb", "256kb", "60") as port:
        slow = socket.create_connection(("127.0.0.1", port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(b"SSUBSCRIBE news\r\n")
        publisher = RawClient(port)
        wait_until(
            lambda: not publisher.call("PUBSUB", "SHARDNUMSUB", "news").endswith(b":0\r\n"),
            interval=0.01,
            message="the slow subscriber never subscribed",
        )
        payload = b"x" * 65536
        receivers = [publisher.call("SPUBLISH", "news", payload) for _ in range(200)]
        assert receivers[0] == b":1\r\n"
        assert receivers[-1] == b":0\r\n"  # dropped on the way, 12.5 MiB past a 1 MiB limit
        assert publisher.call("PUBSUB", "SHARDNUMSUB", "news") == b"*2\r\n$4\r\nnews\r\n:0\r\n"
        info = publisher.call("INFO", "stats")
        assert info_field(info, "client_output_buffer_limit_disconnections") != (
            b"client_output_buffer_limit_disconnections:0"
        )
        assert info_field(info, "pubsubshard_channels") == b"pubsubshard_channels:0"
        publisher.close()
        slow.close()


# ---------------------------------------------------------------- redis-py


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_sharded_pubsub(standalone_url, protocol):
    """redis-py's PubSub.ssubscribe/sunsubscribe and Redis.spublish, on Redis and the store."""
    r = redis.Redis.from_url(standalone_url, protocol=protocol, decode_responses=True)
    p = r.pubsub()
    try:
        p.ssubscribe("shard-a", "shard-b")
        p.subscribe("shard-a")
        seen = [p.get_message(timeout=2) for _ in range(3)]
        assert [(m["type"], m["channel"], m["data"]) for m in seen] == [
            ("ssubscribe", "shard-a", 1),
            ("ssubscribe", "shard-b", 2),
            ("subscribe", "shard-a", 1),
        ]
        assert r.pubsub_shardnumsub("shard-a", "nosuch") == [("shard-a", 1), ("nosuch", 0)]
        assert sorted(r.pubsub_shardchannels()) == ["shard-a", "shard-b"]
        assert sorted(r.pubsub_shardchannels("*-b")) == ["shard-b"]
        assert r.spublish("shard-a", "hello") == 1
        assert r.publish("shard-a", "plain") == 1
        assert r.spublish("shard-c", "nobody") == 0
        messages = [p.get_message(timeout=2) for _ in range(2)]
        assert [(m["type"], m["channel"], m["data"]) for m in messages] == [
            ("smessage", "shard-a", "hello"),
            ("message", "shard-a", "plain"),
        ]
        p.ping()  # redis-py's health check PING works while shard-subscribed
        assert p.get_message(timeout=2)["type"] == "pong"
        p.sunsubscribe("shard-a")
        assert p.get_message(timeout=2)["type"] == "sunsubscribe"
        assert r.spublish("shard-a", "late") == 0
        p.sunsubscribe()
        p.unsubscribe()
        kinds = sorted(p.get_message(timeout=2)["type"] for _ in range(2))
        assert kinds == ["sunsubscribe", "unsubscribe"]
        assert not p.subscribed
        assert r.pubsub_shardnumsub("shard-b") == [("shard-b", 0)]
        assert "pubsubshard_channels" in r.info("stats")
    finally:
        p.close()
        r.close()


def test_redis_py_asyncio_sharded_pubsub(standalone_url):
    """The asyncio client, as the service uses it: get_message(timeout=None) in a loop."""

    async def scenario():
        r = aioredis.Redis.from_url(standalone_url, decode_responses=True)
        p = r.pubsub(ignore_subscribe_messages=True)
        try:
            await p.ssubscribe("s1")
            await p.subscribe("c1")
            received = []

            async def listen():
                while len(received) < 3:
                    message = await p.get_message(timeout=None)
                    if message is not None:
                        received.append((message["type"], message["channel"], message["data"]))

            task = asyncio.ensure_future(listen())

            async def subscribed() -> bool:
                return (await r.pubsub_shardnumsub("s1"))[0][1] == 1

            await wait_until_async(subscribed, interval=0.01, message="s1 never subscribed")
            assert await r.spublish("s1", "one") == 1
            assert await r.spublish("c1", "not for the channel") == 0
            assert await r.publish("c1", "two") == 1
            assert await r.spublish("s1", "three") == 1
            await asyncio.wait_for(task, 5)
            assert received == [
                ("smessage", "s1", "one"),
                ("message", "c1", "two"),
                ("smessage", "s1", "three"),
            ]
            await p.sunsubscribe("s1")
            await p.unsubscribe("c1")
        finally:
            await p.aclose()
            await r.aclose()

    asyncio.run(asyncio.wait_for(scenario(), 20))
