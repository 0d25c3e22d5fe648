"""Store gateway: every store operation the presence domain needs, as few round trips as it can.

Keys come from presence.service.keys, values are presence.service.records, and commands go
through presence.service.transport (routing, group commit, WATCH retries). A channel's
changes and its events are written in one transaction on the channel's slot; the keys that
span channels (registry, global feed) are written in transactions of their own, so every
operation works on a standalone store and on a Redis Cluster alike.

Every public coroutine raises StoreUnavailable (StoreBusy when it kept losing races) instead
of redis-py's errors. Names passed in must already be valid (presence.service.names).
"""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from presence.service import transport
from presence.service.keys import (
    FEED,
    HISTORY,
    LOGS,
    NODES,
    PROBE_PREFIX,
    REGISTRY,
    USERS,
    ChannelKeys,
    LogKeys,
    history_claim,
    lags_key,
    node_key,
    pack,
)
from presence.service.recent import Recent
from presence.service.records import (
    ChannelPage,
    Event,
    LogSlice,
    Member,
    Refresh,
    Removal,
    StoreBusy,
    StoreSetupError,
    StoreUnavailable,
    SweepRow,
    load_info,
)
from presence.service.transport import STORE_DOWN, Packed, Router

_GONE = {"offline": "expired", "leave": "left", "kick": "kicked"}  # removal -> tab's reason
_EVENTS_CACHED = 10_000  # parsed events kept for reuse per generation (see Gateway._event)
_CHANNELS_CACHED = 100_000  # channels whose keys and log position are kept per generation
_READ_COMMANDS = 3  # commands of a log read (see Gateway._queue_read)
_READ_RETRIES = 50  # log reads that found more appended than they read, before StoreBusy
_READ_SLACK = 4  # events a log read takes beyond the newest seen, for those appended since

P = ParamSpec("P")
T = TypeVar("T")


def _translated(method: Callable[P, Any]) -> Callable[P, Any]:
    """Make a gateway coroutine raise StoreUnavailable for any store failure, and run it
    again when a node answered MOVED (after reading the slot map again).

    Only the plain reads and idempotent writes let MOVED through: the transactions that
    must not run twice go through the Batcher or transport.watched, which follow a moved
    slot themselves and raise StoreBusy when it keeps moving.
    """

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> Any:
        gateway = args[0]
        assert isinstance(gateway, Gateway)
        for _ in range(transport.MOVED_RETRIES):
            try:
                return await method(*args, **kwargs)
            except StoreUnavailable:
                raise
            except transport.MOVED:
                await gateway.refresh_topology()
            except STORE_DOWN as exc:
                raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        raise StoreBusy(f"the cluster kept moving during {method.__name__}")

    return call


@dataclass(frozen=True, slots=True)
class ExpirySetup:
    """Where a store announces expired keys, and whether it does so at the deadline."""

    channel: str
    exact: bool  # the bundled store: announced at the deadline; Redis: when it gets to it


