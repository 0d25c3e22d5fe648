"""String commands: GET, SET and its variants, counters, MGET/MSET, ranges.

GET and SET are the hot path of redis-benchmark and of the presence service: they
stay short and avoid allocation beyond the reply.
"""
from __future__ import annotations

from presence.store import notify as ev
from presence.store import replies
from presence.store.commands import CommandError, command, parse_float, parse_int
from presence.store.keyspace import WrongType
from presence.store.resp import OK, Double, format_double

# name          arity  flags
# get             2    readonly fast
# set            -3    write
# setnx           3    write fast       setex 4, psetex 4
# getset          3    write fast       getdel 2, getex -2
# mget           -2    readonly fast    mset -3, msetnx -3
# incr            2    write fast       decr 2, incrby 3, decrby 3, incrbyfloat 3
# append          3    write fast       strlen 2, getrange 4, setrange 4

MAX_STRING = 512 * 1024 * 1024


@command("get", 2, "readonly fast")
def get(client, args):
    value = client.db.get(args[0])
    if value is not None and type(value) is not bytes:
        raise WrongType()
    return value


@command("set", -3, "write")
def set_(client, args):
    """SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]."""
    db = client.db
    key = args[0]
    if len(args) == 2:
        db.store(key, args[1])
        if db.keyspace.notifier.flags:
            db.notify(ev.STRING, b"set", key)
        return OK
    nx, xx, get_old, keep_ttl, deadline = _set_options(args[2:], db.keyspace.now)
    old = db.get(key)
    if get_old and old is not None and type(old) is not bytes:
        raise WrongType()
    if (nx and old is not None) or (xx and old is None):
        return old if get_old else None
    db.store(key, args[1], keep_ttl=keep_ttl)
    db.notify(ev.STRING, b"set", key)
    if deadline is not None:
        db.set_deadline(key, deadline)
        db.notify(ev.GENERIC, b"expire", key)
    return old if get_old else OK


def _set_options(options: list[bytes], now: int):
    nx = xx = get_old = keep_ttl = False
    deadline = None
    has_expiry = False
    i = 0
    while i < len(options):
        o = options[i].lower()
        if o == b"nx" and not xx:
            nx = True
        elif o == b"xx" and not nx:
            xx = True
        elif o == b"get":
            get_old = True
        elif o == b"keepttl" and not has_expiry:
            keep_ttl = True
        elif o in (b"ex", b"px", b"exat", b"pxat") and not keep_ttl and not has_expiry and i + 1 < len(options):
            has_expiry = True
            amount = parse_int(options[i + 1])
            i += 1
            if amount <= 0:
                raise CommandError(replies.INVALID_EXPIRE.format("set"))
            ms = amount * 1000 if o in (b"ex", b"exat") else amount
            deadline = ms + now if o in (b"ex", b"px") else ms
            if deadline >= 1 << 63:
                raise CommandError(replies.INVALID_EXPIRE.format("set"))
        else:
            raise CommandError(replies.SYNTAX)
        i += 1
    return nx, xx, get_old, keep_ttl, deadline


@command("setnx", 3, "write fast")
def setnx(client, args):
    db = client.db
    if db.get(args[0]) is not None:
        return 0
    db.store(args[0], args[1])
    db.notify(ev.STRING, b"set", args[0])
    return 1


@command("setex", 4, "write")
def setex(client, args):
    return _setex(client, args, 1000, "setex")


@command("psetex", 4, "write")
def psetex(client, args):
    return _setex(client, args, 1, "psetex")


def _setex(client, args, unit_ms: int, name: str):
    key, raw, value = args
    amount = parse_int(raw)
    if amount <= 0 or amount * unit_ms >= 1 << 62:
        raise CommandError(replies.INVALID_EXPIRE.format(name))
    db = client.db
    db.store(key, value)
    db.notify(ev.STRING, b"set", key)
    db.set_deadline(key, db.keyspace.now + amount * unit_ms)
    db.notify(ev.GENERIC, b"expire", key)
    return OK


@command("getset", 3, "write fast")
def getset(client, args):
    db = client.db
    old = db.get_typed(args[0], bytes)
    db.store(args[0], args[1])
    db.notify(ev.STRING, b"set", args[0])
    return old


@command("getdel", 2, "write fast")
def getdel(client, args):
    db = client.db
    old = db.get_typed(args[0], bytes)
    if old is not None:
        db.delete(args[0])
        db.notify(ev.GENERIC, b"del", args[0])
    return old


