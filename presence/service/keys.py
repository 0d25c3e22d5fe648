"""The store's key layout: the only place that builds a key or pub/sub channel name.

Every key of one channel carries the hash tag `{<channel>}`, so a Redis Cluster keeps a
channel on one shard and a channel's transaction never crosses slots:

    presence:{C}:online:<user>   string "1" with PX = --timeout, refreshed by each poll or
                                 heartbeat of any of the user's tabs. Its expiry is `offline`.
    presence:{C}:member:<user>   hash {since, info}: exists exactly while the user is a member.
    presence:{C}:conns:<user>    zset conn -> deadline (ms): the user's registered tabs.
    presence:{C}:members         zset user -> 0: lexicographic member pages, ZCARD = users.
    presence:{C}:deadlines       zset user -> deadline (ms): the reconciliation sweep's index.
    presence:{C}:connections     zset "<user>/<conn>" -> deadline (ms): ZCARD = registered
                                 tabs. Invariant: it holds "<user>/<conn>" exactly when
                                 conns:<user> holds conn, with the same deadline.
    presence:{C}:gone:<user>     hash conn -> "kicked" | "expired" | "left", PX = timeout:
                                 why a tab of the user is no longer joined, for its next poll.
    presence:{C}:leaving:<user>  string, no TTL (the grace's end, ms): the user's last tab left
                                 and the user is kept for the leave grace (--leave-grace);
                                 the expiry of online:<user> then means `leave`, not
                                 `offline`. A join or the claim deletes it.
    presence:{C}:seq             id of the channel's newest event (INCR).
    presence:{C}:epoch           random id of this log, set (NX) with its first event.
    presence:{C}:events          list of the retained events, oldest first, without ids: the
                                 last element has id = seq, the one before seq - 1, and so on.
    presence:{C}:wake            (sharded pub/sub channel) SPUBLISHed with every event.

The keys that span channels share the hash tag `{:global}` (no channel name contains a
colon, so no channel's keys can collide with them). They are written in transactions of
their own, never in a channel's:

    presence:{:global}:channels  zset channel -> 0: channels with at least one member. A
                                 join adds the channel before registering the tab; the
                                 removal of the last member removes it, then checks again.
    presence:{:global}:logs      zset channel -> 0: channels with an event log (the sweep's
                                 index); added before a channel's first event.
    presence:{:global}:seq, :events, :epoch   the global feed: every channel's events,
                                 each with a "channel" field, same layout as a channel log.
    presence:{:global}:wake      (sharded pub/sub channel) SPUBLISHed with every feed event.
    presence:{:global}:users     zset user -> number of channels the user is a member of:
                                 ZCARD = distinct users online. Updated after the channel's
                                 transaction (+1 on a first join, -1 on a removal); drift
                                 (a node dying between the two) is repaired by the sweep.
    presence:{:global}:nodes     zset node id -> ms its registration expires; the record is
    presence:{:global}:node:<id> string (JSON: address, held polls, requests/s, version,
                                 started, seen), PX a few refresh intervals.
    presence:{:global}:history   list of JSON points, one per interval, newest last (capped).
    presence:{:global}:history:<n>      string, PX: which node writes interval n's point.
    presence:{:global}:lags:<n>  list of the offline lags (ms) nodes recorded in interval n.
"""

from __future__ import annotations

import re

PREFIX = "presence"
GLOBAL_TAG = f"{PREFIX}:{{:global}}"
REGISTRY = f"{GLOBAL_TAG}:channels"
LOGS = f"{GLOBAL_TAG}:logs"
FEED_SEQ = f"{GLOBAL_TAG}:seq"
FEED_EVENTS = f"{GLOBAL_TAG}:events"
FEED_EPOCH = f"{GLOBAL_TAG}:epoch"
FEED_WAKE = f"{GLOBAL_TAG}:wake"
USERS = f"{GLOBAL_TAG}:users"
NODES = f"{GLOBAL_TAG}:nodes"
HISTORY = f"{GLOBAL_TAG}:history"
EXPIRY_CHANNEL = f"{PREFIX}:expired"  # what `presence serve` passes to --keys-expire-notify
PROBE_PREFIX = f"{PREFIX}:probe:"

_ONLINE_KEY = re.compile(r"presence:\{([A-Za-z0-9_.-]{1,64})\}:online:([A-Za-z0-9_.@-]{1,128})")
_WAKE = re.compile(r"presence:\{([A-Za-z0-9_.-]{1,64})\}:wake")


