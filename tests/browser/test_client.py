"""presence.js in headless Chromium, from a page on another origin than the service (JSONP
by default), with jQuery 3.7 and 4: presence, leave, offline, two tabs, chat, recovery, reset."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from presence.testing import ROOT
from tests.browser.conftest import ADMIN_TOKEN, JQUERY_VERSIONS, TIMEOUT, presence_service
from tests.browser.helpers import (
    events,
    jsonp_body,
    open_client,
    wait_event,
    wait_members,
    wait_state,
)
from tests.helpers import wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(params=JQUERY_VERSIONS)
def jquery(request):
    return request.param


def test_two_pages_see_each_other_and_closing_one_sends_leave(
    contexts, pages, service, channel, jquery
):
    alice = open_client(contexts(), pages, service, "alice", channel, jquery)
    wait_members(alice, channel, ["alice"])
    bob = open_client(contexts(), pages, service, "bob", channel, jquery)
    wait_members(alice, channel, ["alice", "bob"])
    wait_members(bob, channel, ["alice", "bob"])
    assert wait_event(alice, "join", "bob")["type"] == "join"
    assert alice.evaluate("$.fn.jquery") == jquery

    bob.close()  # pagehide runs: presence.js sends the leave beacon
    wait_event(alice, "leave", "bob")
    wait_members(alice, channel, ["alice"])
    assert events(alice, "offline", "bob") == []  # the beacon, not the timeout


def test_frozen_page_goes_offline_after_the_timeout(contexts, pages, service, channel, jquery):
    alice = open_client(contexts(), pages, service, "alice", channel, jquery)
    bob_context = contexts()
    bob = open_client(bob_context, pages, service, "bob", channel, jquery)
    wait_members(alice, channel, ["alice", "bob"])

    bob.evaluate("setTimeout(() => { for (;;) {} }, 0)")  # hung for good: no polls, no unload
    frozen = time.monotonic()
    wait_event(alice, "offline", "bob", timeout=(TIMEOUT + 5) * 1000)
    assert (
        time.monotonic() - frozen >= TIMEOUT - 1.5
    )  # not before the timeout (minus a poll's head start)
    wait_members(alice, channel, ["alice"])
    assert events(alice, "leave", "bob") == []
    bob_context.close()


def test_network_loss_goes_offline_and_client_recovers(contexts, pages, service, channel, jquery):
    alice = open_client(contexts(), pages, service, "alice", channel, jquery)
    bob_context = contexts()
    bob = open_client(bob_context, pages, service, "bob", channel, jquery)
    wait_members(alice, channel, ["alice", "bob"])

    bob_context.set_offline(True)
    wait_state(bob, "retrying")
    wait_event(alice, "offline", "bob", timeout=(TIMEOUT + 5) * 1000)
    assert alice.evaluate("c => client.send(c, 'while you were away').then(a => a.ok)", channel)

    bob_context.set_offline(False)
    wait_members(alice, channel, ["alice", "bob"])
    # bob resumed from his cursor: he sees his own offline and the message sent meanwhile
    wait_event(bob, "message", "alice", data="while you were away")
    wait_event(bob, "offline", "bob")
    wait_members(bob, channel, ["alice", "bob"])
    assert bob.evaluate("c => client.state(c)", channel) == "online"


def test_user_with_two_tabs_is_one_member_until_both_close(
    contexts, pages, service, channel, jquery
):
    alice = open_client(contexts(), pages, service, "alice", channel, jquery)
    carol_context = contexts()
    tab1 = open_client(carol_context, pages, service, "carol", channel, jquery)
    tab2 = open_client(carol_context, pages, service, "carol", channel, jquery)
    assert tab1.evaluate("client.conn") != tab2.evaluate("client.conn")
    wait_members(tab2, channel, ["alice", "carol"])
    wait_members(alice, channel, ["alice", "carol"])
    tab1_conn = tab1.evaluate("client.conn")
    tab1.reload()  # a reload keeps the tab's connection id (sessionStorage)
    tab1.wait_for_function("window.t && window.t.ready")
    assert tab1.evaluate("client.conn") == tab1_conn

    tab1.close()
    time.sleep(TIMEOUT + 1)  # long enough for a wrong leave or offline to show up
    assert events(alice, "leave", "carol") == [] and events(alice, "offline", "carol") == []
    assert len(events(alice, "join", "carol")) == 1
    wait_members(alice, channel, ["alice", "carol"])

    tab2.close()
    wait_event(alice, "leave", "carol")
    wait_members(alice, channel, ["alice"])


def test_chat_between_jsonp_and_json_cors_clients(contexts, pages, service, channel, jquery):
    alice = open_client(contexts(), pages, service, "alice", channel, jquery, transport="jsonp")
    dave = open_client(contexts(), pages, service, "dave", channel, jquery, transport="json")
    wait_members(alice, channel, ["alice", "dave"])
    wait_members(dave, channel, ["alice", "dave"])
    send = "([c, text]) => client.send(c, text).then(a => a.ok)"
    assert alice.evaluate(send, [channel, "hi dave"]) is True
    assert dave.evaluate(send, [channel, "hi alice, <b>é</b> & ünïcode"]) is True
    for page in (alice, dave):
        wait_event(page, "message", "alice", data="hi dave")
        wait_event(page, "message", "dave", data="hi alice, <b>é</b> & ünïcode")
        texts = [e["data"] for e in events(page, "message")]
        assert texts == ["hi dave", "hi alice, <b>é</b> & ünïcode"]  # in order, exactly once


def test_failed_polls_back_off_and_resume_from_the_cursor(contexts, pages, service, channel):
    alice = open_client(contexts(), pages, service, "alice", channel)
    bob = open_client(contexts(), pages, service, "bob", channel)
    wait_members(bob, channel, ["alice", "bob"])

    bob.route("**/poll?**", lambda route: route.abort())
    wait_state(bob, "retrying")
    assert alice.evaluate("c => client.send(c, 'sent during the outage').then(a => a.ok)", channel)
    time.sleep(0.5)
    bob.unroute("**/poll?**")
    wait_event(bob, "message", "alice", data="sent during the outage")
    time.sleep(POLL_SETTLE)
    assert len(events(bob, "message")) == 1
    assert events(alice, "offline", "bob") == []


def test_a_poll_that_never_answers_times_out_and_the_client_recovers(
    contexts, pages, service, channel
):
    alice = open_client(contexts(), pages, service, "alice", channel)
    bob = open_client(contexts(), pages, service, "bob", channel)
    wait_members(bob, channel, ["alice", "bob"])

    hung = []
    # The next poll is never answered, like a JSONP script that hangs: no error event fires.
    bob.route("**/poll?**", lambda route: hung.append(route), times=1)
    started = time.monotonic()
    bob.wait_for_function("window.t.details.some(d => d.error === 'timeout')", timeout=15_000)
    # the default request timeout is the server's poll timeout (1 s) + 5 s
    assert 5.5 <= time.monotonic() - started <= 10
    assert len(hung) == 1
    assert alice.evaluate("c => client.send(c, 'after the hang').then(a => a.ok)", channel)
    wait_event(bob, "message", "alice", data="after the hang")
    assert bob.evaluate("c => client.state(c)", channel) == "online"


POLL_SETTLE = 1.5  # a poll timeout and a bit: time for a duplicate to show up if there were one


def test_reset_resynchronises_members_from_the_snapshot(contexts, pages, service, channel):
    alice = open_client(contexts(), pages, service, "alice", channel)
    bob = open_client(contexts(), pages, service, "bob", channel)
    wait_members(bob, channel, ["alice", "bob"])

    def answer_reset(route):
        query = parse_qs(urlparse(route.request.url).query)
        snapshot = {
            "reset": True,
            "cursor": query["cursor"][0],
            "members": [{"user": "alice"}, {"user": "bob"}, {"user": "ghost"}],
        }
        route.fulfill(
            status=200,
            content_type="text/javascript; charset=UTF-8",
            body=jsonp_body(query["callback"][0], snapshot),
        )

    bob.route("**/poll?**", answer_reset, times=1)
    bob.wait_for_function("window.t.resets === 1")
    wait_members(bob, channel, ["alice", "bob", "ghost"])
    assert alice.evaluate("c => client.send(c, 'after reset').then(a => a.ok)", channel)
    wait_event(bob, "message", "alice", data="after reset")  # polling goes on from the new cursor


def test_duplicated_tab_takes_a_new_connection_id(contexts, pages, service, channel):
    context = contexts()
    tab1 = open_client(context, pages, service, "carol", channel)
    wait_members(tab1, channel, ["carol"])
    conn = tab1.evaluate("client.conn")
    # "Duplicate tab" starts the copy with the original's sessionStorage, hence its id.
    context.add_init_script(
        f"if (location.protocol === 'http:') sessionStorage.setItem('presence.conn', {json.dumps(conn)})"
    )
    tab2 = open_client(context, pages, service, "carol", channel)
    tab2.wait_for_function("c => client.conn !== c", arg=conn)
    assert tab1.evaluate("client.conn") == conn
    assert tab2.evaluate("sessionStorage.getItem('presence.conn')") == tab2.evaluate("client.conn")

    def channel_info() -> dict:
        with urllib.request.urlopen(admin_request(f"{service}/api/channels/{channel}")) as answer:
            return json.load(answer)

    # the service counts two connections for carol
    body = wait_until(
        lambda: (info := channel_info())["connections"] == 2 and info,
        timeout=10,
        interval=0.1,
        message="carol's second connection never counted",
    )
    assert (body["users"], body["connections"]) == (1, 2)


def test_signed_tokens_with_secret(contexts, pages, channel):
    secret = "browser-test-secret"
    mint = [
        sys.executable,
        "-c",
        "import sys; from presence.cli import main; sys.exit(main())",
        "token",
        "--secret",
        secret,
        "--user",
        "alice",
    ]
    token = subprocess.run(mint, check=True, capture_output=True, text=True).stdout.strip()
    with presence_service("--secret", secret, log_name="presence-serve-secret.log") as service:
        alice = open_client(contexts(), pages, service, "alice", channel, token=token)
        wait_members(alice, channel, ["alice"])
        mallory = open_client(
            contexts(), pages, service, "mallory", channel, token=token
        )  # alice's
        wait_state(mallory, "retrying")
        nobody = open_client(contexts(), pages, service, "nobody", channel)
        wait_state(nobody, "retrying")
        time.sleep(1)
        assert "online" not in mallory.evaluate("window.t.states")
        assert events(alice, "join") == []
        wait_members(alice, channel, ["alice"])

        # A private channel needs a token scoped to it: presence.js takes a {channel: token} map.
        private = f"private-{channel}"[:64]
        scoped = subprocess.run(
            mint + ["--channels", "private-*"], check=True, capture_output=True, text=True
        ).stdout.strip()
        alice.evaluate(
            "([c, p, t, s]) => { client.options.token = {[c]: t, [p]: s}; client.join(p); }",
            [channel, private, token, scoped],
        )
        wait_members(alice, private, ["alice"])
        wait_members(alice, channel, ["alice"])
        unscoped = open_client(contexts(), pages, service, "alice", private, token=token)
        wait_state(unscoped, "retrying")


def test_one_client_in_two_channels(contexts, pages, service, channel):
    other = channel + "-b"
    alice = open_client(contexts(), pages, service, "alice", channel)
    alice.evaluate("c => { client.join(c); }", other)
    bob = open_client(contexts(), pages, service, "bob", other)
    wait_members(alice, channel, ["alice"])
    wait_members(alice, other, ["alice", "bob"])
    assert sorted(alice.evaluate("client.channels()")) == sorted([channel, other])
    assert bob.evaluate("c => client.send(c, 'in b').then(a => a.ok)", other)
    message = wait_event(alice, "message", "bob", data="in b")
    assert message["channel"] == other

    assert alice.evaluate("c => client.leave(c).then(a => a.ok)", other)
    wait_event(bob, "leave", "alice")
    assert alice.evaluate("client.channels()") == [channel]
    assert alice.evaluate("c => client.state(c)", other) == "idle"


def test_readme_example_runs_as_written(contexts, pages, pages_root, service, channel):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Browser client and dashboard") :]
    example = section[section.index("```html") + len("```html") :]
    example = example[: example.index("```")].replace("https://presence.example.com", service)
    example = example.replace('"lobby"', f'"{channel}"')
    (pages_root / "readme-example.html").write_text(
        f'<!doctype html><meta charset="utf-8"><ul id="who"></ul>{example}'
    )
    page = contexts().new_page()
    page.goto(f"{pages}/readme-example.html")  # another origin than the service, as in the README
    expect(page.locator("#who li")).to_have_text(["alice"])
    assert page.evaluate("c => client.state(c)", channel) == "online"
    page.close()


def test_mistakes_the_service_would_refuse_are_thrown_at_once(contexts, pages, service):
    page = open_client(contexts(), pages, service, "alice", None)
    attempt = "code => { try { eval(code); return null; } catch (e) { return e.message; } }"
    assert "options.user" in page.evaluate(attempt, "$.presence({user: 'not a user id'})")
    assert "options.user" in page.evaluate(attempt, "$.presence({})")
    assert "1 KB" in page.evaluate(
        attempt, "$.presence({user: 'bob', info: {bio: 'é'.repeat(600)}})"
    )
    assert "channel" in page.evaluate(attempt, "client.join('no spaces please')")
    assert (
        page.evaluate(attempt, "$.presence({user: 'bob@example.com', info: {name: 'Bob'}})") is None
    )


def admin_request(url: str, method: str = "GET") -> urllib.request.Request:
    """A request to an operator endpoint of the session's node, with its admin token."""
    return urllib.request.Request(
        url, method=method, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )


