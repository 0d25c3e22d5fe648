"""List commands: pushes, pops, ranges, LPOS, LMOVE, and the blocking BLPOP/BRPOP/BLMOVE.

Lists are `collections.deque`s. LPUSH/RPUSH/LPUSHX/RPUSHX share `push_generic`, LPOP/RPOP
`pop_generic`, LMOVE/RPOPLPUSH (and a served BLMOVE) `move_one`. Keyspace events follow
Redis: one event per command, then `del` when a write empties the list.

Blocking commands park the client (see "blocked clients" below) until a push reaches
one of its keys or its timeout passes; the server keeps serving everyone else.
"""

from __future__ import annotations

import math
from collections import deque
from itertools import islice

from presence.store import notify as ev
from presence.store import replies
from presence.store.blocking import block, may_block, serve_ready
from presence.store.commands import CommandError, command, keynum, numkeys_getkeys
from presence.store.commands.generic import read_key
from presence.store.keyspace import WrongType
from presence.store.numbers import parse_double, parse_int
from presence.store.resp import NIL_ARRAY, OK

# name          arity  flags
# lpush          -3    write denyoom fast   rpush -3, lpushx -3, rpushx -3
# lpop           -2    write fast      rpop -2
# llen            2    readonly fast
# lrange          4    readonly
# lindex          3    readonly
# lset            4    write denyoom
# lrem            4    write
# ltrim           4    write
# linsert         5    write denyoom
# lpos           -3    readonly
# lmove           5    write denyoom    rpoplpush 3
# blpop          -3    write noscript blocking   brpop -3
# blmove          6    write denyoom noscript blocking   brpoplpush 4
# lmpop          -4    write movablekeys     blmpop -5 (write blocking movablekeys)

NOT_POSITIVE = "ERR value is out of range, must be positive"
LEFT, RIGHT = b"left", b"right"


# ------------------------------------------------------------ pushes


@command("lpush", -3, "write denyoom fast", specs=(("RW insert", 1, 0, 1),), acl="list")
def lpush(client, argv):
    return push_generic(client, argv, LEFT, only_existing=False)


@command("rpush", -3, "write denyoom fast", specs=(("RW insert", 1, 0, 1),), acl="list")
def rpush(client, argv):
    return push_generic(client, argv, RIGHT, only_existing=False)


@command("lpushx", -3, "write denyoom fast", specs=(("RW insert", 1, 0, 1),), acl="list")
def lpushx(client, argv):
    return push_generic(client, argv, LEFT, only_existing=True)


@command("rpushx", -3, "write denyoom fast", specs=(("RW insert", 1, 0, 1),), acl="list")
def rpushx(client, argv):
    return push_generic(client, argv, RIGHT, only_existing=True)


def push_generic(client, argv, end: bytes, only_existing: bool) -> int:
    """Push every element at `end`, creating the list unless `only_existing`; reply its length."""
    db = client.db
    key = argv[1]
    items = db.get_typed(key, deque)
    if items is None:
        if only_existing:
            return 0
        items = deque()
        db.store(key, items)
    if end == LEFT:
        items.extendleft(argv[2:])
    else:
        items.extend(argv[2:])
    length = len(items)
    db.touch(key)
    db.notify(ev.LIST, b"lpush" if end == LEFT else b"rpush", key)
    serve_ready(client, db, key)
    return length


# ------------------------------------------------------------ pops


@command("lpop", -2, "write fast", specs=(("RW access delete", 1, 0, 1),), acl="list")
def lpop(client, argv):
    return pop_generic(client, argv, LEFT)


@command("rpop", -2, "write fast", specs=(("RW access delete", 1, 0, 1),), acl="list")
def rpop(client, argv):
    return pop_generic(client, argv, RIGHT)


def pop_generic(client, argv, end: bytes):
    """LPOP/RPOP key [count]: one element, or with a count an array (nil array if no key)."""
    if len(argv) > 3:
        raise CommandError(replies.wrong_arity("lpop" if end == LEFT else "rpop"))
    count = None
    if len(argv) == 3:
        count = parse_int(argv[2], NOT_POSITIVE)
        if count < 0:
            raise CommandError(NOT_POSITIVE)
    db = client.db
    items = db.get_typed(argv[1], deque)
    if items is None:
        return None if count is None else NIL_ARRAY
    if count == 0:
        return []
    popped = [_pop(items, end) for _ in range(min(count or 1, len(items)))]
    note_removal(db, argv[1], items, b"lpop" if end == LEFT else b"rpop")
    return popped[0] if count is None else popped


def _pop(items: deque, end: bytes) -> bytes:
    return items.popleft() if end == LEFT else items.pop()


