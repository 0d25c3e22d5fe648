"""The lean path of GET polls and heartbeats (presence.web.lean): the same answers, byte for
byte, as the same requests routed through the Application."""

import re

import pytest

from presence.web import auth
from tests.web.live import exchange, parse_answer

DATE = re.compile(rb"\r\nDate: [^\r]*")


def request(target: str, headers: str = "", method: str = "GET", body: bytes = b"") -> bytes:
    head = f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n"
    return head.encode() + body


async def both(node, data: bytes) -> tuple[bytes, bytes, int]:
    """(answer through the lean path, answer routed by the Application, routings seen by
    the Application during the lean request), the Date header left out."""
    app = node.server.request_callback
    routed = []
    find = app.find_handler

    def counting(request, **kwargs):
        routed.append(request.path)
        return find(request, **kwargs)

    app.find_handler = counting
    try:
        lean = DATE.sub(b"", await exchange(node.port, data))
        lean_routings = len(routed)
        saved = app.settings["lean_routes"]
        app.settings["lean_routes"] = {}
        try:
            plain = DATE.sub(b"", await exchange(node.port, data))
        finally:
            app.settings["lean_routes"] = saved
    finally:
        del app.find_handler
    assert len(routed) == lean_routings + 1  # the routed request was routed
    return lean, plain, lean_routings


CASES = [
    "/channels/room/heartbeat?user=alice&conn=tab1",
    "/channels/room/heartbeat?user=alice&conn=tab1&callback=cb.x",
    "/channels/room/poll?user=alice&conn=tab1&cursor={cursor}",
    "/channels/room/poll?user=alice&conn=tab1&cursor={cursor}&callback=f",
    "/channels/room/poll?user=bob&conn=tab9&cursor={cursor}",  # not joined: rejoin
    "/channels/room/heartbeat?user=nobody&conn=t",
    "/channels/room/poll?user=alice&conn=tab1&cursor=x:y",  # 400 cursor
    "/channels/room/poll?user=alice&conn=tab1",  # 400 cursor required
    "/channels/room/heartbeat?user=al%20ice&conn=tab1",  # 400 user
    "/channels/room/heartbeat?user=alice&conn=tab1&callback=alert(1)",  # 400 callback
    "/channels/ro%2Fom/heartbeat?user=alice&conn=tab1",  # 400 channel
    "/channels/private-room/heartbeat?user=alice&conn=tab1",  # 403 without --secret
    "/channels/room/heartbeat?user=alice&conn=tab1&user=al%00",  # the last value counts
]


@pytest.mark.gen_test
@pytest.mark.parametrize("target", CASES)
async def test_lean_answers_are_the_routed_answers(start_node, target):
    node = start_node(poll_timeout=0.2)
    joined = await node.model.join("room", "alice", "tab1", None)
    data = request(target.format(cursor=joined["cursor"]))
    lean, plain, routings = await both(node, data)
    assert routings == 0  # the lean request never reached the Application's router
    assert lean == plain
    assert lean.startswith(b"HTTP/1.1 ")


@pytest.mark.gen_test
async def test_lean_answers_check_tokens_like_routed_ones(start_node):
    node = start_node(secret="s3cret", poll_timeout=0.2)
    joined = await node.model.join("room", "alice", "tab1", None)
    token = auth.sign("s3cret", "alice")
    for target in [
        f"/channels/room/poll?user=alice&conn=tab1&cursor={joined['cursor']}&token={token}",
        "/channels/room/heartbeat?user=alice&conn=tab1",  # 400: token required
        "/channels/room/heartbeat?user=alice&conn=tab1&token=forged",  # 403
    ]:
        lean, plain, routings = await both(node, request(target))
        assert routings == 0 and lean == plain, target


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "data",
    [
        request(
            "/channels/room/heartbeat",
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 20\r\n",
            "POST",
            b"user=alice&conn=tab1",
        ),
        request("/channels/room/heartbeat?user=alice&conn=tab1", method="HEAD"),
        request("/channels/room/heartbeat?user=alice&conn=tab1", "Content-Length: 0\r\n"),
        request("/channels/room/heartbeat/?user=alice&conn=tab1"),
        request("/channels/room/join?user=alice&conn=tab1"),
    ],
)
async def test_other_requests_are_routed(start_node, data):
    node = start_node()
    await node.model.join("room", "alice", "tab1", None)
    lean, plain, routings = await both(node, data)
    assert routings == 1
    assert parse_answer(lean)[0] == parse_answer(plain)[0]


@pytest.mark.gen_test
async def test_lean_requests_are_counted_and_logged(start_node, caplog):
    node = start_node()
    await node.model.join("room", "alice", "tab1", None)
    before = node.model.stats.requests
    caplog.set_level("INFO", "tornado.access")
    raw = await exchange(node.port, request("/channels/room/heartbeat?user=alice&conn=tab1"))
    assert parse_answer(raw)[0] == 200
    assert node.model.stats.requests == before + 1
    raw = await exchange(node.port, request("/channels/room/heartbeat?user=alice&conn=t&token=x"))
    assert parse_answer(raw)[0] == 200
    bad = await exchange(node.port, request("/channels/room/heartbeat?user=alice"))
    assert parse_answer(bad)[0] == 400
    lines = [r.getMessage() for r in caplog.records if r.name == "tornado.access"]
    assert any(line.startswith("400 GET /channels/room/heartbeat?user=alice (") for line in lines)
