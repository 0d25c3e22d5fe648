"""The sorted-set value: member -> score, kept in (score, member) order.

A dict gives O(1) score lookup; a sorted Python list of (score, member) pairs, updated
with bisect, gives rank and range queries. Insertions move memory (O(n) memmove) but
stay fast up to hundreds of thousands of members, which is the scale a presence
channel needs.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right, insort


class ZSet:
    """Members with float scores, ordered by (score, member) like Redis."""

    __slots__ = ("scores", "order")

    def __init__(self) -> None:
        self.scores: dict[bytes, float] = {}
        self.order: list[tuple[float, bytes]] = []

    def __len__(self) -> int:
        return len(self.scores)

    def __bool__(self) -> bool:
        return bool(self.scores)

    def __contains__(self, member: bytes) -> bool:
        return member in self.scores

    def score(self, member: bytes) -> float | None:
        return self.scores.get(member)

    def add(self, member: bytes, score: float) -> bool:
        """Set `member`'s score; True if the member is new."""
        old = self.scores.get(member)
        if old is not None:
            if old == score:
                return False
            del self.order[bisect_left(self.order, (old, member))]
        self.scores[member] = score
        insort(self.order, (score, member))
        return old is None

    def remove(self, member: bytes) -> bool:
        """Remove `member`; True if it was there."""
        old = self.scores.pop(member, None)
        if old is None:
            return False
        del self.order[bisect_left(self.order, (old, member))]
        return True

    def rank(self, member: bytes) -> int | None:
        """0-based position in ascending order, or None."""
        score = self.scores.get(member)
        if score is None:
            return None
        return bisect_left(self.order, (score, member))

    def range_by_rank(self, start: int, stop: int) -> list[tuple[float, bytes]]:
        """Pairs at ranks start..stop inclusive, after Redis's negative-index rules."""
        n = len(self.order)
        if start < 0:
            start = max(0, n + start)
        if stop < 0:
            stop = n + stop
        if start > stop or start >= n:
            return []
        return self.order[start:min(stop, n - 1) + 1]

    def index_range_by_score(self, low: float, low_open: bool, high: float, high_open: bool) -> tuple[int, int]:
        """[i, j) slice of `order` whose scores lie between the bounds."""
        order = self.order
        if low_open:
            i = bisect_right(order, (low, _MAX_MEMBER))
        else:
            i = bisect_left(order, (low, b""))
        if high_open:
            j = bisect_left(order, (high, b""))
        else:
            j = bisect_right(order, (high, _MAX_MEMBER))
        return i, max(i, j)


class _MaxMember(bytes):
    """Compares greater than every bytes member, to bisect past all members of one score."""

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    __hash__ = bytes.__hash__

    def __lt__(self, other):
        return False

    def __gt__(self, other):
        return True

    def __le__(self, other):
        return self is other

    def __ge__(self, other):
        return True


_MAX_MEMBER = _MaxMember()
