"""Set commands: membership, random pops, moves, and the algebra (inter/union/diff).

A set is a Python `set` of bytes. Where Redis's reply order is defined we match it: a
set Redis keeps as an intset (only 64-bit integers, at most set-max-intset-entries of
them) replies in ascending numeric order, and so do algebra results of that shape;
otherwise the order is unspecified, in Redis as here. SINTER, SUNION, SDIFF and their
STORE and CARD forms are wrappers over `_combine` and `_store`.
"""

from __future__ import annotations

import random

from presence.store import notify as ev
from presence.store import replies
from presence.store.commands import CommandError, command, keynum, numkeys_getkeys
from presence.store.commands.generic import read_key
from presence.store.commands.hash import LONG_MAX, random_members, scan_step
from presence.store.numbers import as_int64, parse_cursor, parse_range
from presence.store.resp import Set

# name            arity  flags
# sadd             -3    write denyoom fast
# srem             -3    write fast
# smembers          2    readonly
# sismember         3    readonly fast
# smismember       -3    readonly fast
# scard             2    readonly fast
# spop             -2    write fast
# srandmember      -2    readonly
# smove             4    write fast
# sinter           -2    readonly         (sinterstore -3 write denyoom)
# sintercard       -3    readonly movablekeys
# sunion           -2    readonly         (sunionstore -3 write denyoom)
# sdiff            -2    readonly         (sdiffstore -3 write denyoom)
# sscan            -3    readonly

MUST_BE_POSITIVE = "ERR value is out of range, must be positive"


def ordered(client, members) -> list:
    """`members` in Redis's reply order: ascending if Redis would hold them as an intset."""
    as_intset = intset_order(client, members)
    return list(members) if as_intset is None else as_intset


def intset_order(client, members) -> list | None:
    """`members` sorted numerically if Redis would keep them as an intset, else None."""
    if len(members) > client.server.config["set-max-intset-entries"]:
        return None
    numbers = []
    for member in members:
        number = as_int64(member)
        if number is None:
            return None
        numbers.append(number)
    return [b"%d" % n for n in sorted(numbers)]


@command("sadd", -3, "write denyoom fast", specs=(("RW insert", 1, 0, 1),), acl="set")
def sadd(client, argv):
    db = client.db
    key = argv[1]
    s = db.get_typed(key, set)
    if s is None:
        s = set()
        db.store(key, s)
    before = len(s)
    s.update(argv[2:])
    added = len(s) - before
    if added:
        db.touch(key)
        db.notify(ev.SET, b"sadd", key)
    return added


@command("srem", -3, "write fast", specs=(("RW delete", 1, 0, 1),), acl="set")
def srem(client, argv):
    db = client.db
    key = argv[1]
    s = db.get_typed(key, set)
    if s is None:
        return 0
    before = len(s)
    s.difference_update(argv[2:])
    removed = before - len(s)
    if removed:
        db.touch(key)
        db.notify(ev.SET, b"srem", key)
        if db.drop_if_empty(key, s):
            db.notify(ev.GENERIC, b"del", key)
    return removed


@command("smembers", 2, "readonly", acl="set", tips="nondeterministic_output_order")
def smembers(client, argv):
    return Set(ordered(client, read_key(client.db, argv[1], set) or ()))


@command("sismember", 3, "readonly fast", specs=(("RO", 1, 0, 1),), acl="set")
def sismember(client, argv):
    s = read_key(client.db, argv[1], set)
    return int(s is not None and argv[2] in s)


@command("smismember", -3, "readonly fast", acl="set")
def smismember(client, argv):
    s = read_key(client.db, argv[1], set) or ()
    return [int(member in s) for member in argv[2:]]


@command("scard", 2, "readonly fast", specs=(("RO", 1, 0, 1),), acl="set")
def scard(client, argv):
    return len(read_key(client.db, argv[1], set) or ())


@command(
    "spop",
    -2,
    "write fast",
    specs=(("RW access delete", 1, 0, 1),),
    acl="set",
    tips="nondeterministic_output",
)
def spop(client, argv):
    """SPOP key [count]: one member (or nil), or a set of up to `count` members."""
    if len(argv) > 3:
        raise CommandError(replies.SYNTAX)
    db = client.db
    key = argv[1]
    count = parse_range(argv[2], 0, LONG_MAX, MUST_BE_POSITIVE) if len(argv) == 3 else None
    s = db.get_typed(key, set)
    if s is None or count == 0:
        return None if count is None else Set()
    if count is None:
        popped = random_members(s, 1)
    elif count >= len(s):
        popped = ordered(client, s)
    else:
        popped = random.sample(list(s), count)
    s.difference_update(popped)
    db.touch(key)
    db.notify(ev.SET, b"spop", key)
    if db.drop_if_empty(key, s):
        db.notify(ev.GENERIC, b"del", key)
    return popped[0] if count is None else Set(popped)


@command("srandmember", -2, "readonly", acl="set", tips="nondeterministic_output")
def srandmember(client, argv):
    """SRANDMEMBER key [count]: distinct members for count > 0, repeats allowed for < 0."""
    if len(argv) > 3:
        raise CommandError(replies.SYNTAX)
    if len(argv) == 2:
        s = read_key(client.db, argv[1], set)
        return None if s is None else random_members(s, 1)[0]
    count = parse_range(argv[2], -LONG_MAX, LONG_MAX)
    s = read_key(client.db, argv[1], set)
    if s is None or count == 0:
        return []
    if count >= len(s):
        return ordered(client, s)
    return random_members(s, count)


