"""Sorted-set commands: ZADD and friends, every ZRANGE form, pops, set algebra, ZSCAN.

All range reads go through `zrange_generic` (Redis 6.2's unified ZRANGE: BYSCORE,
BYLEX, REV, LIMIT, WITHSCORES); ZRANGEBYSCORE, ZREVRANGE, ZRANGESTORE... are one-line
wrappers that preset its range type and direction, so they reject the same options
Redis rejects. ZINCRBY is ZADD INCR; ZPOPMIN/ZPOPMAX, the ZREMRANGEBY* commands and
ZUNIONSTORE/ZINTERSTORE/ZDIFFSTORE likewise share one implementation each. ZMPOP,
BZPOPMIN/BZPOPMAX and BZMPOP share `bzpop_generic`, which blocks through the list
module's machinery (presence/store/blocking.py): writes that create a zset call its serve_ready.

Scores are replied like Redis 7.0's addReplyDouble (`%.17g`): a bulk string under
RESP2, a double under RESP3, and WITHSCORES pairs nest under RESP3.
"""

from __future__ import annotations

import math
import random

from presence.store import notify as ev
from presence.store import replies
from presence.store.blocking import block, may_block, serve_ready
from presence.store.commands import CommandError, command, keynum, numkeys_getkeys
from presence.store.commands import list as lists
from presence.store.commands.generic import read_key
from presence.store.keyspace import WrongType
from presence.store.numbers import (
    parse_cursor,
    parse_double,
    parse_int,
    parse_score_bound,
    scan_options,
)
from presence.store.pubsub import glob_match
from presence.store.resp import NIL_ARRAY, Double
from presence.store.zset import ZSet, combine

# name               arity  flags
# zadd                 -4   write denyoom fast    zincrby 4
# zrem                 -3   write fast
# zscore                3   readonly fast    zmscore -3, zcard 2
# zcount                4   readonly fast    zlexcount 4
# zrank                 3   readonly fast    zrevrank 3
# zrange               -4   readonly         zrangebyscore -4, zrevrangebyscore -4,
#                                            zrangebylex -4, zrevrangebylex -4, zrevrange -4
# zrangestore          -5   write denyoom
# zremrangebyscore      4   write            zremrangebyrank 4, zremrangebylex 4
# zpopmin              -2   write fast       zpopmax -2
# zmpop                -4   write movablekeys   bzmpop -5 (write blocking movablekeys)
# bzpopmin             -3   write noscript blocking fast   bzpopmax -3
# zrandmember          -2   readonly
# zunionstore          -4   write denyoom movablekeys   zinterstore -4, zdiffstore -4
# zunion               -3   readonly movablekeys        zinter -3, zdiff -3
# zintercard           -3   readonly movablekeys
# zscan                -3   readonly

RANK, SCORE, LEX = "rank", "score", "lex"
NOT_FLOAT_RANGE = "ERR min or max is not a float"
NOT_LEX_RANGE = "ERR min or max not valid string range item"
NOT_POSITIVE = "ERR value is out of range, must be positive"
OUT_OF_RANGE_SIGNED = (
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
)
INF = math.inf


# ------------------------------------------------------------ reply helpers


def format_score(score: float) -> bytes:
    """A score as Redis 7.0 replies it (`%.17g`, `inf`, `-inf`)."""
    if score in (INF, -INF):
        return b"inf" if score > 0 else b"-inf"
    return b"%.17g" % score


def score_reply(client, score: float):
    """A score for `client`: a double under RESP3, a bulk string under RESP2."""
    return Double(score) if client.protocol == 3 else format_score(score)


def pairs_reply(client, pairs, withscores: bool) -> list:
    """(score, member) pairs as members, flat member/score or (RESP3) nested pairs."""
    if not withscores:
        return [member for _, member in pairs]
    if client.protocol == 3:
        return [[member, Double(score)] for score, member in pairs]
    out = []
    for score, member in pairs:
        out += (member, format_score(score))
    return out


# ------------------------------------------------------------ argument parsing


