"""Two service apps (each with its own subscriber) on one store, driven over HTTP.

A watcher's polls alternate between the two nodes while silent users time out: the
watcher sees exactly one `offline` per silent user and every event id once, in order.
"""

import asyncio
import json
from urllib.parse import urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.testing import bind_unused_port

from presence.service.subscriber import Subscriber
from presence.web.app import WebSettings, make_app, make_server
from tests.service.helpers import make_presence

TIMEOUT = 1.0


@pytest.fixture
def nodes(store_url, io_loop, http_engine):
    """Base URLs of two running nodes."""
    started = []

    async def start(name):
        model = make_presence(store_url, timeout=TIMEOUT, poll_timeout=0.4)
        subscriber = Subscriber(model, sweep_interval=30)
        await subscriber.start()
        sock, port = bind_unused_port()
        server = make_server(make_app(model, WebSettings(node_id=name)), http_engine)
        server.add_sockets([sock])
        started.append((server, subscriber, model))
        return f"http://127.0.0.1:{port}"

    urls = [io_loop.run_sync(lambda: start("a")), io_loop.run_sync(lambda: start("b"))]
    yield urls
    for server, subscriber, model in started:
        server.stop()
        io_loop.run_sync(subscriber.stop)
        io_loop.run_sync(model.gateway.close)


async def call(base, action, **params):
    response = await AsyncHTTPClient().fetch(
        f"{base}/channels/room/{action}?{urlencode(params)}", request_timeout=10
    )
    return json.loads(response.body)


@pytest.mark.gen_test(timeout=20)
async def test_polls_alternating_between_nodes_see_each_offline_once(nodes):
    watcher = {"user": "watcher", "conn": "w"}
    cursor = (await call(nodes[0], "join", **watcher))["cursor"]
    silent = [f"user{i}" for i in range(4)]
    for i, user in enumerate(silent):
        await call(nodes[i % 2], "join", user=user, conn=f"c{i}")
    seen, i = [], 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len([e for e in seen if e["type"] == "offline"]) < len(silent) and loop.time() < deadline:
        answer = await call(nodes[i % 2], "poll", cursor=cursor, **watcher)
        seen += answer["events"]
        cursor, i = answer["cursor"], i + 1
    assert [e["id"] for e in seen] == list(range(2, 2 + len(seen)))
    assert sorted(e["user"] for e in seen if e["type"] == "offline") == silent
    assert [(e["type"], e["user"]) for e in seen[:4]] == [("join", u) for u in silent]
    for base in nodes:
        ready = await AsyncHTTPClient().fetch(f"{base}/readyz")
        assert json.loads(ready.body)["ready"] is True


@pytest.mark.gen_test(timeout=20)
async def test_a_poll_held_on_one_node_wakes_for_an_event_on_the_other(nodes):
    watcher = {"user": "watcher", "conn": "w"}
    cursor = (await call(nodes[1], "join", **watcher))["cursor"]
    held = asyncio.ensure_future(call(nodes[1], "poll", cursor=cursor, **watcher))
    await asyncio.sleep(0.1)
    assert not held.done()
    await call(nodes[0], "send", data="hello from a", **watcher)
    answer = await held
    assert [(e["type"], e["data"]) for e in answer["events"]] == [("message", "hello from a")]