class Gateway:
    """The presence operations over one store (standalone or cluster), through `router`."""

    def __init__(self, router: Router, history: int = 1000) -> None:
        self.router = router
        self.history = history
        self._batcher = transport.Batcher(router)
        # what is cached per channel and per event, kept while used (see presence.service.recent)
        self._seqs: Recent[str, int] = Recent(_CHANNELS_CACHED)  # events key -> newest id seen
        self._keys: Recent[str, ChannelKeys] = Recent(_CHANNELS_CACHED)
        self._events: Recent[tuple[int, str], Event] = Recent(_EVENTS_CACHED)  # see _event

    @classmethod
    async def connect(cls, url: str, history: int = 1000, mode: str = "auto",
                      max_connections: int = 64) -> Gateway:  # fmt: skip
        """A gateway over the store at `url` (a cluster when the node is one, see
        transport.connect). Raises StoreUnavailable or StoreSetupError."""
        return cls(await transport.connect(url, mode, max_connections), history)

    @classmethod
    def from_url(cls, url: str, history: int = 1000, max_connections: int = 64,
                 cluster: bool = False) -> Gateway:  # fmt: skip
        """A gateway over the store at `url`, without asking it anything first (a cluster's
        slot map is read when a node first answers MOVED)."""
        client = transport.client_from_url(url, max_connections)
        router = (
            transport.ClusterRouter(client, max_connections)
            if cluster
            else transport.Router(client)
        )
        return cls(router, history)

    @property
    def redis(self) -> aioredis.Redis:
        """The client of the node `--redis-url` named (for tests and tools)."""
        return self.router.client

    @property
    def cluster(self) -> bool:
        return self.router.cluster

    def keys(self, channel: str) -> ChannelKeys:
        keys = self._keys.get(channel)
        if keys is None:
            keys = ChannelKeys(channel)
            self._keys.put(channel, keys)
        return keys

    def age_caches(self) -> None:
        """Forget what was cached per channel and event and not used since the last call
        (the sweep calls this; see presence.service.recent)."""
        for cache in (self._seqs, self._keys, self._events):
            cache.age()

    def cached(self) -> dict[str, int]:
        """Entries of each cache: {"channel_keys", "log_positions", "events"}."""
        return {"channel_keys": len(self._keys), "log_positions": len(self._seqs),
                "events": len(self._events)}  # fmt: skip

    async def close(self) -> None:
        await self.router.close()

    @_translated
    async def ping(self) -> bool:
        """True when every primary answers."""
        return all([await client.ping() for client in self.router.primaries()])

    def primaries(self) -> list[aioredis.Redis]:
        """One client per primary node (the subscriber listens on each)."""
        return self.router.primaries()

    def node_name(self, client: aioredis.Redis) -> str:
        return self.router.address(client)

    async def refresh_topology(self) -> None:
        """Read the cluster's slot map again (nothing for a standalone store)."""
        try:
            await self.router.refresh()
        except STORE_DOWN as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def _command(self, key: str, *command: str | int) -> Any:
        """One command on the node of `key`, through the Batcher (it follows moved slots)."""
        packed = pack(*command)

        def queue(pipe: Packed) -> tuple[int, None]:
            pipe.raw(packed, 1)
            return 1, None

        replies, _ = await self._batcher.call(key, queue)
        return replies[0]

    def node_of(self, channel: str | None) -> aioredis.Redis:
        """The client of the node holding a channel's keys (None: the global keys)."""
        return self.router.client_for(FEED.seq if channel is None else self.keys(channel).seq)

    # -- expiry notifications -------------------------------------------------------

    @_translated
    async def expiry_setup(self) -> ExpirySetup:
        """Where this store announces expired keys (see ensure_expiry_events).

        The bundled store announces on its `keys-expire-notify` channel, at the deadline.
        Otherwise Redis's keyspace events (`__keyevent@<db>__:expired`) are used on every
        primary. Raises StoreSetupError when they are off and cannot be turned on.
        """
        if self.cluster:
            await self.refresh_topology()
        for node in self.router.primaries():
            await self._require_sharded_pubsub(node)
        client = self.router.primaries()[0]
        if not self.cluster:
            try:
                found = await client.config_get("keys-expire-notify")
            except ResponseError:
                found = {}
            channel = str(found.get("keys-expire-notify") or "")
            if channel:
                return ExpirySetup(channel, exact=True)
        db = client.connection_pool.connection_kwargs.get("db", 0)
        setup = ExpirySetup(f"__keyevent@{db}__:expired", exact=False)
        for node in self.router.primaries():
            await self.ensure_expiry_events(node, setup)
        return setup

    async def _require_sharded_pubsub(self, client: aioredis.Redis) -> None:
        """Raise StoreSetupError unless the node knows SPUBLISH (Redis 7.0+, Valkey)."""
        try:
            await client.execute_command("SPUBLISH", FEED.wake, "0")
        except transport.MOVED:
            return  # it knows the command: the slot is another node's
        except ResponseError as exc:
            raise StoreSetupError(
                f"the store at {self.node_name(client)} lacks sharded pub/sub ({exc}): "
                "wake-ups need SPUBLISH/SSUBSCRIBE, in Redis 7.0 or later and Valkey"
            ) from None

    @_translated
    async def ensure_expiry_events(self, client: aioredis.Redis, setup: ExpirySetup) -> None:
        """Make the node of `client` announce expiries on `setup.channel` (a Redis node that
        was a replica when the service started may have them off). Raises StoreSetupError."""
        if setup.exact:
            return
        try:
            found = await client.config_get("notify-keyspace-events")
            flags = str(found.get("notify-keyspace-events") or "")
            if "E" not in flags or not ("x" in flags or "A" in flags):
                await client.config_set("notify-keyspace-events", flags + "Ex")
        except ResponseError as exc:
            if not await self._expiries_announced(client, setup.channel):
                raise StoreSetupError(
                    f"the store at {self.node_name(client)} does not publish key expiries and "
                    f"we may not enable them ({exc}); set `notify-keyspace-events Ex` in its "
                    "redis.conf (or run `redis-cli config set notify-keyspace-events Ex`)"
                ) from None

    async def _expiries_announced(self, client: aioredis.Redis, channel: str,
                                  wait: float = 2.0) -> bool:  # fmt: skip
        """True when a probe key's expiry is announced on `channel` within `wait` seconds."""
        probe = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            await client.set(probe, "1", px=1)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while loop.time() < deadline:
                await client.exists(probe)  # a read expires the key lazily, if it is due
                message = await pubsub.get_message(timeout=0.05)
                if message and message.get("data") == probe:
                    return True
            return False
        finally:
            await pubsub.aclose()

    # -- presence writes --------------------------------------------------------------

    @_translated
    async def register(self, channel: str, user: str, conn: str, now: int, ttl: int,
                       info: str | None = None) -> bool:  # fmt: skip
        """Make `conn` a joined tab of `user`, alive until now + ttl (ms); True on a first join.

        True means this call made the user a member (the caller records `join`). `info`,
        when given, replaces the member's info JSON. Forgets why the tab was gone, if it was.
        The channel is put in the registry first, so the registry never misses a channel
        that has members (it may briefly list one that has none).
        """
        await self._batcher.call(REGISTRY, _queue_registered(channel))
        k = self.keys(channel)
        deadline = now + ttl

        def queue(pipe: Packed) -> tuple[int, None]:
            pipe.hsetnx(k.member(user), "since", now)
            pipe.set(k.online(user), "1", px=ttl)
            pipe.zadd(k.conns(user), {conn: deadline})
            pipe.zadd(k.connections, {f"{user}/{conn}": deadline})
            pipe.zadd(k.members, {user: 0})
            pipe.zadd(k.deadlines, {user: deadline})
            pipe.hdel(k.gone(user), conn)
            pipe.raw(pack(b"DEL", k.leaving(user)), 1)  # back within the leave grace
            if info is not None:
                pipe.hset(k.member(user), "info", info)
            return 8 + (info is not None), None

        replies, _ = await self._batcher.call(k.seq, queue)
        first = bool(replies[0] == 1)
        if first:
            await self._count_user(user, 1)
        return first

    async def _count_user(self, user: str, change: int) -> None:
        """Add `change` to the number of channels `user` is a member of (USERS), after the
        channel's own transaction (a node that dies between the two leaves a drift that
        the sweep repairs, see repair_user_counts); users at 0 leave the zset."""
        commands = pack(b"ZINCRBY", USERS, change, user) + pack(
            b"ZREMRANGEBYSCORE", USERS, "-inf", 0
        )

        def queue(pipe: Packed) -> tuple[int, None]:
            pipe.raw(commands, 2)
            return 2, None

        await self._batcher.call(USERS, queue)

    @_translated
    async def refresh(self, channel: str, user: str, conn: str, now: int, ttl: int,
                      cursor: int | None = None, epoch: str | None = None
                      ) -> tuple[Refresh, LogSlice | None]:  # fmt: skip
        """Keep a joined tab alive until now + ttl (ms) and, given a cursor, read the log.

        Never registers anything: every write is XX (it only updates what exists), so a
        tab that was kicked, left or expired stays gone and Refresh says why. The user's
        presence key, which such a stray refresh did lengthen, gets its deadline back
        (_undo_stray_refresh). Without a cursor, Refresh.seq and .epoch are read only
        for a tab that is not joined; `epoch` is the cursor's (None: the log's).

        The usual case, a joined tab, takes four writes: SET XX of the presence key and
        ZADD XX GT of the tab's deadline in conns:<user> (with CH: 1 says the tab was
        there), connections and deadlines (GT: a late refresh never moves one earlier).
        Anything else (the key or the tab missing, or a deadline not later than the one
        stored: twice in one millisecond, or a late refresh) repeats the refresh in the exact form,
        which also reads whether the tab is registered and why it is gone.
        """
        k = self.keys(channel)
        deadline = now + ttl

        def queue(pipe: Packed) -> tuple[int, Any]:
            pipe.raw(k.refresh_commands(user, conn, deadline, ttl), 4)
            if cursor is None:
                return 4, None
            return 4 + _READ_COMMANDS, self._queue_read(pipe, k, cursor, epoch)

        replies, parse = await self._batcher.call(k.seq, queue)
        if not (replies[0] and replies[1] == 1):
            return await self._refresh_exactly(k, user, conn, deadline, ttl, cursor, epoch)
        if parse is None:
            return Refresh(True), None
        log = parse(replies[4:])
        if log is None:
            log = await self._read_log(k, cursor or 0, epoch)
        return Refresh(True), log

    async def _refresh_exactly(self, k: ChannelKeys, user: str, conn: str, deadline: int,
                               ttl: int, cursor: int | None, epoch: str | None
                               ) -> tuple[Refresh, LogSlice | None]:  # fmt: skip
        """refresh() in full: the same XX writes, plus whether the tab is registered (read
        before them), why it is gone and, without a cursor, the log's seq and epoch."""

        def queue(pipe: Packed) -> tuple[int, Any]:
            pipe.zscore(k.conns(user), conn)
            pipe.raw(k.refresh_commands(user, conn, deadline, ttl), 4)  # the same four writes
            pipe.hget(k.gone(user), conn)
            if cursor is None:
                pipe.get(k.seq)
                pipe.get(k.epoch)
                return 8, None
            return 6 + _READ_COMMANDS, self._queue_read(pipe, k, cursor, epoch)

        replies, parse = await self._batcher.call(k.seq, queue)
        registered, alive, marker = replies[0] is not None, bool(replies[1]), replies[5]
        if registered and alive:
            status = Refresh(True)
        else:
            status = Refresh(False, marker or ("expired" if registered else "unknown"))
            if replies[1]:  # SET XX found the user's key: this stray refresh lengthened it
                status.undone = await self._undo_stray_refresh(k, user, deadline, deadline - ttl)
        if parse is None:
            status.seq, status.epoch = int(replies[6] or 0), replies[7]
            return status, None
        log = parse(replies[-_READ_COMMANDS:])
        if log is None:
            log = await self._read_log(k, cursor or 0, epoch)
        return status, log

    async def _undo_stray_refresh(self, k: ChannelKeys, user: str, stray: int, now: int
                                  ) -> int | None:  # fmt: skip
        """Give the user's presence key back the deadline it had before a refresh from a
        tab that is no longer registered (a poll in flight when the tab left, was kicked
        or expired) set it to `stray`: the latest deadline of the user's live tabs, or
        of its leave grace (the `leaving` mark holds it); with neither, now, so that the
        usual claim ends the user. A deadline later than `stray` is a live tab's newer
        refresh and stays. Returns the deadline set, else None.

        A deadline already past (an undo later than the leave grace) makes the store delete
        the key at once, announced as `del`, not `expired`: the caller claims then."""

        async def attempt(pipe: Any) -> int | None:
            await pipe.watch(k.online(user), k.conns(user), k.leaving(user))
            latest = await pipe.zrange(k.conns(user), -1, -1, withscores=True)
            leaving = await pipe.get(k.leaving(user))
            deadline = max(
                [int(score) for _, score in latest]
                + ([int(leaving)] if leaving and leaving.isdigit() else [])
                + [now]
            )
            pipe.multi()
            if deadline < stray:
                pipe.pexpireat(k.online(user), deadline, lt=True)
                pipe.zadd(k.deadlines, {user: deadline}, xx=True, lt=True)
            await pipe.execute()
            return deadline if deadline < stray else None

        return await transport.watched(self.router, k.seq, attempt)

    @_translated
    async def presence_ttl(self, channel: str, user: str) -> int:
        """PTTL of the user's presence key: -2 when it is gone. On Redis, reading a key past
        its deadline deletes it and announces the expiry at once (lazy expiry)."""

        def queue(pipe: Packed) -> tuple[int, None]:
            pipe.pttl(self.keys(channel).online(user))
            return 1, None

        replies, _ = await self._batcher.call(self.keys(channel).seq, queue)
        return int(replies[0])

    @_translated
    async def record(self, channel: str, event: dict) -> dict:
        """Append `event` to the channel's log, then to the global feed; returns it with its id."""
        k = self.keys(channel)
        text = json.dumps(event, separators=(",", ":"))
        append = _queue_append(k, text, self.history, event["type"])
        replies, _ = await self._batcher.call(k.seq, append)
        await self._append_feed(channel, event)
        return {"id": replies[0], **event}

    async def _append_feed(self, channel: str, event: dict) -> None:
        """Append a channel's event to the global feed (its own transaction, after the
        channel's: a node that dies between the two leaves the event out of the feed)."""
        text = json.dumps({**event, "channel": channel}, separators=(",", ":"))
        append = _queue_append(FEED, text, self.history, event["type"])

        def queue(pipe: Packed) -> tuple[int, None]:
            count, _ = append(pipe)
            pipe.raw(pack(b"ZADD", LOGS, 0, channel), 1)
            return count + 1, None

        await self._batcher.call(FEED.seq, queue)

    @_translated
    async def drop_connection(self, channel: str, user: str, conn: str, now: int, ttl: int
                              ) -> tuple[bool, int]:  # fmt: skip
        """Forget one tab (its polls then hear "left" for ttl ms); returns (user is a
        member, tabs of the user still alive)."""
        k = self.keys(channel)
        commands = (
            pack(b"ZREM", k.conns(user), conn),
            pack(b"ZREM", k.connections, f"{user}/{conn}"),
            pack(b"ZCOUNT", k.conns(user), f"({now}", "+inf"),
            pack(b"EXISTS", k.member(user)),
            pack(b"HSET", k.gone(user), conn, "left"),
            pack(b"PEXPIRE", k.gone(user), ttl),
        )

        def queue(pipe: Packed) -> tuple[int, None]:
            pipe.raw(b"".join(commands), len(commands))
            return len(commands), None

        replies, _ = await self._batcher.call(k.seq, queue)
        return bool(replies[3]), int(replies[2])

    @_translated
    async def start_leave_grace(self, channel: str, user: str, now: int, grace: int
                                ) -> bool:  # fmt: skip
        """Keep a member whose last tab just left for `grace` ms: True when done.

        Its presence key's TTL is cut to the grace (never lengthened) and the user is
        marked as leaving: when the key expires, the claim records `leave` (see
        remove_user), exactly once as any claim; a join within the grace deletes the mark
        and refreshes the key, and nobody hears anything. False (nothing written) when
        the user is no longer a member or one of its tabs is alive again.

        The mark has no TTL: only that join or the claim deletes it. A poll in flight when
        the tab left can lengthen the key again (a stray refresh, until its undo lands,
        however late); the key then expires later, but the claim still finds the mark and
        records `leave`, never `offline`.
        """
        k = self.keys(channel)
        deadline = now + grace

        async def attempt(pipe: Any) -> bool:
            await pipe.watch(k.conns(user), k.member(user), k.online(user))
            alive = await pipe.zcount(k.conns(user), f"({now}", "+inf")
            if alive or not await pipe.exists(k.member(user)):
                await pipe.unwatch()
                return False
            pipe.multi()
            pipe.set(k.leaving(user), str(deadline))  # the grace's end; no TTL, see above
            pipe.pexpire(k.online(user), grace, lt=True)
            pipe.zadd(k.deadlines, {user: deadline}, xx=True, lt=True)
            await pipe.execute()
            return True

        return bool(await transport.watched(self.router, k.seq, attempt))

    @_translated
    async def shorten_dropped_tab(self, channel: str, user: str, conn: str, refreshed: int,
                                  now: int, grace: int) -> int | None:  # fmt: skip
        """A tab's held poll lost its connection: give the tab `grace` ms to come back.

        Only if the tab's deadline is still `refreshed` (the one that poll's refresh set:
        a newer request of the tab moved it, and then nothing is done). The tab's
        deadline becomes now + grace; the user's presence key expires then too unless
        another tab of the user is alive longer. Returns the user's new deadline (ms)
        when the presence key was shortened, else None.
        """
        k = self.keys(channel)
        deadline = now + grace

        async def attempt(pipe: Any) -> int | None:
            await pipe.watch(k.conns(user), k.online(user))
            tabs = dict(await pipe.zrange(k.conns(user), 0, -1, withscores=True))
            remaining = await pipe.pttl(k.online(user))
            if conn not in tabs or int(tabs[conn]) != refreshed or remaining < 0:
                await pipe.unwatch()
                return None
            others = [int(score) for tab, score in tabs.items() if tab != conn]
            user_deadline = max([deadline, *others])
            shorten = user_deadline < now + remaining
            pipe.multi()
            pipe.zadd(k.conns(user), {conn: deadline}, xx=True)
            pipe.zadd(k.connections, {f"{user}/{conn}": deadline}, xx=True)
            if shorten:
                pipe.pexpire(k.online(user), max(user_deadline - now, 1))
                pipe.zadd(k.deadlines, {user: user_deadline}, xx=True)
            await pipe.execute()
            return user_deadline if shorten else None

        return await transport.watched(self.router, k.seq, attempt)

    @_translated
    async def remove_user(self, channel: str, user: str, now: int, kind: str,
                          make_event: Callable[[object, bool], dict], ttl: int
                          ) -> Removal | None:  # fmt: skip
        """Remove a member and record its event in one transaction, if `kind` still applies.

        kind "offline": only if the user's presence key is gone (it expired);
        "leave": only if none of the user's tabs is alive; "kick": whenever a member.
        `make_event(info, left)` builds the event; `left` says the user's last tab left
        within the leave grace (see start_leave_grace): its expiry is then a `leave`. Each of the user's tabs is marked gone (for
        ttl ms) with reason "expired", "left" or "kicked", which its next poll reports.
        Across any number of nodes racing on the same user, exactly one call returns a
        Removal; the others return None. The global feed and the registry follow in
        transactions of their own.
        """
        k = self.keys(channel)

        async def attempt(pipe: Any) -> tuple[Removal, int] | None:
            await pipe.watch(k.online(user), k.member(user), k.conns(user), k.leaving(user))
            state = await _removal_state(pipe, k, user, kind, now)
            if state is None:
                await pipe.unwatch()
                return None
            info, tabs, left = state
            event = make_event(info, left)
            pipe.multi()
            text = json.dumps(event, separators=(",", ":"))
            for command in _append_commands(k, text, self.history, event["type"]):
                pipe.execute_command(*command)
            pipe.delete(k.online(user), k.member(user), k.conns(user), k.leaving(user))
            pipe.zrem(k.members, user)
            pipe.zrem(k.deadlines, user)
            if tabs:
                pipe.zrem(k.connections, *(f"{user}/{c}" for c in tabs))
                pipe.hset(k.gone(user), mapping=dict.fromkeys(tabs, _GONE[kind]))
                pipe.pexpire(k.gone(user), ttl)
            pipe.zcard(k.members)
            replies = await pipe.execute()
            return Removal({"id": replies[0], **event}, max(tabs.values(), default=None)), int(
                replies[-1]
            )

        outcome = await transport.watched(self.router, k.seq, attempt)
        if outcome is None:
            return None
        removal, remaining = outcome
        fields = {name: value for name, value in removal.event.items() if name != "id"}
        await self._append_feed(channel, fields)  # the feed numbers its events itself
        await self._count_user(user, -1)
        if remaining == 0:
            await self._unregister_if_empty(channel)
        return removal

    async def _unregister_if_empty(self, channel: str) -> None:
        """Take a channel whose last member left out of the registry, then look again: a
        join that raced with it may have registered the channel before our removal and its
        member after, so the channel goes back in when it has members."""
        await self._command(REGISTRY, "ZREM", REGISTRY, channel)
        members = self.keys(channel).members
        if await self._command(members, "ZCARD", members):
            await self._command(REGISTRY, "ZADD", REGISTRY, 0, channel)

    # -- operator state (the {:global} keys) -------------------------------------------

    @_translated
    async def totals(self) -> tuple[int, int]:
        """(distinct users online across channels, channels with members): two ZCARDs."""
        users, channels = await self._per_node(
            [(USERS, ("ZCARD", USERS)), (REGISTRY, ("ZCARD", REGISTRY))]
        )
        return int(users), int(channels)

    @_translated
    async def user_counts(self) -> dict[str, int]:
        """The whole USERS zset: user -> channels it is counted in (for the repair)."""
        found: list = await self.router.client_for(USERS).zrange(USERS, 0, -1, withscores=True)
        return {str(user): int(score) for user, score in found}

    @_translated
    async def member_names(self, channels: list[str]) -> list[list[str]]:
        """Every member's name of each channel (one pipeline per node)."""
        replies = await self._per_node(
            [(self.keys(c).seq, ("ZRANGE", self.keys(c).members, 0, -1)) for c in channels]
        )
        return [[str(name) for name in names] for names in replies]

    @_translated
    async def set_user_counts(self, counts: dict[str, int]) -> None:
        """Overwrite the counts of some users (0 removes the user): the repair's fix."""
        pipe = self.router.client_for(USERS).pipeline(transaction=True)
        gone = [user for user, count in counts.items() if count <= 0]
        kept = {user: count for user, count in counts.items() if count > 0}
        if gone:
            pipe.zrem(USERS, *gone)
        if kept:
            pipe.zadd(USERS, kept)
        await pipe.execute()

    @_translated
    async def register_node(self, node: str, record: dict, now: int, ttl: int) -> None:
        """Announce a service node for `ttl` ms (NODES and its record), forgetting the
        nodes whose announcement ran out."""
        pipe = self.router.client_for(NODES).pipeline(transaction=True)
        pipe.set(node_key(node), json.dumps(record, separators=(",", ":")), px=ttl)
        pipe.zadd(NODES, {node: now + ttl})
        pipe.zremrangebyscore(NODES, "-inf", now)
        await pipe.execute()

    @_translated
    async def live_nodes(self, now: int) -> list[dict]:
        """The records of the nodes whose announcement has not run out, by node id."""
        client = self.router.client_for(NODES)
        ids = await client.zrangebyscore(NODES, now, "+inf")
        if not ids:
            return []
        records = await client.mget([node_key(str(node)) for node in ids])
        return [json.loads(r) for r in records if r is not None]

    @_translated
    async def add_lags(self, interval: int, lags: list[int], keep: int) -> None:
        """Add offline lags (ms) recorded by this node in `interval` (kept `keep` ms)."""
        key = lags_key(interval)
        pipe = self.router.client_for(key).pipeline(transaction=True)
        pipe.rpush(key, *lags)
        pipe.pexpire(key, keep)
        await pipe.execute()

    @_translated
    async def claim_history_point(self, interval: int, node: str, keep: int) -> bool:
        """True for exactly one caller per `interval`: the node that writes its point."""
        key = history_claim(interval)
        return bool(await self.router.client_for(key).set(key, node, nx=True, px=keep))

    @_translated
    async def history_inputs(self, interval: int) -> tuple[int, int, list[int], dict | None]:
        """(global feed's seq, distinct users, lags of `interval`, the newest point)."""
        client = self.router.client_for(FEED.seq)
        pipe = client.pipeline(transaction=True)
        pipe.get(FEED.seq)
        pipe.zcard(USERS)
        pipe.lrange(lags_key(interval), 0, -1)
        pipe.lindex(HISTORY, -1)
        seq, users, lags, last = await pipe.execute()
        point = json.loads(last) if last else None
        return int(seq or 0), int(users), [int(x) for x in lags], point

    @_translated
    async def add_history_point(self, point: dict, kept: int) -> None:
        """Append a point to the history, keeping the newest `kept`."""
        pipe = self.router.client_for(HISTORY).pipeline(transaction=True)
        pipe.rpush(HISTORY, json.dumps(point, separators=(",", ":")))
        pipe.ltrim(HISTORY, -kept, -1)
        await pipe.execute()

    @_translated
    async def history_points(self, count: int) -> list[dict]:
        """The newest `count` history points, oldest first."""
        raw = await self.router.client_for(HISTORY).lrange(HISTORY, -count, -1)
        return [json.loads(item) for item in raw]

    # -- event logs -------------------------------------------------------------------

    @_translated
    async def read_channel(self, channel: str, cursor: int, epoch: str | None = None
                           ) -> LogSlice:  # fmt: skip
        """The channel's events after `cursor` (or a reset), read atomically.

        `epoch` is the cursor's: a log of another epoch answers reset. None takes the
        cursor to be of the current log (bare cursors, from before epochs existed).
        """
        return await self._read_log(self.keys(channel), cursor, epoch)

    @_translated
    async def read_feed(self, cursor: int | None, epoch: str | None = None) -> LogSlice:
        """The global feed's events after `cursor` (as read_channel); None: "from now on"."""
        if cursor is None:
            seq, current = await self.router.client_for(FEED.seq).mget(FEED.seq, FEED.epoch)
            position = int(seq or 0)
            return LogSlice(position, position, position, epoch=_text(current))
        return await self._read_log(FEED, cursor, epoch)

    async def _read_log(self, k: LogKeys, cursor: int, epoch: str | None) -> LogSlice:
        for _ in range(_READ_RETRIES):

            def queue(pipe: Packed) -> tuple[int, Any]:
                return _READ_COMMANDS, self._queue_read(pipe, k, cursor, epoch)

            replies, parse = await self._batcher.call(k.seq, queue)
            log = parse(replies)
            if log is not None:
                return log
        raise StoreBusy(f"could not read {k.events}: it keeps growing faster than read")

    def _queue_read(self, pipe: Packed, k: LogKeys, cursor: int, epoch: str | None
                    ) -> Callable[[list], LogSlice | None]:  # fmt: skip
        """Queue MGET seq epoch, LLEN and LRANGE of the newest events of the log whose keys
        `k` names (_READ_COMMANDS commands); returns a parser of their replies.

        The LRANGE counts from the end: as many events as this node last saw after
        `cursor`, plus _READ_SLACK for those appended since. Appends go to the end and
        trims take from the front, so what it reads is the newest events whatever was
        trimmed meanwhile, and their ids follow from seq. The parser returns None only
        when more than the slack were appended since: the read must be repeated.
        """
        newest = max(self._seqs.get(k.events) or 0, cursor)
        pipe.raw(k.read_commands(newest - cursor + _READ_SLACK), _READ_COMMANDS)

        def parse(replies: list) -> LogSlice | None:
            (seq_text, current), length, raw = replies[0], replies[1], replies[2]
            seq = int(seq_text or 0)
            base = seq - length
            self._seqs.put(k.events, seq)
            if cursor < base or cursor > seq or (epoch is not None and epoch != current):
                return LogSlice(cursor, seq, base, reset=True, epoch=current)
            if len(raw) < seq - cursor:
                return None
            first = cursor + 1  # raw ends at seq: skip what is at or before the cursor
            skip = len(raw) - (seq - cursor)
            events = [self._event(first + i, item) for i, item in enumerate(raw[skip:])]
            return LogSlice(cursor, seq, base, events, epoch=current)

        return parse

    def _event(self, ident: int, raw: str) -> Event:
        """The event of id `ident` stored as `raw`: parsed once, shared by later reads.

        Polls read the newest events of their channel over and over; each is parsed (and
        its answer's JSON prepared, see Event) once, not once per poll. Shared events are
        never modified.
        """
        event = self._events.get((ident, raw))
        if event is None:
            event = Event(ident, raw)
            self._events.put((ident, raw), event)
        return event

    @_translated
    async def trim_events_before(self, channel: str | None, cutoff: int) -> int:
        """Drop events older than `cutoff` (ms) from a channel's log (None: the global feed)."""
        events_key = FEED.events if channel is None else self.keys(channel).events

        async def attempt(pipe: Any) -> int:
            await pipe.watch(events_key)
            head = await pipe.lrange(events_key, 0, 99)
            old = next((i for i, e in enumerate(head) if json.loads(e)["ts"] >= cutoff), len(head))
            if old == 0:
                await pipe.unwatch()
                return 0
            pipe.multi()
            pipe.ltrim(events_key, old, -1)
            await pipe.execute()
            return old

        dropped = 0
        while True:
            trimmed = await transport.watched(self.router, events_key, attempt)
            dropped += trimmed
            if trimmed < 100:
                return dropped

    # -- membership reads -------------------------------------------------------------

    @_translated
    async def members_page(self, channel: str, after: str | None, limit: int,
                           prefix: str = "") -> ChannelPage:  # fmt: skip
        """Counts and the members after `after` (by name) whose names start with `prefix`,
        at most `limit`, with one log position.

        The counts are two ZCARDs, O(1) whatever the channel's size: users, and registered
        tabs (a tab that went silent while its user stays online counts until a sweep
        prunes it, at most a sweep interval after its deadline).
        """
        k = self.keys(channel)
        client = self.router.client_for(k.seq)
        pipe = client.pipeline(transaction=True)
        pipe.zcard(k.members)
        pipe.zcard(k.connections)
        pipe.zrangebylex(k.members, *_lex_range(after, prefix), 0, limit)
        pipe.mget(k.seq, k.epoch)
        users, connections, names, (seq, epoch) = await pipe.execute()
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(k.member(name))
            pipe.zcard(k.conns(name))
        replies = await pipe.execute()
        members = []
        for i, name in enumerate(names):
            record, alive = replies[2 * i], replies[2 * i + 1]
            if record:  # it left between the two reads; its event is after `seq`
                members.append(
                    Member(name, load_info(record.get("info")), int(record.get("since", 0)), alive)
                )
        following = names[-1] if len(names) == limit else None
        return ChannelPage(channel, users, connections, int(seq or 0), members, following, epoch)

    @_translated
    async def member_info(self, channel: str, user: str) -> tuple[bool, object]:
        """(is a member, the member's info) in one read."""
        k = self.keys(channel)
        record = await self.router.client_for(k.seq).hgetall(k.member(user))
        return bool(record), load_info(_text(record.get("info")))

    @_translated
    async def live_tabs(self, channel: str, user: str, conn: str, now: int) -> tuple[int, bool]:
        """(the user's tabs alive at `now` in the channel, whether `conn` is one of them)."""
        k = self.keys(channel)
        count, deadline = await self._per_node(
            [(k.seq, ("ZCOUNT", k.conns(user), now, "+inf")),
             (k.seq, ("ZSCORE", k.conns(user), conn))]
        )  # fmt: skip
        return int(count), deadline is not None and float(deadline) >= now

    @_translated
    async def channel_known(self, channel: str) -> bool:
        """True when the channel has members or a log."""
        k = self.keys(channel)
        users, has_log = await self._per_node(
            [(k.seq, ("ZCARD", k.members)), (k.seq, ("EXISTS", k.seq))]
        )
        return bool(users) or bool(has_log)

    @_translated
    async def channels_page(self, after: str | None, limit: int, history: bool = False,
                            prefix: str = ""
                            ) -> tuple[list[tuple[str, int, int]], str | None]:  # fmt: skip
        """([(channel, users, connections)], next) for the channels after `after` by name
        whose names start with `prefix`.

        The channels with at least one member; with `history`, every channel with a log
        (including those whose members are all gone).
        """
        index = LOGS if history else REGISTRY
        names = await self.router.client_for(index).zrangebylex(
            index, *_lex_range(after, prefix), 0, limit
        )
        commands = []
        for name in names:
            k = self.keys(str(name))
            commands += [(k.seq, ("ZCARD", k.members)), (k.seq, ("ZCARD", k.connections))]
        replies = await self._per_node(commands)
        rows = [(str(name), int(replies[2 * i]), int(replies[2 * i + 1]))
                for i, name in enumerate(names)]  # fmt: skip
        return rows, (str(names[-1]) if len(names) == limit else None)

    async def _per_node(self, commands: list[tuple[str, tuple]]) -> list:
        """Run (routing key, command) pairs, one pipeline per node at once; replies in order."""
        groups: dict[aioredis.Redis, list[int]] = {}
        for i, (key, _) in enumerate(commands):
            groups.setdefault(self.router.client_for(key), []).append(i)
        replies: list = [None] * len(commands)

        async def run(client: aioredis.Redis, indexes: list[int]) -> None:
            pipe = client.pipeline(transaction=False)
            for i in indexes:
                pipe.execute_command(*commands[i][1])
            for i, reply in zip(indexes, await pipe.execute(), strict=True):
                replies[i] = reply

        await asyncio.gather(*(run(client, indexes) for client, indexes in groups.items()))
        return replies

    @_translated
    async def sweep_candidates(self, channels: list[str], now: int, cutoff: int
                               ) -> list[SweepRow]:  # fmt: skip
        """What a sweep must look at, in one round trip per node for many channels."""
        commands = []
        for channel in channels:
            k = self.keys(channel)
            commands += [
                (k.seq, ("ZRANGEBYSCORE", k.deadlines, "-inf", now, "LIMIT", 0, 1000)),
                (k.seq, ("LINDEX", k.events, 0)),
                (k.seq, ("ZRANGEBYSCORE", k.connections, "-inf", now)),
            ]
        replies = await self._per_node(commands)
        found = []
        for i, channel in enumerate(channels):
            overdue, head, dead = replies[3 * i], replies[3 * i + 1], replies[3 * i + 2]
            old = head is not None and json.loads(head)["ts"] < cutoff
            found.append(SweepRow(channel, overdue, old, head is None, dead))
        return found

    @_translated
    async def prune_dead_tabs(self, channel: str, dead: list[str], now: int, ttl: int) -> None:
        """Forget the tabs whose deadline is <= now, `dead` being what a read at `now` found.

        Both indexes are pruned by the same score range in one transaction, so they stay
        in step without a WATCH: between the read and this write a tab can only leave that
        range (a refresh or a join sets a deadline after `now`), never enter it, so every
        user with a tab in it is in `dead`. Pruned tabs' next polls hear "expired".
        """
        k = self.keys(channel)
        tabs: dict[str, list[str]] = {}
        for entry in dead:
            user, _, conn = entry.partition("/")
            tabs.setdefault(user, []).append(conn)
        pipe = self.router.client_for(k.seq).pipeline(transaction=True)
        pipe.zremrangebyscore(k.connections, "-inf", now)
        for user, conns in tabs.items():
            pipe.zremrangebyscore(k.conns(user), "-inf", now)
            pipe.hset(k.gone(user), mapping=dict.fromkeys(conns, "expired"))
            pipe.pexpire(k.gone(user), ttl)
        await pipe.execute()

    @_translated
    async def forget_if_idle(self, channel: str) -> bool:
        """Forget the log of a channel that has no members and no retained events."""
        k = self.keys(channel)

        async def attempt(pipe: Any) -> bool:
            await pipe.watch(k.members, k.events)
            if await pipe.zcard(k.members) or await pipe.llen(k.events):
                await pipe.unwatch()
                return False
            pipe.multi()
            pipe.delete(k.seq, k.epoch)  # a later log is a new one: old cursors get reset
            await pipe.execute()
            return True

        if not await transport.watched(self.router, k.seq, attempt):
            return False
        self._seqs.pop(k.events)
        self._keys.pop(channel)
        await self._command(LOGS, "ZREM", LOGS, channel)
        await self._command(REGISTRY, "ZREM", REGISTRY, channel)
        if await self._command(k.seq, "EXISTS", k.seq, k.members):  # a join raced with us
            await self._command(LOGS, "ZADD", LOGS, 0, channel)
        return True


