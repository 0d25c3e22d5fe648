"""Node-local tails of event logs, the long-polls held on them, and when those time out.

A Feed remembers the newest events this node has read from one log (a channel's, or the
global feed) and owns the polls waiting for more: it holds them, and when the log grows (a
wake-up from the store's pub/sub or from this node) it reads the store once and answers
every held poll from what it read (or holds it again), so N held polls cost one store read,
not N. What the feeds of a node share (the poll timeout, the timer wheel, whether the node
is closing) is one Waits.

A held poll is one Hold: a small object with one future (the poll's answer), and no
coroutine, task or timer of its own; held polls are many (one per open browser tab), so
each costs a few hundred bytes. Their timeouts come from one TimerWheel per node, which
answers the holds due in the same TICK together, with one event-loop timer per bucket.

A feed answers its polls in turns at least PACE apart. A message into a quiet channel is
answered at once; under a stream of them (more than one per PACE), the wake-ups and the
polls that come back meanwhile wait for the feed's next turn, and each answer carries the
events of one PACE: one poll per tab per PACE instead of one per event, which is what a
node can serve. See Feed.pace.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from presence.service.names import format_cursor
from presence.service.records import LogSlice

log = logging.getLogger("presence.feed")

TAIL = 256  # events a feed keeps in memory
TICK = 0.05  # seconds: a held poll times out within [poll_timeout, poll_timeout + TICK)
PACE = 0.05  # seconds: a feed answers its polls at most once per PACE (Feed.pace); 0: off


class Hold:
    """One held poll: its answer to be (`future`), where it waits and from which position.

    cancel() ends it at once (the client went away): its future is cancelled and it
    leaves its feed and the timer wheel. `cursor` and `epoch` are the position it waits
    after; `feed` the feed it is counted on (None before it is held, and once finished).
    """

    __slots__ = ("future", "gone", "feed", "cursor", "epoch", "due", "slot", "refreshed", "tab")

    def __init__(self) -> None:
        self.future: asyncio.Future | None = None
        self.refreshed: int | None = None  # the tab's deadline (ms) its poll's refresh set
        self.gone = False
        self.feed: Feed | None = None
        self.cursor = 0
        self.epoch: str | None = None
        self.due = 0  # the timer wheel's bucket (an index of TICKs)
        self.slot: set | None = None  # that bucket's set of holds, while in it
        self.tab: tuple[str, str, str] | None = None  # (channel, user, conn) of a client poll

    def __await__(self) -> Generator[Any, None, Any]:
        assert self.future is not None, "a Hold is awaited only once held"
        return self.future.__await__()

    def cancel(self) -> None:
        """Make the poll's wait raise CancelledError now (or as soon as it would wait)."""
        self.gone = True
        if self.future is not None and not self.future.done():
            self.future.cancel()
        self.release()

    def answer(self, value: object) -> None:
        """Resolve the poll with `value` (once) and release it."""
        if self.future is not None and not self.future.done():
            self.future.set_result(value)
        self.release()

    def fail(self, exc: BaseException) -> None:
        if self.future is not None and not self.future.done():
            self.future.set_exception(exc)
        self.release()

    def release(self) -> None:
        """Leave the timer wheel and the feed (idempotent)."""
        if self.slot is not None:
            self.slot.discard(self)
            self.slot = None
        feed, self.feed = self.feed, None
        if feed is not None:
            feed.finished(self)


class TimerWheel:
    """Times out held polls in buckets of TICK seconds: one loop timer per non-empty bucket.

    `expire(hold)` is called for every hold still in a bucket when its time comes.
    """

    def __init__(self, expire: Callable[[Hold], None], tick: float = TICK) -> None:
        self.expire = expire
        self.tick = tick
        self.buckets: dict[int, set[Hold]] = {}

    def due(self, deadline: float) -> int:
        """The bucket of a deadline (loop time): the first tick at or after it."""
        return math.ceil(deadline / self.tick)

    def add(self, hold: Hold) -> None:
        bucket = self.buckets.get(hold.due)
        if bucket is None:
            bucket = self.buckets[hold.due] = set()
            loop = asyncio.get_running_loop()
            loop.call_at(hold.due * self.tick, self._fire, hold.due)
        bucket.add(hold)
        hold.slot = bucket

    def _fire(self, due: int) -> None:
        bucket = self.buckets.pop(due, ())
        for hold in list(bucket):
            hold.slot = None
            self.expire(hold)

    def __len__(self) -> int:
        return sum(len(b) for b in self.buckets.values())


