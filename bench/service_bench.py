"""Benchmark one presence node against Tornado's hello world and a real redis-server.

    .venv/bin/python bench/service_bench.py [--quick] [--only lag,rps,memory] [--rounds N]
    .venv/bin/python bench/service_bench.py --only workers [--rps-rounds N] [--generator wrk]

Starts everything itself on free loopback ports (presence serve, the bundled store,
redis-server, a bare Tornado app written below) and prints Markdown tables:

* lag: end-to-end offline lag (silent user's deadline -> other members' polls return
  `offline`) with 1,000 and 10,000 online users on one node, measured by `presence bench`,
  with the bundled store and with a stock redis-server (notify-keyspace-events Ex) as the
  anchor, the two alternating round by round;
* rps: heartbeat and poll requests per second on one node against Tornado's own
  hello-world handler, the same load generator (presence.bench.hammer) for all three,
  alternating, median of the rounds and of the per-round ratios;
* memory: resident memory per held long-poll of the `presence serve` process, against a
  bare Tornado app holding the same number of requests open;
* workers (not in the default set): poll requests/s of `presence serve --workers 2`
  against `--workers 1` (each with its bundled store), alternating round by round, and
  the median of the per-round ratios; with how much CPU the load generator took, since
  on a small machine it competes with the workers (wrk when installed: the cheapest).

The machine is shared and has 2 cores: only medians and ratios mean anything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager

from presence.bench import Client, hammer, percentile, raise_open_files_limit
from presence.testing import (
    ROOT,
    bundled_store,
    free_port,
    redis_cluster,
    redis_server,
    stop,
    wait_for_port,
)

# ---------------------------------------------------------------- processes

# A load generator is not an abusive client: one sender tab streams hundreds of messages a
# second, and one node holds every poll of the run. Environment variables, not flags, so that
# a baseline checkout that has no such limits starts too.
BENCH_LIMITS = {"PRESENCE_MAX_MESSAGES_PER_SECOND": "1000000", "PRESENCE_MAX_HELD_POLLS": "1000000"}


def rss_bytes(pid: int) -> int:
    """Resident set size of process `pid` (from /proc)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def get_text(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read().decode()


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            get_text(url, 1)
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout}s")


@contextmanager
def service(
    redis_url: str | None = None,
    timeout: float = 30,
    poll_timeout: float = 25,
    log_level: str = "warning",
    workers: int = 1,
    *flags: str,
):
    """Run `presence serve` (bundled store unless `redis_url`); yield (base URL, process)."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "presence.cli",
        "serve",
        "--port",
        str(port),
        "--timeout",
        str(timeout),
        "--poll-timeout",
        str(poll_timeout),
        "--log-level",
        log_level,
    ]
    if redis_url:
        cmd += ["--redis-url", redis_url]
    if workers != 1:
        cmd += ["--workers", str(workers)]
    cmd += flags
    log = tempfile.TemporaryFile()  # noqa: SIM115 (outlives this block: the caller reads it)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **BENCH_LIMITS}
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        yield f"http://127.0.0.1:{port}", proc
    except BaseException:
        log.seek(0)
        sys.stderr.write(log.read().decode(errors="replace")[-3000:])
        raise
    finally:
        stop(proc)


@contextmanager
def tornado_app():
    """Run the bare Tornado app of this file (hello world and held requests); yield (URL, proc)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve-tornado", str(port)], cwd=ROOT)
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        stop(proc)


def serve_tornado(port: int) -> None:
    """Tornado's hello world, plus /hold (a request held until the client leaves) and /held."""
    import tornado.web

    held = 0

    class HelloHandler(tornado.web.RequestHandler):
        def get(self):
            self.write("Hello, world")

    class HoldHandler(tornado.web.RequestHandler):
        async def get(self):
            nonlocal held
            self.gone = asyncio.get_running_loop().create_future()
            held += 1
            try:
                await self.gone
            finally:
                held -= 1

        def on_connection_close(self):
            if not self.gone.done():
                self.gone.set_result(None)

    class HeldHandler(tornado.web.RequestHandler):
        def get(self):
            self.write(str(held))

    async def main():
        app = tornado.web.Application(
            [(r"/", HelloHandler), (r"/hold", HoldHandler), (r"/held", HeldHandler)]
        )
        app.listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    run(main())  # the same event loop as `presence serve` (uvloop when installed)


def run(coro):
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# ---------------------------------------------------------------- offline lag