def _lex_range(after: str | None, prefix: str) -> tuple[str, str]:
    """ZRANGEBYLEX bounds of the names after `after` that start with `prefix`.

    Names use printable ASCII below DEL (presence.service.names), so every name starting
    with `prefix` sorts before `prefix` + DEL.
    """
    low = f"[{prefix}" if prefix else "-"
    if after is not None and after >= prefix:
        low = f"({after}"
    return low, (f"({prefix}\x7f" if prefix else "+")


def _text(value: str | bytes | None) -> str | None:
    """A reply as text (the pools decode replies; the type stubs cannot know that)."""
    return value.decode() if isinstance(value, bytes) else value


def _queue_registered(channel: str) -> transport.Queue:
    """Queue ZADD of the channel into the registry and the index of logs."""
    commands = pack(b"ZADD", REGISTRY, 0, channel) + pack(b"ZADD", LOGS, 0, channel)

    def queue(pipe: Packed) -> tuple[int, None]:
        pipe.raw(commands, 2)
        return 2, None

    return queue


def _append_commands(k: LogKeys, text: str, history: int, kind: str) -> list[tuple]:
    """The commands that append an event (JSON `text`) to a log; the first reply is its id.

    The wake-up carries the event's type: nodes answer presence events at once and may
    pace chat messages (see Feed.pace).
    """
    return [
        ("INCR", k.seq),
        ("RPUSH", k.events, text),
        ("LTRIM", k.events, -history, -1),
        ("SET", k.epoch, secrets.token_hex(6), "NX"),  # a new log: a new epoch
        ("SPUBLISH", k.wake, kind),
    ]


