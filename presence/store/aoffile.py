"""The append-only file's contents: RESP commands, the manifest, snapshots, translations.

Functions over bytes and the keyspace; `presence/store/persistence.py` decides when
they run. See that module for the layout (Redis 7's multi-part AOF) and the promises.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field

from presence.store.stream import EFFECTS, Stream, format_id
from presence.store.zset import ZSet

ITEMS_PER_COMMAND = 64  # elements per HSET/SADD/RPUSH/ZADD in a rewritten base (as Redis)


class AofError(Exception):
    """The append-only files cannot be loaded or written; the message says which and why."""


# ---------------------------------------------------------------- RESP in files


def encode_command(argv: list[bytes]) -> bytes:
    """One command as a RESP array of bulk strings (what an AOF holds)."""
    if len(argv) == 3:  # SET key value, HSET key... the common case, in one format
        a, b, c = argv
        return b"*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
            len(a), a, len(b), b, len(c), c
        )  # fmt: skip
    parts = [b"*%d\r\n" % len(argv)]
    for arg in argv:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


class Truncated(Exception):
    """The data ends inside a command; `offset` is where that command starts."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


def read_commands(data: bytes, name: str):
    """Yield (argv, end offset) for each command of an AOF's bytes.

    Raises Truncated when the data ends inside a command, AofError for anything else that
    is not a RESP array of bulk strings (`#` annotation lines are skipped, as Redis does).
    """
    pos, size = 0, len(data)
    while pos < size:
        start = pos
        if data[pos : pos + 1] == b"#":
            eol = data.find(b"\n", pos)
            if eol < 0:
                raise Truncated(start)
            pos = eol + 1
            continue
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            raise Truncated(start)
        if data[pos : pos + 1] != b"*":
            raise AofError(f"Bad file format reading the append only file {name} at byte {pos}")
        count = _length(data[pos + 1 : eol], name, pos)
        pos = eol + 2
        argv = []
        for _ in range(count):
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                raise Truncated(start)
            if data[pos : pos + 1] != b"$":
                raise AofError(f"Bad file format reading the append only file {name} at byte {pos}")
            length = _length(data[pos + 1 : eol], name, pos)
            end = eol + 2 + length
            if end + 2 > size:
                raise Truncated(start)
            if data[end : end + 2] != b"\r\n":
                raise AofError(f"Bad file format reading the append only file {name} at byte {end}")
            argv.append(data[eol + 2 : end])
            pos = end + 2
        if argv:
            yield argv, pos


def _length(raw: bytes, name: str, pos: int) -> int:
    if not raw.isdigit():
        raise AofError(f"Bad file format reading the append only file {name} at byte {pos}")
    return int(raw)


# ---------------------------------------------------------------- the manifest


@dataclass
class Manifest:
    """Which files make the AOF: one base (or none yet) and the increments, oldest first."""

    base: str | None = None
    base_seq: int = 0
    incrs: list[str] = field(default_factory=list)
    incr_seq: int = 0

    def files(self) -> list[str]:
        return ([self.base] if self.base else []) + self.incrs

    def render(self) -> bytes:
        lines = []
        if self.base:
            lines.append(f"file {self.base} seq {self.base_seq} type b\n")
        for name in self.incrs:
            seq = name.rsplit(".", 3)[-3]
            lines.append(f"file {name} seq {seq} type i\n")
        return "".join(lines).encode()

    @classmethod
    def parse(cls, text: str, path: str) -> Manifest:
        """Raises AofError for a line that is not `file NAME seq N type b|h|i`."""
        manifest = cls()
        for line in text.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            words = line.split()
            fields = dict(zip(words[::2], words[1::2], strict=False))
            if (
                "file" not in fields
                or "type" not in fields
                or not fields.get("seq", "").isdigit()
                or "/" in fields["file"]
            ):
                raise AofError(f"Invalid AOF manifest file format: {path}")
            seq = int(fields["seq"])
            if fields["type"] == "b":
                manifest.base, manifest.base_seq = fields["file"], seq
            elif fields["type"] == "i":
                manifest.incrs.append(fields["file"])
                manifest.incr_seq = max(manifest.incr_seq, seq)
            # type h (history) files are leftovers of a rewrite: not loaded
        return manifest