def kick(service: str, channel: str, user: str) -> dict:
    request = admin_request(f"{service}/api/channels/{channel}/members/{user}", "DELETE")
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def channel_counts(service: str, channel: str) -> tuple[int, int]:
    with urllib.request.urlopen(admin_request(f"{service}/api/channels/{channel}")) as answer:
        body = json.load(answer)
    return body["users"], body["connections"]


RAW_POLL = """([c, cursor]) => $.ajax({url: client.endpoint(c, "poll"), dataType: "jsonp",
    data: {user: client.user, conn: client.conn, cursor: cursor}})"""


def test_a_kicked_page_that_keeps_polling_does_not_come_back(contexts, pages, service, channel):
    alice = open_client(contexts(), pages, service, "alice", channel)
    bob = open_client(contexts(), pages, service, "bob", channel, name="Bob")
    wait_members(alice, channel, ["alice", "bob"])

    bob.route("**/poll?**", lambda route: route.abort())  # bob misses his own kick event
    wait_state(bob, "retrying")
    kick(service, channel, "bob")
    wait_event(alice, "leave", "bob")
    bob.unroute("**/poll?**")
    bob.wait_for_function("c => client.state(c) === 'kicked'", arg=channel)  # told by its poll
    assert events(bob, "leave", "bob") == []  # it stopped without reading the event
    cursor = bob.evaluate("c => client.rooms[c].cursor", channel)
    for _ in range(3):  # a client that ignores the kick and keeps polling
        answer = bob.evaluate(RAW_POLL, [channel, cursor])
        assert answer == {"rejoin": True, "reason": "kicked", "cursor": cursor}
    time.sleep(TIMEOUT / 2)
    assert channel_counts(service, channel) == (1, 1)
    assert len(events(alice, "join", "bob")) == 1
    wait_members(alice, channel, ["alice"])


def test_a_thawed_page_whose_key_expired_rejoins_with_its_info(contexts, pages, service, channel):
    alice = open_client(contexts(), pages, service, "alice", channel, name="Alice")
    bob = open_client(contexts(), pages, service, "bob", channel, name="Bob")
    wait_members(alice, channel, ["alice", "bob"])

    frozen_ms = (TIMEOUT + 3) * 1000  # bob's page hangs, then comes back by itself
    bob.evaluate(
        "ms => setTimeout(() => { const end = Date.now() + ms; while (Date.now() < end) {} }, 0)",
        frozen_ms,
    )
    wait_event(alice, "offline", "bob", timeout=(TIMEOUT + 5) * 1000)
    wait_members(alice, channel, ["alice"])
    wait_members(alice, channel, ["alice", "bob"], timeout=frozen_ms + 5000)
    rejoined = [e for e in events(alice, "join", "bob")][-1]
    assert rejoined["info"] == {"name": "Bob"}
    members = alice.evaluate("c => client.members(c)", channel)
    assert [m["info"] for m in members] == [{"name": "Alice"}, {"name": "Bob"}]
    assert bob.evaluate("c => client.state(c)", channel) == "online"
    assert channel_counts(service, channel) == (2, 2)
