"""`presence bench` (presence/bench.py): its HTTP client, its statistics, and a real run.

The run drives a small `presence serve` (bundled store, short timeout) with a few users,
one of them silent, and checks what the report says happened, never how fast.
"""

import asyncio
import json
import subprocess
import sys

import pytest

from presence.bench import Connection, HTTPError, percentile, summary
from presence.testing import ROOT, free_port, stop, wait_for_port


class FakeTransport:
    def __init__(self):
        self.written = b""
        self.aborted = False

    def write(self, data):
        self.written += data

    def abort(self):
        self.aborted = True

    def close(self):
        pass


def open_connection():
    loop = asyncio.new_event_loop()
    conn = Connection("127.0.0.1:1")
    conn.connection_made(FakeTransport())
    return loop, conn


RESPONSE = (
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"ok": true}\n'
)


def test_connection_reads_a_response_fed_byte_by_byte():
    loop, conn = open_connection()
    future = conn.request("/healthz", 5, loop)
    assert conn.transport.written.startswith(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:1\r\n")
    for i in range(len(RESPONSE)):
        assert not future.done()
        conn.data_received(RESPONSE[i : i + 1])
    assert future.result() == (200, b'{"ok": true}\n')
    loop.close()


def test_connection_keeps_the_next_response_for_the_next_request():
    loop, conn = open_connection()
    first = conn.request("/a", 5, loop)
    conn.data_received(RESPONSE + RESPONSE.replace(b"200 OK", b"404 Not Found")[:30])
    assert first.result()[0] == 200
    second = conn.request("/b", 5, loop)
    conn.data_received(RESPONSE.replace(b"200 OK", b"404 Not Found")[30:])
    assert second.result() == (404, b'{"ok": true}\n')
    loop.close()


def test_connection_lost_fails_the_request_and_later_ones():
    loop, conn = open_connection()
    future = conn.request("/poll", 5, loop)
    conn.connection_lost(None)
    with pytest.raises(HTTPError):
        future.result()
    with pytest.raises(HTTPError):
        conn.request("/again", 5, loop).result()
    loop.close()


def test_connection_refuses_a_response_without_content_length():
    loop, conn = open_connection()
    conn.request("/x", 5, loop)
    conn.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert conn.transport.aborted
    loop.close()


def test_percentiles_by_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    assert summary([3.0, 1.0, 2.0]) == {"count": 3, "p50": 2.0, "p90": 3.0, "p99": 3.0, "max": 3.0}


@pytest.fixture
def small_node():
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
            "3",
            "--poll-timeout",
            "1",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_for_port(port, proc)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


@pytest.mark.slow
def test_bench_against_a_small_node_reports_offline_lag_and_no_errors(small_node):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "presence.cli",
            "bench",
            "--url",
            small_node,
            "--users",
            "6",
            "--channels",
            "2",
            "--silent",
            "1",
            "--duration",
            "0.5",
            "--settle",
            "0.5",
            "--grace",
            "10",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["joined"] == 6 and report["silent"] == 1
    assert report["timeout"] == 3
    assert report["errors"] == 0, report["error_kinds"]
    # the silent user's two channel mates each saw its offline, after its deadline
    assert report["offline_expected"] == 2
    assert report["offline_deliveries"] == 2 and report["offline_missed"] == 0
    assert report["offline_lag_ms"]["count"] == 2
    assert report["offline_lag_ms"]["p50"] is not None
    assert report["offline_lag_ms"]["p50"] > -1000  # measured from its real deadline
    assert report["join_ms"]["count"] == 6
    assert report["requests"] > 6
    # the raw lags behind the summary, which bench/service_bench.py --plot draws
    samples = report["offline_lag_samples_ms"]
    assert len(samples) == 2 and max(samples) == pytest.approx(
        report["offline_lag_ms"]["max"], abs=0.001
    )


def test_bench_refuses_a_non_http_url():
    out = subprocess.run(
        [sys.executable, "-m", "presence.cli", "bench", "--url", "ftp://x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert "--url must be http://" in out.stderr


def test_service_bench_plots_one_line_per_store(tmp_path, monkeypatch):
    """bench/service_bench.py --plot: a PNG with a panel per size and a line per store."""
    pytest.importorskip("matplotlib")  # the `bench` extra; the test extra installs it
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import service_bench
    finally:
        sys.path.pop(0)
    rows = [
        (100, "bundled store", [{"offline_lag_samples_ms": [1.0, 2.0, 3.0]}]),
        (100, "redis-server", [{"offline_lag_samples_ms": [900.0, 2000.0]}]),
        (1000, "bundled store", [{"offline_lag_samples_ms": [4.0]}]),
    ]
    drawn = []
    from matplotlib.axes import Axes

    real_step = Axes.step

    def step(self, x, y, *a, **kw):
        drawn.append((self.get_title(), kw["label"], list(x), list(y)))
        return real_step(self, x, y, *a, **kw)

    path = tmp_path / "lag.png"
    monkeypatch.setattr(Axes, "step", step)
    service_bench.plot_lags(rows, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [(t, label.split(" (")[0]) for t, label, _, _ in drawn] == [
        ("100 online users", "bundled store"),
        ("100 online users", "redis-server"),
        ("1,000 online users", "bundled store"),
    ]
    # a cumulative distribution: sorted lags, shares up to 1
    assert drawn[1][2] == [900.0, 2000.0] and drawn[1][3] == [0.5, 1.0]