# ---------------------------------------------------------------- the snapshot (in the child)


def write_snapshot(keyspace, path: str, libraries: tuple[bytes, ...] | list[bytes] = ()) -> None:
    """Write the function libraries (their code) and every live key of every database as
    commands, then fsync (runs in the child)."""
    now = keyspace.clock()
    with open(path, "wb", buffering=1 << 20) as out:
        for code in libraries:
            out.write(encode_command([b"FUNCTION", b"LOAD", b"REPLACE", code]))
        for db in keyspace.dbs:
            if not db.data:
                continue
            out.write(encode_command([b"SELECT", b"%d" % db.index]))
            expires = db.expires
            for key, value in db.data.items():
                deadline = expires.get(key)
                if deadline is not None and deadline <= now:
                    continue  # expired already: its DEL is in the new increment, or will be
                for argv in _key_commands(key, value):
                    out.write(encode_command(argv))
                if deadline is not None:
                    out.write(encode_command([b"PEXPIREAT", key, b"%d" % deadline]))
        out.flush()
        os.fsync(out.fileno())


def _key_commands(key: bytes, value):
    """Commands that recreate `key` with `value`, at most ITEMS_PER_COMMAND elements each."""
    if type(value) is bytes:
        yield [b"SET", key, value]
        return
    if type(value) is dict:
        name, items = b"HSET", [x for pair in value.items() for x in pair]
        step = 2
    elif type(value) is set:
        name, items, step = b"SADD", list(value), 1
    elif type(value) is deque:
        name, items, step = b"RPUSH", list(value), 1
    elif type(value) is ZSet:
        name, step = b"ZADD", 2
        items = [x for m, s in value.scores.items() for x in (repr(s).encode(), m)]
    elif type(value) is Stream:
        yield from _stream_commands(key, value)
        return
    else:
        raise TypeError(f"cannot write a {type(value).__name__} to the AOF")
    chunk = ITEMS_PER_COMMAND * step
    for i in range(0, len(items), chunk):
        yield [name, key, *items[i : i + chunk]]


def _stream_commands(key: bytes, stream: Stream):
    """Redis's rewriteStreamObject: XADDs (or the XADD MAXLEN 0 trick for an empty stream),
    XSETID, then each group, its consumers and their pending entries."""
    if stream.length:
        for sid, items in stream.range(0, (1 << 128) - 1):
            yield [b"XADD", key, format_id(sid), *items]
    else:
        yield [b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]
    yield [b"XSETID", key, format_id(stream.last_id), b"ENTRIESADDED",
           b"%d" % stream.entries_added, b"MAXDELETEDID", format_id(stream.max_deleted)]  # fmt: skip
    for name in sorted(stream.groups):
        group = stream.groups[name]
        yield [b"XGROUP", b"CREATE", key, name, format_id(group.last_id), b"ENTRIESREAD",
               b"%d" % group.entries_read]  # fmt: skip
        for consumer in group.sorted_consumers():
            yield [b"XGROUP", b"CREATECONSUMER", key, name, consumer.name]
            for sid in sorted(consumer.pel):
                nack = consumer.pel[sid]
                yield [b"XCLAIM", key, name, consumer.name, b"0", format_id(sid), b"TIME",
                       b"%d" % nack.time, b"RETRYCOUNT", b"%d" % nack.count, b"JUSTID",
                       b"FORCE"]  # fmt: skip


# ---------------------------------------------------------------- translations
#
# name -> translate(db, argv, reply) -> the commands to write instead of argv. Each gives
# the key's state after the command where replaying the command itself later could differ.


