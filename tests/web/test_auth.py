"""Signed client tokens (scoped or not) and admin tokens: the codecs, `presence token`, and
the client endpoints under --secret."""

import json
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from presence.cli import main, serve_parser
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
def app(standalone_url, io_loop):
    model = make_presence(standalone_url)
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


def test_a_scoped_token_allows_its_channels_and_prefixes_only():
    token = auth.sign(SECRET, "alice", ttl=60, now=1000, channels=["lobby", "team-*"])
    assert token.split(".")[1] == "lobby,team-*"
    for channel in ["lobby", "team-a", "team-"]:
        assert auth.check(SECRET, "alice", token, channel, now=1000) is None
    for channel in ["lobby2", "team", "private-x"]:
        assert auth.check(SECRET, "alice", token, channel, now=1000) == (
            f"token does not allow channel {channel}"
        )
    assert auth.check(SECRET, "alice", token, now=1000) is None  # no channel to check
    assert auth.check(SECRET, "alice", token, "lobby", now=1061) == "token has expired"
    widened = token.replace("lobby,team-*", "lobby,*")  # the scope is signed
    assert auth.check(SECRET, "alice", widened, "x", now=1000) == "token is not valid for this user"


def test_private_channels_need_a_token_scoped_to_them():
    plain = auth.sign(SECRET, "alice", ttl=60, now=1000)
    assert auth.check(SECRET, "alice", plain, "lobby", now=1000) is None
    assert auth.check(SECRET, "alice", plain, "private-x", now=1000) == (
        "token does not allow channel private-x"
    )
    for scope in (["private-x"], ["private-*"], ["*"]):
        scoped = auth.sign(SECRET, "alice", ttl=60, now=1000, channels=scope)
        assert auth.check(SECRET, "alice", scoped, "private-x", now=1000) is None


def test_sign_refuses_scopes_no_channel_could_match():
    for scope in ([], ["a b"], ["a,b"], ["x" * 65], ["a*b"], [""]):
        with pytest.raises(ValueError):
            auth.sign(SECRET, "alice", channels=scope)


@given(st.text(max_size=300))
def test_checking_any_text_as_a_token_never_raises(token):
    assert auth.check(SECRET, "alice", token, "lobby") in (
        None,
        "token is malformed",
        "token is not valid for this user",
        "token has expired",
        "token does not allow channel lobby",
    )


def test_malformed_tokens_are_named_so():
    good = auth.sign(SECRET, "alice", channels=["a"])
    for bad in [
        "123.é",
        "1.\ud800",
        "1.a,,b.sig",
        "1..sig",
        "1.a b.sig",
        "1" * 17 + ".sig",
        good + "x" * 2048,
    ]:
        assert auth.check(SECRET, "alice", bad, "a") == "token is malformed"


def test_admin_tokens_are_named_or_called_admin():
    tokens = auth.parse_admin_tokens("ops=t1, t2,ci-bot=t=3")
    assert tokens == {"t1": "ops", "t2": "admin", "t=3": "ci-bot"}
    assert auth.admin_name(tokens, "Bearer t1") == "ops"
    assert auth.admin_name(tokens, "Bearer t2") == "admin"
    assert auth.admin_name(tokens, "Bearer t=3") == "ci-bot"
    for header in ["", "t1", "Bearer t1 ", "Bearer t", "bearer t1", "Bearer \udcff", "Bearer é"]:
        assert auth.admin_name(tokens, header) is None
    assert auth.parse_admin_tokens(None) == {} == auth.parse_admin_tokens("")


@pytest.mark.parametrize(
    "spec", ["ops=", "=s3cr3t", "a b=s3cr3t", "s3cr3t,", "s3cr3t,s3cr3t", "x=s3 cr3t", "x=s3cr3té"]
)
def test_malformed_admin_tokens_are_refused_without_repeating_them(spec):
    with pytest.raises(ValueError) as caught:
        auth.parse_admin_tokens(spec)
    assert "s3" not in str(caught.value)


def test_presence_token_mints_scoped_tokens(capsys):
    assert main(["token", "--secret", SECRET, "--user", "alice", "--channels", "a,team-*"]) == 0
    token = capsys.readouterr().out.strip()
    assert auth.check(SECRET, "alice", token, "team-x") is None
    assert auth.check(SECRET, "alice", token, "b") == "token does not allow channel b"
    with pytest.raises(SystemExit):
        main(["token", "--secret", SECRET, "--user", "alice", "--channels", "a b"])
    assert "--channels" in capsys.readouterr().err


def test_a_malformed_admin_token_flag_is_refused_without_repeating_it(capsys):
    with pytest.raises(SystemExit):
        serve_parser().parse_args(["--admin-token", "ops=s3 cr3t"])
    error = capsys.readouterr().err
    assert "--admin-token" in error and "s3" not in error


async def _join(http_client, base_url, channel, **params):
    query = urlencode({"user": "alice", "conn": "c", **params})
    response = await http_client.fetch(
        f"{base_url}/channels/{channel}/join?{query}", raise_error=False
    )
    return response.code, json.loads(response.body)


@pytest.mark.gen_test
async def test_client_endpoints_check_the_token_scope(app, http_client, base_url):
    scoped = auth.sign(SECRET, "alice", channels=["team-*", "private-ops"])
    plain = auth.sign(SECRET, "alice")
    assert (await _join(http_client, base_url, "team-a", token=scoped))[0] == 200
    assert (await _join(http_client, base_url, "private-ops", token=scoped))[0] == 200
    code, answer = await _join(http_client, base_url, "lobby", token=scoped)
    assert (code, answer) == (
        403,
        {"error": "token does not allow channel lobby", "param": "token"},
    )
    code, answer = await _join(http_client, base_url, "private-ops", token=plain)
    assert (code, answer["param"]) == (403, "token")
    code, answer = await _join(http_client, base_url, "lobby", token="123.é")
    assert (code, answer) == (403, {"error": "token is malformed", "param": "token"})
    for action in ["poll", "heartbeat", "leave", "send"]:  # every client endpoint checks it
        query = urlencode(
            {"user": "alice", "conn": "c", "token": plain, "cursor": "0", "data": "x"}
        )
        response = await http_client.fetch(
            f"{base_url}/channels/private-ops/{action}?{query}", raise_error=False
        )
        assert response.code == 403, action
