"""The node's ears: expiry notifications and wake-ups from every primary, kept subscribed.

One listener per primary node of the store (one for a standalone store) subscribes to the
node's expiry channel (expired presence keys become `offline`) and, with sharded pub/sub
(SSUBSCRIBE), to the wake channel of every log this node has polls waiting on (another node
recorded an event there). When the cluster's topology changes (a failover, a node gone, a
slot moved), listeners follow: the slot map is read again, listeners start on new primaries
and stop on old ones, and wake channels move with their slots.

Pub/sub is at-most-once, so whatever a listener may have missed is recovered: after every
(re)subscription the node reconciles (sweeps for members whose key vanished while it was
deaf) and makes the waiting polls of that node's channels re-read the store; a wake
channel's subscription, once confirmed, makes its polls re-read too. The sweep also runs
every --timeout / 2 as a safety net, and on a store whose expiry notices come late (Redis)
the domain's deadline timers claim offlines on time (see presence.service.deadlines).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from presence.runtime import MemoryTrimmer, Recycler
from presence.service.gateway import ExpirySetup
from presence.service.keys import parse_wake_channel, wake_channel
from presence.service.model import Presence
from presence.service.records import StoreSetupError, StoreUnavailable

log = logging.getLogger("presence.subscriber")

CLAIM_WORKERS = 32  # expiries handled at once; the rest wait in a queue of key names
TOPOLOGY_CHECK = 5.0  # seconds between two reads of a cluster's slot map
_DOWN = (RedisError, OSError, StoreUnavailable)


class Subscriber:
    """Runs the listeners, the topology checks and the periodic sweep until stop().

    `live` is true while every primary's listener is subscribed (what /readyz reports).
    Store outages are retried forever with backoff; StoreSetupError (expiry notifications
    unavailable) is fatal and is raised from start().
    """

    def __init__(self, presence: Presence, sweep_interval: float | None = None,
                 timers: bool | None = None) -> None:  # fmt: skip
        """`timers`: arm deadline timers (None: when the store announces expiries late)."""
        self.presence = presence
        self.timers = timers
        self.gateway = presence.gateway
        self.sweep_interval = sweep_interval or max(presence.timeout / 2, 0.5)
        self.setup: ExpirySetup | None = None
        self.listeners: dict[str, _Listener] = {}  # node address -> its listener
        self.wakes: set[str | None] = {None}  # logs whose wake-ups we want (None: the feed)
        self._tasks: list[asyncio.Task] = []
        self._inflight: set[asyncio.Task] = set()
        self._expired: asyncio.Queue[str | None] = asyncio.Queue()  # keys heard, not handled
        self._topology_changed = asyncio.Event()
        self.trimmer = MemoryTrimmer()  # see _sweep_periodically
        self.recycler: Recycler | None = None  # a worker's, see presence.workers

    @property
    def live(self) -> bool:
        return bool(self.listeners) and all(x.live for x in self.listeners.values())

    @property
    def expiry_channel(self) -> str | None:
        return self.setup.channel if self.setup else None

    async def start(self, wait: float = 10) -> None:
        """Find the expiry channel, then subscribe on every primary; wait until subscribed.

        Raises StoreSetupError (no expiry notifications) or TimeoutError.
        """
        self.setup = await self.gateway.expiry_setup()
        if self.timers or (self.timers is None and not self.setup.exact):
            self.presence.enable_deadline_timers()
        self.presence.feed_watcher = self
        self._expired = asyncio.Queue()  # (a stopped subscriber left its workers' sentinels)
        self._assign()
        self._tasks = [
            asyncio.ensure_future(self._follow_topology()),
            asyncio.ensure_future(self._sweep_periodically()),
            *(asyncio.ensure_future(self._handle_expiries()) for _ in range(CLAIM_WORKERS)),
        ]
        async with asyncio.timeout(wait):
            while not self.live:
                failed = [x.failure for x in self.listeners.values() if x.failure]
                if failed:
                    raise failed[0]
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop listening, sweeping and claiming; returns within a few seconds.

        A listener's read can outlive its cancellation (redis-py may take it for a read
        timeout and read on), so stopped listeners also have their connection closed.
        """
        listeners = list(self.listeners.values())
        for listener in listeners:
            listener.stopped = True
        for _ in range(CLAIM_WORKERS):  # a worker whose cancel a store call swallowed ends too
            self._expired.put_nowait(None)
        tasks = [*self._tasks, *self._inflight, *(x.task for x in listeners)]
        for task in tasks:
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=1) if tasks else (set(), set())
        if pending:
            for listener in listeners:
                await listener.disconnect()
            await asyncio.wait(pending, timeout=2)
        self.listeners.clear()
        self.presence.feed_watcher = None
        self.presence.disable_deadline_timers()

    # -- what the domain asks for -----------------------------------------------------

    def watch(self, channel: str | None) -> None:
        """Hear the wake-ups of `channel`'s log (None: the global feed's) from now on.

        The waiting polls re-read the store once the subscription is confirmed, so an
        event recorded before that is not missed.
        """
        if channel in self.wakes:
            return
        self.wakes.add(channel)
        listener = self._listener_of(channel)
        if listener is not None:
            listener.want(wake_channel(channel))

    def unwatch(self, channel: str | None) -> None:
        if channel is None or channel not in self.wakes:
            return
        self.wakes.discard(channel)
        listener = self._listener_of(channel)
        if listener is not None:
            listener.drop(wake_channel(channel))

    def _listener_of(self, channel: str | None) -> _Listener | None:
        return self.listeners.get(self.gateway.node_name(self.gateway.node_of(channel)))

    # -- listeners and topology -------------------------------------------------------

    def _assign(self) -> None:
        """Start a listener per primary and stop the others; give each its wake channels."""
        assert self.setup is not None
        wanted: dict[str, set[str]] = {}
        clients = {}
        for client in self.gateway.primaries():
            name = self.gateway.node_name(client)
            clients[name] = client
            wanted[name] = set()
        for channel in self.wakes:
            wanted.setdefault(self.gateway.node_name(self.gateway.node_of(channel)), set()).add(
                wake_channel(channel)
            )
        for name in [n for n in self.listeners if n not in clients]:
            self.listeners.pop(name).task.cancel()
        for name, client in clients.items():
            listener = self.listeners.get(name)
            if listener is None:
                listener = self.listeners[name] = _Listener(self, name, client, self.setup)
            listener.assign(wanted[name])

    def topology_changed(self) -> None:
        """A listener saw a sign of a topology change: read the slot map again soon."""
        self._topology_changed.set()

    async def _follow_topology(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TOPOLOGY_CHECK if self.gateway.cluster else None):
                    await self._topology_changed.wait()
            self._topology_changed.clear()
            if not self.gateway.cluster:
                continue
            try:
                await self.gateway.refresh_topology()
            except _DOWN as exc:
                log.warning("cannot read the cluster's slot map: %s", exc)
                await asyncio.sleep(0.5)
                self._topology_changed.set()
                continue
            self._assign()

    # -- what listeners hear ------------------------------------------------------------

    def heard_expiry(self, key: str) -> None:
        self._expired.put_nowait(key)  # a mass expiry queues keys, not tasks

    def heard_wake(self, name: str, kind: object = None) -> None:
        """A log grew (`kind`: the event's type; other kinds: re-read now)."""
        channel = parse_wake_channel(name)
        if channel is not None:
            self.presence.woken(channel or None, urgent=kind != "message")

    def resubscribed(self) -> None:
        """A listener (re)subscribed: recover what pub/sub may have lost meanwhile."""
        self.presence.forget_snapshots()  # the store may have restarted empty meanwhile
        self._spawn(self.presence.reconcile())

    async def _handle_expiries(self) -> None:
        """One of CLAIM_WORKERS workers turning queued expired keys into `offline` events."""
        while True:
            key = await self._expired.get()
            if key is None:
                return
            try:
                await self.presence.expired(key)
            except StoreUnavailable:
                pass  # the sweep after resubscribing finds this user again
            except Exception:
                log.exception("handling the expiry of %s failed", key)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._inflight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("handling a notification failed: %r", task.exception())

    async def _sweep_periodically(self) -> None:
        """Sweep every sweep_interval; after each, give memory back to the system when
        what the node holds fell a lot (presence.runtime.MemoryTrimmer), and let a
        worker's Recycler see its held polls."""
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.presence.reconcile(wake=False)
            except StoreUnavailable:
                pass  # the listeners report the outage and reconcile when back
            except Exception:
                log.exception("periodic sweep failed")
            self.trimmer.observe(sum(self.presence.kept().values()))
            if self.recycler is not None:
                self.recycler.observe(self.presence.pending)


