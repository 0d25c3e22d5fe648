"""How late the graces end: from a dropped held poll (or a leave) + the grace to the event.

    .venv/bin/python bench/grace_bench.py [--users 50] [--grace 0.5]

For the bundled store (with `keys-expire-notify`, as `presence serve` starts it) and for
redis-server (deadline timers), `--users` users each hold a poll whose connection closes
(the disconnect grace) and as many leave (the leave grace); a watcher's node records when
each `offline` / `leave` lands. Reports the lag after the grace's end (p50, p99, max, ms)
and the ratio redis-server / bundled store.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from presence.service.feed import Hold
from presence.service.gateway import Gateway
from presence.service.keys import EXPIRY_CHANNEL
from presence.service.model import Presence
from presence.service.subscriber import Subscriber
from presence.testing import bundled_store, redis_server


async def measure(url: str, users: int, grace: float) -> dict[str, list[float]]:
    node = Presence(Gateway.from_url(url), timeout=30, poll_timeout=20,
                    leave_grace=grace, disconnect_grace=grace)  # fmt: skip
    subscriber = Subscriber(node, sweep_interval=60)
    await subscriber.start()
    try:
        ends: dict[tuple[str, str], float] = {}
        holds = []
        for i in range(users):
            for kind in ("offline", "leave"):
                joined = await node.join("room", f"{kind}{i}", "t", None)
                if kind == "offline":
                    cursor = await node.poll("room", f"{kind}{i}", "t", joined["cursor"])
                    hold = Hold()
                    await node.start_poll("room", f"{kind}{i}", "t", cursor["cursor"], hold)
                    holds.append((f"{kind}{i}", hold))
        start = (await node.gateway.read_channel("room", 0)).seq
        for user, hold in holds:
            hold.cancel()
            await node.tab_dropped("room", user, "t", hold)
            ends[("offline", user)] = time.time() + grace
        for i in range(users):
            await node.leave("room", f"leave{i}", "t")
            ends[("leave", f"leave{i}")] = time.time() + grace
        lags: dict[str, list[float]] = {"offline": [], "leave": []}
        deadline = time.monotonic() + grace + 10
        cursor = start
        while sum(map(len, lags.values())) < 2 * users and time.monotonic() < deadline:
            got = await node.gateway.read_channel("room", cursor)
            for event in got.events:
                end = ends.get((event["type"], event["user"]))
                if end is not None:
                    lags[event["type"]].append(event["ts"] - end * 1000)
            cursor = got.seq
            await asyncio.sleep(0.01)
        return lags
    finally:
        await subscriber.stop()
        await node.gateway.close()


def summary(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (f"n={len(ordered)} p50 {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms, "
            f"max {ordered[-1]:.1f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--grace", type=float, default=0.5)
    args = parser.parse_args()
    results = {}
    with bundled_store("--keys-expire-notify", EXPIRY_CHANNEL) as port:
        results["bundled store"] = asyncio.run(
            measure(f"redis://127.0.0.1:{port}/0", args.users, args.grace)
        )
    with redis_server() as port:
        results["redis-server"] = asyncio.run(
            measure(f"redis://127.0.0.1:{port}/0", args.users, args.grace)
        )
    for store, lags in results.items():
        for kind, values in lags.items():
            print(f"{store:14} {kind:8} after the grace: {summary(values)}")
    for kind in ("offline", "leave"):
        base = statistics.median(results["bundled store"][kind] or [0]) or 1
        other = statistics.median(results["redis-server"][kind] or [0])
        print(f"{kind}: redis-server / bundled store median lag = {other / base:.2f}")


if __name__ == "__main__":
    main()
