"""The HTTP API through Tornado: JSONP format and headers, every endpoint, bad input."""

import asyncio
import json
import re
import time
from urllib.parse import urlencode

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest

from presence import runtime
from presence.web.app import WebSettings, make_app
from tests.helpers import wait_until_async
from tests.service.helpers import expire, flush, ident, make_presence

JSONP = re.compile(r"^/\*\*/ typeof (cb|a\.b_\$) === 'function' && \1\((.*)\);$", re.S)
TOKEN = "s3cret"


@pytest.fixture
def model(store_url, io_loop):
    presence = make_presence(store_url, timeout=30, poll_timeout=0.3)
    yield presence
    io_loop.run_sync(presence.gateway.close)


@pytest.fixture
def app(model, tmp_path):
    (tmp_path / "index.html").write_text("<h1>demo</h1>")
    (tmp_path / "dashboard.html").write_text("<h1>dash</h1>")
    (tmp_path / "presence.js").write_text("// client")
    return make_app(model, WebSettings(admin_token=TOKEN, node_id="n1", static_dir=tmp_path))


@pytest.fixture
def get(app, http_client, base_url):
    async def fetch(path, method="GET", **params):
        headers = params.pop("headers", {"Authorization": f"Bearer {TOKEN}"})
        body = params.pop("body", None)
        url = base_url + path + ("?" + urlencode(params) if params else "")
        return await http_client.fetch(
            HTTPRequest(url, method, headers, body, allow_nonstandard_methods=True),
            raise_error=False,
        )

    return fetch


def body(response):
    return json.loads(response.body)


def me(**extra):
    return {"user": "alice", "conn": "tab1", **extra}


@pytest.mark.gen_test
async def test_jsonp_wrapper_and_headers(get):
    response = await get("/channels/room/join", **me(callback="cb"))
    assert response.code == 200
    match = JSONP.match(response.body.decode())
    assert match, response.body
    assert ident(json.loads(match.group(2))["cursor"]) == 1
    assert response.headers["Content-Type"] == "text/javascript; charset=UTF-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.gen_test
async def test_jsonp_accepts_dotted_callbacks_and_escapes_script_end(get):
    await get("/channels/room/join", **me())
    await get("/channels/room/send", **me(data="</script><b>\u2028"))
    response = await get("/channels/room/poll", **me(cursor=1, callback="a.b_$"))
    text = response.body.decode()
    assert JSONP.match(text) and "</script>" not in text and "\u2028" not in text
    assert json.loads(JSONP.match(text).group(2))["events"][0]["data"] == "</script><b>\u2028"


@pytest.mark.gen_test
async def test_json_with_cors(get):
    response = await get("/channels/room/join", **me(info='{"name": "Alice"}'))
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    answer = body(response)
    assert answer["members"][0]["info"] == {"name": "Alice"}
    assert answer["timeout"] == 30 and answer["poll_timeout"] == 0.3


@pytest.mark.gen_test
async def test_post_with_form_or_json_body(get):
    form = await get("/channels/room/join", "POST", body=urlencode(me()))
    assert form.code == 200
    response = await get(
        "/channels/room/send",
        "POST",
        body=json.dumps(me(data="hi")),
        headers={"Content-Type": "application/json"},
    )
    assert body(response) == {"ok": True, "id": 2}


@pytest.mark.gen_test
async def test_join_poll_heartbeat_send_leave(get):
    await get("/channels/room/join", **me())
    await get("/channels/room/join", user="bob", conn="b")
    assert body(await get("/channels/room/heartbeat", **me())) == {"ok": True}
    sent = body(await get("/channels/room/send", **me(data="hello")))
    assert sent == {"ok": True, "id": 3}
    assert body(await get("/channels/room/leave", user="bob", conn="b")) == {"ok": True}
    polled = body(await get("/channels/room/poll", **me(cursor=1)))
    assert [(e["type"], e["user"]) for e in polled["events"]] == [
        ("join", "bob"),
        ("message", "alice"),
        ("leave", "bob"),
    ]
    assert ident(polled["cursor"]) == 4
    again = body(await get("/channels/room/poll", **me(cursor=polled["cursor"])))
    assert again == {"cursor": polled["cursor"], "events": []}


