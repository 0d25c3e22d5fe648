"""Who may use the operator endpoints (--admin-token, --public-api), the kick audit (`by`),
private channels in operator reads, and what the access log writes (--access-log, tokens
redacted). Each runs on the bundled store and on redis-server."""

import asyncio
import json
import logging
from urllib.parse import urlencode

import pytest
from tornado.httpclient import HTTPRequest

from presence.web import auth
from presence.web.app import WebSettings, make_app
from presence.web.base import install_log_redaction, redacted
from tests.service.helpers import make_presence

OPS, CI = "t0ps-token", "c1-token"
READS = [
    "/api/channels",
    "/api/channels/room",
    "/api/events",
    "/api/stats",
    "/api/nodes",
    "/api/history",
    "/metrics",
]


@pytest.fixture
def model(standalone_url, io_loop):
    presence = make_presence(standalone_url, poll_timeout=0.2)
    yield presence
    io_loop.run_sync(presence.gateway.close)


@pytest.fixture
def settings():
    return WebSettings(admin_token=f"ops={OPS},{CI}")


@pytest.fixture
def app(model, settings, tmp_path):
    settings.static_dir = tmp_path
    return make_app(model, settings)


@pytest.fixture
def get(app, http_client, base_url):
    async def fetch(path, method="GET", admin=None, **params):
        headers = {"Authorization": f"Bearer {admin}"} if admin else {}
        url = base_url + path + ("?" + urlencode(params) if params else "")
        return await http_client.fetch(
            HTTPRequest(url, method, headers, allow_nonstandard_methods=True), raise_error=False
        )

    return fetch


def body(response):
    return json.loads(response.body)


@pytest.mark.gen_test
async def test_with_an_admin_token_every_operator_read_needs_one(get):
    await get("/channels/room/join", user="alice", conn="a")
    for path in READS:
        refused = await get(path)
        assert refused.code == 401, path
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="presence"'
        assert (await get(path, admin="wrong")).code == 401, path
        assert (await get(path, admin=OPS)).code == 200, path
        assert (await get(path, admin=CI)).code == 200, path
    jsonp = await get("/api/channels/room", callback="cb")  # no cross-site reading either
    assert jsonp.code == 401 and b"admin bearer token" in jsonp.body and b"alice" not in jsonp.body
    assert body(await get("/healthz"))["ok"] is True
    assert "ready" in body(await get("/readyz"))  # (not ready here: no subscriber runs)


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [WebSettings(admin_token=OPS, public_api=True)])
async def test_public_api_opens_the_reads_but_not_the_kick(get):
    await get("/channels/room/join", user="alice", conn="a")
    for path in READS:
        assert (await get(path)).code == 200, path
        assert (await get(path, admin="wrong")).code == 401, path  # a wrong token is an error
    assert (await get("/api/channels/room/members/alice", "DELETE")).code == 401


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [WebSettings()])
async def test_without_an_admin_token_the_operator_endpoints_are_open(get):
    await get("/channels/room/join", user="alice", conn="a")
    for path in READS:
        assert (await get(path)).code == 200, path
    kicked = await get("/api/channels/room/members/alice", "DELETE")
    assert kicked.code == 200
    events = body(await get("/api/events", cursor="0"))["events"]
    assert events[-1]["reason"] == "kicked" and "by" not in events[-1]  # nobody to name


@pytest.mark.gen_test
async def test_a_kick_names_the_admin_token_that_did_it_never_the_token(get):
    for user in ["alice", "bob", "carol"]:
        await get("/channels/room/join", user=user, conn=user)
    assert (await get("/api/channels/room/members/alice", "DELETE", admin=OPS)).code == 200
    assert (await get("/api/channels/room/members/bob", "DELETE", admin=CI)).code == 200
    log = body(await get("/channels/room/poll", user="carol", conn="carol", cursor="3"))
    assert [(e["user"], e["reason"], e["by"]) for e in log["events"]] == [
        ("alice", "kicked", "ops"),
        ("bob", "kicked", "admin"),
    ]
    feed = body(await get("/api/events", cursor="0", admin=OPS))
    kicks = [e for e in feed["events"] if e.get("reason") == "kicked"]
    assert [(e["channel"], e["user"], e["by"]) for e in kicks] == [
        ("room", "alice", "ops"),
        ("room", "bob", "admin"),
    ]
    raw = (await get("/api/events", cursor="0", admin=OPS)).body
    assert OPS.encode() not in raw and CI.encode() not in raw


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "settings",
    [WebSettings(admin_token=OPS, public_api=True, secret="k"), WebSettings(secret="k")],
)
async def test_private_channels_are_shown_to_admin_tokens_only(get, settings):
    for channel in ["lobby", "private-ops"]:
        token = auth.sign("k", "alice", channels=[channel])
        joined = await get(f"/channels/{channel}/join", user="alice", conn="a", token=token)
        assert joined.code == 200
    listed = body(await get("/api/channels"))["channels"]
    assert [c["channel"] for c in listed] == ["lobby"]
    hidden = await get("/api/channels/private-ops")
    assert (hidden.code, body(hidden)["param"]) == (403, "channel")
    feed = body(await get("/api/events", cursor="0"))["events"]
    assert {e["channel"] for e in feed} == {"lobby"}
    if settings.admin_tokens:
        listed = body(await get("/api/channels", admin=OPS))["channels"]
        assert [c["channel"] for c in listed] == ["lobby", "private-ops"]
        assert body(await get("/api/channels/private-ops", admin=OPS))["users"] == 1
        feed = body(await get("/api/events", cursor="0", admin=OPS))["events"]
        assert {e["channel"] for e in feed} == {"lobby", "private-ops"}


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [WebSettings()])
async def test_private_channels_are_refused_without_a_secret(get):
    for action in ["join", "poll", "heartbeat", "leave", "send"]:
        refused = await get(
            f"/channels/private-x/{action}", user="a", conn="a", cursor="0", data="x"
        )
        assert refused.code == 403, action
        assert body(refused) == {
            "error": "private channels need a service started with --secret",
            "param": "channel",
        }
    assert body(await get("/api/channels", all="1"))["channels"] == []  # nothing was created


