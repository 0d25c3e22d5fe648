"""`presence serve` as a process: start, join, poll, offline, SIGTERM with a held poll."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from urllib.parse import urlencode

import pytest

from presence.testing import ROOT, free_port, stop, wait_for_port


def call(port, path, **params):
    url = f"http://127.0.0.1:{port}{path}?{urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def serve(*flags):
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "presence.cli",
            "serve",
            "--port",
            str(port),
            "--timeout",
            "1.5",
            "--poll-timeout",
            "1",
            "--node-id",
            "t1",
            *flags,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_port(port, proc)
    return proc, port


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture(params=["bundled", "redis"])
def node(request):
    flags = []
    if request.param == "redis":
        flags = ["--redis-url", f"redis://127.0.0.1:{request.getfixturevalue('redis_port')}/0"]
    proc, port = serve(*flags)
    yield proc, port
    stop(proc)


def test_serve_join_poll_offline_and_sigterm(node):
    proc, port = node
    banner = proc.stdout.readline() + proc.stdout.readline() + proc.stdout.readline()
    assert f"http://127.0.0.1:{port}/dashboard" in banner
    store = re.search(r"bundled store on unix socket (\S+)\)", banner)
    alice = {"user": "alice", "conn": "a"}
    cursor = call(port, "/channels/serve-test/join", **alice)["cursor"]
    call(port, "/channels/serve-test/join", user="bob", conn="b")
    seen, deadline = [], time.monotonic() + 10
    while not any(e["type"] == "offline" for e in seen) and time.monotonic() < deadline:
        answer = call(port, "/channels/serve-test/poll", cursor=cursor, **alice)
        seen += answer["events"]
        cursor = answer["cursor"]
    assert [(e["type"], e["user"]) for e in seen] == [("join", "bob"), ("offline", "bob")]

    held = {}
    poller = threading.Thread(
        target=lambda: held.update(call(port, "/channels/serve-test/poll", cursor=cursor, **alice))
    )
    poller.start()
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    poller.join(10)
    assert held == {"cursor": cursor, "events": [], "reconnect": True}
    assert proc.wait(10) == 0
    if store:  # the bundled store went with it, and its private directory
        assert not os.path.exists(os.path.dirname(store.group(1)))


def test_serve_reports_an_unreachable_store():
    port = free_port()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "presence.cli",
            "serve",
            "--port",
            str(free_port()),
            "--redis-url",
            f"redis://127.0.0.1:{port}/0",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert f"cannot reach the store at redis://127.0.0.1:{port}/0" in proc.stderr


def test_serve_flags_come_from_the_environment(monkeypatch):
    from presence.cli import serve_parser

    monkeypatch.setenv("PRESENCE_POLL_TIMEOUT", "7")
    monkeypatch.setenv("PRESENCE_REDIS_URL", "redis://example:1/0")
    args = serve_parser().parse_args(["--port", "9"])
    assert (args.poll_timeout, args.redis_url, args.port) == (7.0, "redis://example:1/0", 9)


def test_bench_dispatches_lazily_to_presence_bench(monkeypatch):
    import types

    from presence import cli

    calls = []
    fake = types.SimpleNamespace(main=lambda argv: calls.append(argv) or 0)
    monkeypatch.setitem(sys.modules, "presence.bench", fake)
    assert cli.main(["bench", "--users", "5"]) == 0
    assert calls == [["--users", "5"]]


def test_serve_reports_a_bundled_store_that_cannot_start():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        store_port = taken.getsockname()[1]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "presence.cli",
                "serve",
                "--port",
                str(free_port()),
                "--store-port",
                str(store_port),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert "cannot start the bundled store" in proc.stderr
    assert f"port {store_port}" in proc.stderr


def test_the_banner_never_prints_the_store_password():
    from presence.node import without_password

    assert without_password("redis://:s3cret@10.0.0.5:6379/0") == "redis://:***@10.0.0.5:6379/0"
    assert without_password("rediss://app:s3cret@h:1/0") == "rediss://app:***@h:1/0"
    assert without_password("redis://h:1/0") == "redis://h:1/0"


def test_serve_data_dir_keeps_members_across_a_store_restart(tmp_path):
    """--data-dir: the bundled store keeps its AOF there; a new node (and store) sees alice."""
    flags = ("--timeout", "60", "--poll-timeout", "20", "--data-dir", str(tmp_path / "data"))
    proc, port = serve(*flags)
    try:
        call(port, "/channels/kept/join", user="alice", conn="a")
    finally:
        stop(proc)
    assert (tmp_path / "data" / "appendonlydir" / "appendonly.aof.manifest").exists()
    proc, port = serve(*flags)
    try:
        members = call(port, "/channels/kept/join", user="bob", conn="b")["members"]
    finally:
        stop(proc)
    assert sorted(m["user"] for m in members) == ["alice", "bob"]


def test_serve_without_data_dir_forgets_members(tmp_path):
    """The control for the test above: without --data-dir a new store starts empty."""
    flags = ("--timeout", "60", "--poll-timeout", "20")
    proc, port = serve(*flags)
    try:
        call(port, "/channels/kept/join", user="alice", conn="a")
    finally:
        stop(proc)
    proc, port = serve(*flags)
    try:
        members = call(port, "/channels/kept/join", user="bob", conn="b")["members"]
    finally:
        stop(proc)
    assert [m["user"] for m in members] == ["bob"]


def test_serve_refuses_data_dir_with_a_redis_url(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "presence.cli", "serve", "--redis-url", "redis://127.0.0.1:1/0",
         "--data-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--data-dir" in result.stderr and "--redis-url" in result.stderr


def test_serve_reports_a_port_in_use_in_one_line_with_status_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "presence.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"presence: cannot listen on 127.0.0.1:{port}: address already in use "
        "(another process uses it: stop it or choose --port)"
    ]


def test_only_an_asked_for_connection_cap_warns_when_the_file_limit_lowers_it(caplog, monkeypatch):
    """The default cap means "as many as fit": lowering it to the open-file limit is
    logged at info; a cap the operator set and cannot have is a warning."""
    import logging

    from presence import cli, node

    monkeypatch.setattr(node, "raise_fd_limit", lambda wanted: 1000)
    caplog.set_level(logging.INFO, logger="presence")
    args = cli.serve_parser().parse_args([])
    assert node.network_limits(args).max_connections < 1000
    assert [r.levelname for r in caplog.records if "--max-connections" in r.message] == ["INFO"]
    caplog.clear()
    args = cli.serve_parser().parse_args(["--max-connections", "5000"])
    assert node.network_limits(args).max_connections < 1000
    assert [r.levelname for r in caplog.records if "--max-connections" in r.message] == ["WARNING"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PRESENCE_ALLOCATOR", "bogus"),
        ("PRESENCE_HTTP_ENGINE", "nginx"),
        ("PRESENCE_OFFLINE_TIMERS", "maybe"),
    ],
)
def test_a_bad_choice_in_the_environment_stops_start_up_naming_the_variable(
    variable, value, monkeypatch, capsys
):
    """argparse checks choices on the command line only; the environment's are checked too."""
    from presence.cli import serve_parser

    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exc:
        serve_parser().parse_args([])
    assert exc.value.code == 2
    assert f"{variable}: invalid choice: {value!r}" in capsys.readouterr().err
