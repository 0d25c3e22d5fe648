"""The data: sixteen databases of typed values, and deadlines that fire on time.

Every key with a TTL has an entry in the bucket of its deadline's millisecond, shared by
all databases, and a min-heap orders the buckets. The server asks `next_deadline()` and
arms one timer for it; when the timer fires, `expire_due()` deletes every key whose
deadline has passed and announces each expiry (keyspace events and `keys-expire-notify`)
at that moment, whatever the number of keys. Entries are never updated in place: a
refreshed TTL adds a new entry and the old one is recognised as stale when met (its
deadline no longer matches), and the buckets are rebuilt when stale entries outnumber
live ones. A bucket is the bare key while only one key is due in its millisecond, so a
key costs a dict entry and a heap slot, or a list slot in a busy millisecond. Reads also check the deadline (lazy
expiry), so a key past its deadline is never returned, even between timer ticks.

Time comes from an injectable clock. The dispatcher stores a reading in `Keyspace.now`
for every command taking the full path and once per batch of up to 64 pipelined data
commands (`server.BATCH`, microseconds of work), so one command sees one instant.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Iterator

from presence.store import notify as ev
from presence.store.replies import WRONGTYPE
from presence.store.stream import Stream
from presence.store.zset import ZSet

DATABASES = 16


class WrongType(Exception):
    """The key holds a value of another type; the reply is Redis's WRONGTYPE error."""

    reply = WRONGTYPE


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch (the unit of PEXPIREAT)."""
    return time.time_ns() // 1_000_000


class FakeClock:
    """A clock for tests: stands still until `advance()` moves it."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.ms = start_ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


TYPE_NAMES: dict[type, str] = {
    bytes: "string",
    dict: "hash",
    set: "set",
    deque: "list",
    ZSet: "zset",
    Stream: "stream",
}


def type_name(value) -> str:
    """Redis's name for a stored value's type ("string", "hash", ...)."""
    return TYPE_NAMES[type(value)]


