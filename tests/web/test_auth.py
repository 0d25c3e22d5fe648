"""Signed client tokens: the codec, and the client endpoints under --secret."""

import json
from urllib.parse import urlencode

import pytest

from presence.web import auth
from presence.web.app import WebSettings, make_app
from tests.service.helpers import make_presence

SECRET = "k3y"


def test_a_token_is_valid_for_its_user_until_it_expires():
    token = auth.sign(SECRET, "alice", ttl=60, now=1000)
    assert auth.check(SECRET, "alice", token, now=1059) is None
    assert auth.check(SECRET, "alice", token, now=1061) == "token has expired"
    assert auth.check(SECRET, "bob", token, now=1000) == "token is not valid for this user"
    assert auth.check("other", "alice", token, now=1000) == "token is not valid for this user"
    for bad in ["", "abc", "12.", ".sig", "1e3.sig", "١٢.sig"]:
        assert auth.check(SECRET, "alice", bad, now=0) == "token is malformed"


@pytest.fixture
def app(store_url, io_loop):
    model = make_presence(store_url)
    yield make_app(model, WebSettings(secret=SECRET))
    io_loop.run_sync(model.gateway.close)


@pytest.mark.gen_test
async def test_client_endpoints_need_a_token_under_secret(app, http_client, base_url):
    async def join(**extra):
        query = urlencode({"user": "alice", "conn": "c", **extra})
        return await http_client.fetch(f"{base_url}/channels/room/join?{query}", raise_error=False)

    missing = await join()
    assert missing.code == 400 and json.loads(missing.body)["param"] == "token"
    forged = await join(token=auth.sign(SECRET, "bob"))
    assert forged.code == 403 and json.loads(forged.body)["param"] == "token"
    assert (await join(token=auth.sign(SECRET, "alice"))).code == 200