@pytest.mark.gen_test
async def test_held_poll_answers_when_an_event_arrives(get, model):
    await get("/channels/room/join", **me())
    held = asyncio.ensure_future(get("/channels/room/poll", **me(cursor=1)))
    await wait_until_async(lambda: model.pending == 1, message="the poll is held")
    await get("/channels/room/join", user="bob", conn="b")
    assert [e["user"] for e in body(await held)["events"]] == ["bob"]


@pytest.mark.gen_test
async def test_client_going_away_cancels_its_poll(get, model, http_client, base_url):
    await get("/channels/room/join", **me())
    model.poll_timeout = 10
    url = base_url + "/channels/room/poll?" + urlencode(me(cursor=1))
    with pytest.raises(HTTPClientError):
        await http_client.fetch(url, request_timeout=0.2)
    for _ in range(100):
        if model.pending == 0:
            break
        await asyncio.sleep(0.01)
    assert model.pending == 0 and model.feeds["room"].waiting == 0


BAD = [
    ("/channels/bad%20name/join", me(), "channel"),
    ("/channels/" + "x" * 65 + "/join", me(), "channel"),
    ("/channels/room/join", {"conn": "c"}, "user"),
    ("/channels/room/join", {"user": "a b", "conn": "c"}, "user"),
    ("/channels/room/join", {"user": "a"}, "conn"),
    ("/channels/room/join", {"user": "a", "conn": "c.d"}, "conn"),
    ("/channels/room/join", me(info="{not json"), "info"),
    ("/channels/room/join", me(info='{"x": NaN}'), "info"),
    ("/channels/room/join", me(info=json.dumps("x" * 1100)), "info"),
    ("/channels/room/poll", me(), "cursor"),
    ("/channels/room/poll", me(cursor="-1"), "cursor"),
    ("/channels/room/poll", me(cursor="1e3"), "cursor"),
    ("/channels/room/send", me(), "data"),
    ("/channels/room/send", me(data="x" * 4097), "data"),
    ("/api/channels", {"limit": "0"}, "limit"),
    ("/api/channels", {"cursor": "a b"}, "cursor"),
    ("/api/channels/room", {"limit": "1001"}, "limit"),
    ("/api/events", {"cursor": "x"}, "cursor"),
]


@pytest.mark.gen_test
@pytest.mark.parametrize("path,params,param", BAD)
async def test_invalid_parameters_are_400_naming_them(get, path, params, param):
    response = await get(path, **params)
    assert response.code == 400
    assert body(response)["param"] == param
    jsonp = await get(path, **params, callback="cb")
    assert jsonp.code == 400
    assert json.loads(JSONP.match(jsonp.body.decode()).group(2))["param"] == param


@pytest.mark.gen_test
async def test_invalid_callback_is_400_in_json(get, model):
    for callback in ["alert(1)", "a..b", "1a", "a-b", "x" * 129]:
        response = await get("/channels/room/join", **me(callback=callback))
        assert response.code == 400
        assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
        assert body(response)["param"] == "callback"
    assert (await model.channels(None, 10))[0] == []  # nothing reached the store


@pytest.mark.gen_test
async def test_send_from_a_non_member_is_404(get):
    response = await get("/channels/room/send", **me(data="hi"))
    assert response.code == 404 and body(response)["param"] == "user"


@pytest.mark.gen_test
async def test_rest_channels_and_members(get):
    await get("/channels/room/join", **me(info='{"n":1}'))
    await get("/channels/room/join", **me(conn="tab2"))
    await get("/channels/room/join", user="bob", conn="b")
    await get("/channels/hall/join", user="bob", conn="b")
    channels = body(await get("/api/channels", limit=1))
    assert channels == {
        "channels": [{"channel": "hall", "users": 1, "connections": 1}],
        "next": "hall",
    }
    channels = body(await get("/api/channels", cursor="hall"))
    assert channels["channels"] == [{"channel": "room", "users": 2, "connections": 3}]
    room = body(await get("/api/channels/room", limit=1))
    assert (room["users"], room["connections"], room["next"]) == (2, 3, "alice")
    assert [(m["user"], m["info"], m["connections"]) for m in room["members"]] == [
        ("alice", {"n": 1}, 2)
    ]
    assert body(await get("/api/channels/room", cursor="alice"))["members"][0]["user"] == "bob"
    missing = await get("/api/channels/nowhere")
    assert missing.code == 404 and body(missing)["param"] == "channel"
    await get("/channels/hall/leave", user="bob", conn="b")
    listed = body(await get("/api/channels"))["channels"]
    assert [c["channel"] for c in listed] == ["room"]  # hall has no users left
    listed = body(await get("/api/channels", all="1"))["channels"]
    assert listed[0] == {"channel": "hall", "users": 0, "connections": 0}
    assert body(await get("/api/channels/hall"))["users"] == 0  # its history is reachable
    assert (await get("/api/channels", all="2")).code == 400


