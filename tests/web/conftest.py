"""pytest-tornado 0.8's io_loop fixture uses IOLoop.make_current/clear_current, deprecated in
Tornado 6.2; the warnings say nothing about this code, so they are silenced here."""

import pytest

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
