"""The presence model: who is in which channel, what happened there, and who is waiting.

Handlers call these methods with names already validated (presence.service.names); the
model decides which events a change means and records them through the gateway. The
waiting of long-polls belongs to the feeds (presence.service.feed): the model reads the
store once for a poll and hands the result to the channel's feed, which answers or holds
it. Time comes from an injected clock, so tests can move it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from presence.service.deadlines import DeadlineTimers
from presence.service.embedded import StoreStatus
from presence.service.feed import PACE, Feed, Hold, Waits
from presence.service.gateway import Gateway
from presence.service.keys import parse_online_key
from presence.service.names import format_cursor, parse_cursor
from presence.service.quotas import ClientLimits, LimitReached, TabQuotas
from presence.service.records import ChannelPage, LogSlice, Refresh, StoreUnavailable, load_info

log = logging.getLogger("presence.model")

JOIN_MEMBERS = 1000  # members returned with a join or a reset; the REST API pages the rest
SNAPSHOT_AGE = 1.0  # seconds a node reuses a channel's members snapshot for joins and resets
HELD_POLLS_RETRY = 2  # seconds a poll refused for want of room waits before trying again
CLAIM_CONCURRENCY = 32  # offline claims at once (sweeps and expiries), to spare the pool
RECENT_LAGS = 100_000  # offline lags a node keeps between two hand-overs to the history
TOTALS_CHANNELS = 10_000  # channels whose connections /api/stats sums
REPAIR_EVERY = 8  # sweeps between two repairs of the distinct users count (see repair_users)
HISTORY_INTERVAL = 10  # seconds per history point (see presence.service.nodes)
DRAIN_REFRESH = 2.0  # seconds a draining node spends refreshing its held tabs (see drain)
LATE_ANSWER = 0.25  # seconds: a poll answered later than this past its poll timeout
# (counted from its refresh) refreshes its tab again as it answers (see _answered)


@dataclass
class Stats:
    """Counters of this node since start (exported by /metrics)."""

    events: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("join", "leave", "offline", "message"), 0)
    )
    expiries_heard: int = 0
    lag_count: int = 0
    lag_sum_ms: int = 0
    lag_max_ms: int = 0
    sweeps: int = 0
    late_answers: int = 0  # polls answered late, whose tab was refreshed again (_answered)
    requests: int = 0  # HTTP requests answered (counted by the web layer)
    recent_lags: list[int] = field(default_factory=list)  # not yet handed to the history

    def count_offline(self, deadline: int | None, now: int) -> None:
        if deadline is None:
            return
        lag = max(now - deadline, 0)
        self.lag_count += 1
        self.lag_sum_ms += lag
        self.lag_max_ms = max(self.lag_max_ms, lag)
        if len(self.recent_lags) < RECENT_LAGS:
            self.recent_lags.append(lag)

    def take_lags(self) -> list[int]:
        """The offline lags (ms) recorded since the last call (see presence.service.nodes)."""
        lags, self.recent_lags = self.recent_lags, []
        return lags


class NotMember(LookupError):
    """The user is not a member of the channel."""


class UnknownChannel(LookupError):
    """The channel has no members and no event log."""


class FeedWatcher(Protocol):
    """Who brings this node the wake-ups of the logs it has feeds for (the subscriber)."""

    def watch(self, channel: str | None) -> None: ...

    def unwatch(self, channel: str | None) -> None: ...

    @property
    def live(self) -> bool: ...


class Presence:
    """Presence of users in channels, over one store, as seen by one node.

    Every method may raise the store's connection errors; none leaves a half-recorded
    event behind (each event is written in one transaction with the change it reports).
    """

    def __init__(
        self,
        gateway: Gateway,
        timeout: float = 30,
        poll_timeout: float = 25,
        history_age: float = 600,
        clock: Callable[[], float] = time.time,
        answer_pace: float = PACE,
        limits: ClientLimits | None = None,
        leave_grace: float = 0,
        disconnect_grace: float = 0,
    ) -> None:
        self.gateway = gateway
        self.limits = limits or ClientLimits()
        self.quotas = TabQuotas(self.limits, idle=timeout)  # node-local, see quotas
        self.history_interval = HISTORY_INTERVAL
        self.leave_grace = leave_grace  # seconds a left user is kept, in case it comes back
        self.disconnect_grace = disconnect_grace  # seconds for a dropped held poll's tab
        self.answer_pace = answer_pace  # seconds between a feed's answers (see Feed.pace)
        self.timeout = timeout
        self.waits = Waits(poll_timeout)  # what the feeds share: poll timeout, timer wheel
        self.history_age = history_age
        self.clock = clock
        self.stats = Stats()
        self.feeds: dict[str, Feed] = {}
        self.global_feed = Feed(
            gateway.read_feed, self.waits, None, answer_pace, reset=self._global_reset
        )
        self._claims = asyncio.Semaphore(CLAIM_CONCURRENCY)
        self._late_refreshes: set[asyncio.Task] = set()  # see _answered
        # channel -> (taken at, future of its members page), oldest first
        self._snapshots: OrderedDict[str, tuple[float, asyncio.Future]] = OrderedDict()
        self.feed_watcher: FeedWatcher | None = None  # set by the subscriber
        self.timers: DeadlineTimers | None = None  # see enable_deadline_timers
        self.bundled_store: StoreStatus | None = None  # set when the node supervises one

    def enable_deadline_timers(self) -> None:
        """Claim offlines at their deadlines instead of waiting for the store's notice (for
        stores that announce expiries late: Redis; see presence.service.deadlines)."""
        if self.timers is None:
            self.timers = DeadlineTimers(self._deadline_due, self.clock)

    def disable_deadline_timers(self) -> None:
        """Stop claiming offlines on timers (the node stops, or stops listening)."""
        if self.timers is not None:
            self.timers.cancel_all()
            self.timers = None

    @property
    def poll_timeout(self) -> float:
        """Seconds a long-poll is held."""
        return self.waits.poll_timeout

    @poll_timeout.setter
    def poll_timeout(self, seconds: float) -> None:
        self.waits.poll_timeout = seconds

    @property
    def closing(self) -> bool:
        """True once shutdown() was called: polls answer at once with a reconnect hint."""
        return self.waits.closing

    def now(self) -> int:
        """Milliseconds since the epoch, from the injected clock."""
        return int(self.clock() * 1000)

    def kept(self) -> dict[str, int]:
        """What this node holds in memory about users, tabs, channels and events, by kind
        (/metrics: presence_kept). Everything here is forgotten once unused: with no
        members and no traffic left, two sweeps bring every count to 0."""
        feeds = self.feeds.values()
        return {
            "feeds": len(self.feeds),
            "feed_events": sum(len(f.tail) for f in feeds) + len(self.global_feed.tail),
            "held_polls": self.pending,
            "tabs": len(self.quotas.channels),
            "message_budgets": len(self.quotas.buckets),
            "deadline_timers": len(self.timers) if self.timers is not None else 0,
            "snapshots": len(self._snapshots),
            "late_refreshes": len(self._late_refreshes),
            **self.gateway.cached(),
        }

    @property
    def pending(self) -> int:
        """Polls held now (waiting for events, or re-reading the store after a wake-up)."""
        return self.global_feed.held + sum(feed.held for feed in self.feeds.values())

    def _feed(self, channel: str) -> Feed:
        feed = self.feeds.get(channel)
        if feed is None:
            feed = self.feeds[channel] = Feed(
                functools.partial(self.gateway.read_channel, channel),
                self.waits,
                channel,
                self.answer_pace,
                reset=functools.partial(self._reset, channel),
            )
            if self.feed_watcher is not None:
                self.feed_watcher.watch(channel)
        return feed

    # -- client actions ---------------------------------------------------------------

    async def join(self, channel: str, user: str, conn: str, info: str | None) -> dict:
        """Register a tab; returns {cursor, members, more, users, timeout, poll_timeout}.

        `info` is the user's info as JSON text (None keeps what is stored). Emits `join`
        when this is the user's first live tab in the channel.
        """
        now = self.now()
        await self._admit_tab(channel, user, conn, now)
        self.quotas.admit_join(conn, channel, now / 1000)
        first = await self.gateway.register(channel, user, conn, now, self._ttl(), info)
        self._arm(channel, user, now)
        if first:
            await self._record(channel, _event("join", user, load_info(info), self.now()))
        page = await self._snapshot(channel)
        return {
            "cursor": page.cursor,
            "members": _members(page),
            "more": page.next is not None,
            "users": page.users,
            "timeout": self.timeout,
            "poll_timeout": self.poll_timeout,
        }

    async def heartbeat(self, channel: str, user: str, conn: str) -> dict:
        """Keep a joined tab alive without waiting: {ok: true}.

        Never registers a tab: one that is not (or no longer) joined gets
        {rejoin: true, reason, cursor} (see poll) and must join again.
        """
        now = self.now()
        status, _ = await self._refresh(channel, user, conn, now)
        if not status.joined:
            return _rejoin(status.reason or "unknown", format_cursor(status.epoch, status.seq))
        self._arm(channel, user, now)
        self.quotas.seen(conn, channel, now / 1000)
        return {"ok": True}

    async def poll(
        self, channel: str, user: str, conn: str, cursor: str | int, hold: Hold | None = None
    ) -> dict:
        """Keep a tab alive, then return the channel's events after `cursor`.

        Waits up to poll_timeout for events; returns {cursor, events} (events may be
        empty), {reset, cursor, members} when the cursor is outside the retained history,
        or {cursor, events: [], reconnect: true} when this node is shutting down. A tab
        that is not (or no longer) joined is never registered again here: it gets
        {rejoin: true, reason, cursor} at once, reason "kicked", "expired", "left" or
        "unknown", and `cursor` its own, to resume from after joining again.

        Cursors are "<epoch>:<id>" strings (see presence.service.names); a bare id is
        taken to be of the current log. A cursor of another epoch (the store lost the
        log, say it restarted empty) is outside the history: it gets a reset.
        Cancelling the call or `hold` (the client went away) raises CancelledError and
        releases its waiter. See start_poll for the form that handlers use.
        """
        return await _outcome(await self.start_poll(channel, user, conn, cursor, hold))

    def poll_turn(self, channel: str) -> asyncio.Future | None:
        """None when a poll of `channel` may start now, else a future to await first (the
        channel's next turn under a stream of events, see Feed.pace)."""
        feed = self.feeds.get(channel)
        return None if feed is None else feed.pace()

    async def start_poll(
        self, channel: str, user: str, conn: str, cursor: str | int, hold: Hold | None = None
    ) -> dict | Hold:
        """poll() up to the wait: the answer, or the Hold (`hold` or a new one) to await.

        A held poll is then nothing but that Hold: its future resolves to the answer
        (events, a reset, the poll timeout's empty answer, or a reconnect at shutdown),
        with no coroutine of the domain held meanwhile. Hold.cancel() (the client went
        away) releases it; awaiting it then raises CancelledError.
        """
        self._admit_poll()
        feed = self._feed(channel)
        feed.users += 1
        try:
            seen = feed.pokes
            epoch, ident = parse_cursor(cursor)
            now = self.now()
            sent = asyncio.get_running_loop().time()
            status, got = await self._refresh(channel, user, conn, now, ident, epoch)
            if not status.joined or got is None:
                return _rejoin(status.reason or "unknown", format_cursor(epoch, ident))
            self._arm(channel, user, now)
            self.quotas.seen(conn, channel, now / 1000)
            if got.events and not got.reset:  # the usual answer: no waiting at all
                feed.observe(got)
                return {
                    "cursor": format_cursor(got.epoch, got.events[-1]["id"]),
                    "events": got.events,
                }
            hold = hold or Hold()
            hold.tab = (channel, user, conn)  # for drain
            hold.refreshed = now + self._ttl()  # for tab_dropped (the disconnect grace)
            if not hold.due:  # the hold counts from the refresh's sending, not its reply
                hold.due = self.waits.wheel.due(sent + self.poll_timeout)
            answer = await feed.wait(got, seen, hold)
            if answer is hold and hold.future is not None:
                hold.future.add_done_callback(
                    functools.partial(self._answered, channel, user, conn, now)
                )
            else:
                self._answered(channel, user, conn, now)
            return answer
        finally:
            feed.users -= 1

    async def leave(self, channel: str, user: str, conn: str) -> dict:
        """Forget a tab now; `leave` when it was the user's last live tab.

        With a leave grace, the user stays a member for that long: a join (a reload, a
        navigation) within it continues silently; otherwise the expiry of its presence key
        records the `leave` then (see Gateway.start_leave_grace). Without one, now.
        """
        self.quotas.left(conn, channel)
        now = self.now()
        is_member, alive = await self.gateway.drop_connection(channel, user, conn, now, self._ttl())
        if not is_member or alive:
            return {"ok": True}
        grace = int(self.leave_grace * 1000)
        if grace and await self.gateway.start_leave_grace(channel, user, now, grace):
            self._arm_at(channel, user, now + grace)
            return {"ok": True}
        removal = await self.gateway.remove_user(
            channel,
            user,
            self.now(),
            "leave",
            lambda info, _: _event("leave", user, info, self.now()),
            self._ttl(),
        )
        if removal:
            self._recorded(channel, removal.event)
        return {"ok": True}

    async def tab_dropped(self, channel: str, user: str, conn: str, hold: Hold) -> None:
        """The connection of a held poll closed: unless the tab makes a new request within
        the disconnect grace, it is gone then (and its user `offline` if it was the last),
        without waiting for the timeout. Nothing when the grace is off or the poll was not
        held yet; exactly once across nodes like any expiry (see Gateway.shorten_dropped_tab).
        """
        grace = int(self.disconnect_grace * 1000)
        if not grace or hold.refreshed is None:
            return
        now = self.now()
        deadline = await self.gateway.shorten_dropped_tab(
            channel, user, conn, hold.refreshed, now, grace
        )
        if deadline is not None:
            self._arm_at(channel, user, deadline)

    async def send(self, channel: str, user: str, data: str, conn: str | None = None) -> dict:
        """Publish a chat message (with the sender's info) from a member; else NotMember.

        LimitReached when tab `conn` sent max_messages_per_second already (see quotas).
        """
        is_member, info = await self.gateway.member_info(channel, user)
        if not is_member:
            raise NotMember(user)
        if conn is not None:
            self.quotas.spend_message(conn, self.clock())
        event = await self._record(channel, _event("message", user, info, self.now(), data=data))
        return {"ok": True, "id": event["id"]}

    # -- operator actions and reads ---------------------------------------------------

    async def kick(self, channel: str, user: str, by: str | None = None) -> dict:
        """Remove all of a user's tabs; emits `leave` with reason "kicked" (and `by`, the
        name of the admin token that kicked, when given).

        Raises UnknownChannel, or NotMember when the channel exists but the user is not in it.

        For `timeout` seconds the kicked tabs' polls answer {rejoin, reason: "kicked"};
        a kick is not a ban: a join brings the user back.
        """
        removal = await self.gateway.remove_user(
            channel,
            user,
            self.now(),
            "kick",
            lambda info, _: _event("leave", user, info, self.now(), reason="kicked", by=by),
            self._ttl(),
        )
        if removal is None:
            if not await self.gateway.channel_known(channel):
                raise UnknownChannel(channel)
            raise NotMember(user)
        self._recorded(channel, removal.event)
        return {"ok": True, "id": removal.event["id"]}

    async def channel(
        self, channel: str, after: str | None, limit: int, prefix: str = ""
    ) -> ChannelPage | None:
        """Counts and one page of members (whose names start with `prefix`); None when
        the channel is unknown."""
        page = await self.gateway.members_page(channel, after, limit, prefix)
        if page.users == 0 and not await self.gateway.channel_known(channel):
            return None
        return page

    async def channels(
        self, after: str | None, limit: int, history: bool = False, prefix: str = ""
    ) -> tuple[list, str | None]:
        """One page of the channels with users as ([(channel, users, connections)], next),
        those whose names start with `prefix`.

        With `history`, every channel that has a log, with or without users.
        """
        return await self.gateway.channels_page(after, limit, history, prefix)

    async def totals(self) -> dict:
        """{users: distinct users online, channels, connections, ts}.

        Users and channels cost O(1) (ZCARDs); connections are summed over the channels
        (at most TOTALS_CHANNELS of them, see connections_partial).
        """
        users, channels = await self.gateway.totals()
        connections, after, seen = 0, None, 0
        while seen < TOTALS_CHANNELS:
            rows, after = await self.gateway.channels_page(after, 1000)
            seen += len(rows)
            connections += sum(row[2] for row in rows)
            if after is None:
                break
        answer = {"users": users, "channels": channels, "connections": connections,
                  "ts": self.now()}  # fmt: skip
        if after is not None:
            answer["connections_partial"] = True
        return answer

    async def nodes(self) -> list[dict]:
        """The service nodes that announced themselves lately (see presence.service.nodes)."""
        return await self.gateway.live_nodes(self.now())

    async def history(self, minutes: int) -> list[dict]:
        """The history points of the last `minutes`, oldest first: {ts, events,
        offline_lag_p50_ms, offline_lag_p99_ms, users} (events None after a gap)."""
        count = math.ceil(minutes * 60 / self.history_interval)
        since = self.now() - minutes * 60_000
        return [
            {name: value for name, value in point.items() if name != "seq"}
            for point in await self.gateway.history_points(count)
            if point["ts"] >= since
        ]

    async def repair_users(self) -> int:
        """Make the distinct users count (USERS) agree with the channels' members; returns
        the users corrected.

        USERS is written after each channel's transaction, so a node that died in between
        left it off by one for a user. A user is corrected only when USERS read before
        and after the channels agree with each other (not with a join or removal that was
        under way between the channel and USERS); a correction that still raced with one
        is corrected by the next repair.
        """
        before = await self.gateway.user_counts()
        expected: dict[str, int] = {}
        after = None
        while True:
            rows, after = await self.gateway.channels_page(after, 500, history=True)
            for names in await self.gateway.member_names([row[0] for row in rows]):
                for name in names:
                    expected[name] = expected.get(name, 0) + 1
            if after is None:
                break
        now = await self.gateway.user_counts()
        fixes = {
            user: expected.get(user, 0)
            for user in set(expected) | set(now)
            if now.get(user, 0) == before.get(user, 0) != expected.get(user, 0)
        }
        if fixes:
            log.warning("distinct users count repaired for %d users", len(fixes))
            await self.gateway.set_user_counts(fixes)
        return len(fixes)

    async def global_events(self, cursor: str | int | None, hold: Hold | None = None) -> dict:
        """Long-poll over every channel's events (each with "channel"); None: from now on."""
        return await _outcome(await self.start_global_events(cursor, hold))

    async def start_global_events(
        self, cursor: str | int | None, hold: Hold | None = None
    ) -> dict | Hold:
        """global_events() up to the wait: the answer, or the Hold to await (see start_poll)."""
        feed = self.global_feed
        seen = feed.pokes
        if cursor is None:
            got = await self.gateway.read_feed(None)
            return {"cursor": format_cursor(got.epoch, got.seq), "events": []}
        self._admit_poll()
        epoch, ident = parse_cursor(cursor)
        got = await self.gateway.read_feed(ident, epoch)
        return await feed.wait(got, seen, hold or Hold())

    # -- store notifications ------------------------------------------------------------

    async def expired(self, key: str) -> None:
        """A key expired: when it is a presence key, record `offline` (once across nodes)."""
        parsed = parse_online_key(key)
        if parsed is None:
            return
        self.stats.expiries_heard += 1
        await self._claim_offline(*parsed)

    def woken(self, channel: str | None, urgent: bool = True) -> None:
        """The store announced that `channel`'s log (None: the global feed) grew, maybe
        recorded by another node, or that its announcements may have been missed.

        Not `urgent` (a chat message): the feed may answer at its next turn (--answer-pace).
        """
        feed = self.global_feed if channel is None else self.feeds.get(channel)
        if feed is not None:
            feed.poke(urgent)

    async def reconcile(self, wake: bool = True) -> int:
        """Sweep every channel for members whose key vanished unannounced; returns offlines.

        Run after (re)subscribing, because pub/sub lost what was published meanwhile,
        and periodically as a safety net. Also prunes the tabs that went silent while
        their user stayed online (the connection counts), trims events older than
        history_age and, with `wake` (after a resubscription), makes every waiting poll
        re-read the store.
        """
        self.stats.sweeps += 1
        self.gateway.age_caches()
        found, after, now = 0, None, self.now()
        cutoff = now - int(self.history_age * 1000)
        while True:
            rows, after = await self.gateway.channels_page(after, 500, history=True)
            empty = {channel for channel, users, _ in rows if users == 0}
            for row in await self.gateway.sweep_candidates([r[0] for r in rows], now, cutoff):
                for user in row.overdue:
                    found += await self._claim_offline(row.channel, user)
                if row.dead:
                    await self.gateway.prune_dead_tabs(row.channel, row.dead, now, self._ttl())
                if row.old:
                    await self.gateway.trim_events_before(row.channel, cutoff)
                if row.channel in empty and (row.no_log or row.old):  # it checks the log is empty
                    await self.gateway.forget_if_idle(row.channel)
            if after is None:
                break
        await self.gateway.trim_events_before(None, cutoff)
        self.quotas.forget_idle(now / 1000)
        if wake or self.stats.sweeps % REPAIR_EVERY == 1:
            await self.repair_users()
        if wake:
            for feed in [*self.feeds.values(), self.global_feed]:
                feed.poke()
        self._drop_idle_feeds()
        self._drop_old_snapshots(asyncio.get_running_loop().time())
        return found

    async def store_ready(self) -> bool:
        """True when every node of the store answers."""
        try:
            return await self.gateway.ping()
        except StoreUnavailable:
            return False

    async def readiness(self) -> dict:
        """{ready, store, subscribed, closing}: ready when the store answers, the node hears
        its notifications (a live subscriber) and it is not shutting down. With a bundled
        store also {store_up, store_restarts}: not ready while the supervisor has it down."""
        bundled = self.bundled_store
        up = bundled is None or bundled.up
        store = up and await self.store_ready()
        subscribed = self.feed_watcher is not None and self.feed_watcher.live
        state: dict[str, bool | int] = {"ready": store and subscribed and not self.closing, "store": store,
                 "subscribed": subscribed, "closing": self.closing}  # fmt: skip
        if bundled is not None:
            state.update(store_up=up, store_restarts=bundled.restarts)
        return state

    async def drain(self, within: float = DRAIN_REFRESH) -> int:
        """Refresh the presence key of every tab whose poll this node holds (for at most
        `within` seconds), then shutdown(); returns the tabs refreshed.

        A drained tab polls again on another node at once, but that node may be slow to
        answer (it takes over every tab of this one, maybe while this one's replacement
        starts): with its deadline pushed a whole --timeout away, a slow takeover is
        never mistaken for a tab gone silent (a false offline).
        """
        holds = {h.tab: h for feed in self.feeds.values() for h in feed.holds() if h.tab}
        done = 0
        gate = asyncio.Semaphore(CLAIM_CONCURRENCY * 8)

        async def refresh(channel: str, user: str, conn: str) -> None:
            nonlocal done
            async with gate:
                hold = holds[channel, user, conn]
                if hold.feed is None or hold.gone:
                    # answered meanwhile (its tab may have left since: a refresh now would
                    # be a stray one, which could outlast the user's leave grace)
                    return
                now = self.now()
                try:
                    status, _ = await self._refresh(channel, user, conn, now)
                except StoreUnavailable:
                    return
                if status.joined:
                    done += 1

        work = asyncio.gather(*(refresh(*tab) for tab in holds))
        try:
            async with asyncio.timeout(within):
                await work
        except TimeoutError:
            log.warning("drain: refreshed %d of %d held tabs within %gs", done, len(holds), within)
        self.shutdown()
        return done

    def shutdown(self) -> None:
        """Answer every held poll now with a reconnect hint; later polls answer at once."""
        self.waits.closing = True
        for feed in [*self.feeds.values(), self.global_feed]:
            feed.wake()

    # -- internals --------------------------------------------------------------------

    def _ttl(self) -> int:
        return int(self.timeout * 1000)

    def _admit_poll(self) -> None:
        """LimitReached when the node holds max_held_polls polls already."""
        if self.waits.held >= self.limits.max_held_polls:
            raise LimitReached(
                "held_polls", "this node holds as many polls as it may", HELD_POLLS_RETRY
            )

    async def _admit_tab(self, channel: str, user: str, conn: str, now: int) -> None:
        """LimitReached when `conn` would be one tab too many of `user` in `channel`."""
        tabs, registered = await self.gateway.live_tabs(channel, user, conn, now)
        if not registered and tabs >= self.limits.max_tabs:
            raise LimitReached(
                "tabs",
                f"a user may have at most {self.limits.max_tabs} tabs in a channel",
                self.timeout,  # a silent tab is gone by then
            )

    async def _claim_offline(self, channel: str, user: str) -> int:
        async with self._claims:
            now = self.now()
            removal = await self.gateway.remove_user(
                channel,
                user,
                now,
                "offline",
                lambda info, left: _event("leave" if left else "offline", user, info, now),
                self._ttl(),
            )
        if removal is None:
            return 0
        if removal.event["type"] == "offline":
            self.stats.count_offline(removal.deadline, now)
        self._recorded(channel, removal.event)
        return 1

    async def _record(self, channel: str, event: dict) -> dict:
        recorded = await self.gateway.record(channel, event)
        self._recorded(channel, recorded)
        return recorded

    def _recorded(self, channel: str, event: dict) -> None:
        self.stats.events[event["type"]] += 1
        if event["type"] in ("leave", "offline") and self.timers is not None:
            self.timers.disarm(channel, event["user"])
        urgent = event["type"] != "message"
        self.woken(channel, urgent)  # pub/sub will tell us too; waking now saves the round trip
        self.woken(None, urgent)  # the event is in the global feed too

    def _arm(self, channel: str, user: str, now: int) -> None:
        """Watch the deadline of a presence key this node just refreshed (see deadlines)."""
        self._arm_at(channel, user, now + self._ttl())

    def _arm_at(self, channel: str, user: str, deadline: int) -> None:
        """Watch a presence key whose deadline this node just set (see deadlines)."""
        if self.timers is not None:
            self.timers.arm(channel, user, deadline)

    def _answered(
        self, channel: str, user: str, conn: str, refreshed: int, future: object = None
    ) -> None:
        """A poll whose refresh was sent at `refreshed` (ms) is answered now: when that is
        later than its poll timeout by more than LATE_ANSWER (this node is overloaded), its
        tab is refreshed again right away, so the tab keeps the whole margin between
        --poll-timeout and --timeout for its next request. The tab is provably there: its
        connection is still open (a closed one cancels the hold, and then nothing is done).
        One store round trip, only for late answers; none at normal load.
        """
        if isinstance(future, asyncio.Future) and (future.cancelled() or future.exception()):
            return
        now = self.now()
        if now - refreshed <= (self.poll_timeout + LATE_ANSWER) * 1000:
            return
        self.stats.late_answers += 1
        task = asyncio.ensure_future(self._refresh_late(channel, user, conn, now))
        self._late_refreshes.add(task)
        task.add_done_callback(self._late_refreshes.discard)

    async def _refresh(self, channel: str, user: str, conn: str, now: int,
                       cursor: int | None = None, epoch: str | None = None
                       ) -> tuple[Refresh, LogSlice | None]:  # fmt: skip
        """gateway.refresh; when it undid a stray refresh (the tab left, was kicked or
        expired meanwhile), the user's key is watched to its restored deadline, and one
        already past (a late undo: the store deleted the key without an expiry notice) is
        claimed now, so the user's `leave` or `offline` is not left to the sweep."""
        if cursor is None:  # (a heartbeat's, the drain's, a late answer's: no read)
            status, got = await self.gateway.refresh(channel, user, conn, now, self._ttl())
        else:
            status, got = await self.gateway.refresh(
                channel, user, conn, now, self._ttl(), cursor=cursor, epoch=epoch
            )
        if status.undone is not None:
            if status.undone <= self.now():
                await self._claim_offline(channel, user)
            else:
                self._arm_at(channel, user, status.undone)
        return status, got

    async def _refresh_late(self, channel: str, user: str, conn: str, now: int) -> None:
        try:
            status, _ = await self._refresh(channel, user, conn, now)
        except Exception:  # the store is away: the tab's next poll refreshes it, or not
            return
        if status.joined:
            self._arm(channel, user, now)

    async def _deadline_due(self, channel: str, user: str) -> int:
        """A deadline timer fired: claim the offline if the key is gone; its PTTL."""
        remaining = await self.gateway.presence_ttl(channel, user)
        if remaining == -2:
            await self._claim_offline(channel, user)
        return remaining

    async def _snapshot(self, channel: str) -> ChannelPage:
        """The channel's first JOIN_MEMBERS members with the log position they match, for joins.

        Reused for SNAPSHOT_AGE seconds and shared by concurrent callers, so a storm of
        joins in a large channel reads it once, not once per join. An older snapshot is
        still exact for its cursor: the events after it (the joiner's own `join`
        included) bring the joiner up to date.
        """
        loop = asyncio.get_running_loop()
        cached = self._snapshots.get(channel)
        if (
            cached is None
            or loop.time() - cached[0] > SNAPSHOT_AGE
            or (cached[1].done() and cached[1].exception() is not None)
        ):
            self._drop_old_snapshots(loop.time())
            if len(self._snapshots) > 10_000:
                self._snapshots.clear()
            self._snapshots.pop(channel, None)  # re-inserted last: the order stays by age
            future = asyncio.ensure_future(self.gateway.members_page(channel, None, JOIN_MEMBERS))
            cached = self._snapshots[channel] = (loop.time(), future)
        return await asyncio.shield(cached[1])

    def forget_snapshots(self) -> None:
        """Take no more members snapshots from before now (the subscriber calls this when
        it loses or regains the store: a store that restarted empty has a new log, and a
        snapshot of the old one would hand a joiner a cursor of a log that is gone)."""
        self._snapshots.clear()

    def _drop_old_snapshots(self, now: float) -> None:
        """Forget the snapshots too old to be reused (each holds a page of members)."""
        snapshots = self._snapshots
        while snapshots:
            channel, (taken, future) = next(iter(snapshots.items()))
            if now - taken <= SNAPSHOT_AGE or not future.done():
                break
            del snapshots[channel]

    async def _reset(self, channel: str) -> dict:
        # Fresh, never cached: an older snapshot's cursor could be behind the history again.
        page = await self.gateway.members_page(channel, None, JOIN_MEMBERS)
        return {
            "reset": True,
            "cursor": page.cursor,
            "members": _members(page),
            "more": page.next is not None,
            "users": page.users,
        }

    async def _global_reset(self) -> dict:
        got = await self.gateway.read_feed(None)
        return {"reset": True, "cursor": format_cursor(got.epoch, got.seq), "members": []}

    def _drop_idle_feeds(self) -> None:
        for channel in [c for c, f in self.feeds.items() if not f.users]:
            del self.feeds[channel]
            if self.feed_watcher is not None:
                self.feed_watcher.unwatch(channel)
        if not self.global_feed.users:
            self.global_feed.forget()


async def _outcome(answer: dict | Hold) -> dict:
    """The answer itself: awaited when it is a Hold (released if the wait is cancelled)."""
    if not isinstance(answer, Hold):
        return answer
    try:
        return await answer
    except asyncio.CancelledError:
        answer.cancel()
        raise


def _event(
    kind: str,
    user: str,
    info: object,
    ts: int,
    reason: str | None = None,
    data: str | None = None,
    by: str | None = None,
) -> dict:
    event: dict[str, object] = {"type": kind, "user": user, "info": info, "ts": ts}
    if reason is not None:
        event["reason"] = reason
    if data is not None:
        event["data"] = data
    if by is not None:
        event["by"] = by
    return event


def _rejoin(reason: str, cursor: str) -> dict:
    return {"rejoin": True, "reason": reason, "cursor": cursor}


def _members(page: ChannelPage) -> list[dict]:
    return [m.as_json() for m in page.members]
