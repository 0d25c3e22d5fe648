"""The bundled store under `presence serve`: restarted when it dies, reported in /readyz and
/metrics, given up on (exit 1) when it keeps dying, unreachable for other local users.

Every wait polls with a deadline; nothing is timed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest
import redis

from presence.runtime import proc_stat
from presence.service.embedded import RestartPolicy
from presence.service.outage import OutageLog
from presence.testing import ROOT, free_port

DEADLINE = 30.0


class Node:
    """`presence serve` (bundled store) with its output collected line by line."""

    def __init__(self, *flags: str) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "presence.cli", "serve", "--port", str(self.port),
               "--timeout", "2", "--poll-timeout", "1", "--node-id", "sv", *flags]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=lambda s=stream, ls=lines: ls.extend(s), daemon=True).start()
        banner = self.wait_for("the banner", lambda: "".join(self.out[:1]))
        self.socket_path = re.search(r"bundled store on unix socket (\S+)", banner).group(1)
        self.socket_path = self.socket_path.rstrip(")")

    def wait_for(self, what: str, check, timeout: float = DEADLINE, alive: bool = True):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            if alive and self.proc.poll() is not None:
                break
            time.sleep(0.02)
        pytest.fail(
            f"{what}: not seen (exit status {self.proc.poll()})\n"
            f"stdout: {''.join(self.out)}\nstderr: {''.join(self.err[-40:])}"
        )

    def get(self, path: str, **params) -> tuple[int, dict | str]:
        url = f"http://127.0.0.1:{self.port}{path}" + (f"?{urlencode(params)}" if params else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                status, body = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read().decode()
        return status, body if path == "/metrics" else json.loads(body)

    def store_pid(self) -> int | None:
        """The pid of the running bundled store (a child of the node), None while down."""
        for pid in children(self.proc.pid):
            if not zombie(pid) and b"presence.store" in cmdline(pid):
                return pid
        return None

    def metric(self, name: str) -> int:
        _, text = self.get("/metrics")
        assert isinstance(text, str)
        (line,) = [x for x in text.splitlines() if x.startswith(name + "{")]
        return int(line.rsplit(" ", 1)[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(c) for c in fh.read().split()]
    except OSError:
        return []


def zombie(pid: int) -> bool:
    return proc_stat(pid)[:1] == ["Z"]


def cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def send_raw(path_or_port: str | int, payload: bytes) -> bytes:
    """Send `payload` to the store (unix socket path or TCP port); its first reply line."""
    if isinstance(path_or_port, int):
        sock = socket.create_connection(("127.0.0.1", path_or_port), timeout=5)
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(5)
        sock.connect(path_or_port)
    with sock:
        sock.sendall(payload)
        return sock.recv(1000)


def store_password(socket_path: str, user: str = "default") -> str:
    """The password of `user` in the bundled store's users.acl."""
    with open(os.path.join(os.path.dirname(socket_path), "users.acl")) as fh:
        return re.search(rf"^user {user} on >(\S+)", fh.read(), re.M).group(1)


@pytest.fixture
def node():
    n = Node()
    yield n
    n.stop()


