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
