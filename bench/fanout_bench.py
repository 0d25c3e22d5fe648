"""Fan-out benchmark: server CPU per delivered message, one node against Socket.IO 4.

    .venv/bin/python bench/fanout_bench.py [--clients 100] [--rate 200] [--seconds 10]
                                           [--rounds 3] [--log-level warning]
                                           [--baseline-root DIR] [--profile DIR]
                                           [--engines own,tornado]

About three minutes with the defaults. Starts everything itself on free loopback ports:
`presence serve` (with its bundled store, a child process) and the minimal Socket.IO 4
server of bench/socketio/server.js (on Node, engine.io's long-polling transport only; `npm
ci` is run there first when node_modules is missing). Both get the same load, in
alternating rounds of the same run, a new channel (room) and new clients per round:

* `--clients` receivers in one channel (one Socket.IO room), each on its own keep-alive
  HTTP/1.1 connection, long-polling: ours join (`/channels/<c>/join`), then poll with the
  cursor of each answer (after an error answer, the same cursor again 0.1 s later);
  Socket.IO's do the engine.io v4 handshake, connect to the namespace, emit `join`
  (acknowledged) and poll `GET /socket.io/?EIO=4&transport=polling`;
* one sender (not a receiver) submitting `--rate` messages per second for `--seconds` on
  a schedule fixed in advance (open loop: a late answer does not slow it down): ours as
  `send?data=<n>` requests on up to 6 keep-alive connections (a browser's limit per
  host), Socket.IO's as `chat` packets POSTed to the polling transport, one POST at a
  time with the packets due meanwhile, as its client does; the server re-broadcasts each
  to the room.

A round's window runs from the first message submitted to the last receiver having the
last message (or 10 s after the last send was answered). Over it the CPU time (user +
sys, /proc/<pid>/stat) of the node process, of the bundled store process, of the Node
process, and of this load generator is divided by the deliveries the receivers counted
(messages x receivers). Every receiver checks that it got each message exactly once; the
table also gives how many messages an answer carried and the latency from submitting a
message to a receiver having it (every 10th message). Then the ratios ours / Socket.IO,
node process alone and node + store, paired round by round (medians and range).

CPU per delivered message depends on how many messages an answer carries: a node that
cannot answer every poll in time answers fewer, fuller polls (and its latency grows), so
read the latency and messages per answer with it. `--rate 20` measures the cost of one
answer per message. `--engines own,tornado` runs one node per HTTP engine (`--http-engine`,
passed as PRESENCE_HTTP_ENGINE) in the same alternation. `--baseline-root` runs a second node from another checkout (say a
`git worktree` of an earlier commit) in the same alternation: before/after in one run.

The receivers are callbacks on a bare asyncio Protocol (no task, future or coroutine per
request), so the load generator stays cheap; its own CPU is reported. The machine is
shared and has 2 cores: read the medians and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from presence.testing import ROOT, free_port, stop, wait_for_port

SOCKETIO_DIR = ROOT / "bench" / "socketio"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- processes

# A load generator is not an abusive client: one sender tab streams hundreds of messages a
# second, and one node holds every poll of the run. Environment variables, not flags, so that
# a baseline checkout that has no such limits starts too.
BENCH_LIMITS = {"PRESENCE_MAX_MESSAGES_PER_SECOND": "1000000", "PRESENCE_MAX_HELD_POLLS": "1000000"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` itself (not its children)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(c) for c in fh.read().split()]
    except OSError:
        return []


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                resp.read()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout}s")


@contextmanager
def presence_node(
    log_level: str,
    root: Path = ROOT,
    logs: list | None = None,
    engine: str | None = None,
    allocator: str | None = None,
):
    """`presence serve` of the checkout `root` with its bundled store, on HTTP engine
    `engine` and allocator `allocator` (PRESENCE_HTTP_ENGINE, PRESENCE_ALLOCATOR: a
    checkout without the flag ignores it); yields (port, node pid, store pid). Its log (a
    temporary file) is appended to `logs`."""
    port = free_port()
    cmd = [
        *(sys.executable, "-m", "presence.cli", "serve", "--port", str(port)),
        *("--log-level", log_level),
    ]
    log = tempfile.TemporaryFile()  # noqa: SIM115 (read below on failure)
    env = {**os.environ, **BENCH_LIMITS}
    if engine is not None:
        env["PRESENCE_HTTP_ENGINE"] = engine
    if allocator is not None:
        env["PRESENCE_ALLOCATOR"] = allocator
    proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env)
    if logs is not None:
        logs.append((root, log))
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        stores = children(proc.pid)
        if len(stores) != 1:
            raise RuntimeError(f"expected one child process (the bundled store), found {stores}")
        yield port, proc.pid, stores[0]
    except BaseException:
        log.seek(0)
        sys.stderr.write(log.read().decode(errors="replace")[-3000:])
        raise
    finally:
        stop(proc)


@contextmanager
def socketio_server():
    """bench/socketio/server.js on Node; yields (port, pid). Installs its packages if needed."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not on the PATH (Node 18+ is needed for the Socket.IO baseline)")
    if not (SOCKETIO_DIR / "node_modules" / "socket.io").is_dir():
        print("  npm ci in bench/socketio ...", file=sys.stderr, flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=SOCKETIO_DIR, check=True)
    port = free_port()
    proc = subprocess.Popen(
        [node, "server.js", str(port)], cwd=SOCKETIO_DIR, stdout=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, proc)
        yield port, proc.pid
    finally:
        stop(proc)


