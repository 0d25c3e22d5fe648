"""Fixtures shared by every test package: real server processes on free ports."""

import pytest

from tests.servers import bundled_store, redis_server


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


@pytest.fixture(params=["store", "redis"])
def any_port(request):
    """Each test using this runs twice: against the bundled store and against real redis-server."""
    return request.getfixturevalue("store_port" if request.param == "store" else "redis_port")


@pytest.fixture(params=["redis", "store"])
def store_url(request):
    """URL of an emptied store; each test using this runs against real redis-server and the bundled store."""
    import redis

    port = request.getfixturevalue("store_port" if request.param == "store" else "redis_port")
    with redis.Redis(port=port) as client:
        client.flushall()
    return f"redis://127.0.0.1:{port}/0"