def test_a_killed_store_is_reaped_restarted_and_the_clients_carry_on(node):
    alice, bob = {"user": "alice", "conn": "a"}, {"user": "bob", "conn": "b"}
    _, joined = node.get("/channels/sv/join", **alice)
    node.get("/channels/sv/join", **bob)
    old = node.store_pid()
    assert old and node.metric("presence_store_restarts_total") == 0
    assert node.metric("presence_store_up") == 1

    os.kill(old, signal.SIGKILL)
    status, ready = node.get("/readyz")
    assert status == 503 and ready["ready"] is False  # not ready while the store is down
    node.wait_for("a new store", lambda: node.store_pid() not in (None, old))
    assert not zombie(old) and old not in children(node.proc.pid)  # reaped, no <defunct>
    node.wait_for("/readyz 200 again", lambda: node.get("/readyz")[0] == 200)
    _, ready = node.get("/readyz")
    assert ready["store_up"] is True and ready["store_restarts"] == 1
    assert node.metric("presence_store_restarts_total") == 1
    assert node.metric("presence_store_up") == 1
    assert any("was killed by SIGKILL" in line for line in node.err)

    # the store came back empty: the tabs are told to rejoin, and after that events flow
    _, answer = node.get("/channels/sv/poll", cursor=joined["cursor"], **alice)
    assert answer["rejoin"] is True and answer["reason"] == "unknown"
    _, again = node.get("/channels/sv/join", **alice)
    node.get("/channels/sv/join", **bob)
    _, answer = node.get("/channels/sv/poll", cursor=joined["cursor"], **alice)
    assert answer["reset"] is True  # a cursor of the lost log: resynchronise
    cursor = again["cursor"]
    node.get("/channels/sv/send", data="after", **bob)
    seen: list[dict] = []

    def alice_sees(kind: str):
        nonlocal cursor
        _, got = node.get("/channels/sv/poll", cursor=cursor, **alice)
        seen.extend(got.get("events", []))
        cursor = got["cursor"]
        return any(e["type"] == kind for e in seen)

    node.wait_for("bob's message after the restart", lambda: alice_sees("message"))
    # bob goes silent: his offline still comes (the new store announces expiries)
    node.wait_for("bob's offline after the restart", lambda: alice_sees("offline"))
    assert [(e["type"], e["user"]) for e in seen] == [
        ("join", "bob"),
        ("message", "bob"),
        ("offline", "bob"),
    ]


def test_a_store_shut_down_is_restarted_too(node):
    old = node.store_pid()
    password = store_password(node.socket_path)
    assert send_raw(node.socket_path, f"AUTH {password}\r\nSHUTDOWN NOSAVE\r\n".encode())
    node.wait_for("a new store", lambda: node.store_pid() not in (None, old))
    node.wait_for("restart counted", lambda: node.metric("presence_store_restarts_total") == 1)
    assert any("exited with status 0" in line for line in node.err)


def test_the_store_is_private_to_its_user():
    tcp = free_port()
    n = Node("--store-port", str(tcp))
    try:
        store = n.store_pid()
        directory = os.path.dirname(n.socket_path)
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700  # others cannot reach the socket
        for name in ("store.conf", "users.acl"):
            assert stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode) == 0o600
        password = store_password(n.socket_path)
        assert len(password) >= 32 and password.encode() not in cmdline(store)  # not in `ps`
        assert store_password(n.socket_path, "presence").encode() not in cmdline(store)
        # without the password nothing gets through, SHUTDOWN included
        assert send_raw(tcp, b"SHUTDOWN NOSAVE\r\n").startswith(b"-NOAUTH")
        assert send_raw(n.socket_path, b"SHUTDOWN NOSAVE\r\n").startswith(b"-NOAUTH")
        assert send_raw(tcp, b"AUTH guess\r\n").startswith(b"-WRONGPASS")
        assert n.store_pid() == store
        assert n.metric("presence_store_restarts_total") == 0
    finally:
        n.stop()
    assert not os.path.exists(directory)  # removed on stop


