"""Shared pieces of the service tests: a fake clock and a presence model over a store URL."""

from __future__ import annotations

from presence.service.gateway import Gateway
from presence.service.model import Presence
from presence.service.names import parse_cursor
from tests.helpers import ClusterURL


class FakeClock:
    """A clock (seconds since the epoch) that moves only when told to."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_presence(url: str, clock=None, history: int = 1000, **options) -> Presence:
    """A Presence over its own gateway to `url` (timeout 30 s, poll_timeout 0.3 s by default)."""
    options.setdefault("timeout", 30)
    options.setdefault("poll_timeout", 0.3)
    kwargs = {"clock": clock} if clock is not None else {}
    gateway = Gateway.from_url(url, history=history, cluster=isinstance(url, ClusterURL))
    return Presence(gateway, **options, **kwargs)


def client_for(presence: Presence, key: str):
    """The redis-py client of the node that holds `key` (any store, cluster included)."""
    return presence.gateway.router.client_for(key)


async def expire(presence: Presence, channel: str, user: str) -> None:
    """Make the user's presence key vanish as an expiry would, without telling anyone."""
    await presence.gateway.refresh_topology()
    key = presence.gateway.keys(channel).online(user)
    await client_for(presence, key).delete(key)


async def flush(presence: Presence) -> None:
    """Empty every node of the store (as a store that restarted empty)."""
    await presence.gateway.refresh_topology()
    for client in presence.gateway.primaries():
        await client.flushall()


def ident(cursor: str) -> int:
    """The event id a cursor ("<epoch>:<id>", or a bare id) points at."""
    return parse_cursor(cursor)[1]