def _ttl_state(db, key: bytes) -> list[list[bytes]]:
    """The key's deadline as an absolute PEXPIREAT (PERSIST without one, DEL if it is gone)."""
    if key not in db.data:
        return [[b"DEL", key]]
    deadline = db.expires.get(key)
    if deadline is None:
        return [[b"PERSIST", key]]
    return [[b"PEXPIREAT", key, b"%d" % deadline]]


def _string_state(db, key: bytes) -> list[list[bytes]]:
    """SET key value [PXAT deadline] for a string, DEL if it is gone, nothing otherwise."""
    value = db.data.get(key)
    if value is None:
        return [[b"DEL", key]]
    if type(value) is not bytes:
        return []  # the command did not apply (NX/XX on a key of another type)
    deadline = db.expires.get(key)
    if deadline is None:
        return [[b"SET", key, value]]
    return [[b"SET", key, value, b"PXAT", b"%d" % deadline]]


def _expire(db, argv, reply):
    return _ttl_state(db, argv[1]) if reply == 1 else []


def _set(db, argv, reply):
    return [argv] if len(argv) == 3 else _string_state(db, argv[1])


def _getex(db, argv, reply):
    return _ttl_state(db, argv[1]) if len(argv) > 2 and reply is not None else []


def _spop(db, argv, reply):
    if not reply:
        return []
    members = reply if isinstance(reply, list) else [reply]
    return [[b"SREM", argv[1], *members]]


def _pop(name: bytes):
    def translate(db, argv, reply):
        return [[name, reply[0]]] if reply else []

    return translate


def _stores(argv: list[bytes]) -> bool:
    """A GEORADIUS[BYMEMBER] with a STORE or STOREDIST key (as georadiusGetKeys finds it)."""
    return any(a.lower() in (b"store", b"storedist") for a in argv[5:-1])


def _move(name: bytes, arguments: int):
    def translate(db, argv, reply):
        return [[name, *argv[1 : 1 + arguments]]] if reply is not None else []

    return translate


def _mpop(name: bytes):
    """BLMPOP/BZMPOP timeout numkeys key... END [COUNT n] -> L/ZMPOP 1 key END COUNT popped."""

    def translate(db, argv, reply):
        if not reply:
            return []
        end = argv[3 + int(argv[2])]
        return [[name, b"1", reply[0], end, b"COUNT", b"%d" % len(reply[1])]]

    return translate


TRANSLATIONS = {
    "expire": _expire,
    "pexpire": _expire,
    "expireat": _expire,
    "pexpireat": _expire,
    "set": _set,
    "setex": lambda db, argv, reply: _string_state(db, argv[1]),
    "psetex": lambda db, argv, reply: _string_state(db, argv[1]),
    "getex": _getex,
    "spop": _spop,
    "blpop": _pop(b"LPOP"),
    "brpop": _pop(b"RPOP"),
    "bzpopmin": _pop(b"ZPOPMIN"),
    "bzpopmax": _pop(b"ZPOPMAX"),
    "blmove": _move(b"LMOVE", 4),
    "brpoplpush": _move(b"RPOPLPUSH", 2),
    "blmpop": _mpop(b"LMPOP"),
    "bzmpop": _mpop(b"ZMPOP"),
    # GEORADIUS[BYMEMBER] changes nothing without STORE/STOREDIST, PFDEBUG only with
    # GETREG/TODENSE (Redis propagates them then only)
    "georadius": lambda db, argv, reply: [argv] if _stores(argv) else [],
    "georadiusbymember": lambda db, argv, reply: [argv] if _stores(argv) else [],
    "pfdebug": lambda db, argv, reply: [argv] if argv[1].lower() in (b"getreg", b"todense") else [],
    # stream writes record what Redis propagates for them (presence.store.stream.EFFECTS)
    **dict.fromkeys(
        ("xadd", "xtrim", "xdel", "xsetid", "xack", "xreadgroup", "xclaim", "xautoclaim"),
        lambda db, argv, reply: list(EFFECTS),
    ),
}
