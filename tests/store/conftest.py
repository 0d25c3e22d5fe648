"""Fixtures for store tests: raw clients to the bundled store and to real redis-server."""

import pytest

from tests.store.helpers import Events, Pair
from tests.store.rawclient import RawClient


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


@pytest.fixture
def events(pair, store_port, redis_port):
    """Keyspace and keyevent notifications (KEA) captured from both servers (see Events).

    test_notify.py overrides it with a Listener of its own."""
    e = Events(pair, store_port, redis_port)
    yield e
    e.close()
