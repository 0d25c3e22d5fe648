"""Benchmark the store's HyperLogLog and GEO commands against a redis-server of the same run.

    .venv/bin/python bench/hll_bench.py [--rounds 5] [--quick]

Each workload runs on both servers, alternately, `--rounds` times; the report gives each
server's median wall time and the ratio store / redis-server (so the figures hold on a
noisy, shared machine). One client, one connection, one command at a time (no pipelining),
so the times include a loopback round trip per command:

* pfadd-sparse: 100 PFADDs of 10 new elements each into one key (stays sparse);
* pfadd-1000: 100 PFADDs of 1,000 new elements each into one key (sparse, then dense);
* pfcount-cached / pfcount-stale: 1,000 PFCOUNTs of a dense key, with the cached
  cardinality valid, and after a PFADD that changed it (each PFCOUNT recomputes);
* pfcount-3keys: 1,000 PFCOUNTs of the union of three dense keys;
* pfmerge: 200 PFMERGEs of three dense keys;
* geoadd: 100 GEOADDs of 100 points each;
* geosearch: 1,000 GEOSEARCH BYRADIUS 200 km WITHDIST on 10,000 points;
* georadius-count: 1,000 GEORADIUS 1000 km COUNT 10 on 10,000 points.

Both servers are throwaway processes on free loopback ports; nothing else is touched.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack

import redis

from presence.testing import bundled_store, redis_server

Workload = tuple[Callable[[redis.Redis], None], Callable[[redis.Redis], None]]


def _elements(rng: random.Random, n: int) -> list[str]:
    return [f"e{rng.getrandbits(64)}" for _ in range(n)]


def _dense(r: redis.Redis, key: str, rng: random.Random) -> None:
    r.delete(key)
    r.pfadd(key, *_elements(rng, 5000))


def _points(rng: random.Random, n: int) -> list:
    out: list = []
    for i in range(n):
        out += [rng.uniform(-20, 20), rng.uniform(-20, 20), f"p{i}"]
    return out


def workloads(scale: int) -> dict[str, Workload]:
    """name -> (setup, timed run); the same seed on both servers."""

    def pfadd(per: int, times: int) -> Workload:
        def setup(r):
            r.delete("h")

        def run(r):
            rng = random.Random(1)
            for _ in range(times // scale):
                r.pfadd("h", *_elements(rng, per))

        return setup, run

    def pfcount_cached() -> Workload:
        def setup(r):
            _dense(r, "d", random.Random(2))
            r.pfcount("d")

        def run(r):
            for _ in range(1000 // scale):
                r.pfcount("d")

        return setup, run

    def pfcount_stale() -> Workload:
        def setup(r):
            _dense(r, "d", random.Random(2))

        def run(r):
            rng = random.Random(3)
            for _ in range(1000 // scale):
                r.pfadd("d", *_elements(rng, 1))
                r.pfcount("d")

        return setup, run

    def union(command: str, times: int) -> Workload:
        def setup(r):
            rng = random.Random(4)
            for key in ("a", "b", "c"):
                _dense(r, key, rng)

        def run(r):
            for _ in range(times // scale):
                if command == "count":
                    r.pfcount("a", "b", "c")
                else:
                    r.pfmerge("m", "a", "b", "c")

        return setup, run

    def geoadd() -> Workload:
        def setup(r):
            r.delete("g")

        def run(r):
            rng = random.Random(5)
            for _ in range(100 // scale):
                r.execute_command("GEOADD", "g", *_points(rng, 100))

        return setup, run

    def geo_query(args: list) -> Workload:
        def setup(r):
            r.delete("g")
            points = _points(random.Random(6), 10_000)
            for i in range(0, len(points), 3000):
                r.execute_command("GEOADD", "g", *points[i : i + 3000])

        def run(r):
            rng = random.Random(7)
            for _ in range(1000 // scale):
                lon, lat = rng.uniform(-20, 20), rng.uniform(-20, 20)
                r.execute_command(*[lon if a == "LON" else lat if a == "LAT" else a for a in args])

        return setup, run

    return {
        "pfadd-sparse": pfadd(10, 100),
        "pfadd-1000": pfadd(1000, 100),
        "pfcount-cached": pfcount_cached(),
        "pfcount-stale": pfcount_stale(),
        "pfcount-3keys": union("count", 1000),
        "pfmerge": union("merge", 200),
        "geoadd": geoadd(),
        "geosearch": geo_query(
            ["GEOSEARCH", "g", "FROMLONLAT", "LON", "LAT", "BYRADIUS", 200, "km", "WITHDIST"]
        ),
        "georadius-count": geo_query(["GEORADIUS", "g", "LON", "LAT", 1000, "km", "COUNT", 10]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a tenth of each workload, 2 rounds")
    args = parser.parse_args()
    scale, rounds = (10, 2) if args.quick else (1, args.rounds)
    with ExitStack() as stack:
        store_port = stack.enter_context(bundled_store())
        redis_port = stack.enter_context(redis_server())
        clients = {
            "store": redis.Redis(port=store_port, protocol=2),
            "redis": redis.Redis(port=redis_port, protocol=2),
        }
        print(f"{'workload':18} {'store ms':>10} {'redis ms':>10} {'ratio':>7}")
        for name, (setup, run) in workloads(scale).items():
            times: dict[str, list[float]] = {"store": [], "redis": []}
            for _ in range(rounds):
                for server, client in clients.items():
                    setup(client)
                    start = time.perf_counter()
                    run(client)
                    times[server].append(time.perf_counter() - start)
            ours, theirs = (statistics.median(times[s]) * 1000 for s in ("store", "redis"))
            print(f"{name:18} {ours:10.1f} {theirs:10.1f} {ours / theirs:6.1f}x", flush=True)


if __name__ == "__main__":
    main()
