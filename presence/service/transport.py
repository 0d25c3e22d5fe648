"""How commands reach the store: routing to a node, group commit, and the retry policy.

The only module that touches redis-py beyond its public API (the hiredis reader of a
connection, see `_exchange`); tests/service/test_transport.py fails loudly when a redis-py
upgrade changes those internals, and the code then falls back to redis-py's public path.

A Router says which client serves a key: one client for a standalone store, the owner of
the key's hash slot for a Redis Cluster (the slot map is read with CLUSTER SLOTS and read
again whenever a node answers MOVED/ASK or goes away). A Batcher sends the short
transactions that many requests issue at once (refreshes, joins, log reads) together: per
node one write holding one MULTI/EXEC per slot (per node on a standalone store), and one
read of all replies. `watched` runs WATCH transactions under one retry policy.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection as AsyncConnection
from redis.crc import key_slot
from redis.driver_info import DriverInfo
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoPermissionError,
    RedisError,
    ResponseError,
    TryAgainError,
    WatchError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig

from presence.service.keys import pack
from presence.service.records import StoreBusy, StoreSetupError, StoreUnavailable

_HiredisReader: Any = None
_NOT_ENOUGH_DATA: Any = object()
try:  # the reader redis-py's hiredis parser keeps, and its "no complete reply yet" value
    from hiredis import Reader as _HiredisReader
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH_DATA
except ImportError:  # no hiredis (or another redis-py): replies are read through redis-py
    pass

log = logging.getLogger("presence.transport")

MOVED = (MovedError, AskError, TryAgainError, ClusterDownError)  # the cluster changed
STORE_DOWN = (RedisError, OSError)  # what any store call may raise
WATCH_RETRIES = 50  # WATCH races lost before a transaction gives up (StoreBusy)
MOVED_RETRIES = 5  # topology changes followed before a call gives up (StoreBusy)
BATCH_MAX = 256  # calls per shared write
# Given to every pooled connection, so that opening one makes no garbage in reference
# cycles (see presence.runtime): redis-py otherwise reads its version through
# importlib.metadata per connection, and tries CLIENT MAINT_NOTIFICATIONS (a Redis
# Enterprise handshake), keeping the error's traceback in a cycle when it fails.
_POOL_OPTIONS: dict[str, Any] = {
    "timeout": 30,
    "decode_responses": True,
    "driver_info": DriverInfo(),
}
if "maint_notifications_config" in inspect.signature(AsyncConnection.__init__).parameters:
    # (redis-py 8.1+; before, asyncio connections make no such handshake)
    _POOL_OPTIONS["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)

Address = tuple[str, int]


async def fast_path_available(client: aioredis.Redis) -> bool:
    """True when a connection of `client` keeps a hiredis Reader where `_exchange` reads it.

    False means a redis-py upgrade moved that internal: replies then go through redis-py's
    public read_response, slower but correct (tests/service/test_transport.py fails then).
    """
    pool = client.connection_pool
    conn = await pool.get_connection()
    try:
        return _hiredis_reader(conn) is not None
    finally:
        await pool.release(conn)


class Router:
    """Which client serves a key. Standalone: one client for every key."""

    cluster = False

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    def client_for(self, key: str) -> aioredis.Redis:
        return self.client

    def group(self, key: str) -> tuple[aioredis.Redis, int | None]:
        """(client, slot) of a key: calls of one group may share one MULTI/EXEC."""
        return self.client, None

    def primaries(self) -> list[aioredis.Redis]:
        """One client per primary (where key expiries are announced)."""
        return [self.client]

    def address(self, client: aioredis.Redis) -> str:
        kwargs = client.connection_pool.connection_kwargs
        return kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"

    async def refresh(self) -> None:
        """Read the topology again (nothing to read for a standalone store)."""

    async def close(self) -> None:
        await self.client.aclose()


class ClusterRouter(Router):
    """Routes by hash slot over a Redis Cluster's primaries, with one pool per node."""

    cluster = True

    def __init__(self, seed: aioredis.Redis, max_connections: int) -> None:
        super().__init__(seed)
        self.max_connections = max_connections
        self.clients: dict[Address, aioredis.Redis] = {_address(seed): seed}
        self.slots: list[Address] = []  # slot -> primary's address
        self._refreshing: asyncio.Future | None = None

    def client_for(self, key: str) -> aioredis.Redis:
        return self._client(self.slots[key_slot(key.encode())]) if self.slots else self.client

    def group(self, key: str) -> tuple[aioredis.Redis, int | None]:
        slot = key_slot(key.encode())
        return (self._client(self.slots[slot]) if self.slots else self.client), slot

    def primaries(self) -> list[aioredis.Redis]:
        return [self._client(address) for address in dict.fromkeys(self.slots)]

    def _client(self, address: Address) -> aioredis.Redis:
        client = self.clients.get(address)
        if client is None:
            seed = self.client.connection_pool
            pool = aioredis.BlockingConnectionPool(
                connection_class=seed.connection_class,
                max_connections=self.max_connections,
                **{**seed.connection_kwargs, "host": address[0], "port": address[1]},
            )
            client = self.clients[address] = aioredis.Redis(connection_pool=pool)
        return client

    async def refresh(self) -> None:
        """Read the slot map from the first node that answers; concurrent calls share one read.

        Raises StoreUnavailable when no known node answers.
        """
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._read_slots())
        await asyncio.shield(self._refreshing)

    async def _read_slots(self) -> None:
        known = [*dict.fromkeys(self.slots), *self.clients]
        problem: Exception | None = None
        for address in dict.fromkeys(known):
            try:
                ranges = await self._client(address).execute_command("CLUSTER SLOTS")
            except STORE_DOWN as exc:
                problem = exc
                continue
            slots: list[Address] = [("", 0)] * 16384
            for start, end, primary, *_ in _slot_ranges(ranges):
                host = primary[0] or address[0]
                slots[start : end + 1] = [(host, int(primary[1]))] * (end - start + 1)
            if any(port == 0 for _, port in slots):
                problem = StoreUnavailable(f"the cluster at {address} does not cover every slot")
                continue
            self.slots = slots
            return
        raise StoreUnavailable(f"no node of the cluster answers ({problem})")

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()