class Waits:
    """What every feed of one node shares: the poll timeout, the timer wheel that answers
    held polls when it passes, and whether the node is closing (polls then answer at once
    with a reconnect hint)."""

    def __init__(self, poll_timeout: float = 25.0) -> None:
        self.poll_timeout = poll_timeout
        self.closing = False
        self.wheel = TimerWheel(self._expire)
        self.rereads: set[asyncio.Task] = set()  # held polls re-reading the store
        self.held = 0  # polls held on every feed of the node (see Feed.held)

    @staticmethod
    def _expire(hold: Hold) -> None:
        """The poll timeout of `hold` passed: answer it with no events."""
        hold.answer({"cursor": format_cursor(hold.epoch, hold.cursor), "events": []})


class Feed:
    """The tail of one event log as this node has seen it, plus the polls held on it.

    Invariant: `tail` holds events with consecutive ids ending at `seq` (possibly none),
    all of the log of epoch `epoch`. `fetch(cursor, epoch)` reads the store; `reset()`
    makes the answer of a poll whose cursor is outside the log (the members to start over
    from: the domain's to read).
    """

    __slots__ = (
        "_fetch",
        "waits",
        "_reset",
        "seq",
        "epoch",
        "tail",
        "_waiters",
        "_refreshing",
        "_stale",
        "users",
        "held",
        "pokes",
        "covered",
        "key",
        "_last",
        "paced_until",
        "_turn",
        "pace_interval",
    )

    def __init__(
        self,
        fetch: Callable[[int, str | None], Awaitable[LogSlice]],
        waits: Waits | None = None,
        key: str | None = None,
        pace: float = PACE,
        reset: Callable[[], Awaitable[dict]] | None = None,
    ) -> None:
        self._fetch = fetch
        self.waits = waits or Waits()
        self._reset = reset or _empty_reset
        self.pace_interval = pace  # seconds between two turns (0: every wake-up at once)
        self.key = key  # the channel (None: the global feed)
        self.seq: int | None = None
        self.epoch: str | None = None
        self.tail: deque[dict] = deque(maxlen=TAIL)
        self._waiters: set[Hold] = set()
        self._refreshing: asyncio.Task | None = None
        self._stale = False
        self.users = 0  # polls in progress or held on this feed (it must not be dropped)
        self.held = 0  # polls held on this feed (waiting, or re-reading after a wake-up)
        self.pokes = 0  # how many times the log was announced to have grown
        self.covered = 0  # `pokes` as of the start of the last completed refresh
        self._last: tuple | None = None  # events_after's last answer: (cursor, seq, epoch, list)
        self.paced_until = 0.0  # loop time of the feed's next turn (see pace)
        self._turn: asyncio.Future | None = None  # resolves at that turn, while awaited

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def holds(self) -> list[Hold]:
        """The polls held here now."""
        return list(self._waiters)

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

    def forget(self) -> None:
        """Drop the tail (memory only: the next read goes to the store)."""
        self.seq = None
        self.tail.clear()
        self._last = None

    def events_after(self, cursor: int, epoch: str | None = None) -> list[dict] | None:
        """Events after `cursor` (of the log of `epoch`) from memory; None when memory cannot
        tell (read the store).

        The polls held on a feed usually wait at the same cursor, so one wake-up asks the
        same question for each: the answer is computed once and the same list returned
        while the tail ends at the same event (callers must not modify it). So the
        answers of one wake-up share their events list, and encoding them can be shared
        too (presence.web.base.encode_json).
        """
        seq = self.seq
        if seq is None or epoch != self.epoch or cursor > seq:
            return None
        if cursor == seq:
            return []
        last = self._last
        if last is not None and last[0] == cursor and last[1] == seq and last[2] == epoch:
            return last[3]
        tail = self.tail
        if not tail or tail[0]["id"] > cursor + 1:
            return None
        # ids are consecutive and end at seq: the answer is the tail's last seq - cursor
        count = seq - cursor
        events = list(itertools.islice(tail, len(tail) - count, None))
        if events[0]["id"] != cursor + 1:  # (the invariant says it cannot happen)
            events = [e for e in tail if e["id"] > cursor]
        self._last = (cursor, seq, epoch, events)
        return events

    # -- held polls ---------------------------------------------------------------------

    async def wait(self, got: LogSlice, seen: int, hold: Hold) -> dict | Hold:
        """The answer to a poll whose store read found `got`, or `hold`, now held here.

        `seen` is `pokes` from before the store read that produced `got`: a poke after it
        means the log may have grown since, so the store is read again (no lost wake-up).
        The poll times out poll_timeout after its first call here (the timer wheel
        answers it then). Raises CancelledError when `hold` was cancelled.
        """
        waits, loop = self.waits, asyncio.get_running_loop()
        cursor = got.cursor
        if not hold.due:
            hold.due = waits.wheel.due(loop.time() + waits.poll_timeout)
        while True:
            self.observe(got)
            if got.reset:
                return await self._reset()
            epoch = got.epoch  # a bare cursor (or one from before the log began) adopts it
            if got.events:
                return {"cursor": format_cursor(epoch, got.events[-1]["id"]), "events": got.events}
            if waits.closing:
                return {"cursor": format_cursor(epoch, cursor), "events": [], "reconnect": True}
            if self.pokes == seen:
                if hold.due * waits.wheel.tick <= loop.time():
                    return {"cursor": format_cursor(epoch, cursor), "events": []}
                hold.cursor, hold.epoch = cursor, epoch
                self.hold(hold)
                if hold.slot is None:
                    waits.wheel.add(hold)
                return hold
            seen, got = self.pokes, await self._fetch(cursor, epoch)

    def _settle(self, hold: Hold) -> None:
        """After a wake-up: answer `hold` from memory, hold it again, or re-read the store."""
        if self.waits.closing:
            hold.answer(
                {"cursor": format_cursor(hold.epoch, hold.cursor), "events": [], "reconnect": True}
            )
            return
        events = self.events_after(hold.cursor, hold.epoch)
        if events:
            hold.answer({"cursor": format_cursor(hold.epoch, events[-1]["id"]), "events": events})
        elif events == [] and self.covered == self.pokes:
            self.hold(hold)  # nothing new for it: wait on
        else:  # memory cannot tell (or the log grew again meanwhile): read the store
            task = asyncio.ensure_future(self._reread(hold))
            self.waits.rereads.add(task)
            task.add_done_callback(self.waits.rereads.discard)

    async def _reread(self, hold: Hold) -> None:
        try:
            seen = self.pokes
            got = await self._fetch(hold.cursor, hold.epoch)
            answer = await self.wait(got, seen, hold)
        except asyncio.CancelledError:
            hold.cancel()
            return
        except Exception as exc:  # the store failed: the poll answers the error
            hold.fail(exc)
            return
        if answer is not hold:
            hold.answer(answer)

    def hold(self, hold: Hold) -> Hold:
        """Hold a poll on this feed until a wake-up settles it (or it is released).

        Raises CancelledError when the hold was already cancelled (the client left).
        """
        if hold.gone or (hold.future is not None and hold.future.done()):
            raise asyncio.CancelledError
        if hold.future is None:
            hold.future = asyncio.get_running_loop().create_future()
        if hold.feed is None:
            hold.feed = self
            self.users += 1
            self.held += 1
            self.waits.held += 1
        self._waiters.add(hold)
        return hold

    def finished(self, hold: Hold) -> None:
        """`hold` is answered or cancelled: forget it."""
        self._waiters.discard(hold)
        self.users -= 1
        self.held -= 1
        self.waits.held -= 1

    def wake(self) -> None:
        """Settle every held poll now (each is answered, or held again)."""
        waiters, self._waiters = self._waiters, set()
        for hold in waiters:
            if hold.feed is self:
                self._settle(hold)

    def poke(self, urgent: bool = False) -> None:
        """The log grew: refresh the tail once, then wake the waiters. Nothing if no one waits.

        `urgent` (a presence event: join, leave, offline) is never paced: the feed's turn
        comes now, for the polls held and for those waiting for the turn.
        """
        self.pokes += 1
        self._stale = True
        if urgent and self._turn is not None:
            self._next_turn()
        if urgent:
            self.paced_until = 0.0
        if not self._waiters:
            return  # every poll reads the store before it waits, so a stale tail is harmless
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh())

    def pace(self) -> asyncio.Future | None:
        """None when a poll of this feed may start now, else a future to await first.

        After a wake-up has answered the feed's polls, the next answers wait for the
        feed's next turn, PACE later: the wake-ups of the events recorded meanwhile, and
        the polls that come back meanwhile (they would find those events and answer at
        once, one or two each). All of them then go together: one store read for the
        held polls, and every answer with the events of the whole PACE. A turn that
        passes with nothing to answer costs nothing: the next event is answered at once.
        """
        turn = self._turn
        if turn is not None:
            return turn
        loop = asyncio.get_running_loop()
        if not self.pace_interval or loop.time() >= self.paced_until:
            return None
        turn = self._turn = loop.create_future()
        loop.call_at(self.paced_until, self._next_turn)
        return turn

    def _next_turn(self) -> None:
        turn, self._turn = self._turn, None
        self.paced_until = asyncio.get_running_loop().time() + self.pace_interval
        if turn is not None and not turn.done():
            turn.set_result(None)

    async def _refresh(self) -> None:
        try:
            turn = self.pace()
            if turn is not None:
                await asyncio.shield(turn)  # (shared: cancelling one waiter must not end it)
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
            self._refreshing = None
            self.wake()
            self.paced_until = asyncio.get_running_loop().time() + self.pace_interval


async def _empty_reset() -> dict:
    return {"reset": True, "cursor": "0", "members": []}
