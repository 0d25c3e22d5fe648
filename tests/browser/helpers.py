"""Drive the cross-origin test page (pages/client.html) that runs presence.js and records what it saw."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from urllib.parse import urlencode, urlparse


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
    backoff: int | None = None,
):
    """Open the test page as `user`, joined to `channel`; returns the page once presence.js loaded."""
    query = {"service": service, "jquery": jquery, "user": user, "transport": transport}
    if channel:
        query["channel"] = channel
    if name:
        query["name"] = name
    if token:
        query["token"] = token
    if backoff:
        query["backoff"] = str(backoff)
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


AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_violations(page) -> list[dict]:
    """Serious and critical WCAG 2.1 A/AA violations that axe-core finds on the page now."""
    page.add_script_tag(content=AXE.read_text())
    found = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))",
        AXE_TAGS,
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def join_users(service: str, channel: str, users: list[str], info: bool = True) -> None:
    """Join each user to `channel` over plain HTTP (one keep-alive connection), one tab each."""
    host = urlparse(service).netloc
    connection = http.client.HTTPConnection(host, timeout=30)
    try:
        for user in users:
            query = {"user": user, "conn": "c-" + user.replace(".", "_").replace("@", "_")}
            if info:
                query["info"] = json.dumps({"name": user.capitalize()})
            connection.request("GET", f"/channels/{channel}/join?{urlencode(query)}")
            response = connection.getresponse()
            response.read()
            assert response.status == 200, (user, response.status)
    finally:
        connection.close()