def note_removal(db, key: bytes, items: deque, event: bytes) -> None:
    """After a write removed elements: signal watchers, announce `event`, delete the key if empty."""
    db.touch(key)
    db.notify(ev.LIST, event, key)
    if db.drop_if_empty(key, items):
        db.notify(ev.GENERIC, b"del", key)


# ------------------------------------------------------------ reads


@command("llen", 2, "readonly fast", specs=(("RO", 1, 0, 1),), acl="list")
def llen(client, argv):
    return len(read_key(client.db, argv[1], deque) or ())


@command("lrange", 4, "readonly", acl="list")
def lrange(client, argv):
    start, stop = parse_int(argv[2]), parse_int(argv[3])
    items = read_key(client.db, argv[1], deque)
    if items is None:
        return []
    i, j = index_slice(len(items), start, stop)
    return list(islice(items, i, j))


def index_slice(n: int, start: int, stop: int) -> tuple[int, int]:
    """[i, j) for the inclusive start..stop of LRANGE/LTRIM, negative indexes counting from the end."""
    if start < 0:
        start = max(0, n + start)
    if stop < 0:
        stop = n + stop
    if start > stop or start >= n:
        return 0, 0
    return start, min(stop, n - 1) + 1


@command("lindex", 3, "readonly", acl="list")
def lindex(client, argv):
    items = read_key(client.db, argv[1], deque)
    if items is None:
        return None
    index = parse_int(argv[2])
    if index < 0:
        index += len(items)
    return items[index] if 0 <= index < len(items) else None


@command("lpos", -3, "readonly", acl="list")
def lpos(client, argv):
    """LPOS key element [RANK r] [COUNT c] [MAXLEN m]: indexes of matches, from the tail if r < 0."""
    rank, count, maxlen = _lpos_options(argv[3:])
    items = read_key(client.db, argv[1], deque)
    if items is None:
        return None if count is None else []
    n = len(items)
    scan = reversed(items) if rank < 0 else iter(items)
    if maxlen:
        scan = islice(scan, maxlen)
    found = []
    skip = abs(rank) - 1 if rank != -(1 << 63) else 0  # Redis negates LONG_MIN into itself
    for offset, item in enumerate(scan):
        if item == argv[2]:
            if skip:
                skip -= 1
                continue
            found.append(n - 1 - offset if rank < 0 else offset)
            if (count is None) or (count and len(found) >= count):
                break
    if count is None:
        return found[0] if found else None
    return found


def _lpos_options(options: list[bytes]):
    rank, count, maxlen = 1, None, 0
    for j in range(0, len(options), 2):
        option = options[j].lower()
        if j + 1 >= len(options):
            raise CommandError(replies.SYNTAX)
        value = options[j + 1]
        if option == b"rank":
            rank = parse_int(value)
            if rank == 0:
                raise CommandError(
                    "ERR RANK can't be zero: use 1 to start from the first match, "
                    "2 from the second ... or use negative to start from the end of the list"
                )
        elif option == b"count":
            count = _non_negative(value, "ERR COUNT can't be negative")
        elif option == b"maxlen":
            maxlen = _non_negative(value, "ERR MAXLEN can't be negative")
        else:
            raise CommandError(replies.SYNTAX)
    return rank, count, maxlen


def _non_negative(raw: bytes, error: str) -> int:
    value = parse_int(raw, error)
    if value < 0:
        raise CommandError(error)
    return value


# ------------------------------------------------------------ edits in place


@command("lset", 4, "write denyoom", acl="list")
def lset(client, argv):
    db = client.db
    items = db.get_typed(argv[1], deque)
    if items is None:
        raise CommandError(replies.NO_SUCH_KEY)
    index = parse_int(argv[2])
    if index < 0:
        index += len(items)
    if not 0 <= index < len(items):
        raise CommandError(replies.INDEX_OUT_OF_RANGE)
    items[index] = argv[3]
    db.touch(argv[1])
    db.notify(ev.LIST, b"lset", argv[1])
    return OK


@command("lrem", 4, "write", specs=(("RW delete", 1, 0, 1),), acl="list")
def lrem(client, argv):
    """LREM key count element: count > 0 from the head, < 0 from the tail, 0 all."""
    count = parse_int(argv[2])
    db = client.db
    items = db.get_typed(argv[1], deque)
    if items is None:
        return 0
    limit = abs(count) or len(items)
    kept, removed = [], 0
    for item in reversed(items) if count < 0 else items:
        if removed < limit and item == argv[3]:
            removed += 1
        else:
            kept.append(item)
    if removed:
        items.clear()
        items.extend(reversed(kept) if count < 0 else kept)
        note_removal(db, argv[1], items, b"lrem")
    return removed


