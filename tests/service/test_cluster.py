"""What only a Redis Cluster (or a stock Redis) can show: failover, dead nodes, timers, set-up.

The scenarios every engine shares (join, poll, offline exactly once, leave, kick, reset)
run on the cluster through the `store_url` fixture of every service and web test; these
add a primary failing over under live users, a service node killed with SIGKILL, the
deadline timers that make offline real-time on Redis, and a store of the wrong kind.
"""

import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlencode

import pytest
import redis

from presence.service.gateway import Gateway
from presence.service.model import Presence
from presence.service.records import StoreSetupError, StoreUnavailable
from presence.service.subscriber import Subscriber
from presence.testing import ROOT, free_port, stop, wait_for_port
from tests.helpers import ClusterURL
from tests.service.helpers import make_presence

TIMEOUT = 1.5


def flushed(cluster) -> ClusterURL:
    for port in cluster.primaries():
        with redis.Redis(port=port) as client:
            client.flushall()
    return ClusterURL(cluster.url)


async def started(url: str, count: int = 2, **options) -> list[tuple[Presence, Subscriber]]:
    nodes = []
    for _ in range(count):
        presence = make_presence(url, timeout=TIMEOUT, poll_timeout=0.4, **options)
        subscriber = Subscriber(presence, sweep_interval=30)
        await subscriber.start()
        nodes.append((presence, subscriber))
    return nodes


async def stopped(nodes) -> None:
    for presence, subscriber in nodes:
        await subscriber.stop()
        await presence.gateway.close()


async def poll_on(node: Presence, channel: str, user: str, conn: str, cursor):
    """One poll that rides out a failover: a store error is retried, as clients do."""
    for _ in range(100):
        try:
            return await node.poll(channel, user, conn, cursor)
        except StoreUnavailable:
            await asyncio.sleep(0.1)
    raise AssertionError("the store stayed unavailable")


@pytest.mark.gen_test(timeout=120)
async def test_a_failover_under_live_users_loses_and_doubles_nothing(redis_cluster):
    nodes = await started(flushed(redis_cluster))
    (a, _), (b, _) = nodes
    try:
        channel = "failover"
        owner = a.gateway.node_name(a.gateway.node_of(channel)).rsplit(":", 1)[1]
        cursor = (await a.join(channel, "watcher", "w", None))["cursor"]
        await b.join(channel, "stays", "s", None)
        await a.join(channel, "goes", "g", None)
        replica = redis_cluster.replicas_of(int(owner))[0]
        failover = asyncio.get_running_loop().run_in_executor(None, redis_cluster.failover, replica)
        seen: list[dict] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if failover.done() and any(e["type"] == "offline" for e in seen):
                break
            got = await poll_on(a if len(seen) % 2 else b, channel, "watcher", "w", cursor)
            await poll_on(b, channel, "stays", "s", "0")  # keeps "stays" online
            assert "reset" not in got
            seen += got["events"]
            cursor = got["cursor"]
        await failover
        ids = [e["id"] for e in seen]
        assert ids == list(range(ids[0], ids[0] + len(ids)))  # none lost, none twice
        assert [(e["type"], e["user"]) for e in seen if e["type"] == "offline"] == [
            ("offline", "goes")
        ]
        assert redis_cluster.role(replica) == "primary"
    finally:
        await stopped(nodes)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("engine", ["redis", "cluster"])
