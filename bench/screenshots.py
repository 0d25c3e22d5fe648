"""Take the README's screenshots: demo page and dashboard, desktop and phone, 1,500-member channel.

Starts a `presence serve` node with its bundled store on a free port, joins 1,500 users to
#lobby over HTTP (plus a few smaller channels), opens the pages in headless Debian chromium
through Playwright, and saves PNGs into docs/screenshots/.

    .venv/bin/python bench/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from presence.testing import ROOT, free_port, stop, wait_for_port

sys.path.insert(0, str(ROOT))
from tests.browser.helpers import join_users

FIRST_NAMES = [
    "ada",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
]


def start_node(port: int) -> subprocess.Popen:
    """A node with its bundled store (PRESENCE_TEST_SERVE overrides the program, as in the tests)."""
    program = os.environ.get("PRESENCE_TEST_SERVE")
    command = (
        shlex.split(program)
        if program
        else [
            sys.executable,
            "-c",
            "import sys; from presence.cli import main; sys.exit(main())",
            "serve",
        ]
    )
    command += ["--host", "127.0.0.1", "--port", str(port), "--timeout", "600"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_for_port(port, proc, timeout=30)
    return proc


def populate(service: str) -> None:
    """#lobby with 1,500 users, a few smaller channels, and some chat and churn for the feed."""
    users = [f"{FIRST_NAMES[i % len(FIRST_NAMES)]}.{i:04}" for i in range(1500)]
    join_users(service, "lobby", users)
    for name, size in [("support", 12), ("sales", 7), ("engineering", 31), ("design", 4)]:
        join_users(service, name, users[:size])


def churn(service: str, round_: int) -> None:
    """Some chat and comings and goings in #lobby and #support, for the live feeds."""
    users = [f"{name}.{9000 + round_ * 10 + i}" for i, name in enumerate(FIRST_NAMES[:4])]
    join_users(service, "support", users[:2])
    join_users(service, "lobby", users[2:])
    lines = ["hello everyone", "is the deploy done?", "yes, 2 minutes ago"]
    for i, text in enumerate(lines):
        user = users[2 + i % 2]
        query = urlencode({"user": user, "conn": "c-" + user.replace(".", "_"), "data": text})
        urllib.request.urlopen(f"{service}/channels/lobby/send?{query}").close()
    query = urlencode({"user": users[0], "conn": "c-" + users[0].replace(".", "_")})
    urllib.request.urlopen(f"{service}/channels/support/leave?{query}").close()


def shoot(service: str, out: Path, chromium: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        for label, kwargs in [
            ("", {"viewport": {"width": 1400, "height": 900}}),
            (
                "-phone",
                {
                    "viewport": {"width": 390, "height": 844},
                    "is_mobile": True,
                    "has_touch": True,
                    "device_scale_factor": 2,
                },
            ),
        ]:
            context = browser.new_context(**kwargs)
            dash = context.new_page()
            dash.goto(f"{service}/dashboard")
            expect(dash.locator("#health")).to_have_text("ready")
            demo = context.new_page()
            demo.goto(
                f"{service}/?"
                + urlencode({"user": "you", "name": "You", "channel": "lobby", "join": "1"})
            )
            expect(demo.locator("#state")).to_have_text("online")
            expect(demo.locator("#members li.more")).to_have_count(1)
            churn(service, 1 if label else 0)
            expect(demo.locator("#feed .feed-message")).to_have_count(3)
            if label:
                demo.locator("#members-title").scroll_into_view_if_needed()
            demo.screenshot(path=str(out / f"demo{label}.png"))

            dash.bring_to_front()
            expect(dash.locator("#events .feed-message")).to_have_count(3)
            link = dash.locator('#channels tr[data-channel="lobby"] button.channel-link')
            if label:
                link.tap()
            else:
                link.click()
            expect(dash.locator("#members tr").first).to_be_visible()
            dash.wait_for_function("document.querySelectorAll('#nodes tr').length > 0")
            dash.screenshot(path=str(out / f"dashboard{label}.png"))
            context.close()
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument(
        "--settle",
        type=float,
        default=25.0,
        help="seconds to let the node write history points before the dashboard shot",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    node = start_node(port)
    try:
        service = f"http://127.0.0.1:{port}"
        populate(service)
        time.sleep(args.settle)  # history points are written every 10 s: let two or three exist
        shoot(service, args.out, args.chromium)
    finally:
        stop(node)
    print(f"screenshots written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
