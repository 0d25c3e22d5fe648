"""Hash commands: field writes and reads, counters, random fields, HSCAN.

A hash is a `dict` of field -> value, so fields keep insertion order: the order Redis
replies in while a hash is small (listpack-encoded); for a big hash Redis's order is
unspecified anyway. HSET/HMSET share `_hset`; HGETALL/HKEYS/HVALS share `_hgetall`.
HINCRBYFLOAT computes in x87 long double and prints like Redis's `%.17Lf`, so
`0.1 + 0.2` gives `0.3` as it does in Redis. The HSCAN helpers here serve SSCAN too.
"""

from __future__ import annotations

import random
from itertools import islice

from presence.store import notify as ev
from presence.store import replies
from presence.store.commands import CommandError, command
from presence.store.commands.generic import read_key
from presence.store.numbers import (
    LongDouble,
    parse_cursor,
    parse_int,
    parse_long_double,
    parse_range,
    scan_options,
)
from presence.store.pubsub import glob_match
from presence.store.resp import OK

# name            arity  flags
# hset             -4    write denyoom fast   (hmset alike, replies OK)
# hsetnx            4    write denyoom fast
# hget              3    readonly fast
# hmget            -3    readonly fast
# hgetall           2    readonly         (hkeys, hvals alike)
# hdel             -3    write fast
# hexists           3    readonly fast
# hlen              2    readonly fast
# hstrlen           3    readonly fast
# hincrby           4    write denyoom fast
# hincrbyfloat      4    write denyoom fast
# hrandfield       -2    readonly
# hscan            -3    readonly

# Redis's texts (they belong in replies.py, which this module does not own)
HASH_NOT_INTEGER = "ERR hash value is not an integer"
HASH_NOT_FLOAT = "ERR hash value is not a float"
NAN_OR_INFINITY = "ERR value is NaN or Infinity"
INCR_NAN_OR_INFINITY = "ERR increment would produce NaN or Infinity"
VALUE_OUT_OF_RANGE = "ERR value is out of range"
LONG_MAX = (1 << 63) - 1


def _writable(db, key: bytes) -> dict:
    """The hash at `key` about to be written, stored empty first if absent; raises WrongType."""
    h = db.get_typed(key, dict)
    if h is None:
        h = {}
        db.store(key, h)
    else:
        db.touch(key)
    return h


@command("hset", -4, "write denyoom fast", acl="hash")
def hset(client, argv):
    return _hset(client.db, argv, "hset")


@command("hmset", -4, "write denyoom fast", acl="hash")
def hmset(client, argv):
    _hset(client.db, argv, "hmset")
    return OK


def _hset(db, argv, name: str) -> int:
    """Set each field/value pair; the number of fields that did not exist before (may be 0)."""
    if len(argv) % 2:
        raise CommandError(replies.wrong_arity(name))
    key = argv[1]
    h = _writable(db, key)
    before = len(h)
    for i in range(2, len(argv), 2):
        h[argv[i]] = argv[i + 1]
    db.notify(ev.HASH, b"hset", key)
    return len(h) - before


@command("hsetnx", 4, "write denyoom fast", specs=(("RW insert", 1, 0, 1),), acl="hash")
def hsetnx(client, argv):
    db = client.db
    _, key, field, value = argv
    h = db.get_typed(key, dict)
    if h is not None and field in h:
        return 0
    _writable(db, key)[field] = value
    db.notify(ev.HASH, b"hset", key)
    return 1


@command("hget", 3, "readonly fast", acl="hash")
def hget(client, argv):
    h = read_key(client.db, argv[1], dict)
    return None if h is None else h.get(argv[2])


@command("hmget", -3, "readonly fast", acl="hash")
def hmget(client, argv):
    h = read_key(client.db, argv[1], dict) or {}
    return [h.get(field) for field in argv[2:]]


@command("hgetall", 2, "readonly", acl="hash", tips="nondeterministic_output_order")
def hgetall(client, argv):
    return _hgetall(client.db, argv[1], fields=True, values=True)


@command("hkeys", 2, "readonly", acl="hash", tips="nondeterministic_output_order")
def hkeys(client, argv):
    return _hgetall(client.db, argv[1], fields=True, values=False)


@command("hvals", 2, "readonly", acl="hash", tips="nondeterministic_output_order")
def hvals(client, argv):
    return _hgetall(client.db, argv[1], fields=False, values=True)


def _hgetall(db, key: bytes, fields: bool, values: bool):
    """Fields and values as a map (array under RESP2), or one of them as an array."""
    h = read_key(db, key, dict)
    if fields and values:
        return h or {}
    if h is None:
        return []
    return list(h) if fields else list(h.values())


@command("hdel", -3, "write fast", specs=(("RW delete", 1, 0, 1),), acl="hash")
def hdel(client, argv):
    db = client.db
    key = argv[1]
    h = db.get_typed(key, dict)
    if h is None:
        return 0
    deleted = 0
    for field in argv[2:]:
        if h.pop(field, None) is not None:
            deleted += 1
    if deleted:
        db.touch(key)
        db.notify(ev.HASH, b"hdel", key)
        if db.drop_if_empty(key, h):
            db.notify(ev.GENERIC, b"del", key)
    return deleted


