"""The node as a restricted store user: exactly the ACL line README.md ("Redis or Valkey")
gives, on redis-server and on the bundled store, each started with an aclfile holding it.

The multi-node scenario of test_multinode.py (join, message, poll through both nodes,
exactly one offline per silent user) runs as that user; commands, keys and channels
outside the grant are refused with NOPERM. Without keyspace events and without CONFIG SET,
start-up stops with the message saying what to set.
"""

from __future__ import annotations

import asyncio

import pytest
import redis

from presence.service.gateway import Gateway, StoreSetupError
from presence.service.subscriber import Subscriber
from presence.service.transport import connect
from presence.testing import bundled_store, redis_server
from tests.helpers import ClusterURL, wait_until_async
from tests.service.helpers import make_presence
from tests.service.test_multinode import TIMEOUT, watch

# The README's line, after `ACL SETUSER presence` (keep the two the same).
RULES = (
    "on >s3cret resetkeys ~presence:* resetchannels &presence:* &__keyevent@*__:expired "
    "-@all +ping +hello +info +config|get +config|set +get +set +del +exists +mget +incr +pttl "
    "+pexpire +pexpireat +hget +hset +hsetnx +hdel +hgetall +rpush +lrange +ltrim +llen "
    "+lindex +zadd +zcard +zcount +zincrby +zrange +zrangebylex +zrangebyscore +zrem "
    "+zremrangebyscore +zscore +watch +unwatch +multi +exec +discard +subscribe +unsubscribe "
    "+ssubscribe +sunsubscribe +spublish"
)  # and +cluster|slots on a Redis Cluster (the bundled store has no CLUSTER command)
# redis-py names its connections with CLIENT SETINFO (Redis 7.2+, Valkey, the bundled store;
# unknown to Redis 7.0, whose ACL SETUSER refuses the rule). Refused, it is only logged.
SETINFO = " +client|setinfo"
ADMIN = "adminpw"


def _aclfile(tmp_path, rules: str) -> str:
    path = tmp_path / "users.acl"
    path.write_text(f"user default on >{ADMIN} ~* &* +@all\nuser presence {rules}\n")
    return str(path)


def _server(kind: str, aclfile: str, events: bool = True):
    if kind == "redis":
        flags = "Ex" if events else ""
        return redis_server("--aclfile", aclfile, "--notify-keyspace-events", flags)
    extra = ("--keys-expire-notify", "presence:expired") if events else ()
    return bundled_store("--aclfile", aclfile, *extra)  # as `presence serve` runs it


@pytest.fixture(params=["redis", "store", "cluster"])
def restricted_url(request, tmp_path):
    if request.param == "cluster":  # the session's cluster: the user on every node, then gone
        cluster = request.getfixturevalue("redis_cluster")
        nodes = cluster.alive
        for port in nodes:
            with cluster.client(port) as client:
                client.execute_command("ACL", "SETUSER", "presence", "reset", *RULES.split())
                client.execute_command("ACL", "SETUSER", "presence", "+cluster|slots")
                if port in cluster.primaries():
                    client.flushall()
                client.acl_log_reset()
        try:
            yield ClusterURL(cluster.url.replace("redis://", "redis://presence:s3cret@"))
        finally:
            for port in nodes:
                with cluster.client(port) as client:
                    client.acl_deluser("presence")
        return
    rules = RULES + (SETINFO if request.param == "store" else "")
    with _server(request.param, _aclfile(tmp_path, rules)) as port:
        yield f"redis://presence:s3cret@127.0.0.1:{port}/0"


@pytest.fixture
def nodes(restricted_url, io_loop):
    made = [make_presence(restricted_url, timeout=TIMEOUT, poll_timeout=0.4) for _ in range(2)]
    subscribers = [Subscriber(n, sweep_interval=1) for n in made]
    io_loop.run_sync(lambda: asyncio.gather(*(s.start() for s in subscribers)))
    yield made
    for s, n in zip(subscribers, made, strict=False):
        io_loop.run_sync(s.stop)
        io_loop.run_sync(n.gateway.close)


