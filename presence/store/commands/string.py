"""String commands: GET, SET and its variants, counters, MGET/MSET, ranges, LCS.

GET and SET are the hot path of redis-benchmark and of the presence service: they
stay short and avoid allocation beyond the reply. SET and GETEX share one option parser
with Redis's rules (repeats allowed, conflicts refused). INCRBYFLOAT reproduces Redis's
80-bit long double arithmetic exactly, with fractions, so its replies match digit for digit.
LCS walks its dynamic-programming table (bit-parallel rows) back the way Redis does, so
IDX reports the same matches in the same order.
"""

from __future__ import annotations

from presence.store import notify as ev
from presence.store import replies
from presence.store.commands import CommandError, command
from presence.store.commands.generic import read_key
from presence.store.keyspace import WrongType
from presence.store.numbers import LongDouble, parse_int, parse_long_double
from presence.store.resp import OK

# name          arity  flags
# get             2    readonly fast
# set            -3    write
# setnx           3    write fast       setex 4, psetex 4
# getset          3    write fast       getdel 2, getex -2
# mget           -2    readonly fast    mset -3, msetnx -3
# incr            2    write fast       decr 2, incrby 3, decrby 3, incrbyfloat 3
# append          3    write fast       strlen 2, getrange 4, setrange 4
# lcs            -3    readonly


@command("get", 2, "readonly fast", acl="string")
def get(client, argv):
    """`read_key(db, key, bytes)`, inlined: the most common command of all."""
    db = client.db
    value = db.data.get(argv[1])
    if value is not None and db.expires:
        value = db.get(argv[1])  # may be past its deadline
    if value is None:
        db.keyspace.misses += 1
        if db.keyspace.notifier.flags:
            db.notify(ev.KEY_MISS, b"keymiss", argv[1])
    else:
        db.keyspace.hits += 1
        if type(value) is not bytes:
            raise WrongType()
    return value


def set_getkeys(argv: list[bytes]) -> list[tuple[int, tuple[str, ...]]]:
    """Redis's setGetKeys: SET ... GET reads the old value, a plain SET overwrites."""
    if any(arg.lower() == b"get" for arg in argv[3:]):
        return [(1, ("RW", "access", "update"))]
    return [(1, ("OW", "update"))]


@command(
    "set",
    -3,
    "write denyoom",
    specs=(
        (
            "RW access update variable_flags",
            1,
            0,
            1,
            "RW and ACCESS due to the optional `GET` argument",
        ),
    ),
    getkeys=set_getkeys,
    acl="string",
)
def set_(client, argv):
    """SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]."""
    db = client.db
    key = argv[1]
    if len(argv) == 3:
        db.store(key, argv[2])
        if db.keyspace.notifier.flags:
            db.notify(ev.STRING, b"set", key)
        return OK
    flags, expiry = _expiry_options(argv[3:], "set")
    deadline = expiry_deadline(*expiry, db.keyspace.now, "set") if expiry else None
    old = read_key(db, key, bytes) if "get" in flags else db.get(key)
    if ("nx" in flags and old is not None) or ("xx" in flags and old is None):
        return old if "get" in flags else None
    db.store(key, argv[2], keep_ttl="keepttl" in flags)
    db.notify(ev.STRING, b"set", key)
    if deadline is not None:
        db.set_deadline(key, deadline)
        db.notify(ev.GENERIC, b"expire", key)
    return old if "get" in flags else OK


# Options each option excludes, as Redis's parseExtendedStringArgumentsOrReply has them.
_EXPIRY_UNITS = {"ex": 1000, "px": 1, "exat": 1000, "pxat": 1}
_CONFLICTS = {
    "nx": {"xx"},
    "xx": {"nx"},
    "get": set(),
    "keepttl": {"persist", "ex", "px", "exat", "pxat"},
    "persist": {"keepttl", "ex", "px", "exat", "pxat"},
    **{unit: {"keepttl", "persist"} | (_EXPIRY_UNITS.keys() - {unit}) for unit in _EXPIRY_UNITS},
}
_SET_ONLY = {"nx", "xx", "get", "keepttl"}