@command("hexists", 3, "readonly fast", specs=(("RO", 1, 0, 1),), acl="hash")
def hexists(client, argv):
    h = read_key(client.db, argv[1], dict)
    return int(h is not None and argv[2] in h)


@command("hlen", 2, "readonly fast", specs=(("RO", 1, 0, 1),), acl="hash")
def hlen(client, argv):
    return len(read_key(client.db, argv[1], dict) or ())


@command("hstrlen", 3, "readonly fast", specs=(("RO", 1, 0, 1),), acl="hash")
def hstrlen(client, argv):
    h = read_key(client.db, argv[1], dict)
    return len(h.get(argv[2], b"")) if h is not None else 0


@command("hincrby", 4, "write denyoom fast", specs=(("RW access update", 1, 0, 1),), acl="hash")
def hincrby(client, argv):
    db = client.db
    _, key, field, raw = argv
    amount = parse_int(raw)
    h = _writable(db, key)
    old = h.get(field)
    value = (0 if old is None else parse_int(old, HASH_NOT_INTEGER)) + amount
    if not -(1 << 63) <= value < (1 << 63):
        raise CommandError(replies.OVERFLOW)
    h[field] = b"%d" % value
    db.notify(ev.HASH, b"hincrby", key)
    return value


@command(
    "hincrbyfloat", 4, "write denyoom fast", specs=(("RW access update", 1, 0, 1),), acl="hash"
)
def hincrbyfloat(client, argv):
    db = client.db
    _, key, field, raw = argv
    amount = parse_long_double(raw)
    if amount is None:
        raise CommandError(replies.NOT_FLOAT)
    if not amount.is_finite():
        raise CommandError(NAN_OR_INFINITY)
    h = _writable(db, key)
    old = h.get(field)
    current = LongDouble.ZERO if old is None else parse_long_double(old)
    if current is None:
        raise CommandError(HASH_NOT_FLOAT)
    value = current + amount
    if not value.is_finite():
        raise CommandError(INCR_NAN_OR_INFINITY)
    h[field] = text = value.human()
    db.notify(ev.HASH, b"hincrbyfloat", key)
    return text


@command("hrandfield", -2, "readonly", acl="hash", tips="nondeterministic_output")
def hrandfield(client, argv):
    """HRANDFIELD key [count [WITHVALUES]]: distinct fields for count > 0, repeats for < 0."""
    if len(argv) == 2:
        h = read_key(client.db, argv[1], dict)
        return None if h is None else random_members(h, 1)[0]
    count = parse_range(argv[2], -LONG_MAX, LONG_MAX)
    withvalues = len(argv) == 4
    if len(argv) > 4 or (withvalues and argv[3].lower() != b"withvalues"):
        raise CommandError(replies.SYNTAX)
    if withvalues and not -(LONG_MAX // 2) <= count <= LONG_MAX // 2:
        raise CommandError(VALUE_OUT_OF_RANGE)
    h = read_key(client.db, argv[1], dict)
    if h is None or count == 0:
        return []
    fields = random_members(h, count)
    if not withvalues:
        return fields
    if client.protocol == 3:
        return [[f, h[f]] for f in fields]
    return [item for f in fields for item in (f, h[f])]


def random_members(collection, count: int) -> list:
    """`count` distinct members (all, in order, when count >= size), or -count with repeats.

    Shared by HRANDFIELD, SRANDMEMBER and SPOP; `collection` is a dict, set or list.
    """
    if count in (1, -1):
        return [next(islice(collection, random.randrange(len(collection)), None))]
    if count < 0:
        return random.choices(list(collection), k=-count)
    if count >= len(collection):
        return list(collection)
    return random.sample(list(collection), count)


@command("hscan", -3, "readonly", acl="hash", tips="nondeterministic_output")
def hscan(client, argv):
    """HSCAN key cursor [MATCH pattern] [COUNT n]: a small hash comes whole, cursor 0."""
    cursor = parse_cursor(argv[2])
    h = read_key(client.db, argv[1], dict)
    if h is None:
        return [b"0", []]
    config = client.server.config
    limit, longest = config["hash-max-listpack-entries"], config["hash-max-listpack-value"]
    small = len(h) <= limit and all(len(f) <= longest and len(v) <= longest for f, v in h.items())
    nxt, fields = scan_step(client, h, cursor, argv[3:], small)
    return [nxt, [item for f in fields for item in (f, h[f])]]


def scan_step(client, collection, cursor: int, options: list[bytes], small: bool):
    """One HSCAN/SSCAN step: (next cursor as bytes, members matching MATCH).

    A `small` collection (one Redis keeps listpack- or intset-encoded) is returned whole
    with cursor 0, as Redis does. Otherwise every member present for the whole iteration
    is returned once (see presence.store.scan).
    """
    match, count, _ = scan_options(options)
    if small:
        window, nxt = collection, 0
    else:
        nxt, window = client.server.scans.step(collection, cursor, count)
    if match is not None:
        window = [m for m in window if glob_match(match, m)]
    return b"%d" % nxt, list(window)