def parse_lex_bound(raw: bytes) -> tuple[int, bytes, bool]:
    """`-`, `+`, `[member`, `(member` as (kind, member, exclusive); see presence.store.zset."""
    if raw == b"-":
        return -1, b"", False
    if raw == b"+":
        return 1, b"", False
    if raw[:1] in (b"[", b"("):
        return 0, raw[1:], raw[:1] == b"("
    raise CommandError(NOT_LEX_RANGE)


def parse_range(rangetype: str, low: bytes, high: bytes):
    """Parse both ends of a range of `rangetype` (rank bounds are integers)."""
    if rangetype == SCORE:
        return parse_score_bound(low, NOT_FLOAT_RANGE), parse_score_bound(high, NOT_FLOAT_RANGE)
    if rangetype == LEX:
        return parse_lex_bound(low), parse_lex_bound(high)
    return parse_int(low), parse_int(high)


def slice_of(zset: ZSet, rangetype: str, low, high, reverse: bool = False) -> tuple[int, int]:
    """[i, j) positions of the range in `zset.order` (rank ranges count from the end if `reverse`)."""
    if rangetype == SCORE:
        return zset.score_slice(low, high)
    if rangetype == LEX:
        return zset.lex_slice(low, high, reverse)
    i, j = zset.rank_slice(low, high)
    if reverse and i < j:
        n = len(zset)
        i, j = n - j, n - i
    return i, j


# ------------------------------------------------------------ ZADD, ZINCRBY, ZREM

_ZADD_FLAGS = (b"nx", b"xx", b"gt", b"lt", b"ch", b"incr")


@command("zadd", -4, "write denyoom fast", acl="sortedset")
def zadd(client, argv):
    """ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]."""
    flags = set()
    i = 2
    while i < len(argv) and argv[i].lower() in _ZADD_FLAGS:
        flags.add(argv[i].lower())
        i += 1
    rest = argv[i:]
    if not rest or len(rest) % 2:
        raise CommandError(replies.SYNTAX)
    if {b"nx", b"xx"} <= flags:
        raise CommandError("ERR XX and NX options at the same time are not compatible")
    if len(flags & {b"nx", b"gt", b"lt"}) > 1:
        raise CommandError("ERR GT, LT, and/or NX options at the same time are not compatible")
    if b"incr" in flags and len(rest) > 2:
        raise CommandError("ERR INCR option supports a single increment-element pair")
    pairs = [(parse_double(rest[k]), rest[k + 1]) for k in range(0, len(rest), 2)]
    return zadd_generic(client, argv[1], flags, pairs)


@command(
    "zincrby", 4, "write denyoom fast", specs=(("RW access update", 1, 0, 1),), acl="sortedset"
)
def zincrby(client, argv):
    return zadd_generic(client, argv[1], {b"incr"}, [(parse_double(argv[2]), argv[3])])


def zadd_generic(client, key: bytes, flags: set, pairs: list) -> object:
    """Add or update members under ZADD's flags; the reply is ZADD's (or the new score with INCR)."""
    db = client.db
    zset = db.get_typed(key, ZSet)
    incr = b"incr" in flags
    if zset is None:
        if b"xx" in flags:
            return None if incr else 0
        zset = ZSet()
        db.store(key, zset)
    added = updated = 0
    result = None
    for score, member in pairs:
        outcome, score = _zadd_one(zset, member, score, flags)
        if outcome is not None:
            result = score
            added += outcome == "added"
            updated += outcome == "updated"
    if added or updated:
        db.touch(key)
        db.notify(ev.ZSET, b"zincr" if incr else b"zadd", key)
    if added:
        serve_ready(client, db, key)
    if incr:
        return None if result is None else score_reply(client, result)
    return added + updated if b"ch" in flags else added


def _zadd_one(zset: ZSet, member: bytes, score: float, flags: set):
    """Apply one pair: ("added"|"updated"|"same", new score), or (None, _) when flags skip it."""
    current = zset.score(member)
    if current is None:
        if b"xx" in flags:
            return None, score
        zset.add(member, score)
        return "added", score
    if b"nx" in flags:
        return None, score
    if b"incr" in flags:
        score += current
        if score != score:
            raise CommandError("ERR resulting score is not a number (NaN)")
    if (b"lt" in flags and score >= current) or (b"gt" in flags and score <= current):
        return None, score
    if score == current:
        return "same", score
    zset.add(member, score)
    return "updated", score