# ---------------------------------------------------------------- a lean HTTP/1.1 client


class HTTPError(Exception):
    pass


class Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time; bodies by Content-Length.

    A response resolves the future of `request()`, or, once `on_response` is set, is
    handed to it (status, body) straight from data_received: the receivers' poll loops
    run as callbacks, with no future or task per request.
    """

    def __init__(self, host: bytes) -> None:
        self.host = host
        self.transport = None
        self.buf = bytearray()
        self.head_end = -1
        self.need = -1
        self.status = 0
        self.waiter: asyncio.Future | None = None
        self.on_response = None
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(HTTPError(f"connection lost: {exc or 'closed by peer'}"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            if self.head_end < 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buf[:end]).lower()
                at = head.find(b"\r\ncontent-length:")
                if at < 0:
                    self.transport.abort()
                    return
                stop_at = head.find(b"\r\n", at + 2)
                self.need = end + 4 + int(head[at + 17 : stop_at if stop_at > 0 else len(head)])
                self.status = int(head[9:12])
                self.head_end = end + 4
            if len(buf) < self.need:
                return
            body = bytes(buf[self.head_end : self.need])
            del buf[: self.need]
            self.head_end = self.need = -1
            if self.on_response is not None:
                self.on_response(self.status, body)
            else:
                waiter, self.waiter = self.waiter, None
                if waiter is not None and not waiter.done():
                    waiter.set_result((self.status, body))
            if not buf:
                return

    def send(self, method: bytes, path: bytes, body: bytes | None = None) -> None:
        if body is None:
            self.transport.write(b"%s %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (method, path, self.host))
        else:
            self.transport.write(
                b"%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain;charset=UTF-8\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (method, path, self.host, len(body), body)
            )

    def request(self, method: bytes, path: bytes, body: bytes | None = None) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if self.closed:
            future.set_exception(HTTPError("connection closed"))
            return future
        self.waiter = future
        self.send(method, path, body)
        return future

    def close(self) -> None:
        self.on_response = None
        if self.transport is not None and not self.closed:
            self.transport.close()


async def connect(port: int) -> Conn:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(lambda: Conn(b"127.0.0.1:%d" % port), "127.0.0.1", port)
    return conn


async def call(conn: Conn, method: bytes, path: str, body: bytes | None = None) -> bytes:
    status, data = await asyncio.wait_for(conn.request(method, path.encode(), body), 30)
    if status != 200:
        raise HTTPError(f"{method.decode()} {path}: {status} {data[:200]!r}")
    return data


# ---------------------------------------------------------------- receivers


class Tally:
    """What one round's receivers got: each checks it saw messages 0..n-1 exactly once."""

    def __init__(self, receivers: int, messages: int) -> None:
        self.receivers = receivers
        self.messages = messages
        self.delivered = 0
        self.duplicates = 0
        self.errors = 0
        self.problems: list[str] = []  # the first few unexpected answers
        self.finished = 0
        self.answers = 0  # answers (poll responses) that carried at least one message
        self.sent_at = [0.0] * messages  # when each message was submitted (monotonic)
        self.latencies: list[float] = []  # submitted -> received, of every 10th message
        self.all_done = asyncio.get_running_loop().create_future()

    def error(self, what) -> None:
        self.errors += 1
        if len(self.problems) < 3:
            self.problems.append(str(what)[:300])

    def done_one(self) -> None:
        self.finished += 1
        if self.finished == self.receivers and not self.all_done.done():
            self.all_done.set_result(None)


