"""The stream value: entries in ID order, grouped in nodes as Redis groups them in listpacks.

An ID `ms-seq` is one Python int, `ms << 64 | seq`, so IDs compare and sort as numbers. The
entries live in nodes, as in Redis's radix tree of listpacks: a node holds the sorted IDs of
its live entries and their field-value tuples (entries with the node's first field names
share those bytes objects), the count of its tombstones (entries deleted but still in the
listpack), and an estimate of the listpack's bytes, computed with listpack's encoding rules.
A new node starts where Redis starts one (stream-node-max-entries entries counting
tombstones, or stream-node-max-bytes), so approximate trimming (`~`), which removes whole
nodes only, removes what Redis removes, and XINFO STREAM reports Redis's radix-tree figures.

Consumer groups (`Group`) keep the last delivered ID, the logical read counter, the pending
entries list (ID -> `Nack`, plus the IDs in order for range scans) and the consumers, each
with its own pending IDs. Groups and consumers are listed by name, bytewise, as Redis's radix
trees order them.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right, insort

from presence.store.numbers import as_int64

MAX64 = (1 << 64) - 1
MAX_ID = (1 << 128) - 1
INVALID_READ = -1  # Redis's SCG_INVALID_ENTRIES_READ: the group's read counter is unknown
# The commands the last stream write propagates, as Redis would (generated IDs, exact trims,
# deliveries as XCLAIM): commands/stream.py fills it, the append-only file records it.
EFFECTS: list[list[bytes]] = []
_LISTPACK_HEADER = 7  # total-bytes, count, end byte


def format_id(sid: int) -> bytes:
    """`ms-seq` as Redis prints it."""
    return b"%d-%d" % (sid >> 64, sid & MAX64)


def _int_size(value: int) -> int:
    """Bytes of an integer listpack element (encoding and back-length)."""
    if 0 <= value <= 127:
        return 2
    if -4096 <= value <= 4095:
        return 3
    if -32768 <= value <= 32767:
        return 4
    if -8388608 <= value <= 8388607:
        return 5
    if -2147483648 <= value <= 2147483647:
        return 6
    return 10


def _str_size(raw: bytes) -> int:
    """Bytes of a string listpack element (an integer-looking one is stored as an integer)."""
    value = as_int64(raw) if len(raw) <= 20 else None
    if value is not None:
        return _int_size(value)
    n = len(raw)
    encoded = n + (1 if n <= 63 else 2 if n <= 4095 else 5)
    return encoded + _backlen(encoded)


def _backlen(encoded: int) -> int:
    if encoded <= 127:
        return 1
    if encoded < 16383:
        return 2
    if encoded < 2097151:
        return 3
    if encoded < 268435455:
        return 4
    return 5


def _signed64(value: int) -> int:
    value &= MAX64
    return value - (1 << 64) if value >= 1 << 63 else value


class Node:
    """One listpack: its master ID and fields, live entries, tombstones, size in bytes."""

    __slots__ = ("master", "fields", "ids", "entries", "dead", "size", "last")

    def __init__(self, master: int, fields: tuple) -> None:
        self.master = master
        self.fields = fields  # the master entry's field names
        self.ids: list[int] = []
        self.entries: list[tuple] = []  # field, value, field, value ...
        self.dead = 0
        self.last = master  # the last ID appended, tombstones included
        self.size = (
            _LISTPACK_HEADER + 2 + 2 + _int_size(len(fields)) + sum(map(_str_size, fields)) + 2
        )

    def set_counts(self, live: int, dead: int) -> None:
        """Update the master entry's counters before the live IDs change (their encoded
        sizes may change)."""
        self.size += _int_size(live) - _int_size(len(self.ids))
        self.size += _int_size(dead) - _int_size(self.dead)
        self.dead = dead

    def copy(self) -> Node:
        clone = Node.__new__(Node)
        clone.master, clone.fields, clone.dead = self.master, self.fields, self.dead
        clone.ids, clone.entries = list(self.ids), list(self.entries)
        clone.size, clone.last = self.size, self.last
        return clone


class Nack:
    """A pending entry: its consumer, last delivery time (ms) and delivery count."""

    __slots__ = ("consumer", "time", "count")

    def __init__(self, consumer: Consumer | None, time: int, count: int = 1) -> None:
        self.consumer, self.time, self.count = consumer, time, count


class Consumer:
    """A group's consumer: its name, when it was last seen (ms), its pending entries."""

    __slots__ = ("name", "seen", "pel")

    def __init__(self, name: bytes, seen: int) -> None:
        self.name, self.seen = name, seen
        self.pel: dict[int, Nack] = {}


