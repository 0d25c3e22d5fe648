"""The node's network limits, against a live node: each answered, none a silent close."""

import asyncio
import errno
import logging
import select
import socket

import pytest
from tornado.httpclient import AsyncHTTPClient

from presence.service.quotas import ClientLimits
from presence.web.limits import Acceptor, Limits, Throttle, listen_sockets
from tests.helpers import wait_until_async
from tests.web.live import JSONP, answer_json, exchange, parse_answer

JOIN = "/channels/room/join?user=alice&conn=tab1"


def request(target: str = "/healthz", headers: str = "", body: bytes = b"", method="GET"):
    head = f"{method} {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n"
    return head.encode() + body


async def members(node):
    page = await node.model.channel("room", None, 100)
    return None if page is None else [m.user for m in page.members]


@pytest.mark.gen_test
async def test_a_body_over_the_limit_is_413_from_its_headers_before_it_is_sent(start_node):
    node = start_node(Limits(max_body_size=1000))
    raw = await exchange(
        node.port,
        request(JOIN, "Content-Type: application/json\r\nContent-Length: 99000000\r\n", method="POST"),
        timeout=2,
    )  # fmt: skip
    status, headers, body = parse_answer(raw)
    assert status == 413 and headers["connection"] == "close"
    assert answer_json(body) == {"error": "the body must be at most 1000 bytes", "param": "body"}
    assert await members(node) is None


@pytest.mark.gen_test
async def test_a_413_reaches_a_client_that_sends_its_body_without_waiting(start_node):
    node = start_node(Limits(max_body_size=1000))
    body = b"[" * 300_000  # still arriving when the answer is written
    head = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    status, _, answer = parse_answer(
        await exchange(node.port, request(JOIN, head, body, "POST"), timeout=5)
    )  # (no reset: the node reads and drops the rest before it closes)
    assert status == 413 and answer_json(answer)["param"] == "body"
    assert await members(node) is None


@pytest.mark.gen_test
async def test_a_body_at_the_limit_is_read(start_node):
    node = start_node(Limits(max_body_size=1000))
    text = b'{"user":"alice","conn":"tab1","info":{"n":"' + b"x" * 900 + b'"}}'
    text += b" " * (1000 - len(text))
    raw = await exchange(
        node.port,
        request("/channels/room/join", "Content-Type: application/json\r\n"
                f"Content-Length: {len(text)}\r\nConnection: close\r\n", text, "POST"),
    )  # fmt: skip
    assert parse_answer(raw)[0] == 200
    assert await members(node) == ["alice"]


CHUNKED = "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
TOO_LARGE = {"error": "the body must be at most 1000 bytes", "param": "body"}


@pytest.mark.gen_test
async def test_a_chunked_body_over_the_limit_is_413_like_a_declared_one(start_node):
    node = start_node(Limits(max_body_size=1000))
    chunks = b"".join(b"200\r\n" + b" " * 512 + b"\r\n" for _ in range(100)) + b"0\r\n\r\n"
    raw = await exchange(node.port, request(JOIN, CHUNKED, chunks, "POST"), timeout=3)
    status, headers, body = parse_answer(raw)
    assert status == 413 and headers["connection"] == "close"
    assert answer_json(body) == TOO_LARGE
    assert await members(node) is None


@pytest.mark.gen_test
async def test_a_chunked_body_is_refused_from_a_chunk_size_before_the_chunk_is_read(start_node):
    node = start_node(Limits(max_body_size=1000, body_timeout=30))
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    # 100 bytes, then a chunk that declares 99 MB and never comes: answered at once
    writer.write(request(JOIN, CHUNKED, b"64\r\n" + b" " * 100 + b"\r\n5E7B000\r\n", "POST"))
    async with asyncio.timeout(3):  # (long before the body timeout)
        status, _, body = parse_answer(await reader.read(65536))
    assert status == 413 and answer_json(body) == TOO_LARGE
    writer.close()
    assert await members(node) is None
    refused = await exchange(node.port, request(JOIN + "&callback=cb", CHUNKED,
                                                b"5E7B000\r\n", "POST"), timeout=3)  # fmt: skip
    assert refused.endswith(b"cb({" + body[1:-1] + b"});")


