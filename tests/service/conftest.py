"""pytest-tornado 0.8's io_loop fixture uses IOLoop.make_current/clear_current, deprecated in
Tornado 6.2; the warnings say nothing about this code, so they are silenced here."""

import pytest

from tests.service.helpers import FakeClock, make_presence

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


@pytest.fixture
def clock():
    """A fake clock shared by the nodes of one test."""
    return FakeClock()


@pytest.fixture
def node(store_url, clock, io_loop):
    """A presence domain node on the test store, closed afterwards."""
    presence = make_presence(store_url, clock)
    yield presence
    io_loop.run_sync(presence.gateway.close)


@pytest.fixture
def other_node(store_url, clock, io_loop):
    """A second node on the same store and clock (a multi-node deployment)."""
    presence = make_presence(store_url, clock)
    yield presence
    io_loop.run_sync(presence.gateway.close)
