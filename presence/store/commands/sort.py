"""SORT and SORT_RO: a list, set or sorted set's elements, sorted by their own value or
by keys a pattern names, with GET, LIMIT, ASC/DESC, ALPHA and STORE, as Redis 7.0 does.

SORT is `sort_generic` with STORE allowed; SORT_RO refuses STORE as a syntax error.
"""

from __future__ import annotations

from collections import deque

from presence.store import notify as ev
from presence.store import replies
from presence.store.blocking import serve_ready
from presence.store.commands import CommandError, command, unknown
from presence.store.commands.generic import read_key
from presence.store.keyspace import WrongType
from presence.store.numbers import parse_int, parse_sort_double
from presence.store.zset import ZSet

# name      arity  flags
# sort       -2    write denyoom movablekeys
# sort_ro    -2    readonly movablekeys

NOT_DOUBLE = "ERR One or more scores can't be converted into double"
_DENIED = "ERR {} option of SORT denied due to insufficient ACL permissions."
_LONG = (-(1 << 63), (1 << 63) - 1)


def sort_getkeys(argv: list[bytes]) -> list[tuple[int, tuple[str, ...]]]:
    """Redis's sortGetKeys: the key sorted, and the last STORE's destination (options
    skipped the way Redis skips them: LIMIT 2 arguments, GET and BY 1)."""
    found = [(1, ("RO", "access"))]
    store = None
    i = 2
    while i < len(argv):
        arg = argv[i].lower()
        if arg == b"limit":
            i += 2
        elif arg in (b"get", b"by"):
            i += 1
        elif arg == b"store" and i + 1 < len(argv):
            store = (i + 1, ("OW", "update"))
        i += 1
    return found + [store] if store else found


def sort_ro_getkeys(argv: list[bytes]) -> list[tuple[int, tuple[str, ...]]]:
    """Redis's sortROGetKeys: the key sorted."""
    return [(1, ("RO", "access"))]


@command(
    "sort",
    -2,
    "write denyoom movablekeys",
    keys=(1, 1, 1),
    specs=(
        ("RO access", 1, 0, 1),
        unknown(
            "RO access",
            notes="For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort",
        ),
        unknown(
            "OW update",
            notes="For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array",
        ),
    ),
    getkeys=sort_getkeys,
    acl="set sortedset list dangerous",
)
def sort(client, argv):
    return sort_generic(client, argv, readonly=False)


@command(
    "sort_ro",
    -2,
    "readonly movablekeys",
    keys=(1, 1, 1),
    specs=(
        ("RO access", 1, 0, 1),
        unknown(
            "RO access",
            notes="For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort",
        ),
    ),
    getkeys=sort_ro_getkeys,
    acl="set sortedset list dangerous",
)
def sort_ro(client, argv):
    return sort_generic(client, argv, readonly=True)


def sort_generic(client, argv, readonly: bool):
    """The sorted elements (or, with GET, what the patterns find for them); with STORE, the
    number of elements stored as a list at the destination (deleted when there are none)."""
    options = _parse(argv, readonly, client.user.reads_every_key())
    db = client.db
    value = read_key(db, argv[1])
    if value is not None and not isinstance(value, (deque, set, ZSet)):
        raise WrongType()
    if value is None:
        value = deque()
    by, dont_sort, alpha = options["by"], options["dont_sort"], options["alpha"]
    if dont_sort and type(value) is set and (options["store"] is not None or client.in_script):
        # a stored or scripted result must not follow hash order (Redis: for replication)
        dont_sort, alpha, by = False, True, None
    elements, start, end = _load(value, dont_sort, options)
    if not dont_sort:
        elements = _sorted(db, elements, by, alpha, options["desc"])
    chosen = elements[start : end + 1]
    gets = options["gets"]
    if gets:
        output = [_lookup(db, pattern, element) for element in chosen for pattern in gets]
    else:
        output = list(chosen)
    store = options["store"]
    if store is None:
        return output
    if output:
        db.store(store, deque(b"" if item is None else item for item in output))
        db.notify(ev.LIST, b"sortstore", store)
        serve_ready(client, db, store)
    elif db.delete(store):
        db.notify(ev.GENERIC, b"del", store)
    return len(output)


