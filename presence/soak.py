"""`presence bench --soak`: users come and go for minutes while faults are injected.

The soak starts its own deployment, `presence serve --workers 2` (two nodes on one port,
over the bundled store, or over a redis-server it starts with `--store redis`), and drives
it with `--users` tabs (presence.bench's bare HTTP client). Each tab runs sessions one
after the other: a session joins under a fresh user name, long-polls (sending a message
now and then) for a random lifetime, then leaves or goes silent (stops polling). Every
session records each event its polls return. On a schedule (`--fault-every`) it kills
the store (SIGKILL: the bundled store is restarted by `presence serve`, a redis-server
by the soak), SIGKILLs a node, or SIGTERMs a node (it drains; the parent restarts both).

What it checks, once the last offline had time to arrive:

* exactly once: every session S that ended by `leave` or by going silent must be reported
  (`leave` or `offline`, whichever it was) exactly once to every other session O of its
  channel that was listening throughout: O's event stream was unbroken (no reset) from
  before S ended until after the event was due. Missing, duplicate and wrong-type
  deliveries are counted;
* no spurious offline: no `offline` for a session that was still polling or that left,
  and no poll told to rejoin because its tab `expired` while it was polling;
* the nodes' open file descriptors and RSS, before the load (after a warm-up round and
  the same settle as after each round), at the peak and after the load, summed over the
  node processes. Workers quiet after a peak are replaced by fresh processes meanwhile
  (serve --recycle-after-peak, counted in the report); `--recycle-after-peak 0` shows
  instead what a worker's heap keeps after the load.

Across a store restart the store forgets everything: members, logs, cursors. Sessions
that were joined when the store died get `rejoin` (reason `unknown`) on their next poll
and their membership ends without any event (no one is told they left: the store lost
them); the soak starts a new session for them. A cursor of the lost log gets a `reset`
with the new member list. So the exactly-once contract holds per store lifetime: a
session that was live when the store died is expected nowhere, and a listener's stream
is unbroken only between resets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import quote

from presence import allocator
from presence.bench import Client, Connection, HTTPError, raise_open_files_limit
from presence.runtime import proc_stat, proc_status
from presence.testing import ROOT, child_pids, cmdline, find_tool, free_port, wait_for_port

MARGIN = 1.0  # seconds of slack around an end's window when deciding who must have heard it
LATE_POLL = 2.0  # seconds past --poll-timeout after which a poll's answer counts as late
SLOW_CONNECT = 0.9  # seconds: a TCP connect this slow had its SYN dropped (a full backlog)
STALL = 0.5  # seconds the soak's own event loop may lag before it counts as a stall
FAULTS = ("store-kill", "node-kill", "node-term")
RSS_SLACK = 0.02  # the nodes' RSS after the load may exceed the baseline's by 2%
RSS_SLACK_MIB = 3.0  # ... or by this much, whichever is more (runs of a few tabs)
POOL_SOCKETS = 3 * 64  # store connections the nodes' pools may keep from the peak


@dataclass(eq=False)
class Session:
    """One user's stint in a channel and what its polls returned."""

    name: str
    channel: str
    joined_at: float = 0.0  # when its join was sent
    end: str = ""  # "leave", "silent", "vanished" (the store lost it) or "" (still polling)
    end_from: float = 0.0  # the end's window: leave sent .. answered; silent: last
    end_until: float = 0.0  # refresh sent .. answered + timeout
    segments: list[list[float]] = field(default_factory=list)  # unbroken stream: [from, to]
    seen: Counter = field(default_factory=Counter)  # (type, user) -> deliveries
    history: list[tuple[float, str]] = field(default_factory=list)  # for --explain
    either: bool = False  # a leave answered after the tab's deadline: leave or offline

    def note(self, at: float, what: str) -> None:
        self.history.append((at, what))