def _expiry_options(options: list[bytes], name: str):
    """Parse SET's (or GETEX's) options into (flags, (raw time, unit ms, relative) or None).

    A repeated option is allowed and the last expiry value counts; conflicting options,
    or one that `name` does not take, raise ERR syntax error.
    """
    flags: set[str] = set()
    amount = None
    i = 0
    while i < len(options):
        o = options[i].decode("latin-1").lower()
        takes = o != "persist" if name == "set" else o not in _SET_ONLY
        ok = o in _CONFLICTS and takes and not flags & _CONFLICTS[o]
        if o in _EXPIRY_UNITS and ok and i + 1 < len(options):
            amount = options[i + 1]
            i += 1
        elif not ok or o in _EXPIRY_UNITS:
            raise CommandError(replies.SYNTAX)
        flags.add(o)
        i += 1
    if amount is None:
        return flags, None
    unit = next(u for u in _EXPIRY_UNITS if u in flags)
    return flags, (amount, _EXPIRY_UNITS[unit], unit in ("ex", "px"))


def expiry_deadline(raw: bytes, unit_ms: int, relative: bool, now: int, name: str) -> int:
    """The absolute deadline of a SET-family expire argument; refuses what Redis refuses."""
    amount = parse_int(raw)
    if amount <= 0 or amount > ((1 << 63) - 1) // unit_ms:
        raise CommandError(replies.INVALID_EXPIRE.format(name))
    deadline = amount * unit_ms + (now if relative else 0)
    if deadline >= 1 << 63:  # Redis's signed addition wraps negative and is refused
        raise CommandError(replies.INVALID_EXPIRE.format(name))
    return deadline


@command("setnx", 3, "write fast denyoom", specs=(("OW insert", 1, 0, 1),), acl="string")
def setnx(client, argv):
    db = client.db
    if db.get(argv[1]) is not None:
        return 0
    db.store(argv[1], argv[2])
    db.notify(ev.STRING, b"set", argv[1])
    return 1


@command("setex", 4, "write denyoom", specs=(("OW update", 1, 0, 1),), acl="string")
def setex(client, argv):
    return _setex(client, argv, 1000, "setex")


@command("psetex", 4, "write denyoom", specs=(("OW update", 1, 0, 1),), acl="string")
def psetex(client, argv):
    return _setex(client, argv, 1, "psetex")


def _setex(client, argv, unit_ms: int, name: str):
    _, key, raw, value = argv
    db = client.db
    deadline = expiry_deadline(raw, unit_ms, True, db.keyspace.now, name)
    db.store(key, value)
    db.notify(ev.STRING, b"set", key)
    db.set_deadline(key, deadline)
    db.notify(ev.GENERIC, b"expire", key)
    return OK


@command("getset", 3, "write fast denyoom", specs=(("RW access update", 1, 0, 1),), acl="string")
def getset(client, argv):
    db = client.db
    old = read_key(db, argv[1], bytes)
    db.store(argv[1], argv[2])
    db.notify(ev.STRING, b"set", argv[1])
    return old


@command("getdel", 2, "write fast", specs=(("RW access delete", 1, 0, 1),), acl="string")
def getdel(client, argv):
    db = client.db
    old = read_key(db, argv[1], bytes)
    if old is not None:
        db.delete(argv[1])
        db.notify(ev.GENERIC, b"del", argv[1])
    return old


@command(
    "getex",
    -2,
    "write fast",
    specs=(("RW access update", 1, 0, 1, "RW and UPDATE because it changes the TTL"),),
    acl="string",
)
def getex(client, argv):
    """GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]."""
    db = client.db
    key = argv[1]
    flags, expiry = _expiry_options(argv[2:], "getex")
    value = read_key(db, key, bytes)
    if value is None:
        return None
    if expiry:
        deadline = expiry_deadline(*expiry, db.keyspace.now, "getex")
        if deadline <= db.keyspace.now:
            db.delete(key)
            db.notify(ev.GENERIC, b"del", key)
        else:
            db.set_deadline(key, deadline)
            db.notify(ev.GENERIC, b"expire", key)
    elif "persist" in flags and db.persist(key):
        db.notify(ev.GENERIC, b"persist", key)
    return value


@command(
    "mget", -2, "readonly fast", keys=(1, -1, 1), acl="string", tips="request_policy:multi_shard"
)
def mget(client, argv):
    db = client.db
    out = []
    for key in argv[1:]:
        value = read_key(db, key)
        out.append(value if type(value) is bytes else None)
    return out


@command(
    "mset",
    -3,
    "write denyoom",
    keys=(1, -1, 2),
    specs=(("OW update", 1, -1, 2),),
    acl="string",
    tips="request_policy:multi_shard response_policy:all_succeeded",
)
def mset(client, argv):
    if len(argv) % 2 == 0:
        raise CommandError(replies.wrong_arity("mset"))
    db = client.db
    for i in range(1, len(argv), 2):
        db.store(argv[i], argv[i + 1])
        db.notify(ev.STRING, b"set", argv[i])
    return OK


