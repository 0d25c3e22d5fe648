"""Cursors for SCAN, HSCAN and SSCAN that never miss an element that stays.

Redis guarantees that a full iteration returns every element present from its start to
its end. Positions in a Python dict or set shift when elements are deleted, so a cursor
cannot be a plain position. Instead, cursor 0 takes a snapshot of the collection's
members (a list of references, once per iteration); the cursor then encodes
(snapshot id, position), and each step walks COUNT entries of the snapshot, skipping
members deleted since. Every member that stays is returned exactly once.

Snapshots of the most recent iterations are kept (at most `MAX_SNAPSHOTS`, and
`MAX_ENTRIES` references in all); a finished iteration frees its snapshot. A cursor
whose snapshot was evicted resumes at that position in the current order, which is
what a position cursor would do.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from itertools import islice

MAX_SNAPSHOTS = 64
MAX_ENTRIES = 10_000_000
_POSITION_BITS = 32


class ScanCursors:
    """The live snapshots of one server."""

    def __init__(self) -> None:
        self._snapshots: OrderedDict[int, list] = OrderedDict()
        self._entries = 0
        self._next_id = 1

    def step(self, collection, cursor: int, count: int) -> tuple[int, list]:
        """(next cursor, up to `count` members still in `collection`) for one SCAN call.

        `collection` supports `in` and iteration (a dict, a set). Cursor 0 starts.
        """
        snapshot_id, position = cursor >> _POSITION_BITS, cursor & ((1 << _POSITION_BITS) - 1)
        snapshot = self._snapshots.get(snapshot_id) if cursor else None
        if cursor == 0:
            snapshot_id, snapshot = self._take(collection)
        elif snapshot is None:  # evicted or unknown: a position in the current order
            window = list(islice(collection, position, position + count))
            nxt = position + len(window)
            return (0 if nxt >= len(collection) or not window else nxt), window
        else:
            self._snapshots.move_to_end(snapshot_id)
        window = [m for m in snapshot[position : position + count] if m in collection]
        position += count
        if position >= len(snapshot):
            self._drop(snapshot_id)
            return 0, window
        return (snapshot_id << _POSITION_BITS) | position, window

    def _take(self, collection: Iterable) -> tuple[int, list]:
        snapshot = list(collection)
        snapshot_id = self._next_id
        self._next_id = self._next_id % ((1 << 31) - 1) + 1
        self._snapshots[snapshot_id] = snapshot
        self._entries += len(snapshot)
        while self._snapshots and (
            len(self._snapshots) > MAX_SNAPSHOTS or self._entries > MAX_ENTRIES
        ):
            oldest = next(iter(self._snapshots))
            if oldest == snapshot_id:
                break
            self._drop(oldest)
        return snapshot_id, snapshot

    def _drop(self, snapshot_id: int) -> None:
        snapshot = self._snapshots.pop(snapshot_id, None)
        if snapshot is not None:
            self._entries -= len(snapshot)