def _queue_append(k: LogKeys, text: str, history: int, kind: str) -> transport.Queue:
    """Queue the append of an event to a log (see _append_commands)."""

    def queue(pipe: Packed) -> tuple[int, None]:
        commands = _append_commands(k, text, history, kind)
        pipe.raw(b"".join(pack(*c) for c in commands), len(commands))
        return len(commands), None

    return queue


async def _removal_state(pipe: Any, k: ChannelKeys, user: str, kind: str, now: int
                         ) -> tuple[object, dict[str, int], bool] | None:  # fmt: skip
    """(info, {tab: deadline}, left within the leave grace) of a member that `kind` may
    remove, else None.

    Reads as little as it can: the nodes that lose an offline race stop after two reads.
    """
    if kind == "offline" and await pipe.exists(k.online(user)):
        return None
    member = await pipe.hgetall(k.member(user))
    if not member:
        return None
    tabs = {
        conn: int(score) for conn, score in await pipe.zrange(k.conns(user), 0, -1, withscores=True)
    }
    if kind == "leave" and any(deadline > now for deadline in tabs.values()):
        return None
    left = False
    if kind == "offline":
        # the mark outlives any stray refresh (no TTL); a tab refreshed since the leave
        # (a registered one that was silent, back) has a deadline past the grace's end
        mark = await pipe.get(k.leaving(user))
        left = bool(mark and mark.isdigit() and all(d <= int(mark) for d in tabs.values()))
    return load_info(member.get("info")), tabs, left
