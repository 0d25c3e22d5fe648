"""Strict JSON in and out, and bad input that used to be a 500: always a 4xx in JSON."""

import json
from urllib.parse import quote, urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from presence.web import auth
from presence.web.limits import Limits
from tests.web.live import answer_json, exchange, parse_answer

ME = {"user": "alice", "conn": "tab1"}


async def fetch(node, path, method="GET", body=None, headers=None, **params):
    url = node.url + path + ("?" + urlencode(params) if params else "")
    request = HTTPRequest(url, method, headers, body, allow_nonstandard_methods=True)
    return await AsyncHTTPClient().fetch(request, raise_error=False)


def post_json(node, path, text):
    return fetch(node, path, "POST", text, {"Content-Type": "application/json"})


async def members(node):
    page = await node.model.channel("room", None, 100)
    return None if page is None else [(m.user, m.info) for m in page.members]


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "info",
    ["1e999", "-1e999", '{"a":1e400}', "NaN", "Infinity", "[-Infinity]", '"\\ud800"',
     '{"\\udfff":1}', "[" * 33 + "]" * 33, "[" * 500 + "]" * 500],
)  # fmt: skip
async def test_info_that_is_not_strict_json_is_400_naming_info(start_node, info):
    node = start_node()
    response = await fetch(node, "/channels/room/join", **ME, info=info)
    assert response.code == 400, response.body
    assert answer_json(response.body)["param"] == "info"
    assert await members(node) is None  # nothing was stored


@pytest.mark.gen_test
async def test_info_at_the_nesting_limit_and_with_a_surrogate_pair_is_kept(start_node):
    node = start_node()
    deep = "[" * 32 + "]" * 32
    assert (await fetch(node, "/channels/room/join", **ME, info=deep)).code == 200
    pair = '{"face":"\\ud83d\\ude00"}'
    assert (await fetch(node, "/channels/room/join", **ME, info=pair)).code == 200
    assert await members(node) == [("alice", {"face": "\U0001f600"})]


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "text",
    [
        '{"user":"alice","conn":"tab1","info":{"n":1e999}}',
        '{"user":"alice","conn":"tab1","info":{"n":NaN}}',
        '{"user":"alice","conn":"tab1","info":"\\ud800"}',
        '{"user":"alice","conn":"tab1","info":{"s":"\\udc00"}}',
        '{"user":"alice","conn":"tab1","x":' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"user":"alice","conn":"tab1","x":' + '{"a":' * 40 + "1" + "}" * 40 + "}",
        "[" * 100_000,
    ],
)
async def test_a_json_body_that_is_not_strict_is_400_naming_the_body(start_node, text):
    node = start_node(Limits(max_body_size=1 << 20))  # (the depth refuses, not the size)
    response = await post_json(node, "/channels/room/join", text)
    assert response.code == 400, response.body
    assert answer_json(response.body)["param"] == "body"
    assert await members(node) is None


@pytest.mark.gen_test
async def test_a_message_with_a_lone_surrogate_is_400_and_not_sent(start_node):
    node = start_node()
    await fetch(node, "/channels/room/join", **ME)
    for text in ['{"user":"alice","conn":"tab1","data":"\\ud800"}',
                 '{"user":"alice","conn":"tab1","data":"a\\udfffb"}']:  # fmt: skip
        response = await post_json(node, "/channels/room/send", text)
        assert response.code == 400 and answer_json(response.body)["param"] == "body"
    polled = answer_json((await fetch(node, "/channels/room/poll", **ME, cursor="1")).body)
    assert polled["events"] == []  # only alice's join (cursor 1) was recorded


@pytest.mark.gen_test
async def test_answers_are_strict_json_even_for_numbers_at_the_edge(start_node):
    node = start_node()
    info = '{"big":1e308,"small":-1e-308,"int":123456789012345678901234567890}'
    joined = await fetch(node, "/channels/room/join", **ME, info=info)
    assert answer_json(joined.body)["members"][0]["info"]["big"] == 1e308
    for path in ["/api/channels/room", "/api/channels"]:
        answer_json((await fetch(node, path)).body)  # (raises when not strict)