@command("getex", -2, "write fast")
def getex(client, args):
    """GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]."""
    db = client.db
    key = args[0]
    persist = False
    deadline = None
    options = args[1:]
    if options:
        o = options[0].lower()
        if o == b"persist" and len(options) == 1:
            persist = True
        elif o in (b"ex", b"px", b"exat", b"pxat") and len(options) == 2:
            amount = parse_int(options[1])
            if amount <= 0:
                raise CommandError(replies.INVALID_EXPIRE.format("getex"))
            ms = amount * 1000 if o in (b"ex", b"exat") else amount
            deadline = ms + db.keyspace.now if o in (b"ex", b"px") else ms
        else:
            raise CommandError(replies.SYNTAX)
    value = db.get_typed(key, bytes)
    if value is None:
        return None
    if deadline is not None:
        if deadline <= db.keyspace.now:
            db.delete(key)
            db.notify(ev.GENERIC, b"del", key)
        else:
            db.set_deadline(key, deadline)
            db.notify(ev.GENERIC, b"expire", key)
    elif persist and db.persist(key):
        db.notify(ev.GENERIC, b"persist", key)
    return value


@command("mget", -2, "readonly fast", keys=(1, -1, 1))
def mget(client, args):
    db = client.db
    out = []
    for key in args:
        value = db.get(key)
        out.append(value if type(value) is bytes else None)
    return out


@command("mset", -3, "write", keys=(1, -1, 2))
def mset(client, args):
    if len(args) % 2:
        raise CommandError(replies.wrong_arity("mset"))
    db = client.db
    for i in range(0, len(args), 2):
        db.store(args[i], args[i + 1])
        db.notify(ev.STRING, b"set", args[i])
    return OK


@command("msetnx", -3, "write", keys=(1, -1, 2))
def msetnx(client, args):
    if len(args) % 2:
        raise CommandError(replies.wrong_arity("msetnx"))
    db = client.db
    if any(db.exists(args[i]) for i in range(0, len(args), 2)):
        return 0
    for i in range(0, len(args), 2):
        db.store(args[i], args[i + 1])
        db.notify(ev.STRING, b"set", args[i])
    return 1


@command("incr", 2, "write fast")
def incr(client, args):
    return _incr_by(client.db, args[0], 1, b"incrby")


@command("decr", 2, "write fast")
def decr(client, args):
    return _incr_by(client.db, args[0], -1, b"decrby")


@command("incrby", 3, "write fast")
def incrby(client, args):
    return _incr_by(client.db, args[0], parse_int(args[1]), b"incrby")


@command("decrby", 3, "write fast")
def decrby(client, args):
    amount = parse_int(args[1])
    if amount == -(1 << 63):
        raise CommandError("ERR decrement would overflow")
    return _incr_by(client.db, args[0], -amount, b"decrby")


def _incr_by(db, key: bytes, amount: int, event: bytes) -> int:
    """Add `amount` to the integer at `key` (0 if absent), keeping its TTL."""
    old = db.get_typed(key, bytes)
    current = 0 if old is None else parse_int(old)
    value = current + amount
    if not -(1 << 63) <= value < (1 << 63):
        raise CommandError(replies.OVERFLOW)
    db.store(key, b"%d" % value, keep_ttl=True)
    db.notify(ev.STRING, event, key)
    return value


@command("incrbyfloat", 3, "write fast")
def incrbyfloat(client, args):
    db = client.db
    key = args[0]
    old = db.get_typed(key, bytes)
    current = 0.0 if old is None else parse_float(old)
    value = current + parse_float(args[1])
    if value != value or value in (float("inf"), float("-inf")):
        raise CommandError("ERR increment would produce NaN or Infinity")
    text = format_double(Double(value))
    db.store(key, text, keep_ttl=True)
    db.notify(ev.STRING, b"incrbyfloat", key)
    return text


@command("append", 3, "write fast")
def append(client, args):
    db = client.db
    old = db.get_typed(args[0], bytes) or b""
    value = old + args[1]
    if len(value) > MAX_STRING:
        raise CommandError("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    db.store(args[0], value, keep_ttl=True)
    db.notify(ev.STRING, b"append", args[0])
    return len(value)


@command("strlen", 2, "readonly fast")
def strlen(client, args):
    value = client.db.get_typed(args[0], bytes)
    return 0 if value is None else len(value)


@command("getrange", 4, "readonly")
def getrange(client, args):
    start, end = parse_int(args[1]), parse_int(args[2])
    value = client.db.get_typed(args[0], bytes) or b""
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
    return value[start:end + 1]


@command("setrange", 4, "write")
def setrange(client, args):
    db = client.db
    key, raw, patch = args
    offset = parse_int(raw)
    if offset < 0:
        raise CommandError("ERR offset is out of range")
    old = db.get_typed(key, bytes)
    if not patch:
        return len(old or b"")
    if offset + len(patch) > MAX_STRING:
        raise CommandError("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    base = (old or b"").ljust(offset, b"\0")
    value = base[:offset] + patch + base[offset + len(patch):]
    db.store(key, value, keep_ttl=True)
    db.notify(ev.STRING, b"setrange", key)
    return len(value)