@pytest.mark.gen_test
async def test_a_chunked_body_within_the_limit_is_read(start_node):
    node = start_node(Limits(max_body_size=1000))
    text = b'{"user":"alice","conn":"tab1"}'
    chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(text), text)
    raw = await exchange(node.port, request("/channels/room/join",
                                            CHUNKED + "Connection: close\r\n", chunks, "POST"))  # fmt: skip
    assert parse_answer(raw)[0] == 200
    assert await members(node) == ["alice"]


def jsonp(body: bytes, callback: str = "cb") -> object:
    """The JSON a JSONP answer calls `callback` with (AssertionError when it is not that)."""
    text = body.decode()
    assert JSONP.match(text) and JSONP.match(text).group(1) == callback, text
    return answer_json(body)


@pytest.mark.gen_test
async def test_size_refusals_are_jsonp_when_the_request_line_asks_for_it(start_node):
    node = start_node(Limits(max_body_size=1000, max_url_length=200, max_header_size=4000))
    post = "Content-Type: application/json\r\nContent-Length: 5000\r\n"
    cases = [  # (request, status, param)
        (request(JOIN + "&callback=cb", post, method="POST"), 413, "body"),
        (request(JOIN + "&callback=cb", CHUNKED, b"2000\r\n", "POST"), 413, "body"),
        (request(JOIN + "&callback=cb&info=" + "x" * 300), 414, "url"),
        (request(JOIN + "&callback=cb", "X-Big: " + "y" * 5000 + "\r\n"), 431, "headers"),
    ]
    for data, status, param in cases:
        got, headers, body = parse_answer(await exchange(node.port, data, timeout=3))
        assert got == status and headers["content-type"].startswith("text/javascript")
        assert "access-control-allow-origin" not in headers
        assert jsonp(body)["param"] == param
    # an invalid callback, or a request line that did not arrive whole: JSON, with CORS
    for data, status in [
        (request(JOIN + "&callback=alert(1)", post, method="POST"), 413),
        (request(JOIN + "&callback=%FF", "X-Big: " + "y" * 5000 + "\r\n"), 431),
        (request(JOIN + "&callback=cb&info=" + "x" * 5000), 414),
    ]:
        got, headers, body = parse_answer(await exchange(node.port, data, timeout=3))
        assert got == status and headers["content-type"].startswith("application/json")
        assert headers["access-control-allow-origin"] == "*"
        assert not JSONP.match(body.decode()) and answer_json(body)


@pytest.mark.gen_test
async def test_a_66_kb_query_is_414_in_json(start_node):
    node = start_node()  # the defaults: 16 KB of URL, 32 KB of headers
    raw = await exchange(node.port, request(JOIN + "&info=" + "x" * 66_000), timeout=3)
    status, headers, body = parse_answer(raw)
    assert status == 414 and headers["connection"] == "close"
    assert answer_json(body) == {"error": "the URL is too long", "param": "url"}
    assert await members(node) is None


@pytest.mark.gen_test
async def test_a_url_over_its_limit_within_the_header_limit_is_414(start_node):
    node = start_node(Limits(max_url_length=100, max_header_size=4000))
    status, _, body = parse_answer(await exchange(node.port, request("/healthz?" + "a" * 200)))
    assert status == 414 and answer_json(body)["param"] == "url"
    assert (
        parse_answer(await exchange(node.port, request("/healthz?a=1", "Connection: close\r\n")))[0]
        == 200
    )


@pytest.mark.gen_test
async def test_headers_over_the_limit_are_431_in_json(start_node):
    node = start_node(Limits(max_header_size=4000))
    many = "".join(f"X-Filler-{i}: {'y' * 60}\r\n" for i in range(100))
    status, headers, body = parse_answer(await exchange(node.port, request(JOIN, many), 3))
    assert status == 431 and headers["connection"] == "close"
    assert answer_json(body) == {"error": "the headers are too large", "param": "headers"}
    assert await members(node) is None


