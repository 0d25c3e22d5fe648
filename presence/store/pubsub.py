"""The pub/sub hub: who listens to which channel, pattern or shard channel, and delivery.

Shard channels (SSUBSCRIBE/SPUBLISH, Redis 7.0's sharded pub/sub) are a namespace of
their own: a SUBSCRIBE to "x" gets no SPUBLISH to "x", and patterns never match them.

Delivery is immediate and at-most-once, as in Redis: a message goes into each
subscriber's output buffer at PUBLISH time. A subscriber that does not read is
disconnected when its pending output passes the configured limits
(`client-output-buffer-limit pubsub`), so it cannot grow the server's memory.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial

from presence.store.resp import Push


def glob_match(pattern: bytes, subject: bytes) -> bool:
    """Redis's glob (`*`, `?`, `[a-z]`, `[^x]`, `\\x`) over raw bytes, quirks included.

    A port of Redis 7.0's stringmatchlen(): an unterminated `[` class ends at the end of
    the pattern, ranges compare bytes as C's signed chars, and a pattern never matches
    the empty subject unless it is empty itself. Polynomial time: once the rest of a
    pattern fails after a `*` at every offset, earlier stars are not retried.
    """
    return _match(pattern, 0, subject, 0, [False], 0)


_GLOB_SPECIAL = frozenset(b"*?[\\")


@lru_cache(maxsize=4096)
def glob_matcher(pattern: bytes) -> Callable[[bytes], bool]:
    """`glob_match(pattern, subject)` as one callable of the subject, with the same answers:
    a pattern without special bytes compares equal, `prefix*` by startswith, `*` matches
    any non-empty subject (Redis's quirk), the rest through glob_match. ACL checks every
    key of every command against the user's patterns, so this is on the hot path."""
    body = pattern.rstrip(b"*")
    if any(c in _GLOB_SPECIAL for c in body):
        return partial(glob_match, pattern)
    if body == pattern:
        return lambda subject: subject == pattern
    if body:
        return lambda subject: subject.startswith(body)
    return bool


def _signed(c: int) -> int:
    return c - 256 if c > 127 else c


MAX_NESTING = 1000  # as Redis: deeper star nesting simply does not match


def _match(p: bytes, pi: int, s: bytes, si: int, give_up: list, nesting: int) -> bool:
    if nesting > MAX_NESTING:
        return False
    plen, slen = len(p), len(s)
    while pi < plen and si < slen:
        c = p[pi]
        if c == 42:  # '*'
            while pi + 1 < plen and p[pi + 1] == 42:
                pi += 1
            if pi + 1 == plen:
                return True
            while si < slen:
                if _match(p, pi + 1, s, si, give_up, nesting + 1):
                    return True
                if give_up[0]:
                    return False
                si += 1
            give_up[0] = True  # the rest failed at every offset: longer stars cannot help
            return False
        if c == 91:  # '['
            pi, matched = _match_class(p, pi + 1, s[si])
            if not matched:
                return False
        elif c != 63:  # not '?': a literal, possibly escaped
            if c == 92 and pi + 1 < plen:
                pi += 1
            if p[pi] != s[si]:
                return False
        pi += 1
        si += 1
        if si == slen:
            while pi < plen and p[pi] == 42:
                pi += 1
    return pi == plen and si == slen


def _match_class(p: bytes, pi: int, ch: int) -> tuple[int, bool]:
    """Match `ch` against the class starting after `[`; return (index of its `]`, matched)."""
    plen = len(p)
    negate = pi < plen and p[pi] == 94  # '^'
    if negate:
        pi += 1
    matched = False
    while True:
        if pi < plen and p[pi] == 92 and plen - pi >= 2:  # '\\' escapes the next byte
            pi += 1
            matched |= p[pi] == ch
        elif pi < plen and p[pi] == 93:  # ']'
            break
        elif pi >= plen:
            pi -= 1  # unterminated: the last byte stands in for the ']'
            break
        elif plen - pi >= 3 and p[pi + 1] == 45:  # a range like a-z
            lo, hi = sorted((_signed(p[pi]), _signed(p[pi + 2])))
            matched |= lo <= _signed(ch) <= hi
            pi += 2
        else:
            matched |= p[pi] == ch
        pi += 1
    return pi, matched != negate


class PubSubHub:
    """Channel, pattern and shard channel subscriptions across all clients."""

    def __init__(self) -> None:
        self.channels: dict[bytes, set] = {}
        self.patterns: dict[bytes, set] = {}
        self.shard_channels: dict[bytes, set] = {}

    def subscribe(self, client, channel: bytes) -> bool:
        """Add `client` to `channel`; True if it was not subscribed yet."""
        if channel in client.channels:
            return False
        client.channels.add(channel)
        self.channels.setdefault(channel, set()).add(client)
        return True

    def unsubscribe(self, client, channel: bytes) -> bool:
        if channel not in client.channels:
            return False
        client.channels.discard(channel)
        members = self.channels.get(channel)
        if members is not None:
            members.discard(client)
            if not members:
                del self.channels[channel]
        return True

    def psubscribe(self, client, pattern: bytes) -> bool:
        if pattern in client.patterns:
            return False
        client.patterns.add(pattern)
        self.patterns.setdefault(pattern, set()).add(client)
        return True

    def punsubscribe(self, client, pattern: bytes) -> bool:
        if pattern not in client.patterns:
            return False
        client.patterns.discard(pattern)
        members = self.patterns.get(pattern)
        if members is not None:
            members.discard(client)
            if not members:
                del self.patterns[pattern]
        return True

    def ssubscribe(self, client, channel: bytes) -> bool:
        """Add `client` to shard channel `channel`; True if it was not subscribed yet."""
        if channel in client.shard_channels:
            return False
        client.shard_channels.add(channel)
        self.shard_channels.setdefault(channel, set()).add(client)
        return True

    def sunsubscribe(self, client, channel: bytes) -> bool:
        if channel not in client.shard_channels:
            return False
        client.shard_channels.discard(channel)
        members = self.shard_channels.get(channel)
        if members is not None:
            members.discard(client)
            if not members:
                del self.shard_channels[channel]
        return True

    def drop_client(self, client) -> None:
        """Forget every subscription of a disconnected (or RESET) client."""
        for channel in list(client.channels):
            self.unsubscribe(client, channel)
        for pattern in list(client.patterns):
            self.punsubscribe(client, pattern)
        for channel in list(client.shard_channels):
            self.sunsubscribe(client, channel)

    def publish(self, channel: bytes, message: bytes) -> int:
        """Deliver to channel and pattern subscribers; return how many received it."""
        receivers = 0
        members = self.channels.get(channel)
        if members:
            push = Push([b"message", channel, message])
            for client in list(members):
                client.send_push(push)
                receivers += 1
        if self.patterns:
            for pattern, clients in list(self.patterns.items()):
                if glob_match(pattern, channel):
                    push = Push([b"pmessage", pattern, channel, message])
                    for client in list(clients):
                        client.send_push(push)
                        receivers += 1
        return receivers

    def spublish(self, channel: bytes, message: bytes) -> int:
        """Deliver to the shard channel's subscribers (patterns never see shard messages)."""
        members = self.shard_channels.get(channel)
        if not members:
            return 0
        push = Push([b"smessage", channel, message])
        receivers = 0
        for client in list(members):  # a subscriber past its output limit leaves the set
            client.send_push(push)
            receivers += 1
        return receivers

    def numsub(self, channel: bytes) -> int:
        return len(self.channels.get(channel, ()))

    def shardnumsub(self, channel: bytes) -> int:
        return len(self.shard_channels.get(channel, ()))
