"""Keyspace notifications: Redis's `notify-keyspace-events` flags, and `keys-expire-notify`.

`Database.notify()` checks `Notifier.flags` before calling in, so a server with
notifications off pays one attribute read and one AND per write.
"""

from __future__ import annotations

from collections.abc import Callable

KEYSPACE = 1 << 0  # K
KEYEVENT = 1 << 1  # E
GENERIC = 1 << 2  # g
STRING = 1 << 3  # $
LIST = 1 << 4  # l
SET = 1 << 5  # s
HASH = 1 << 6  # h
ZSET = 1 << 7  # z
EXPIRED = 1 << 8  # x
EVICTED = 1 << 9  # e
STREAM = 1 << 10  # t
KEY_MISS = 1 << 11  # m (not part of A)
MODULE = 1 << 12  # d
NEW = 1 << 13  # n (not part of A)
ALL = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE

_LETTERS = {
    "A": ALL,
    "g": GENERIC,
    "$": STRING,
    "l": LIST,
    "s": SET,
    "h": HASH,
    "z": ZSET,
    "x": EXPIRED,
    "e": EVICTED,
    "K": KEYSPACE,
    "E": KEYEVENT,
    "t": STREAM,
    "m": KEY_MISS,
    "d": MODULE,
    "n": NEW,
}
_ORDER = [
    (GENERIC, "g"),
    (STRING, "$"),
    (LIST, "l"),
    (SET, "s"),
    (HASH, "h"),
    (ZSET, "z"),
    (EXPIRED, "x"),
    (EVICTED, "e"),
    (STREAM, "t"),
    (MODULE, "d"),
    (NEW, "n"),
]


def parse_flags(text: str) -> int:
    """Flag letters to a bit mask; raises ValueError on an unknown letter."""
    flags = 0
    for ch in text:
        try:
            flags |= _LETTERS[ch]
        except KeyError:
            raise ValueError(ch) from None
    return flags


def format_flags(flags: int) -> str:
    """The canonical string CONFIG GET shows for a mask, in Redis's letter order.

    Like Redis 7.0, "A" hides "n" (the flag stays set; only the text omits it).
    """
    if flags & ALL == ALL:
        out = "A"
    else:
        out = "".join(letter for bit, letter in _ORDER if flags & bit)
    if flags & KEYSPACE:
        out += "K"
    if flags & KEYEVENT:
        out += "E"
    if flags & KEY_MISS:
        out += "m"
    return out


class Notifier:
    """Turns keyspace events into PUBLISHes, as configured.

    `publish(channel, message)` is wired to the pub/sub hub by the server.
    """

    def __init__(self, publish: Callable[[bytes, bytes], int] | None = None) -> None:
        self.publish = publish or (lambda channel, message: 0)
        self.flags = 0  # notify-keyspace-events mask
        self.keys_expire_notify = b""  # channel for the original fork's expiry feed

    def keyspace_event(self, flag: int, event: bytes, key: bytes, db: int) -> None:
        """Publish `event` on `key` to the keyspace and/or keyevent channel, if enabled."""
        flags = self.flags
        if not flags & flag or not flags & (KEYSPACE | KEYEVENT):
            return
        if flags & KEYSPACE:
            self.publish(b"__keyspace@%d__:%s" % (db, key), event)
        if flags & KEYEVENT:
            self.publish(b"__keyevent@%d__:%s" % (db, event), key)

    def expired(self, key: bytes, db: int) -> None:
        """Announce that `key` expired: `keys-expire-notify` and the `expired` keyspace event."""
        if self.keys_expire_notify:
            self.publish(self.keys_expire_notify, key)
        if self.flags & EXPIRED:
            self.keyspace_event(EXPIRED, b"expired", key, db)