class Database:
    """One numbered keyspace (SELECT n): values, their deadlines, watchers.

    Values are `bytes` (string), `dict` (hash), `set`, `deque` (list), `ZSet` or `Stream`.
    Writers must go through `store`/`delete`/`touch` so WATCH and deadlines stay right.
    """

    __slots__ = ("index", "keyspace", "data", "expires", "watchers", "blocked")

    def __init__(self, index: int, keyspace: Keyspace) -> None:
        self.index = index
        self.keyspace = keyspace
        self.data: dict[bytes, object] = {}
        self.expires: dict[bytes, int] = {}
        self.watchers: dict[bytes, set] = {}  # key -> clients WATCHing it
        self.blocked: dict[
            bytes, object
        ] = {}  # key -> FIFO of clients blocked on it (BLPOP, BZPOPMIN...)

    # ------------------------------------------------------------ reads

    def get(self, key: bytes):
        """The live value at `key`, or None; a key past its deadline is expired now."""
        value = self.data.get(key)
        if value is not None and self.expires:
            deadline = self.expires.get(key)
            if deadline is not None and deadline <= self.keyspace.now:
                self.keyspace.expire_key(self, key)
                return None
        return value

    def get_typed(self, key: bytes, kind: type):
        """The live value at `key` if it is of `kind`, None if absent; raises WrongType."""
        value = self.get(key)
        if value is not None and type(value) is not kind:
            raise WrongType()
        return value

    def exists(self, key: bytes) -> bool:
        return self.get(key) is not None

    def ttl_ms(self, key: bytes) -> int:
        """Milliseconds left: -2 if the key is absent, -1 if it has no deadline."""
        if self.get(key) is None:
            return -2
        deadline = self.expires.get(key)
        if deadline is None:
            return -1
        return max(0, deadline - self.keyspace.now)

    def live_keys(self) -> Iterator[bytes]:
        """Keys not past their deadline (does not expire anything; safe while iterating)."""
        now = self.keyspace.now
        expires = self.expires
        for key in list(self.data):
            deadline = expires.get(key)
            if deadline is None or deadline > now:
                yield key

    def __len__(self) -> int:
        return len(self.data)

    # ------------------------------------------------------------ writes

    def store(self, key: bytes, value, keep_ttl: bool = False) -> None:
        """Set `key` to `value`; clears its deadline unless `keep_ttl`; signals watchers.

        Announces the `new` keyspace event when the key did not exist (flag n).
        """
        expires = self.expires
        if expires:
            deadline = expires.get(key)
            if deadline is not None:
                if deadline <= self.keyspace.now:
                    self.keyspace.expire_key(self, key)  # announce the expiry before the overwrite
                elif not keep_ttl:
                    del expires[key]
        if self.blocked and key in self.blocked:
            self._stream_gone(key, value)
        flags = self.keyspace.notifier.flags
        if flags and flags & ev.NEW and key not in self.data:
            self.data[key] = value
            self.notify(ev.NEW, b"new", key)
        self.data[key] = value
        if self.watchers:
            self.touch(key)

    def delete(self, key: bytes) -> bool:
        """Remove `key` and its deadline; True if a live key was removed."""
        if self.get(key) is None:
            return False
        if self.blocked and key in self.blocked:
            self._stream_gone(key)
        del self.data[key]
        self.expires.pop(key, None)
        self.touch(key)
        return True

    def _stream_gone(self, key: bytes, replacement=None) -> None:
        """`key` is deleted or replaced while clients block on it: if it held a stream, its
        blocked XREADGROUPs are answered after the command (Redis 7.0's UNBLOCKED error)."""
        old = self.data.get(key)
        if type(old) is Stream and old is not replacement:
            on_gone = self.keyspace.on_stream_gone
            if on_gone is not None:
                on_gone(self, key)

    def set_deadline(self, key: bytes, deadline_ms: int) -> None:
        """Give the existing `key` an absolute deadline (ms since epoch)."""
        self.expires[key] = self.keyspace.schedule(deadline_ms, self.index, key)
        self.touch(key)

    def persist(self, key: bytes) -> bool:
        """Drop the deadline of `key`; True if it had one."""
        if self.expires.pop(key, None) is None:
            return False
        self.touch(key)
        return True

    def drop_if_empty(self, key: bytes, value) -> bool:
        """Delete an aggregate (hash, set, list, zset) left empty by a write; True if deleted."""
        if not value:
            del self.data[key]
            self.expires.pop(key, None)
            return True
        return False

    def touch(self, key: bytes) -> None:
        """Signal that `key` changed: transactions WATCHing it will abort."""
        if self.watchers:
            clients = self.watchers.get(key)
            if clients:
                for client in clients:
                    client.watch_dirty = True

    def flush(self) -> None:
        """Remove every key; WATCHers of the removed keys are signalled."""
        if self.watchers:
            for key in self.data:
                self.touch(key)
        for key in list(self.blocked):
            self._stream_gone(key)
        self.data.clear()
        self.expires.clear()

    def notify(self, flag: int, event: bytes, key: bytes) -> None:
        """Announce a keyspace event for `key` (no-op unless someone configured it)."""
        notifier = self.keyspace.notifier
        if notifier.flags & flag:
            notifier.keyspace_event(flag, event, key, self.index)


