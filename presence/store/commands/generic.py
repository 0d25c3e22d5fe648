"""Generic key commands: DEL, EXISTS, the EXPIRE family, TTL, TYPE, KEYS, SCAN, RENAME.

EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT are one-line wrappers over `expire_generic`;
TTL, PTTL, EXPIRETIME and PEXPIRETIME over `ttl_generic`.
"""

from __future__ import annotations

import random
from itertools import islice

from presence.store import notify as ev
from presence.store import replies
from presence.store.blocking import serve_ready
from presence.store.commands import CommandError, command, db_by_index
from presence.store.keyspace import WrongType, type_name
from presence.store.numbers import parse_cursor, parse_int, scan_options
from presence.store.pubsub import glob_match
from presence.store.resp import OK, Error, Status

# name          arity  flags
# del             -2   write
# unlink          -2   write fast
# exists          -2   readonly fast
# expire          -3   write fast      (pexpire, expireat, pexpireat alike)
# ttl              2   readonly fast   (pttl, expiretime, pexpiretime alike)
# persist          2   write fast
# type             2   readonly fast
# keys             2   readonly
# scan            -2   readonly
# rename           3   write
# renamenx         3   write fast
# randomkey        1   readonly
# touch           -2   readonly fast


def read_key(db, key: bytes, kind: type | None = None, notify: bool = True):
    """Look `key` up for reading, like Redis's lookupKeyRead: it counts a keyspace hit or
    miss (INFO stats), and a miss emits `keymiss` (unless `notify` is false: OBJECT
    counts but does not notify, Redis's LOOKUP_NONOTIFY).

    With `kind`, a live value of another type raises WrongType (after counting the hit,
    as Redis does). Write paths use `db.get` directly: Redis counts and emits nothing
    for them.
    """
    value = db.get(key)
    keyspace = db.keyspace
    if value is None:
        keyspace.misses += 1
        if notify and keyspace.notifier.flags & ev.KEY_MISS:
            db.notify(ev.KEY_MISS, b"keymiss", key)
        return None
    keyspace.hits += 1
    if kind is not None and type(value) is not kind:
        raise WrongType()
    return value


@command(
    "del",
    -2,
    "write",
    keys=(1, -1, 1),
    specs=(("RM delete", 1, -1, 1),),
    acl="keyspace",
    tips="request_policy:multi_shard response_policy:agg_sum",
)
def del_(client, argv):
    return _delete_keys(client.db, argv[1:])


@command(
    "unlink",
    -2,
    "write fast",
    keys=(1, -1, 1),
    specs=(("RM delete", 1, -1, 1),),
    acl="keyspace",
    tips="request_policy:multi_shard response_policy:agg_sum",
)
def unlink(client, argv):
    return _delete_keys(client.db, argv[1:])


def _delete_keys(db, keys) -> int:
    removed = 0
    for key in keys:
        if db.delete(key):
            db.notify(ev.GENERIC, b"del", key)
            removed += 1
    return removed


@command(
    "exists",
    -2,
    "readonly fast",
    keys=(1, -1, 1),
    specs=(("RO", 1, -1, 1),),
    acl="keyspace",
    tips="request_policy:multi_shard response_policy:agg_sum",
)
def exists(client, argv):
    db = client.db
    return sum(1 for key in argv[1:] if read_key(db, key) is not None)


@command(
    "touch",
    -2,
    "readonly fast",
    keys=(1, -1, 1),
    specs=(("RO", 1, -1, 1),),
    acl="keyspace",
    tips="request_policy:multi_shard response_policy:agg_sum",
)
def touch(client, argv):
    db = client.db
    return sum(1 for key in argv[1:] if read_key(db, key) is not None)


@command("expire", -3, "write fast", acl="keyspace")
def expire(client, argv):
    return expire_generic(client, argv, "expire", 1000, relative=True)


@command("pexpire", -3, "write fast", acl="keyspace")
def pexpire(client, argv):
    return expire_generic(client, argv, "pexpire", 1, relative=True)


@command("expireat", -3, "write fast", acl="keyspace")
def expireat(client, argv):
    return expire_generic(client, argv, "expireat", 1000, relative=False)


@command("pexpireat", -3, "write fast", acl="keyspace")
def pexpireat(client, argv):
    return expire_generic(client, argv, "pexpireat", 1, relative=False)


