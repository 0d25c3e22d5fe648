"""Store gateway: the only module that knows the store's key names and command shapes.

Key layout (every key of one channel carries the hash tag `{<channel>}`):

    presence:{C}:online:<user>   string "1" with PX = --timeout, refreshed by each poll or
                                 heartbeat of any of the user's tabs. Its expiry is `offline`.
    presence:{C}:member:<user>   hash {since, info}: exists exactly while the user is a member.
    presence:{C}:conns:<user>    zset conn -> deadline (ms): the user's registered tabs.
    presence:{C}:members         zset user -> 0: lexicographic member pages, ZCARD = users.
    presence:{C}:deadlines       zset user -> deadline (ms): the reconciliation sweep's index.
    presence:{C}:connections     zset "<user>/<conn>" -> deadline (ms): ZCARD = registered
                                 tabs. Invariant: it holds "<user>/<conn>" exactly when
                                 conns:<user> holds conn, with the same deadline; every
                                 write changes both in one transaction (dead tabs are
                                 pruned from both by the same score range).
    presence:{C}:gone:<user>     hash conn -> "kicked" | "expired" | "left", PX = timeout:
                                 why a tab of the user is no longer joined, for its next poll.
    presence:{C}:seq             id of the channel's newest event (INCR).
    presence:{C}:epoch           random id of this log, set (NX) with its first event: a
                                 store that restarts empty starts a new epoch, so cursors
                                 into the lost log are recognised (they carry the epoch).
    presence:{C}:events          list of the retained events, oldest first, stored without
                                 their id: the last element has id = seq, the one before
                                 seq - 1, and so on.
    presence:channels            zset channel -> 0: the channels with at least one member
                                 (paged by name); added by a join, removed by the removal
                                 of the last member, each in the same transaction.
    presence:logs                zset channel -> 0: the channels with an event log (the
                                 sweep's index; history-only channels stay reachable).
    presence:feed:seq, presence:feed:events, presence:feed:epoch   the global feed:
                                 every channel's events, each with a "channel" field,
                                 same layout as a channel log.

Pub/sub: every recorded event PUBLISHes `presence:wake <channel>` in the same transaction,
so every node learns that the channel's log grew. Nothing else in the code base builds
a key string. The registry and the global feed are written in the same MULTI as the
channel's keys, so this layout needs a single (non-cluster) store.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import secrets
import uuid
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.driver_info import DriverInfo
from redis.exceptions import ResponseError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig

from presence.service.names import format_cursor

try:  # the reader redis-py's hiredis parser keeps, and its "no complete reply yet" value
    from hiredis import Reader as _HiredisReader
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH_DATA
except ImportError:  # no hiredis (or another redis-py): _exchange reads through redis-py
    _HiredisReader = _NOT_ENOUGH_DATA = None

PREFIX = "presence"
REGISTRY = f"{PREFIX}:channels"
LOGS = f"{PREFIX}:logs"
FEED_SEQ = f"{PREFIX}:feed:seq"
FEED_EVENTS = f"{PREFIX}:feed:events"
FEED_EPOCH = f"{PREFIX}:feed:epoch"
WAKE_CHANNEL = f"{PREFIX}:wake"
EXPIRY_CHANNEL = f"{PREFIX}:expired"  # what `presence serve` passes to --keys-expire-notify

_ONLINE_KEY = re.compile(r"presence:\{([A-Za-z0-9_.-]{1,64})\}:online:([A-Za-z0-9_.@-]{1,128})")
_WATCH_RETRIES = 50
_GONE = {"offline": "expired", "leave": "left", "kick": "kicked"}  # removal -> tab's reason
_BATCH_MAX = 256  # refreshes per shared transaction
_IN_FLIGHT_MAX = 1  # shared transactions at once (the next one gathers meanwhile)
_EVENTS_CACHED = 10_000  # parsed events kept for reuse (see Gateway._event)
_READ_COMMANDS = 3  # commands of a log read (see Gateway._queue_read)
# Given to every pooled connection, so that opening one makes no garbage in reference
# cycles (see presence.runtime): redis-py otherwise reads its version through
# importlib.metadata per connection, and tries CLIENT MAINT_NOTIFICATIONS (a Redis
# Enterprise handshake), keeping the error's traceback in a cycle when it fails.
_DRIVER_INFO = DriverInfo()
_NO_MAINT_NOTIFICATIONS = MaintNotificationsConfig(enabled=False)


class StoreSetupError(RuntimeError):
    """The store cannot deliver expiry notifications and we may not enable them."""


class ChannelKeys:
    """The key names of one channel (all under the hash tag `{channel}`)."""

    __slots__ = (
        "channel",
        "tag",
        "members",
        "deadlines",
        "connections",
        "seq",
        "events",
        "epoch",
        "_tag",
        "_connections",
        "_deadlines",
        "_read_head",
    )

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.tag = f"{PREFIX}:{{{channel}}}"
        self.members = f"{self.tag}:members"
        self.deadlines = f"{self.tag}:deadlines"
        self.connections = f"{self.tag}:connections"
        self.seq = f"{self.tag}:seq"
        self.events = f"{self.tag}:events"
        self.epoch = f"{self.tag}:epoch"
        # Packed once: what the hot refresh sends about this channel (see refresh_commands).
        self._tag = self.tag.encode()
        self._connections = _bulk(self.connections.encode())
        self._deadlines = _bulk(self.deadlines.encode())
        self._read_head = (
            _pack(b"MGET", self.seq, self.epoch)
            + _pack(b"LLEN", self.events)
            + b"*4\r\n$6\r\nLRANGE\r\n"
            + _bulk(self.events.encode())
        )

    def read_commands(self, start: int) -> bytes:
        """A log read, packed: MGET seq epoch, LLEN events, LRANGE events start -1."""
        return b"%b$%d\r\n%d\r\n$2\r\n-1\r\n" % (self._read_head, len(b"%d" % start), start)

    def refresh_commands(self, user: str, conn: str, deadline: int, ttl: int) -> bytes:
        """The four writes of a joined tab's refresh, packed in RESP: SET <online> 1 PX ttl
        XX, ZADD <conns> XX CH deadline conn, ZADD <connections> XX deadline user/conn,
        ZADD <deadlines> XX deadline user (what _pack would make of them, only faster)."""
        u, c, d = user.encode(), conn.encode(), _bulk(b"%d" % deadline)
        return b"".join(
            (
                b"*6\r\n$3\r\nSET\r\n",
                _bulk(self._tag + b":online:" + u),
                b"$1\r\n1\r\n$2\r\nPX\r\n",
                _bulk(b"%d" % ttl),
                b"$2\r\nXX\r\n",
                b"*6\r\n$4\r\nZADD\r\n",
                _bulk(self._tag + b":conns:" + u),
                b"$2\r\nXX\r\n$2\r\nCH\r\n",
                d,
                _bulk(c),
                b"*5\r\n$4\r\nZADD\r\n",
                self._connections,
                b"$2\r\nXX\r\n",
                d,
                _bulk(u + b"/" + c),
                b"*5\r\n$4\r\nZADD\r\n",
                self._deadlines,
                b"$2\r\nXX\r\n",
                d,
                _bulk(u),
            )
        )

    def online(self, user: str) -> str:
        return f"{self.tag}:online:{user}"

    def member(self, user: str) -> str:
        return f"{self.tag}:member:{user}"

    def conns(self, user: str) -> str:
        return f"{self.tag}:conns:{user}"

    def gone(self, user: str) -> str:
        return f"{self.tag}:gone:{user}"


def parse_online_key(key: str) -> tuple[str, str] | None:
    """(channel, user) when `key` is a presence key, else None (other keys expire too)."""
    match = _ONLINE_KEY.fullmatch(key)
    return (match.group(1), match.group(2)) if match else None


class Event(dict):
    """An event as read from a log: {"id", **stored fields}, with its JSON text ready.

    `json` is the stored JSON with the id put first, exactly what encoding the dict
    gives (the store keeps what json.dumps wrote, compactly), so answers can be rendered
    without encoding their events again (presence.web.base.encode_json).
    """

    __slots__ = ("json",)

    def __init__(self, ident: int, raw: str) -> None:
        super().__init__(id=ident)
        self.update(json.loads(raw))
        if "id" in self or not raw.startswith('{"'):
            self["id"] = ident  # (cannot happen with what record() writes)
            self.json = json.dumps(self, separators=(",", ":"))
        else:
            self.json = f'{{"id":{ident},{raw[1:]}'


@dataclass(slots=True)
class LogSlice:
    """What a read of an event log found: the events after the cursor, or a reset.

    `reset` is true when the cursor is older than the retained history, newer than the
    log, or of another epoch (the store lost the log it pointed into); `events` then is
    empty and `seq` is where to resume. `epoch` is the log's (None before its first event).
    """

    cursor: int
    seq: int
    base: int  # id just before the oldest retained event
    events: list[dict] = field(default_factory=list)
    reset: bool = False
    epoch: str | None = None


@dataclass(slots=True)
class Refresh:
    """What a poll's or heartbeat's refresh found: whether the tab is joined, else why not.

    `reason` (when not joined) is "kicked", "expired", "left" or "unknown"; `seq` is the
    channel's newest event id (and `epoch` its log's epoch) when asked for.
    """

    joined: bool
    reason: str | None = None
    seq: int | None = None
    epoch: str | None = None


@dataclass
class Member:
    user: str
    info: object
    since: int
    connections: int


@dataclass
class ChannelPage:
    """Counts of one channel plus one page of its members and the log position they match."""

    channel: str
    users: int
    connections: int
    seq: int
    members: list[Member]
    next: str | None
    epoch: str | None = None

    @property
    def cursor(self) -> str:
        """The log position this page matches, as a client cursor."""
        return format_cursor(self.epoch, self.seq)


@dataclass
class Removal:
    """A user removed by remove_user: the event recorded for it and its former deadline."""

    event: dict
    deadline: int | None


class Gateway:
    """Every store operation the presence domain needs, each as few round trips as possible.

    Names passed in must already be valid (see presence.service.names). Store errors
    (redis.exceptions.ConnectionError and friends) propagate to the caller.
    """

    def __init__(self, redis: aioredis.Redis, history: int = 1000) -> None:
        self.redis = redis
        self.history = history
        self._bases: dict[str, int] = {}  # events key -> last seen base, to read in one trip
        self._keys: dict[str, ChannelKeys] = {}
        self._batch: list = []  # refreshes waiting for the next shared transaction
        self._events: dict[tuple[int, str], Event] = {}  # recently read events (_event)
        self._flush_due = False  # a flush of _batch is scheduled
        self._batches: set[asyncio.Task] = set()  # the shared transactions running
        self._in_flight = 0  # shared transactions sent and not yet answered

    @classmethod
    def from_url(cls, url: str, history: int = 1000, max_connections: int = 64) -> Gateway:
        """A gateway over a bounded, blocking connection pool to `url`."""
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=30,
            decode_responses=True,
            driver_info=_DRIVER_INFO,
            maint_notifications_config=_NO_MAINT_NOTIFICATIONS,
        )
        return cls(aioredis.Redis(connection_pool=pool), history)

    def keys(self, channel: str) -> ChannelKeys:
        keys = self._keys.get(channel)
        if keys is None:
            if len(self._keys) > 100_000:
                self._keys.clear()
            keys = self._keys[channel] = ChannelKeys(channel)
        return keys

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    def pubsub(self):
        """A pub/sub object on its own connection (the caller subscribes and closes it)."""
        return self.redis.pubsub(ignore_subscribe_messages=True)

    # -- expiry notifications -------------------------------------------------------

    async def expiry_channel(self) -> str:
        """The pub/sub channel on which this store announces expired keys.

        The bundled store announces on its `keys-expire-notify` channel when set. Otherwise
        keyspace events are used: when `notify-keyspace-events` lacks `E` and `x` they are
        enabled with CONFIG SET; where CONFIG is unavailable (managed Redis), a probe key
        checks that expiries are announced. Raises StoreSetupError when they are not.
        """
        try:
            found = await self.redis.config_get("keys-expire-notify")
        except ResponseError:
            found = {}
        if found.get("keys-expire-notify"):
            return found["keys-expire-notify"]
        db = self.redis.connection_pool.connection_kwargs.get("db", 0)
        channel = f"__keyevent@{db}__:expired"
        try:
            flags = (await self.redis.config_get("notify-keyspace-events")).get(
                "notify-keyspace-events", ""
            )
            if "E" not in flags or not ("x" in flags or "A" in flags):
                await self.redis.config_set("notify-keyspace-events", flags + "Ex")
        except ResponseError as exc:
            if not await self._expiries_announced(channel):
                raise StoreSetupError(
                    f"the store does not publish key expiries and we may not enable them ({exc});"
                    " set `notify-keyspace-events Ex` in its redis.conf (or run "
                    "`redis-cli config set notify-keyspace-events Ex`)"
                ) from None
        return channel

    async def _expiries_announced(self, channel: str, wait: float = 2.0) -> bool:
        """True when a probe key's expiry is announced on `channel` within `wait` seconds."""
        probe = f"{PREFIX}:probe:{uuid.uuid4().hex}"
        pubsub = self.pubsub()
        try:
            await pubsub.subscribe(channel)
            await self.redis.set(probe, "1", px=1)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while loop.time() < deadline:
                await self.redis.exists(probe)  # a read expires the key lazily, if it is due
                message = await pubsub.get_message(timeout=0.05)
                if message and message.get("data") == probe:
                    return True
            return False
        finally:
            await pubsub.aclose()

    # -- presence writes --------------------------------------------------------------

    async def register(
        self, channel: str, user: str, conn: str, now: int, ttl: int, info: str | None = None
    ) -> bool:
        """Make `conn` a joined tab of `user`, alive until now + ttl (ms); True on a first join.

        True means this call made the user a member (the caller records `join`). `info`,
        when given, replaces the member's info JSON. Forgets why the tab was gone, if it was.
        """
        k = self.keys(channel)
        deadline = now + ttl

        def queue(pipe) -> tuple[int, None]:
            pipe.hsetnx(k.member(user), "since", now)
            pipe.set(k.online(user), "1", px=ttl)
            pipe.zadd(k.conns(user), {conn: deadline})
            pipe.zadd(k.connections, {f"{user}/{conn}": deadline})
            pipe.zadd(k.members, {user: 0})
            pipe.zadd(k.deadlines, {user: deadline})
            pipe.hdel(k.gone(user), conn)
            pipe.zadd(REGISTRY, {channel: 0})
            if info is not None:
                pipe.hset(k.member(user), "info", info)
            return 8 + (info is not None), None

        replies, _ = await self._batched(queue)
        return replies[0] == 1

    async def refresh(
        self,
        channel: str,
        user: str,
        conn: str,
        now: int,
        ttl: int,
        cursor: int | None = None,
        epoch: str | None = None,
    ) -> tuple[Refresh, LogSlice | None]:
        """Keep a joined tab alive until now + ttl (ms) and, given a cursor, read the log.

        Never registers anything: every write is XX (it only updates what exists), so a
        tab that was kicked, left or expired stays gone and Refresh says why. One leak is
        accepted: a tab that left while another tab of its user is alive extends the
        user's presence key once. Without a cursor, Refresh.seq and .epoch are read only
        for a tab that is not joined; `epoch` is the cursor's (None: the log's).
        Refreshes issued together share one MULTI/EXEC, each still atomic.

        The usual case, a joined tab, takes four writes: SET XX of the presence key and
        ZADD XX of the tab's deadline in conns:<user> (with CH: 1 says the tab was there),
        connections and deadlines. Anything else (the key or the tab missing, or the same
        deadline written twice in one millisecond) repeats the refresh in the exact form,
        which also reads whether the tab is registered and why it is gone.
        """
        k = self.keys(channel)
        deadline = now + ttl

        def queue(pipe) -> tuple[int, object]:
            pipe.raw(k.refresh_commands(user, conn, deadline, ttl), 4)
            if cursor is None:
                return 4, None
            return 4 + _READ_COMMANDS, self._queue_read(pipe, k, cursor, epoch)

        replies, parse = await self._batched(queue)
        if not (replies[0] and replies[1] == 1):
            return await self._refresh_exactly(k, user, conn, deadline, ttl, cursor, epoch)
        if parse is None:
            return Refresh(True), None
        log = parse(replies[4:])
        if log is None:
            log = await self._read_log(k, cursor, epoch)
        return Refresh(True), log

    async def _refresh_exactly(
        self,
        k: ChannelKeys,
        user: str,
        conn: str,
        deadline: int,
        ttl: int,
        cursor: int | None,
        epoch: str | None,
    ) -> tuple[Refresh, LogSlice | None]:
        """refresh() in full: the same XX writes, plus whether the tab is registered (read
        before them), why it is gone and, without a cursor, the log's seq and epoch."""

        def queue(pipe) -> tuple[int, object]:
            pipe.zscore(k.conns(user), conn)
            pipe.set(k.online(user), "1", px=ttl, xx=True)
            pipe.zadd(k.conns(user), {conn: deadline}, xx=True)
            pipe.zadd(k.connections, {f"{user}/{conn}": deadline}, xx=True)
            pipe.zadd(k.deadlines, {user: deadline}, xx=True)
            pipe.hget(k.gone(user), conn)
            if cursor is None:
                pipe.get(k.seq)
                pipe.get(k.epoch)
                return 8, None
            return 6 + _READ_COMMANDS, self._queue_read(pipe, k, cursor, epoch)

        replies, parse = await self._batched(queue)
        registered, alive, marker = replies[0] is not None, bool(replies[1]), replies[5]
        if registered and alive:
            status = Refresh(True)
        else:
            status = Refresh(False, marker or ("expired" if registered else "unknown"))
        if parse is None:
            status.seq, status.epoch = int(replies[6] or 0), replies[7]
            return status, None
        log = parse(replies[-_READ_COMMANDS:])
        if log is None:
            log = await self._read_log(k, cursor, epoch)
        return status, log

    def _batched(self, queue) -> asyncio.Future:
        """Run `queue(pipe)` in the next shared transaction; resolves to (its replies, parser).

        `queue` queues its commands and returns (how many, anything to hand back). All
        calls made in one event-loop iteration go out in one round trip; while a shared
        transaction is in flight, the next one gathers the calls made meanwhile (group
        commit: under load, fewer and larger transactions, at most one round trip later).
        """
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._batch.append((queue, future))
        self._schedule_flush(loop)
        return future

    def _schedule_flush(self, loop) -> None:
        if self._batch and not self._flush_due and self._in_flight < _IN_FLIGHT_MAX:
            self._flush_due = True
            loop.call_soon(self._flush_batch)

    def _flush_batch(self) -> None:
        self._flush_due = False
        batch, self._batch = self._batch, []
        for start in range(0, len(batch), _BATCH_MAX):
            self._in_flight += 1
            task = asyncio.ensure_future(self._run_batch(batch[start : start + _BATCH_MAX]))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _run_batch(self, batch: list) -> None:
        try:
            await self._run_batch_now(batch)
        finally:
            self._in_flight -= 1
            self._schedule_flush(asyncio.get_running_loop())

    async def _run_batch_now(self, batch: list) -> None:
        pipe = _Packed()
        spans = [(*queue(pipe), future) for queue, future in batch]
        try:
            replies = await self._transaction(pipe)
        except Exception as exc:
            for _, _, future in spans:
                if not future.done():
                    future.set_exception(exc)
            return
        at = 0
        for count, extra, future in spans:
            if not future.done():
                mine = replies[at : at + count]
                error = next((r for r in mine if isinstance(r, Exception)), None)
                if error is None:
                    future.set_result((mine, extra))
                else:
                    future.set_exception(error)
            at += count

    async def _transaction(self, pipe: _Packed) -> list:
        """Send the commands of `pipe` in one MULTI/EXEC; returns EXEC's replies, raw.

        What a redis-py pipeline does, minus its per-command packing and reply callbacks
        (the shared refresh transaction is the hot path): same pool, same retries on a
        lost connection.
        """
        data = b"".join(pipe.parts) + _EXEC
        pool = self.redis.connection_pool
        conn = await pool.get_connection()
        try:
            return await conn.retry.call_with_retry(
                lambda: _exchange(conn, data, pipe.count), lambda _: conn.disconnect()
            )
        finally:
            await pool.release(conn)

    async def record(self, channel: str, event: dict) -> dict:
        """Append `event` to the channel's log and the global feed; returns it with its id."""
        pipe = self.redis.pipeline(transaction=True)
        self._queue_append(pipe, self.keys(channel), event)
        replies = await pipe.execute()
        return {"id": replies[0], **event}

    async def drop_connection(
        self, channel: str, user: str, conn: str, now: int, ttl: int
    ) -> tuple[bool, int]:
        """Forget one tab (its polls then hear "left" for ttl ms); returns (user is a
        member, tabs of the user still alive)."""
        k = self.keys(channel)
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(k.conns(user), conn)
        pipe.zrem(k.connections, f"{user}/{conn}")
        pipe.zcount(k.conns(user), f"({now}", "+inf")
        pipe.exists(k.member(user))
        pipe.hset(k.gone(user), conn, "left")
        pipe.pexpire(k.gone(user), ttl)
        _, _, alive, member, _, _ = await pipe.execute()
        return bool(member), alive

    async def remove_user(
        self, channel: str, user: str, now: int, kind: str, make_event, ttl: int
    ) -> Removal | None:
        """Remove a member and record its event in one transaction, if `kind` still applies.

        kind "offline": only if the user's presence key is gone (it expired);
        "leave": only if none of the user's tabs is alive; "kick": whenever a member.
        `make_event(info)` builds the event. Each of the user's tabs is marked gone (for
        ttl ms) with reason "expired", "left" or "kicked", which its next poll reports.
        Removing the last member unregisters the channel in the same transaction.
        Across any number of nodes racing on the same user, exactly one call returns a
        Removal; the others return None.
        """
        k = self.keys(channel)
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(_WATCH_RETRIES):
                try:
                    await pipe.watch(k.online(user), k.member(user), k.conns(user))
                    state = await _removal_state(pipe, k, user, kind, now)
                    if state is None:
                        await pipe.unwatch()
                        return None
                    info, tabs = state
                    last = await _last_member(pipe, k)
                    event = make_event(info)
                    pipe.multi()
                    self._queue_append(pipe, k, event)
                    pipe.delete(k.online(user), k.member(user), k.conns(user))
                    pipe.zrem(k.members, user)
                    pipe.zrem(k.deadlines, user)
                    if tabs:
                        pipe.zrem(k.connections, *(f"{user}/{c}" for c in tabs))
                        pipe.hset(k.gone(user), mapping=dict.fromkeys(tabs, _GONE[kind]))
                        pipe.pexpire(k.gone(user), ttl)
                    if last:
                        pipe.zrem(REGISTRY, channel)
                    pipe.zcard(k.members)
                    replies = await pipe.execute()
                    if replies[-1] == 0 and not last:  # the others left at the same time
                        await self._unregister_if_empty(channel)
                    return Removal({"id": replies[0], **event}, max(tabs.values(), default=None))
                except WatchError:
                    continue
        raise RuntimeError(f"could not remove {user} from {channel}: too much contention")

    async def _unregister_if_empty(self, channel: str) -> None:
        """Unregister a channel that has no members (after concurrent removals)."""
        k = self.keys(channel)
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(_WATCH_RETRIES):
                try:
                    await pipe.watch(k.members)
                    if await pipe.zcard(k.members):
                        await pipe.unwatch()
                        return
                    pipe.multi()
                    pipe.zrem(REGISTRY, channel)
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    def _queue_append(self, pipe, k: ChannelKeys, event: dict) -> None:
        """Queue the commands that append `event`; the first reply is its id."""
        pipe.incr(k.seq)
        pipe.rpush(k.events, json.dumps(event, separators=(",", ":")))
        pipe.ltrim(k.events, -self.history, -1)
        pipe.set(k.epoch, secrets.token_hex(6), nx=True)  # a new log: a new epoch
        pipe.incr(FEED_SEQ)
        pipe.rpush(FEED_EVENTS, json.dumps({**event, "channel": k.channel}, separators=(",", ":")))
        pipe.ltrim(FEED_EVENTS, -self.history, -1)
        pipe.set(FEED_EPOCH, secrets.token_hex(6), nx=True)
        pipe.zadd(LOGS, {k.channel: 0})
        pipe.publish(WAKE_CHANNEL, k.channel)

    # -- event logs -------------------------------------------------------------------

    async def read_channel(self, channel: str, cursor: int, epoch: str | None = None) -> LogSlice:
        """The channel's events after `cursor` (or a reset), read atomically.

        `epoch` is the cursor's: a log of another epoch answers reset. None takes the
        cursor to be of the current log (bare cursors, from before epochs existed).
        """
        return await self._read_log(self.keys(channel), cursor, epoch)

    async def read_feed(self, cursor: int | None, epoch: str | None = None) -> LogSlice:
        """The global feed's events after `cursor` (as read_channel); None: "from now on"."""
        if cursor is None:
            pipe = self.redis.pipeline(transaction=True)
            pipe.get(FEED_SEQ)
            pipe.get(FEED_EPOCH)
            seq, current = await pipe.execute()
            seq = int(seq or 0)
            return LogSlice(seq, seq, seq, epoch=current)
        return await self._read_log(_FEED_KEYS, cursor, epoch)

    async def _read_log(self, k, cursor: int, epoch: str | None) -> LogSlice:
        for _ in range(_WATCH_RETRIES):
            pipe = self.redis.pipeline(transaction=True)
            parse = self._queue_read(pipe, k, cursor, epoch)
            log = parse(await pipe.execute())
            if log is not None:
                return log
        raise RuntimeError(f"could not read {k.events}: it keeps being trimmed")

    def _queue_read(self, pipe, k, cursor: int, epoch: str | None):
        """Queue MGET seq epoch, LLEN and LRANGE from the cached base of the log whose keys
        `k` names (_READ_COMMANDS commands); returns a parser of their replies.

        The parser returns None when the base moved (the log was trimmed meanwhile): the
        LRANGE then started at the wrong index and the read must be repeated.
        """
        guess = self._bases.get(k.events, 0)
        start = max(cursor - guess, 0)
        if pipe.__class__ is _Packed and k.__class__ is ChannelKeys:
            pipe.raw(k.read_commands(start), _READ_COMMANDS)  # the same, packed faster
        else:
            pipe.mget(k.seq, k.epoch)
            pipe.llen(k.events)
            pipe.lrange(k.events, start, -1)

        def parse(replies) -> LogSlice | None:
            (seq, current), length, raw = replies[0], replies[1], replies[2]
            seq = int(seq or 0)
            base = seq - length
            if len(self._bases) > 100_000:
                self._bases.clear()
            self._bases[k.events] = base
            if cursor < base or cursor > seq or (epoch is not None and epoch != current):
                return LogSlice(cursor, seq, base, reset=True, epoch=current)
            if base != guess and cursor < seq:
                return None
            first = base + 1 + start
            events = [self._event(first + i, item) for i, item in enumerate(raw)]
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
            if len(self._events) >= _EVENTS_CACHED:
                self._events.clear()
            event = self._events[(ident, raw)] = Event(ident, raw)
        return event

    async def trim_events_before(self, channel: str | None, cutoff: int) -> int:
        """Drop events older than `cutoff` (ms) from a channel's log (None: the global feed)."""
        events_key = FEED_EVENTS if channel is None else self.keys(channel).events
        dropped = 0
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(_WATCH_RETRIES):
                try:
                    await pipe.watch(events_key)
                    head = await pipe.lrange(events_key, 0, 99)
                    old = next(
                        (i for i, e in enumerate(head) if json.loads(e)["ts"] >= cutoff), len(head)
                    )
                    if old == 0:
                        await pipe.unwatch()
                        return dropped
                    pipe.multi()
                    pipe.ltrim(events_key, old, -1)
                    await pipe.execute()
                    dropped += old
                except WatchError:
                    continue
        return dropped

    # -- membership reads -------------------------------------------------------------

    async def members_page(
        self, channel: str, after: str | None, limit: int, now: int
    ) -> ChannelPage:
        """Counts and the members after `after` (by name), at most `limit`, with one log position.

        The counts are two ZCARDs, O(1) whatever the channel's size: users, and registered
        tabs (a tab that went silent while its user stays online counts until a sweep
        prunes it, at most a sweep interval after its deadline).
        """
        k = self.keys(channel)
        pipe = self.redis.pipeline(transaction=True)
        pipe.zcard(k.members)
        pipe.zcard(k.connections)
        pipe.zrangebylex(k.members, f"({after}" if after else "-", "+", 0, limit)
        pipe.get(k.seq)
        pipe.get(k.epoch)
        users, connections, names, seq, epoch = await pipe.execute()
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(k.member(name))
            pipe.zcard(k.conns(name))
        replies = await pipe.execute()
        members = []
        for i, name in enumerate(names):
            record, alive = replies[2 * i], replies[2 * i + 1]
            if record:  # it left between the two reads; its event is after `seq`
                members.append(
                    Member(name, _load(record.get("info")), int(record.get("since", 0)), alive)
                )
        following = names[-1] if len(names) == limit else None
        return ChannelPage(channel, users, connections, int(seq or 0), members, following, epoch)

    async def member_info(self, channel: str, user: str) -> tuple[bool, object]:
        """(is a member, the member's info) in one read."""
        record = await self.redis.hgetall(self.keys(channel).member(user))
        return bool(record), _load(record.get("info"))

    async def channel_known(self, channel: str) -> bool:
        """True when the channel has members or a log."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zscore(REGISTRY, channel)
        pipe.exists(self.keys(channel).seq)
        registered, has_log = await pipe.execute()
        return registered is not None or bool(has_log)

    async def channels_page(
        self, after: str | None, limit: int, now: int, history: bool = False
    ) -> tuple[list[tuple[str, int, int]], str | None]:
        """([(channel, users, connections)], next) for the channels after `after` by name.

        The channels with at least one member; with `history`, every channel with a log
        (including those whose members are all gone).
        """
        index = LOGS if history else REGISTRY
        names = await self.redis.zrangebylex(index, f"({after}" if after else "-", "+", 0, limit)
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            k = self.keys(name)
            pipe.zcard(k.members)
            pipe.zcard(k.connections)
        replies = await pipe.execute()
        rows = [(name, replies[2 * i], replies[2 * i + 1]) for i, name in enumerate(names)]
        return rows, (names[-1] if len(names) == limit else None)

    async def sweep_candidates(
        self, channels: list[str], now: int, cutoff: int
    ) -> list[tuple[str, list[str], bool, bool, list[str]]]:
        """What a sweep must look at, in one round trip for many channels.

        For each channel: (channel, members whose deadline has passed (at most 1000),
        whether its oldest event is older than `cutoff` (ms), whether its log is empty,
        its dead tabs as "<user>/<conn>" (deadline <= now; see prune_dead_tabs)).
        """
        pipe = self.redis.pipeline(transaction=False)
        for channel in channels:
            k = self.keys(channel)
            pipe.zrangebyscore(k.deadlines, "-inf", now, 0, 1000)
            pipe.lindex(k.events, 0)
            pipe.zrangebyscore(k.connections, "-inf", now)
        replies = await pipe.execute()
        found = []
        for i, channel in enumerate(channels):
            overdue, head, dead = replies[3 * i], replies[3 * i + 1], replies[3 * i + 2]
            old = head is not None and json.loads(head)["ts"] < cutoff
            found.append((channel, overdue, old, head is None, dead))
        return found

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
        pipe = self.redis.pipeline(transaction=True)
        pipe.zremrangebyscore(k.connections, "-inf", now)
        for user, conns in tabs.items():
            pipe.zremrangebyscore(k.conns(user), "-inf", now)
            pipe.hset(k.gone(user), mapping=dict.fromkeys(conns, "expired"))
            pipe.pexpire(k.gone(user), ttl)
        await pipe.execute()

    async def forget_if_idle(self, channel: str) -> bool:
        """Forget the log of a channel that has no members and no retained events."""
        k = self.keys(channel)
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(k.members, k.events)
                if await pipe.zcard(k.members) or await pipe.llen(k.events):
                    await pipe.unwatch()
                    return False
                pipe.multi()
                pipe.zrem(LOGS, channel)
                pipe.zrem(REGISTRY, channel)  # a leftover of an older layout
                pipe.delete(k.seq, k.epoch)  # a later log is a new one: old cursors get reset
                await pipe.execute()
                return True
            except WatchError:
                return False


async def _removal_state(
    pipe, k: ChannelKeys, user: str, kind: str, now: int
) -> tuple[object, dict[str, int]] | None:
    """(info, {tab: deadline}) of a member that `kind` may remove, else None.

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
    return _load(member.get("info")), tabs