def _bulk(data: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%b\r\n" % (len(data), data)


def pack(*args: str | bytes | int) -> bytes:
    """One command in RESP (str, int and bytes arguments)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = (
            arg.encode() if isinstance(arg, str) else arg if isinstance(arg, bytes) else b"%d" % arg
        )
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class LogKeys:
    """The three keys of an event log (a channel's, or the global feed) and its wake channel."""

    __slots__ = ("seq", "events", "epoch", "wake", "_read_head")

    def __init__(self, seq: str, events: str, epoch: str, wake: str) -> None:
        self.seq, self.events, self.epoch, self.wake = seq, events, epoch, wake
        self._read_head = (
            pack(b"MGET", seq, epoch)
            + pack(b"LLEN", events)
            + b"*4\r\n$6\r\nLRANGE\r\n"
            + _bulk(events.encode())
        )

    def read_commands(self, count: int) -> bytes:
        """A log read, packed: MGET seq epoch, LLEN events, LRANGE events -count -1 (the
        newest `count` events, count >= 1)."""
        start = b"%d" % -count
        return b"%b$%d\r\n%b\r\n$2\r\n-1\r\n" % (self._read_head, len(start), start)


FEED = LogKeys(FEED_SEQ, FEED_EVENTS, FEED_EPOCH, FEED_WAKE)


class ChannelKeys(LogKeys):
    """The key names of one channel (all under the hash tag `{channel}`)."""

    __slots__ = ("channel", "tag", "members", "deadlines", "connections", "_tag", "_tails")

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.tag = f"{PREFIX}:{{{channel}}}"
        super().__init__(f"{self.tag}:seq", f"{self.tag}:events", f"{self.tag}:epoch",
                         f"{self.tag}:wake")  # fmt: skip
        self.members = f"{self.tag}:members"
        self.deadlines = f"{self.tag}:deadlines"
        self.connections = f"{self.tag}:connections"
        self._tag = self.tag.encode()
        # Packed once: what the hot refresh sends about this channel (see refresh_commands).
        self._tails = (_bulk(self.connections.encode()), _bulk(self.deadlines.encode()))

    def refresh_commands(self, user: str, conn: str, deadline: int, ttl: int) -> bytes:
        """The four writes of a joined tab's refresh, packed in RESP: SET <online> 1 PX ttl
        XX, ZADD <conns> XX GT CH deadline conn, ZADD <connections> XX GT deadline
        user/conn, ZADD <deadlines> XX GT deadline user (what `pack` would make of them,
        only faster). GT: a refresh that arrives after a newer one (a late re-refresh, a
        poll answered by a draining node, two nodes racing) never moves a deadline
        earlier, where a sweep would take a live tab for dead (Redis 6.2+)."""
        u, c, d = user.encode(), conn.encode(), _bulk(b"%d" % deadline)
        connections, deadlines = self._tails
        return b"".join((
            b"*6\r\n$3\r\nSET\r\n", _bulk(self._tag + b":online:" + u),
            b"$1\r\n1\r\n$2\r\nPX\r\n", _bulk(b"%d" % ttl), b"$2\r\nXX\r\n",
            b"*7\r\n$4\r\nZADD\r\n", _bulk(self._tag + b":conns:" + u),
            b"$2\r\nXX\r\n$2\r\nGT\r\n$2\r\nCH\r\n", d, _bulk(c),
            b"*6\r\n$4\r\nZADD\r\n", connections, b"$2\r\nXX\r\n$2\r\nGT\r\n", d,
            _bulk(u + b"/" + c),
            b"*6\r\n$4\r\nZADD\r\n", deadlines, b"$2\r\nXX\r\n$2\r\nGT\r\n", d, _bulk(u),
        ))  # fmt: skip

    def online(self, user: str) -> str:
        return f"{self.tag}:online:{user}"

    def member(self, user: str) -> str:
        return f"{self.tag}:member:{user}"

    def conns(self, user: str) -> str:
        return f"{self.tag}:conns:{user}"

    def gone(self, user: str) -> str:
        return f"{self.tag}:gone:{user}"

    def leaving(self, user: str) -> str:
        return f"{self.tag}:leaving:{user}"


def node_key(node: str) -> str:
    """The registration record of a service node (see NODES)."""
    return f"{GLOBAL_TAG}:node:{node}"


def history_claim(interval: int) -> str:
    """Who writes the history point of interval number `interval` (SET NX)."""
    return f"{HISTORY}:{interval}"


def lags_key(interval: int) -> str:
    """The offline lags recorded in interval number `interval`, from every node."""
    return f"{GLOBAL_TAG}:lags:{interval}"


def parse_online_key(key: str) -> tuple[str, str] | None:
    """(channel, user) when `key` is a presence key, else None (other keys expire too)."""
    match = _ONLINE_KEY.fullmatch(key)
    return (match.group(1), match.group(2)) if match else None


def parse_wake_channel(name: str) -> str | None:
    """The channel whose wake-up `name` is; "" for the global feed's; None for others."""
    if name == FEED_WAKE:
        return ""
    match = _WAKE.fullmatch(name)
    return match.group(1) if match else None


def wake_channel(channel: str | None) -> str:
    """The sharded pub/sub channel announcing a log's growth (None: the global feed's)."""
    return FEED_WAKE if channel is None else f"{PREFIX}:{{{channel}}}:wake"