@pytest.mark.gen_test(timeout=30)
async def test_multinode_scenario_as_the_restricted_user(nodes, restricted_url):
    a, b = nodes
    await a.join("room", "watcher", "w", None)
    silent = [f"user{i}" for i in range(4)]
    for i, user in enumerate(silent):
        await nodes[i % 2].join("room", user, f"c{i}", None)
    await b.send("room", "user0", "hello")
    await a.join("room", "leaver", "l", None)
    await b.leave("room", "leaver", "l")

    def all_offline(events):
        return {e["user"] for e in events if e["type"] == "offline"} == set(silent)

    events = await watch(nodes, all_offline, limit=15)
    ids = [e["id"] for e in events]
    assert ids == list(range(1, len(ids) + 1))
    assert sorted(e["user"] for e in events if e["type"] == "offline") == sorted(silent)
    assert [e["type"] for e in events[:6]] == ["join"] * 5 + ["message"]
    await wait_until_async(
        lambda: a.stats.events["offline"] + b.stats.events["offline"] == len(silent)
    )
    assert await a.gateway.ping()
    gateway = await Gateway.connect(restricted_url)  # as `presence serve`: INFO cluster
    assert gateway.cluster == isinstance(restricted_url, ClusterURL)
    await gateway.close()
    for client in a.gateway.primaries():  # nothing was refused (ACL LOG as the admin)
        port = client.connection_pool.connection_kwargs["port"]
        admin = {} if isinstance(restricted_url, ClusterURL) else {"password": ADMIN}
        with redis.Redis(port=port, **admin) as c:
            assert c.acl_log() == []


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("KEYS", "*"),
        ("SCAN", "0"),
        ("GET", "other:key"),
        ("SET", "other:key", "1"),
        ("PUBLISH", "other", "x"),
        ("SUBSCRIBE", "other"),
        ("FLUSHDB",),
        ("CONFIG", "RESETSTAT"),
        ("CLIENT", "LIST"),
        ("ACL", "LIST"),
        ("EVAL", "return 1", "0"),
        ("SHUTDOWN", "NOSAVE"),
    ],
)
def test_outside_the_grant_is_refused(restricted_url, command):
    with (
        redis.Redis.from_url(restricted_url) as client,
        pytest.raises(redis.exceptions.NoPermissionError),
    ):
        client.execute_command(*command)


@pytest.mark.parametrize("kind", ["redis", "store"])
@pytest.mark.gen_test(timeout=30)
async def test_no_expiry_events_and_no_config_set_stops_start_up(kind, tmp_path):
    rules = RULES.replace(" +config|set", "") + (SETINFO if kind == "store" else "")
    with _server(kind, _aclfile(tmp_path, rules), events=False) as port:
        node = make_presence(f"redis://presence:s3cret@127.0.0.1:{port}/0", timeout=TIMEOUT)
        try:
            with pytest.raises(StoreSetupError, match="notify-keyspace-events Ex"):
                await Subscriber(node).start()
        finally:
            await node.gateway.close()


@pytest.mark.parametrize("kind", ["redis", "store"])
@pytest.mark.gen_test(timeout=30)
async def test_a_user_without_info_stops_start_up_saying_to_grant_it(kind, tmp_path):
    """Without INFO the node cannot tell a cluster from a standalone server: it says so
    instead of guessing (a guess of "standalone" on a cluster fails later, misleadingly)."""
    rules = RULES.replace(" +info", "") + (SETINFO if kind == "store" else "")
    with _server(kind, _aclfile(tmp_path, rules)) as port:
        url = f"redis://presence:s3cret@127.0.0.1:{port}/0"
        for mode in ("auto", "cluster", "standalone"):
            with pytest.raises(StoreSetupError, match=r"grant it \+info"):
                await connect(url, mode)
