"""`presence serve --workers 2`: two node processes on one port, supervised by a parent.

Every wait polls with a deadline; nothing is timed.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from presence.runtime import proc_stat, start_time
from presence.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 30.0


def command(*flags: str) -> list[str]:
    return [sys.executable, "-m", "presence.cli", "serve", *flags]


class Served:
    """`presence serve --workers 2 ...` with its stdout and stderr lines collected."""

    def __init__(self, *flags: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            command("--workers", "2", "--port", str(self.port), "--node-id", "w", *flags),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=lambda s=stream, ls=lines: ls.extend(s), daemon=True).start()

    def wait_for(self, what: str, check, timeout: float = DEADLINE, alive: bool = True):
        """Poll `check()` until it returns something true; fail on the deadline."""
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

    def pids(self, name: str) -> list[int]:
        """Pids of worker `name`, in the order the parent reported them serving."""
        pattern = re.compile(rf"worker {re.escape(name)} \(pid (\d+)\) serving")
        return [int(m.group(1)) for line in list(self.err) if (m := pattern.search(line))]

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def connection_to(self, node: str) -> http.client.HTTPConnection:
        """A fresh keep-alive connection that worker `node` accepted."""

        def attempt():
            conn = self.connect()
            if get(conn, "/healthz")["node"] == node:
                return conn
            conn.close()
            return None

        return self.wait_for(f"a connection accepted by {node}", attempt)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def get(conn: http.client.HTTPConnection, path: str, /, **params) -> dict:
    conn.request("GET", f"{path}?{urlencode(params)}" if params else path)
    return json.loads(conn.getresponse().read())


def descendants(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = {int(c) for c in fh.read().split()}
    except OSError:
        return set()
    return children.union(*(descendants(c) for c in children))


def gone(pid: int) -> bool:
    return proc_stat(pid)[:1] in ([], ["Z"])  # reaped, or exited and not yet reaped


def pending_polls(conn: http.client.HTTPConnection) -> int:
    conn.request("GET", "/metrics")
    for line in conn.getresponse().read().decode().splitlines():
        if line.startswith("presence_pending_polls"):
            return int(line.rsplit(" ", 1)[1])
    return 0


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def served():
    node = Served("--timeout", "20", "--poll-timeout", "15")
    yield node
    node.stop()


def test_two_workers_share_the_port_and_the_store_restart_and_stop(served):
    banner = served.wait_for("the announcement", lambda: "".join(served.out[:4]))
    assert "presence node w (2 workers: w-0, w-1) listening on" in banner
    store_socket = re.search(r"bundled store on unix socket (\S+)\)", banner).group(1)

    # both workers accept connections on the one port
    seen: set[str] = set()

    def both_answered():
        conn = served.connect()
        seen.add(get(conn, "/healthz")["node"])
        conn.close()
        return seen == {"w-0", "w-1"}

    served.wait_for("/healthz of w-0 and w-1 over fresh connections", both_answered)

    # a join on one worker and a poll on the other see the same events (one store)
    on0, on1 = served.connection_to("w-0"), served.connection_to("w-1")
    alice = {"user": "alice", "conn": "a"}
    bob = {"user": "bob", "conn": "b"}
    alice_cursor = get(on0, "/channels/workers/join", **alice)["cursor"]
    bob_cursor = get(on1, "/channels/workers/join", **bob)["cursor"]
    assert get(on0, "/channels/workers/send", data="hi", **bob)["ok"]
    events: list[dict] = []

    def alice_saw_both():
        nonlocal alice_cursor
        answer = get(on1, "/channels/workers/poll", cursor=alice_cursor, **alice)
        events.extend(answer["events"])
        alice_cursor = answer["cursor"]
        return len(events) >= 2

    served.wait_for("alice's events through w-1", alice_saw_both)
    assert [(e["type"], e["user"]) for e in events] == [("join", "bob"), ("message", "bob")]
    answer = get(on0, "/channels/workers/poll", cursor=bob_cursor, **bob)  # the other way round
    assert [(e["type"], e["user"], e.get("data")) for e in answer["events"]] == [
        ("message", "bob", "hi")
    ]
    bob_cursor = answer["cursor"]

    # SIGKILL of a worker: the parent starts a new process under the same name
    (killed,) = served.pids("w-1")
    os.kill(killed, signal.SIGKILL)
    served.wait_for("w-1 restarted", lambda: len(served.pids("w-1")) == 2)
    assert served.pids("w-1")[1] != killed
    served.wait_for("the killed worker reaped", lambda: gone(killed))
    on1 = served.connection_to("w-1")  # the new process answers
    (now_serving,) = served.pids("w-1")[1:]
    assert now_serving in descendants(served.proc.pid)
    assert any("was killed by SIGKILL" in line for line in served.err)

    # SIGTERM to the parent: each worker answers its held poll with reconnect, then every
    # process (parent, workers, bundled store) is gone and the exit status is 0
    on0 = served.connection_to("w-0")
    watch0, watch1 = served.connection_to("w-0"), served.connection_to("w-1")
    processes = descendants(served.proc.pid)
    assert len(processes) >= 3  # two workers and the store
    on0.request("GET", f"/channels/workers/poll?{urlencode(dict(cursor=alice_cursor, **alice))}")
    on1.request("GET", f"/channels/workers/poll?{urlencode(dict(cursor=bob_cursor, **bob))}")
    served.wait_for(
        "a poll held by each worker",
        lambda: pending_polls(watch0) >= 1 and pending_polls(watch1) >= 1,
    )
    served.proc.send_signal(signal.SIGTERM)
    held0 = json.loads(on0.getresponse().read())
    held1 = json.loads(on1.getresponse().read())
    assert held0 == {"cursor": alice_cursor, "events": [], "reconnect": True}
    assert held1 == {"cursor": bob_cursor, "events": [], "reconnect": True}
    assert served.proc.wait(DEADLINE) == 0
    served.wait_for("workers and store gone", lambda: all(gone(p) for p in processes), alive=False)
    assert not os.path.exists(os.path.dirname(store_socket))  # its private directory too
    assert not listening(served.port)


def test_a_worker_quiet_after_a_peak_is_replaced_by_a_fresh_process():
    """--recycle-after-peak 10: each worker holds 12 polls at a sweep (every 2 s with
    --timeout 4), then none; each is replaced, one at a time, by a fresh process that
    serves before the old one drains, and a tab polling throughout sees no error and
    never goes offline."""
    served = Served("--timeout", "4", "--poll-timeout", "3", "--recycle-after-peak", "10")
    try:
        served.wait_for("the announcement", lambda: "".join(served.out[:4]))
        (first0,), (first1,) = served.pids("w-0"), served.pids("w-1")
        old_started = {pid: start_time(pid) for pid in (first0, first1)}

        # a tab that polls through fresh connections from start to end
        watcher = {"user": "watcher", "conn": "w"}
        conn = served.connect()
        cursor = get(conn, "/channels/recycled/join", **watcher)["cursor"]
        conn.close()
        seen: list[dict] = []
        statuses: list[int] = []
        stop = threading.Event()

        def keep_polling():
            nonlocal cursor
            while not stop.is_set():
                conn = served.connect()
                query = urlencode(dict(cursor=cursor, **watcher))
                conn.request("GET", f"/channels/recycled/poll?{query}")
                answer = conn.getresponse()
                statuses.append(answer.status)
                body = json.loads(answer.read())
                seen.extend(body["events"])
                cursor = body["cursor"]
                conn.close()

        poller = threading.Thread(target=keep_polling, daemon=True)
        poller.start()

        # the peak: 12 polls held by each worker, each tab in a channel of its own (no
        # event answers them), for the poll timeout (3 s): a sweep sees them
        held = []
        for node in ("w-0", "w-1"):
            for i in range(12):
                conn = served.connection_to(node)
                tab = {"user": f"{node}-{i}", "conn": "c"}
                tab_cursor = get(conn, f"/channels/{node}-{i}/join", **tab)["cursor"]
                query = urlencode(dict(cursor=tab_cursor, **tab))
                conn.request("GET", f"/channels/{node}-{i}/poll?{query}")
                held.append(conn)
        for conn in held:
            assert json.loads(conn.getresponse().read())["events"] == []
            conn.close()

        # quiet now: each worker is replaced once
        served.wait_for(
            "both workers replaced",
            lambda: len(served.pids("w-0")) == 2 and len(served.pids("w-1")) == 2,
        )
        served.wait_for("the old ones gone", lambda: gone(first0) and gone(first1))
        (fresh0,), (fresh1,) = served.pids("w-0")[1:], served.pids("w-1")[1:]
        assert {fresh0, fresh1} <= descendants(served.proc.pid)
        log = "".join(served.err)
        for old, new in ((first0, fresh0), (first1, fresh1)):
            assert re.search(rf"pid {old} \(RSS [\d.]+ MiB\) replaced by pid {new} ", log)
            assert f"(pid {old}), replaced, exited (0)" in log
        assert "restarting it" not in log  # a replacement, not a death
        # the new processes serve and hold the watcher's polls
        for node, old in (("w-0", first0), ("w-1", first1)):
            conn = served.wait_for(
                f"the fresh {node} answers", lambda n=node: served.connection_to(n)
            )
            # its /metrics says it is a new process: Prometheus sees the replacement
            conn.request("GET", "/metrics")
            started = re.search(
                rf'process_start_time_seconds{{node="{node}"}} ([\d.]+)',
                conn.getresponse().read().decode(),
            )
            assert started and float(started[1]) > old_started[old]
            conn.close()
        stop.set()
        poller.join(DEADLINE)
        assert statuses and set(statuses) == {200}
        assert not [e for e in seen if e.get("user") == "watcher"]  # no offline, no leave
        assert served.pids("w-0")[1:] == [fresh0] and served.pids("w-1")[1:] == [fresh1]
    finally:
        served.stop()


def test_workers_that_keep_dying_make_the_parent_give_up():
    served = Served()
    try:
        served.wait_for("the announcement", lambda: served.out)
        for n in range(1, 6):  # the fifth quick death in a row is the last
            pid = served.wait_for(f"w-0 start {n}", lambda n=n: served.pids("w-0")[n - 1 : n])[0]
            os.kill(pid, signal.SIGKILL)
        processes = descendants(served.proc.pid)
        assert served.proc.wait(DEADLINE) == 1
        assert any("giving up" in line for line in served.err)
        served.wait_for(
            "workers and store gone", lambda: all(gone(p) for p in processes), alive=False
        )
    finally:
        served.stop()


def test_workers_report_an_unreachable_store_once():
    port = free_port()
    proc = subprocess.run(
        command(
            "--workers",
            "2",
            "--port",
            str(free_port()),
            "--redis-url",
            f"redis://127.0.0.1:{port}/0",
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    said = [line for line in proc.stderr.splitlines() if "cannot reach the store" in line]
    assert len(said) == 1, proc.stderr  # from worker 0; the others were never started
    assert f"redis://127.0.0.1:{port}/0" in said[0]
    assert "restarting" not in proc.stderr


def test_workers_report_a_port_in_use_once():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            command("--workers", "2", "--port", str(port)),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert proc.stderr.count(f"cannot listen on 127.0.0.1:{port}") == 1
    assert len(proc.stderr.strip().splitlines()) == 1  # one line, no traceback
    assert "bundled store" not in proc.stderr  # nothing was started


def test_workers_flag_and_environment(monkeypatch):
    from presence.cli import serve_parser

    assert serve_parser().parse_args([]).workers == 1
    assert serve_parser().parse_args(["--workers", "0"]).workers == 0
    monkeypatch.setenv("PRESENCE_WORKERS", "3")
    assert serve_parser().parse_args([]).workers == 3
    with pytest.raises(SystemExit):
        serve_parser().parse_args(["--workers", "-1"])
    assert serve_parser().parse_args([]).recycle_after_peak == 500
    monkeypatch.setenv("PRESENCE_RECYCLE_AFTER_PEAK", "0")
    assert serve_parser().parse_args([]).recycle_after_peak == 0
    with pytest.raises(SystemExit):
        serve_parser().parse_args(["--recycle-after-peak", "-1"])


def test_a_worker_that_just_accepted_leaves_the_next_queued_connection_to_another(monkeypatch):
    from presence.workers import _OneAcceptPerWakeup

    monkeypatch.setattr(_OneAcceptPerWakeup, "GAP", 3600.0)  # (no timing in this test)
    # never accepted before (the monotonic clock may be under GAP: a machine up < 1 h)
    monkeypatch.setattr(_OneAcceptPerWakeup, "_last", float("-inf"))
    listener = socket.create_server(("127.0.0.1", 0))
    first, second = (_OneAcceptPerWakeup.of(listener.dup()) for _ in range(2))
    clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
    accepted: list[socket.socket] = []
    try:
        accepted.append(first.accept()[0])
        for _ in range(3):  # the end of its wake-up, then every later one: nothing for it
            with pytest.raises(BlockingIOError):
                first.accept()
        accepted.append(second.accept()[0])  # the other worker takes the next one
        first._last = float("-inf")  # (as if GAP had passed)
        accepted.append(first.accept()[0])
        assert len(accepted) == 3
    finally:
        for sock in [*accepted, *clients, first, second, listener]:
            sock.close()