@pytest.mark.gen_test
async def test_headers_sent_too_slowly_are_cut_at_the_header_timeout(start_node):
    node = start_node(Limits(header_timeout=0.3))
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and the rest never comes
    async with asyncio.timeout(5):  # (the header timeout is 0.3 s)
        assert await reader.read() == b""  # closed, with nothing answered
    writer.close()
    assert not node.server._connections


@pytest.mark.gen_test
async def test_a_body_sent_too_slowly_is_cut_at_the_body_timeout(start_node):
    node = start_node(Limits(body_timeout=0.3))
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    writer.write(request(JOIN, "Content-Type: application/json\r\nContent-Length: 100\r\n",
                         b"{", "POST"))  # fmt: skip
    async with asyncio.timeout(3):
        assert await reader.read() == b""  # closed, without the rest of the body
    writer.close()
    assert await members(node) is None


@pytest.mark.gen_test
async def test_connections_over_the_cap_get_503_and_close_until_slots_free(start_node):
    node = start_node(Limits(max_connections=3, header_timeout=0.5))
    slow = [await asyncio.open_connection("127.0.0.1", node.port) for _ in range(3)]
    for _, writer in slow:
        writer.write(b"GET /healthz HTTP/1.1\r\n")  # and nothing more
    await wait_until_async(lambda: len(node.server._connections) == 3)
    status, headers, body = parse_answer(await exchange(node.port, request("/healthz"), 2))
    assert status == 503 and headers["retry-after"] == "1"
    assert answer_json(body) == {"error": "too many connections"}
    assert node.server.refused_connections == 1
    await wait_until_async(lambda: not node.server._connections, timeout=5)  # header timeout
    answer = await AsyncHTTPClient().fetch(node.url + "/healthz", raise_error=False)
    assert answer.code == 200
    for _, writer in slow:
        writer.close()


class Exhausted(socket.socket):
    """A listening socket whose accept() fails as it does when descriptors run out."""

    calls = 0

    def accept(self):
        self.calls += 1
        raise OSError(errno.EMFILE, "Too many open files")


