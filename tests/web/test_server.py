"""presence.web.app's HTTPServer and access log: Tornado's behaviour, at a lower cost."""

import logging

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.netutil import bind_sockets

from presence.web.app import WebSettings, make_app, make_server
from tests.service.helpers import make_presence


@pytest.fixture
def served(store_url, tmp_path, io_loop, http_engine):
    model = make_presence(store_url)
    settings = WebSettings(static_dir=tmp_path, access_log="all")
    server = make_server(make_app(model, settings), http_engine)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    server.stop()
    io_loop.run_sync(server.close_all_connections)
    io_loop.run_sync(model.gateway.close)


@pytest.mark.gen_test
async def test_access_log_names_the_client_address_from_proxy_headers_or_the_socket(served, caplog):
    client = AsyncHTTPClient()
    with caplog.at_level(logging.INFO, logger="tornado.access"):
        await client.fetch(served + "/healthz")
        await client.fetch(served + "/healthz", headers={"X-Real-Ip": "203.0.113.7"})
        await client.fetch(served + "/healthz", headers={"X-Forwarded-For": "198.51.100.1"})
        await client.fetch(served + "/nowhere", raise_error=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "tornado.access"]
    assert [line.rsplit(" ", 1)[0] for line in lines] == [
        "200 GET /healthz (127.0.0.1)",
        "200 GET /healthz (203.0.113.7)",
        "200 GET /healthz (198.51.100.1)",
        "404 GET /nowhere (127.0.0.1)",
    ]
    assert [r.levelno for r in caplog.records if r.name == "tornado.access"] == [
        logging.INFO
    ] * 3 + [logging.WARNING]


@pytest.mark.gen_test
async def test_access_log_below_its_level_writes_nothing(served, caplog):
    with caplog.at_level(logging.ERROR, logger="tornado.access"):
        await AsyncHTTPClient().fetch(served + "/nowhere", raise_error=False)
    assert not [r for r in caplog.records if r.name == "tornado.access"]