async def _last_member(pipe, k: ChannelKeys) -> bool:
    """True when the member being removed is the channel's last; then watches the members.

    Watched only then: in a busy channel every join and removal would make removals retry.
    """
    if await pipe.zcard(k.members) > 1:
        return False
    await pipe.watch(k.members)
    return await pipe.zcard(k.members) <= 1


_MULTI = b"*1\r\n$5\r\nMULTI\r\n"
_EXEC = b"*1\r\n$4\r\nEXEC\r\n"


def _bulk(data: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%b\r\n" % (len(data), data)


def _pack(*args) -> bytes:
    """One command in RESP (str, int and bytes arguments)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = (
            arg.encode()
            if isinstance(arg, str)
            else arg
            if isinstance(arg, bytes)
            else str(arg).encode()
        )
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Packed:
    """Commands for one MULTI/EXEC, packed as they are queued.

    Offers the few pipeline methods (same arguments as redis-py's) that the shared
    transactions queue; their replies come back raw, as the store sends them (SET: "OK"
    or None, ZSCORE: the score as text).
    """

    __slots__ = ("parts", "count")

    def __init__(self) -> None:
        self.parts = [_MULTI]
        self.count = 0

    def _add(self, *args) -> None:
        self.parts.append(_pack(*args))
        self.count += 1

    def raw(self, data: bytes, count: int) -> None:
        """Queue `count` commands already packed in RESP."""
        self.parts.append(data)
        self.count += count

    def get(self, name: str) -> None:
        self._add(b"GET", name)

    def mget(self, *names: str) -> None:
        self._add(b"MGET", *names)

    def set(self, name: str, value, px: int | None = None, xx: bool = False) -> None:
        self._add(
            b"SET", name, value, *((b"PX", px) if px is not None else ()), *((b"XX",) if xx else ())
        )

    def hget(self, name: str, key: str) -> None:
        self._add(b"HGET", name, key)

    def hset(self, name: str, key: str, value) -> None:
        self._add(b"HSET", name, key, value)

    def hsetnx(self, name: str, key: str, value) -> None:
        self._add(b"HSETNX", name, key, value)

    def hdel(self, name: str, *keys: str) -> None:
        self._add(b"HDEL", name, *keys)

    def zadd(self, name: str, mapping: dict, xx: bool = False, ch: bool = False) -> None:
        pairs = [item for member, score in mapping.items() for item in (score, member)]
        self._add(b"ZADD", name, *((b"XX",) if xx else ()), *((b"CH",) if ch else ()), *pairs)

    def zscore(self, name: str, member: str) -> None:
        self._add(b"ZSCORE", name, member)

    def llen(self, name: str) -> None:
        self._add(b"LLEN", name)

    def lrange(self, name: str, start: int, end: int) -> None:
        self._add(b"LRANGE", name, start, end)


async def _exchange(conn, data: bytes, count: int) -> list:
    """Send a packed MULTI ... EXEC of `count` commands on `conn`; EXEC's replies.

    The replies already received are taken straight from the connection's hiredis reader
    (count + 2 of them: +OK, +QUEUED per command, EXEC's array), without redis-py's
    per-reply coroutine; only when it needs more bytes does it await read_response.
    """
    await conn.send_packed_command(data)
    reader = _hiredis_reader(conn)
    try:
        async with asyncio.timeout(conn.socket_timeout):  # one deadline for every reply
            for _ in range(count + 2):
                reply = reader.gets() if reader is not None else _NOT_ENOUGH_DATA
                if reply is _NOT_ENOUGH_DATA:  # no complete reply buffered yet
                    reply = await conn.read_response(timeout=math.inf)
                elif isinstance(reply, Exception):
                    raise reply
            replies = reply
    except TimeoutError:  # (the read was cancelled, which closed the connection)
        await conn.disconnect(nowait=True)
        raise RedisTimeoutError("Timeout reading the shared transaction's replies") from None
    except ResponseError:  # a command was refused (EXECABORT): drop what is left unread
        await conn.disconnect()
        raise
    if not isinstance(replies, list) or len(replies) != count:
        await conn.disconnect()
        raise ResponseError(f"EXEC answered {replies!r} for {count} commands")
    return replies


def _hiredis_reader(conn):
    """The hiredis Reader of a redis-py connection's parser, or None (pure-Python parser)."""
    reader = getattr(getattr(conn, "_parser", None), "_reader", None)
    return reader if _HiredisReader is not None and isinstance(reader, _HiredisReader) else None


@dataclass(frozen=True)
class _LogKeys:
    seq: str
    events: str
    epoch: str


_FEED_KEYS = _LogKeys(FEED_SEQ, FEED_EVENTS, FEED_EPOCH)


def _load(info: str | None):
    return None if info is None else json.loads(info)
