"""HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST (Redis 7.0's).

The values are strings in Redis's own HyperLogLog bytes (presence/store/hll.py), so GET,
SET, APPEND, DUMP and RESTORE see what redis-server would. A sparse value turns dense when
a register passes 32 or it would grow past `hll-sparse-max-bytes` (3000 by default).
PFCOUNT of one key caches the cardinality in the value's header, as Redis does.
"""

from __future__ import annotations

from presence.store import hll
from presence.store import notify as ev
from presence.store.commands import CommandError, command
from presence.store.commands.generic import read_key
from presence.store.hll import HLL, InvalidHLL
from presence.store.keyspace import WrongType
from presence.store.resp import OK, Status

# name          arity  flags
# pfadd          -2    write denyoom fast
# pfcount        -2    readonly
# pfmerge        -2    write denyoom
# pfdebug         3    write denyoom admin
# pfselftest      1    admin

_PFCOUNT_NOTE = (
    "RW because it may change the internal representation of the key, and propagate to replicas"
)


def _checked(value) -> bytes:
    """A looked-up value that must be a HyperLogLog: WRONGTYPE errors as Redis words them."""
    if type(value) is not bytes:
        raise WrongType()
    if not hll.is_hll(value):
        raise CommandError(hll.NOT_HLL)
    return value


def _max_bytes(client) -> int:
    return client.server.config["hll-sparse-max-bytes"]


@command(
    "pfadd", -2, "write denyoom fast", specs=(("RW insert", 1, 0, 1),), acl="hyperloglog"
)  # fmt: skip
def pfadd(client, argv):
    """Adds the specified elements to the specified HyperLogLog."""
    db, key = client.db, argv[1]
    value = db.get(key)
    if value is None:
        sketch, updated = HLL(hll.empty_sparse(), edit=True), 1
    else:
        sketch, updated = HLL(_checked(value), edit=True), 0
    try:
        updated += sketch.add(argv[2:], _max_bytes(client))
    except InvalidHLL as exc:
        if exc.args and exc.args[0]:  # Redis edited the value in place: kept, unannounced
            db.data[key] = sketch.value()
        raise CommandError(hll.INVALID) from None
    if not updated:
        sketch.unchanged()
        return 0
    sketch.invalidate()
    db.store(key, sketch.value(), keep_ttl=True)
    db.notify(ev.STRING, b"pfadd", key)
    return 1


@command(
    "pfcount",
    -2,
    "readonly",
    keys=(1, -1, 1),
    specs=(("RW access", 1, -1, 1, _PFCOUNT_NOTE),),
    acl="hyperloglog",
)
def pfcount(client, argv):
    """Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s)."""
    db = client.db
    if len(argv) > 2:
        values = []
        for key in argv[1:]:
            value = read_key(db, key)
            if value is not None:
                values.append(_checked(value))
        try:
            registers, _ = hll.merge_registers(values)
        except InvalidHLL:
            raise CommandError(hll.INVALID) from None
        return hll.estimate(hll.histogram(registers))
    value = read_key(db, argv[1])
    if value is None:
        return 0
    sketch = HLL(_checked(value))
    card = sketch.cached()
    if card is None:
        try:
            card = sketch.count()
        except InvalidHLL:
            raise CommandError(hll.INVALID) from None
        sketch.cache(card)
        db.store(argv[1], sketch.value(), keep_ttl=True)
    return card


@command(
    "pfmerge",
    -2,
    "write denyoom",
    keys=(1, -1, 1),
    specs=(("RW access insert", 1, 0, 1), ("RO access", 2, -1, 1)),
    acl="hyperloglog",
)
def pfmerge(client, argv):
    """Merge N different HyperLogLogs into a single one."""
    db, dest = client.db, argv[1]
    values = []
    for key in argv[1:]:
        value = read_key(db, key)
        if value is not None:
            values.append(_checked(value))
    try:
        registers, use_dense = hll.merge_registers(values)
    except InvalidHLL:
        raise CommandError(hll.INVALID) from None
    current = db.get(dest)
    sketch = HLL(hll.empty_sparse() if current is None else current, edit=True)
    if use_dense:
        sketch.to_dense()
    if sketch.sparse is not None:
        max_bytes = _max_bytes(client)
        for index in range(hll.REGISTERS):
            if registers[index]:
                sketch.set(index, registers[index], max_bytes)
                if sketch.sparse is None:
                    break
    if sketch.sparse is None:
        sketch.set_registers(registers)
    sketch.invalidate()
    db.store(dest, sketch.value(), keep_ttl=True)
    db.notify(ev.STRING, b"pfadd", dest)
    return OK


@command(
    "pfdebug",
    3,
    "write denyoom admin",
    keys=(2, 2, 1),
    specs=(("RW access", 2, 0, 1),),
    acl="hyperloglog",
)
def pfdebug(client, argv):
    """Internal commands for debugging HyperLogLog values"""
    db, key = client.db, argv[2]
    value = db.get(key)
    if value is None:
        raise CommandError("ERR The specified key does not exist")
    sketch = HLL(_checked(value), edit=True)
    sub = argv[1].lower()
    try:
        if sub == b"getreg":
            if sketch.encoding == hll.SPARSE:
                sketch.to_dense()
                db.store(key, sketch.value(), keep_ttl=True)
            return list(sketch.registers())
        if sub == b"decode":
            if sketch.sparse is None:
                raise CommandError("ERR HLL encoding is not sparse")
            return sketch.sparse.decode().encode()
        if sub == b"encoding":
            return Status("dense" if sketch.encoding == hll.DENSE else "sparse")
        if sub == b"todense":
            if sketch.encoding == hll.DENSE:
                return 0
            sketch.to_dense()
            db.store(key, sketch.value(), keep_ttl=True)
            return 1
    except InvalidHLL:
        raise CommandError(hll.INVALID) from None
    raise CommandError(
        f"ERR Unknown PFDEBUG subcommand '{argv[1].decode('utf-8', 'replace')}'"
    )  # fmt: skip


@command("pfselftest", 1, "admin", keys=(0, 0, 0), acl="hyperloglog")
def pfselftest(client, argv):
    """An internal command for testing HyperLogLog values"""
    failure = hll.self_test(_max_bytes(client))
    if failure is not None:
        raise CommandError(failure)
    return OK
