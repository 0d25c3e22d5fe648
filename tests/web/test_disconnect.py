"""The disconnect grace through HTTP: the close of a held poll's connection, seen by Tornado.

A raw socket sends a poll and closes it while the poll is held: with --disconnect-grace the
user is `offline` well before --timeout (30 s here). A poll that was answered and whose
keep-alive connection then closes changes nothing.
"""

import asyncio
import json
from urllib.parse import urlencode

import pytest
from tornado.netutil import bind_sockets

from presence.service.names import format_cursor
from presence.service.subscriber import Subscriber
from presence.web.app import WebSettings, make_app, make_server
from tests.helpers import wait_until_async
from tests.service.helpers import make_presence

GRACE = 0.3


@pytest.fixture
def served(standalone_url, tmp_path, io_loop, http_engine):
    model = make_presence(standalone_url, poll_timeout=10, disconnect_grace=GRACE)
    subscriber = Subscriber(model, sweep_interval=30)
    io_loop.run_sync(subscriber.start)
    server = make_server(make_app(model, WebSettings(static_dir=tmp_path)), http_engine)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    yield model, sockets[0].getsockname()[1]
    server.stop()
    io_loop.run_sync(server.close_all_connections)
    io_loop.run_sync(subscriber.stop)
    io_loop.run_sync(model.gateway.close)


async def request(port, path, **params):
    """GET `path` on a raw connection: (reader, writer) after the request is sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    query = urlencode(params)
    writer.write(f"GET {path}?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def answer(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))  # fmt: skip
    return json.loads(await reader.readexactly(length))


async def join(model, user):
    """Join `user` (tab "tab1"); returns the cursor after every event so far."""
    await model.join("room", user, "tab1", None)
    log = await model.gateway.read_channel("room", 0)
    return format_cursor(log.epoch, log.seq)


@pytest.mark.gen_test(timeout=20)
async def test_a_closed_held_poll_makes_its_user_offline_after_the_grace(served):
    model, port = served
    await join(model, "watcher")
    cursor = await join(model, "alice")
    _, writer = await request(port, "/channels/room/poll", user="alice", conn="tab1",
                              cursor=cursor)  # fmt: skip
    await wait_until_async(lambda: model.pending == 1)  # held
    writer.close()
    await wait_until_async(lambda: model.stats.events["offline"] == 1, timeout=10)
    got = await model.gateway.read_channel("room", 2)
    assert [(e["type"], e["user"]) for e in got.events] == [("offline", "alice")]


@pytest.mark.gen_test(timeout=20)
async def test_closing_after_an_answered_poll_changes_nothing(served):
    model, port = served
    cursor = await join(model, "alice")
    await model.send("room", "alice", "hi")  # so the poll is answered at once
    reader, writer = await request(port, "/channels/room/poll", user="alice", conn="tab1",
                                   cursor=cursor)  # fmt: skip
    assert [e["type"] for e in (await answer(reader))["events"]] == ["message"]
    writer.close()
    await asyncio.sleep(GRACE * 3)
    key = model.gateway.keys("room").online("alice")
    assert await model.gateway.redis.pttl(key) > 20_000
    assert model.stats.events["offline"] == 0
