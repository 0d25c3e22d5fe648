"""pytest-tornado 0.8's io_loop fixture uses IOLoop.make_current/clear_current, deprecated in
Tornado 6.2; the warnings say nothing about this code, so they are silenced here."""

import pytest

from tests.service.helpers import ClusterURL

_QUIET = [
    pytest.mark.filterwarnings("ignore:make_current is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:clear_current is deprecated:DeprecationWarning"),
]


def pytest_collection_modifyitems(config, items):
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.fspath).startswith(here):
            for mark in _QUIET:
                item.add_marker(mark)


@pytest.fixture(params=["redis", "store", "cluster"])
def store_url(request):
    """URL of an emptied store: each test using it runs on redis-server, the bundled store
    and a 3-primary Redis Cluster (a ClusterURL, so make_presence routes by slot)."""
    import redis

    if request.param == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        for port in cluster.primaries():
            with redis.Redis(port=port) as client:
                client.flushall()
        return ClusterURL(cluster.url)
    port = request.getfixturevalue("store_port" if request.param == "store" else "redis_port")
    with redis.Redis(port=port) as client:
        client.flushall()
    return f"redis://127.0.0.1:{port}/0"
