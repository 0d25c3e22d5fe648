"""The pub/sub hub: who listens to which channel or pattern, and delivery to them.

Delivery is immediate and at-most-once, as in Redis: a message goes into each
subscriber's output buffer at PUBLISH time. A subscriber that does not read is
disconnected when its pending output passes the configured limits
(`client-output-buffer-limit pubsub`), so it cannot grow the server's memory.
"""
from __future__ import annotations

from fnmatch import fnmatchcase

from presence.store.resp import Push


def glob_match(pattern: bytes, subject: bytes) -> bool:
    """Redis-style glob (`*`, `?`, `[a-z]`, `[^x]`, `\\x`) over raw bytes."""
    return _stringmatch(pattern, 0, subject, 0)


def _stringmatch(p: bytes, pi: int, s: bytes, si: int) -> bool:
    # A direct port of the semantics of Redis's stringmatchlen, iterative where it can be.
    plen, slen = len(p), len(s)
    while pi < plen:
        c = p[pi]
        if c == 42:  # '*'
            while pi + 1 < plen and p[pi + 1] == 42:
                pi += 1
            if pi + 1 == plen:
                return True
            for start in range(si, slen + 1):
                if _stringmatch(p, pi + 1, s, start):
                    return True
            return False
        if si >= slen:
            return False
        if c == 63:  # '?'
            pass
        elif c == 91:  # '['
            pi += 1
            negate = pi < plen and p[pi] == 94
            if negate:
                pi += 1
            matched = False
            while pi < plen and p[pi] != 93:
                if p[pi] == 92 and pi + 1 < plen:
                    pi += 1
                    if p[pi] == s[si]:
                        matched = True
                elif pi + 2 < plen and p[pi + 1] == 45:  # range a-z
                    lo, hi = sorted((p[pi], p[pi + 2]))
                    if lo <= s[si] <= hi:
                        matched = True
                    pi += 2
                elif p[pi] == s[si]:
                    matched = True
                pi += 1
            if pi >= plen:
                pi -= 1  # unterminated class: Redis treats the end as the closing bracket
            if matched == negate:
                return False
        elif c == 92 and pi + 1 < plen:  # backslash escapes the next byte
            pi += 1
            if p[pi] != s[si]:
                return False
        elif c != s[si]:
            return False
        pi += 1
        si += 1
    return si == slen


class PubSubHub:
    """Channel and pattern subscriptions across all clients."""

    def __init__(self) -> None:
        self.channels: dict[bytes, set] = {}
        self.patterns: dict[bytes, set] = {}

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

    def drop_client(self, client) -> None:
        """Forget every subscription of a disconnected client."""
        for channel in list(client.channels):
            self.unsubscribe(client, channel)
        for pattern in list(client.patterns):
            self.punsubscribe(client, pattern)

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

    def numsub(self, channel: bytes) -> int:
        return len(self.channels.get(channel, ()))
