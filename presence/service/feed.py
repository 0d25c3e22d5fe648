"""Node-local tails of event logs, and the long-polls waiting on them.

A Feed remembers the newest events this node has read from one log (a channel's, or the
global feed) and holds the polls waiting for more. When the log grows (a wake-up from the
store's pub/sub or from this node), the feed reads the store once and hands the new events
to every waiting poll, so N waiting polls cost one store read, not N.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Awaitable, Callable

from presence.service.gateway import LogSlice

log = logging.getLogger("presence.feed")

TAIL = 256  # events a feed keeps in memory


class Hold:
    """The handle of one held poll: cancel() ends its wait at once (the client went away).

    Cheaper than running each poll as its own task just to be able to cancel it.
    """

    __slots__ = ("future", "gone")

    def __init__(self) -> None:
        self.future: asyncio.Future | None = None
        self.gone = False

    def cancel(self) -> None:
        """Make the poll's current or next wait raise CancelledError."""
        self.gone = True
        if self.future is not None and not self.future.done():
            self.future.cancel()


class Feed:
    """The tail of one event log as this node has seen it, plus the polls waiting on it.

    Invariant: `tail` holds events with consecutive ids ending at `seq` (possibly none),
    all of the log of epoch `epoch`. `fetch(cursor, epoch)` reads the store.
    """

    def __init__(self, fetch: Callable[[int, str | None], Awaitable[LogSlice]]) -> None:
        self._fetch = fetch
        self.seq: int | None = None
        self.epoch: str | None = None
        self.tail: deque[dict] = deque(maxlen=TAIL)
        self._waiters: set[asyncio.Future] = set()
        self._refreshing: asyncio.Task | None = None
        self._stale = False
        self.users = 0  # polls holding this feed (it must not be dropped under them)
        self.pokes = 0  # how many times the log was announced to have grown
        self.covered = 0  # `pokes` as of the start of the last completed refresh

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def observe(self, got: LogSlice) -> None:
        """Merge what a store read returned into the tail."""
        if got.reset:  # the tail no longer matches the log; make readers go to the store
            self.seq = None
            self.tail.clear()
            return
        if self.seq is not None and got.epoch == self.epoch and got.seq < self.seq:
            return  # an older read finishing late (a store that lost its log reads as reset)
        if self.seq is None or got.epoch != self.epoch or got.cursor > self.seq:
            self.tail.clear()  # a gap between the tail and this read, or a new log: start over
            self.tail.extend(got.events)
            self.seq, self.epoch = got.seq, got.epoch
            return
        self.tail.extend(e for e in got.events if e["id"] > self.seq)
        self.seq = got.seq

    def events_after(self, cursor: int, epoch: str | None = None) -> list[dict] | None:
        """Events after `cursor` (of the log of `epoch`) from memory; None when memory cannot
        tell (read the store)."""
        if self.seq is None or epoch != self.epoch or cursor > self.seq:
            return None
        if cursor == self.seq:
            return []
        if not self.tail or self.tail[0]["id"] > cursor + 1:
            return None
        return [e for e in self.tail if e["id"] > cursor]

    async def wait(self, timeout: float, hold: Hold | None = None) -> bool:
        """Wait until the tail may have grown; False when `timeout` passed first.

        Raises CancelledError when `hold` is (or gets) cancelled; cancelling the caller
        works too. Either way the waiter is removed (no leak). One future and one timer
        handle per waiting poll: held polls are many, so this stays lean.
        """
        if hold is not None and hold.gone:
            raise asyncio.CancelledError
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if hold is not None:
            hold.future = future
        timer = loop.call_later(timeout, _expire, future)
        self._waiters.add(future)
        try:
            return await future
        finally:
            timer.cancel()
            self._waiters.discard(future)

    def wake(self) -> None:
        """Release every waiting poll now (they re-check the tail or the store)."""
        waiters, self._waiters = self._waiters, set()
        for future in waiters:
            if not future.done():
                future.set_result(True)

    def poke(self) -> None:
        """The log grew: refresh the tail once, then wake the waiters. Nothing if no one waits."""
        self.pokes += 1
        self._stale = True
        if not self._waiters:
            return  # every poll reads the store before it waits, so a stale tail is harmless
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh())

    async def _refresh(self) -> None:
        try:
            while self._stale:
                self._stale = False
                mark = self.pokes
                if self.seq is None:
                    break
                self.observe(await self._fetch(self.seq, self.epoch))
                self.covered = mark
        except Exception:  # the waiters will read the store themselves and report
            log.exception("refreshing a feed failed")
        finally:
            self.wake()


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(False)
