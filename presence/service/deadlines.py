"""Deadline timers: offline on time on a store whose expiry notices come late (Redis).

Redis announces an expired key when it deletes it: at once when the key is read after its
deadline, otherwise whenever its sampling of keys gets to it (seconds to minutes late with
many live keys). So the node that refreshed a user's presence key last arms a timer for the
key's deadline; when it fires the node reads the key's PTTL, which makes Redis expire it (and
announce it) right then, and claims the `offline` itself (once across nodes, as any claim).
A key refreshed meanwhile by another node is that node's to watch; a node that dies takes
its timers along, and the periodic sweep (every --timeout / 2) catches its users.

Timers share buckets of TICK seconds, one event-loop timer per non-empty bucket, and cost
one dict entry per online user of this node.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

TICK = 0.005  # seconds: a timer fires within TICK after its deadline
REARM_MAX_MS = 2000  # a key still alive this close to its deadline is looked at again then

UserKey = tuple[str, str]  # (channel, user)


class DeadlineTimers:
    """One timer per (channel, user), at the deadline of its presence key (wall clock, ms).

    `check(channel, user)` runs when a timer fires; it returns the key's remaining TTL
    in ms (-2: gone), and the timer is armed again when that is short (the store's
    deadline can be a little later than ours: it set the TTL when the refresh arrived).
    """

    def __init__(self, check: Callable[[str, str], Awaitable[int]],
                 clock: Callable[[], float], tick: float = TICK) -> None:  # fmt: skip
        self.check = check
        self.clock = clock
        self.tick = tick
        self.deadlines: dict[UserKey, int] = {}  # the latest deadline armed per user
        self.buckets: dict[int, list[UserKey]] = {}
        self.tasks: set[asyncio.Task] = set()

    def __len__(self) -> int:
        return len(self.deadlines)

    def arm(self, channel: str, user: str, deadline: int) -> None:
        """Fire for (channel, user) at `deadline` (ms since the epoch), replacing any earlier."""
        key = (channel, user)
        self.deadlines[key] = deadline
        loop = asyncio.get_running_loop()
        bucket = math.ceil((loop.time() + deadline / 1000 - self.clock()) / self.tick)
        users = self.buckets.get(bucket)
        if users is None:
            users = self.buckets[bucket] = []
            loop.call_at(bucket * self.tick, self._fire, bucket)
        users.append(key)

    def disarm(self, channel: str, user: str) -> None:
        self.deadlines.pop((channel, user), None)

    def cancel_all(self) -> None:
        self.deadlines.clear()
        self.buckets.clear()
        for task in self.tasks:
            task.cancel()

    def _fire(self, bucket: int) -> None:
        now = self.clock() * 1000
        for key in self.buckets.pop(bucket, ()):
            deadline = self.deadlines.get(key)
            if deadline is not None and deadline <= now + self.tick * 1000:
                del self.deadlines[key]
                task = asyncio.ensure_future(self._check(key))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _check(self, key: UserKey) -> None:
        try:
            remaining = await self.check(*key)
        except Exception:  # the store is away: the sweep after it comes back takes over
            return
        if 0 <= remaining <= REARM_MAX_MS and key not in self.deadlines:
            self.arm(key[0], key[1], int(self.clock() * 1000) + remaining + 1)
