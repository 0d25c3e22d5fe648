"""Shared pieces of the service tests: a fake clock and a presence model over a store URL."""

from __future__ import annotations

from presence.service.gateway import Gateway
from presence.service.model import Presence
from presence.service.names import parse_cursor


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
    return Presence(Gateway.from_url(url, history=history), **options, **kwargs)


async def expire(presence: Presence, channel: str, user: str) -> None:
    """Make the user's presence key vanish as an expiry would, without telling anyone."""
    await presence.gateway.redis.delete(presence.gateway.keys(channel).online(user))


def ident(cursor: str) -> int:
    """The event id a cursor ("<epoch>:<id>", or a bare id) points at."""
    return parse_cursor(cursor)[1]
