"""The demo page (/) and the ops dashboard (/dashboard) in headless Chromium: live members,
feed and chat, counts that follow changes within a second, kick, and HTML shown as text."""

from __future__ import annotations

import time
import urllib.request
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from presence.testing import ROOT
from tests.browser.conftest import ADMIN_TOKEN, save_screenshot
from tests.browser.helpers import open_client, wait_members, wait_state

pytestmark = pytest.mark.browser

# The dashboard shows a change within about a second (the event feed triggers a refresh, and
# counts are re-read every second); the tests allow 3 s so that a loaded CI machine passes.
UPDATE_WITHIN = 3000
HOSTILE_NAME = 'Alice <b>Liddell</b><img src=x onerror="window.pwned=1">'
HOSTILE_TEXT = "<script>window.pwned=2</script>Hello <i>everyone</i> & welcome"


def open_demo(context, service, user, channel, name=""):
    page = context.new_page()
    page.goto(
        f"{service}/?" + urlencode({"user": user, "name": name, "channel": channel, "join": "1"})
    )
    expect(page.locator("#state")).to_have_text("online")
    return page


def assert_not_injected(page):
    assert page.evaluate("window.pwned === undefined")
    assert page.locator("#members img, #feed img, #feed script, #members b, #feed i").count() == 0