# -- the access log -------------------------------------------------------------------------


def access_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "tornado.access"]


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [WebSettings(secret="k", access_log="all")])
async def test_the_access_log_never_shows_a_token(get, caplog):
    token = auth.sign("k", "alice")
    with caplog.at_level(logging.INFO, logger="tornado.access"):
        assert (await get("/channels/room/join", user="alice", conn="a", token=token)).code == 200
        assert (await get("/channels/room/join", user="bob", conn="b", token=token)).code == 403
        assert (
            await get("/channels/room/join?%74oken=" + token + "&user=alice&conn=a")
        ).code == 200
        assert (await get("/api/channels", admin=token)).code == 200  # a header: never logged
    lines = access_lines(caplog)
    assert len(lines) == 4
    assert not [line for line in lines if token in line or token.split(".")[1] in line]
    assert "token=***" in lines[0] and "token=***" in lines[1] and "%74oken=***" in lines[2]


def test_redacted_keeps_everything_but_token_values():
    assert redacted("/p?user=a&token=1.x&cursor=2") == "/p?user=a&token=***&cursor=2"
    assert redacted("/p?token=1.x&token=2.y") == "/p?token=***&token=***"
    assert redacted("/p?tokens=1&user_token=2&token") == "/p?tokens=1&user_token=2&token"
    assert redacted("/p?to%6Ben=1.x") == "/p?to%6Ben=***"
    assert redacted("/p") == "/p" and redacted("/token=1") == "/token=1"


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "settings,logged",
    [
        (WebSettings(access_log="off"), []),
        (WebSettings(), ["404 GET /nowhere"]),  # errors, the default
        (WebSettings(access_log="sample", access_log_sample=2), ["200", "404 GET /nowhere", "200"]),
        (WebSettings(access_log="all"), ["200", "200", "404 GET /nowhere", "200", "200"]),
    ],
    ids=["off", "errors", "sample", "all"],
)
async def test_access_log_modes(get, caplog, logged):
    with caplog.at_level(logging.INFO, logger="tornado.access"):
        for path in ["/healthz", "/healthz", "/nowhere", "/healthz", "/healthz"]:
            await get(path)
    lines = access_lines(caplog)
    assert [line[: len(expected)] for line, expected in zip(lines, logged, strict=False)] == logged
    assert len(lines) == len(logged)


def test_an_unknown_access_log_mode_is_refused():
    with pytest.raises(ValueError):
        WebSettings(access_log="some")


@pytest.mark.gen_test
async def test_error_logs_never_show_a_token(get, model, monkeypatch, caplog):
    async def broken(*args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(model, "join", broken)
    with caplog.at_level(logging.INFO):
        failed = await get("/channels/room/join", user="alice", conn="a", token="s3cr3t.tok")
        assert failed.code == 500
        assert (await get("/static/nothing.js", token="s3cr3t.tok")).code == 404
        assert (await get("/", token="s3cr3t.tok")).code == 404  # (no index.html here)
    logged = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    assert any("Uncaught exception GET /channels/room/join" in line for line in logged)
    assert len([line for line in logged if "token=***" in line]) == 4
    assert not [line for line in logged if "s3cr3t" in line]


@pytest.mark.parametrize("value,public", [("1", True), ("on", True), ("0", False), ("", False)])
def test_public_api_comes_from_its_flag_or_variable(monkeypatch, value, public):
    from presence.cli import serve_parser

    monkeypatch.setenv("PRESENCE_PUBLIC_API", value)
    assert serve_parser().parse_args([]).public_api is public
    assert serve_parser().parse_args(["--public-api"]).public_api is True


def test_a_bad_public_api_variable_stops_start_up(monkeypatch, capsys):
    from presence.cli import serve_parser

    monkeypatch.setenv("PRESENCE_PUBLIC_API", "maybe")
    with pytest.raises(SystemExit) as stopped:
        serve_parser()
    assert stopped.value.code == 2 and "PRESENCE_PUBLIC_API" in capsys.readouterr().err


@pytest.mark.gen_test
async def test_tornados_own_log_lines_never_show_a_token(app, http_server, http_port, caplog):
    install_log_redaction()
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    writer.write(
        b"GET /api/channels?token=s3cr3t.q HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer s3cr3t-admin\x01\r\n\r\n"  # an invalid header value
    )
    with caplog.at_level(logging.INFO):
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 400")
    writer.close()
    logged = [r.getMessage() for r in caplog.records]
    assert any("Invalid header value ***" in line for line in logged), logged
    assert not [line for line in logged if "s3cr3t" in line]