def _slot_ranges(reply: Any) -> list:
    """CLUSTER SLOTS as [start, end, [host, port, ...], ...] rows (redis-py may parse it to
    a dict {(start, end): {"primary": (host, port), ...}})."""
    if isinstance(reply, dict):
        return [[s, e, list(v["primary"])] for (s, e), v in reply.items()]
    return list(reply)


def _address(client: aioredis.Redis) -> Address:
    kwargs = client.connection_pool.connection_kwargs
    return kwargs.get("host", "localhost"), int(kwargs.get("port", 6379))


def client_from_url(url: str, max_connections: int = 64) -> aioredis.Redis:
    """A client over a bounded, blocking connection pool to `url`."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, **_POOL_OPTIONS
    )
    return aioredis.Redis(connection_pool=pool)


async def connect(url: str, mode: str = "auto", max_connections: int = 64) -> Router:
    """A Router over the store at `url`: a cluster's when the node says it is one.

    `mode` is "auto", "standalone" or "cluster"; a store of the other kind raises
    StoreSetupError saying what to do. Raises StoreUnavailable when nothing answers.
    """
    client = client_from_url(url, max_connections)
    pool = client.connection_pool
    try:
        info = await client.info("cluster")
    except NoPermissionError as exc:
        await client.aclose()
        raise StoreSetupError(
            f"the store user of {url} may not run INFO ({exc}): grant it +info (the node "
            "asks INFO cluster to tell a Redis Cluster from a standalone server)"
        ) from exc
    except ResponseError:
        info = {}
    except STORE_DOWN as exc:
        await client.aclose()
        raise StoreUnavailable(f"cannot reach the store at {url}: {exc}") from exc
    is_cluster = str(info.get("cluster_enabled", 0)) == "1"
    if mode == "standalone" and is_cluster:
        await client.aclose()
        raise StoreSetupError(
            f"{url} is a node of a Redis Cluster, but --store-mode is standalone: "
            "use --store-mode cluster (or auto)"
        )
    if mode == "cluster" and not is_cluster:
        await client.aclose()
        raise StoreSetupError(
            f"{url} is not a Redis Cluster node (cluster_enabled is off), but --store-mode "
            "is cluster: use --store-mode standalone (or auto), or point --redis-url at a "
            "node of the cluster"
        )
    if not is_cluster:
        return Router(client)
    if pool.connection_kwargs.get("db", 0):
        await client.aclose()
        raise StoreSetupError(f"{url} names database {pool.connection_kwargs['db']}: "
                              "a Redis Cluster has database 0 only")  # fmt: skip
    router = ClusterRouter(client, max_connections)
    await router.refresh()
    return router


# -- shared transactions ----------------------------------------------------------------


class Packed:
    """Commands for one MULTI/EXEC, packed as they are queued.

    Offers the few pipeline methods (same arguments as redis-py's) that the shared
    transactions queue; their replies come back raw, as the store sends them (SET: "OK"
    or None, ZSCORE: the score as text).
    """

    __slots__ = ("parts", "count")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.count = 0

    def _add(self, *args: str | bytes | int) -> None:
        self.parts.append(pack(*args))
        self.count += 1

    def raw(self, data: bytes, count: int) -> None:
        """Queue `count` commands already packed in RESP."""
        self.parts.append(data)
        self.count += count

    def get(self, name: str) -> None:
        self._add(b"GET", name)

    def pttl(self, name: str) -> None:
        self._add(b"PTTL", name)

    def set(self, name: str, value: str, px: int | None = None, xx: bool = False) -> None:
        self._add(b"SET", name, value, *((b"PX", px) if px is not None else ()),
                  *((b"XX",) if xx else ()))  # fmt: skip

    def hget(self, name: str, key: str) -> None:
        self._add(b"HGET", name, key)

    def hset(self, name: str, key: str, value: str) -> None:
        self._add(b"HSET", name, key, value)

    def hsetnx(self, name: str, key: str, value: str | int) -> None:
        self._add(b"HSETNX", name, key, value)

    def hdel(self, name: str, *keys: str) -> None:
        self._add(b"HDEL", name, *keys)

    def zadd(self, name: str, mapping: dict, xx: bool = False, ch: bool = False,
             gt: bool = False) -> None:  # fmt: skip
        pairs = [item for member, score in mapping.items() for item in (score, member)]
        flags = (b"XX",) * xx + (b"GT",) * gt + (b"CH",) * ch
        self._add(b"ZADD", name, *flags, *pairs)

    def zscore(self, name: str, member: str) -> None:
        self._add(b"ZSCORE", name, member)


Queue = Callable[[Packed], tuple[int, Any]]  # queues commands; (how many, anything to hand back)
_Call = tuple[Queue, "asyncio.Future[tuple[list, Any]]"]


class Batcher:
    """Group commit: calls made while a shared write is in flight go out together next.

    `call(key, queue)` runs `queue(packed)` in the next shared transaction of the group of
    `key` (see Router.group) and returns (its replies, what queue handed back). Each call is
    atomic; calls of one group share one MULTI/EXEC, and the transactions for one node go
    in one write, one write in flight per node (the next gathers meanwhile). A call whose transaction was refused because the cluster moved is sent again
    after the slot map is read again (queue functions must be repeatable); one that keeps
    moving raises StoreBusy.
    """

    def __init__(self, router: Router) -> None:
        self.router = router
        self._waiting: list[tuple[str, Queue, asyncio.Future]] = []
        self._flush_due = False
        self._busy: set[aioredis.Redis] = set()  # nodes with a shared write not yet answered
        self._tasks: set[asyncio.Task] = set()

    async def call(self, key: str, queue: Queue) -> tuple[list, Any]:
        for _ in range(MOVED_RETRIES):
            future = asyncio.get_running_loop().create_future()
            self._waiting.append((key, queue, future))
            self._schedule()
            try:
                return await future
            except MOVED:
                await self.router.refresh()
        raise StoreBusy("the cluster kept moving the slot of " + key)

    def _schedule(self) -> None:
        if self._waiting and not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        waiting, self._waiting = self._waiting, []
        per_node: dict[aioredis.Redis, dict[int | None, list[_Call]]] = {}
        for key, queue, future in waiting:
            client, slot = self.router.group(key)
            if client in self._busy:  # its write in flight: gather for the next one
                self._waiting.append((key, queue, future))
                continue
            per_node.setdefault(client, {}).setdefault(slot, []).append((queue, future))
        for client, groups in per_node.items():
            blocks = [calls[i : i + BATCH_MAX] for calls in groups.values()
                      for i in range(0, len(calls), BATCH_MAX)]  # fmt: skip
            self._busy.add(client)
            task = asyncio.ensure_future(self._send(client, blocks))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, client: aioredis.Redis, blocks: list[list[_Call]]) -> None:
        try:
            packed_blocks = []
            for calls in blocks:
                packed = Packed()
                spans = [(*queue(packed), future) for queue, future in calls]
                packed_blocks.append((packed, spans))
            try:
                results = await transactions(client, [p for p, _ in packed_blocks])
            except Exception as exc:
                for _, spans in packed_blocks:
                    for _, _, future in spans:
                        if not future.done():
                            future.set_exception(exc)
                return
            for (_, spans), result in zip(packed_blocks, results, strict=True):
                _settle_block(spans, result)
        finally:
            self._busy.discard(client)
            self._schedule()


def _settle_block(spans: list, result: list | Exception) -> None:
    """Hand each call of one MULTI/EXEC its replies (or the block's error)."""
    at = 0
    for count, extra, future in spans:
        if not future.done():
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                mine = result[at : at + count]
                error = next((r for r in mine if isinstance(r, Exception)), None)
                if error is None:
                    future.set_result((mine, extra))
                else:
                    future.set_exception(error)
        at += count


async def transactions(client: aioredis.Redis, blocks: list[Packed]) -> list[list | Exception]:
    """Send one MULTI/EXEC per block on one connection of `client`, in one write.

    Returns, per block, EXEC's replies or the error that refused it (a MOVED of a queued
    command, EXECABORT). A lost connection raises; nothing is sent twice.
    """
    data = b"".join(b"*1\r\n$5\r\nMULTI\r\n" + b"".join(p.parts) + b"*1\r\n$4\r\nEXEC\r\n"
                    for p in blocks)  # fmt: skip
    pool = client.connection_pool
    conn = await pool.get_connection()
    try:
        return await _exchange(conn, data, [p.count for p in blocks])
    finally:
        await pool.release(conn)


async def _exchange(conn: Any, data: bytes, counts: list[int]) -> list[list | Exception]:
    """Write `data` (MULTI/EXEC blocks of `counts` commands) and read every reply.

    The replies already received are taken straight from the connection's hiredis reader
    without redis-py's per-reply coroutine; only when it needs more bytes does it await
    read_response. All replies are read even after an error, so the connection stays usable.
    """
    await conn.send_packed_command(data)
    reader = _hiredis_reader(conn)
    results: list[list | Exception] = []
    try:
        async with asyncio.timeout(conn.socket_timeout):  # one deadline for every reply
            for count in counts:
                refused: Exception | None = None
                for _ in range(count + 2):  # +OK, +QUEUED per command, EXEC's array
                    reply = reader.gets() if reader is not None else _NOT_ENOUGH_DATA
                    if reply is _NOT_ENOUGH_DATA:
                        try:
                            reply = await conn.read_response(timeout=math.inf)
                        except ResponseError as exc:  # read whole: the stream stays in step
                            reply = exc
                    if isinstance(reply, Exception) and refused is None:
                        refused = reply
                if isinstance(reply, list) and len(reply) == count:
                    results.append(reply)
                else:
                    results.append(refused or ResponseError(f"EXEC answered {reply!r}"))
    except TimeoutError:  # (the read was cancelled, which closed the connection)
        await conn.disconnect(nowait=True)
        raise RedisTimeoutError("Timeout reading the shared transaction's replies") from None
    except BaseException:
        await conn.disconnect()
        raise
    return results


def _hiredis_reader(conn: Any) -> Any:
    """The hiredis Reader of a redis-py connection's parser, or None (pure-Python parser)."""
    reader = getattr(getattr(conn, "_parser", None), "_reader", None)
    return reader if _HiredisReader is not None and isinstance(reader, _HiredisReader) else None


# -- WATCH transactions -------------------------------------------------------------------


async def watched(router: Router, key: str, body: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `body(pipe)` (WATCH, reads, MULTI, EXEC) on the node of `key` until it wins.

    `body` is called again when its EXEC loses to a concurrent write (WatchError) or the
    cluster moved the slot (after reading the slot map again); it returns its result.
    Raises StoreBusy after WATCH_RETRIES lost races or MOVED_RETRIES moves.
    """
    moved = 0
    for _ in range(WATCH_RETRIES):
        async with router.client_for(key).pipeline(transaction=True) as pipe:
            try:
                return await body(pipe)
            except WatchError:
                continue
            except MOVED:
                moved += 1
                if moved >= MOVED_RETRIES:
                    break
                await router.refresh()
    raise StoreBusy(f"a transaction on {key} kept losing its race")