@command(
    "msetnx",
    -3,
    "write denyoom",
    keys=(1, -1, 2),
    specs=(("OW insert", 1, -1, 2),),
    acl="string",
    tips="request_policy:multi_shard response_policy:agg_min",
)
def msetnx(client, argv):
    if len(argv) % 2 == 0:
        raise CommandError(replies.wrong_arity("msetnx"))
    db = client.db
    if any(db.exists(argv[i]) for i in range(1, len(argv), 2)):
        return 0
    for i in range(1, len(argv), 2):
        db.store(argv[i], argv[i + 1])
        db.notify(ev.STRING, b"set", argv[i])
    return 1


@command("incr", 2, "write fast denyoom", specs=(("RW access update", 1, 0, 1),), acl="string")
def incr(client, argv):
    return _incr_by(client.db, argv[1], 1)


@command("decr", 2, "write fast denyoom", specs=(("RW access update", 1, 0, 1),), acl="string")
def decr(client, argv):
    return _incr_by(client.db, argv[1], -1)


@command("incrby", 3, "write fast denyoom", specs=(("RW access update", 1, 0, 1),), acl="string")
def incrby(client, argv):
    return _incr_by(client.db, argv[1], parse_int(argv[2]))


@command("decrby", 3, "write fast denyoom", specs=(("RW access update", 1, 0, 1),), acl="string")
def decrby(client, argv):
    amount = parse_int(argv[2])
    if amount == -(1 << 63):
        raise CommandError("ERR decrement would overflow")
    return _incr_by(client.db, argv[1], -amount)


def _incr_by(db, key: bytes, amount: int) -> int:
    """Add `amount` to the integer at `key` (0 if absent), keeping its TTL.

    Redis announces INCR, DECR, INCRBY and DECRBY alike as `incrby`.
    """
    old = db.get_typed(key, bytes)
    current = 0 if old is None else parse_int(old)
    value = current + amount
    if not -(1 << 63) <= value < (1 << 63):
        raise CommandError(replies.OVERFLOW)
    db.store(key, b"%d" % value, keep_ttl=True)
    db.notify(ev.STRING, b"incrby", key)
    return value


@command(
    "incrbyfloat", 3, "write fast denyoom", specs=(("RW access update", 1, 0, 1),), acl="string"
)
def incrbyfloat(client, argv):
    """Add in 80-bit long double arithmetic and print like Redis (`%.17Lf`, zeros trimmed)."""
    db = client.db
    key = argv[1]
    old = db.get_typed(key, bytes)
    current = LongDouble.ZERO if old is None else parse_long_double(old)
    increment = parse_long_double(argv[2])
    if current is None or increment is None:
        raise CommandError(replies.NOT_FLOAT)
    value = current + increment
    if not value.is_finite():
        raise CommandError("ERR increment would produce NaN or Infinity")
    text = value.human()
    db.store(key, text, keep_ttl=True)
    db.notify(ev.STRING, b"incrbyfloat", key)
    return text


@command("append", 3, "write fast denyoom", specs=(("RW insert", 1, 0, 1),), acl="string")
def append(client, argv):
    db = client.db
    old = db.get_typed(argv[1], bytes) or b""
    _check_length(client, len(old) + len(argv[2]))
    value = old + argv[2]
    db.store(argv[1], value, keep_ttl=True)
    db.notify(ev.STRING, b"append", argv[1])
    return len(value)


def _check_length(client, length: int) -> None:
    """Refuse to build a string longer than proto-max-bulk-len, as Redis does."""
    if length > client.server.config["proto-max-bulk-len"]:
        raise CommandError("ERR string exceeds maximum allowed size (proto-max-bulk-len)")


@command("strlen", 2, "readonly fast", specs=(("RO", 1, 0, 1),), acl="string")
def strlen(client, argv):
    value = read_key(client.db, argv[1], bytes)
    return 0 if value is None else len(value)


@command("substr", 4, "readonly", acl="string")
def substr(client, argv):
    """SUBSTR key start end: GETRANGE's old name, still served by Redis."""
    return getrange(client, argv)


@command("getrange", 4, "readonly", acl="string")
def getrange(client, argv):
    start, end = parse_int(argv[2]), parse_int(argv[3])
    value = read_key(client.db, argv[1], bytes) or b""
    n = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(0, n + start)
    if end < 0:
        end = max(0, n + end)
    end = min(end, n - 1)
    if start > end or n == 0:
        return b""
    return value[start : end + 1]


