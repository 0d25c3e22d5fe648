"""The operator reads added for the dashboard, through HTTP: JSON and JSONP, bad input."""

import json
import re
from urllib.parse import urlencode

import pytest
from tornado.httpclient import HTTPRequest

import presence
from presence.service.nodes import NodeReporter
from presence.web.app import WebSettings, make_app
from tests.service.helpers import make_presence

JSONP = re.compile(r"^/\*\*/ typeof cb === 'function' && cb\((.*)\);$", re.S)


@pytest.fixture
def model(standalone_url, io_loop):
    presence = make_presence(standalone_url)
    yield presence
    io_loop.run_sync(presence.gateway.close)


@pytest.fixture
def app(model, tmp_path):
    (tmp_path / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return make_app(model, WebSettings(node_id="n1", static_dir=tmp_path))


@pytest.fixture
def get(app, http_client, base_url):
    async def fetch(path, **params):
        url = base_url + path + ("?" + urlencode(params) if params else "")
        return await http_client.fetch(HTTPRequest(url), raise_error=False)

    return fetch


def body(response):
    text = response.body.decode()
    match = JSONP.match(text)
    return json.loads(match.group(1) if match else text)


@pytest.mark.gen_test
async def test_channels_and_members_by_prefix(get, model):
    for channel, user in [("sales", "ann"), ("sales", "andy"), ("support", "bo"), ("dev", "an")]:
        await model.join(channel, user, "t", None)
    got = body(await get("/api/channels", prefix="s", limit=1))
    assert (got["channels"], got["next"]) == ([{"channel": "sales", "users": 2,
                                                "connections": 2}], "sales")  # fmt: skip
    got = body(await get("/api/channels", prefix="s", cursor="sales", callback="cb"))
    assert [c["channel"] for c in got["channels"]] == ["support"] and got["next"] is None
    got = body(await get("/api/channels/sales", prefix="ann"))
    assert [m["user"] for m in got["members"]] == ["ann"] and got["users"] == 2
    assert body(await get("/api/channels", prefix=""))["next"] is None  # empty: all


@pytest.mark.gen_test
async def test_bad_prefix_or_minutes_is_a_400_naming_it(get):
    for path, params, name in [
        ("/api/channels", {"prefix": "a b"}, "prefix"),
        ("/api/channels/room", {"prefix": "x/y"}, "prefix"),
        ("/api/history", {"minutes": "0"}, "minutes"),
        ("/api/history", {"minutes": "1441"}, "minutes"),
        ("/api/history", {"minutes": "ten"}, "minutes"),
    ]:
        response = await get(path, **params)
        assert (response.code, body(response)["param"]) == (400, name)


@pytest.mark.gen_test
async def test_stats_nodes_and_history_answer_json_and_jsonp(get, model):
    await model.join("one", "alice", "t1", None)
    await model.join("two", "alice", "t2", None)
    stats = body(await get("/api/stats", callback="cb"))
    assert (stats["users"], stats["channels"], stats["connections"]) == (1, 2, 2)
    assert abs(stats["ts"] - model.now()) < 60_000
    await NodeReporter(model, "n1", "127.0.0.1:8080").report()
    nodes = body(await get("/api/nodes"))["nodes"]
    assert [(n["id"], n["address"], n["version"]) for n in nodes] == [
        ("n1", "127.0.0.1:8080", presence.__version__)
    ]
    history = body(await get("/api/history", minutes="5", callback="cb"))
    assert history["interval"] == 10
    [point] = history["points"]  # the interval before the last, written by the first report
    assert point["ts"] % 10_000 == 0 and point["users"] == 1 and point["events"] is None
    assert set(point) == {"ts", "events", "offline_lag_p50_ms", "offline_lag_p99_ms", "users"}


@pytest.mark.gen_test
async def test_favicon_is_the_static_svg(get):
    response = await get("/favicon.ico")
    assert response.code == 200
    assert response.headers["Content-Type"] == "image/svg+xml"
    assert response.body.startswith(b"<svg")