class Receiver:
    """Counts one receiver's messages: each of 0..n-1 expected once (in any order: the
    sender's requests overlap, so the server may record them in another order)."""

    __slots__ = ("tally", "seen", "count")

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.seen = bytearray(tally.messages)
        self.count = 0

    def got(self, number: int, now: float) -> None:
        tally = self.tally
        if self.seen[number]:
            tally.duplicates += 1
            return
        self.seen[number] = 1
        if number % 10 == 0:
            tally.latencies.append(now - tally.sent_at[number])
        self.count += 1
        tally.delivered += 1
        if self.count == tally.messages:
            tally.done_one()


class PresenceReceiver(Receiver):
    """A tab of ours: joined, then polling with the cursor of each answer (callbacks).

    After an error answer it polls again from the same cursor 0.1 s later, as
    static/presence.js retries (the error is counted)."""

    __slots__ = ("conn", "prefix", "running", "cursor")

    def __init__(self, tally: Tally, conn: Conn, channel: str, i: int) -> None:
        super().__init__(tally)
        self.conn = conn
        self.prefix = f"/channels/{channel}/poll?user=u{i}&conn=c{i}&cursor=".encode()
        self.running = True
        self.cursor = b""

    def start(self, cursor: str) -> None:
        self.conn.on_response = self.answered
        self.cursor = cursor.encode()
        self.conn.send(b"GET", self.prefix + self.cursor)

    def again(self) -> None:
        if self.running and not self.conn.closed:
            self.conn.send(b"GET", self.prefix + self.cursor)

    def answered(self, status: int, body: bytes) -> None:
        if status != 200:
            self.tally.error((status, body))
            asyncio.get_running_loop().call_later(0.1, self.again)
            return
        answer, now, before = json.loads(body), time.monotonic(), self.count
        for event in answer.get("events", ()):
            if event["type"] == "message":
                self.got(int(event["data"]), now)
        if self.count > before:
            self.tally.answers += 1
        if "events" not in answer:  # rejoin or reset: not expected here
            self.tally.error(answer)
        if self.running:
            self.cursor = answer["cursor"].encode()
            self.conn.send(b"GET", self.prefix + self.cursor)


class SocketIOReceiver(Receiver):
    """An engine.io v4 polling client of the room: GET polls, POSTs only for a pong."""

    __slots__ = ("conn", "path", "port", "running")

    def __init__(self, tally: Tally, conn: Conn, sid: str, port: int) -> None:
        super().__init__(tally)
        self.conn = conn
        self.path = f"/socket.io/?EIO=4&transport=polling&sid={sid}".encode()
        self.port = port
        self.running = True

    def start(self) -> None:
        self.conn.on_response = self.answered
        self.conn.send(b"GET", self.path)

    def answered(self, status: int, body: bytes) -> None:
        if status != 200:
            self.tally.error((status, body))
            return
        now, before = time.monotonic(), self.count
        for packet in body.split(b"\x1e"):
            if packet.startswith(b'42["chat"'):
                self.got(int(json.loads(packet[2:])[1]["data"]), now)
            elif packet == b"2":  # engine.io ping: pong on another connection
                task = asyncio.ensure_future(self._pong())
                _TASKS.add(task)
                task.add_done_callback(_TASKS.discard)
            elif packet.startswith((b"1", b"41")):
                self.tally.error(packet)  # closed by the server
                return
        if self.count > before:
            self.tally.answers += 1
        if self.running:
            self.conn.send(b"GET", self.path)

    async def _pong(self) -> None:
        conn = await connect(self.port)
        await call(conn, b"POST", self.path.decode(), b"3")
        conn.close()


