"""The demo page and presence.js with big channels and bad networks: the real member count and
"and N more", the own join shown once, events in id order, greyed members while not live,
retry at once on `online` / `visibilitychange`, and axe-core on the demo page."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import presence_service
from tests.browser.helpers import (
    axe_violations,
    join_users,
    jsonp_body,
    open_client,
    wait_members,
    wait_state,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def roomy():
    """A node whose users stay for 10 minutes without polling: users joined over HTTP."""
    with presence_service("--timeout", "600", log_name="presence-serve-roomy-demo.log") as url:
        yield url


def open_demo(context, service, user, channel, name=""):
    page = context.new_page()
    page.goto(
        f"{service}/?" + urlencode({"user": user, "name": name, "channel": channel, "join": "1"})
    )
    expect(page.locator("#state")).to_have_text("online")
    return page


def test_big_channel_shows_the_real_count_and_the_first_hundred(contexts, roomy, channel):
    join_users(roomy, channel, [f"user{i:04}" for i in range(1100)], info=False)
    page = open_demo(contexts(), roomy, "zoe", channel, "Zoe")
    expect(page.locator("#member-count")).to_have_text("1101")  # not the 1000 listed
    expect(page.locator("#members li.member:not(.more)")).to_have_count(100)
    expect(page.locator("#members li.more")).to_have_text("and 1001 more")
    join_users(roomy, channel, ["user9999"], info=False)  # beyond the listed page: counted
    expect(page.locator("#member-count")).to_have_text("1102")
    expect(page.locator("#members li.more")).to_have_text("and 1002 more")


def test_own_join_once_and_members_greyed_while_offline(contexts, service, channel):
    context = contexts()
    alice = open_demo(context, service, "alice", channel, "Alice")
    bob = open_demo(contexts(), service, "bob", channel, "Bob")
    expect(alice.locator("#feed .feed-join").last).to_contain_text("Bob joined")
    expect(alice.locator("#feed .feed-join", has_text="Alice")).to_have_count(1)
    expect(bob.locator("#feed .feed-join", has_text="Bob")).to_have_count(1)

    context.set_offline(True)
    expect(alice.locator("#state")).to_contain_text("reconnecting")
    expect(alice.locator(".members-card")).to_have_class("card members-card stale")
    expect(alice.locator("#stale-note")).to_contain_text("may be out of date")
    context.set_offline(False)
    expect(alice.locator("#state")).to_have_text("online")
    expect(alice.locator(".members-card")).to_have_class("card members-card")
    expect(alice.locator("#stale-note")).to_be_hidden()


def test_events_are_handed_over_in_id_order_each_once(contexts, pages, service, channel):
    bob = open_client(contexts(), pages, service, "bob", channel)
    wait_members(bob, channel, ["bob"])

    def shuffled(route):
        query = parse_qs(urlparse(route.request.url).query)
        epoch, _, last = query["cursor"][0].rpartition(":")
        n = int(last)
        events = [
            {"id": n + i, "type": "message", "user": "bob", "info": {}, "ts": 1, "data": f"m{i}"}
            for i in (3, 1, 2, 0, 1)  # out of order, one already seen, one twice
        ]
        answer = {"cursor": f"{epoch}:{n + 3}", "events": events}
        route.fulfill(
            status=200,
            content_type="text/javascript; charset=UTF-8",
            body=jsonp_body(query["callback"][0], answer),
        )

    bob.route("**/poll?**", shuffled, times=1)
    bob.wait_for_function("window.t.events.filter(e => e.type === 'message').length >= 3")
    got = bob.evaluate("window.t.events.filter(e => e.type === 'message').map(e => e.data)")
    assert got == ["m1", "m2", "m3"]


def test_online_event_retries_at_once_not_after_the_backoff(contexts, pages, service, channel):
    context = contexts()
    bob = open_client(context, pages, service, "bob", channel, backoff=120_000)
    wait_state(bob, "online")
    context.set_offline(True)
    wait_state(bob, "retrying")
    bob.wait_for_function("window.t.details.some(d => d.delay >= 60000)")  # a long wait ahead
    states = bob.evaluate("window.t.states.length")
    context.set_offline(False)  # fires `online`: the client retries now
    bob.wait_for_function("n => window.t.states.slice(n).includes('online')", arg=states)
    assert bob.evaluate("c => client.state(c)", channel) == "online"


def test_visible_again_retries_at_once(contexts, pages, service, channel):
    bob = open_client(contexts(), pages, service, "bob", channel, backoff=120_000)
    wait_state(bob, "online")
    bob.route("**/poll?**", lambda route: route.abort())
    wait_state(bob, "retrying")
    states = bob.evaluate("window.t.states.length")
    bob.unroute("**/poll?**")
    bob.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # the page is visible
    bob.wait_for_function("n => window.t.states.slice(n).includes('online')", arg=states)


def test_demo_page_has_no_serious_accessibility_violations(contexts, service, channel):
    alice = open_demo(contexts(), service, "alice", channel, "Alice")
    open_demo(contexts(), service, "bob", channel, "Bob")
    expect(alice.locator("#members .member")).to_have_count(2)
    alice.fill("#message", "hello")
    alice.press("#message", "Enter")
    expect(alice.locator("#feed .feed-message")).to_have_count(1)
    assert axe_violations(alice) == []
    # axe's color-contrast rule covers the state words ("joined", ...) in the feed
    expect(alice.locator("#feed .verb").first).to_be_visible()
    expect(alice.locator("#message")).to_have_accessible_name("Message")
    expect(alice.locator("#state")).to_have_attribute("aria-live", "polite")