async def test_deadline_timers_claim_offline_without_any_expiry_notice(
    engine, redis_port, redis_cluster
):
    url = flushed(redis_cluster) if engine == "cluster" else f"redis://127.0.0.1:{redis_port}/0"
    if engine == "redis":
        with redis.Redis(port=redis_port) as client:
            client.flushall()
    node = make_presence(url, timeout=TIMEOUT, poll_timeout=0.4)
    node.enable_deadline_timers()  # and no subscriber: nothing hears the store's notices
    try:
        cursor = (await node.join("timed", "watcher", "w", None))["cursor"]
        await node.join("timed", "silent", "s", None)
        seen: list[dict] = []
        deadline = time.monotonic() + 15
        while not any(e["type"] == "offline" for e in seen) and time.monotonic() < deadline:
            got = await node.poll("timed", "watcher", "w", cursor)
            seen += got["events"]
            cursor = got["cursor"]
        assert [(e["type"], e["user"]) for e in seen] == [
            ("join", "silent"),
            ("offline", "silent"),
        ]
        assert node.stats.lag_count == 1
    finally:
        await node.gateway.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_store_of_the_other_kind_stops_start_up(redis_port, redis_cluster):
    with pytest.raises(StoreSetupError, match="--store-mode cluster"):
        await Gateway.connect(redis_cluster.url, mode="standalone")
    with pytest.raises(StoreSetupError, match="not a Redis Cluster node"):
        await Gateway.connect(f"redis://127.0.0.1:{redis_port}/0", mode="cluster")
    gateway = await Gateway.connect(redis_cluster.url)  # auto
    try:
        assert gateway.cluster and len(gateway.primaries()) == 3
    finally:
        await gateway.close()


@pytest.mark.gen_test(timeout=30)
async def test_expiry_events_are_turned_on_on_every_primary(redis_cluster):
    for port in redis_cluster.primaries():
        with redis.Redis(port=port) as client:
            client.config_set("notify-keyspace-events", "")
    gateway = await Gateway.connect(redis_cluster.url)
    try:
        setup = await gateway.expiry_setup()
        assert setup.channel == "__keyevent@0__:expired" and not setup.exact
        for port in redis_cluster.primaries():
            with redis.Redis(port=port, decode_responses=True) as client:
                flags = client.config_get("notify-keyspace-events")["notify-keyspace-events"]
                assert set("Ex") <= set(flags)
    finally:
        await gateway.close()


# -- service processes on the cluster -------------------------------------------------------


def serve(url: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "presence.cli", "serve", "--port", str(port), "--redis-url", url,
         "--timeout", "2", "--poll-timeout", "1", "--node-id", f"n{port}"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for_port(port, proc, timeout=30)
    return proc, port


def call(port: int, path: str, **params) -> dict:
    url = f"http://127.0.0.1:{port}{path}?{urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_two_nodes_on_a_cluster_survive_a_node_killed_with_sigkill(redis_cluster):
    url = flushed(redis_cluster)
    (first, p1), (second, p2) = serve(url), serve(url)
    try:
        watcher = {"user": "watcher", "conn": "w"}
        cursor = call(p2, "/channels/killed/join", **watcher)["cursor"]
        call(p1, "/channels/killed/join", user="orphan", conn="o")  # its timer lives on p1
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        seen: list[dict] = []
        deadline = time.monotonic() + 20
        while not any(e["type"] == "offline" for e in seen) and time.monotonic() < deadline:
            answer = call(p2, "/channels/killed/poll", cursor=cursor, **watcher)
            seen += answer["events"]
            cursor = answer["cursor"]
        assert [(e["type"], e["user"]) for e in seen] == [
            ("join", "orphan"),
            ("offline", "orphan"),
        ]
        # within --timeout (2 s) of the join plus the other node's sweep (every --timeout / 2)
        # plus a margin for a loaded machine: not left online, whichever path caught it
        joined, offline = seen[0]["ts"], seen[1]["ts"]
        assert 2000 <= offline - joined <= 2000 + 1000 + 2500
        members = call(p2, "/api/channels/killed")
        assert [m["user"] for m in members["members"]] == ["watcher"]
    finally:
        stop(first)
        stop(second)


def test_serve_refuses_a_cluster_when_told_standalone(redis_cluster):
    proc = subprocess.run(
        [sys.executable, "-m", "presence.cli", "serve", "--port", str(free_port()),
         "--redis-url", redis_cluster.url, "--store-mode", "standalone"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "is a node of a Redis Cluster" in proc.stderr and "--store-mode cluster" in proc.stderr
