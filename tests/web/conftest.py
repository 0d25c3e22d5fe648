"""pytest-tornado 0.8's io_loop fixture uses IOLoop.make_current/clear_current, deprecated in
Tornado 6.2; the warnings say nothing about this code, so they are silenced here.

Every node of these tests runs on each HTTP engine (`--http-engine`): the `http_engine`
fixture is "own" and "tornado", or only those named in PRESENCE_TEST_HTTP_ENGINES
(comma-separated). pytest-tornado's `http_server` is replaced by the node's server on it.
"""

import os

import pytest

ENGINES = os.environ.get("PRESENCE_TEST_HTTP_ENGINES", "own,tornado").split(",")

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


@pytest.fixture(params=ENGINES)
def http_engine(request):
    """The HTTP engine a test's node runs on: "own" or "tornado"."""
    return request.param


@pytest.fixture
def http_server(request, io_loop, _unused_port, http_engine):
    """pytest-tornado's http_server (the `app` fixture served on `http_port`), on the
    engine of `http_engine`, as `presence serve` runs it (xheaders on)."""
    from presence.web.app import make_server

    app = request.getfixturevalue(request.config.option.app_fixture)
    server = make_server(app, http_engine)
    server.add_sockets([_unused_port[0]])
    yield server
    server.stop()
    io_loop.run_sync(server.close_all_connections)


@pytest.fixture
def start_node(standalone_url, tmp_path, io_loop, http_engine):
    """start_node(limits=..., client_limits=..., secret=..., admin_token=...) -> tests.web.live.Node: a node
    over an emptied store (redis-server and the bundled store), stopped after the test."""
    from tornado.netutil import bind_sockets

    from presence.web.app import WebSettings, make_app, make_server
    from tests.service.helpers import make_presence
    from tests.web.live import Node

    (tmp_path / "presence.js").write_text("// client")
    started = []

    def start(limits=None, client_limits=None, secret=None, admin_token=None, **options):
        model = make_presence(standalone_url, limits=client_limits, **options)
        settings = WebSettings(admin_token, "n1", tmp_path, secret)
        if limits is not None:
            settings.limits = limits
        server = make_server(make_app(model, settings), http_engine, settings.limits)
        sockets = bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        node = Node(sockets[0].getsockname()[1], model, server)
        started.append(node)
        return node

    yield start
    for node in started:
        node.server.stop()
        io_loop.run_sync(node.server.close_all_connections)
        io_loop.run_sync(node.model.gateway.close)