@pytest.mark.gen_test
async def test_kick_needs_the_admin_token(get):
    await get("/channels/room/join", **me())
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert (await get("/api/channels/room/members/alice", "DELETE", headers={})).code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await get("/api/channels/room/members/alice", "DELETE", headers=wrong)).code == 401
    kicked = await get("/api/channels/room/members/alice", "DELETE", headers=auth)
    assert body(kicked) == {"ok": True, "id": 2}
    again = await get("/api/channels/room/members/alice", "DELETE", headers=auth)
    assert again.code == 404 and body(again)["param"] == "user"
    nowhere = await get("/api/channels/nowhere/members/alice", "DELETE", headers=auth)
    assert nowhere.code == 404 and body(nowhere)["param"] == "channel"
    await get("/channels/room/join", user="bob", conn="b")
    event = body(await get("/channels/room/poll", user="bob", conn="b", cursor=1))["events"][0]
    assert (event["type"], event["user"], event["reason"]) == ("leave", "alice", "kicked")


@pytest.mark.gen_test
@pytest.mark.parametrize("reason", ["kicked", "expired", "left", "unknown"])
async def test_poll_and_heartbeat_of_a_tab_not_joined_answer_rejoin(get, model, reason):
    await get("/channels/room/join", **me(info='{"name":"Alice"}'))
    if reason == "kicked":
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (await get("/api/channels/room/members/alice", "DELETE", headers=auth)).code == 200
    elif reason == "expired":
        await expire(model, "room", "alice")
        await model.expired(model.gateway.keys("room").online("alice"))
    elif reason == "left":
        await get("/channels/room/leave", **me())
    params = me() if reason != "unknown" else {"user": "carol", "conn": "c"}
    polled = await get("/channels/room/poll", **params, cursor=1, callback="cb")
    assert polled.code == 200
    answer = json.loads(JSONP.match(polled.body.decode()).group(2))
    assert answer == {"rejoin": True, "reason": reason, "cursor": "1"}  # the poll's own
    beat = body(await get("/channels/room/heartbeat", **params))
    assert (beat["rejoin"], beat["reason"]) == (True, reason)
    assert ident(beat["cursor"]) == (1 if reason == "unknown" else 2)  # the log's newest
    assert body(await get("/api/channels/room"))["users"] == (reason == "unknown")


@pytest.mark.gen_test
async def test_a_cursor_from_before_the_store_was_flushed_gets_reset(get, model):
    joined = body(await get("/channels/room/join", **me()))
    epoch, _, first = joined["cursor"].partition(":")
    assert len(epoch) == 12 and first == "1"  # "<epoch>:<id>", opaque to clients
    await get("/channels/room/send", **me(data="x"))
    old = body(await get("/channels/room/poll", **me(cursor=joined["cursor"])))["cursor"]
    feed = body(await get("/api/events", cursor="0"))["cursor"]
    await flush(model)  # between two polls, the store restarts empty
    for user in ("alice", "bob", "carol"):
        await get("/channels/room/join", user=user, conn="c")
    polled = await get("/channels/room/poll", user="bob", conn="c", cursor=old, callback="cb")
    answer = json.loads(JSONP.match(polled.body.decode()).group(2))
    assert answer["reset"] is True and ident(answer["cursor"]) == 3
    assert not answer["cursor"].startswith(epoch)
    assert body(await get("/api/events", cursor=feed))["reset"] is True
    assert body(await get("/api/channels/room"))["cursor"] == answer["cursor"]
    assert (await get("/channels/room/poll", **me(cursor="e:1:2"))).code == 400