@pytest.mark.gen_test
@pytest.mark.parametrize("token", ["123.%C3%A9", "%C3%A9.abc", "1.\U0001f600", "\u0663.x"])
async def test_a_token_with_non_ascii_characters_is_403_naming_the_token(start_node, token):
    node = start_node(secret="s3cret")
    query = urlencode(ME) + "&token=" + (token if "%" in token else quote(token))
    response = await AsyncHTTPClient().fetch(
        f"{node.url}/channels/room/join?{query}", raise_error=False
    )
    assert response.code == 403, response.body
    assert answer_json(response.body)["param"] == "token"
    assert await members(node) is None


def test_check_refuses_a_non_ascii_token_as_malformed():
    assert auth.check("s", "alice", "123.\u00e9") == "token is malformed"
    assert auth.check("s", "alice", "\u0663.abc") == "token is malformed"
    assert auth.check("s", "alice", auth.sign("s", "alice")) is None


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "path", ["/static/presence.js%00.txt", "/static/%00", "/static/a%0Ab", "/static/nope.js"]
)
async def test_a_static_path_that_cannot_be_a_file_is_404_in_json(start_node, path):
    node = start_node()
    status, headers, body = parse_answer(
        await exchange(node.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 2)
    )
    assert status == 404
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body) == {"error": "Not Found"}


ADMIN_TOKEN = {"Authorization": "Bearer adm1n"}
EVERY_ENDPOINT = [  # (method, path, parameters): every endpoint of the README's HTTP API
    ("GET", "/channels/room/join", {**ME, "info": '{"s":"\\ud83d\\ude00\\u2028</script>"}'}),
    ("GET", "/channels/room/poll", {**ME, "cursor": "0"}),
    ("GET", "/channels/room/poll", {**ME, "cursor": "1"}),
    ("GET", "/channels/room/heartbeat", ME),
    ("GET", "/channels/room/send", {**ME, "data": "\U0001f600 \u2028 </script> \x7f"}),
    ("POST", "/channels/room/send", {**ME, "data": "é"}),
    ("GET", "/channels/other/poll", {**ME, "cursor": "0"}),  # (rejoin)
    ("GET", "/api/channels", {}),
    ("GET", "/api/channels", {"all": "1", "prefix": "r", "limit": "1"}),
    ("GET", "/api/channels/room", {"prefix": "a", "limit": "5"}),
    ("GET", "/api/events", {}),
    ("GET", "/api/events", {"cursor": "0"}),
    ("GET", "/api/stats", {}),
    ("GET", "/api/nodes", {}),
    ("GET", "/api/history", {"minutes": "5"}),
    ("GET", "/healthz", {}),
    ("GET", "/readyz", {}),
    ("GET", "/nowhere", {}),
    ("GET", "/channels/room/leave", ME),
    ("DELETE", "/api/channels/room/members/alice", {}),
]


@pytest.mark.gen_test
async def test_every_answer_of_every_endpoint_is_strict_json_or_jsonp_of_it(start_node):
    node = start_node(admin_token="ops=adm1n", poll_timeout=0.2)
    info = '{"big":1e308,"tiny":5e-324,"neg":-0.0,"s":"\\ud83d\\ude00 \\u2028 \\"</script>"}'
    await fetch(node, "/channels/room/join", **ME, info=info)
    for jsonp in (False, True):
        await fetch(node, "/channels/room/join", user="bob", conn="b1", info=info)
        for method, path, params in EVERY_ENDPOINT:
            query = {**params, "callback": "cb"} if jsonp else params
            body = urlencode(query) if method == "POST" else None
            answer = await fetch(node, path, method, body, ADMIN_TOKEN,
                                 **({} if method == "POST" else query))  # fmt: skip
            assert answer.code < 500 or path == "/readyz", (path, answer.code)  # (no subscriber)
            text = answer.body.decode("utf-8")  # (strict: no lone surrogate can be in it)
            assert text.startswith("/**/ typeof cb") == (jsonp and method != "POST"), text
            answer_json(answer.body)  # strict JSON, or JSONP of it (raises otherwise)
            assert "</" not in text  # (safe inside a <script> element)
