"""CLIENT PAUSE: hold clients' commands for a while, all of them or only writes.

While a pause is on, every command goes through the dispatch gate (`Server._gate`),
which asks `holds()`; a held command parks its client (`client.blocked`, like a blocking
pop) with the rest of its pipeline left in the parser. When the pause ends (its deadline,
or CLIENT UNPAUSE) the parked clients run their commands again, in the order they were
parked. Active expiry waits too, so a paused store's keyspace does not change under a
failover (lazy expiry on reads still deletes: see docs/store.md).
"""

from __future__ import annotations

import asyncio
import time

ALL, WRITE = "all", "write"
# Commands that are not writes but that Redis still holds under WRITE (its "may_replicate")
MAY_REPLICATE = frozenset(["publish", "spublish", "eval", "evalsha", "fcall"])


class Postponed:
    """A client's command held by a pause: run again, first, when the pause ends."""

    __slots__ = ("pause", "client", "argv")

    def __init__(self, pause: ClientPause, client, argv: list[bytes]) -> None:
        self.pause, self.client, self.argv = pause, client, argv

    def cancel(self) -> None:
        """The client went away: forget it."""
        if self in self.pause.postponed:
            self.pause.postponed.remove(self)


class ClientPause:
    """One server's pause: its mode (None when off), deadline (wall clock, s), held clients."""

    def __init__(self, on_end) -> None:
        self.mode: str | None = None
        self.until = 0.0
        self.postponed: list[Postponed] = []
        self._timer: asyncio.TimerHandle | None = None
        self._on_end = on_end  # the server re-arms expiry and lets clients take the fast path

    def start(self, mode: str, until: float) -> None:
        """Pause until `until` (time.time() seconds); a pause on already only grows (longer, or ALL)."""
        if self.mode != ALL:
            self.mode = mode
        if until > self.until or self._timer is None:
            self.until = max(until, self.until)
            if self._timer is not None:
                self._timer.cancel()
            self._timer = asyncio.get_running_loop().call_later(
                max(0.0, self.until - time.time()), self.end
            )

    def end(self) -> None:
        """Lift the pause; held clients run their commands again, oldest first."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.mode = None
        self.until = 0.0
        held, self.postponed = self.postponed, []
        self._on_end()
        loop = asyncio.get_running_loop()
        for postponed in held:
            client = postponed.client
            if client.blocked is postponed and not client.closing:
                client.blocked = None
                client.parser.unread([postponed.argv])
                loop.call_soon(client.data_received, b"")

    def holds(self, cmd, client) -> bool:
        """Whether `cmd` must wait for the end of the pause (QUIT never does)."""
        if self.mode == ALL:
            return cmd.name != "quit"
        if cmd.name == "exec" and client.multi:
            return any(_writes(queued) for queued, _ in client.multi)
        return _writes(cmd)

    def postpone(self, client, argv: list[bytes]) -> None:
        postponed = Postponed(self, client, argv)
        self.postponed.append(postponed)
        client.blocked = postponed


def _writes(cmd) -> bool:
    return "write" in cmd.flags or "may-replicate" in cmd.flags or cmd.name in MAY_REPLICATE
