"""Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD over string values.

Bit 0 is the most significant bit of the first byte, as in Redis. Strings are immutable
bytes in the keyspace, so SETBIT and BITFIELD store a new value (keeping the TTL).
BITCOUNT and BITPOS share `bit_range`, Redis's reading of `start end [BYTE|BIT]`;
BITFIELD and BITFIELD_RO share `bitfield_generic`.
"""

from __future__ import annotations

from functools import reduce
from operator import and_, or_, xor

from presence.store import notify as ev
from presence.store import replies
from presence.store.commands import CommandError, command
from presence.store.commands.generic import read_key
from presence.store.numbers import parse_int

# name          arity  flags
# setbit          4    write denyoom
# getbit          3    readonly fast
# bitcount       -2    readonly
# bitpos         -3    readonly
# bitop          -4    write denyoom
# bitfield       -2    write denyoom    bitfield_ro -2 (readonly fast)

BAD_OFFSET = "ERR bit offset is not an integer or out of range"
BAD_BIT = "ERR bit is not an integer or out of range"
BAD_FIELD_TYPE = (
    "ERR Invalid bitfield type. Use something like i16 u8. "
    "Note that u64 is not supported but i64 is."
)


def parse_offset(client, raw: bytes, field_bits: int = 0) -> int:
    """A bit offset: 0 up to proto-max-bulk-len bytes' worth of bits; `#n` is n fields of `field_bits`."""
    fields = field_bits and raw[:1] == b"#"
    offset = parse_int(raw[1:] if fields else raw, BAD_OFFSET) * (field_bits if fields else 1)
    if offset < 0 or offset >> 3 >= client.server.config["proto-max-bulk-len"]:
        raise CommandError(BAD_OFFSET)
    return offset


@command("setbit", 4, "write denyoom", specs=(("RW access update", 1, 0, 1),), acl="bitmap")
def setbit(client, argv):
    """SETBIT key offset 0|1: the bit's previous value; grows the string with zero bytes."""
    key = argv[1]
    offset = parse_offset(client, argv[2])
    if argv[3] not in (b"0", b"1"):
        raise CommandError(BAD_BIT)
    db = client.db
    old = db.get_typed(key, bytes)
    value = bytearray(old or b"")
    byte, mask = offset >> 3, 0x80 >> (offset & 7)
    grown = byte >= len(value)
    if grown:
        value.extend(bytes(byte + 1 - len(value)))
    previous = int(bool(value[byte] & mask))
    if old is None or grown or previous != int(argv[3]):
        value[byte] = value[byte] | mask if argv[3] == b"1" else value[byte] & ~mask
        db.store(key, bytes(value), keep_ttl=True)
        db.notify(ev.STRING, b"setbit", key)
    return previous


@command("getbit", 3, "readonly fast", acl="bitmap")
def getbit(client, argv):
    offset = parse_offset(client, argv[2])
    value = read_key(client.db, argv[1], bytes) or b""
    byte = offset >> 3
    return int(byte < len(value) and bool(value[byte] & (0x80 >> (offset & 7))))


@command("bitcount", -2, "readonly", acl="bitmap")
def bitcount(client, argv):
    """BITCOUNT key [start end [BYTE|BIT]]: set bits in the range (0 without the key)."""
    value = read_key(client.db, argv[1], bytes)
    if value is None:
        return 0
    if len(argv) == 2:
        return int.from_bytes(value, "big").bit_count()
    if len(argv) not in (4, 5):
        raise CommandError(replies.SYNTAX)
    start, end = parse_int(argv[2]), parse_int(argv[3])
    unit = _unit(argv[4]) if len(argv) == 5 else 8
    if start < 0 and end < 0 and start > end:
        return 0
    first, last = bit_range(len(value), start, end, unit)
    return (
        sum(_bit(value, i) for i in range(first, last + 1))
        if unit == 1
        else int.from_bytes(value[first >> 3 : (last >> 3) + 1], "big").bit_count()
    )


