"""Fixtures shared by every test package: real server processes on free ports.

A launcher of presence.testing raises ToolMissing when redis-server (or another tool) is
not installed; the hooks below turn that, wherever it is raised during a test's setup or
call, into a skip, or a failure under REQUIRE_ALL=1 (tests.helpers.missing_tool).
"""

import pytest

from presence import testing
from presence.testing import ToolMissing, bundled_store, redis_server
from tests.helpers import ClusterURL, missing_tool


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    try:
        return (yield)
    except ToolMissing as exc:
        missing_tool(exc)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    except ToolMissing as exc:
        missing_tool(exc)


@pytest.fixture(scope="session")
def redis_port():
    """Port of a redis-server started for this test session (skips without redis-server)."""
    with redis_server() as port:
        yield port


@pytest.fixture(scope="session")
def store_port():
    """Port of a bundled store process started for this test session."""
    with bundled_store() as port:
        yield port


@pytest.fixture(scope="session")
def redis_cluster():
    """A presence.testing.Cluster (3 primaries, 3 replicas) for this test session; skips
    without redis-server/redis-cli (fails under REQUIRE_ALL=1).

    Shared: a test may fail over nodes (roles change; ask .primaries()) but must leave the
    cluster healthy; a test that kills nodes starts a cluster of its own.
    """
    with testing.redis_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["store", "redis"])
def any_port(request):
    """Each test using this runs twice: against the bundled store and against real redis-server."""
    return request.getfixturevalue("store_port" if request.param == "store" else "redis_port")


def _emptied(*ports: int) -> None:
    import redis

    for port in ports:
        with redis.Redis(port=port) as client:
            client.flushall()


@pytest.fixture(params=["redis", "store"])
def standalone_url(request):
    """URL of an emptied standalone store: each test using it runs on redis-server and on
    the bundled store."""
    port = request.getfixturevalue("store_port" if request.param == "store" else "redis_port")
    _emptied(port)
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture(params=["redis", "store", "cluster"])
def store_url(request):
    """URL of an emptied store: each test using it runs on redis-server, the bundled store
    and a 3-primary Redis Cluster (a ClusterURL, so the service routes by slot)."""
    if request.param == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        _emptied(*cluster.primaries())
        return ClusterURL(cluster.url)
    port = request.getfixturevalue("store_port" if request.param == "store" else "redis_port")
    _emptied(port)
    return f"redis://127.0.0.1:{port}/0"
