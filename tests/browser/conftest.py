"""Fixtures for the real-browser tests: headless Debian chromium through Playwright, a
`presence serve` process with short timeouts, and a static server on another origin.

The browser and the servers live as long as this package's tests (and are gone before
other packages' asyncio tests run); each test isolates itself with its own channel names
and browser contexts. No fixture here touches pytest-tornado's io_loop: Playwright's sync
API runs its own loop.
"""

from __future__ import annotations

import functools
import http.server
import os
import shlex
import shutil
import subprocess
import sys
import threading
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from presence.testing import ROOT, free_port, redis_server, require_all, stop, wait_for_port
from tests.helpers import need_tool

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
TIMEOUT = (
    3  # --timeout: seconds of silence before a connection is offline (margin for loaded machines)
)
POLL_TIMEOUT = 1  # --poll-timeout: seconds a long-poll is held
ADMIN_TOKEN = "test-admin-token"
JQUERY_VERSIONS = ["3.7.1", "4.0.0"]
PAGES = Path(__file__).parent / "pages"
ARTIFACTS = ROOT / "tests" / "artifacts"


def serve_command(port: int) -> list[str]:
    """The `presence serve` command line for the tests (PRESENCE_TEST_SERVE overrides the program)."""
    program = os.environ.get("PRESENCE_TEST_SERVE")
    base = (
        shlex.split(program)
        if program
        else [
            sys.executable,
            "-c",
            "import sys; from presence.cli import main; sys.exit(main())",
            "serve",
        ]
    )
    return base + [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--timeout",
        str(TIMEOUT),
        "--poll-timeout",
        str(POLL_TIMEOUT),
        "--admin-token",
        ADMIN_TOKEN,
    ]


@pytest.fixture(scope="package")
def chromium_path():
    """/usr/bin/chromium (or chromium on PATH); skips without it, fails under REQUIRE_ALL=1."""
    if os.path.exists("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    return need_tool("chromium")


@pytest.fixture(scope="package")
def browser(chromium_path):
    """One headless Chromium for the session, never a downloaded one."""
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if require_all():
            pytest.fail("playwright is required (REQUIRE_ALL=1) but not installed")
        pytest.skip("playwright not installed")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextmanager
def presence_service(*extra: str, log_name: str = "presence-serve.log"):
    """Run `presence serve` on a free port with 3 s / 1 s timeouts; yield its base URL.

    The node uses its bundled store; with PRESENCE_TEST_STORE=redis, a throwaway redis-server.
    Its log goes to tests/artifacts/<log_name>.
    """
    with ExitStack() as stack:
        port = free_port()
        command = serve_command(port) + list(extra)
        if os.environ.get("PRESENCE_TEST_STORE") == "redis":
            redis_port = stack.enter_context(redis_server())
            command += ["--redis-url", f"redis://127.0.0.1:{redis_port}"]
        log = stack.enter_context(open(artifacts_dir() / log_name, "wb"))
        proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        stack.callback(stop, proc)
        wait_for_port(port, proc, timeout=30)
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="package")
def service():
    """Base URL of the session's `presence serve` node (admin token ADMIN_TOKEN, no --secret)."""
    with presence_service() as url:
        yield url


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="package")
def pages_root(tmp_path_factory):
    """The folder `pages` serves: a copy of tests/browser/pages/, where tests may add pages."""
    root = tmp_path_factory.mktemp("pages")
    shutil.copytree(PAGES, root, dirs_exist_ok=True)
    return root


@pytest.fixture(scope="package")
def pages(pages_root):
    """Base URL of a static server for tests/browser/pages/: a different origin than the service.

    (A page a test fulfils through page.route() would not do: Chromium then treats it as a
    public page and blocks its scripts from the loopback service.)
    """
    handler = functools.partial(_QuietHandler, directory=str(pages_root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def channel():
    """A channel name no other test uses."""
    return "t-" + uuid.uuid4().hex[:10]


@pytest.fixture
def contexts(browser):
    """new_context() for this test; closes every context it made, then fails on any uncaught
    JavaScript error in their pages."""
    made = []
    errors = []

    def new_context(**kwargs):
        kwargs.setdefault("viewport", {"width": 1000, "height": 700})
        context = browser.new_context(**kwargs)
        context.set_default_timeout(10_000)
        context.on(
            "page", lambda page: page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
        )
        made.append(context)
        return context

    yield new_context
    for context in made:
        try:
            context.close()
        except Exception:
            pass  # already closed by the test
    assert errors == [], "uncaught JavaScript errors"


def save_screenshot(page, name: str) -> Path:
    """Save a screenshot under tests/artifacts/ (the README's pictures come from bench/screenshots.py)."""
    path = artifacts_dir() / name
    page.screenshot(path=str(path))
    return path
