"""How much one client may take of a node: held polls, tabs, channels per tab, messages.

The tabs of one user in one channel are counted in the store (through the gateway, by
presence.service.model); the rest is counted by each node in memory, for the clients it
serves: a node's held polls, the channels each tab (conn id) joined or polled here
lately, and a token bucket of chat messages per tab. A refusal is LimitReached, raised
before anything is changed, with the seconds after which trying again may succeed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ClientLimits:
    """The per-node and per-client limits of the presence domain (each a serve flag)."""

    max_held_polls: int = 15_000  # long-polls held at once by the node
    max_tabs: int = 32  # live tabs of one user in one channel
    max_channels_per_tab: int = 64  # channels one conn id is in (as this node saw it)
    max_messages_per_second: float = 10.0  # chat messages of one conn id, in bursts as many


class LimitReached(Exception):
    """A limit refuses the request; nothing was changed.

    `limit` names it ("held_polls", "tabs", "channels_per_tab", "messages_per_second");
    `retry_after` is a whole number of seconds after which the request may succeed.
    """

    def __init__(self, limit: str, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.limit = limit
        self.message = message
        self.retry_after = max(1, math.ceil(retry_after))


class TabQuotas:
    """The channels each tab is in and its chat-message budget, as this node saw them.

    Entries are forgotten once their tab has been silent for `idle` seconds (forget_idle,
    called by the periodic sweep, and whenever the tables grow past `MAX_ENTRIES`).
    """

    MAX_ENTRIES = 200_000  # tabs tracked before an early sweep of the silent ones

    def __init__(self, limits: ClientLimits, idle: float) -> None:
        self.limits = limits
        self.idle = idle
        self.channels: dict[str, dict[str, float]] = {}  # conn -> {channel: last seen}
        self.buckets: dict[str, tuple[float, float]] = {}  # conn -> (tokens, at)

    def admit_join(self, conn: str, channel: str, now: float) -> None:
        """Count `channel` for `conn`; LimitReached when the tab is in too many already."""
        seen = self.channels.get(conn)
        if seen is None:
            if len(self.channels) >= self.MAX_ENTRIES:
                self.forget_idle(now)
            seen = self.channels[conn] = {}
        if channel not in seen and len(seen) >= self.limits.max_channels_per_tab:
            for name, at in list(seen.items()):
                if now - at > self.idle:
                    del seen[name]
            if len(seen) >= self.limits.max_channels_per_tab:
                oldest = min(seen.values())
                raise LimitReached(
                    "channels_per_tab",
                    f"a tab may be in at most {self.limits.max_channels_per_tab} channels",
                    oldest + self.idle - now,
                )
        seen[channel] = now

    def seen(self, conn: str, channel: str, now: float) -> None:
        """The tab polled or sent a heartbeat in `channel` (keeps it counted)."""
        seen = self.channels.get(conn)
        if seen is not None and channel in seen:
            seen[channel] = now

    def left(self, conn: str, channel: str) -> None:
        """The tab left `channel` (it no longer counts)."""
        seen = self.channels.get(conn)
        if seen is not None:
            seen.pop(channel, None)
            if not seen:
                del self.channels[conn]

    def spend_message(self, conn: str, now: float) -> None:
        """Take one message from the tab's budget; LimitReached when it is spent."""
        rate = self.limits.max_messages_per_second
        burst = max(rate, 1.0)
        tokens, at = self.buckets.get(conn, (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens < 1:
            raise LimitReached(
                "messages_per_second",
                f"a tab may send at most {rate:g} messages per second",
                (1 - tokens) / rate,
            )
        if len(self.buckets) >= self.MAX_ENTRIES:
            self.forget_idle(now)
        self.buckets[conn] = (tokens - 1, now)

    def forget_idle(self, now: float) -> None:
        """Drop what is known of tabs silent for `idle` seconds (and full budgets)."""
        for conn, seen in list(self.channels.items()):
            if all(now - at > self.idle for at in seen.values()):
                del self.channels[conn]
        rate = self.limits.max_messages_per_second
        burst = max(rate, 1.0)
        for conn, (tokens, at) in list(self.buckets.items()):
            if tokens + (now - at) * rate >= burst:
                del self.buckets[conn]