_TASKS: set = set()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def gather_limited(coros, limit: int = 20) -> list:
    gate = asyncio.Semaphore(limit)

    async def one(coro):
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


# ---------------------------------------------------------------- one round


class Sender:
    """Sends messages as they fall due, without waiting for earlier ones (open loop).

    Subclasses send through `_post(conn, n)`-style callbacks; `drained` resolves once every
    submitted message is answered. `errors` counts answers other than 200.
    """

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.pending = 0
        self.submitted = 0
        self.drained: asyncio.Future | None = None

    def answered(self, status: int, body: bytes) -> None:
        if status != 200:
            self.tally.error((status, body))
        self.pending -= 1
        if self.pending == 0 and self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    async def drain(self) -> None:
        if self.pending:
            self.drained = asyncio.get_running_loop().create_future()
            await self.drained


class PresenceSender(Sender):
    """`send` requests on up to `width` keep-alive connections (a browser opens up to 6
    per host), each message on a free one as it falls due, else queued for the next."""

    def __init__(self, tally: Tally, conns: list[Conn], channel: str) -> None:
        super().__init__(tally)
        self.free = list(conns)
        self.backlog: list[int] = []
        self.prefix = f"/channels/{channel}/send?user=sender&conn=s&data=".encode()
        for conn in conns:
            conn.on_response = functools.partial(self._done, conn)

    def submit(self, n: int) -> None:
        self.pending += 1
        self.tally.sent_at[n] = time.monotonic()
        if self.free:
            self.free.pop().send(b"GET", self.prefix + b"%d" % n)
        else:
            self.backlog.append(n)

    def _done(self, conn: Conn, status: int, body: bytes) -> None:
        if self.backlog:
            conn.send(b"GET", self.prefix + b"%d" % self.backlog.pop(0))
        else:
            self.free.append(conn)
        self.answered(status, body)


class SocketIOSender(Sender):
    """`chat` packets POSTed to the polling transport one request at a time, as the
    Socket.IO client does: packets due while a POST is in flight go in the next one."""

    def __init__(self, tally: Tally, conn: Conn, path: str, room: str) -> None:
        super().__init__(tally)
        self.conn = conn
        self.path = path.encode()
        self.head = b'42["chat",%s,{"user":"sender","ts":' % json.dumps(room).encode()
        self.buffer: list[bytes] = []
        self.in_flight = 0
        conn.on_response = self._done

    def submit(self, n: int) -> None:
        self.pending += 1
        self.tally.sent_at[n] = time.monotonic()
        self.buffer.append(self.head + b'%d,"data":"%d"}]' % (int(time.time() * 1000), n))
        if not self.in_flight:
            self._post()

    def _post(self) -> None:
        self.in_flight = len(self.buffer)
        self.conn.send(b"POST", self.path, b"\x1e".join(self.buffer))
        self.buffer = []

    def _done(self, status: int, body: bytes) -> None:
        done, self.in_flight = self.in_flight, 0
        if self.buffer:
            self._post()
        for _ in range(done):
            self.answered(status, body)


async def paced(sender: Sender, rate: float, count: int) -> float:
    """Submit messages 0..count-1 on a fixed schedule (open loop); returns seconds taken
    until the last is answered."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n in range(count):
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        sender.submit(n)
    await sender.drain()
    return loop.time() - start


async def measured(tally: Tally, sender: Sender, args, pids: dict[str, int]) -> dict:
    """Send the messages, wait for every receiver to have them; CPU of `pids` meanwhile."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    own_before, wall_before = own_cpu_seconds(), time.monotonic()
    sending = await paced(sender, args.rate, tally.messages)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(tally.all_done), 10)
    wall = time.monotonic() - wall_before
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    cpu["client"] = own_cpu_seconds() - own_before
    expected = tally.messages * tally.receivers
    return {
        "cpu": cpu,
        "wall": wall,
        "sending": sending,
        "expected": expected,
        "delivered": tally.delivered,
        "duplicates": tally.duplicates,
        "missing": expected - tally.delivered,
        "errors": tally.errors,
        "problems": tally.problems,
        "per_answer": tally.delivered / max(tally.answers, 1),
        "latency_ms": {
            q: percentile(tally.latencies, q) * 1000 for q in (50, 99) if tally.latencies
        },
        "us": {name: s / max(tally.delivered, 1) * 1e6 for name, s in cpu.items()},
    }