@pytest.mark.gen_test
async def test_accepting_pauses_when_descriptors_run_out_instead_of_spinning(caplog):
    listener = Exhausted(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    client = socket.create_connection(listener.getsockname())  # (readable from now on)
    with caplog.at_level(logging.WARNING, logger="presence.web.limits"):
        stop = Acceptor(listener, lambda connection, address: None, pause=0.3)
        await asyncio.sleep(0.2)
        assert listener.calls == 1  # tried once, then paused: no spinning
        await asyncio.sleep(0.35)
        assert listener.calls == 2  # tried again after the pause
        stop()
        await asyncio.sleep(0.4)
        assert listener.calls == 2  # stopped: never again
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and all(w.startswith("cannot accept connections") for w in warnings)
    client.close()
    listener.close()


def test_throttle_lets_a_burst_per_period_through_then_counts_what_it_drops():
    now = [0.0]
    throttle = Throttle(burst=3, period=10, clock=lambda: now[0])
    record = lambda: logging.LogRecord("x", logging.WARNING, "", 0, "refused %s", ("a",), None)  # noqa: E731
    assert [throttle.filter(record()) for _ in range(5)] == [True, True, True, False, False]
    now[0] = 10.5
    later = record()
    assert throttle.filter(later) and later.getMessage() == "refused a (2 similar lines dropped)"


@pytest.mark.gen_test
async def test_client_limits_answer_429_or_503_with_retry_after(start_node):
    node = start_node(client_limits=ClientLimits(1, 1, 1, 1.0), poll_timeout=5)
    client = AsyncHTTPClient()

    async def get(path, **params):
        query = "&".join(f"{k}={v}" for k, v in {"user": "alice", **params}.items())
        return await client.fetch(f"{node.url}{path}?{query}", raise_error=False)

    assert (await get("/channels/room/join", conn="t1")).code == 200
    for path, params, status, limit in [
        ("/channels/room/join", {"conn": "t2"}, 429, "tabs"),
        ("/channels/other/join", {"conn": "t1"}, 429, "channels_per_tab"),
    ]:
        refused = await get(path, **params, callback="cb")
        assert refused.code == status and int(refused.headers["Retry-After"]) >= 1
        assert answer_json(refused.body)["limit"] == limit
    assert (await get("/channels/room/send", conn="t1", data="1")).code == 200
    refused = await get("/channels/room/send", conn="t1", data="2")
    assert refused.code == 429 and refused.headers["Retry-After"] == "1"
    assert answer_json(refused.body) == {
        "error": "a tab may send at most 1 messages per second",
        "limit": "messages_per_second",
    }
    cursor = answer_json((await get("/channels/room/poll", conn="t1", cursor="0")).body)["cursor"]
    held = asyncio.ensure_future(get("/channels/room/poll", conn="t1", cursor=cursor))
    await wait_until_async(lambda: node.model.pending == 1)
    refused = await get("/api/events", cursor=cursor)
    assert refused.code == 503 and refused.headers["Retry-After"] == "2"
    assert answer_json(refused.body)["limit"] == "held_polls"
    node.model.shutdown()
    assert (await held).code == 200


def test_limit_flags_come_from_the_environment_and_raise_the_open_file_limit(monkeypatch):
    import resource

    from presence.cli import serve_parser
    from presence.node import network_limits

    monkeypatch.setenv("PRESENCE_MAX_BODY_SIZE", "5000")
    monkeypatch.setenv("PRESENCE_MAX_TABS", "3")
    args = serve_parser().parse_args(["--max-connections", "2000", "--header-timeout", "4"])
    assert (args.max_body_size, args.max_tabs, args.max_messages_per_second) == (5000, 3, 10)
    limits = network_limits(args)
    assert (limits.max_body_size, limits.header_timeout, limits.max_connections) == (5000, 4, 2000)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft >= min(hard, 2000 + 1024)
    huge = serve_parser().parse_args(["--max-connections", str(10**9)])
    assert network_limits(huge).max_connections == max(
        resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1024, 64
    )  # what the open-file limit leaves, with a warning


@pytest.mark.gen_test
async def test_a_request_that_cannot_be_parsed_is_400_in_json_not_a_bare_400(start_node):
    node = start_node()
    post = "Content-Type: application/json\r\n"
    for data in [
        request(JOIN, post + "Content-Length: abc\r\n", method="POST"),
        request(JOIN, post + "Content-Length: 1, 2\r\n", b"{", "POST"),
        request(JOIN, CHUNKED, b"zz\r\n", "POST"),
        request(JOIN, post + "Transfer-Encoding: gzip\r\n", method="POST"),
        request(JOIN, "no colon here\r\n"),
        b"GET\r\n\r\n",
    ]:
        status, headers, body = parse_answer(await exchange(node.port, data, timeout=3))
        assert status == 400 and headers["connection"] == "close", data
        assert answer_json(body) == {"error": "malformed HTTP request", "param": "http"}
    assert await members(node) is None


def _connected(sock: socket.socket, timeout: float) -> bool:
    """Whether a non-blocking connect completed (the listener's queue took it) in time."""
    _, writable, _ = select.select([], [sock], [], timeout)
    return bool(writable) and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


@pytest.mark.parametrize("backlog, queued", [(1, 2), (64, 20)])
def test_listen_backlog_is_how_many_connections_wait_for_accept(backlog, queued):
    """--listen-backlog sizes the kernel's queue of connections not yet accepted: with
    nothing accepting, Linux queues backlog + 1 and drops the next SYN (Tornado's default
    of 128 dropped the tabs of a killed worker reconnecting at once)."""
    (listener,) = listen_sockets(0, "127.0.0.1", backlog)
    port = listener.getsockname()[1]
    clients = []
    try:
        for _ in range(queued):
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
            clients.append(client)
        assert all(_connected(c, 5.0) for c in clients)
        if backlog == 1:  # one more finds the queue full: its SYN is dropped
            extra = socket.socket()
            extra.setblocking(False)
            extra.connect_ex(("127.0.0.1", port))
            clients.append(extra)
            assert not _connected(extra, 0.5)
    finally:
        for c in clients:
            c.close()
        listener.close()