@command("ltrim", 4, "write", specs=(("RW delete", 1, 0, 1),), acl="list")
def ltrim(client, argv):
    start, stop = parse_int(argv[2]), parse_int(argv[3])
    db = client.db
    items = db.get_typed(argv[1], deque)
    if items is None:
        return OK
    i, j = index_slice(len(items), start, stop)
    for _ in range(len(items) - j):
        items.pop()
    for _ in range(i):
        items.popleft()
    note_removal(db, argv[1], items, b"ltrim")
    return OK


@command("linsert", 5, "write denyoom", specs=(("RW insert", 1, 0, 1),), acl="list")
def linsert(client, argv):
    """LINSERT key BEFORE|AFTER pivot element: the new length, -1 without the pivot, 0 without the key."""
    where = argv[2].lower()
    if where not in (b"before", b"after"):
        raise CommandError(replies.SYNTAX)
    db = client.db
    items = db.get_typed(argv[1], deque)
    if items is None:
        return 0
    try:
        index = items.index(argv[3])
    except ValueError:
        return -1
    items.insert(index + (where == b"after"), argv[4])
    db.touch(argv[1])
    db.notify(ev.LIST, b"linsert", argv[1])
    return len(items)


# ------------------------------------------------------------ moves


@command(
    "lmove",
    5,
    "write denyoom",
    keys=(1, 2, 1),
    specs=(
        ("RW access delete", 1, 0, 1),
        ("RW insert", 2, 0, 1),
    ),
    acl="list",
)
def lmove(client, argv):
    source_end, target_end = parse_end(argv[3]), parse_end(argv[4])
    return lmove_generic(client, argv[1], argv[2], source_end, target_end)


@command(
    "rpoplpush",
    3,
    "write denyoom",
    keys=(1, 2, 1),
    specs=(
        ("RW access delete", 1, 0, 1),
        ("RW insert", 2, 0, 1),
    ),
    acl="list",
)
def rpoplpush(client, argv):
    return lmove_generic(client, argv[1], argv[2], RIGHT, LEFT)


def parse_end(raw: bytes) -> bytes:
    """LEFT or RIGHT (any case); anything else is a syntax error."""
    end = raw.lower()
    if end not in (LEFT, RIGHT):
        raise CommandError(replies.SYNTAX)
    return end


def lmove_generic(client, source: bytes, target: bytes, source_end: bytes, target_end: bytes):
    """Move one element between lists: the element, or nil when `source` is empty."""
    items = client.db.get_typed(source, deque)
    if not items:
        return None
    return move_one(client, source, items, target, source_end, target_end)


def move_one(
    client, source: bytes, items: deque, target: bytes, source_end: bytes, target_end: bytes
):
    """Pop from the non-empty `items` at `source` and push onto `target`; events as Redis orders them."""
    db = client.db
    destination = db.get_typed(target, deque)
    value = _pop(items, source_end)
    if destination is None:
        destination = deque()
        db.store(target, destination)
    if target_end == LEFT:
        destination.appendleft(value)
    else:
        destination.append(value)
    db.touch(target)
    db.notify(ev.LIST, b"lpush" if target_end == LEFT else b"rpush", target)
    note_removal(db, source, items, b"lpop" if source_end == LEFT else b"rpop")
    serve_ready(client, db, target)
    return value


# ------------------------------------------------------------ LMPOP, BLMPOP


@command(
    "lmpop",
    -4,
    "write movablekeys",
    keys=(0, 0, 0),
    specs=(keynum("RW access delete", 1),),
    getkeys=numkeys_getkeys(1),
    acl="list",
)
def lmpop(client, argv):
    keys, end, count = parse_mpop(argv[1:], (LEFT, RIGHT))
    return _mpop_now(client, keys, end, count)


@command(
    "blmpop",
    -5,
    "write blocking movablekeys",
    keys=(0, 0, 0),
    specs=(keynum("RW access delete", 2),),
    getkeys=numkeys_getkeys(2),
    acl="list",
)
def blmpop(client, argv):
    keys, end, count = parse_mpop(argv[2:], (LEFT, RIGHT))
    timeout = parse_timeout(argv[1])
    reply = _mpop_now(client, keys, end, count)
    if reply is not NIL_ARRAY or not may_block(client, "blmpop"):
        return reply
    return block(client, keys, timeout, NIL_ARRAY, _serve_mpop(end, count))


def _mpop_now(client, keys, end: bytes, count: int):
    """[key, [elements]] popped from the first non-empty list of `keys`, or a nil array."""
    for key in keys:
        items = client.db.get_typed(key, deque)
        if items:
            return _serve_mpop(end, count)(client.db, key, items)
    return NIL_ARRAY