class Soak:
    def __init__(self, opts: argparse.Namespace) -> None:
        self.opts = opts
        self.sessions: list[Session] = []
        self.store_kills: list[float] = []
        self.faults: Counter = Counter()
        self.errors: Counter = Counter()
        self.spurious_rejoins = 0
        self.rejoin_context: Counter = Counter()  # (reason, last fault and how long ago)
        self.fault_log: list[tuple[float, str]] = []
        self.loop_stalls: list[tuple[float, float]] = []  # (when, seconds): the soak's own loop
        self.slow_connects = 0  # see request
        self.late_tabs = 0  # tabs the soak itself let expire (a poll or leave sent too late)
        self.sends: set[asyncio.Task] = set()
        self.late_polls = 0  # polls answered later than --poll-timeout + LATE_POLL
        self.latest_poll = 0.0  # the latest answer, past --poll-timeout (seconds)
        self.reports: dict[str, list[dict]] = {}  # --trace-memory: when -> worker reports
        self.failures: list[tuple[str, Session, Session | None]] = []  # see verdict
        self.rejoined: list[Session] = []  # sessions told to rejoin while polling
        self.began = 0.0  # loop time of the start of the run
        self.stopping = False
        self.round_no = 0
        self.killed: set[int] = set()  # workers the faults killed or drained
        self.workers_seen: set[int] = set()  # workers alive at a sample (every second)
        self.proc: subprocess.Popen | None = None
        self.redis: subprocess.Popen | None = None
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="presence-soak-")
        self.rng = random.Random(opts.seed)

    # -- the deployment ---------------------------------------------------------------

    def start_deployment(self) -> None:
        flags = ["--workers", "2", "--port", str(self.port), "--node-id", "soak",
                 "--timeout", str(self.opts.timeout), "--poll-timeout", str(self.opts.poll_timeout),
                 "--store-restarts", "1000", "--log-level", "warning",
                 "--leave-grace", str(self.opts.leave_grace)]  # fmt: skip
        self.probe_dir = os.path.join(self.workdir, "memory")
        os.makedirs(self.probe_dir)
        flags += ["--memory-probe", self.probe_dir, "--allocator", self.opts.allocator]
        if self.opts.recycle_after_peak is not None:
            flags += ["--recycle-after-peak", str(self.opts.recycle_after_peak)]
        env = dict(os.environ)
        if self.opts.trace_memory:
            env["PYTHONTRACEMALLOC"] = "1"
        if self.opts.store == "redis":
            self.redis_port = free_port()
            self.start_redis()
            flags += ["--redis-url", f"redis://127.0.0.1:{self.redis_port}/0"]
        cmd = [sys.executable, "-m", "presence.cli", "serve", *flags]
        log = open(os.path.join(self.workdir, "serve.log"), "wb")  # noqa: SIM115 (closed with the dir)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_for_port(self.port, self.proc, timeout=60)

    def start_redis(self) -> None:
        cmd = [find_tool("redis-server"), "--port", str(self.redis_port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", self.workdir]  # fmt: skip
        self.redis = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.redis_port, self.redis)

    def stop_deployment(self) -> None:
        for proc in (self.proc, self.redis):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def children(self) -> tuple[list[int], int | None]:
        """(node worker pids, bundled store pid) of the running deployment."""
        assert self.proc is not None
        workers, store = [], None
        for pid in child_pids(self.proc.pid):
            if _state(pid) in ("Z", ""):
                continue
            if b"presence.store" in cmdline(pid):
                store = pid
            else:
                workers.append(pid)
        return workers, store

    def node_usage(self) -> dict:
        """Open fds and RSS (MiB) summed over the node processes (parent and workers)."""
        assert self.proc is not None
        pids = [self.proc.pid, *self.children()[0]]
        fds = sum(_fd_count(p) for p in pids)
        status = [proc_status(p) for p in pids]
        each = [round(x.get("VmRSS", 0) / 1024, 1) for x in status]
        anon = round(sum(x.get("RssAnon", 0) for x in status) / 1024, 1)
        sockets = {i for p in pids for i in _socket_inodes(p)}
        http = _connections_on(self.port) & sockets
        return {"fds": fds, "sockets": len(sockets), "http_connections": len(http),
                "rss_mib": round(sum(each), 1), "rss_mib_each": each, "anon_mib": anon,
                "workers": pids[1:]}  # fmt: skip

    def allocator(self) -> str:
        """The workers' allocator, as their memory reports at the end name it."""
        return ",".join(sorted({r.get("allocator", "?") for r in self.reports.get("after", ())}))

    def store_refusals(self) -> int | None:
        """Commands the bundled store refused the nodes (its ACL LOG: the node is a
        restricted user, see presence.service.embedded); None with another store."""
        store = self.children()[1]
        if self.opts.store != "bundled" or store is None:
            return None
        config = cmdline(store).split(b"\0")[-2].decode()  # (python -m presence.store CONF)
        with open(os.path.join(os.path.dirname(config), "users.acl")) as fh:
            password = next(x.split(">", 1)[1] for x in fh.read().split() if x.startswith(">"))
        socket_path = os.path.join(os.path.dirname(config), "store.sock")
        reply = subprocess.run(
            [find_tool("redis-cli"), "-s", socket_path, "--no-auth-warning", "-a", password,
             "ACL", "LOG"], capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        lines = reply.stdout.split("\n")  # ACL LOG's entries: ..., count, <n>, reason, ...
        return sum(int(lines[i + 1]) for i, x in enumerate(lines[:-1]) if x == "count")

    async def inject(self, fault: str) -> None:

        loop = asyncio.get_running_loop()
        workers, store = self.children()
        if fault == "store-kill":
            self.store_kills.append(loop.time())
            if self.opts.store == "redis":
                assert self.redis is not None
                self.redis.kill()
                self.redis.wait()
                await asyncio.sleep(1.0)  # the soak is redis-server's supervisor
                await loop.run_in_executor(None, self.start_redis)
            elif store is not None:
                os.kill(store, signal.SIGKILL)
        elif workers:
            victim = self.rng.choice(workers)
            self.killed.add(victim)
            os.kill(victim, signal.SIGKILL if fault == "node-kill" else signal.SIGTERM)
        self.faults[fault] += 1
        self.fault_log.append((loop.time(), fault))

    def last_fault(self, now: float) -> str:
        """The last fault before `now` and how long ago, in whole seconds ("none" if none)."""
        past = [(at, kind) for at, kind in self.fault_log if at <= now]
        if not past:
            return "none"
        at, kind = past[-1]
        return f"{kind} {int(now - at)}s before"

    async def run_faults(self, until: float) -> None:
        loop = asyncio.get_running_loop()
        every = self.opts.fault_every
        for i in range(10**6):
            at = loop.time() + every
            if at > until or self.stopping:
                return
            await asyncio.sleep(at - loop.time())
            await self.inject(self.opts.faults[i % len(self.opts.faults)])

    # -- the tabs ---------------------------------------------------------------------

    async def request(self, client: Client, conn: Connection | None, path: str,
                      timeout: float, s: Session | None = None
                      ) -> tuple[Connection, int, dict | None]:  # fmt: skip
        """GET `path` on `conn` (a new connection when None or broken); (conn, status, body).
        Status 0: it failed below HTTP (the connection is then dropped). A connect slower
        than SLOW_CONNECT is counted (and noted in `s`'s history)."""
        try:
            if conn is None or conn.closed:
                loop = asyncio.get_running_loop()
                began = loop.time()
                conn = await client.connect()
                took = loop.time() - began
                if took > SLOW_CONNECT:
                    self.slow_connects += 1
                    if s is not None:
                        s.note(loop.time(), f"connect took {took:.1f}s")
            status, body = await client.get(conn, path, timeout)
        except HTTPError:
            drop(client, conn)
            return None, 0, None  # type: ignore[return-value]
        try:
            return conn, status, json.loads(body)
        except ValueError:
            return conn, status, None

    async def tab(self, client: Client, slot: int, until: float) -> None:
        """Sessions one after the other until `until`, then the last one leaves."""
        k = 0
        while not self.stopping:
            channel = f"soak{slot % self.opts.channels}"
            session = Session(f"r{self.round_no}u{slot}-{k}", channel)
            k += 1
            self.sessions.append(session)
            await self.session(client, session, until)

    async def session(self, client: Client, s: Session, until: float) -> None:
        loop = asyncio.get_running_loop()
        who = f"user={quote(s.name)}&conn=c{quote(s.name)}"  # a tab of its own
        base = f"/channels/{s.channel}"
        conn: Connection | None = None
        s.joined_at = loop.time()
        while True:  # join, retried through faults
            conn, status, body = await self.request(client, conn, f"{base}/join?{who}", 10, s)
            if status == 200 and body and "cursor" in body:
                break
            s.note(loop.time(), f"join answered {status}")
            self.errors[f"join retried ({status})"] += 1
            await asyncio.sleep(0.3)
            if self.stopping:
                return
        cursor = body["cursor"]
        s.note(loop.time(), f"joined, cursor {cursor}")
        s.segments.append([s.joined_at, 0.0])
        lifetime = self.rng.uniform(self.opts.min_life, self.opts.max_life)
        ends_at = min(loop.time() + lifetime, until)
        last_refresh = (loop.time(), loop.time())
        last_answer = loop.time()
        attempt = s.joined_at  # when the latest request that may have refreshed the tab was sent
        sending: asyncio.Task | None = None
        while True:
            if loop.time() >= ends_at:
                silent = loop.time() < until and self.rng.random() < 0.5
                break
            if self.rng.random() < self.opts.send_ratio and (sending is None or sending.done()):
                # beside the poll, as a browser sends it (a slow send never delays a poll)
                sending = asyncio.ensure_future(self.send(client, s, f"{base}/send?{who}&data=hi"))
                self.sends.add(sending)
                sending.add_done_callback(self.sends.discard)
            sent, deadline = loop.time(), attempt + self.opts.timeout
            attempt = sent
            path = f"{base}/poll?{who}&cursor={quote(cursor)}"
            conn, status, body = await self.request(client, conn, path, self.opts.timeout + 5, s)
            now = loop.time()
            if now - sent > self.opts.poll_timeout + LATE_POLL:
                self.late_polls += 1
            if status == 200 and body is not None and not body.get("events"):
                s.note(now, f"poll sent at {self.t(sent)}: nothing")
            self.latest_poll = max(self.latest_poll, now - sent - self.opts.poll_timeout)
            if status != 200 or body is None:
                s.note(now, f"poll sent at {self.t(sent)} answered {status}")
                self.errors[f"poll status {status}"] += 1
                await asyncio.sleep(0.3)
                continue
            last_refresh = (sent, now)
            previous_answer, last_answer = last_answer, now
            if body.get("rejoin"):
                reason = body.get("reason")
                s.note(now, f"poll sent at {self.t(sent)}: rejoin, reason {reason}")
                s.end, s.segments[-1][1] = "vanished", previous_answer
                if reason != "unknown" and sent > deadline:  # the soak itself was too late
                    s.note(
                        now, f"(sent after the tab's deadline, {self.t(deadline)} at the latest)"
                    )
                    s.end, s.end_from, s.end_until = "late", deadline - self.opts.timeout, now
                    self.late_tabs += 1
                elif reason != "unknown":  # "expired" while polling: the service thought it gone
                    self.spurious_rejoins += 1
                    self.rejoined.append(s)
                    self.rejoin_context[reason, self.last_fault(now)] += 1
                drop(client, conn)
                return
            if body.get("reset"):
                s.note(now, f"poll sent at {self.t(sent)}: reset to {body.get('cursor')}")
                s.segments[-1][1] = previous_answer
                s.segments.append([now, 0.0])
            heard = []
            for event in body.get("events", ()):
                s.seen[event["type"], event["user"]] += 1
                if event["type"] != "message":
                    heard.append(f"{event['type']} {event['user']} ({event['id']})")
            if body.get("events"):
                s.note(now, f"poll sent at {self.t(sent)}: heard {', '.join(heard) or 'messages'}")
            cursor = body["cursor"]
            if body.get("reconnect"):
                s.note(now, f"poll sent at {self.t(sent)}: reconnect")
                drop(client, conn)
                conn = None
        if silent:  # the tab closes: no more refreshes
            s.note(loop.time(), f"goes silent; last refresh sent at {self.t(last_refresh[0])}")
            drop(client, conn)
            s.end, s.segments[-1][1] = "silent", last_refresh[0]
            # due at the deadline; at the latest by the next sweep of a node (timeout / 2)
            due = last_refresh[1] + self.opts.timeout * 1.5
            s.end_from, s.end_until = last_refresh[0], due
            return
        s.segments[-1][1] = loop.time()
        s.end_from = loop.time()
        deadline = attempt + self.opts.timeout  # the tab's, at the latest
        s.note(loop.time(), "leaves")
        while True:
            conn, status, _ = await self.request(client, conn, f"{base}/leave?{who}", 10, s)
            if status == 200:
                break
            s.note(loop.time(), f"leave answered {status}")
            self.errors["leave retried"] += 1
            await asyncio.sleep(0.3)
        s.end, s.end_until = "leave", loop.time() + self.opts.leave_grace  # recorded after it
        s.note(loop.time(), "left")
        if s.end_from > deadline:  # the soak sent it too late: the tab had expired
            s.note(
                loop.time(), f"(the leave was sent after the tab's deadline, {self.t(deadline)})"
            )
            s.end, s.end_from = "late", deadline - self.opts.timeout
            s.end_until = deadline + self.opts.timeout * 0.5
            self.late_tabs += 1
        elif loop.time() > deadline:  # sent in time, answered late: either event is right
            s.either = True
        drop(client, conn)

    async def send(self, client: Client, s: Session, path: str) -> None:
        """A chat message on a connection of its own; the answer is not checked."""
        loop = asyncio.get_running_loop()
        conn, status, _ = await self.request(client, None, path, 10, s)
        if status != 200:
            s.note(loop.time(), f"send answered {status}")
        drop(client, conn)

    # -- the verdict ------------------------------------------------------------------

    def verdict(self) -> dict:
        """Expected vs seen end events, duplicates, missing, spurious offlines; each failure
        is also kept in `failures` (what --explain prints)."""
        by_channel: dict[str, list[Session]] = {}
        for s in self.sessions:
            by_channel.setdefault(s.channel, []).append(s)
        expected = delivered = missing = duplicates = wrong = excluded = 0
        spurious = 0
        failures = self.failures = []
        for members in by_channel.values():
            ended = {s.name: s for s in members}
            for o in members:
                for (kind, user), n in o.seen.items():
                    x = ended.get(user)
                    if kind == "offline" and x and x.end not in ("silent", "late") and not x.either:
                        spurious += n
                        failures.append(("spurious offline", x, o))
            for s in members:
                if s.end not in ("leave", "silent", "late"):
                    continue
                if self.crossed_store_restart(s):
                    excluded += 1
                    continue
                kind = "leave" if s.end == "leave" else "offline"
                other = "offline" if kind == "leave" else "leave"
                for o in members:
                    if o is s or not self.listened(o, s):
                        continue
                    expected += 1
                    n, m = o.seen[kind, s.name], o.seen[other, s.name]
                    if s.either:  # either is right, once in all
                        n, m = n + m, 0
                    delivered += n == 1
                    missing += n == 0 and m == 0
                    duplicates += max(n - 1, 0)
                    wrong += m
                    if n != 1:
                        failure = f"{kind} heard {n} times, {other} {m} times"
                        failures.append((failure, s, o))
        failures += [("told to rejoin while polling", s, None) for s in self.rejoined]
        return {
            "sessions": len(self.sessions),
            "ends": Counter(s.end or "polling" for s in self.sessions),
            "expected": expected,
            "delivered_once": delivered,
            "missing": missing,
            "duplicates": duplicates,
            "wrong_type": wrong,
            "ends_lost_with_the_store": excluded,
            "spurious_offline": spurious,
            "late_tabs": self.late_tabs,
            "spurious_rejoin": self.spurious_rejoins,
            "spurious_rejoin_context": {
                f"{r}, {f}": n for (r, f), n in self.rejoin_context.items()
            },
        }

    def explain(self, count: int) -> str:
        """The histories of the first `count` failures: the user that ended, the listener
        that should have heard it, and the faults around (times in seconds of the run)."""
        lines: list[str] = []
        users = sorted({id(s): s for _, s, _ in self.failures}.values(), key=lambda s: s.joined_at)
        for s in users[:count]:
            mine = [(f, o) for f, x, o in self.failures if x is s]
            due = f" (due {self.t(s.end_from)} .. {self.t(s.end_until)})" if s.end_until else ""
            lines.append(
                f"-- {s.name} in {s.channel}: joined at {self.t(s.joined_at)}, end "
                f"{s.end or '-'}{due}; {len(mine)} failures: {mine[0][0]}"
            )
            last = s.history[-1][0] if s.history else s.joined_at
            start, stop = s.joined_at - 5, max(s.end_until, last) + 5
            entries = [*s.history]
            entries += [(at, f"FAULT {kind}") for at, kind in self.fault_log if start <= at <= stop]
            entries += [
                (at, f"soak loop stalled {lag:.1f}s")
                for at, lag in self.loop_stalls
                if start <= at <= stop
            ]
            lines += [f"   {self.t(at):>7}  {what}" for at, what in sorted(entries)]
            for failure, o in mine[:2]:
                if o is None:
                    continue
                lines.append(
                    f"   listener {o.name} ({failure}): stream unbroken over "
                    + ", ".join(f"{self.t(a)}..{self.t(b)}" for a, b in o.segments)
                )
                lines += [
                    f"     {self.t(at):>7}  {what}"
                    for at, what in o.history
                    if start <= at <= stop and (s.name in what or "heard" not in what)
                ]
        return "\n".join(lines)

    def t(self, at: float) -> str:
        """A loop time as seconds since the run began."""
        return f"{at - self.began:.1f}"

    def crossed_store_restart(self, s: Session) -> bool:
        """True when the store died while `s` was joined or its end was due."""
        return any(s.joined_at - MARGIN <= k <= s.end_until + MARGIN for k in self.store_kills)

    @staticmethod
    def listened(o: Session, s: Session) -> bool:
        """True when `o`'s stream was unbroken over the whole window of `s`'s end event."""
        return any(
            start < s.end_from - MARGIN and s.end_until + MARGIN < stop
            for start, stop in o.segments
            if stop
        )

    # -- the run ----------------------------------------------------------------------

    async def round(self, seconds: float, faults: bool) -> None:
        loop = asyncio.get_running_loop()
        self.stopping = False
        self.round_no += 1
        client = Client("127.0.0.1", self.port)
        until = loop.time() + seconds
        tabs = []
        for slot in range(self.opts.users):
            tabs.append(asyncio.ensure_future(self.tab(client, slot, until)))
            if slot % 50 == 49:
                await asyncio.sleep(0.05)  # a ramp, not a storm of connects
        fault_task = asyncio.ensure_future(self.run_faults(until - self.opts.timeout))
        if not faults:
            fault_task.cancel()
        await asyncio.sleep(max(until - loop.time(), 0))
        self.stopping = True
        await asyncio.gather(*tabs)
        await asyncio.gather(*self.sends)
        fault_task.cancel()
        client.close()

    async def run(self) -> dict:
        loop = asyncio.get_running_loop()
        started = time.time()
        self.start_deployment()
        try:
            watcher = asyncio.ensure_future(self.watch_workers())
            # a warm-up round, no faults: pools and caches grow to their working size
            await self.round(self.opts.warmup, faults=False)
            self.sessions.clear()
            # the same wait as after each round: the offlines, the sweeps, the trims and
            # the replacement of workers quiet after their peak (serve --recycle-after-peak)
            await asyncio.sleep(self.opts.timeout + 3 + self.opts.settle)
            baseline = self.node_usage()
            # the warm-up is a peak too: workers replaced after it do not count in the run
            recycled_in_warmup = self.workers_seen - set(baseline["workers"])
            await self.memory_reports("baseline")
            peak = dict(baseline, rss_mib_each=None)  # totals only: processes come and go
            sampler = asyncio.ensure_future(self.sample(peak))
            stalls = asyncio.ensure_future(self.watch_loop())
            begun = self.began = loop.time()
            overflows = _listen_overflows()
            rounds = []  # the nodes' usage after each round's settle
            for _ in range(self.opts.rounds):
                await self.round(self.opts.duration, faults=True)
                await asyncio.sleep(self.opts.timeout + 3)  # the last offlines fall due
                # two sweeps (--timeout / 2 apart) age the nodes' caches out, a third trims
                await asyncio.sleep(self.opts.settle)
                rounds.append(self.node_usage())
            watcher.cancel()
            stalls.cancel()
            sampler.cancel()
            after = rounds[-1]
            alive = set(self.children()[0])
            recycled = len(self.workers_seen - alive - self.killed - recycled_in_warmup)
            refusals = self.store_refusals()
            await self.memory_reports("after")
            growth = self.memory_growth()  # (before the snapshots go with the workdir)
            return {
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
                "store": self.opts.store,
                "users": self.opts.users,
                "channels": self.opts.channels,
                "duration_s": round(loop.time() - begun, 1),
                "faults": dict(self.faults),
                "verdict": self.verdict(),
                "errors_retried": dict(self.errors),
                "store_refusals": refusals,
                "late_polls": self.late_polls,
                "slow_connects": self.slow_connects,
                "listen_overflows": _listen_overflows() - overflows,
                "latest_poll_s": round(self.latest_poll, 1),
                "soak_loop_stalls": len(self.loop_stalls),
                "soak_loop_stall_max_s": round(max((x for _, x in self.loop_stalls), default=0), 1),
                "nodes": {"baseline": baseline, "peak": peak, "after": after},
                "after_each_round": [
                    {k: u[k] for k in ("fds", "rss_mib", "rss_mib_each")} for u in rounds
                ],
                "allocator": self.allocator(),
                "recycle_after_peak": self.opts.recycle_after_peak,
                "workers_recycled": recycled,
                "workers_recycled_in_warmup": len(recycled_in_warmup),
                "memory_growth": growth,
            }
        finally:
            self.stop_deployment()

    async def sample(self, peak: dict) -> None:
        while True:
            await asyncio.sleep(1)
            now = self.node_usage()
            for key in ("fds", "sockets", "http_connections", "rss_mib", "anon_mib"):
                peak[key] = max(peak[key], now[key])

    async def watch_workers(self) -> None:
        """Note every worker alive, once a second: those gone at the end and not killed by a
        fault were replaced when quiet after a peak (serve --recycle-after-peak)."""
        while True:
            self.workers_seen.update(self.children()[0])
            await asyncio.sleep(1)

    async def watch_loop(self) -> None:
        """Record the stalls of the soak's own event loop (a stalled soak sends its polls
        late: a tab it fails to keep alive is its fault, not the service's)."""
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.1)
            lag = loop.time() - before - 0.1
            if lag > STALL:
                self.loop_stalls.append((before, lag))

    async def memory_reports(self, when: str) -> None:
        """Every worker writes a report (presence.runtime.MemoryProbe: serve --memory-probe)."""
        workers = self.children()[0]
        done = {name for name in os.listdir(self.probe_dir) if name.endswith(".json")}
        for pid in workers:
            os.kill(pid, signal.SIGUSR2)
        reports, loop = [], asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(reports) < len(workers) and loop.time() < deadline:
            await asyncio.sleep(0.5)
            for name in sorted(os.listdir(self.probe_dir)):
                if name.endswith(".json") and name not in done:
                    done.add(name)
                    with open(os.path.join(self.probe_dir, name)) as fh:
                        report = json.load(fh)
                    reports.append(report)
        self.reports[when] = reports

    def memory_growth(self, top: int = 15) -> list[str]:
        """What each worker holds at the baseline and at the end (and, with
        --trace-memory, what grew, by line of code, in those alive at both)."""
        lines = []
        before = {r["pid"]: r for r in self.reports.get("baseline", ())}
        for after in self.reports.get("after", ()):
            base = before.get(after["pid"], {})
            lines.append(
                f"worker {after['pid']} ({after.get('node')}"
                + (", started during the run: a fault or a recycle" if not base else "")
                + f"): after a full collection and malloc_trim: {_kib(base, 'rss_kib')} -> "
                f"{_kib(after, 'rss_kib')} MiB RSS (before the trim {_kib(base, 'rss_kib_untrimmed')}"
                f" -> {_kib(after, 'rss_kib_untrimmed')}); kept {sum(base.get('kept', {}).values())}"
                f" -> {sum(after['kept'].values())} {_nonzero(after['kept'])}; the node's own "
                f"trims: {after.get('trims')}, giving back {after.get('trimmed_kib')} KiB"
            )
            lines.append(f"  RSS by kind (KiB) {base.get('status')} -> {after['status']}")
            lines.append(f"  heaps (KiB) {base.get('heap')} -> {after['heap']}")
            if not base:
                continue
            grown = Counter(after["types"])
            grown.subtract(base["types"])
            lines.append(
                f"  gc objects {base['gc_objects']} -> {after['gc_objects']}; types grown: "
                f"{dict(grown.most_common(8))}"
            )
            snapshots = [os.path.join(self.probe_dir, f"{r['pid']}-{n}.tracemalloc")
                         for r, n in ((base, 1), (after, 2))]  # fmt: skip
            if all(os.path.exists(x) for x in snapshots):
                old, new = (tracemalloc.Snapshot.load(x) for x in snapshots)
                lines.append(f"  traced {base['traced_kib']} -> {after['traced_kib']} KiB; grown:")
                lines += [f"  {stat}" for stat in new.compare_to(old, "lineno")[:top]]
        return lines


def _listen_overflows() -> int:
    """The kernel's count of connections dropped because a listen backlog was full
    (TcpExt ListenOverflows; machine-wide)."""
    try:
        with open("/proc/net/netstat") as fh:
            rows = [line.split() for line in fh if line.startswith("TcpExt:")]
        return int(dict(zip(rows[0], rows[1], strict=True))["ListenOverflows"])
    except (OSError, KeyError, IndexError, ValueError):
        return 0


def _kib(report: dict, name: str) -> str:
    return str(report[name] // 1024) if name in report else "?"


def _nonzero(counts: dict) -> dict:
    return {k: v for k, v in counts.items() if v}


def drop(client: Client, conn: Connection | None) -> None:
    if conn is not None:
        client.drop(conn)


def _state(pid: int) -> str:
    return (proc_stat(pid) or [""])[0]


def _fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        pass
    return inodes


def _connections_on(port: int) -> set[str]:
    """Inodes of the established (not listening) TCP sockets whose local port is `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                rows = fh.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] != "0A":
                inodes.add(cols[9])
    return inodes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="presence bench --soak",
        description="Start a two-node deployment, drive it for minutes while injecting "
        "faults, then check exactly-once delivery and resources.",
    )
    add = p.add_argument
    add("--soak", action="store_true", help=argparse.SUPPRESS)
    add("--store", choices=["bundled", "redis"], default="bundled", help="(bundled)")
    add("--users", type=int, default=2000, help="tabs at once (2000)")
    add("--channels", type=int, default=100, help="channels the tabs are spread over (100)")
    add("--duration", type=float, default=240, help="seconds of load with faults (240)")
    add("--warmup", type=float, default=20, help="seconds of a first round without faults (20)")
    add(
        "--rounds",
        type=int,
        default=1,
        help="rounds of --duration with faults, each followed "
        "by the settle and a measure of the nodes' fds and RSS (whether they level off) (1)",
    )
    add("--fault-every", type=float, default=30, help="seconds between two faults (30)")
    add(
        "--faults",
        type=_faults,
        default=FAULTS,
        help=f"the faults injected in turn, comma-separated ({','.join(FAULTS)})",
    )
    add("--timeout", type=float, default=20, help="the nodes' --timeout (20)")
    add("--poll-timeout", type=float, default=15, help="the nodes' --poll-timeout (15)")
    add("--leave-grace", type=float, default=2, help="the nodes' --leave-grace (2)")
    add("--min-life", type=float, default=30, help="shortest session, seconds (30)")
    add("--max-life", type=float, default=240, help="longest session, seconds (240)")
    add("--send-ratio", type=float, default=0.05, help="polls preceded by a message (0.05)")
    add("--seed", type=int, default=1, help="random seed (1)")
    add("--short", action="store_true", help="a smoke test: 60 users, 20 s, a fault every 4 s")
    add(
        "--settle",
        type=float,
        default=None,
        help="seconds between the last offline and measuring memory and fds: the nodes' "
        "sweeps age their caches out meanwhile (1.6 x --timeout)",
    )
    add(
        "--explain",
        type=int,
        default=0,
        metavar="N",
        help="print the history of the first N users whose end was not delivered exactly "
        "once (or who were reported offline, or told to rejoin, while polling)",
    )
    add(
        "--trace-memory",
        action="store_true",
        help="run the nodes with PYTHONTRACEMALLOC=1 and print what grew in each worker "
        "between the baseline and the end, by line of code (slows the nodes down)",
    )
    add(
        "--allocator",
        choices=allocator.CHOICES,
        default="auto",
        help="the nodes' serve --allocator (auto)",
    )
    add(
        "--recycle-after-peak",
        type=int,
        default=None,
        metavar="POLLS",
        help="the nodes' serve --recycle-after-peak (0: workers are never replaced, so the "
        "end shows what a worker's heap keeps after the load; default: serve's)",
    )
    add("--json", action="store_true", help="print the report as JSON")
    return p


def _faults(text: str) -> tuple[str, ...]:
    names = tuple(x for x in text.split(",") if x)
    if not names or set(names) - set(FAULTS):
        raise argparse.ArgumentTypeError(f"faults are among {', '.join(FAULTS)}")
    return names


def options(argv: list[str]) -> argparse.Namespace:
    opts = parser().parse_args(argv)
    if opts.short:
        opts.users, opts.channels, opts.duration, opts.warmup = 60, 6, 20, 4
        opts.fault_every, opts.timeout, opts.poll_timeout = 4, 3, 2
        opts.min_life, opts.max_life = 2, 8
    if opts.settle is None:
        opts.settle = 1.6 * opts.timeout
    return opts


def resources(nodes: dict) -> dict:
    """Whether the nodes' descriptors and memory came back to the baseline: no HTTP
    connection left, every descriptor but sockets back, store connections within their
    pools, RSS at most RSS_SLACK above the baseline (RSS_SLACK_MIB at least)."""
    base, after = nodes["baseline"], nodes["after"]
    extra_sockets = (after["sockets"] - after["http_connections"]) - base["sockets"]
    other_fds_back = after["fds"] - after["sockets"] <= base["fds"] - base["sockets"]
    rss_limit = base["rss_mib"] + max(base["rss_mib"] * RSS_SLACK, RSS_SLACK_MIB)
    return {
        "http_connections_left": after["http_connections"],
        "other_fds_back": other_fds_back,
        "store_sockets_added": extra_sockets,
        "rss_growth_mib": round(after["rss_mib"] - base["rss_mib"], 1),
        "rss_limit_mib": round(rss_limit, 1),
        "back": after["http_connections"] == 0
        and other_fds_back
        and extra_sockets <= POOL_SOCKETS
        and after["rss_mib"] <= rss_limit,
    }


def passed(report: dict) -> bool:
    v = report["verdict"]
    return (
        v["expected"] > 0
        and v["delivered_once"] == v["expected"]
        and v["spurious_offline"] == 0
        and v["spurious_rejoin"] == 0
        and resources(report["nodes"])["back"]
    )


def _recycle_flag(value: int | None) -> str:
    return "the default" if value is None else str(value)


def render(report: dict) -> str:
    v, nodes = report["verdict"], report["nodes"]
    lines = [
        f"soak {report['date']}: {report['users']} users in {report['channels']} channels on "
        f"{report['store']} store, two nodes, {report['duration_s']} s",
        f"faults: {report['faults']}",
        f"sessions: {v['sessions']} {dict(v['ends'])}",
        f"end events expected {v['expected']}, delivered exactly once {v['delivered_once']}, "
        f"missing {v['missing']}, duplicates {v['duplicates']}, wrong type {v['wrong_type']} "
        f"(ends not expected: lost with the store {v['ends_lost_with_the_store']})",
        f"spurious offline {v['spurious_offline']}, spurious rejoin {v['spurious_rejoin']} "
        f"{v['spurious_rejoin_context']}",
        f"tabs the soak let expire (a poll or leave sent after the tab's deadline; their "
        f"offline is expected): {v['late_tabs']}",
        f"retried through faults: {report['errors_retried']}",
        f"commands the store refused the nodes (ACL LOG): {report['store_refusals']}",
        f"connects over {SLOW_CONNECT:g} s (a SYN dropped): {report['slow_connects']}; listen "
        f"backlog overflows (kernel, machine-wide): {report['listen_overflows']}",
        f"polls answered over {LATE_POLL:g} s past --poll-timeout: {report['late_polls']} "
        f"(latest {report['latest_poll_s']} s past); soak loop stalls over {STALL:g} s: "
        f"{report['soak_loop_stalls']} (longest {report['soak_loop_stall_max_s']} s)",
    ]
    for when in ("baseline", "peak", "after"):
        n = nodes[when]
        lines.append(
            f"nodes {when}: {n['fds']} fds ({n['sockets']} sockets, of which "
            f"{n['http_connections']} HTTP connections; the others: listening, store), "
            f"{n['rss_mib']} MiB RSS ({n['anon_mib']} MiB of it anonymous: heaps"
            + (f"; per process {n['rss_mib_each']})" if n.get("rss_mib_each") else ")")
        )
    if len(report.get("after_each_round", ())) > 1:
        lines.append(
            "nodes after each round: "
            + ", ".join(f"{u['fds']} fds {u['rss_mib']} MiB" for u in report["after_each_round"])
        )
    r = resources(nodes)
    lines.append(
        f"resources back to baseline: {'yes' if r['back'] else 'NO'} (RSS {r['rss_growth_mib']:+} "
        f"MiB, limit {r['rss_limit_mib']} MiB; HTTP connections left {r['http_connections_left']}"
        f", other fds back {r['other_fds_back']}, store sockets added {r['store_sockets_added']}"
        f"; nodes on {report.get('allocator', '?')}; workers replaced when quiet after a peak "
        f"(--recycle-after-peak {_recycle_flag(report.get('recycle_after_peak'))}): "
        f"{report.get('workers_recycled', '?')} in the run, "
        f"{report.get('workers_recycled_in_warmup', '?')} after the warm-up, before the baseline)"
    )
    lines.append("PASS" if passed(report) else "FAIL")
    return "\n".join(lines + report["memory_growth"] + report.get("explained", []))


def main(argv: list[str]) -> int:
    opts = options(argv)
    raise_open_files_limit()
    soak = Soak(opts)
    try:
        import uvloop

        report = uvloop.run(soak.run())
    except ImportError:
        report = asyncio.run(soak.run())
    if opts.explain:
        report["explained"] = soak.explain(opts.explain).splitlines()
    print(json.dumps(report, indent=2) if opts.json else render(report))
    return 0 if passed(report) else 1