class _Listener:
    """One pub/sub connection to one primary: its expiry channel and its wake channels."""

    def __init__(self, owner: Subscriber, name: str, client: aioredis.Redis,
                 setup: ExpirySetup) -> None:  # fmt: skip
        self.owner = owner
        self.name = name
        self.client = client
        self.setup = setup
        self.live = False
        self.failure: BaseException | None = None  # a fatal setup error, for start()
        self.stopped = False
        self.wanted: set[str] = set()
        self.pubsub: Any = None
        self._asked_out: set[str] = set()  # sunsubscribes we sent (others are unsolicited)
        self.task = asyncio.ensure_future(self._run())

    def assign(self, wakes: set[str]) -> None:
        for name in wakes - self.wanted:
            self.want(name)
        for name in self.wanted - wakes:
            self.drop(name)

    def want(self, name: str) -> None:
        self.wanted.add(name)
        if self.live:
            self._send(self.pubsub.ssubscribe(name))

    def drop(self, name: str) -> None:
        self.wanted.discard(name)
        if self.live:
            self._asked_out.add(name)
            self._send(self.pubsub.sunsubscribe(name))

    def _send(self, request: Any) -> None:
        """Send a (un)subscription on the live connection; a failure restarts the listener."""

        async def send() -> None:
            try:
                await request
            except _DOWN as exc:
                log.info("subscription change on %s failed (%s); resubscribing", self.name, exc)
                self.owner.topology_changed()

        self.owner._spawn(send())

    async def disconnect(self) -> None:
        """Close the pub/sub connection under a read that outlived its cancellation."""
        connection = getattr(self.pubsub, "connection", None)
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.disconnect(nowait=True)

    async def _run(self) -> None:
        delay = 0.05
        while not self.stopped:
            self.pubsub = pubsub = self.client.pubsub()
            self._asked_out.clear()  # a new connection: nothing asked on it yet
            try:
                await self.owner.gateway.ensure_expiry_events(self.client, self.setup)
                await pubsub.subscribe(self.setup.channel)
                for name in list(self.wanted):  # one each: a cluster refuses other slots'
                    await pubsub.ssubscribe(name)
                self.live, delay = True, 0.05
                self.owner.resubscribed()
                await self._dispatch(pubsub)
            except StoreSetupError as exc:
                self.failure = exc
                log.error("%s", exc)
                await asyncio.sleep(5)
            except _DOWN as exc:
                if self.stopped:
                    return
                if self.live:
                    log.warning("lost the subscription on %s (%s); reconnecting", self.name, exc)
                    self.owner.presence.forget_snapshots()  # of a store that may come back empty
                self.owner.topology_changed()
                self.live = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                self.live = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _dispatch(self, pubsub: Any) -> None:
        expiry = self.setup.channel
        while not self.stopped:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            kind = message.get("type")
            if kind == "message" and message["channel"] == expiry:
                self.owner.heard_expiry(message["data"])
            elif kind == "smessage":
                self.owner.heard_wake(message["channel"], message["data"])
            elif kind == "ssubscribe":  # a confirmed subscription: re-read
                self.owner.heard_wake(message["channel"])
            elif kind == "sunsubscribe":
                name = message["channel"]
                if name in self._asked_out:
                    self._asked_out.discard(name)
                elif name in self.wanted:  # the slot moved away: follow it
                    self.wanted.discard(name)
                    self.owner.topology_changed()
                    self.owner.heard_wake(name)
