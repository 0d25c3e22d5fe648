"""The sorted-set value: member -> score, kept in (score, member) order.

A dict gives O(1) score lookup; a sorted Python list of (score, member) pairs, updated
with bisect, gives rank and range queries. Insertions move memory (O(n) memmove) but
stay fast up to hundreds of thousands of members, which is the scale a presence
channel needs.

Range bounds come parsed: a score bound is `(value, exclusive)`; a lex bound is
`(kind, value, exclusive)` with kind -1 for `-`, 1 for `+`, 0 for a member. Lex ranges
are meant for members that share one score, as Redis documents; with mixed scores they
walk the order the way Redis does. `combine` is the set algebra of ZUNION/ZINTER/ZDIFF.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from operator import itemgetter

_member = itemgetter(1)
LISTPACK_MAX_ENTRIES = 128  # zset-max-listpack-entries
LISTPACK_MAX_VALUE = 64  # zset-max-listpack-value


class ZSet:
    """Members with float scores, ordered by (score, member) like Redis."""

    __slots__ = ("scores", "order", "skiplist")

    def __init__(self) -> None:
        self.scores: dict[bytes, float] = {}
        self.order: list[tuple[float, bytes]] = []
        self.skiplist = False  # Redis's encoding: it shows in ZSCAN's score text; never reverts

    def copy(self) -> ZSet:
        """An independent ZSet with the same members and scores (COPY)."""
        clone = ZSet()
        clone.scores = dict(self.scores)
        clone.order = list(self.order)
        return clone

    def __len__(self) -> int:
        return len(self.scores)

    def __bool__(self) -> bool:
        return bool(self.scores)

    def __contains__(self, member: bytes) -> bool:
        return member in self.scores

    def score(self, member: bytes) -> float | None:
        return self.scores.get(member)

    def add(self, member: bytes, score: float) -> bool:
        """Set `member`'s score; True if the member is new. -0.0 is stored as 0.0."""
        score += 0.0
        old = self.scores.get(member)
        if old is not None:
            if old == score:
                return False
            del self.order[bisect_left(self.order, (old, member))]
        self.scores[member] = score
        insort(self.order, (score, member))
        if len(member) > LISTPACK_MAX_VALUE or len(self.scores) > LISTPACK_MAX_ENTRIES:
            self.skiplist = True
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

    def rank_slice(self, start: int, stop: int) -> tuple[int, int]:
        """[i, j) slice of `order` for ranks start..stop inclusive, after Redis's negative-index rules."""
        n = len(self.order)
        if start < 0:
            start = max(0, n + start)
        if stop < 0:
            stop = n + stop
        if start > stop or start >= n:
            return 0, 0
        return start, min(stop, n - 1) + 1

    def range_by_rank(self, start: int, stop: int) -> list[tuple[float, bytes]]:
        """Pairs at ranks start..stop inclusive, after Redis's negative-index rules."""
        i, j = self.rank_slice(start, stop)
        return self.order[i:j]

    def index_range_by_score(
        self, low: float, low_open: bool, high: float, high_open: bool
    ) -> tuple[int, int]:
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

    def score_slice(self, low: tuple[float, bool], high: tuple[float, bool]) -> tuple[int, int]:
        """[i, j) slice of `order` inside a parsed score range."""
        return self.index_range_by_score(low[0], low[1], high[0], high[1])

    def lex_slice(self, low: tuple, high: tuple, reverse: bool = False) -> tuple[int, int]:
        """[i, j) slice of `order` inside a parsed lex range.

        With one score for all members (the documented use) this is a bisection. With
        mixed scores it is Redis's walk: from the head (from the tail if `reverse`) to
        the first member inside the range, then on while members stay inside.
        """
        order = self.order
        if not order or low[:2] > high[:2] or (low[:2] == high[:2] and (low[2] or high[2])):
            return 0, 0  # (kind, member) orders `-` < members < `+`, as Redis compares bounds
        if order[0][0] == order[-1][0]:
            i = _lex_bisect(order, low, True)
            return i, max(i, _lex_bisect(order, high, False))
        if not _above_min(order[-1][1], low) or not _below_max(order[0][1], high):
            return 0, 0
        n = len(order)
        if reverse:
            j = n
            while j and not _below_max(order[j - 1][1], high):
                j -= 1
            i = j
            while i and _above_min(order[i - 1][1], low):
                i -= 1
            return i, j
        i = 0
        while i < n and not _above_min(order[i][1], low):
            i += 1
        j = i
        while j < n and _below_max(order[j][1], high):
            j += 1
        return i, j

    def remove_slice(self, i: int, j: int) -> int:
        """Remove the members at positions [i, j) of `order`; return how many."""
        scores = self.scores
        for _, member in self.order[i:j]:
            del scores[member]
        del self.order[i:j]
        return j - i


def _above_min(member: bytes, low: tuple) -> bool:
    kind, value, exclusive = low
    if kind:
        return kind < 0
    return member > value if exclusive else member >= value


def _below_max(member: bytes, high: tuple) -> bool:
    kind, value, exclusive = high
    if kind:
        return kind > 0
    return member < value if exclusive else member <= value


def _lex_bisect(order: list, bound: tuple, is_low: bool) -> int:
    """Position of a lex bound in `order` when all members share one score."""
    kind, value, exclusive = bound
    if kind:
        return 0 if kind < 0 else len(order)
    after = exclusive if is_low else not exclusive
    return (bisect_right if after else bisect_left)(order, value, key=_member)


def combine(sources: list[dict], weights: list[float], aggregate: str, op: str) -> dict:
    """ZUNION/ZINTER/ZDIFF of member->score dicts: member -> combined score.

    `op` is "union", "inter" or "diff"; `aggregate` "sum", "min" or "max". A NaN
    (inf - inf, 0 * inf) becomes 0, as in Redis.
    """
    if op == "diff":
        first = sources[0]
        return {m: s for m, s in first.items() if not any(m in other for other in sources[1:])}
    if op == "inter":
        smallest = min(range(len(sources)), key=lambda k: len(sources[k]))
        members = [m for m in sources[smallest] if all(m in src for src in sources)]
    else:
        members = dict.fromkeys(m for src in sources for m in src)
    combined = {}
    for member in members:
        total = None
        for src, weight in zip(sources, weights, strict=False):
            if member in src:
                total = _aggregate(total, _weighted(src[member], weight), aggregate)
        combined[member] = total
    return combined


def _weighted(score: float, weight: float) -> float:
    value = score * weight
    return 0.0 if value != value else value


def _aggregate(total: float | None, value: float, aggregate: str) -> float:
    if total is None:
        return value
    if aggregate == "sum":
        total += value
        return 0.0 if total != total else total
    return min(total, value) if aggregate == "min" else max(total, value)


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
