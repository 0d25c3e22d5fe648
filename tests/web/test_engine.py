"""HTTP/1.1 on the wire, the same on both engines (`--http-engine own` and `tornado`):
keep-alive, pipelining, bodies by Content-Length and chunked, HTTP/1.0, 100-continue, and
the limits answered in order behind the requests before them. (The limits themselves:
test_limits.py, which runs on both engines too.)"""

import asyncio

import pytest

from presence.web.limits import Limits
from tests.helpers import wait_until_async
from tests.web.live import answer_json, exchange, parse_answer

JOIN = "/channels/room/join?user=alice&conn=tab1"
BEAT = "/channels/room/heartbeat?user=alice&conn=tab1"


def request(target: str, headers: str = "", body: bytes = b"", method: str = "GET",
            version: str = "HTTP/1.1") -> bytes:  # fmt: skip
    return f"{method} {target} {version}\r\nHost: x\r\n{headers}\r\n".encode() + body


def answers(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Every answer of a raw stream of HTTP/1.1 answers (bodies by Content-Length)."""
    found = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        status, headers, _ = parse_answer(head + b"\r\n\r\n")
        length = int(headers.get("content-length", "0"))
        found.append((status, headers, rest[:length]))
        raw = rest[length:]
    return found


async def members(node):
    page = await node.model.channel("room", None, 100)
    return None if page is None else [m.user for m in page.members]


@pytest.mark.gen_test
async def test_pipelined_requests_are_answered_in_order_on_one_connection(start_node):
    node = start_node()
    data = b"".join(
        [
            request(JOIN),
            request(BEAT + "&callback=cb"),
            request("/healthz"),
            request("/nowhere"),
            request(BEAT, "Connection: close\r\n"),
        ]
    )
    got = answers(await exchange(node.port, data))
    assert [status for status, _, _ in got] == [200, 200, 200, 404, 200]
    assert answer_json(got[0][2])["members"][0]["user"] == "alice"
    assert got[1][2].startswith(b"/**/ typeof cb === 'function' && cb(")
    assert got[4][1]["connection"] == "close"


@pytest.mark.gen_test
async def test_a_request_pipelined_behind_a_held_poll_waits_for_its_answer(start_node):
    node = start_node(poll_timeout=0.5)
    cursor = (await node.model.join("room", "alice", "tab1", None))["cursor"]
    poll = f"/channels/room/poll?user=alice&conn=tab1&cursor={cursor}"
    data = request(poll) + request(BEAT, "Connection: close\r\n")
    got = answers(await exchange(node.port, data))
    assert [status for status, _, _ in got] == [200, 200]
    assert answer_json(got[0][2])["events"] == []  # held until the poll timeout, then the beat
    assert answer_json(got[1][2]) == {"ok": True}


@pytest.mark.gen_test
async def test_keep_alive_serves_request_after_request_until_close(start_node):
    node = start_node()
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    for target in [JOIN, BEAT, "/healthz", BEAT]:
        writer.write(request(target))
        head = await reader.readuntil(b"\r\n\r\n")
        status, headers, _ = parse_answer(head)
        assert status == 200 and "connection" not in headers
        await reader.readexactly(int(headers["content-length"]))
    writer.write(request(BEAT, "Connection: close\r\n"))
    status, headers, _ = parse_answer(await reader.read())  # (read until closed)
    assert status == 200 and headers["connection"] == "close"
    writer.close()


@pytest.mark.gen_test
async def test_http_1_0_closes_unless_it_asks_for_keep_alive(start_node):
    node = start_node()
    await node.model.join("room", "alice", "tab1", None)
    for path in [BEAT, "/healthz"]:
        status, headers, _body = parse_answer(
            await exchange(node.port, request(path, version="HTTP/1.0"))
        )  # (closed after the answer: exchange reads until the close)
        assert status == 200 and "connection" not in headers
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    for path in [BEAT, "/healthz"]:
        writer.write(request(path, "Connection: keep-alive\r\n", version="HTTP/1.0"))
        status, headers, _ = parse_answer(await reader.readuntil(b"\r\n\r\n"))
        assert status == 200 and headers["connection"] == "Keep-Alive"
        await reader.readexactly(int(headers["content-length"]))
    writer.close()


@pytest.mark.gen_test
async def test_bodies_by_content_length_and_chunked_are_read(start_node):
    node = start_node()
    form = b"user=alice&conn=tab1"
    head = f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(form)}\r\n"
    json_body = b'{"user":"bob","conn":"tab2"}'
    chunked = b"5\r\n" + json_body[:5] + b"\r\n%x\r\n" % (len(json_body) - 5)
    chunked += json_body[5:] + b"\r\n0\r\n\r\n"
    data = request("/channels/room/join", head, form, "POST") + request(
        "/channels/room/join",
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n",
        chunked,
        "POST",
    )
    got = answers(await exchange(node.port, data))
    assert [status for status, _, _ in got] == [200, 200]
    assert sorted(await members(node)) == ["alice", "bob"]


@pytest.mark.gen_test
async def test_a_body_that_arrives_in_pieces_is_read_whole(start_node):
    node = start_node()
    body = b'{"user":"alice","conn":"tab1","info":{"name":"' + b"A" * 900 + b'"}}'
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    writer.write(request("/channels/room/join", "Content-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n",
                         method="POST"))  # fmt: skip
    for i in range(0, len(body), 700):
        await asyncio.sleep(0.01)
        writer.write(body[i : i + 700])
    status, _, answer = parse_answer(await reader.read())
    assert status == 200 and answer_json(answer)["members"][0]["info"]["name"] == "A" * 900
    writer.close()


@pytest.mark.gen_test
async def test_expect_100_continue_gets_its_interim_answer(start_node):
    node = start_node()
    body = b'{"user":"alice","conn":"tab1"}'
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    writer.write(request("/channels/room/join", "Content-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n"
                         "Connection: close\r\n", method="POST"))  # fmt: skip
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 (Continue)\r\n\r\n"
    writer.write(body)
    raw = await reader.read()
    assert parse_answer(raw)[0] == 200, raw
    writer.close()


@pytest.mark.gen_test
async def test_head_answers_have_no_body(start_node):
    node = start_node()
    raw = await exchange(
        node.port, request("/static/presence.js", "Connection: close\r\n", method="HEAD")
    )
    status, headers, body = parse_answer(raw)
    assert status == 200 and int(headers["content-length"]) > 0 and body == b""


@pytest.mark.gen_test
async def test_a_refusal_comes_after_the_answers_to_the_requests_before_it(start_node):
    node = start_node(Limits(max_body_size=100))
    data = request(BEAT) + request(
        JOIN, "Content-Type: application/json\r\nContent-Length: 5000\r\n", method="POST"
    )
    got = answers(await exchange(node.port, data, timeout=3))
    assert [status for status, _, _ in got] == [200, 413]
    assert answer_json(got[1][2])["param"] == "body" and got[1][1]["connection"] == "close"


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz\r\nHost: x\r\n\r\n",  # no version
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n\r\n",  # no Host
        b"GET /channels/room/heartbeat?user=alice&conn=tab1 HTTP/1.1\r\n\r\n",  # no Host
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"POST /channels/room/join HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
)
async def test_requests_that_cannot_be_parsed_are_400_in_json(start_node, data):
    node = start_node()
    status, headers, body = parse_answer(await exchange(node.port, data, timeout=3))
    assert status == 400 and headers["connection"] == "close", data
    assert answer_json(body) == {"error": "malformed HTTP request", "param": "http"}


@pytest.mark.gen_test
async def test_an_idle_kept_alive_connection_is_closed_at_the_header_timeout(start_node):
    node = start_node(Limits(header_timeout=0.3))
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    writer.write(request("/healthz"))
    _status, headers, _ = parse_answer(await reader.readuntil(b"\r\n\r\n"))
    await reader.readexactly(int(headers["content-length"]))
    async with asyncio.timeout(5):
        assert await reader.read() == b""  # then idle: closed without a word
    writer.close()
    await wait_until_async(lambda: not node.server._connections)


@pytest.mark.gen_test
async def test_a_held_poll_is_not_cut_by_the_header_timeout(start_node):
    node = start_node(Limits(header_timeout=0.2), poll_timeout=0.6)
    cursor = (await node.model.join("room", "alice", "tab1", None))["cursor"]
    poll = f"/channels/room/poll?user=alice&conn=tab1&cursor={cursor}"
    got = answers(await exchange(node.port, request(poll, "Connection: close\r\n")))
    assert got[0][0] == 200 and answer_json(got[0][2])["events"] == []


@pytest.mark.gen_test
async def test_a_closed_poll_connection_releases_its_hold(start_node):
    node = start_node(poll_timeout=10)
    cursor = (await node.model.join("room", "alice", "tab1", None))["cursor"]
    _reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    writer.write(request(f"/channels/room/poll?user=alice&conn=tab1&cursor={cursor}"))
    await wait_until_async(lambda: node.model.pending == 1)
    writer.close()
    await wait_until_async(lambda: node.model.pending == 0)
    await wait_until_async(lambda: not node.server._connections)


@pytest.mark.gen_test
async def test_a_client_gone_with_a_request_pipelined_behind_its_held_poll_is_noticed(
    start_node, http_engine
):
    if http_engine == "tornado":
        pytest.skip("Tornado's HTTP/1 connection notices the close only when the poll ends")
    node = start_node(poll_timeout=10)
    cursor = (await node.model.join("room", "alice", "tab1", None))["cursor"]
    _, writer = await asyncio.open_connection("127.0.0.1", node.port)
    writer.write(request(f"/channels/room/poll?user=alice&conn=tab1&cursor={cursor}"))
    writer.write(request(BEAT))
    await wait_until_async(lambda: node.model.pending == 1)
    writer.close()
    await wait_until_async(lambda: node.model.pending == 0)  # long before the poll timeout