@pytest.mark.gen_test
async def test_global_events_feed(get):
    start = body(await get("/api/events"))
    assert start == {"cursor": "0", "events": []}
    await get("/channels/one/join", **me())
    await get("/channels/two/send", **me(data="x"))  # not a member there: 404, no event
    feed = body(await get("/api/events", cursor=0))
    assert [(e["channel"], e["type"]) for e in feed["events"]] == [("one", "join")]


@pytest.mark.gen_test
async def test_cors_preflight(get):
    response = await get("/api/channels/room/members/alice", "OPTIONS")
    assert response.code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "DELETE" in response.headers["Access-Control-Allow-Methods"]


@pytest.mark.gen_test
async def test_health_ready_metrics(get, model):
    assert body(await get("/healthz")) == {"ok": True, "node": "n1"}
    ready = await get("/readyz")
    assert ready.code == 503 and body(ready)["store"] is True  # no subscriber in this app
    await get("/channels/room/join", **me())
    metrics = (await get("/metrics")).body.decode()
    assert "presence_online_users 1\n" in metrics
    assert 'presence_events_total{node="n1",type="join"} 1\n' in metrics
    assert "presence_pending_polls" in metrics and "presence_expiry_lag_seconds_count" in metrics
    assert 'presence_late_answers_total{node="n1"} 0\n' in metrics
    process = dict(
        line.rsplit(" ", 1) for line in metrics.splitlines() if line.startswith("process_")
    )
    rss = int(process['process_resident_memory_bytes{node="n1"}'])
    assert 0.5 < rss / (runtime.rss_kib() * 1024) < 2
    started = float(process['process_start_time_seconds{node="n1"}'])
    assert abs(started - runtime.start_time()) < 0.01 and started < time.time()
    await asyncio.sleep(0.05)  # a later scrape: the very same start (no jitter for changes())
    again = (await get("/metrics")).body.decode()
    assert f'process_start_time_seconds{{node="n1"}} {started:.2f}\n' in again


@pytest.mark.gen_test
async def test_pages_and_static_files(get):
    assert (await get("/")).body == b"<h1>demo</h1>"
    assert (await get("/dashboard")).body == b"<h1>dash</h1>"
    assert (await get("/static/presence.js")).body == b"// client"
    missing = await get("/nope")
    assert missing.code == 404 and "error" in body(missing)


@pytest.mark.gen_test
async def test_kick_validates_its_path_before_anything_else(get, model):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path, param in [
        ("/api/channels/b%20d/members/alice", "channel"),
        ("/api/channels/room/members/a%20b", "user"),
    ]:
        response = await get(path, "DELETE", headers=auth)
        assert response.code == 400 and body(response)["param"] == param
    assert (await model.channels(None, 10))[0] == []


@pytest.mark.gen_test
async def test_store_outage_is_a_503_in_json(get, model):
    await model.gateway.refresh_topology()
    for client in model.gateway.primaries():
        await client.connection_pool.disconnect()
        client.connection_pool.connection_kwargs["port"] = 1  # nothing listens there
    response = await get("/channels/room/join", **me(callback="cb"))
    assert response.code == 503
    assert json.loads(JSONP.match(response.body.decode()).group(2)) == {
        "error": "store unavailable"
    }


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "path,extra",
    [
        ("/channels/room/join", {}),
        ("/channels/room/poll", {"cursor": "1"}),
        ("/channels/room/heartbeat", {}),
        ("/channels/room/send", {"data": "x"}),
        ("/channels/room/leave", {}),
        ("/api/channels", {}),
        ("/api/channels/room", {}),
        ("/api/events", {}),
        ("/healthz", {}),
    ],
)
async def test_every_endpoint_answers_jsonp_when_asked(get, path, extra):
    await get("/channels/room/join", **me())
    params = me(**extra) if path.startswith("/channels") else extra
    response = await get(path, **params, callback="cb")
    assert response.code == 200, response.body
    assert JSONP.match(response.body.decode()), response.body
    assert response.headers["Content-Type"] == "text/javascript; charset=UTF-8"
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.gen_test
async def test_a_parameter_that_is_not_utf8_is_named(http_client, base_url, app):
    response = await http_client.fetch(
        base_url + "/channels/room/join?user=%FF&conn=c", raise_error=False
    )
    assert response.code == 400 and body(response)["param"] == "user"