def expire_generic(client, argv, name: str, unit_ms: int, relative: bool) -> int:
    """Set a deadline on a key; 1 if set (or the key was deleted for a past deadline), else 0.

    NX/XX/GT/LT as in Redis 7; a key without a TTL counts as an infinite TTL for GT/LT.
    """
    key, raw = argv[1], argv[2]
    nx = xx = gt = lt = False
    for option in argv[3:]:
        o = option.lower()
        if o == b"nx":
            nx = True
        elif o == b"xx":
            xx = True
        elif o == b"gt":
            gt = True
        elif o == b"lt":
            lt = True
        else:
            raise CommandError(f"ERR Unsupported option {option.decode(errors='replace')}")
    if nx and (xx or gt or lt):
        raise CommandError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if gt and lt:
        raise CommandError("ERR GT and LT options at the same time are not compatible")
    amount = parse_int(raw)
    db = client.db
    now = db.keyspace.now
    invalid = Error(replies.INVALID_EXPIRE.format(name))
    deadline = amount * unit_ms
    if not -(1 << 63) <= deadline < (1 << 63):
        raise CommandError(invalid)
    if relative:
        deadline += now
        if not -(1 << 63) <= deadline < (1 << 63):
            raise CommandError(invalid)
    if db.get(key) is None:
        return 0
    current = db.expires.get(key)
    if (nx and current is not None) or (xx and current is None):
        return 0
    if gt and (current is None or deadline <= current):
        return 0
    if lt and current is not None and deadline >= current:
        return 0
    if deadline <= now:
        db.delete(key)
        db.notify(ev.GENERIC, b"del", key)
        return 1
    db.set_deadline(key, deadline)
    db.notify(ev.GENERIC, b"expire", key)
    return 1


@command("ttl", 2, "readonly fast", acl="keyspace", tips="nondeterministic_output")
def ttl(client, argv):
    return ttl_generic(client, argv[1], ms=False, absolute=False)


@command("pttl", 2, "readonly fast", acl="keyspace", tips="nondeterministic_output")
def pttl(client, argv):
    return ttl_generic(client, argv[1], ms=True, absolute=False)


@command("expiretime", 2, "readonly fast", acl="keyspace")
def expiretime(client, argv):
    return ttl_generic(client, argv[1], ms=False, absolute=True)


@command("pexpiretime", 2, "readonly fast", acl="keyspace")
def pexpiretime(client, argv):
    return ttl_generic(client, argv[1], ms=True, absolute=True)


def ttl_generic(client, key: bytes, ms: bool, absolute: bool) -> int:
    """Remaining (or absolute) time to live; -2 for a missing key, -1 for no deadline."""
    db = client.db
    if read_key(db, key) is None:
        return -2
    deadline = db.expires.get(key)
    if deadline is None:
        return -1
    if absolute:
        return deadline if ms else deadline // 1000
    left = max(0, deadline - db.keyspace.now)
    return left if ms else (left + 500) // 1000


@command("persist", 2, "write fast", acl="keyspace")
def persist(client, argv):
    db = client.db
    key = argv[1]
    if db.get(key) is None or not db.persist(key):
        return 0
    db.notify(ev.GENERIC, b"persist", key)
    return 1


@command("type", 2, "readonly fast", specs=(("RO", 1, 0, 1),), acl="keyspace")
def type_(client, argv):
    value = read_key(client.db, argv[1])
    return Status("none" if value is None else type_name(value))


@command(
    "keys",
    2,
    "readonly",
    keys=(0, 0, 0),
    acl="keyspace dangerous",
    tips="request_policy:all_shards nondeterministic_output_order",
)
def keys(client, argv):
    pattern = argv[1]
    live = client.db.live_keys()
    if pattern == b"*":
        return list(live)
    return [k for k in live if glob_match(pattern, k)]


@command(
    "scan",
    -2,
    "readonly",
    keys=(0, 0, 0),
    acl="keyspace",
    tips="nondeterministic_output request_policy:special",
)
def scan(client, argv):
    """SCAN cursor [MATCH pattern] [COUNT n] [TYPE type].

    Every key present for the whole iteration is returned once (see presence.store.scan).
    """
    cursor = parse_cursor(argv[1])
    match, count, kind = scan_options(argv[2:], with_type=True)
    db = client.db
    nxt, window = client.server.scans.step(db.data, cursor, count)
    now = db.keyspace.now
    found = []
    for key in window:
        deadline = db.expires.get(key)
        if deadline is not None and deadline <= now:
            continue
        if match is not None and not glob_match(match, key):
            continue
        if kind is not None and type_name(db.data[key]) != kind:
            continue
        found.append(key)
    return [b"%d" % nxt, found]