async def presence_round(port: int, pids: dict[str, int], channel: str, args, count: int) -> dict:
    tally = Tally(args.clients, count)
    control = await connect(port)
    await call(control, b"GET", f"/channels/{channel}/join?user=sender&conn=s")

    async def join(i: int) -> PresenceReceiver:
        conn = await connect(port)
        body = await call(conn, b"GET", f"/channels/{channel}/join?user=u{i}&conn=c{i}")
        receiver = PresenceReceiver(tally, conn, channel, i)
        receiver.start(json.loads(body)["cursor"])
        return receiver

    receivers = await gather_limited(join(i) for i in range(args.clients))
    await asyncio.sleep(1.0)  # the joins' events reach everyone; then all polls are held
    conns = [await connect(port) for _ in range(args.send_connections)]
    sender = PresenceSender(tally, conns, channel)

    async def heartbeats() -> None:  # the sender does not poll
        while True:
            await asyncio.sleep(5)
            await call(control, b"GET", f"/channels/{channel}/heartbeat?user=sender&conn=s")

    beating = asyncio.ensure_future(heartbeats())
    result = await measured(tally, sender, args, pids)
    beating.cancel()
    for conn in [*sender.free]:
        conn.close()
    for r in receivers:
        r.running = False
        r.conn.close()
    for i in range(args.clients):  # leave now, or their `offline` would land in a later round
        await call(control, b"GET", f"/channels/{channel}/leave?user=u{i}&conn=c{i}")
    await call(control, b"GET", f"/channels/{channel}/leave?user=sender&conn=s")
    control.close()
    return result


_SID = re.compile(rb'"sid":"([^"]+)"')


async def socketio_session(port: int) -> tuple[Conn, str]:
    """Open an engine.io v4 polling session and connect to the main namespace."""
    conn = await connect(port)
    base = "/socket.io/?EIO=4&transport=polling"
    body = await call(conn, b"GET", base)
    if not body.startswith(b"0"):
        raise HTTPError(f"unexpected handshake {body[:200]!r}")
    sid = _SID.search(body).group(1).decode()
    path = f"{base}&sid={sid}"
    await call(conn, b"POST", path, b"40")
    body = await call(conn, b"GET", path)
    if not body.startswith(b"40"):
        raise HTTPError(f"unexpected connect answer {body[:200]!r}")
    return conn, path


async def socketio_round(port: int, pids: dict[str, int], room: str, args, count: int) -> dict:
    tally = Tally(args.clients, count)
    join = b'421["join",%s]' % json.dumps(room).encode()

    async def connect_one(i: int) -> SocketIOReceiver:
        conn, path = await socketio_session(port)
        await call(conn, b"POST", path, join)
        body = await call(conn, b"GET", path)
        if not body.startswith(b"431[true]"):
            raise HTTPError(f"unexpected join answer {body[:200]!r}")
        receiver = SocketIOReceiver(tally, conn, path.rsplit("=", 1)[1], port)
        receiver.start()
        return receiver

    receivers = await gather_limited(connect_one(i) for i in range(args.clients))
    polling, path = await socketio_session(port)  # the sender: in no room
    keepalive = SocketIOReceiver(Tally(1, 0), polling, path.rsplit("=", 1)[1], port)
    keepalive.start()  # it polls too (for engine.io's pings), and POSTs on another connection
    control = await connect(port)
    await asyncio.sleep(1.0)
    result = await measured(tally, SocketIOSender(tally, control, path, room), args, pids)
    for r in receivers:
        r.running = False
        r.conn.close()  # engine.io closes a polling session whose GET connection closes
    keepalive.running = False
    keepalive.conn.close()
    control.close()
    return result


