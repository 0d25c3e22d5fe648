"""`presence bench`: drive a running deployment with simulated browser tabs.

Each simulated user is one tab on its own keep-alive HTTP/1.1 connection: it joins its
channel, then long-polls with its cursor, as static/presence.js does. `--silent K` of them
stop during the first `--duration` seconds (the tab closes after one last heartbeat), and
the others time how late the `offline` event reaches them:

    offline lag = moment an observer's poll returns `offline` for U
                  - (moment U's last heartbeat was answered + the server's `timeout`)

The server's timeout comes from the join reply. The deadline the server set lies between
that heartbeat's sending and its answer, so this lag may be understated by at most the
heartbeat's latency; the report also gives the upper bound, measured from the sending.

`presence bench --soak` is another benchmark: see presence.soak.

The HTTP client is a bare asyncio Protocol (no streams, no per-request task or timer): a
held long-poll costs one socket and one future, so one process drives 10,000 of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from presence.runtime import proc_stat


def raise_open_files_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1_048_576 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            pass
    return soft


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict:
    """{count, p50, p90, p99, max} of latencies in milliseconds."""
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by process `pid` and its live descendants (Linux /proc)."""
    fields = proc_stat(pid)
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = [int(c) for c in fh.read().split()]
    except OSError:
        return 0.0
    if not fields:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(process_cpu_seconds(c) for c in children)


# -- a minimal HTTP/1.1 keep-alive client ---------------------------------------------


