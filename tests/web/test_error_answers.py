"""Every 4xx answer of a request that asks for JSONP (a valid `callback`) is JSONP, like
every other answer; without a callback, or with an invalid one, it is JSON with CORS.
(The size refusals written below the application, 413/414/431: tests/web/test_limits.py.)"""

import pytest
from tornado.httpclient import AsyncHTTPClient

from presence.service.quotas import ClientLimits
from presence.web import auth
from tests.web.live import JSONP, answer_json

SECRET, ADMIN = "s3cret", "ops=adm1n"
BEARER = {"Authorization": "Bearer adm1n"}


def token(user: str = "alice") -> str:
    return auth.sign(SECRET, user)


@pytest.mark.gen_test
async def test_every_4xx_is_jsonp_when_a_valid_callback_asks_for_it(start_node):
    node = start_node(secret=SECRET, admin_token=ADMIN, client_limits=ClientLimits(max_tabs=1))
    client = AsyncHTTPClient()
    join = f"/channels/room/join?user=alice&conn=t1&token={token()}"
    assert (await client.fetch(node.url + join)).code == 200
    cases = [  # (method, target, headers, status, what the error names)
        ("GET", "/channels/room/join?user=a!&conn=t1", {}, 400, "user"),
        ("GET", "/channels/%FF/join?user=alice&conn=t1", {}, 400, "path"),
        ("GET", "/channels/room/join?user=alice&conn=t1&token=1.x", {}, 403, "token"),
        ("GET", "/channels/private-x/join?user=alice&conn=t1&token=" + token(), {}, 403, None),
        ("GET", "/api/channels", {}, 401, "Authorization"),
        ("GET", "/api/channels", {"Authorization": "Bearer nope"}, 401, "Authorization"),
        ("DELETE", "/api/channels/room/members/alice", {}, 401, "Authorization"),
        ("GET", "/api/channels/nowhere", BEARER, 404, "channel"),
        ("DELETE", "/api/channels/room/members/bob", BEARER, 404, None),
        ("GET", "/no/such/path", {}, 404, None),
        ("PUT", "/channels/room/join?user=alice&conn=t1", {}, 405, None),
        ("GET", f"/channels/room/join?user=alice&conn=t2&token={token()}", {}, 429, None),
        ("GET", f"/channels/room/send?user=bob&conn=t9&data=x&token={token('bob')}", {}, 404, None),
    ]  # fmt: skip
    for method, target, headers, status, param in cases:
        for callback in ("cb", "a.b_c$1"):
            url = f"{node.url}{target}{'&' if '?' in target else '?'}callback={callback}"
            answer = await client.fetch(url, method=method, headers=headers, raise_error=False,
                                        body=b"" if method == "PUT" else None)  # fmt: skip
            assert answer.code == status, (target, answer.code, answer.body)
            text = answer.body.decode()
            match = JSONP.match(text)
            assert match and match.group(1) == callback, (target, text)
            assert answer.headers["Content-Type"].startswith("text/javascript")
            assert "Access-Control-Allow-Origin" not in answer.headers
            error = answer_json(answer.body)
            assert "error" in error and (param is None or error.get("param") == param), error
        # no callback, or an invalid one: JSON with CORS
        for suffix in ("", "callback=alert(1)", "callback=%FF"):
            sep = "&" if "?" in target else "?"
            answer = await client.fetch(f"{node.url}{target}{sep if suffix else ''}{suffix}",
                                        method=method, headers=headers, raise_error=False,
                                        body=b"" if method == "PUT" else None)  # fmt: skip
            assert answer.code == (400 if suffix else status), (target, suffix, answer.body)
            assert answer.headers["Content-Type"].startswith("application/json")
            assert answer.headers["Access-Control-Allow-Origin"] == "*"
            assert not JSONP.match(answer.body.decode()) and answer_json(answer.body)


@pytest.mark.gen_test
async def test_a_refused_request_changes_no_member_and_no_event(start_node):
    """Whatever refused it (a parameter, a token, a limit, a size, a malformed request):
    the channel's members and the global feed stay as they were."""
    from presence.web.limits import Limits
    from tests.web.live import exchange, parse_answer

    node = start_node(Limits(max_body_size=1000, max_url_length=300, max_header_size=3000),
                      secret=SECRET, admin_token=ADMIN,
                      client_limits=ClientLimits(max_tabs=1, max_messages_per_second=1))  # fmt: skip
    client = AsyncHTTPClient()

    async def get(target, headers=None, method="GET"):
        return await client.fetch(node.url + target, method=method, headers=headers,
                                  raise_error=False, allow_nonstandard_methods=True)  # fmt: skip

    mine = f"user=alice&conn=t1&token={token()}"
    assert (await get(f"/channels/room/join?{mine}")).code == 200
    assert (await get(f"/channels/room/send?{mine}&data=1")).code == 200

    async def state():
        room = answer_json((await get("/api/channels/room", BEARER)).body)
        feed = answer_json((await get("/api/events", BEARER)).body)
        return room, feed["cursor"]

    before = await state()
    refused = [
        (f"/channels/room/join?{mine}&info=1e999", 400),
        (f"/channels/room/join?{mine}&info=%22%5Cud800%22", 400),
        ("/channels/room/join?user=bob&conn=t2&token=" + token(), 403),
        (f"/channels/private-x/join?{mine}", 403),
        (f"/channels/room/join?user=alice&conn=t2&token={token()}", 429),
        (f"/channels/other/send?{mine}&data=x", 404),
        (f"/channels/room/send?{mine}&data=2", 429),
        (f"/channels/room/send?{mine}&data=" + "x" * 5000, 414),
    ]  # fmt: skip
    for target, status in refused:
        assert (await get(target)).code == status, target
    for headers in ({}, {"Authorization": "Bearer nope"}):
        assert (await get("/api/channels/room/members/alice", headers, "DELETE")).code == 401
    post = "Content-Type: application/x-www-form-urlencoded\r\n"
    target = "/channels/room/leave?" + mine
    for head, body in [
        (f"{post}Content-Length: 5000\r\n", b"x" * 5000),  # 413
        (f"{post}Transfer-Encoding: chunked\r\n", b"2000\r\n" + b"x" * 0x2000),  # 413
        (f"X-Big: {'y' * 3000}\r\n", b""),  # 431
        (f"{post}Content-Length: 1, 2\r\n", b"x"),  # malformed
    ]:
        data = f"POST {target} HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + body
        assert parse_answer(await exchange(node.port, data, 3))[0] in (400, 413, 431)
    assert await state() == before