@command(
    "rename",
    3,
    "write",
    keys=(1, 2, 1),
    specs=(
        ("RW access delete", 1, 0, 1),
        ("OW update", 2, 0, 1),
    ),
    acl="keyspace",
)
def rename(client, argv):
    _rename(client, argv[1], argv[2], nx=False)
    return OK


@command(
    "renamenx",
    3,
    "write fast",
    keys=(1, 2, 1),
    specs=(
        ("RW access delete", 1, 0, 1),
        ("OW insert", 2, 0, 1),
    ),
    acl="keyspace",
)
def renamenx(client, argv):
    return _rename(client, argv[1], argv[2], nx=True)


def _rename(client, src: bytes, dst: bytes, nx: bool) -> int:
    db = client.db
    value = db.get(src)
    if value is None:
        raise CommandError(replies.NO_SUCH_KEY)
    if src == dst:
        return 0 if nx else 1
    if nx and db.exists(dst):
        return 0
    deadline = db.expires.get(src)
    db.delete(dst)
    db.delete(src)
    db.store(dst, value)
    if deadline is not None:
        db.set_deadline(dst, deadline)
    db.notify(ev.GENERIC, b"rename_from", src)
    db.notify(ev.GENERIC, b"rename_to", dst)
    _wake_blocked(client, db, dst)
    return 1


@command(
    "copy",
    -3,
    "write denyoom",
    keys=(1, 2, 1),
    specs=(
        ("RO access", 1, 0, 1),
        ("OW update", 2, 0, 1),
    ),
    acl="keyspace",
)
def copy(client, argv):
    """COPY source destination [DB index] [REPLACE]: 1 if copied (value and TTL), else 0."""
    source, target = argv[1], argv[2]
    target_db, replace = client.db, False
    i = 3
    while i < len(argv):
        option = argv[i].lower()
        if option == b"replace":
            replace = True
        elif option == b"db" and i + 1 < len(argv):
            target_db = db_by_index(client, argv[i + 1])
            i += 1
        else:
            raise CommandError(replies.SYNTAX)
        i += 1
    db = client.db
    if db is target_db and source == target:
        raise CommandError("ERR source and destination objects are the same")
    value = read_key(db, source)
    if value is None:
        return 0
    if target_db.get(target) is not None:
        if not replace:
            return 0
        target_db.delete(target)
    target_db.store(target, _clone(value))
    deadline = db.expires.get(source)
    if deadline is not None:
        target_db.set_deadline(target, deadline)
    target_db.notify(ev.GENERIC, b"copy_to", target)
    _wake_blocked(client, target_db, target)
    return 1


@command(
    "move", 3, "write fast", keys=(1, 1, 1), specs=(("RW access update", 1, 0, 1),), acl="keyspace"
)
def move(client, argv):
    """MOVE key db: 1 if the key moved (with its TTL) to an empty slot in that database."""
    key = argv[1]
    target_db = db_by_index(client, argv[2])
    db = client.db
    if target_db is db:
        raise CommandError("ERR source and destination objects are the same")
    value = db.get(key)
    if value is None or target_db.get(key) is not None:
        return 0
    deadline = db.expires.get(key)
    db.delete(key)
    target_db.store(key, value)
    if deadline is not None:
        target_db.set_deadline(key, deadline)
    db.notify(ev.GENERIC, b"move_from", key)
    target_db.notify(ev.GENERIC, b"move_to", key)
    _wake_blocked(client, target_db, key)
    return 1


def _wake_blocked(client, db, key: bytes) -> None:
    """A key created by RENAME/COPY/MOVE may be what a blocked BLPOP waits for, as in Redis."""
    if db.blocked:
        serve_ready(client, db, key)


def _clone(value):
    """An independent copy of a stored value (strings are immutable and shared)."""
    if type(value) is bytes:
        return value
    return value.copy() if hasattr(value, "copy") else type(value)(value)


@command(
    "randomkey",
    1,
    "readonly",
    keys=(0, 0, 0),
    acl="keyspace",
    tips="request_policy:all_shards nondeterministic_output",
)
def randomkey(client, argv):
    db = client.db
    for _ in range(100):
        if not db.data:
            return None
        key = random.choice(list(islice(db.data, 0, 1000)))
        if db.get(key) is not None:
            return key
    return None