class HTTPError(Exception):
    """A request failed below HTTP: connection refused, reset, closed or timed out."""


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time.

    Responses must carry Content-Length (Tornado's do, for every finished reply).
    A request that outlives its timeout is aborted by the Client's watchdog.
    """

    __slots__ = (
        "transport",
        "buf",
        "waiter",
        "need",
        "head_end",
        "status",
        "expires",
        "closed",
        "host",
    )

    def __init__(self, host: str) -> None:
        self.transport = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.need = -1
        self.head_end = -1
        self.status = 0
        self.expires = 0.0
        self.closed = False
        self.host = host.encode()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        self._fail(HTTPError(f"connection lost: {exc or 'closed by peer'}"))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.head_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self.transport.abort()
                return
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop > 0 else len(head)])
            self.status = int(head[9:12])
            self.head_end = end + 4
            self.need = end + 4 + length
        if len(buf) >= self.need:
            body = bytes(buf[self.head_end : self.need])
            del buf[: self.need]
            self.head_end = self.need = -1
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result((self.status, body))

    def request(self, path: str, timeout: float, loop) -> asyncio.Future:
        """Send GET `path`; the future gives (status, body) or raises HTTPError."""
        future = loop.create_future()
        if self.closed:
            future.set_exception(HTTPError("connection closed"))
            return future
        self.waiter = future
        self.expires = loop.time() + timeout
        self.transport.write(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path.encode(), self.host))
        return future

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()


class Client:
    """Opens connections to one host:port and aborts requests that time out."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.loop = asyncio.get_running_loop()
        self.connections: set[Connection] = set()
        self.requests = 0
        self._watchdog = self.loop.create_task(self._watch())

    async def connect(self) -> Connection:
        try:
            _, conn = await self.loop.create_connection(
                lambda: Connection(f"{self.host}:{self.port}"), self.host, self.port
            )
        except OSError as exc:
            raise HTTPError(f"cannot connect: {exc}") from None
        self.connections.add(conn)
        return conn

    async def get(self, conn: Connection, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
        status_body = await conn.request(path, timeout, self.loop)
        self.requests += 1
        return status_body

    def drop(self, conn: Connection) -> None:
        waiter, conn.waiter = conn.waiter, None
        if waiter is not None:
            waiter.cancel()  # nobody awaits it any more: no "exception never retrieved"
        conn.close()
        self.connections.discard(conn)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now = self.loop.time()
            for conn in list(self.connections):
                if conn.waiter is not None and now > conn.expires:
                    conn._fail(HTTPError("timed out"))
                    conn.transport.abort()

    def close(self) -> None:
        self._watchdog.cancel()
        for conn in list(self.connections):
            self.drop(conn)


async def hammer(
    url: str,
    paths: list[str],
    connections: int,
    duration: float,
    warmup: float = 1.0,
    server_pid: int | None = None,
) -> dict:
    """Closed-loop load: each connection sends its path (paths[i % len]) back to back.

    Counts the requests answered within `duration` after `warmup`; returns {requests,
    errors, seconds, rps, p50_ms, p99_ms, client_cpu_s, server_cpu_s}. Any non-2xx answer
    is an error. server_cpu_s is the CPU time of `server_pid` and its children (0 without).
    """
    parts = urlsplit(url)
    client = Client(parts.hostname or "127.0.0.1", parts.port or 80)
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    counting = False
    errors = 0

    async def drive(path: str) -> None:
        nonlocal errors
        conn = None
        while True:
            t0 = loop.time()
            try:
                if conn is None:
                    conn = await client.connect()
                status, _ = await client.get(conn, path, 30)
            except HTTPError:
                errors += counting
                if conn is not None:
                    client.drop(conn)
                conn = None
                await asyncio.sleep(0.1)
                continue
            if counting:
                latencies.append(loop.time() - t0)
                errors += not 200 <= status < 300

    tasks = [loop.create_task(drive(paths[i % len(paths)])) for i in range(connections)]
    try:
        await asyncio.sleep(warmup)
        counting = True
        cpu0, t0 = resource.getrusage(resource.RUSAGE_SELF), loop.time()
        server0 = process_cpu_seconds(server_pid) if server_pid else 0.0
        await asyncio.sleep(duration)
        counting = False
        elapsed = loop.time() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        server1 = process_cpu_seconds(server_pid) if server_pid else 0.0
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client.close()
    ms = [x * 1000 for x in latencies]
    return {
        "requests": len(ms),
        "errors": errors,
        "seconds": elapsed,
        "rps": len(ms) / elapsed,
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "client_cpu_s": cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime,
        "server_cpu_s": server1 - server0,
    }


# -- simulated users ------------------------------------------------------------------


@dataclass
class User:
    index: int
    channel: str
    name: str
    conn_id: str
    silent: bool = False
    conn: Connection | None = None
    client: Client | None = None  # the client of the node this user's tab talks to
    cursor: int = 0
    task: asyncio.Task | None = None
    gone: bool = False


@dataclass
class Results:
    join: list[float] = field(default_factory=list)
    poll_turnaround: list[float] = field(default_factory=list)  # events were already there
    heartbeat: list[float] = field(default_factory=list)
    offline_lag: list[float] = field(default_factory=list)  # one per observer and offline
    offline_lag_upper: list[float] = field(default_factory=list)  # same, from heartbeat sent
    first_seen: dict[str, float] = field(default_factory=dict)  # user -> earliest lag
    empty_polls: int = 0
    resets: int = 0
    rejoins: Counter = field(default_factory=Counter)  # polls answered {rejoin}, by reason
    spurious_offline: int = 0  # `offline` for a user that never went silent
    spurious_events: list[dict] = field(default_factory=list)  # the first 50 of them
    errors: Counter = field(default_factory=Counter)


class Bench:
    """One run: join every user, poll, silence some, collect latencies, leave."""

    def __init__(self, opts: argparse.Namespace) -> None:
        self.nodes = []  # (host, port) of each node, users take them in turn
        for each in opts.url.split(","):
            url = urlsplit(each.strip())
            self.nodes.append((url.hostname or "127.0.0.1", url.port or 80))
        self.host, self.port = self.nodes[0]
        self.opts = opts
        self.run_id = opts.run_id or os.urandom(3).hex()
        self.res = Results()
        self.timeout = 30.0
        self.poll_timeout = 25.0
        # silent user -> (earliest, latest) possible deadline, epoch seconds: its last
        # heartbeat's sending and answer, plus the timeout
        self.deadlines: dict[str, tuple[float, float]] = {}
        self.seen: dict[str, int] = Counter()  # silent user -> observers that saw `offline`
        self.stopping = False
        self.joined_in = 0.0
        self.first_at: dict[str, float] = {}  # silent user -> first sighting of its offline
        channels = max(1, min(opts.channels, opts.users))
        self.users = [
            User(i, f"bench-{self.run_id}-{i % channels}", f"u{i}", f"c{i}")
            for i in range(opts.users)
        ]
        silent = min(opts.silent, max(opts.users - channels, 0))
        for k in range(silent):  # spread over channels, leaving every channel an observer
            self.users[channels + k * (opts.users - channels) // silent].silent = True

    def path(self, user: User, action: str, **extra) -> str:
        query = f"user={user.name}&conn={user.conn_id}"
        for key, value in extra.items():
            query += f"&{key}={quote(str(value), safe='')}"
        return f"/channels/{user.channel}/{action}?{query}"

    async def run(self) -> dict:
        loop = asyncio.get_running_loop()
        self.clients = [Client(host, port) for host, port in self.nodes]
        for user in self.users:
            user.client = self.clients[user.index % len(self.clients)]
        cpu0, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        try:
            gate = asyncio.Semaphore(self.opts.concurrency)
            joined = await asyncio.gather(*(self.join(u, gate) for u in self.users))
            if not any(joined):
                raise SystemExit(f"presence bench: no user could join ({dict(self.res.errors)})")
            self.joined_in = time.perf_counter() - started
            await asyncio.sleep(self.opts.settle)  # let the join events reach every poll
            steady = time.perf_counter()
            silent = [u for u in self.users if u.silent and u.conn is not None]
            spread = self.opts.duration
            for k, user in enumerate(silent):
                loop.call_later(
                    spread * (k + random.random()) / max(len(silent), 1),
                    lambda u=user: loop.create_task(self.go_silent(u)),
                )
            await asyncio.sleep(spread)
            await self.await_offlines(silent)
            measured = time.perf_counter() - steady
            requests = sum(client.requests for client in self.clients)
        finally:
            self.stopping = True
            for user in self.users:
                if user.task is not None:
                    user.task.cancel()
            for client in self.clients:
                client.close()
        if not self.opts.no_leave:
            await self.leave_all()
        if self.opts.trace:
            with open(self.opts.trace, "w") as fh:
                json.dump(
                    {
                        name: {"deadline": bounds, "first_seen": self.first_at.get(name)}
                        for name, bounds in self.deadlines.items()
                    },
                    fh,
                )
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
        return self.report(silent, requests, measured, time.perf_counter() - started, cpu)

    async def join(self, user: User, gate: asyncio.Semaphore) -> bool:
        async with gate:
            try:
                user.conn = await user.client.connect()
                t0 = time.perf_counter()
                status, body = await user.client.get(user.conn, self.path(user, "join"))
                self.res.join.append((time.perf_counter() - t0) * 1000)
            except HTTPError as exc:
                self.res.errors[f"join: {exc}"] += 1
                return False
            if status != 200:
                self.res.errors[f"join: HTTP {status}"] += 1
                return False
            reply = json.loads(body)
            user.cursor = reply["cursor"]
            self.timeout = float(reply.get("timeout", self.timeout))
            self.poll_timeout = float(reply.get("poll_timeout", self.timeout))
            user.task = asyncio.get_running_loop().create_task(self.poll_loop(user))
            return True

    async def poll_loop(self, user: User) -> None:
        """Long-poll forever with the user's cursor; reconnect after a failure."""
        res = self.res
        while not user.gone:
            t0, sent_ms = time.perf_counter(), time.time() * 1000
            try:
                status, body = await user.client.get(
                    user.conn, self.path(user, "poll", cursor=user.cursor), self.poll_timeout + 10
                )
            except HTTPError as exc:
                if user.gone or self.stopping:
                    return
                res.errors[f"poll: {exc}"] += 1
                await self.reconnect(user)
                continue
            received = time.time()
            if status != 200:
                res.errors[f"poll: HTTP {status}"] += 1
                await asyncio.sleep(0.5)
                continue
            reply = json.loads(body)
            if reply.get("rejoin"):  # the node no longer knows this tab: join again
                res.rejoins[reply.get("reason", "?")] += 1
                await self.rejoin(user)
                continue
            if reply.get("reset"):
                res.resets += 1
            elif reply["events"]:
                if reply["events"][-1]["ts"] <= sent_ms:  # nothing to wait for: turnaround
                    res.poll_turnaround.append((time.perf_counter() - t0) * 1000)
                for event in reply["events"]:
                    if event["type"] == "offline":
                        self.saw_offline(event["user"], received, event)
            else:
                res.empty_polls += 1
            user.cursor = reply["cursor"]

    async def rejoin(self, user: User) -> None:
        try:
            status, body = await user.client.get(user.conn, self.path(user, "join"))
        except HTTPError as exc:
            if not (user.gone or self.stopping):
                self.res.errors[f"join: {exc}"] += 1
                await self.reconnect(user)
            return
        if status == 200:
            user.cursor = json.loads(body)["cursor"]
        else:
            self.res.errors[f"join: HTTP {status}"] += 1
            await asyncio.sleep(0.5)

    def saw_offline(self, name: str, received: float, event: dict | None = None) -> None:
        bounds = self.deadlines.get(name)
        if bounds is None:
            self.res.spurious_offline += 1
            if event is not None and len(self.res.spurious_events) < 50:
                self.res.spurious_events.append(event)
            return
        lag = (received - bounds[1]) * 1000
        self.res.offline_lag.append(lag)
        self.res.offline_lag_upper.append((received - bounds[0]) * 1000)
        self.res.first_seen[name] = min(lag, self.res.first_seen.get(name, lag))
        self.seen[name] += 1
        self.first_at[name] = min(received, self.first_at.get(name, received))

    async def reconnect(self, user: User) -> None:
        user.client.drop(user.conn)
        await asyncio.sleep(0.5)
        try:
            user.conn = await user.client.connect()
        except HTTPError as exc:
            self.res.errors[f"connect: {exc}"] += 1

    async def go_silent(self, user: User) -> None:
        """Close the tab: drop its poll, send one last heartbeat, then nothing."""
        user.gone = True
        if user.task is not None:
            user.task.cancel()
        user.client.drop(user.conn)
        try:
            user.conn = await user.client.connect()
            t0, sent = time.perf_counter(), time.time()
            status, body = await user.client.get(user.conn, self.path(user, "heartbeat"))
        except HTTPError as exc:
            self.res.errors[f"heartbeat: {exc}"] += 1
            return
        answered = time.time()
        self.res.heartbeat.append((time.perf_counter() - t0) * 1000)
        user.client.drop(user.conn)
        if status != 200 or b'"rejoin"' in body:
            self.res.errors[f"heartbeat: HTTP {status} {body[:60]!r}"] += 1
            return
        self.deadlines[user.name] = (sent + self.timeout, answered + self.timeout)

    def observers(self, user: User) -> int:
        return sum(
            1
            for u in self.users
            if u.channel == user.channel and not u.silent and u.conn is not None
        )

    async def await_offlines(self, silent: list[User]) -> None:
        """Wait until every silent user's `offline` reached every observer, or grace passes."""
        expected = {u.name: self.observers(u) for u in silent}
        while True:
            pending = [n for n, want in expected.items() if self.seen[n] < want]
            if not pending:
                return
            unknown = [n for n in pending if n not in self.deadlines]
            last = max((self.deadlines.get(n, (0, 0))[1] for n in pending), default=0)
            if not unknown and time.time() > last + self.opts.grace:
                return
            await asyncio.sleep(0.1)

    async def leave_all(self) -> None:
        """Leave every user so the run leaves nothing behind to expire later."""
        client = Client(self.host, self.port)
        queue = asyncio.Queue()
        for user in self.users:
            queue.put_nowait(user)

        async def worker() -> None:
            conn = await client.connect()
            while not queue.empty():
                user = queue.get_nowait()
                try:
                    await client.get(conn, self.path(user, "leave"))
                except HTTPError:
                    client.drop(conn)
                    conn = await client.connect()

        try:
            await asyncio.gather(*(worker() for _ in range(min(50, len(self.users)))))
        except HTTPError as exc:
            self.res.errors[f"leave: {exc}"] += 1
        finally:
            client.close()

    def report(
        self, silent: list[User], requests: int, measured: float, total: float, cpu: float
    ) -> dict:
        res = self.res
        expected = sum(self.observers(u) for u in silent if u.name in self.deadlines)
        return {
            "url": self.opts.url,
            "run_id": self.run_id,
            "users": len(self.users),
            "channels": len({u.channel for u in self.users}),
            "joined": sum(1 for u in self.users if u.conn is not None),
            "silent": len(silent),
            "timeout": self.timeout,
            "poll_timeout": self.poll_timeout,
            "join_ms": summary(res.join),
            "poll_turnaround_ms": summary(res.poll_turnaround),
            "heartbeat_ms": summary(res.heartbeat),
            "offline_lag_ms": summary(res.offline_lag),
            "offline_lag_upper_ms": summary(res.offline_lag_upper),
            "offline_lag_samples_ms": [round(lag, 3) for lag in res.offline_lag],
            "offline_first_ms": summary(list(res.first_seen.values())),
            "offline_deliveries": len(res.offline_lag),
            "offline_expected": expected,
            "offline_missed": max(expected - len(res.offline_lag), 0),
            "spurious_offline": res.spurious_offline,
            "spurious_offline_events": res.spurious_events,
            "resets": res.resets,
            "rejoins": dict(res.rejoins),
            "empty_polls": res.empty_polls,
            "errors": sum(res.errors.values()),
            "error_kinds": dict(res.errors),
            "requests": requests,
            "requests_per_s": requests / measured if measured else 0.0,
            "joined_in_s": round(self.joined_in, 2),
            "seconds": round(total, 2),
            "client_cpu_s": round(cpu, 2),
        }


def render(report: dict) -> str:
    """The report as a small plain-text table."""

    def ms(value):
        return "-" if value is None else f"{value:.1f}"

    lines = [
        f"presence bench {report['url']}: {report['users']} users "
        f"({report['joined']} joined) in {report['channels']} channels, "
        f"{report['silent']} silent, timeout {report['timeout']:g} s, "
        f"poll timeout {report['poll_timeout']:g} s",
        f"{'latency (ms)':<28}{'count':>8}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}",
    ]
    for label, key in (
        ("join", "join_ms"),
        ("poll turnaround", "poll_turnaround_ms"),
        ("last heartbeat", "heartbeat_ms"),
        ("offline lag (every observer)", "offline_lag_ms"),
        ("  upper bound (from sending)", "offline_lag_upper_ms"),
        ("offline lag (first observer)", "offline_first_ms"),
    ):
        s = report[key]
        lines.append(
            f"{label:<28}{s['count']:>8}{ms(s['p50']):>9}{ms(s['p90']):>9}"
            f"{ms(s['p99']):>9}{ms(s['max']):>9}"
        )
    lines.append(
        f"offline deliveries {report['offline_deliveries']} of "
        f"{report['offline_expected']} expected, spurious offline "
        f"{report['spurious_offline']}, resets {report['resets']}, "
        f"rejoins {sum(report['rejoins'].values())}, "
        f"empty polls {report['empty_polls']}"
    )
    lines.append(
        f"requests {report['requests']} ({report['requests_per_s']:.0f}/s), "
        f"errors {report['errors']}, joins took {report['joined_in_s']} s, "
        f"run {report['seconds']} s, "
        f"client CPU {report['client_cpu_s']} s"
    )
    for kind, n in report["error_kinds"].items():
        lines.append(f"  error: {kind} x{n}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="presence bench", description="Drive a running deployment with simulated users."
    )
    add = p.add_argument
    add(
        "--url",
        default=os.environ.get("PRESENCE_BENCH_URL", "http://127.0.0.1:8080"),
        help="base URL of the deployment, or of several nodes comma-separated (users take "
        "them in turn) (http://127.0.0.1:8080)",
    )
    add("--users", type=int, default=100, help="simulated users, one tab each (100)")
    add("--channels", type=int, default=10, help="channels the users are spread over (10)")
    add(
        "--duration",
        type=float,
        default=10,
        help="seconds over which the silent users stop; the run then waits for their offline (10)",
    )
    add("--silent", type=int, default=10, help="users that go silent (10)")
    add(
        "--grace",
        type=float,
        default=10,
        help="seconds after the last deadline to wait for offline events (10)",
    )
    add("--concurrency", type=int, default=100, help="joins in flight at once (100)")
    add(
        "--settle",
        type=float,
        default=2,
        help="seconds between the last join and the first user going silent (2)",
    )
    add("--run-id", default=None, help="channel name suffix (random)")
    add("--no-leave", action="store_true", help="do not leave the users at the end")
    add("--json", action="store_true", help="print the report as JSON")
    add(
        "--trace",
        default=None,
        help="write each silent user's deadline bounds and first offline sighting (JSON)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--soak" in argv:  # a deployment of its own, with faults: see presence.soak
        from presence.soak import main as soak

        return soak(argv)
    opts = parser().parse_args(argv)
    if urlsplit(opts.url).scheme != "http":
        print("presence bench: --url must be http://host:port", file=sys.stderr)
        return 2
    limit = raise_open_files_limit()
    if limit < opts.users + 100:
        print(
            f"presence bench: the open-files limit is {limit}; {opts.users} users need more "
            "(raise `ulimit -n`)",
            file=sys.stderr,
        )
        return 2
    try:
        import uvloop

        report = uvloop.run(Bench(opts).run())
    except ImportError:
        report = asyncio.run(Bench(opts).run())
    print(json.dumps(report, indent=2) if opts.json else render(report))
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