def run(coro):
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


# ---------------------------------------------------------------- main


def profiler(args, pid: int, seconds: float, name: str):
    """py-spy recording `pid` for the round (raw collapsed stacks), when --profile is given."""
    if not args.profile:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = Path(args.profile) / f"{name}.txt"
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200"]
        + ["--duration", str(int(seconds + 1)), "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def report_line(kind: str, r: int, got: dict) -> str:
    us = got["us"]
    parts = ", ".join(f"{name} {v:.1f} us" for name, v in us.items())
    return (
        f"  round {r} {kind}: {got['delivered']:,} of {got['expected']:,} delivered "
        f"(dup {got['duplicates']}, missing {got['missing']}, errors {got['errors']}) "
        f"in {got['wall']:.1f} s, {got['per_answer']:.1f} per answer, latency p50/p99 "
        f"{got['latency_ms'].get(50, 0):.0f}/{got['latency_ms'].get(99, 0):.0f} ms; "
        f"CPU per delivered message: {parts}"
        + "".join(f"\n    unexpected: {p}" for p in got["problems"])
    )


def median(values):
    return statistics.median(values) if values else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=100, help="receivers in the channel (100)")
    p.add_argument("--rate", type=float, default=200, help="messages per second (200)")
    p.add_argument("--seconds", type=float, default=10, help="seconds of sending per round (10)")
    p.add_argument("--rounds", type=int, default=3, help="measured rounds of each server (3)")
    p.add_argument(
        "--send-connections",
        type=int,
        default=6,
        help="keep-alive connections of our sender (6, a browser's limit per host)",
    )
    p.add_argument("--warmup", type=float, default=2, help="seconds of an unmeasured round (2)")
    p.add_argument("--log-level", default="warning", help="of presence serve (warning)")
    p.add_argument("--only", default="presence,socketio", help="presence,socketio")
    p.add_argument(
        "--engines",
        default="own",
        help="HTTP engines of `presence serve` (--http-engine), each a node of its own in "
        "the alternation: own, tornado, or own,tornado (own)",
    )
    p.add_argument(
        "--allocators",
        default="auto",
        help="allocators of `presence serve` (--allocator), each a node of its own (per "
        "engine) in the alternation, e.g. jemalloc,pymalloc,malloc (auto)",
    )
    p.add_argument(
        "--baseline-root",
        help="another checkout (e.g. a git worktree of an earlier commit): its `presence "
        "serve` joins the alternation as a third server, for before/after in one run",
    )
    p.add_argument("--profile", help="directory: py-spy records the node in every round")
    p.add_argument("--json", action="store_true", help="also print the raw rounds as JSON")
    args = p.parse_args()
    only = set(args.only.split(","))
    count = int(args.rate * args.seconds)
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    print(
        f"# fan-out benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}): {args.clients} receivers in one channel, "
        f"{args.rate:g} messages/s for {args.seconds:g} s, {args.rounds} alternating rounds",
        flush=True,
    )
    servers: dict[str, tuple] = {}
    labels = {
        "baseline": f"presence serve of {args.baseline_root} (bundled store)",
        "socketio": "Socket.IO 4 on Node (polling)",
    }
    results: dict[str, list] = {}
    logs: list = []
    with contextlib.ExitStack() as stack:
        if "presence" in only:
            allocators = args.allocators.split(",")
            for n, (engine, alloc) in enumerate(
                (e, a) for e in args.engines.split(",") for a in allocators
            ):
                parts = [engine] * (engine != args.engines.split(",")[0] or n == 0)
                parts += [alloc] * (alloc != allocators[0])
                kind = "-".join(["presence", *parts]) if n else "presence"
                on = f", {alloc} allocator" if len(allocators) > 1 else ""
                labels[kind] = f"presence serve, {engine} engine{on} (bundled store)"
                node_of = presence_node(args.log_level, ROOT, logs, engine, alloc)
                port, node, store = stack.enter_context(node_of)
                servers[kind] = (port, {"node": node, "store": store})
        if args.baseline_root:
            root = Path(args.baseline_root).resolve()
            port, node, store = stack.enter_context(presence_node(args.log_level, root, logs))
            servers["baseline"] = (port, {"node": node, "store": store})
        if "socketio" in only:
            port, pid = stack.enter_context(socketio_server())
            servers["socketio"] = (port, {"socketio": pid})
        kinds = list(servers)
        results = {kind: [] for kind in kinds}
        for r in range(args.rounds + (1 if args.warmup > 0 else 0)):
            warm = args.warmup > 0 and r == 0
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                port, pids = servers[kind]
                n = int(args.rate * args.warmup) if warm else count
                spy = None
                if kind == "presence" and not warm:
                    spy = profiler(args, pids["node"], n / args.rate + 1.5, f"round{r}")
                play = socketio_round if kind == "socketio" else presence_round
                got = run(play(port, pids, f"fan-{r}", args, n))
                if spy is not None:
                    spy.wait()
                label = "warm-up" if warm else str(r + (0 if args.warmup > 0 else 1))
                print(report_line(kind, label, got), file=sys.stderr, flush=True)
                if not warm:
                    results[kind].append(got)
        for root, log in logs:  # what the nodes logged (warnings and worse, by default)
            log.seek(0)
            lines = log.read().decode(errors="replace").splitlines()
            problems = [line for line in lines if " WARNING " in line or " ERROR " in line]
            if problems:
                print(f"  {root}: {len(problems)} warnings or errors logged, the first:")
                print("\n".join(f"    {line[:300]}" for line in problems[:5]), file=sys.stderr)
    print()
    print(
        "| server | delivered (expected) | dup / missing / errors | window | messages per "
        "answer | latency p50 / p99 | CPU per delivered message | of which store | "
        "load generator |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, got in results.items():
        delivered = sum(g["delivered"] for g in got)
        expected = sum(g["expected"] for g in got)
        flaws = "/".join(str(sum(g[k] for g in got)) for k in ("duplicates", "missing", "errors"))
        if kind == "socketio":
            cpu, store = f"{median([g['us']['socketio'] for g in got]):.1f} us", "-"
        else:
            node = median([g["us"]["node"] for g in got])
            both = median([g["us"]["node"] + g["us"]["store"] for g in got])
            cpu = f"{node:.1f} us node, {both:.1f} us node + store"
            store = f"{median([g['us']['store'] for g in got]):.1f} us"
        print(
            f"| {labels[kind]} | {delivered:,} ({expected:,}) | {flaws} "
            f"| {median([g['wall'] for g in got]):.1f} s "
            f"| {median([g['per_answer'] for g in got]):.2f} "
            f"| {median([g['latency_ms'].get(50) for g in got]):.1f} ms / "
            f"{median([g['latency_ms'].get(99) for g in got]):.1f} ms | {cpu} | {store} "
            f"| {median([g['us']['client'] for g in got]):.1f} us |"
        )
    print()
    for kind in results:
        if kind != "socketio" and "socketio" in results:
            pairs = list(zip(results[kind], results["socketio"], strict=False))
            node = [a["us"]["node"] / b["us"]["socketio"] for a, b in pairs]
            both = [(a["us"]["node"] + a["us"]["store"]) / b["us"]["socketio"] for a, b in pairs]
            print(
                f"ratio {labels[kind]} / Socket.IO (per round, paired): node alone "
                f"{median(node):.2f}x ({min(node):.2f}-{max(node):.2f}), node + store "
                f"{median(both):.2f}x ({min(both):.2f}-{max(both):.2f})"
            )
    ok = all(
        g["delivered"] == g["expected"] and not g["duplicates"]
        for got in results.values()
        for g in got
    )
    print(f"every receiver got every message exactly once: {'yes' if ok else 'NO'}")
    for kind, got in results.items():
        errors = sum(g["errors"] for g in got)
        if errors:
            print(f"{labels[kind]}: {errors} error answers (polled again 0.1 s later)")
    print(f"(load average {os.getloadavg()[0]:.1f} after)")
    if args.json:
        print(json.dumps(results, indent=1))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