@command("zrem", -3, "write fast", specs=(("RW delete", 1, 0, 1),), acl="sortedset")
def zrem(client, argv):
    db = client.db
    key = argv[1]
    zset = db.get_typed(key, ZSet)
    if zset is None:
        return 0
    removed = sum(zset.remove(member) for member in argv[2:])
    if removed:
        notify_removal(db, key, zset, b"zrem")
    return removed


def notify_removal(db, key: bytes, zset: ZSet, event: bytes) -> None:
    """After members left `zset`: signal watchers, announce `event`, delete the key if empty."""
    db.touch(key)
    db.notify(ev.ZSET, event, key)
    if db.drop_if_empty(key, zset):
        db.notify(ev.GENERIC, b"del", key)


# ------------------------------------------------------------ single-member reads


@command("zscore", 3, "readonly fast", acl="sortedset")
def zscore(client, argv):
    zset = read_key(client.db, argv[1], ZSet)
    score = None if zset is None else zset.score(argv[2])
    return None if score is None else score_reply(client, score)


@command("zmscore", -3, "readonly fast", acl="sortedset")
def zmscore(client, argv):
    zset = read_key(client.db, argv[1], ZSet) or ZSet()
    scores = [zset.score(member) for member in argv[2:]]
    return [None if s is None else score_reply(client, s) for s in scores]


@command("zcard", 2, "readonly fast", specs=(("RO", 1, 0, 1),), acl="sortedset")
def zcard(client, argv):
    return len(read_key(client.db, argv[1], ZSet) or ())


@command("zrank", 3, "readonly fast", acl="sortedset")
def zrank(client, argv):
    return _rank(client, argv[1:], reverse=False)


@command("zrevrank", 3, "readonly fast", acl="sortedset")
def zrevrank(client, argv):
    return _rank(client, argv[1:], reverse=True)


def _rank(client, args, reverse: bool):
    zset = read_key(client.db, args[0], ZSet)
    rank = None if zset is None else zset.rank(args[1])
    if rank is None:
        return None
    return len(zset) - 1 - rank if reverse else rank


@command("zcount", 4, "readonly fast", acl="sortedset")
def zcount(client, argv):
    return _count(client, argv[1:], SCORE)


@command("zlexcount", 4, "readonly fast", acl="sortedset")
def zlexcount(client, argv):
    return _count(client, argv[1:], LEX)


def _count(client, args, rangetype: str) -> int:
    low, high = parse_range(rangetype, args[1], args[2])
    zset = read_key(client.db, args[0], ZSet)
    if zset is None:
        return 0
    i, j = slice_of(zset, rangetype, low, high)
    return j - i


# ------------------------------------------------------------ ZRANGE and its wrappers


@command("zrange", -4, "readonly", acl="sortedset")
def zrange(client, argv):
    return zrange_generic(client, argv[1:], None, None)


@command("zrevrange", -4, "readonly", acl="sortedset")
def zrevrange(client, argv):
    return zrange_generic(client, argv[1:], RANK, True)


@command("zrangebyscore", -4, "readonly", acl="sortedset")
def zrangebyscore(client, argv):
    return zrange_generic(client, argv[1:], SCORE, False)


@command("zrevrangebyscore", -4, "readonly", acl="sortedset")
def zrevrangebyscore(client, argv):
    return zrange_generic(client, argv[1:], SCORE, True)


@command("zrangebylex", -4, "readonly", acl="sortedset")
def zrangebylex(client, argv):
    return zrange_generic(client, argv[1:], LEX, False)


@command("zrevrangebylex", -4, "readonly", acl="sortedset")
def zrevrangebylex(client, argv):
    return zrange_generic(client, argv[1:], LEX, True)


@command(
    "zrangestore",
    -5,
    "write denyoom",
    keys=(1, 2, 1),
    specs=(
        ("OW update", 1, 0, 1),
        ("RO access", 2, 0, 1),
    ),
    acl="sortedset",
)
def zrangestore(client, argv):
    return zrange_generic(client, argv[2:], None, None, store=argv[1])


