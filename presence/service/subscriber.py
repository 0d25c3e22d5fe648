"""The expiry subscriber: one pub/sub subscription per node, kept alive.

It listens on the store's expiry channel (expired presence keys become `offline`) and on
the wake channel (another node recorded an event). Pub/sub is at-most-once, so after every
(re)subscription the node reconciles: it sweeps for members whose key vanished while it
was deaf, and makes every waiting poll re-read the store. It also sweeps periodically.
"""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import ConnectionError as StoreConnectionError
from redis.exceptions import TimeoutError as StoreTimeoutError

from presence.service.gateway import WAKE_CHANNEL, StoreSetupError
from presence.service.model import Presence

log = logging.getLogger("presence.subscriber")

_STORE_DOWN = (StoreConnectionError, StoreTimeoutError, OSError)
CLAIM_WORKERS = 32  # expiries handled at once; the rest wait in a queue of key names


class Subscriber:
    """Runs the subscription and the periodic sweep until stop() is called.

    `live` is true while subscribed (what /readyz reports). Store outages are retried
    forever with backoff; StoreSetupError (expiry notifications unavailable) is fatal
    and is raised from start().
    """

    def __init__(self, presence: Presence, sweep_interval: float | None = None) -> None:
        self.presence = presence
        self.gateway = presence.gateway
        self.sweep_interval = sweep_interval or max(presence.timeout / 2, 0.5)
        self.live = False
        self.expiry_channel: str | None = None
        self._tasks: list[asyncio.Task] = []
        self._subscribed = asyncio.Event()
        self._inflight: set[asyncio.Task] = set()
        self._expired: asyncio.Queue[str] = asyncio.Queue()  # keys heard, not yet handled

    async def start(self, wait: float = 10) -> None:
        """Find the expiry channel, then subscribe in the background; wait until subscribed.

        Raises StoreSetupError (no expiry notifications) or asyncio.TimeoutError.
        """
        self._subscribed.clear()
        self.expiry_channel = await self.gateway.expiry_channel()
        self._tasks = [
            asyncio.ensure_future(self._listen()),
            asyncio.ensure_future(self._sweep_periodically()),
            *(asyncio.ensure_future(self._handle_expiries()) for _ in range(CLAIM_WORKERS)),
        ]
        await asyncio.wait_for(self._subscribed.wait(), wait)

    async def stop(self) -> None:
        for task in [*self._tasks, *self._inflight]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._inflight, return_exceptions=True)
        self.live = False

    async def _listen(self) -> None:
        delay = 0.05
        while True:
            pubsub = self.gateway.pubsub()
            try:
                await pubsub.subscribe(self.expiry_channel, WAKE_CHANNEL)
                self.live, delay = True, 0.05
                self._subscribed.set()
                self._spawn(self.presence.reconcile())
                await self._dispatch(pubsub)
            except _STORE_DOWN as exc:
                if self.live:
                    log.warning("lost the store subscription (%s); reconnecting", exc)
                self.live = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                self.live = False
                await _close_quietly(pubsub)

    async def _dispatch(self, pubsub) -> None:
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None or message.get("type") != "message":
                continue
            channel, data = message["channel"], message["data"]
            if channel == WAKE_CHANNEL:
                self.presence.woken(data)
            elif channel == self.expiry_channel:
                self._expired.put_nowait(data)  # a mass expiry queues keys, not tasks

    async def _handle_expiries(self) -> None:
        """One of CLAIM_WORKERS workers turning queued expired keys into `offline` events."""
        while True:
            key = await self._expired.get()
            try:
                await self.presence.expired(key)
            except _STORE_DOWN:
                pass  # the sweep after resubscribing finds this user again
            except Exception:
                log.exception("handling the expiry of %s failed", key)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._inflight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("handling a notification failed: %r", task.exception())

    async def _sweep_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.presence.reconcile(wake=False)
            except _STORE_DOWN:
                pass  # the listener reports the outage and reconciles when back
            except Exception:
                log.exception("periodic sweep failed")


async def _close_quietly(pubsub) -> None:
    try:
        await pubsub.aclose()
    except Exception:
        pass


__all__ = ["StoreSetupError", "Subscriber"]