class Group:
    """A consumer group: last delivered ID, read counter, pending entries, consumers."""

    __slots__ = ("last_id", "entries_read", "pel", "order", "consumers")

    def __init__(self, last_id: int, entries_read: int) -> None:
        self.last_id, self.entries_read = last_id, entries_read
        self.pel: dict[int, Nack] = {}
        self.order: list[int] = []  # the pending IDs, sorted
        self.consumers: dict[bytes, Consumer] = {}

    def add_pending(self, sid: int, nack: Nack) -> None:
        self.pel[sid] = nack
        insort(self.order, sid)

    def drop_pending(self, sid: int) -> Nack | None:
        """Remove `sid` from the group's and its consumer's pending entries."""
        nack = self.pel.pop(sid, None)
        if nack is not None:
            del self.order[bisect_left(self.order, sid)]
            if nack.consumer is not None:
                nack.consumer.pel.pop(sid, None)
        return nack

    def pending_from(self, start: int, limit: int | None = None) -> list[int]:
        """Up to `limit` pending IDs >= start, in order (a copy: the PEL may change meanwhile)."""
        i = bisect_left(self.order, start)
        return self.order[i : None if limit is None else i + limit]

    def iter_pending(self, start: int):
        """Pending IDs >= start, in order, while the PEL does not change."""
        order = self.order
        for i in range(bisect_left(order, start), len(order)):
            yield order[i]

    def sorted_consumers(self) -> list[Consumer]:
        return [self.consumers[name] for name in sorted(self.consumers)]

    def copy(self) -> Group:
        clone = Group(self.last_id, self.entries_read)
        for name, consumer in self.consumers.items():
            twin = clone.consumers[name] = Consumer(name, consumer.seen)
            for sid, nack in consumer.pel.items():
                twin.pel[sid] = clone.pel[sid] = Nack(twin, nack.time, nack.count)
        clone.order = list(self.order)
        return clone


