"""Fixtures for store tests: raw clients to the bundled store and to real redis-server."""

import pytest

from tests.store.rawclient import RawClient


class Pair:
    """One raw client to the bundled store and one to redis-server, fed the same commands."""

    def __init__(self, store_port: int, redis_port: int) -> None:
        self.store_port, self.redis_port = store_port, redis_port
        self.store = RawClient(store_port)
        self.redis = RawClient(redis_port)

    def call(self, *args) -> tuple[bytes, bytes]:
        return self.store.call(*args), self.redis.call(*args)

    def same(self, *args) -> bytes:
        """Send one command to both; assert the raw replies are identical; return the reply."""
        ours, theirs = self.call(*args)
        assert ours == theirs, f"{args!r}: store {ours!r} != redis {theirs!r}"
        return ours

    def close(self) -> None:
        self.store.close()
        self.redis.close()


@pytest.fixture
def pair(store_port, redis_port):
    """A fresh Pair on empty databases with notifications off."""
    p = Pair(store_port, redis_port)
    for client in (p.store, p.redis):
        client.call("FLUSHALL")
        client.call("CONFIG", "SET", "notify-keyspace-events", "")
    yield p
    p.close()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def proto(request, pair):
    """Runs the test under RESP2 and again after HELLO 3 on both servers."""
    if request.param == 3:
        pair.store.call("HELLO", "3")
        pair.redis.call("HELLO", "3")
    return request.param


@pytest.fixture
def store(store_port):
    """A raw client to the bundled store on an empty keyspace."""
    client = RawClient(store_port)
    client.call("FLUSHALL")
    yield client
    client.close()