def _parse(argv, readonly: bool, every_key: bool) -> dict:
    """SORT's options. BY with a pattern and GET need a user who may read every key (Redis:
    the keys they touch are not known in advance)."""
    options: dict = {
        "desc": False,
        "alpha": False,
        "limit": (0, -1),
        "store": None,
        "by": None,
        "dont_sort": False,
        "gets": [],
    }
    i = 2
    while i < len(argv):
        word, left = argv[i].lower(), len(argv) - i - 1
        if word == b"asc":
            options["desc"] = False
        elif word == b"desc":
            options["desc"] = True
        elif word == b"alpha":
            options["alpha"] = True
        elif word == b"limit" and left >= 2:
            options["limit"] = (parse_int(argv[i + 1]), parse_int(argv[i + 2]))
            i += 2
        elif word == b"store" and left >= 1 and not readonly:
            options["store"] = argv[i + 1]
            i += 1
        elif word == b"by" and left >= 1:
            if b"*" in argv[i + 1] and not every_key:
                raise CommandError(_DENIED.format("BY"))
            options["by"] = argv[i + 1]
            options["dont_sort"] = b"*" not in argv[i + 1]  # a constant weight: no sorting
            i += 1
        elif word == b"get" and left >= 1:
            if not every_key:
                raise CommandError(_DENIED.format("GET"))
            options["gets"].append(argv[i + 1])
            i += 1
        else:
            raise CommandError(replies.SYNTAX)
        i += 1
    return options


def _load(value, dont_sort: bool, options: dict) -> tuple[list[bytes], int, int]:
    """The elements to sort, and the LIMIT's first and last index into them (Redis's
    clamping: an offset past the end selects nothing, a negative count everything after it)."""
    size = len(value)
    offset, count = options["limit"]
    start = min(max(offset, 0), size)
    count = min(max(count, -1), size)
    end = size - 1 if count < 0 else start + count - 1
    if start >= size:
        start, end = size - 1, size - 2
    end = min(end, size - 1)
    if type(value) is ZSet:
        members = [member for _, member in value.order]
        elements = members if dont_sort else list(value.scores)
    else:
        elements = list(value)
    if dont_sort and options["desc"] and type(value) is not set:  # native order, reversed
        elements.reverse()
    return elements, start, end


def _sorted(db, elements: list[bytes], by: bytes | None, alpha: bool, desc: bool) -> list[bytes]:
    """Sort as Redis's sortCompare: numbers (ties by the element's bytes) or bytes (ALPHA);
    by a pattern's values when BY names one (a missing one weighs 0, or sorts first)."""
    weights = elements if by is None else [_lookup(db, by, e) for e in elements]
    if alpha:
        if by is None:
            keyed = [(e, e) for e in elements]
        else:
            keyed = [((w is not None, w or b""), e) for w, e in zip(weights, elements, strict=True)]
        keyed.sort(key=lambda pair: pair[0], reverse=desc)
        return [e for _, e in keyed]
    scores = []
    for weight in weights:
        if weight is None:
            scores.append(0.0)
            continue
        score = parse_sort_double(weight)
        if score is None:
            raise CommandError(NOT_DOUBLE)
        scores.append(score)
    ordered = sorted(zip(scores, elements, strict=True), reverse=desc)
    return [e for _, e in ordered]


def _lookup(db, pattern: bytes, element: bytes) -> bytes | None:
    """What a BY/GET pattern names for `element` (Redis's lookupKeyByPattern): `#` is the
    element; the first `*` is replaced by it; `key->field` reads a hash field. None when
    there is no `*`, no such key, or a value of the wrong type."""
    if pattern == b"#":
        return element
    star = pattern.find(b"*")
    if star < 0:
        return None
    arrow = pattern.find(b"->", star + 1)
    field = None
    if arrow >= 0 and arrow + 2 < len(pattern):
        field = pattern[arrow + 2 :]
        pattern = pattern[:arrow]
    value = read_key(db, pattern[:star] + element + pattern[star + 1 :])
    if field is not None:
        return value.get(field) if type(value) is dict else None
    return value if type(value) is bytes else None
