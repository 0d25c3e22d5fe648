"""Every HTTP endpoint and parameter, fuzzed with hypothesis against a live node.

Whatever a client sends: no answer is a 5xx, every answer is strict JSON (or JSONP of
it; pages and static files aside), and a refused request (4xx) changes nothing in the
store. Runs on the bundled store and on redis-server, in three configurations: open (no
--secret, no --admin-token), closed (--secret and --admin-token) and public reads
(--admin-token with --public-api); requests carry a valid, a wrong or a malformed admin
token, or none.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from urllib.parse import quote

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tornado.netutil import bind_sockets

from presence.service.subscriber import Subscriber
from presence.web import auth
from presence.web.app import WebSettings, make_app, make_server
from presence.web.limits import Limits
from tests.service.helpers import make_presence
from tests.web.conftest import ENGINES
from tests.web.live import answer_json

SECRET = "s3cret"
ADMIN = "adm1n"


class ThreadNode:
    """A node (with its subscriber) serving from its own event loop in a thread, so that
    hypothesis can drive it with plain blocking requests."""

    def __init__(self, port: int, static_dir, secret: str | None, admin: str | None = ADMIN,
                 public_api: bool = False, engine: str = "own") -> None:  # fmt: skip
        self.store_port = port
        self.engine = engine
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = self.call(self._start(static_dir, secret, admin, public_api))

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    async def _start(self, static_dir, secret, admin, public_api) -> int:
        self.model = make_presence(f"redis://127.0.0.1:{self.store_port}/0",
                                   timeout=600, poll_timeout=0.1)  # fmt: skip
        self.subscriber = Subscriber(self.model)
        await self.subscriber.start()
        settings = WebSettings(admin, "fuzz", static_dir, secret, Limits(max_body_size=20_000),
                               public_api)  # fmt: skip
        self.server = make_server(make_app(self.model, settings), self.engine, settings.limits)
        sockets = bind_sockets(0, "127.0.0.1")
        self.server.add_sockets(sockets)
        return sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        self.server.stop()
        await self.server.close_all_connections()
        await self.subscriber.stop()
        await self.model.gateway.close()

    def stop(self) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module", params=["store", "redis"])
def store(request):
    port = request.getfixturevalue("store_port" if request.param == "store" else "redis_port")
    client = redis.Redis(port=port)
    client.flushall()
    yield client
    client.close()


CONFIGS = {  # id: (--secret, --admin-token, --public-api)
    "open": (None, None, False),
    "closed": (SECRET, ADMIN, False),
    "public": (None, ADMIN, True),
}


@pytest.fixture(scope="module", params=ENGINES)
def engine(request):
    return request.param


@pytest.fixture(scope="module", params=list(CONFIGS))
def node(request, store, engine, tmp_path_factory):
    static = tmp_path_factory.mktemp("static")
    (static / "presence.js").write_text("// client")
    (static / "index.html").write_text("<h1>demo</h1>")
    (static / "dashboard.html").write_text("<h1>dash</h1>")
    port = store.connection_pool.connection_kwargs["port"]
    secret, admin, public_api = CONFIGS[request.param]
    running = ThreadNode(port, static, secret, admin, public_api, engine)
    running.secret = secret
    yield running
    running.stop()


def snapshot(client: redis.Redis) -> dict:
    """Every key of the store with its value (not its TTL)."""
    state = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        read = {
            "string": lambda k: client.get(k),
            "hash": lambda k: client.hgetall(k),
            "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
            "list": lambda k: client.lrange(k, 0, -1),
            "set": lambda k: client.smembers(k),
            "stream": lambda k: client.xrange(k),
            "none": lambda k: None,
        }[kind]
        state[key] = (kind, read(key))
    return {k: v for k, v in state.items() if v[0] != "none"}


# -- what a client may send ------------------------------------------------------------

NAMES = st.sampled_from(["room", "alice", "tab1", "bob", "0:1", "1", "a.b", "x-y_z"])
WEIRD = st.sampled_from(
    ["", "1e999", "-1e999", "NaN", "Infinity", '"\\ud800"', '{"a":"\\udfff"}', "[" * 40 + "]" * 40,
     "{", "[1,", "0", "-1", "99999999999999999999999", "a" * 65, "a" * 129, "<script>", "../..",
     "..", "%00", "\x00", "\r\n", "é", "\U0001f600", "1:2", "x:1", ":", "1.2", "null", "[]", "{}",
     '{"a":1}', "123.é", "alert(1)", "a..b", "$", "a" * 5000, "\u2028"]
)  # fmt: skip
RAW = st.binary(max_size=24)  # percent-encoded as is: often not UTF-8
VALUE = st.one_of(NAMES, WEIRD, st.text(max_size=24), RAW)
PARAMS = st.sampled_from(
    "user conn cursor info data callback token limit all channel prefix minutes".split()  # noqa: SIM905
)
TEMPLATES = [
    "/channels/{}/join", "/channels/{}/poll", "/channels/{}/heartbeat", "/channels/{}/leave",
    "/channels/{}/send", "/api/channels", "/api/channels/{}", "/api/channels/{}/members/{}",
    "/api/events", "/api/stats", "/api/nodes", "/api/history", "/healthz", "/readyz",
    "/metrics", "/", "/dashboard", "/favicon.ico", "/static/{}", "/{}", "/channels/{}",
    "/api/{}", "/api/channels/{}/members", "/channels/{}/{}",
]  # fmt: skip
PAGES = ("/static/", "/dashboard", "/favicon.ico")


def encode(value: str | bytes) -> str:
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return quote(raw, safe="")


VALID = {"user": "alice", "conn": "tab1", "cursor": "0", "data": "hi", "info": '{"n":1}',
         "prefix": "r", "limit": "10", "minutes": "5"}  # fmt: skip


@st.composite
def requests(draw):
    """(method, target, headers, body): an endpoint with a valid request mutated in one to
    three parameters (or path parts), or parameters made up from scratch."""
    template = draw(st.sampled_from(TEMPLATES))
    part = st.one_of(st.just("room"), st.just("alice"), NAMES, VALUE)
    parts = [encode(draw(part)) for _ in range(template.count("{}"))]
    path = template.format(*parts)
    if draw(st.booleans()):
        params = dict(VALID, token=auth.sign(SECRET, "alice"))
        for name in draw(st.lists(PARAMS, min_size=1, max_size=3)):
            params[name] = draw(VALUE)
    else:
        params = draw(st.dictionaries(PARAMS, VALUE, max_size=6))
    method = draw(st.sampled_from(["GET", "GET", "POST", "DELETE", "OPTIONS", "PUT"]))
    headers: dict[str, str] = {}
    if draw(st.booleans()):
        headers["Authorization"] = draw(st.sampled_from(
            [f"Bearer {ADMIN}", f"bearer {ADMIN}", f"Bearer {ADMIN}x", "Bearer x", "Bearer ",
             f"Basic {ADMIN}", ADMIN, "é"]))  # fmt: skip
    body = b""
    in_body = method == "POST" and draw(st.booleans())
    query = "&".join(f"{encode(k)}={encode(v)}" for k, v in params.items())
    if in_body:
        kind = draw(st.sampled_from(["form", "json", "json-value", "raw"]))
        if kind == "form":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = query.encode()
        elif kind == "json":
            headers["Content-Type"] = "application/json"
            text = {k: v for k, v in params.items() if isinstance(v, str)}
            body = json.dumps(text).encode()  # (escapes lone surrogates as \\udxxx)
        elif kind == "json-value":
            headers["Content-Type"] = "application/json"
            body = draw(st.sampled_from([b"[]", b"1e999", b'"x"', b"[" * 30000, b"{" * 5000]))
        else:
            headers["Content-Type"] = draw(st.sampled_from(["application/json", "text/plain"]))
            body = draw(st.binary(max_size=64))
        query = ""
    return method, path + ("?" + query if query else ""), headers, body


def send(port: int, method: str, target: str, headers: dict, body: bytes):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value.encode("utf-8"))
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(requests())
def test_no_answer_is_a_5xx_or_not_json_and_a_refusal_changes_nothing(node, store, request):
    method, target, headers, body = request
    member = "/channels/room/join?user=alice&conn=tab1"
    if node.secret:
        member += "&token=" + auth.sign(SECRET, "alice")
    assert send(node.port, "GET", member, {}, b"")[0] == 200  # (a member to act on)
    before = snapshot(store)
    status, content_type, answer = send(node.port, method, target, headers, body)
    assert status < 500, (status, answer)
    page = target.startswith(PAGES) or target.split("?")[0] in ("/", "/dashboard/")
    if status not in (204, 304) and method != "HEAD" and not (page and status < 300):
        if target.startswith("/metrics") and status == 200:
            assert content_type.startswith("text/plain")
        else:
            answer_json(answer)  # strict JSON or JSONP of it (raises otherwise)
    if status >= 400:
        assert snapshot(store) == before, (status, answer)
