"""What a node tells the other nodes and the operators: its registration and the history.

Every REGISTER_EVERY seconds a node announces itself (id, address, held polls, requests
per second, version; kept NODE_TTL seconds, so a node that dies drops out of /api/nodes
within that), hands the offline lags it recorded to the store, and offers to write the
history point of the newest finished interval. Exactly one node writes each point (the
winner of a SET NX): the events of the interval come from the global feed's counter (every
node's events), the lags from every node's hand-over, the users from the USERS zset.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

import presence
from presence.service.model import Presence
from presence.service.records import StoreUnavailable

log = logging.getLogger("presence.nodes")

REGISTER_EVERY = 2.0  # seconds between two announcements of a node
NODE_TTL = 10.0  # seconds an announcement lasts
HISTORY_KEPT = 8640  # points kept: one day at 10 s


class NodeReporter:
    """Announces one node and writes its share of the history until stop()."""

    def __init__(
        self,
        model: Presence,
        node: str,
        address: str,
        every: float = REGISTER_EVERY,
    ) -> None:
        self.model = model
        self.node = node
        self.address = address
        self.every = every
        self.interval = model.history_interval
        self.started = model.now()
        self._requests = (model.stats.requests, time.monotonic())
        self._written = -1  # the newest interval whose point this node offered to write
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.report()
            except StoreUnavailable as exc:
                log.debug("cannot report to the store: %r", exc)
            except Exception:
                log.exception("node report failed")
            await asyncio.sleep(self.every)

    async def report(self) -> None:
        """Announce this node, hand over its lags, and write a finished point if it wins."""
        gateway, now = self.model.gateway, self.model.now()
        await gateway.register_node(self.node, self.record(now), now, int(NODE_TTL * 1000))
        interval_ms = self.interval * 1000
        lags = self.model.stats.take_lags()
        if lags:
            await gateway.add_lags(now // interval_ms, lags, 4 * interval_ms + 60_000)
        finished = math.floor((now - self.settle_ms) / interval_ms) - 1
        if finished > self._written:
            self._written = finished
            if await gateway.claim_history_point(finished, self.node, 2 * interval_ms + 60_000):
                await self.write_point(finished)

    @property
    def settle_ms(self) -> int:
        """How long after an interval's end its point is written: every node has handed
        over its lags of it by then."""
        return int((self.every + 1) * 1000)

    def record(self, now: int) -> dict:
        """This node's registration record."""
        count, since = self._requests
        moment = time.monotonic()
        requests = self.model.stats.requests
        rate = (requests - count) / (moment - since) if moment > since else 0.0
        self._requests = (requests, moment)
        return {
            "id": self.node,
            "address": self.address,
            "held_polls": self.model.pending,
            "requests_per_s": round(rate, 1),
            "version": presence.__version__,
            "started": self.started,
            "seen": now,
        }

    async def write_point(self, interval: int) -> None:
        """Write the history point of `interval` (this node won its claim)."""
        gateway = self.model.gateway
        seq, users, lags, last = await gateway.history_inputs(interval)
        interval_ms = self.interval * 1000
        ts = interval * interval_ms
        follows = last is not None and last["ts"] == ts - interval_ms and seq >= last["seq"]
        lags.sort()
        point = {
            "ts": ts,
            "events": seq - last["seq"] if follows and last is not None else None,
            "offline_lag_p50_ms": _percentile(lags, 0.50),
            "offline_lag_p99_ms": _percentile(lags, 0.99),
            "users": users,
            "seq": seq,
        }
        await gateway.add_history_point(point, HISTORY_KEPT)


def _percentile(ordered: list[int], fraction: float) -> int | None:
    """The nearest-rank percentile of sorted values; None when there are none."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]