def parse_mpop(args, ends: tuple) -> tuple[list, bytes, int]:
    """numkeys key [key ...] END [COUNT count] (LMPOP, ZMPOP and blocking forms): (keys, end, count)."""
    numkeys = _positive(args[0], "ERR numkeys should be greater than 0")
    if numkeys + 1 >= len(args) or args[numkeys + 1].lower() not in ends:
        raise CommandError(replies.SYNTAX)
    count = None
    j = numkeys + 2
    while j < len(args):
        if count is None and args[j].lower() == b"count" and j + 1 < len(args):
            count = _positive(args[j + 1], "ERR count should be greater than 0")
            j += 2
        else:
            raise CommandError(replies.SYNTAX)
    return args[1 : numkeys + 1], args[numkeys + 1].lower(), count or 1


def _positive(raw: bytes, error: str) -> int:
    value = parse_int(raw, error)
    if value < 1:
        raise CommandError(error)
    return value


def _serve_mpop(end: bytes, count: int):
    def serve(db, key: bytes, items: deque):
        popped = [_pop(items, end) for _ in range(min(count, len(items)))]
        note_removal(db, key, items, b"lpop" if end == LEFT else b"rpop")
        return [key, popped]

    return serve


# ------------------------------------------------------------ blocking forms


@command(
    "blpop",
    -3,
    "write noscript blocking",
    keys=(1, -2, 1),
    specs=(("RW access delete", 1, -2, 1),),
    acl="list",
)
def blpop(client, argv):
    return bpop_generic(client, argv, LEFT, "blpop")


@command(
    "brpop",
    -3,
    "write noscript blocking",
    keys=(1, -2, 1),
    specs=(("RW access delete", 1, -2, 1),),
    acl="list",
)
def brpop(client, argv):
    return bpop_generic(client, argv, RIGHT, "brpop")


@command(
    "blmove",
    6,
    "write denyoom noscript blocking",
    keys=(1, 2, 1),
    specs=(
        ("RW access delete", 1, 0, 1),
        ("RW insert", 2, 0, 1),
    ),
    acl="list",
)
def blmove(client, argv):
    source_end, target_end = parse_end(argv[3]), parse_end(argv[4])
    return bmove_generic(client, argv[1], argv[2], argv[5], (source_end, target_end), "blmove")


@command(
    "brpoplpush",
    4,
    "write denyoom noscript blocking",
    keys=(1, 2, 1),
    specs=(
        ("RW access delete", 1, 0, 1),
        ("RW insert", 2, 0, 1),
    ),
    acl="list",
)
def brpoplpush(client, argv):
    return bmove_generic(client, argv[1], argv[2], argv[3], (RIGHT, LEFT), "brpoplpush")


def bpop_generic(client, args, end: bytes, name: str):
    """BLPOP/BRPOP key [key ...] timeout: [key, element] from the first non-empty list, else block."""
    timeout = parse_timeout(args[-1])
    db = client.db
    keys = args[:-1]
    for key in keys:
        items = db.get_typed(key, deque)
        if items:
            value = _pop(items, end)
            note_removal(db, key, items, b"lpop" if end == LEFT else b"rpop")
            return [key, value]
    if not may_block(client, name):
        return NIL_ARRAY
    return block(client, keys, timeout, NIL_ARRAY, _serve_pop(end))


def bmove_generic(client, source: bytes, target: bytes, raw_timeout: bytes, ends: tuple, name: str):
    """BLMOVE/BRPOPLPUSH: LMOVE now if the source has elements, else block on the source."""
    timeout = parse_timeout(raw_timeout)
    source_end, target_end = ends
    items = client.db.get_typed(source, deque)
    if items:
        return move_one(client, source, items, target, source_end, target_end)
    if not may_block(client, name):
        return None
    return block(
        client, [source], timeout, NIL_ARRAY, _serve_move(client, target, source_end, target_end)
    )


def _serve_pop(end: bytes):
    def serve(db, key: bytes, items: deque):
        value = _pop(items, end)
        db.notify(ev.LIST, b"lpop" if end == LEFT else b"rpop", key)
        if db.drop_if_empty(key, items):
            db.notify(ev.GENERIC, b"del", key)
        return [key, value]

    return serve


def _serve_move(client, target: bytes, source_end: bytes, target_end: bytes):
    def serve(db, key: bytes, items: deque):
        try:
            return move_one(client, key, items, target, source_end, target_end)
        except WrongType as exc:
            return exc.reply

    return serve


def parse_timeout(raw: bytes) -> float:
    """A blocking timeout in seconds (0: forever), rounded up to whole milliseconds like Redis."""
    ms = parse_double(raw, "ERR timeout is not a float or out of range") * 1000
    if ms < 0 or ms >= 1 << 63:  # Redis's cast of a too-large timeout wraps it negative
        raise CommandError(replies.TIMEOUT_NEGATIVE)
    return math.ceil(ms) / 1000
