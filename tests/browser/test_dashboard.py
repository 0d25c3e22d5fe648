"""The dashboard for thousands, in headless Chromium: in-place updates that keep focus and
selection, prefix search and paging, kick with a confirmation dialog, the stale/down state,
the phone layout, nodes, distinct users, charts from the server's history, and axe-core."""

from __future__ import annotations

import json
import re
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN_TOKEN, presence_service
from tests.browser.helpers import axe_violations, join_users, open_client, wait_state

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def roomy():
    """A node whose users stay for 10 minutes without polling: users joined over HTTP."""
    with presence_service("--timeout", "600", log_name="presence-serve-roomy.log") as url:
        yield url


def _admin_request(url: str) -> urllib.request.Request:
    """A GET of an operator read, with the admin token the test service requires."""
    return urllib.request.Request(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


def open_dashboard(contexts, service, query="", token=ADMIN_TOKEN, **kwargs):
    """The dashboard, with the admin token already in the tab (as an operator who typed it
    in earlier has it): with --admin-token the page reads nothing without one."""
    kwargs.setdefault("viewport", {"width": 1400, "height": 900})
    page = contexts(**kwargs).new_page()
    page.add_init_script(f"sessionStorage.setItem('presence.adminToken', {json.dumps(token)})")
    page.goto(f"{service}/dashboard{query}")
    expect(page.locator("#health")).to_have_text("ready")
    return page


def show_channel(page, channel):
    """Search for `channel` and open it with the keyboard (Enter on its row's button)."""
    page.fill("#channel-search", channel)
    link = page.locator(f'#channels tr[data-channel="{channel}"] button.channel-link')
    expect(page.locator("#channels tr")).to_have_count(1)
    link.focus()
    page.keyboard.press("Enter")
    expect(link).to_have_attribute("aria-pressed", "true")
    return link


def test_updates_keep_focus_and_selection(contexts, pages, service, channel):
    alice = open_client(contexts(), pages, service, "alice", channel)
    page = open_dashboard(contexts, service)
    show_channel(page, channel)
    alice_row = page.locator('#members tr[data-user="alice"]')
    expect(alice_row).to_have_count(1)
    page.evaluate(
        """() => {
            const cell = document.querySelector('#members tr[data-user="alice"] .user-id');
            const range = document.createRange();
            range.selectNodeContents(cell);
            getSelection().removeAllRanges();
            getSelection().addRange(range);
            document.querySelector('#members tr[data-user="alice"] button.kick').focus();
        }"""
    )
    open_client(contexts(), pages, service, "bob", channel)
    open_client(alice.context, pages, service, "alice", channel)  # a second tab of alice
    expect(page.locator('#members tr[data-user="bob"]')).to_have_count(1)
    expect(alice_row.locator(".connections")).to_have_text("2")  # alice's row was updated
    expect(page.locator(f'#channels tr[data-channel="{channel}"] .users')).to_have_text("2")
    assert page.evaluate("document.activeElement.getAttribute('data-user')") == "alice"
    assert page.evaluate("getSelection().toString()") == "alice"


def test_search_and_paging_of_channels_and_members(contexts, roomy):
    """Needs the `prefix` parameter of /api/channels and /api/channels/<c> (helper uxback)."""
    prefix = "pg" + uuid.uuid4().hex[:8]
    names = [f"{prefix}-{c}" for c in "abcde"]
    for name in names:
        join_users(roomy, name, ["solo"])
    join_users(roomy, names[0], [f"u-{c}" for c in "abcd"])
    page = open_dashboard(contexts, roomy, "?limit=2")

    page.fill("#channel-search", prefix)
    expect(page.locator("#channels")).to_have_attribute("data-prefix", prefix)  # search applied
    expect(page.locator("#channels tr").first).to_have_attribute("data-channel", names[0])
    expect(page.locator("#channels tr")).to_have_count(2)
    expect(page.locator("#channels tr").nth(1)).to_have_attribute("data-channel", names[1])
    page.click("#channels-next")
    expect(page.locator("#channels-page")).to_have_text("page 2")
    expect(page.locator("#channels tr").first).to_have_attribute("data-channel", names[2])
    expect(page.locator("#channels tr").nth(1)).to_have_attribute("data-channel", names[3])
    expect(page.locator("#channels tr")).to_have_count(2)
    page.click("#channels-next")
    expect(page.locator("#channels-page")).to_have_text("page 3")
    expect(page.locator("#channels tr").first).to_have_attribute("data-channel", names[4])
    expect(page.locator("#channels tr")).to_have_count(1)
    expect(page.locator("#channels-next")).to_be_disabled()
    page.click("#channels-first")
    expect(page.locator(f'#channels tr[data-channel="{names[0]}"]')).to_have_count(1)

    page.locator(f'#channels tr[data-channel="{names[0]}"] button.channel-link').click()
    expect(page.locator("#members tr")).to_have_count(2)
    for user in ("solo", "u-a"):  # the first page of 2, by user id
        expect(page.locator(f'#members tr[data-user="{user}"]')).to_have_count(1)
    expect(page.locator("#members-more")).to_contain_text("Showing 2 of 5 members")
    page.click("#members-next")
    expect(page.locator('#members tr[data-user="u-b"]')).to_have_count(1)
    page.fill("#member-search", "u-c")
    expect(page.locator("#members tr")).to_have_count(1)
    expect(page.locator('#members tr[data-user="u-c"]')).to_have_count(1)


def test_kick_asks_first_and_the_feed_says_who_was_kicked(contexts, pages, service, channel):
    bob = open_client(contexts(), pages, service, "bob", channel, name="Bob")
    page = open_dashboard(contexts, service)
    show_channel(page, channel)
    kick = page.locator('#members button.kick[data-user="bob"]')
    expect(kick).to_have_accessible_name("Kick bob")
    kick.click()
    dialog = page.locator("#kick-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("h2")).to_have_text(f"Kick bob from #{channel}?")
    page.keyboard.press("Escape")  # the same as Cancel
    expect(dialog).to_be_hidden()
    expect(kick).to_be_focused()
    expect(page.locator('#members tr[data-user="bob"]')).to_have_count(1)

    page.fill("#token", ADMIN_TOKEN)
    kick.click()
    page.click("#kick-confirm")
    wait_state(bob, "kicked")
    expect(page.locator('#members tr[data-user="bob"]')).to_have_count(0)
    kicked = page.locator("#events li.feed-kicked").first
    expect(kicked).to_contain_text(f"#{channel} Bob (bob) was kicked")


def test_stale_state_when_the_node_does_not_answer(contexts, service):
    page = open_dashboard(contexts, service)
    expect(page.locator("#stat-users")).to_have_text(re.compile(r"^\d+$"))
    page.route("**/readyz*", lambda route: route.abort())
    page.route("**/api/**", lambda route: route.abort())
    expect(page.locator("#health")).to_contain_text("stale since")
    expect(page.locator("body")).to_have_class("dashboard stale")
    assert page.locator(".stats .value").first.evaluate("e => getComputedStyle(e).opacity") != "1"
    page.unroute("**/readyz*")
    page.unroute("**/api/**")
    expect(page.locator("#health")).to_have_text("ready", timeout=15_000)
    expect(page.locator("body")).to_have_class("dashboard")


def test_phone_shows_members_after_tapping_a_channel(contexts, pages, service, channel):
    open_client(contexts(), pages, service, "alice", channel, name="Alice")
    page = open_dashboard(
        contexts, service, viewport={"width": 390, "height": 780}, is_mobile=True, has_touch=True
    )
    page.fill("#channel-search", channel)
    link = page.locator(f'#channels tr[data-channel="{channel}"] button.channel-link')
    link.tap()
    expect(page.locator('#members tr[data-user="alice"]')).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_nodes_distinct_users_and_history(contexts, pages, service, channel):
    """Needs /api/stats, /api/nodes and /api/history (helper uxback)."""
    other = channel + "-2"
    client = open_client(contexts(), pages, service, "dora", channel)
    client.evaluate("c => client.join(c)", other)  # one user in two channels counts once
    stats = json.load(urllib.request.urlopen(_admin_request(f"{service}/api/stats")))
    page = open_dashboard(contexts, service)
    expect(page.locator("#nodes tr")).not_to_have_count(0)
    nodes = json.load(urllib.request.urlopen(_admin_request(f"{service}/api/nodes")))["nodes"]
    expect(page.locator(f'#nodes tr[data-node="{nodes[0]["id"]}"] .address')).to_have_text(
        nodes[0]["address"]
    )
    assert stats["users"] >= 1
    expect(page.locator("#stat-users")).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator("#chart-rate canvas")).to_have_count(1)
    expect(page.locator("#chart-lag canvas")).to_have_count(1)
    # History comes from the server: a reload shows the same points at once.
    expect(page.locator("#history-span")).to_contain_text("last 60 minutes", timeout=30_000)
    page.reload()
    expect(page.locator("#history-span")).to_contain_text("last 60 minutes")


def test_dashboard_has_no_serious_accessibility_violations(contexts, pages, service, channel):
    open_client(contexts(), pages, service, "alice", channel, name="Alice")
    page = open_dashboard(contexts, service)
    show_channel(page, channel)
    expect(page.locator('#members tr[data-user="alice"]')).to_have_count(1)
    assert axe_violations(page) == []
    page.locator('#members button.kick[data-user="alice"]').click()
    expect(page.locator("#kick-dialog")).to_be_visible()
    assert axe_violations(page) == []