@command("setrange", 4, "write denyoom", acl="string")
def setrange(client, argv):
    db = client.db
    _, key, raw, patch = argv
    offset = parse_int(raw)
    if offset < 0:
        raise CommandError("ERR offset is out of range")
    old = db.get_typed(key, bytes)
    if not patch:
        return len(old or b"")
    _check_length(client, offset + len(patch))
    old = old or b""
    value = b"".join(
        [old[:offset], bytes(max(0, offset - len(old))), patch, old[offset + len(patch) :]]
    )
    db.store(key, value, keep_ttl=True)
    db.notify(ev.STRING, b"setrange", key)
    return len(value)


# ------------------------------------------------------------ LCS


@command("lcs", -3, "readonly", keys=(1, 2, 1), acl="string")
def lcs(client, argv):
    """LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the longest common subsequence.

    Missing keys count as empty strings. IDX replies the matching ranges, last first.
    """
    db = client.db
    a, b = read_key(db, argv[1]), read_key(db, argv[2])
    if (a is not None and type(a) is not bytes) or (b is not None and type(b) is not bytes):
        raise CommandError("ERR The specified keys must contain string values")
    a, b = a or b"", b or b""
    getlen, getidx, minmatchlen, withmatchlen = _lcs_options(argv[3:])
    if (len(a) + 1) * (len(b) + 1) * 4 > client.server.config["proto-max-bulk-len"]:
        raise CommandError(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
        )
    table = LcsTable(a, b)
    if getlen and not getidx:
        return table.length(len(a), len(b))
    text, matches = _lcs_walk(a, b, table, minmatchlen, withmatchlen)
    if getidx:
        return {b"matches": matches, b"len": table.length(len(a), len(b))}
    return text


def _lcs_options(options: list[bytes]) -> tuple[bool, bool, int, bool]:
    getlen = getidx = withmatchlen = False
    minmatchlen = 0
    j = 0
    while j < len(options):
        option = options[j].lower()
        if option == b"idx":
            getidx = True
        elif option == b"len":
            getlen = True
        elif option == b"withmatchlen":
            withmatchlen = True
        elif option == b"minmatchlen" and j + 1 < len(options):
            minmatchlen = max(0, parse_int(options[j + 1]))
            j += 1
        else:
            raise CommandError(replies.SYNTAX)
        j += 1
    if getidx and getlen:
        raise CommandError("ERR If you want both the length and indexes, please just use IDX.")
    return getlen, getidx, minmatchlen, withmatchlen


class LcsTable:
    """LCS lengths of every a[:i], b[:j], kept as one bit vector per row (Hyyrö's algorithm).

    Row i has a zero bit at j where LCS(a[:i], b[:j + 1]) exceeds LCS(a[:i], b[:j]), so
    a cell is a popcount: n * m / 64 word operations instead of Redis's n * m cells.
    """

    def __init__(self, a: bytes, b: bytes) -> None:
        ones = (1 << len(b)) - 1
        matches = {}
        for j, y in enumerate(b):
            matches[y] = matches.get(y, 0) | 1 << j
        row = ones
        self.rows = [row]
        for x in a:
            u = row & matches.get(x, 0)
            row = ((row + u) | (row - u)) & ones
            self.rows.append(row)

    def length(self, i: int, j: int) -> int:
        """LCS(a[:i], b[:j])."""
        return j - (self.rows[i] & ((1 << j) - 1)).bit_count()


def _lcs_walk(
    a: bytes, b: bytes, table: LcsTable, minmatchlen: int, withmatchlen: bool
) -> tuple[bytes, list]:
    """The LCS text and its matching ranges [[a_start, a_end], [b_start, b_end](, len)], from the end."""
    text = bytearray()
    matches = []
    span = None  # the current run of matches: [a_start, a_end, b_start, b_end]
    i, j = len(a), len(b)
    while i > 0 and j > 0:
        if a[i - 1] == b[j - 1]:
            text.append(a[i - 1])
            if span is None:
                span = [i - 1, i - 1, j - 1, j - 1]
            else:
                span[0], span[2] = (
                    i - 1,
                    j - 1,
                )  # a mismatch always closes a run: this one continues it
            emit = i == 1 or j == 1
            i, j = i - 1, j - 1
        else:
            if table.length(i - 1, j) > table.length(i, j - 1):
                i -= 1
            else:
                j -= 1
            emit = span is not None
        if emit:
            length = span[1] - span[0] + 1
            if length >= minmatchlen:
                matches.append(
                    [[span[0], span[1]], [span[2], span[3]]] + ([length] if withmatchlen else [])
                )
            span = None
    text.reverse()
    return bytes(text), matches
