"""Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS over string values.

Bit 0 is the most significant bit of the first byte, as in Redis. Strings are immutable
bytes in the keyspace, so SETBIT stores a new value (keeping the TTL). BITCOUNT and
BITPOS share `bit_range`, Redis's reading of `start end [BYTE|BIT]`.
"""
from __future__ import annotations

from presence.store import notify as ev
from presence.store import replies
from presence.store.commands import CommandError, command, parse_int
from presence.store.commands.generic import read_key

# name          arity  flags
# setbit          4    write denyoom
# getbit          3    readonly fast
# bitcount       -2    readonly
# bitpos         -3    readonly

BAD_OFFSET = "ERR bit offset is not an integer or out of range"
BAD_BIT = "ERR bit is not an integer or out of range"


def parse_offset(client, raw: bytes) -> int:
    """A bit offset: 0 up to proto-max-bulk-len bytes' worth of bits."""
    offset = parse_int(raw, BAD_OFFSET)
    if offset < 0 or offset >> 3 >= client.server.config["proto-max-bulk-len"]:
        raise CommandError(BAD_OFFSET)
    return offset


@command("setbit", 4, "write denyoom")
def setbit(client, args):
    """SETBIT key offset 0|1: the bit's previous value; grows the string with zero bytes."""
    key = args[0]
    offset = parse_offset(client, args[1])
    if args[2] not in (b"0", b"1"):
        raise CommandError(BAD_BIT)
    db = client.db
    old = db.get_typed(key, bytes)
    value = bytearray(old or b"")
    byte, mask = offset >> 3, 0x80 >> (offset & 7)
    grown = byte >= len(value)
    if grown:
        value.extend(bytes(byte + 1 - len(value)))
    previous = int(bool(value[byte] & mask))
    if old is None or grown or previous != int(args[2]):
        value[byte] = value[byte] | mask if args[2] == b"1" else value[byte] & ~mask
        db.store(key, bytes(value), keep_ttl=True)
        db.notify(ev.STRING, b"setbit", key)
    return previous


@command("getbit", 3, "readonly fast")
def getbit(client, args):
    offset = parse_offset(client, args[1])
    value = read_key(client.db, args[0], bytes) or b""
    byte = offset >> 3
    return int(byte < len(value) and bool(value[byte] & (0x80 >> (offset & 7))))


@command("bitcount", -2, "readonly")
def bitcount(client, args):
    """BITCOUNT key [start end [BYTE|BIT]]: set bits in the range (0 without the key)."""
    value = read_key(client.db, args[0], bytes)
    if value is None:
        return 0
    if len(args) == 1:
        return int.from_bytes(value, "big").bit_count()
    if len(args) not in (3, 4):
        raise CommandError(replies.SYNTAX)
    start, end = parse_int(args[1]), parse_int(args[2])
    unit = _unit(args[3]) if len(args) == 4 else 8
    if start < 0 and end < 0 and start > end:
        return 0
    first, last = bit_range(len(value), start, end, unit)
    return sum(_bit(value, i) for i in range(first, last + 1)) if unit == 1 else \
        int.from_bytes(value[first >> 3:(last >> 3) + 1], "big").bit_count()


@command("bitpos", -3, "readonly")
def bitpos(client, args):
    """BITPOS key 0|1 [start [end [BYTE|BIT]]]: the first such bit's position, or -1.

    Looking for 0 without an explicit end, the string counts as padded with zeros: the
    answer may be the first bit past its end. A missing key is all zeros.
    """
    bit = parse_int(args[1])
    if bit not in (0, 1):
        raise CommandError("ERR The bit argument must be 1 or 0.")
    value = read_key(client.db, args[0], bytes)
    if value is None:
        return -1 if bit else 0
    if len(args) > 5:
        raise CommandError(replies.SYNTAX)
    start = parse_int(args[2]) if len(args) > 2 else 0
    unit = _unit(args[4]) if len(args) == 5 else 8
    end_given = len(args) > 3
    end = parse_int(args[3]) if end_given else -1
    first, last = bit_range(len(value), start, end, unit)
    for i in range(first, last + 1):
        if _bit(value, i) == bit:
            return i
    return last + 1 if first <= last and bit == 0 and not end_given else -1


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
