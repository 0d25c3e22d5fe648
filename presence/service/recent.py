"""Caches that forget what is no longer used: two generations, aged by the periodic sweep.

A node caches a few things per channel and per event it reads (the keys of a channel, the
newest id it saw of a log, the parsed events; see presence.service.gateway). Users,
channels and events come and go, so a cache that only forgets when it is full keeps
whatever the busiest minute left in it for good: memory that never comes back. A Recent
keeps an entry while it is used: age() (called by each sweep, every --timeout / 2) makes
the current generation the old one and drops the previous old one, and a lookup moves an
old entry back into the current generation. So an entry unused for two sweeps is gone,
and a node with no traffic holds none.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    """A mapping of at most about `limit` entries, each kept while used (see the module)."""

    __slots__ = ("limit", "_young", "_old")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._young: dict[K, V] = {}
        self._old: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        value = self._young.get(key)
        if value is None:
            value = self._old.pop(key, None)
            if value is not None:
                self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        """Keep `value` for `key`; a full current generation ages the cache first."""
        young = self._young
        if len(young) >= self.limit and key not in young:
            self.age()
            young = self._young
        young[key] = value

    def pop(self, key: K) -> None:
        self._young.pop(key, None)
        self._old.pop(key, None)

    def age(self) -> None:
        """Drop what was not used since the previous age(); start a new generation."""
        self._old, self._young = self._young, {}

    def clear(self) -> None:
        self._young, self._old = {}, {}

    def __len__(self) -> int:
        return len(self._young) + len(self._old)