@command("bitpos", -3, "readonly", acl="bitmap")
def bitpos(client, argv):
    """BITPOS key 0|1 [start [end [BYTE|BIT]]]: the first such bit's position, or -1.

    Looking for 0 without an explicit end, the string counts as padded with zeros: the
    answer may be the first bit past its end. A missing key is all zeros.
    """
    bit = parse_int(argv[2])
    if bit not in (0, 1):
        raise CommandError("ERR The bit argument must be 1 or 0.")
    value = read_key(client.db, argv[1], bytes)
    if value is None:
        return -1 if bit else 0
    if len(argv) > 6:
        raise CommandError(replies.SYNTAX)
    start = parse_int(argv[3]) if len(argv) > 3 else 0
    unit = _unit(argv[5]) if len(argv) == 6 else 8
    end_given = len(argv) > 4
    end = parse_int(argv[4]) if end_given else -1
    first, last = bit_range(len(value), start, end, unit)
    for i in range(first, last + 1):
        if _bit(value, i) == bit:
            return i
    return last + 1 if first <= last and bit == 0 and not end_given else -1


_BITOPS = {b"and": and_, b"or": or_, b"xor": xor, b"not": None}


@command(
    "bitop",
    -4,
    "write denyoom",
    keys=(2, -1, 1),
    specs=(
        ("OW update", 2, 0, 1),
        ("RO access", 3, -1, 1),
    ),
    acl="bitmap",
)
def bitop(client, argv):
    """BITOP AND|OR|XOR|NOT destkey key [key ...]: the result's length; missing keys are zeros.

    Shorter inputs are padded with zero bytes; an empty result deletes `destkey`.
    """
    name = argv[1].lower()
    if name not in _BITOPS:
        raise CommandError(replies.SYNTAX)
    if name == b"not" and len(argv) != 4:
        raise CommandError("ERR BITOP NOT must be called with a single source key.")
    db = client.db
    sources = [read_key(db, key, bytes) or b"" for key in argv[3:]]
    size = max(map(len, sources))
    numbers = [int.from_bytes(value.ljust(size, b"\0"), "big") for value in sources]
    if name == b"not":
        result = numbers[0] ^ ((1 << size * 8) - 1)
    else:
        result = reduce(_BITOPS[name], numbers)
    target = argv[2]
    if size:
        db.store(target, result.to_bytes(size, "big"))
        db.notify(ev.STRING, b"set", target)
    elif db.delete(target):
        db.notify(ev.GENERIC, b"del", target)
    return size


def _unit(raw: bytes) -> int:
    """Bits per range index: 8 for BYTE, 1 for BIT."""
    unit = raw.lower()
    if unit not in (b"byte", b"bit"):
        raise CommandError(replies.SYNTAX)
    return 8 if unit == b"byte" else 1


def bit_range(length: int, start: int, end: int, unit: int) -> tuple[int, int]:
    """Inclusive bit positions [first, last] of `start end` in a string of `length` bytes.

    Negative indexes count from the end; the range is clamped to the string and is
    empty (first > last) when start passes end.
    """
    total = length * 8 // unit
    if start < 0:
        start = max(0, total + start)
    if end < 0:
        end = max(0, total + end)
    end = min(end, total - 1)
    if start > end:
        return 0, -1
    if unit == 1:
        return start, end
    return start * 8, end * 8 + 7


def _bit(value: bytes, i: int) -> int:
    return (value[i >> 3] >> (7 - (i & 7))) & 1


# ------------------------------------------------------------ BITFIELD


def bitfield_getkeys(argv: list[bytes]) -> list[tuple[int, tuple[str, ...]]]:
    """Redis's bitfieldGetKeys: read-only when every operation is GET (or OVERFLOW)."""
    i = 2
    while i < len(argv):
        op, rest = argv[i].lower(), len(argv) - i - 1
        if op == b"get" and rest >= 2:
            i += 3
        elif op == b"overflow" and rest >= 1:
            i += 2
        else:  # SET, INCRBY or a syntax error: not read-only
            return [(1, ("RW", "access", "update"))]
    return [(1, ("RO", "access"))]


@command(
    "bitfield",
    -2,
    "write denyoom",
    specs=(
        (
            "RW access update variable_flags",
            1,
            0,
            1,
            "This command allows both access and modification of the key",
        ),
    ),
    getkeys=bitfield_getkeys,
    acl="bitmap",
)
def bitfield(client, argv):
    """BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset incr] [OVERFLOW WRAP|SAT|FAIL]."""
    return bitfield_generic(client, argv[1:], readonly=False)


@command("bitfield_ro", -2, "readonly fast", acl="bitmap")
def bitfield_ro(client, argv):
    return bitfield_generic(client, argv[1:], readonly=True)