class Keyspace:
    """All databases, the deadline heap, and the clock."""

    def __init__(
        self, clock: Callable[[], int] = wall_clock_ms, notifier: ev.Notifier | None = None
    ) -> None:
        self.clock = clock
        self.now = clock()
        self.notifier = notifier or ev.Notifier()
        self.dbs = [Database(i, self) for i in range(DATABASES)]
        # deadline ms -> bucket of the keys due then: a bare key (db 0), a (db, key) pair,
        # or a list [deadline, entry, entry...] when several are due in that millisecond
        self._due: dict[int, object] = {}
        self._order: list[int] = []  # heap of the deadlines in _due
        self._entries = 0  # entries in the buckets, stale ones included
        self._next_check = 1024  # when _entries reaches it, see whether stale ones dominate
        self.on_earlier_deadline: Callable[[int], None] | None = (
            None  # the server re-arms its timer
        )
        self.expired_count = 0
        self.on_expired: Callable[[int, bytes], None] | None = None  # the AOF records a DEL
        self.on_gone: Callable[[Database, bytes], None] | None = None  # maxmemory's accounting
        # a stream key clients block on went away: the server serves them (blocking.py)
        self.on_stream_gone: Callable[[Database, bytes], None] | None = None
        self.hits = self.misses = 0  # read lookups that found a key, and that did not (INFO stats)

    def tick(self) -> int:
        """Read the clock once; commands then see `self.now`."""
        self.now = now = self.clock()
        return now

    def schedule(self, deadline_ms: int, db_index: int, key: bytes) -> int:
        """Remember that `key` of db `db_index` is due at `deadline_ms`; returns the deadline to store.

        Keys due in the same millisecond share one bucket and one int object for their
        deadline (the returned one): a burst of writes with one TTL costs a list slot per
        key instead of a heap tuple and an int.
        """
        if self._entries >= self._next_check:
            self._drop_stale_entries()
        entry = key if db_index == 0 else (db_index, key)
        due = self._due
        bucket = due.get(deadline_ms)
        self._entries += 1
        if bucket is None:
            earliest = self._order[0] if self._order else None
            due[deadline_ms] = entry
            heapq.heappush(self._order, deadline_ms)
            if (earliest is None or deadline_ms < earliest) and self.on_earlier_deadline:
                self.on_earlier_deadline(deadline_ms)
            return deadline_ms
        if type(bucket) is not list:  # a second key due in this millisecond
            first_db, first_key = self._split(bucket)
            shared = self.dbs[first_db].expires.get(first_key)
            if shared != deadline_ms:
                shared = deadline_ms
            bucket = due[deadline_ms] = [shared, bucket]
        bucket.append(entry)
        return bucket[0]

    @staticmethod
    def _split(entry) -> tuple[int, bytes]:
        """(db index, key) of a bucket entry (a bare key stands for db 0)."""
        return (0, entry) if type(entry) is bytes else entry

    def keys_with_deadline(self) -> int:
        return sum(len(db.expires) for db in self.dbs)

    def _drop_stale_entries(self) -> None:
        """Rebuild the buckets if stale entries outnumber live ones more than twice."""
        live = self.keys_with_deadline()
        if self._entries > 3 * live:
            self._rebuild()
        self._next_check = self._entries + max(1024, live)

    def _rebuild(self) -> None:
        """Drop stale entries so the buckets hold one entry per key with a deadline."""
        self._due = {}
        self._order = []
        self._entries = 0
        on_earlier, self.on_earlier_deadline = self.on_earlier_deadline, None
        for db in self.dbs:
            expires = db.expires
            for key, deadline in expires.items():
                expires[key] = self.schedule(deadline, db.index, key)
        self.on_earlier_deadline = on_earlier

    def _is_live(self, entry, deadline: int) -> bool:
        db_index, key = self._split(entry)
        return self.dbs[db_index].expires.get(key) == deadline

    def next_deadline(self) -> int | None:
        """The earliest deadline of a key, or None; stale entries met on top are dropped.

        So the timer is armed for a key that will expire, not for one refreshed since:
        under steady refreshes (a presence node's heartbeats) most deadlines in the heap
        are stale, and a timer for each would wake the server hundreds of times a second.
        """
        order = self._order
        due = self._due
        while order:
            deadline = order[0]
            bucket = due[deadline]
            if type(bucket) is list:
                while len(bucket) > 1 and not self._is_live(bucket[-1], deadline):
                    bucket.pop()
                    self._entries -= 1
                if len(bucket) > 1:
                    return deadline
            elif self._is_live(bucket, deadline):
                return deadline
            else:
                self._entries -= 1
            heapq.heappop(order)
            del due[deadline]
        return None

    def expire_due(self, limit: int = 100_000) -> int:
        """Expire every key whose deadline is <= now (at most `limit`); return how many."""
        now = self.now
        order = self._order
        due = self._due
        expired = 0
        while order and order[0] <= now and expired < limit:
            deadline = order[0]
            bucket = due[deadline]
            if type(bucket) is list:
                while len(bucket) > 1 and expired < limit:
                    expired += self._expire_entry(bucket.pop(), deadline)
                if len(bucket) > 1:
                    break  # the limit: the rest of this bucket is for the next slice
            else:
                expired += self._expire_entry(bucket, deadline)
            heapq.heappop(order)
            del due[deadline]
        return expired

    def _expire_entry(self, entry, deadline: int) -> int:
        """Expire the key of a bucket entry if `deadline` is still its deadline; 1 if it was."""
        self._entries -= 1
        db_index, key = self._split(entry)
        db = self.dbs[db_index]
        if db.expires.get(key) == deadline:  # not stale: this is the key's current deadline
            self.expire_key(db, key)
            return 1
        return 0

    def expire_key(self, db: Database, key: bytes) -> None:
        """Delete `key` because its deadline passed, and announce it."""
        if db.blocked and key in db.blocked:
            db._stream_gone(key)
        if self.on_gone is not None:
            self.on_gone(db, key)
        del db.data[key]
        del db.expires[key]
        db.touch(key)
        self.expired_count += 1
        if self.on_expired is not None:
            self.on_expired(db.index, key)
        self.notifier.expired(key, db.index)

    def flush_all(self) -> None:
        for db in self.dbs:
            db.flush()
        self._due.clear()
        self._order.clear()
        self._entries = 0