def presence_bench(url: str, users: int, silent: int, duration: float, grace: float) -> dict:
    """Run `presence bench` as its own process against `url`; its JSON report."""
    cmd = [
        sys.executable,
        "-m",
        "presence.cli",
        "bench",
        "--url",
        url,
        "--users",
        str(users),
        "--channels",
        str(max(users // 10, 1)),
        "--silent",
        str(silent),
        "--duration",
        str(duration),
        "--grace",
        str(grace),
        "--concurrency",
        "20",
        "--no-leave",
        "--json",
    ]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if not out.stdout.strip():
        raise RuntimeError(f"presence bench failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout)


LAG_STORES = {
    "bundled": "bundled store",
    "redis": "redis-server 7, hz 10, deadline timers",
    "redis-notices": "redis-server 7, hz 10, keyspace notices only",
    "cluster": "3-primary Redis Cluster, 2 nodes, deadline timers",
}


def lag_round(store: str, users: int, args) -> dict:
    """One offline-lag run of `presence bench` against a fresh deployment on `store`."""
    silent = min(200, users // 5)
    timing = (args.timeout, args.poll_timeout, "warning", 1)
    pace = ("--answer-pace", str(args.answer_pace))
    with contextlib.ExitStack() as stack:
        if store == "bundled":
            url, _ = stack.enter_context(service(None, *timing, *pace))
        elif store == "cluster":
            cluster = stack.enter_context(redis_cluster())
            nodes = [stack.enter_context(service(cluster.url, *timing, *pace)) for _ in range(2)]
            url = ",".join(node_url for node_url, _ in nodes)
        else:
            port = stack.enter_context(redis_server())  # defaults: keyspace events off, hz 10
            timers = "on" if store == "redis" else "off"
            redis_url = f"redis://127.0.0.1:{port}/0"
            url, _ = stack.enter_context(
                service(redis_url, *timing, *pace, "--offline-timers", timers)
            )
        return presence_bench(url, users, silent, args.duration, args.timeout)


def plot_lags(rows: list, path: str) -> None:
    """Write a PNG of the offline-lag distributions (one panel per size, one line per store).

    Each line is the cumulative share of offline deliveries (every observer of every silent
    user, all rounds) that arrived within x ms of the user's deadline; x is logarithmic so
    milliseconds and seconds fit one panel.
    """
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install -e '.[bench]'") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot

    sizes = sorted({users for users, _, _ in rows})
    fig, axes = pyplot.subplots(1, len(sizes), figsize=(6.4 * len(sizes), 4.4), squeeze=False)
    for ax, users in zip(axes[0], sizes, strict=True):
        ax.set_title(f"{users:,} online users")
        for size, label, reps in rows:
            if size != users:
                continue
            lags = sorted(lag for r in reps for lag in r["offline_lag_samples_ms"])
            if not lags:
                continue
            share = [(i + 1) / len(lags) for i in range(len(lags))]
            p99 = percentile(lags, 99)
            drawn = [max(lag, 0.1) for lag in lags]  # (a log axis has no 0)
            ax.step(drawn, share, where="post", label=f"{label} (p99 {_ms(p99)})")
        ax.set_xscale("log")
        ax.set_xlabel("offline delivered after the deadline (ms, log scale)")
        ax.set_ylabel("share of deliveries")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
    fig.suptitle("presence: offline lag, every observer of every silent user")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot.close(fig)


def bench_lag(args) -> None:
    rows = []
    stores = [s for s in args.lag_stores.split(",") if s]
    for users in args.sizes:
        reports: dict[str, list] = {store: [] for store in stores}
        for r in range(args.rounds):
            order = stores if r % 2 == 0 else stores[::-1]
            for store in order:
                report = lag_round(store, users, args)
                reports[store].append(report)
                lag = report["offline_lag_ms"]
                print(
                    f"  lag {users} users, {store}, round {r + 1}: p50 {lag['p50']} ms, "
                    f"p99 {lag['p99']} ms, max {lag['max']} ms, errors {report['errors']}, "
                    f"spurious {report['spurious_offline']}, missed {report['offline_missed']}",
                    file=sys.stderr,
                    flush=True,
                )
        for store in stores:
            rows.append((users, LAG_STORES[store], reports[store]))
    if args.plot:
        plot_lags(rows, args.plot)
        print(f"offline-lag plot written to {args.plot}", file=sys.stderr)
    print(
        f"\n### End-to-end offline lag (timeout {args.timeout:g} s, poll timeout "
        f"{args.poll_timeout:g} s, 10 users per channel, {args.rounds} rounds, medians)\n"
    )
    print(
        "| online users | store | silent users | offline deliveries | lag p50 | lag p99 "
        "| lag max | upper bound p50 | upper bound p99 | last heartbeat p99 | join p99 "
        "| errors | spurious offline |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for users, label, reps in rows:

        def m(key, stat, reps=reps):
            return _ms(median([r[key][stat] for r in reps]))

        delivered = sum(r["offline_deliveries"] for r in reps)
        expected = sum(r["offline_expected"] for r in reps)
        print(
            f"| {users:,} | {label} | {reps[0]['silent']} | {delivered:,} of {expected:,} "
            f"| {m('offline_lag_ms', 'p50')} | {m('offline_lag_ms', 'p99')} "
            f"| {m('offline_lag_ms', 'max')} | {m('offline_lag_upper_ms', 'p50')} "
            f"| {m('offline_lag_upper_ms', 'p99')} "
            f"| {m('heartbeat_ms', 'p99')} | {m('join_ms', 'p99')} "
            f"| {sum(r['errors'] for r in reps)} | {sum(r['spurious_offline'] for r in reps)} |"
        )


def _ms(value) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.1f} ms"


# ---------------------------------------------------------------- requests per second


async def joined_poll_paths(url: str, users: int) -> list[str]:
    """Join `users` users (10 channels) and return poll paths that answer at once.

    Each path carries the cursor just before its channel's newest event, so every poll
    refreshes the user and returns that one event without waiting.
    """
    client = Client(*_host_port(url))
    conn = await client.connect()
    newest: dict[str, str] = {}
    for i in range(users):
        channel = f"rps-poll-{i % 10}"
        _, body = await client.get(conn, f"/channels/{channel}/join?user=p{i}&conn=c{i}")
        newest[channel] = newer_cursor(newest.get(channel), json.loads(body)["cursor"])
    # a join answers with the cursor of a members snapshot shared for a second, which can be
    # behind: one poll per channel from there reads the true newest cursor
    for i, channel in enumerate(sorted(newest)):
        _, body = await client.get(
            conn,
            f"/channels/{channel}/poll?user=p{i}&conn=c{i}&cursor={cursor_before(newest[channel])}",
        )
        newest[channel] = json.loads(body)["cursor"]
    paths = [
        f"/channels/rps-poll-{i % 10}/poll?user=p{i}&conn=c{i}"
        f"&cursor={cursor_before(newest[f'rps-poll-{i % 10}'])}"
        for i in range(users)
    ]
    _, body = await client.get(conn, paths[0])
    assert len(json.loads(body)["events"]) == 1, body  # each poll answers one event, at once
    client.close()
    return paths


async def join_heartbeat_users(url: str, users: int) -> None:
    """Join the users of the heartbeat paths, so that each heartbeat refreshes a joined tab
    (a tab that is not joined would only measure the `rejoin` answer)."""
    client = Client(*_host_port(url))
    conn = await client.connect()
    for i in range(users):
        await client.get(conn, f"/channels/rps-hb-{i % 10}/join?user=h{i}&conn=c{i}")
    _, body = await client.get(conn, "/channels/rps-hb-0/heartbeat?user=h0&conn=c0")
    assert json.loads(body) == {"ok": True}, body
    client.close()


def cursor_id(cursor) -> int:
    """The event id of a cursor ("<epoch>:<id>", or a bare id as older nodes sent)."""
    return int(str(cursor).rsplit(":", 1)[-1])


def newer_cursor(a, b):
    """Whichever of two cursors of one log points further (None counts as oldest)."""
    return b if a is None or cursor_id(b) > cursor_id(a) else a


def cursor_before(cursor) -> str:
    """The cursor one event before `cursor`, in the same log."""
    head, _, ident = str(cursor).rpartition(":")
    return f"{head}:{int(ident) - 1}" if head else str(int(ident) - 1)


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.rsplit("//", 1)[1].split(":")
    return host, int(port)


def bench_rps(args) -> None:
    conns = 50
    heartbeat = [f"/channels/rps-hb-{i % 10}/heartbeat?user=h{i}&conn=c{i}" for i in range(conns)]
    results = {"hello": [], "heartbeat": [], "poll": [], "heartbeat, access log on": []}
    with (
        tornado_app() as (hello_url, hello),
        service() as (svc_url, svc),
        service(log_level="info") as (logged_url, logged),
    ):
        poll = run(joined_poll_paths(svc_url, conns))
        for url in (svc_url, logged_url):
            run(join_heartbeat_users(url, conns))
        runs = [
            ("hello", hello_url, ["/"], hello),
            ("heartbeat", svc_url, heartbeat, svc),
            ("poll", svc_url, poll, svc),
            ("heartbeat, access log on", logged_url, heartbeat, logged),
        ]
        for r in range(args.rps_rounds):
            for name, url, paths, proc in runs if r % 2 == 0 else runs[::-1]:
                got = run(hammer(url, paths, conns, args.rps_seconds, server_pid=proc.pid))
                got["cpu_us"] = got["server_cpu_s"] / max(got["requests"], 1) * 1e6
                results[name].append(got)
                print(
                    f"  rps round {r + 1} {name}: {got['rps']:.0f}/s, p99 {got['p99_ms']:.1f} ms,"
                    f" server CPU {got['cpu_us']:.0f} us/request, errors {got['errors']}",
                    file=sys.stderr,
                    flush=True,
                )
    print(
        f"\n### Requests per second, one node ({conns} keep-alive connections, "
        f"{args.rps_rounds} alternating rounds of {args.rps_seconds:g} s, medians)\n"
    )
    print(
        "| handler | requests/s | p50 latency | p99 latency | errors | ratio to hello world "
        "| ratio min-max | server CPU per request (node + store) | CPU ratio (hello / this) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    hello = results["hello"]
    for name, label in (
        ("hello", "Tornado hello world (baseline)"),
        ("heartbeat", "presence heartbeat (bundled store)"),
        ("poll", "presence poll answered at once (bundled store)"),
        ("heartbeat, access log on", "presence heartbeat, --log-level info"),
    ):
        got = results[name]
        ratios = [g["rps"] / h["rps"] for g, h in zip(got, hello, strict=False)]
        ratio = median(ratios)
        cpu_ratio = median([h["cpu_us"] / g["cpu_us"] for g, h in zip(got, hello, strict=False)])
        print(
            f"| {label} | {median([g['rps'] for g in got]):,.0f} "
            f"| {median([g['p50_ms'] for g in got]):.1f} ms "
            f"| {median([g['p99_ms'] for g in got]):.1f} ms | {sum(g['errors'] for g in got)} "
            f"| {ratio:.2f}x | {min(ratios):.2f}-{max(ratios):.2f}x "
            f"| {median([g['cpu_us'] for g in got]):.0f} us | {cpu_ratio:.2f}x |"
        )


# ---------------------------------------------------------------- capacity


async def memory_per_user(url: str, users: int) -> float:
    """used_memory bytes per online user (one tab, 10 users per channel) in the store at `url`."""
    from presence.service.gateway import Gateway

    gateway = Gateway.from_url(url)
    try:
        await gateway.redis.flushall()
        before = (await gateway.redis.info("memory"))["used_memory"]
        gate = asyncio.Semaphore(200)

        async def one(i: int) -> None:
            async with gate:
                info = '{"name":"User %d"}' % i
                await gateway.register(f"cap{i // 10}", f"u{i}", f"c{i}", int(time.time() * 1000),
                                       30_000, info)  # fmt: skip

        await asyncio.gather(*(one(i) for i in range(users)))
        return ((await gateway.redis.info("memory"))["used_memory"] - before) / users
    finally:
        await gateway.close()


def store_pid_of(port: int) -> int:
    """The pid of the Redis-compatible server on `port` (INFO server's process_id)."""
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "server"], capture_output=True,
                         text=True).stdout  # fmt: skip
    return int(out.split("process_id:")[1].split()[0])


def capacity_of(port: int, args) -> dict:
    """CPU per heartbeat and per poll of one node and of the store on `port`, and the store's
    memory per online user."""
    conns = 50
    heartbeat = [f"/channels/cap-hb-{i % 10}/heartbeat?user=h{i}&conn=c{i}" for i in range(conns)]
    rows: dict[str, list[dict]] = {"heartbeat": [], "poll": []}
    store_pid = store_pid_of(port)
    with service(f"redis://127.0.0.1:{port}/0") as (url, proc):
        poll = run(joined_poll_paths(url, conns))
        run(join_heartbeat_users(url, conns))
        for r in range(args.rps_rounds):
            for name, paths in (("heartbeat", heartbeat), ("poll", poll)):
                store0 = own_cpu_seconds(store_pid)
                got = run(hammer(url, paths, conns, args.rps_seconds, server_pid=proc.pid))
                requests = max(got["requests"], 1)
                got["node_us"] = got["server_cpu_s"] / requests * 1e6
                got["store_us"] = (own_cpu_seconds(store_pid) - store0) / requests * 1e6
                rows[name].append(got)
                print(f"  capacity round {r + 1} {name}: {got['rps']:.0f}/s, node "
                      f"{got['node_us']:.0f} us, store {got['store_us']:.1f} us per request",
                      file=sys.stderr, flush=True)  # fmt: skip
    memory = run(memory_per_user(f"redis://127.0.0.1:{port}/0", args.capacity_users))
    return {"rows": rows, "memory": memory}


def bench_capacity(args) -> None:
    """What one node process and one store can hold: CPU per poll and heartbeat on each side
    (the store in a process of its own, so the two are apart), memory per online user."""
    found = {}
    with redis_server() as port:
        found["redis-server"] = capacity_of(port, args)
    with bundled_store("--keys-expire-notify", "presence:expired") as port:
        found["bundled store"] = capacity_of(port, args)
    print(f"\n### Capacity of one node process and one store ({args.rps_rounds} rounds, medians)\n")
    print("| store | request | node CPU per request | store CPU per request "
          "| requests/s per node core | requests/s per store core | store memory per online user |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for store, got in found.items():
        for name, reps in got["rows"].items():
            node_us = median([g["node_us"] for g in reps])
            store_us = median([g["store_us"] for g in reps])
            print(f"| {store} | {name} | {node_us:.0f} us | {store_us:.1f} us "
                  f"| {1e6 / node_us:,.0f} | {1e6 / store_us:,.0f} "
                  f"| {got['memory']:,.0f} B ({args.capacity_users:,} users) |")  # fmt: skip


# ---------------------------------------------------------------- memory per held poll


async def hold_requests(url: str, paths: list[str], count_held, want: int) -> list:
    """Open one connection per path, send it, and return once `count_held()` reaches `want`."""
    client = Client(*_host_port(url))
    gate = asyncio.Semaphore(100)
    held = []

    async def one(path: str) -> None:
        async with gate:
            conn = await client.connect()
            held.append(conn.request(path, 3600, client.loop))  # sent now, answered never

    await asyncio.gather(*(one(p) for p in paths))
    deadline, last, stable = time.monotonic() + 120, -1, 0
    while time.monotonic() < deadline and stable < 20:  # all held, or no change for 10 s
        now = count_held()
        if now >= want:
            break
        stable, last = (stable + 1 if now == last else 0), now
        await asyncio.sleep(0.5)
    await asyncio.sleep(1)
    return [client, held]


async def join_all(url: str, n: int) -> list[str]:
    """Join n users (10 per channel); return poll paths with each channel's newest cursor."""
    client = Client(*_host_port(url))
    newest: dict[str, str] = {}
    queue = list(range(n))

    async def worker() -> None:
        conn = await client.connect()
        while queue:
            i = queue.pop()
            channel = f"mem-{i // 10}"
            _, body = await client.get(conn, f"/channels/{channel}/join?user=u{i}&conn=c{i}")
            newest[channel] = newer_cursor(newest.get(channel), json.loads(body)["cursor"])

    await asyncio.gather(*(worker() for _ in range(50)))
    client.close()
    return [
        f"/channels/mem-{i // 10}/poll?user=u{i}&conn=c{i}&cursor={newest[f'mem-{i // 10}']}"
        for i in range(n)
    ]


def pending_polls(url: str) -> int:
    for line in get_text(url + "/metrics").splitlines():
        if line.startswith("presence_pending_polls"):
            return int(line.rsplit(" ", 1)[1])
    return 0


async def warm_up(url: str, paths: list[str]) -> None:
    await hammer(url, paths, 20, 1.0, warmup=0.5)


def memory_round(kind: str, n: int) -> dict:
    if kind == "tornado":
        with tornado_app() as (url, proc):
            run(warm_up(url, ["/"]))
            base = rss_bytes(proc.pid)

            async def hold():
                client, _ = await hold_requests(
                    url, ["/hold"] * n, lambda: int(get_text(url + "/held")), n
                )
                held, rss = int(get_text(url + "/held")), rss_bytes(proc.pid)
                client.close()
                return held, rss

            held, rss = run(hold())
    else:
        # polls must stay held while measured: long poll timeout, longer presence timeout
        with service(timeout=600, poll_timeout=500) as (url, proc):
            run(warm_up(url, [f"/channels/warm/heartbeat?user=w{i}&conn=c" for i in range(20)]))
            base = rss_bytes(proc.pid)

            async def hold():
                paths = await join_all(url, n)
                joined = rss_bytes(proc.pid)
                client, _ = await hold_requests(url, paths, lambda: pending_polls(url), n)
                held, rss = pending_polls(url), rss_bytes(proc.pid)
                client.close()
                return held, rss, joined

            held, rss, joined = run(hold())
            return {
                "held": held,
                "base": base,
                "joined": joined,
                "rss": rss,
                "per_poll": (rss - base) / max(held, 1),
                "per_poll_after_join": (rss - joined) / max(held, 1),
            }
    return {"held": held, "base": base, "rss": rss, "per_poll": (rss - base) / max(held, 1)}


def bench_memory(args) -> None:
    n = args.held
    results = {"tornado": [], "service": []}
    for r in range(args.memory_rounds):
        for kind in ("tornado", "service") if r % 2 == 0 else ("service", "tornado"):
            got = memory_round(kind, n)
            results[kind].append(got)
            print(
                f"  memory round {r + 1} {kind}: {got['held']} held, "
                f"{got['per_poll'] / 1024:.1f} KiB each",
                file=sys.stderr,
                flush=True,
            )
    print(
        f"\n### Memory per held long-poll ({n:,} held requests, one connection each, "
        f"{args.memory_rounds} rounds, medians)\n"
    )
    print(
        "| process | held | RSS before | RSS held | per held request | of which after joining "
        "| ratio to Tornado |"
    )
    print("|---|---|---|---|---|---|---|")
    tornado = median([g["per_poll"] for g in results["tornado"]])
    for kind, label in (
        ("tornado", "bare Tornado app (baseline)"),
        ("service", "presence serve (bundled store not counted)"),
    ):
        got = results[kind]
        per = median([g["per_poll"] for g in got])
        after = median([g.get("per_poll_after_join") for g in got])
        print(
            f"| {label} | {min(g['held'] for g in got):,} "
            f"| {median([g['base'] for g in got]) / 2**20:.1f} MiB "
            f"| {median([g['rss'] for g in got]) / 2**20:.1f} MiB | {per / 1024:.1f} KiB "
            f"| {'-' if after is None else f'{after / 1024:.1f} KiB'} | {per / tornado:.2f}x |"
        )


# ---------------------------------------------------------------- workers


WRK_SCRIPT = """
local paths = {%s}
local requests = {}
local i = 0
function init(args)
  for k, path in ipairs(paths) do requests[k] = wrk.format("GET", path) end
end
function request()
  i = i %% #requests + 1
  return requests[i]
end
"""


def own_cpu_seconds(pid: int) -> float:
    """CPU seconds of process `pid` alone (not its children); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy (not idle or waiting for I/O) since boot."""
    with open("/proc/stat") as fh:
        ticks = [int(x) for x in fh.readline().split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def service_processes(pid: int) -> dict[int, str]:
    """`presence serve` process `pid` and its children: pid -> "store" or "node"."""
    found = {pid: "node"}
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = [int(c) for c in fh.read().split()]
    except OSError:
        return found
    for child in children:
        try:
            with open(f"/proc/{child}/cmdline", "rb") as fh:
                store = b"presence.store" in fh.read()
        except OSError:
            continue
        found[child] = "store" if store else "node"
    return found


def connections_per_process(pids, port: int) -> list[int]:
    """Established connections to local `port` held by each of `pids` (from /proc)."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    f = line.split()
                    if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == "01":
                        established.add(f[9])
        except OSError:
            pass
    counts = []
    for pid in pids:
        n = 0
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                n += target.startswith("socket:[") and target[8:-1] in established
        except OSError:
            pass
        counts.append(n)
    return counts


def _duration_ms(text: str) -> float:
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)


def wrk_round(url: str, paths: list[str], conns: int, seconds: float, sample) -> dict:
    """One closed-loop wrk run (one thread, `conns` connections, requests cycling through
    `paths`); calls `sample()` halfway. The figures hammer() returns, with client_cpu_s
    being wrk's own CPU time."""
    script = WRK_SCRIPT % ", ".join(json.dumps(p) for p in paths)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as fh:
        fh.write(script)
        fh.flush()
        cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "--timeout", "10s", "--latency"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.Popen([*cmd, "-s", fh.name, url], stdout=subprocess.PIPE, text=True)
        time.sleep(seconds / 2)
        sampled = sample()
        out, _ = proc.communicate()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}")
    found = {}
    for line in out.splitlines():
        f = line.split()
        if line.startswith("Requests/sec:"):
            found["rps"] = float(f[1])
        elif len(f) == 2 and f[0] in ("50%", "99%"):
            found[f[0]] = _duration_ms(f[1])
        elif "requests in" in line:
            found["requests"] = int(f[0])
            found["seconds"] = _duration_ms(f[3].rstrip(",")) / 1000
        elif line.strip().startswith(("Non-2xx", "Socket errors")):
            found["errors"] = found.get("errors", 0) + sum(
                int(x.rstrip(",")) for x in f if x.rstrip(",").isdigit()
            )
    return {
        "rps": found["rps"],
        "requests": found["requests"],
        "seconds": found["seconds"],
        "p50_ms": found.get("50%"),
        "p99_ms": found.get("99%"),
        "errors": found.get("errors", 0),
        "client_cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "sampled": sampled,
    }


def hammer_round(url: str, paths: list[str], conns: int, seconds: float, sample) -> dict:
    """One round of presence.bench.hammer (the rps section's generator), sampled halfway."""

    async def go():
        task = asyncio.ensure_future(hammer(url, paths, conns, seconds))
        await asyncio.sleep(1.0 + seconds / 2)  # hammer warms up for 1 s first
        sampled = sample()
        got = await task
        got["sampled"] = sampled
        return got

    return run(go())


def bench_workers(args) -> None:
    """Poll requests/s of --workers 2 over --workers 1, alternating rounds (see the docstring)."""
    conns, users = 50, 100
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "hammer"
    one_round = wrk_round if generator == "wrk" else hammer_round
    results: dict[int, list[dict]] = {1: [], 2: []}
    with contextlib.ExitStack() as stack:
        stores, store_pids = [None, None], [{}, {}]
        if args.workers_store == "redis":  # one redis-server each: the same keys in both
            import redis

            ports = [stack.enter_context(redis_server()) for _ in stores]
            stores = [f"redis://127.0.0.1:{port}/0" for port in ports]
            for pids, port in zip(store_pids, ports, strict=True):
                with redis.Redis(port=port) as client:
                    pids[client.info("server")["process_id"]] = "store"
        url1, proc1 = stack.enter_context(service(stores[0], workers=1))
        url2, proc2 = stack.enter_context(service(stores[1], workers=2))
        setups = {}
        for workers, url, proc in ((1, url1, proc1), (2, url2, proc2)):
            paths = run(joined_poll_paths(url, users))
            processes = service_processes(proc.pid) | store_pids[workers - 1]
            nodes = [p for p, kind in processes.items() if kind == "node" and p != proc.pid]
            setups[workers] = (url, paths, processes, nodes or [proc.pid])
            one_round(url, paths, conns, 1.0, lambda: None)  # warm-up
        for r in range(args.rps_rounds):
            for workers in (1, 2) if r % 2 == 0 else (2, 1):
                url, paths, processes, nodes = setups[workers]
                port = _host_port(url)[1]
                cpu0 = {p: own_cpu_seconds(p) for p in processes}
                machine0 = machine_busy_seconds()
                t0 = time.monotonic()
                got = one_round(
                    url,
                    paths,
                    conns,
                    args.rps_seconds,
                    lambda n=nodes, p=port: connections_per_process(n, p),
                )
                elapsed = time.monotonic() - t0
                cpu = {p: own_cpu_seconds(p) - cpu0[p] for p in processes}
                got["node_cores"] = (
                    sum(c for p, c in cpu.items() if processes[p] == "node") / elapsed
                )
                got["store_cores"] = (
                    sum(c for p, c in cpu.items() if processes[p] == "store") / elapsed
                )
                got["client_cores"] = got["client_cpu_s"] / got["seconds"]
                got["other_cores"] = (machine_busy_seconds() - machine0) / elapsed - (
                    got["node_cores"] + got["store_cores"] + got["client_cores"]
                )
                results[workers].append(got)
                print(
                    f"  workers round {r + 1} --workers {workers}: {got['rps']:.0f}/s, "
                    f"p99 {got['p99_ms']:.1f} ms, errors {got['errors']}, CPU cores: "
                    f"node(s) {got['node_cores']:.2f}, store {got['store_cores']:.2f}, "
                    f"{generator} {got['client_cores']:.2f}; connections per worker "
                    f"{'/'.join(map(str, got['sampled']))}",
                    file=sys.stderr,
                    flush=True,
                )
    ratios = [b["rps"] / a["rps"] for a, b in zip(results[1], results[2], strict=True)]
    cores = os.cpu_count() or 1
    print(
        f"\n### Workers: poll requests/s of `--workers 2` over `--workers 1` ({generator}"
        f"{', 1 thread' if generator == 'wrk' else ''}, {conns} keep-alive connections over "
        f"{users} joined users, {args.rps_rounds} alternating rounds of {args.rps_seconds:g} s, "
        f"medians; {'bundled store' if args.workers_store == 'bundled' else 'redis-server'}; "
        f"{cores} CPUs)\n"
    )
    print(
        "| workers | poll requests/s | p50 latency | p99 latency | errors | CPU cores: node(s) "
        "| store | load generator | all ours | other processes | polls per CPU-second of ours "
        "| connections per worker |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for workers in (1, 2):
        got = results[workers]
        total = [g["node_cores"] + g["store_cores"] + g["client_cores"] for g in got]
        print(
            f"| {workers} | {median([g['rps'] for g in got]):,.0f} "
            f"| {_ms(median([g['p50_ms'] for g in got]))} | {_ms(median([g['p99_ms'] for g in got]))} "
            f"| {sum(g['errors'] for g in got)} | {median([g['node_cores'] for g in got]):.2f} "
            f"| {median([g['store_cores'] for g in got]):.2f} "
            f"| {median([g['client_cores'] for g in got]):.2f} | {median(total):.2f} "
            f"| {median([g['other_cores'] for g in got]):.2f} "
            f"| {median([g['rps'] / t for g, t in zip(got, total, strict=True)]):,.0f} "
            f"| {' '.join('/'.join(map(str, g['sampled'])) for g in got)} |"
        )

    def per_request_us(workers: int, key: str) -> float:
        return median([g[key] / g["rps"] * 1e6 for g in results[workers]])

    node_us, store_us, client_us = (
        per_request_us(1, k) for k in ("node_cores", "store_cores", "client_cores")
    )
    ceiling = cores * 1e6 / (node_us + store_us + client_us)  # polls/s all cores could give
    client = median([g["client_cores"] for g in results[2]])
    others = median([g["other_cores"] for g in results[2]])
    efficiency = median(
        [
            (b["rps"] / (b["node_cores"] + b["store_cores"] + b["client_cores"]))
            / (a["rps"] / (a["node_cores"] + a["store_cores"] + a["client_cores"]))
            for a, b in zip(results[1], results[2], strict=True)
        ]
    )
    print(
        f"\n**poll requests/s ratio workers2/workers1: {median(ratios):.2f}x** "
        f"(per round {min(ratios):.2f}-{max(ratios):.2f}x; goal >= 1.6x on 2 cores)\n"
    )
    print(
        f"CPU per poll (--workers 1): node {node_us:.0f} us, store {store_us:.0f} us, "
        f"{generator} {client_us:.0f} us. The load generator took {client:.2f} of the {cores} "
        f"cores during the --workers 2 rounds, other processes on the machine {others:.2f}. "
        f"At these costs (node + store + generator) the {cores} cores give at most "
        f"{ceiling:,.0f} polls/s with nothing else running, "
        f"{ceiling / median([g['rps'] for g in results[1]]):.2f}x the --workers 1 figure; "
        f"its node used {median([g['node_cores'] for g in results[1]]):.2f} of a core. Polls per CPU-second of ours (nodes, store, generator), "
        f"--workers 2 over --workers 1: {efficiency:.2f}x (1.00: a second worker costs "
        f"nothing per poll; the ratio of requests/s then follows the CPU it gets)."
    )


# ---------------------------------------------------------------- main


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-tornado":
        serve_tornado(int(sys.argv[2]))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--only", default="lag,rps,memory", help="comma-separated: lag,rps,memory,workers,capacity"
    )
    p.add_argument("--quick", action="store_true", help="small sizes, one round: a smoke run")
    p.add_argument("--rounds", type=int, default=3, help="offline-lag rounds per store (3)")
    p.add_argument(
        "--timeout",
        type=float,
        default=30,
        help="presence --timeout of the lag runs (30, the default)",
    )
    p.add_argument(
        "--poll-timeout",
        type=float,
        default=25,
        help="presence --poll-timeout of the lag runs (25, the default)",
    )
    p.add_argument(
        "--duration", type=float, default=10, help="seconds over which the silent users stop (10)"
    )
    p.add_argument("--sizes", default="1000,10000", help="online users of the lag runs")
    p.add_argument(
        "--capacity-users", type=int, default=50000, help="online users of the memory count"
    )
    p.add_argument(
        "--answer-pace",
        type=float,
        default=0.05,
        help="presence --answer-pace of the lag runs (0.05, the default)",
    )
    p.add_argument(
        "--lag-stores",
        default=",".join(LAG_STORES),
        help="comma-separated stores of the lag runs: " + ", ".join(LAG_STORES),
    )
    p.add_argument(
        "--plot",
        metavar="PNG",
        help="write the offline-lag distributions of the lag runs to this PNG (needs matplotlib)",
    )
    p.add_argument("--held", type=int, default=10000, help="held polls of the memory runs")
    p.add_argument(
        "--rps-rounds", type=int, default=5, help="alternating rounds of the rps runs (5)"
    )
    p.add_argument(
        "--generator",
        choices=["auto", "wrk", "hammer"],
        default="auto",
        help="load generator of the workers runs: wrk when installed, else presence.bench's",
    )
    p.add_argument(
        "--workers-store",
        choices=["bundled", "redis"],
        default="bundled",
        help="store of the workers runs: the bundled one (as in rps) or a redis-server each",
    )
    args = p.parse_args()
    args.sizes = [int(n) for n in args.sizes.split(",")]
    args.rps_seconds = 5.0
    args.memory_rounds = 2
    if args.quick:
        args.sizes, args.rounds = [200], 1
        args.timeout, args.poll_timeout, args.duration = 5, 4, 3
        args.rps_rounds, args.rps_seconds = 1, 2.0
        args.memory_rounds, args.held, args.capacity_users = 1, 500, 2000
    limit = raise_open_files_limit()  # inherited by the servers started below
    print(
        f"# presence service benchmark ({time.strftime('%Y-%m-%d %H:%M')}, "
        f"{os.cpu_count()} CPUs, open-files limit {limit})"
    )
    only = set(args.only.split(","))
    sections = (
        ("lag", bench_lag),
        ("rps", bench_rps),
        ("memory", bench_memory),
        ("workers", bench_workers),
        ("capacity", bench_capacity),
    )
    for name, section in sections:
        if name in only:
            load = os.getloadavg()[0]
            section(args)
            print(f"\n(load average {load:.1f} before, {os.getloadavg()[0]:.1f} after)")


if __name__ == "__main__":
    main()