def bitfield_generic(client, args, readonly: bool) -> list:
    """One reply per GET/SET/INCRBY: the field, SET's old value, or nil when OVERFLOW FAIL refuses."""
    ops = _bitfield_ops(client, args[1:])
    db, key = client.db, args[0]
    if all(op[0] == b"get" for op in ops):
        value = read_key(db, key, bytes) or b""
        return [_get_field(value, signed, bits, offset) for _, signed, bits, offset, _, _ in ops]
    if readonly:
        raise CommandError("ERR BITFIELD_RO only supports the GET subcommand")
    old = db.get_typed(key, bytes)
    size = max(
        (offset + bits - 1 >> 3) + 1 for name, _, bits, offset, _, _ in ops if name != b"get"
    )
    value = bytearray(old or b"")
    grown = old is None or len(value) < size
    value.extend(bytes(max(0, size - len(value))))
    out, changes = [], 0
    for name, signed, bits, offset, number, overflow in ops:
        current = _get_field(value, signed, bits, offset)
        if name == b"get":
            out.append(current)
            continue
        new = _overflowed(
            number if name == b"set" else current + number, signed, bits, overflow, name == b"set"
        )
        if new is None:
            out.append(None)
            continue
        out.append(current if name == b"set" else new)
        _set_field(value, bits, offset, new)
        changes += grown or new != current
    if grown or changes:
        db.store(key, bytes(value), keep_ttl=True)
    if changes:
        db.notify(ev.STRING, b"setbit", key)
    return out


def _bitfield_ops(client, options: list[bytes]) -> list[tuple]:
    """(name, signed, bits, offset, number, overflow) per GET/SET/INCRBY, in order."""
    ops, overflow, j = [], b"wrap", 0
    while j < len(options):
        name, left = options[j].lower(), len(options) - j - 1
        if name == b"overflow" and left >= 1:
            overflow = options[j + 1].lower()
            if overflow not in (b"wrap", b"sat", b"fail"):
                raise CommandError("ERR Invalid OVERFLOW type specified")
            j += 2
            continue
        if not ((name == b"get" and left >= 2) or (name in (b"set", b"incrby") and left >= 3)):
            raise CommandError(replies.SYNTAX)
        signed, bits = _field_type(options[j + 1])
        offset = parse_offset(client, options[j + 2], bits)
        number = 0 if name == b"get" else parse_int(options[j + 3])
        ops.append((name, signed, bits, offset, number, overflow))
        j += 3 if name == b"get" else 4
    return ops


def _field_type(raw: bytes) -> tuple[bool, int]:
    """`i1`..`i64` or `u1`..`u63` (lower case only, as in Redis): (signed, bits)."""
    if raw[:1] not in (b"i", b"u"):
        raise CommandError(BAD_FIELD_TYPE)
    signed = raw[:1] == b"i"
    bits = parse_int(raw[1:], BAD_FIELD_TYPE)
    if not 1 <= bits <= (64 if signed else 63):
        raise CommandError(BAD_FIELD_TYPE)
    return signed, bits


def _overflowed(target: int, signed: bool, bits: int, overflow: bytes, is_set: bool) -> int | None:
    """`target` fitted into the field under OVERFLOW WRAP|SAT|FAIL (None: FAIL refused it)."""
    low, high = (-(1 << bits - 1), (1 << bits - 1) - 1) if signed else (0, (1 << bits) - 1)
    if is_set and not signed:
        target %= 1 << 64  # Redis reads SET's value into an unsigned 64-bit integer
    if low <= target <= high:
        return target
    if overflow == b"sat":
        return high if target > high else low
    if overflow == b"fail":
        return None
    target %= 1 << bits
    return target - (1 << bits) if signed and target > high else target


def _get_field(value, signed: bool, bits: int, offset: int) -> int:
    first, last = offset >> 3, (offset + bits - 1) >> 3
    chunk = int.from_bytes(bytes(value[first : last + 1]).ljust(last - first + 1, b"\0"), "big")
    field = (chunk >> ((last + 1) * 8 - offset - bits)) & ((1 << bits) - 1)
    return field - (1 << bits) if signed and field >> (bits - 1) else field


def _set_field(value: bytearray, bits: int, offset: int, field: int) -> None:
    first, last = offset >> 3, (offset + bits - 1) >> 3
    shift = (last + 1) * 8 - offset - bits
    mask = ((1 << bits) - 1) << shift
    chunk = int.from_bytes(value[first : last + 1], "big") & ~mask | (field << shift) & mask
    value[first : last + 1] = chunk.to_bytes(last - first + 1, "big")