def test_the_node_is_a_restricted_user_of_its_store():
    """The node logs in as `presence` (NODE_ACL_RULES): serving works, nothing it was
    refused shows in ACL LOG, and what only an operator may do is refused (NOPERM)."""
    n = Node()
    try:
        status, _ = n.get("/channels/room/join", user="alice", conn="a")
        assert status == 200
        assert n.get("/channels/room/poll", user="alice", conn="a", cursor="0")[0] == 200
        assert n.get("/channels/room/send", user="alice", conn="a", data="hi")[0] == 200
        assert n.get("/api/channels/room")[0] == 200 and "presence_kept" in n.get("/metrics")[1]
        node_auth = f"AUTH presence {store_password(n.socket_path, 'presence')}\r\n".encode()
        assert send_raw(n.socket_path, node_auth) == b"+OK\r\n"
        admin = redis.Redis(unix_socket_path=n.socket_path, password=store_password(n.socket_path))
        with admin:
            assert admin.execute_command("ACL", "WHOAMI") == b"default"
            assert admin.acl_log() == []  # the service was refused nothing
            node = redis.Redis(
                unix_socket_path=n.socket_path,
                username="presence",
                password=store_password(n.socket_path, "presence"),
            )
            with node:
                assert node.ping()
                for command in (
                    ("FLUSHALL",),
                    ("CONFIG", "SET", "keys-expire-notify", ""),
                    ("SHUTDOWN", "NOSAVE"),
                    ("KEYS", "*"),
                    ("EVAL", "return 1", "0"),
                    ("ACL", "SETUSER", "presence", "+@all"),
                    ("DEBUG", "SLEEP", "0"),
                ):
                    with pytest.raises(redis.exceptions.NoPermissionError):
                        node.execute_command(*command)
                with pytest.raises(redis.exceptions.NoPermissionError):
                    node.get("other:key")  # outside presence:*
            assert admin.ping() and n.store_pid() is not None  # nothing was shut down
    finally:
        n.stop()


def test_a_store_that_keeps_dying_makes_the_node_exit_1():
    n = Node("--store-restarts", "1", "--store-restart-window", "60")
    try:
        first = n.store_pid()
        os.kill(first, signal.SIGKILL)
        n.wait_for("a new store", lambda: n.store_pid() not in (None, first))
        os.kill(n.store_pid(), signal.SIGKILL)
        assert n.proc.wait(DEADLINE) == 1
        n.wait_for("the stderr", lambda: any("giving up" in x for x in n.err), alive=False)
    finally:
        n.stop()


def test_workers_share_the_supervised_store():
    port = free_port()
    cmd = [sys.executable, "-m", "presence.cli", "serve", "--workers", "2", "--port", str(port),
           "--store-restarts", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert b"2 workers" in proc.stdout.readline()

        def store_pid():
            pids = [p for p in children(proc.pid) if b"presence.store" in cmdline(p)]
            return next((p for p in pids if not zombie(p)), None)

        def metric(name):
            url = f"http://127.0.0.1:{port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                text = response.read().decode()
            return int(next(x for x in text.splitlines() if x.startswith(name)).rsplit(" ")[1])

        first = store_pid()
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + DEADLINE
        while store_pid() in (None, first) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store_pid() not in (None, first) and not zombie(first)
        while metric("presence_store_restarts_total") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)  # back once it answers
        # each worker reads the parent's count (two fresh connections: either worker)
        assert [metric("presence_store_restarts_total") for _ in range(4)] == [1] * 4
        os.kill(store_pid(), signal.SIGKILL)  # a second death within the window: give up
        assert proc.wait(DEADLINE) == 1
        assert b"giving up" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_restart_policy_backs_off_then_gives_up():
    now = [0.0]
    policy = RestartPolicy(max_restarts=3, window=10, clock=lambda: now[0])
    assert [policy.next_delay() for _ in range(3)] == [0.1, 0.2, 0.4]
    assert policy.next_delay() is None  # the fourth death within 10 s
    now[0] = 100.0  # the deaths are old: a fresh start
    assert policy.next_delay() == 0.1


def test_an_outage_logs_one_line_then_a_summary_per_interval(caplog):
    now = [0.0]
    outage = OutageLog(logging.getLogger("t"), "store unavailable", 60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "t"):
        for _ in range(1000):  # a thousand failing requests in 10 s
            outage.failed("Connection refused")
            now[0] += 0.01
        now[0] = 61
        outage.failed("Connection refused")
        now[0] = 500  # quiet for longer than the interval: a new outage, logged in full
        outage.failed("Connection reset")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert lines[0].startswith("store unavailable: Connection refused")
    assert lines[1].startswith("store unavailable: 1000 more in the last 61s")
    assert lines[2].startswith("store unavailable: Connection reset")