def zrange_generic(
    client, args, rangetype: str | None, reverse: bool | None, store: bytes | None = None
):
    """key min max [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES], Redis's unified ZRANGE.

    `rangetype`/`reverse` preset by a wrapper cannot be given again as options. With
    `store`, the result replaces that key (deleted when empty) and the reply is its size.
    """
    rangetype, reverse, offset, limit, withscores = _zrange_options(args, rangetype, reverse, store)
    low_raw, high_raw = (args[2], args[1]) if reverse and rangetype != RANK else (args[1], args[2])
    low, high = parse_range(rangetype, low_raw, high_raw)
    zset = read_key(client.db, args[0], ZSet)
    pairs = [] if zset is None else _select(zset, rangetype, low, high, reverse, offset, limit)
    if store is not None:
        return store_result(client, store, pairs, b"zrangestore")
    return pairs_reply(client, pairs, withscores)


def _zrange_options(args, rangetype, reverse, store):
    withscores = False
    offset, limit = 0, -1
    j = 3
    while j < len(args):
        option = args[j].lower()
        if option == b"withscores" and store is None:
            withscores = True
        elif option == b"limit" and len(args) - j - 1 >= 2:
            offset, limit = parse_int(args[j + 1]), parse_int(args[j + 2])
            j += 2
        elif option == b"rev" and reverse is None:
            reverse = True
        elif option == b"byscore" and rangetype is None:
            rangetype = SCORE
        elif option == b"bylex" and rangetype is None:
            rangetype = LEX
        else:
            raise CommandError(replies.SYNTAX)
        j += 1
    rangetype = rangetype or RANK
    if limit != -1 and rangetype == RANK:  # Redis's own test: LIMIT 0 -1 passes unnoticed
        raise CommandError(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    if withscores and rangetype == LEX:
        raise CommandError("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    return rangetype, bool(reverse), offset, limit, withscores


def _select(zset: ZSet, rangetype: str, low, high, reverse: bool, offset: int, limit: int) -> list:
    """The (score, member) pairs of a range, in reply order, after LIMIT."""
    i, j = slice_of(zset, rangetype, low, high, reverse)
    if rangetype != RANK:
        if offset < 0 or (offset > 0 and offset >= len(zset)):
            return []
        count = j - i - offset if limit < 0 else min(limit, j - i - offset)
        if count <= 0:
            return []
        if reverse:
            i, j = j - offset - count, j - offset
        else:
            i, j = i + offset, i + offset + count
    pairs = zset.order[i:j]
    if reverse:
        pairs.reverse()
    return pairs


def store_result(client, key: bytes, pairs, event: bytes) -> int:
    """Replace `key` with a zset of `pairs` and announce `event`; an empty result deletes it."""
    db = client.db
    if not pairs:
        if db.delete(key):
            db.notify(ev.GENERIC, b"del", key)
        return 0
    zset = ZSet()
    for score, member in pairs:
        zset.add(member, score)
    zset.skiplist = len(zset) > 128 or any(len(m) > 64 for m in zset.scores)
    db.store(key, zset)
    db.notify(ev.ZSET, event, key)
    size = len(zset)  # the reply: waiters served now may pop from it
    serve_ready(client, db, key)
    return size


# ------------------------------------------------------------ removing ranges


@command("zremrangebyscore", 4, "write", specs=(("RW delete", 1, 0, 1),), acl="sortedset")
def zremrangebyscore(client, argv):
    return _remove_range(client, argv[1:], SCORE, b"zremrangebyscore")


@command("zremrangebyrank", 4, "write", specs=(("RW delete", 1, 0, 1),), acl="sortedset")
def zremrangebyrank(client, argv):
    return _remove_range(client, argv[1:], RANK, b"zremrangebyrank")


@command("zremrangebylex", 4, "write", specs=(("RW delete", 1, 0, 1),), acl="sortedset")
def zremrangebylex(client, argv):
    return _remove_range(client, argv[1:], LEX, b"zremrangebylex")


def _remove_range(client, args, rangetype: str, event: bytes) -> int:
    low, high = parse_range(rangetype, args[1], args[2])
    db = client.db
    zset = db.get_typed(args[0], ZSet)
    if zset is None:
        return 0
    removed = zset.remove_slice(*slice_of(zset, rangetype, low, high))
    if removed:
        notify_removal(db, args[0], zset, event)
    return removed


# ------------------------------------------------------------ pops and random members


@command("zpopmin", -2, "write fast", specs=(("RW access delete", 1, 0, 1),), acl="sortedset")
def zpopmin(client, argv):
    return _pop(client, argv[1:], max_end=False)


@command("zpopmax", -2, "write fast", specs=(("RW access delete", 1, 0, 1),), acl="sortedset")
def zpopmax(client, argv):
    return _pop(client, argv[1:], max_end=True)


def _pop(client, args, max_end: bool):
    """ZPOPMIN/ZPOPMAX key [count]: flat member/score pairs; nested under RESP3 with a count."""
    if len(args) > 2:
        raise CommandError(replies.SYNTAX)
    count = parse_int(args[1], NOT_POSITIVE) if len(args) == 2 else None
    if count is not None and count < 0:
        raise CommandError(NOT_POSITIVE)
    pairs = pop_pairs(client.db, args[0], 1 if count is None else count, max_end)
    if count is not None and client.protocol == 3:
        return pairs_reply(client, pairs, True)
    return [x for score, member in pairs for x in (member, score_reply(client, score))]


def pop_pairs(db, key: bytes, count: int, max_end: bool) -> list:
    """Remove and return up to `count` lowest (or highest) pairs of the zset at `key`."""
    zset = db.get_typed(key, ZSet)
    if zset is None or count == 0:
        return []
    n = len(zset)
    i, j = (max(0, n - count), n) if max_end else (0, min(count, n))
    pairs = zset.order[i:j]
    zset.remove_slice(i, j)
    if max_end:
        pairs.reverse()
    notify_removal(db, key, zset, b"zpopmax" if max_end else b"zpopmin")
    return pairs


@command(
    "zmpop",
    -4,
    "write movablekeys",
    keys=(0, 0, 0),
    specs=(keynum("RW access delete", 1),),
    getkeys=numkeys_getkeys(1),
    acl="sortedset",
)
def zmpop(client, argv):
    keys, end, count = lists.parse_mpop(argv[1:], (b"min", b"max"))
    return _zpop_first(client, keys, end == b"max", count)


@command(
    "bzpopmin",
    -3,
    "write noscript blocking fast",
    keys=(1, -2, 1),
    specs=(("RW access delete", 1, -2, 1),),
    acl="sortedset",
)
def bzpopmin(client, argv):
    return bzpop_generic(client, argv[1:-1], argv[-1], False, None, "bzpopmin")


@command(
    "bzpopmax",
    -3,
    "write noscript blocking fast",
    keys=(1, -2, 1),
    specs=(("RW access delete", 1, -2, 1),),
    acl="sortedset",
)
def bzpopmax(client, argv):
    return bzpop_generic(client, argv[1:-1], argv[-1], True, None, "bzpopmax")


@command(
    "bzmpop",
    -5,
    "write blocking movablekeys",
    keys=(0, 0, 0),
    specs=(keynum("RW access delete", 2),),
    getkeys=numkeys_getkeys(2),
    acl="sortedset",
)
def bzmpop(client, argv):
    keys, end, count = lists.parse_mpop(argv[2:], (b"min", b"max"))
    return bzpop_generic(client, keys, argv[1], end == b"max", count, "bzmpop")


def bzpop_generic(client, keys, raw_timeout: bytes, max_end: bool, count: int | None, name: str):
    """Pop from the first zset of `keys`, else block until one is created or the timeout passes.

    `count` None is BZPOPMIN's form ([key, member, score]); else ZMPOP's.
    """
    timeout = lists.parse_timeout(raw_timeout)
    reply = _zpop_first(client, keys, max_end, count)
    if reply is not NIL_ARRAY or not may_block(client, name):
        return reply
    serve = _serve_zpop(client, max_end, count)
    return block(client, keys, timeout, NIL_ARRAY, serve, ZSet)


def _zpop_first(client, keys, max_end: bool, count: int | None):
    """The pop reply from the first existing zset of `keys` (WRONGTYPE on the way), or a nil array."""
    for key in keys:
        zset = client.db.get_typed(key, ZSet)
        if zset:
            return _serve_zpop(client, max_end, count)(client.db, key, zset)
    return NIL_ARRAY


def _serve_zpop(client, max_end: bool, count: int | None):
    def serve(db, key: bytes, zset: ZSet):
        pairs = pop_pairs(db, key, count or 1, max_end)
        if count is None:
            score, member = pairs[0]
            return [key, member, score_reply(client, score)]
        return [key, [[member, score_reply(client, score)] for score, member in pairs]]

    return serve


@command("zrandmember", -2, "readonly", acl="sortedset", tips="nondeterministic_output")
def zrandmember(client, argv):
    """ZRANDMEMBER key [count [WITHSCORES]]: negative counts may repeat members."""
    if len(argv) == 2:
        zset = read_key(client.db, argv[1], ZSet)
        return random.choice(zset.order)[1] if zset else None
    withscores = len(argv) == 4 and argv[3].lower() == b"withscores"
    if len(argv) > 4 or (len(argv) == 4 and not withscores):
        raise CommandError(replies.SYNTAX)
    count = parse_int(argv[2])
    if count == -(1 << 63):
        raise CommandError(OUT_OF_RANGE_SIGNED)
    if withscores and count < -(((1 << 63) - 1) // 2):
        raise CommandError("ERR value is out of range")
    zset = read_key(client.db, argv[1], ZSet)
    if not zset or count == 0:
        return []
    order = zset.order
    if count < 0:
        pairs = [random.choice(order) for _ in range(-count)]
    else:
        pairs = random.sample(order, min(count, len(order)))
    return pairs_reply(client, pairs, withscores)


# ------------------------------------------------------------ set algebra


@command(
    "zunionstore",
    -4,
    "write denyoom movablekeys",
    keys=(1, 1, 1),
    specs=(("OW update", 1, 0, 1), keynum("RO access", 2)),
    getkeys=numkeys_getkeys(2, store_at=1),
    acl="sortedset",
)
def zunionstore(client, argv):
    return setop_generic(client, argv[2:], "union", store=argv[1])


@command(
    "zinterstore",
    -4,
    "write denyoom movablekeys",
    keys=(1, 1, 1),
    specs=(("OW update", 1, 0, 1), keynum("RO access", 2)),
    getkeys=numkeys_getkeys(2, store_at=1),
    acl="sortedset",
)
def zinterstore(client, argv):
    return setop_generic(client, argv[2:], "inter", store=argv[1])


@command(
    "zdiffstore",
    -4,
    "write denyoom movablekeys",
    keys=(1, 1, 1),
    specs=(("OW update", 1, 0, 1), keynum("RO access", 2)),
    getkeys=numkeys_getkeys(2, store_at=1),
    acl="sortedset",
)
def zdiffstore(client, argv):
    return setop_generic(client, argv[2:], "diff", store=argv[1])


@command(
    "zunion",
    -3,
    "readonly movablekeys",
    keys=(0, 0, 0),
    specs=(keynum("RO access", 1),),
    getkeys=numkeys_getkeys(1),
    acl="sortedset",
)
def zunion(client, argv):
    return setop_generic(client, argv[1:], "union")


@command(
    "zinter",
    -3,
    "readonly movablekeys",
    keys=(0, 0, 0),
    specs=(keynum("RO access", 1),),
    getkeys=numkeys_getkeys(1),
    acl="sortedset",
)
def zinter(client, argv):
    return setop_generic(client, argv[1:], "inter")


@command(
    "zdiff",
    -3,
    "readonly movablekeys",
    keys=(0, 0, 0),
    specs=(keynum("RO access", 1),),
    getkeys=numkeys_getkeys(1),
    acl="sortedset",
)
def zdiff(client, argv):
    return setop_generic(client, argv[1:], "diff")


@command(
    "zintercard",
    -3,
    "readonly movablekeys",
    keys=(0, 0, 0),
    specs=(keynum("RO access", 1),),
    getkeys=numkeys_getkeys(1),
    acl="sortedset",
)
def zintercard(client, argv):
    """ZINTERCARD numkeys key [key ...] [LIMIT limit]: the intersection's size, at most limit (0: all)."""
    sources = _sources(client, argv[1:], "zintercard")
    limit = 0
    options = argv[2 + len(sources) :]
    for j in range(0, len(options), 2):
        if options[j].lower() != b"limit" or j + 1 == len(options):
            raise CommandError(replies.SYNTAX)
        limit = parse_int(options[j + 1], "ERR LIMIT can't be negative")
        if limit < 0:
            raise CommandError("ERR LIMIT can't be negative")
    sources.sort(key=len)
    found = 0
    for member in sources[0]:
        if all(member in other for other in sources[1:]):
            found += 1
            if found == limit:
                break
    return found


def _sources(client, args, name: str) -> list[dict]:
    """The member->score dicts of `numkeys key [key ...]` (sets score 1); WRONGTYPE for others."""
    numkeys = parse_int(args[0])
    if numkeys < 1:
        raise CommandError(f"ERR at least 1 input key is needed for '{name}' command")
    if numkeys > len(args) - 1:
        raise CommandError(replies.SYNTAX)
    return [_source(client.db, key) for key in args[1 : 1 + numkeys]]


def setop_generic(client, args, op: str, store: bytes | None = None):
    """numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]; sets count as score 1."""
    name = f"z{op}store" if store is not None else f"z{op}"
    sources = _sources(client, args, name)
    numkeys = len(sources)
    weights, aggregate, withscores = _setop_options(args[1 + numkeys :], numkeys, op, store)
    scores = combine(sources, weights, aggregate, op)
    pairs = sorted((score, member) for member, score in scores.items())
    if store is not None:
        return store_result(client, store, pairs, name.encode())
    return pairs_reply(client, pairs, withscores)


def _source(db, key: bytes) -> dict:
    value = read_key(db, key)  # a read lookup (keymiss) for the *STORE commands too, as in Redis
    if value is None:
        return {}
    if type(value) is ZSet:
        return value.scores
    if type(value) is set:
        return dict.fromkeys(value, 1.0)
    raise WrongType()


def _setop_options(options, numkeys: int, op: str, store):
    weights = [1.0] * numkeys
    aggregate = "sum"
    withscores = False
    j = 0
    while j < len(options):
        option = options[j].lower()
        left = len(options) - j
        if op != "diff" and left >= numkeys + 1 and option == b"weights":
            weights = [
                parse_double(w, "ERR weight value is not a float")
                for w in options[j + 1 : j + 1 + numkeys]
            ]
            j += numkeys + 1
        elif op != "diff" and left >= 2 and option == b"aggregate":
            aggregate = options[j + 1].lower().decode("latin-1")
            if aggregate not in ("sum", "min", "max"):
                raise CommandError(replies.SYNTAX)
            j += 2
        elif store is None and option == b"withscores":
            withscores = True
            j += 1
        else:
            raise CommandError(replies.SYNTAX)
    return weights, aggregate, withscores


# ------------------------------------------------------------ ZSCAN


@command("zscan", -3, "readonly", acl="sortedset", tips="nondeterministic_output")
def zscan(client, argv):
    """ZSCAN key cursor [MATCH pattern] [COUNT n]: the whole zset in one call, cursor 0."""
    parse_cursor(argv[2])
    zset = read_key(client.db, argv[1], ZSet)
    if zset is None:
        return [b"0", []]
    pattern, _, _ = scan_options(argv[3:])
    out = []
    for score, member in zset.order:
        if pattern is None or glob_match(pattern, member):
            out += (member, _scan_score(score, zset.skiplist))
    return [b"0", out]


def _scan_score(score: float, skiplist: bool) -> bytes:
    """ZSCAN's score text: a small zset's listpack keeps integral scores as integers."""
    if (
        not skiplist
        and score not in (INF, -INF)
        and score == int(score)
        and -(1 << 63) <= score < (1 << 63)
    ):
        return b"%d" % score
    return format_score(score)