class Stream:
    """A stream: nodes of entries, its counters (length, last/first/max-deleted ID, entries
    added) and consumer groups."""

    __slots__ = ("nodes", "masters", "length", "last_id", "first_id", "max_deleted",
                 "entries_added", "groups")  # fmt: skip

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.masters: list[int] = []  # each node's master ID, for bisect
        self.length = 0
        self.last_id = self.first_id = self.max_deleted = 0
        self.entries_added = 0
        self.groups: dict[bytes, Group] = {}

    # ------------------------------------------------------------ writes

    def append(self, sid: int, items: list[bytes], max_entries: int, max_bytes: int) -> None:
        """Add the entry `sid` (greater than last_id) with field-value `items`."""
        node = self.nodes[-1] if self.nodes else None
        if node is not None:
            if max_bytes == 0 or max_bytes > 1 << 30:
                max_bytes = 1 << 30
            if node.size + sum(map(len, items)) >= max_bytes or (
                max_entries and len(node.ids) + node.dead >= max_entries
            ):
                node = None
        fields = tuple(items[0::2])
        if node is None:
            node = Node(sid, fields)
            self.nodes.append(node)
            self.masters.append(sid)
        live = len(node.ids)
        node.size += _int_size(live + 1) - _int_size(live)
        same = fields == node.fields
        if same:  # share the node's field names
            shared = list(items)
            shared[0::2] = node.fields
            entry = tuple(shared)
        else:
            entry = tuple(items)
        size = 2 + _int_size(_signed64((sid >> 64) - (node.master >> 64)))
        size += _int_size(_signed64((sid & MAX64) - (node.master & MAX64)))
        size += sum(map(_str_size, items[1::2]))
        pieces = len(fields) + 3
        if not same:
            size += _int_size(len(fields)) + sum(map(_str_size, fields))
            pieces += len(fields) + 1
        node.size += size + _int_size(pieces)
        node.ids.append(sid)
        node.entries.append(entry)
        node.last = sid
        self.length += 1
        self.entries_added += 1
        self.last_id = sid
        if self.length == 1:
            self.first_id = sid

    def delete(self, sid: int) -> bool:
        """XDEL one entry: True if it was there."""
        i = bisect_right(self.masters, sid) - 1
        if i < 0:
            return False
        node = self.nodes[i]
        j = bisect_left(node.ids, sid)
        if j == len(node.ids) or node.ids[j] != sid:
            return False
        self.length -= 1
        if len(node.ids) == 1:
            del self.nodes[i], self.masters[i]
        else:
            node.set_counts(len(node.ids) - 1, node.dead + 1)
            del node.ids[j], node.entries[j]
        return True

    def trim(self, maxlen: int | None, minid: int, approx: bool, limit: int) -> int:
        """Redis's streamTrim: by length (`maxlen`) or else by `minid`; whole nodes only when
        `approx`; at most `limit` entries when not 0. Returns how many were removed."""
        deleted = 0
        while self.nodes:
            if maxlen is not None and self.length <= maxlen:
                break
            node = self.nodes[0]
            entries = len(node.ids)
            if limit and deleted + entries > limit:
                break
            if maxlen is not None:
                whole = self.length - entries >= maxlen
            else:
                whole = node.last < minid
            if whole:
                del self.nodes[0], self.masters[0]
                self.length -= entries
                deleted += entries
                continue
            if approx:
                break
            cut = 0
            if maxlen is not None:
                cut = min(entries, self.length - maxlen)
            else:
                cut = bisect_left(node.ids, minid)
            if cut:
                node.set_counts(entries - cut, node.dead + cut)
                del node.ids[:cut], node.entries[:cut]
                self.length -= cut
                deleted += cut
            break
        if self.length == 0:
            self.first_id = 0
        elif deleted:
            self.first_id = self.first_valid()
        return deleted

    # ------------------------------------------------------------ reads

    def first_valid(self) -> int:
        for node in self.nodes:
            if node.ids:
                return node.ids[0]
        return 0

    def last_valid(self) -> int:
        for node in reversed(self.nodes):
            if node.ids:
                return node.ids[-1]
        return 0

    def get(self, sid: int) -> tuple | None:
        """The entry's field-value tuple, or None."""
        i = bisect_right(self.masters, sid) - 1
        if i < 0:
            return None
        node = self.nodes[i]
        j = bisect_left(node.ids, sid)
        if j < len(node.ids) and node.ids[j] == sid:
            return node.entries[j]
        return None

    def range(self, start: int, end: int, rev: bool = False):
        """(id, entry) pairs with start <= id <= end, in order (reversed with `rev`)."""
        if start > end or not self.nodes:
            return
        nodes = self.nodes
        if not rev:
            i = max(0, bisect_right(self.masters, start) - 1)
            j = bisect_left(nodes[i].ids, start)
            while i < len(nodes):
                node = nodes[i]
                ids = node.ids
                while j < len(ids):
                    sid = ids[j]
                    if sid > end:
                        return
                    yield sid, node.entries[j]
                    j += 1
                i, j = i + 1, 0
        else:
            i = bisect_right(self.masters, end) - 1
            if i < 0:
                return
            j = bisect_right(nodes[i].ids, end) - 1
            while i >= 0:
                node = nodes[i]
                while j >= 0:
                    sid = node.ids[j]
                    if sid < start:
                        return
                    yield sid, node.entries[j]
                    j -= 1
                i -= 1
                if i >= 0:
                    j = len(nodes[i].ids) - 1

    def has_tombstones_in(self, start: int, end: int = MAX_ID) -> bool:
        """Redis's streamRangeHasTombstones."""
        if not self.length or not self.max_deleted or self.first_id > self.max_deleted:
            return False
        return start <= self.max_deleted <= end

    def distance(self, sid: int) -> int:
        """Redis's streamEstimateDistanceFromFirstEverEntry: the read counter of `sid`, or
        INVALID_READ when it cannot be known."""
        if not self.entries_added:
            return 0
        if not self.length and sid <= self.last_id:
            return self.entries_added
        if sid == self.last_id:
            return self.entries_added
        if sid > self.last_id:
            return INVALID_READ
        if not self.max_deleted or self.max_deleted < self.first_id:
            if sid < self.first_id:
                return self.entries_added - self.length
            if sid == self.first_id:
                return self.entries_added - self.length + 1
        return INVALID_READ

    def lag(self, group: Group) -> int | None:
        """Redis's streamReplyWithCGLag: entries not yet delivered to `group`, or None."""
        if not self.entries_added:
            return 0
        if group.entries_read != INVALID_READ and not self.has_tombstones_in(group.last_id):
            return self.entries_added - group.entries_read
        read = self.distance(group.last_id)
        return None if read == INVALID_READ else self.entries_added - read

    def radix_nodes(self) -> int:
        """The nodes of Redis's radix tree holding this stream's node keys (XINFO STREAM):
        the root, each key, each branching prefix and each child of one. The branching
        prefixes are the common prefixes of neighbouring keys."""
        keys = [m.to_bytes(16, "big") for m in self.masters]
        found = {b""} | set(keys)
        for a, b in itertools.pairwise(keys):
            n = 0
            while a[n] == b[n]:
                n += 1
            found.update((a[:n], a[: n + 1], b[: n + 1]))
        return len(found)

    def memory_items(self):
        """Every entry's fields and values (MEMORY USAGE's estimate)."""
        for node in self.nodes:
            yield from node.entries

    def copy(self) -> Stream:
        """An independent stream with the same entries, counters and groups (COPY)."""
        clone = Stream()
        clone.nodes = [node.copy() for node in self.nodes]
        clone.masters = list(self.masters)
        clone.length, clone.last_id, clone.first_id = self.length, self.last_id, self.first_id
        clone.max_deleted, clone.entries_added = self.max_deleted, self.entries_added
        clone.groups = {name: group.copy() for name, group in self.groups.items()}
        return clone
