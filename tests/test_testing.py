"""presence.testing: the dev-tools launchers, above all the real Redis Cluster.

The cluster tests use the session's `redis_cluster` fixture (3 primaries, 3 replicas),
except the one that kills a node, which starts a cluster of its own. Every wait polls
(the machine is small and shared): nothing sleeps for a fixed time and then asserts.
"""

import os
import socket

import pytest
import redis

from presence import testing
from presence.testing import ToolMissing, bundled_store, find_tool, free_ports, redis_server
from tests.helpers import wait_until

KEYS = [f"launcher:{i}" for i in range(200)]  # 200 keys: every shard gets some


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_free_ports_are_distinct():
    ports = free_ports(20)
    assert len(set(ports)) == 20


def test_find_tool_raises_tool_missing():
    with pytest.raises(ToolMissing) as info:
        find_tool("no-such-tool-presence-testing")
    assert info.value.tool == "no-such-tool-presence-testing"


@pytest.mark.parametrize("launcher", [redis_server, bundled_store], ids=["redis", "store"])
def test_single_server_launchers_answer_and_stop(launcher):
    with launcher() as port, redis.Redis(port=port) as client:
        assert client.ping()
    wait_until(lambda: not accepts(port), timeout=10, message=f"port {port} still open")


def write_keys(client) -> None:
    for key in KEYS:
        client.set(key, key)


def test_cluster_client_reads_and_writes_every_shard(redis_cluster):
    redis_cluster.wait_ok()
    with redis.cluster.RedisCluster.from_url(redis_cluster.url) as client:
        write_keys(client)
        assert [client.get(k) for k in KEYS] == [k.encode() for k in KEYS]
        primaries = redis_cluster.primaries()
        assert len(primaries) == 3 and len(redis_cluster.replicas()) == 3
        for port in primaries:
            with redis_cluster.client(port) as node:
                assert node.dbsize() > 0, f"primary {port} holds none of the keys"
        client.delete(*KEYS)


def test_cluster_roles_and_slots_are_consistent(redis_cluster):
    redis_cluster.wait_ok()
    primaries, replicas = redis_cluster.primaries(), redis_cluster.replicas()
    assert sorted(primaries + replicas) == sorted(redis_cluster.ports)
    for replica in replicas:
        assert redis_cluster.primary_of(replica) in primaries
    for primary in primaries:
        assert len(redis_cluster.replicas_of(primary)) == 1
    owners = redis_cluster.slot_owners(primaries[0])
    assert owners is not None and set(owners.values()) == set(primaries)


def test_failover_flips_roles(redis_cluster):
    redis_cluster.wait_ok()
    replica = redis_cluster.replicas()[0]
    primary = redis_cluster.primary_of(replica)
    with redis_cluster.cluster_client() as client:
        write_keys(client)
        redis_cluster.failover(replica)
        assert replica in redis_cluster.primaries()
        assert primary in redis_cluster.replicas()
        assert redis_cluster.primary_of(primary) == replica
        # the client follows the MOVED replies to the new primary
        assert [client.get(k) for k in KEYS] == [k.encode() for k in KEYS]
        client.delete(*KEYS)
    with pytest.raises(ValueError):
        redis_cluster.failover(replica)  # a primary now


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_killing_a_primary_promotes_its_replica():
    with testing.redis_cluster(extra=("--notify-keyspace-events", "Ex")) as cluster:
        for port in cluster.ports:  # extra arguments reach every node
            with cluster.client(port, decode_responses=True) as node:
                assert node.config_get("notify-keyspace-events") == {"notify-keyspace-events": "xE"}
        with cluster.cluster_client() as client:
            write_keys(client)
        primary = cluster.primaries()[0]
        (replica,) = cluster.replicas_of(primary)
        with cluster.client(primary) as node:
            assert node.wait(1, 10_000) == 1  # the replica has every write before the kill
        cluster.kill(primary)
        assert primary not in cluster.alive
        cluster.wait_promoted(replica)  # node timeout 1 s: about 2-3 s
        assert replica in cluster.primaries()
        assert primary not in cluster.primaries() + cluster.replicas()
        with cluster.cluster_client() as client:
            assert [client.get(k) for k in KEYS] == [k.encode() for k in KEYS]
        workdir, procs = cluster.workdir, list(cluster.procs.values())
    assert all(proc.poll() is not None for proc in procs)
    assert not os.path.exists(workdir)
