"""Drive the cross-origin test page (pages/client.html) that runs presence.js and records what it saw."""

from __future__ import annotations

import json
from urllib.parse import urlencode


def open_client(
    context,
    pages: str,
    service: str,
    user: str,
    channel: str | None,
    jquery: str = "3.7.1",
    name: str | None = None,
    transport: str = "jsonp",
    token: str | None = None,
):
    """Open the test page as `user`, joined to `channel`; returns the page once presence.js loaded."""
    query = {"service": service, "jquery": jquery, "user": user, "transport": transport}
    if channel:
        query["channel"] = channel
    if name:
        query["name"] = name
    if token:
        query["token"] = token
    page = context.new_page()
    page.goto(f"{pages}/client.html?{urlencode(query)}")
    page.wait_for_function("window.t && (window.t.ready || window.t.loadError)")
    assert page.evaluate("window.t.loadError || null") is None
    return page


def wait_members(page, channel: str, users: list[str], timeout: float = 10_000) -> None:
    """Wait until the page's members list for `channel` is exactly `users`."""
    page.wait_for_function(
        "([c, u]) => JSON.stringify(window.t.members[c] || []) === JSON.stringify(u)",
        arg=[channel, sorted(users)],
        timeout=timeout,
    )


def wait_event(
    page, type_: str, user: str, timeout: float = 10_000, data: str | None = None
) -> dict:
    """Wait until the page has seen an event of `type_` about `user`; returns the first such event."""
    page.wait_for_function(
        "([t, u, d]) => window.t.events.some(e => e.type === t && e.user === u && (d === null || e.data === d))",
        arg=[type_, user, data],
        timeout=timeout,
    )
    return events(page, type_, user)[0]


def wait_state(page, state: str, timeout: float = 10_000) -> None:
    """Wait until the page's channel has reported connection state `state` (now or earlier)."""
    page.wait_for_function("s => window.t.states.includes(s)", arg=state, timeout=timeout)


def events(page, type_: str | None = None, user: str | None = None) -> list[dict]:
    """Events the page has seen, optionally only of one type and/or about one user."""
    seen = page.evaluate("window.t.events")
    return [
        e
        for e in seen
        if (type_ is None or e["type"] == type_) and (user is None or e["user"] == user)
    ]


def jsonp_body(callback: str, answer: dict) -> str:
    """A JSONP answer exactly as the service writes it."""
    return f"/**/ typeof {callback} === 'function' && {callback}({json.dumps(answer)});"