def test_demo_page_members_feed_chat_with_html_shown_as_text(contexts, service):
    channel = "lobby"  # the only test on this channel; a readable name for the README screenshot
    alice = open_demo(contexts(), service, "alice", channel, HOSTILE_NAME)
    bob = open_demo(contexts(), service, "bob", channel, "Bob")
    for page in (alice, bob):
        expect(page.locator("#members .member")).to_have_count(2)
        expect(page.locator("#member-count")).to_have_text("2")
    expect(bob.locator('#members .member[data-user="alice"] .name')).to_have_text(HOSTILE_NAME)
    expect(alice.locator('#members .member[data-user="alice"] .badge')).to_have_text("you")
    expect(alice.locator("#feed .feed-join").last).to_contain_text("Bob joined")

    alice.fill("#message", HOSTILE_TEXT)
    alice.click("#send")
    expect(alice.locator("#message")).to_have_value("")
    bob.fill("#message", "Hi Alice! Welcome to #" + channel + ".")
    bob.press("#message", "Enter")
    for page in (alice, bob):
        message = page.locator("#feed .feed-message").first
        expect(message.locator(".author")).to_have_text(
            HOSTILE_NAME
        )  # display name from the members list
        expect(message.locator(".text")).to_have_text(HOSTILE_TEXT)
        expect(page.locator("#feed .feed-message")).to_have_count(2)
        assert_not_injected(page)
    save_screenshot(bob, "demo.png")

    phone = contexts(viewport={"width": 390, "height": 780}, is_mobile=True, has_touch=True)
    carol = open_demo(phone, service, "carol", channel, "Carol")
    expect(carol.locator("#members .member")).to_have_count(3)
    assert carol.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth"
    )  # no sideways scroll
    save_screenshot(carol, "demo-phone.png")

    bob.click("#leave")
    expect(alice.locator("#feed .feed-leave").last).to_contain_text("Bob left")
    expect(alice.locator("#members .member")).to_have_count(2)
    expect(bob.locator("#state")).to_have_text("not joined")

    kick = urllib.request.Request(
        f"{service}/api/channels/{channel}/members/carol",
        method="DELETE",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    urllib.request.urlopen(kick).close()
    expect(carol.locator("#state")).to_have_text("kicked")
    expect(carol.locator("#join")).to_be_enabled()
    expect(alice.locator("#feed .feed-kicked").last).to_contain_text("Carol was kicked")
    expect(alice.locator("#members .member")).to_have_count(1)


def test_dashboard_counts_members_feed_health_and_kick(contexts, pages, service):
    channel = "support"  # the only test on this channel
    dashboard = contexts(viewport={"width": 1280, "height": 900}).new_page()
    dashboard.goto(f"{service}/dashboard")
    expect(dashboard.locator("#health")).to_have_text("ready")
    expect(dashboard.locator("#health-list")).to_contain_text("subscribed")
    # With --admin-token the data needs the token too: the page asks for it.
    expect(dashboard.locator("#updated")).to_have_text("enter the admin token to see the data")
    dashboard.fill("#token", ADMIN_TOKEN)

    alice_context = contexts()
    alice1 = open_client(alice_context, pages, service, "alice", channel, name="Alice <b>A</b>")
    alice2 = open_client(alice_context, pages, service, "alice", channel, name="Alice <b>A</b>")
    bob = open_client(contexts(), pages, service, "bob", channel, name="Bob")
    wait_members(bob, channel, ["alice", "bob"])
    row = dashboard.locator(f'#channels tr[data-channel="{channel}"]')
    expect(row.locator(".users")).to_have_text("2", timeout=UPDATE_WITHIN)
    expect(row.locator(".connections")).to_have_text("3", timeout=UPDATE_WITHIN)

    row.click()
    members = dashboard.locator("#members tr.member-row")
    expect(members).to_have_count(2)
    alice_row = dashboard.locator('#members tr[data-user="alice"]')
    expect(alice_row.locator(".display-name")).to_have_text("Alice <b>A</b>")
    expect(alice_row.locator(".connections")).to_have_text("2")
    expect(alice_row.locator(".since")).to_contain_text("ago")
    expect(dashboard.locator("#events")).to_contain_text(f"#{channel} Bob (bob) joined")
    assert dashboard.locator("#members b, #events b").count() == 0

    alice2.close()  # one of alice's tabs: a connection less, still two users
    expect(row.locator(".connections")).to_have_text("2", timeout=UPDATE_WITHIN)
    expect(row.locator(".users")).to_have_text("2")

    kick_bob = dashboard.locator('#members button.kick[data-user="bob"]')
    dashboard.fill("#token", "not-the-token")
    kick_bob.click()  # a wrong token: refused
    expect(dashboard.locator("#action-error")).to_contain_text("admin token was refused")
    dashboard.fill("#token", ADMIN_TOKEN)
    kick_bob.click()
    wait_state(bob, "kicked")
    expect(dashboard.locator('#members tr[data-user="bob"]')).to_have_count(
        0, timeout=UPDATE_WITHIN
    )
    expect(row.locator(".users")).to_have_text("1", timeout=UPDATE_WITHIN)
    expect(dashboard.locator("#events li").first).to_contain_text("Bob (bob) was kicked")
    expect(dashboard.locator("#stat-rate")).not_to_have_text("0")
    time.sleep(2.5)  # let the chart gather a few samples for the screenshot
    save_screenshot(dashboard, "dashboard.png")
    alice1.close()
    expect(
        dashboard.locator(f'#channels tr[data-channel="{channel}"] .users:not(:text-is("0"))')
    ).to_have_count(0)


def test_demo_and_dashboard_run_on_jquery_4(contexts, service, channel):
    jquery4 = (ROOT / "static" / "vendor" / "jquery-4.0.0.min.js").read_text()

    def jquery4_context(**kwargs):
        context = contexts(**kwargs)
        context.route(
            "**/static/vendor/jquery-3.7.1.min.js",
            lambda route: route.fulfill(body=jquery4, content_type="text/javascript"),
        )
        return context

    alice = open_demo(jquery4_context(), service, "alice", channel, "Alice")
    bob = open_demo(jquery4_context(), service, "bob", channel, "Bob")
    assert alice.evaluate("jQuery.fn.jquery") == "4.0.0"
    bob.fill("#message", "on jQuery 4")
    bob.click("#send")
    expect(alice.locator("#feed .feed-message .text")).to_have_text("on jQuery 4")
    expect(alice.locator("#members .member")).to_have_count(2)

    dashboard = jquery4_context(viewport={"width": 1280, "height": 900}).new_page()
    dashboard.goto(f"{service}/dashboard")
    assert dashboard.evaluate("jQuery.fn.jquery") == "4.0.0"
    expect(dashboard.locator(f'#channels tr[data-channel="{channel}"] .users')).to_have_text("2")
    expect(dashboard.locator("#events")).to_contain_text("on jQuery 4")
    expect(dashboard.locator("#health")).to_have_text("ready")