@command(
    "smove",
    4,
    "write fast",
    keys=(1, 2, 1),
    specs=(
        ("RW access delete", 1, 0, 1),
        ("RW insert", 2, 0, 1),
    ),
    acl="set",
)
def smove(client, argv):
    db = client.db
    _, src_key, dst_key, member = argv
    src = db.get_typed(src_key, set)
    if src is None:
        return 0
    dst = db.get_typed(dst_key, set)
    if src is dst:
        return int(member in src)
    if member not in src:
        return 0
    src.discard(member)
    db.touch(src_key)
    db.notify(ev.SET, b"srem", src_key)
    if db.drop_if_empty(src_key, src):
        db.notify(ev.GENERIC, b"del", src_key)
    if dst is None:
        dst = set()
        db.store(dst_key, dst)
    if member not in dst:
        dst.add(member)
        db.touch(dst_key)
        db.notify(ev.SET, b"sadd", dst_key)
    return 1


@command("sinter", -2, "readonly", keys=(1, -1, 1), acl="set", tips="nondeterministic_output_order")
def sinter(client, argv):
    return Set(ordered(client, _combine(client.db, argv[1:], "inter")))


@command("sunion", -2, "readonly", keys=(1, -1, 1), acl="set", tips="nondeterministic_output_order")
def sunion(client, argv):
    return Set(ordered(client, _combine(client.db, argv[1:], "union")))


@command("sdiff", -2, "readonly", keys=(1, -1, 1), acl="set", tips="nondeterministic_output_order")
def sdiff(client, argv):
    return Set(ordered(client, _combine(client.db, argv[1:], "diff")))


@command(
    "sinterstore",
    -3,
    "write denyoom",
    keys=(1, -1, 1),
    specs=(
        ("RW update", 1, 0, 1),
        ("RO access", 2, -1, 1),
    ),
    acl="set",
)
def sinterstore(client, argv):
    return _store(client.db, argv[1], _combine(client.db, argv[2:], "inter"), b"sinterstore")


@command(
    "sunionstore",
    -3,
    "write denyoom",
    keys=(1, -1, 1),
    specs=(
        ("OW update", 1, 0, 1),
        ("RO access", 2, -1, 1),
    ),
    acl="set",
)
def sunionstore(client, argv):
    return _store(client.db, argv[1], _combine(client.db, argv[2:], "union"), b"sunionstore")


@command(
    "sdiffstore",
    -3,
    "write denyoom",
    keys=(1, -1, 1),
    specs=(
        ("OW update", 1, 0, 1),
        ("RO access", 2, -1, 1),
    ),
    acl="set",
)
def sdiffstore(client, argv):
    return _store(client.db, argv[1], _combine(client.db, argv[2:], "diff"), b"sdiffstore")


def _combine(db, keys: list[bytes], op: str) -> set:
    """A new set: the intersection, union or difference of the sets at `keys`.

    A missing key is an empty set; any key of another type raises WrongType, checked
    for every key before computing, as Redis does.
    """
    sets = [read_key(db, key, set) for key in keys]
    if op == "union":
        return set().union(*(s for s in sets if s is not None))
    if op == "diff":
        first = sets[0]
        return set() if first is None else first.difference(*(s for s in sets[1:] if s is not None))
    if any(s is None for s in sets):
        return set()
    sets.sort(key=len)
    return sets[0].intersection(*sets[1:])


def _store(db, dst: bytes, result: set, event: bytes) -> int:
    """Replace `dst` with `result` (deleting it when empty); the result's size."""
    if result:
        db.store(dst, result)
        db.notify(ev.SET, event, dst)
    elif db.delete(dst):
        db.notify(ev.GENERIC, b"del", dst)
    return len(result)


@command(
    "sintercard",
    -3,
    "readonly movablekeys",
    keys=(0, 0, 0),
    specs=(keynum("RO access", 1),),
    getkeys=numkeys_getkeys(1),
    acl="set",
)
def sintercard(client, argv):
    """SINTERCARD numkeys key [key ...] [LIMIT limit]: the intersection's size, capped."""
    numkeys = parse_range(argv[1], 1, LONG_MAX, "ERR numkeys should be greater than 0")
    if numkeys > len(argv) - 2:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    limit = 0
    options = argv[2 + numkeys :]
    i = 0
    while i < len(options):
        if options[i].lower() == b"limit" and i + 1 < len(options):
            limit = parse_range(options[i + 1], 0, LONG_MAX, "ERR LIMIT can't be negative")
            i += 2
        else:
            raise CommandError(replies.SYNTAX)
    size = len(_combine(client.db, argv[2 : 2 + numkeys], "inter"))
    return min(size, limit) if limit else size


@command("sscan", -3, "readonly", acl="set", tips="nondeterministic_output")
def sscan(client, argv):
    """SSCAN key cursor [MATCH pattern] [COUNT n]: an intset-sized set comes whole, cursor 0."""
    cursor = parse_cursor(argv[2])
    s = read_key(client.db, argv[1], set)
    if s is None:
        return [b"0", []]
    as_intset = intset_order(client, s)
    small = as_intset is not None
    return list(scan_step(client, as_intset if small else s, cursor, argv[3:], small))
