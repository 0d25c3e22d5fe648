"""Redis's serialisation primitives, byte for byte: CRC-64, LZF, listpack, intset, the
ziplist and zipmap of older RDB files, and the RDB length and string encodings.

Encoders produce exactly the bytes Redis 7.0 produces for the same input (LZF as Redis's
lzf_compress with a clean hash table). Decoders are strict: anything malformed raises
`BadData`, never another exception, so a caller can turn any corrupt input into one error.
"""

from __future__ import annotations

import itertools
import re
import struct

_INT = re.compile(rb"-?[1-9][0-9]{0,19}|0")
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class BadData(Exception):
    """The payload is not something Redis would load (RESTORE's "Bad data format")."""


# ---------------------------------------------------------------- CRC-64 (Jones, reflected)


def _crc_table() -> list[int]:
    poly, table = 0x95AC9329AC4BC9B5, []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc64(data: bytes, crc: int = 0) -> int:
    """Redis's crc64 (crc64_jones as in crc64.c): crc64(b"123456789") == 0xE9C6D914C4B8D9CA."""
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


# ---------------------------------------------------------------- LZF


def lzf_compress(data: bytes, out_len: int) -> bytes | None:
    """lzf_compress of Redis's lzf_c.c (HLOG 16, VERY_FAST): the compressed bytes, or None
    when they would not fit in `out_len` bytes."""
    n = len(data)
    if n < 3 or not out_len:
        return None
    htab: dict[int, int] = {}
    out = bytearray(b"\0")  # the pending literal run's length byte
    lit = ip = 0
    hval = (data[0] << 8) | data[1]
    while ip < n - 2:
        hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFF
        slot = ((hval >> 8) - hval * 5) & 0xFFFF
        ref = htab.get(slot)
        htab[slot] = ip
        if (
            ref is not None
            and ip - ref - 1 < 8192
            and ref > 0
            and data[ref + 2] == data[ip + 2]
            and data[ref] == data[ip]
            and data[ref + 1] == data[ip + 1]
        ):
            off = ip - ref - 1
            length = 2
            maxlen = min(n - ip - length, 264)
            if len(out) + 4 >= out_len and len(out) - (not lit) + 4 >= out_len:
                return None
            if lit:
                out[-lit - 1] = lit - 1
            else:
                out.pop()
            length = _match_length(data, ref, ip, maxlen)
            length -= 2
            ip += 1
            if length < 7:
                out.append((off >> 8) + (length << 5))
            else:
                out.append((off >> 8) + (7 << 5))
                out.append(length - 7)
            out.append(off & 0xFF)
            lit = 0
            out.append(0)
            ip += length + 1
            if ip >= n - 2:
                break
            ip -= 2
            hval = (data[ip] << 8) | data[ip + 1]
            for _ in range(2):
                hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFF
                htab[((hval >> 8) - hval * 5) & 0xFFFF] = ip
                ip += 1
        else:
            if len(out) >= out_len:
                return None
            lit += 1
            out.append(data[ip])
            ip += 1
            if lit == 32:
                out[-lit - 1] = lit - 1
                lit = 0
                out.append(0)
    if len(out) + 3 > out_len:
        return None
    while ip < n:
        lit += 1
        out.append(data[ip])
        ip += 1
        if lit == 32:
            out[-lit - 1] = lit - 1
            lit = 0
            out.append(0)
    if lit:
        out[-lit - 1] = lit - 1
    else:
        out.pop()
    return bytes(out)


def _match_length(data: bytes, ref: int, ip: int, maxlen: int) -> int:
    """The match length lzf_compress's loop arrives at (its unrolled part included)."""
    length = 2
    if maxlen > 16:
        for _ in range(16):
            length += 1
            if data[ref + length] != data[ip + length]:
                return length
    length += 1
    while length < maxlen and data[ref + length] == data[ip + length]:
        length += 1
    return length


def lzf_decompress(data: bytes, out_len: int) -> bytes:
    """lzf_decompress: exactly `out_len` bytes back, or BadData."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        ctrl = data[i]
        i += 1
        if ctrl < 32:
            run = ctrl + 1
            if len(out) + run > out_len or i + run > n:
                raise BadData("Invalid LZF compressed string")
            out += data[i : i + run]
            i += run
            continue
        length = ctrl >> 5
        if length == 7:
            if i >= n:
                raise BadData("Invalid LZF compressed string")
            length += data[i]
            i += 1
        if i >= n:
            raise BadData("Invalid LZF compressed string")
        ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
        i += 1
        length += 2
        if ref < 0 or len(out) + length > out_len:
            raise BadData("Invalid LZF compressed string")
        for k in range(length):
            out.append(out[ref + k])
    if len(out) != out_len:
        raise BadData("Invalid LZF compressed string")
    return bytes(out)


# ---------------------------------------------------------------- RDB lengths and strings


def encode_len(n: int) -> bytes:
    """rdbSaveLen: 6-bit, 14-bit, 32-bit or 64-bit big-endian length."""
    if n < 64:
        return bytes((n,))
    if n < 16384:
        return bytes((0x40 | (n >> 8), n & 0xFF))
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + (n & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")


def encode_int_string(raw: bytes) -> bytes | None:
    """rdbTryIntegerEncoding: a short canonical integer as RDB_ENC_INT8/16/32, else None."""
    if len(raw) > 11 or not _INT.fullmatch(raw):
        return None
    value = int(raw)
    if -128 <= value <= 127:
        return b"\xc0" + value.to_bytes(1, "little", signed=True)
    if -32768 <= value <= 32767:
        return b"\xc1" + value.to_bytes(2, "little", signed=True)
    if -(1 << 31) <= value < 1 << 31:
        return b"\xc2" + value.to_bytes(4, "little", signed=True)
    return None


def encode_string(raw: bytes, compress: bool = True) -> bytes:
    """rdbSaveRawString: integer encoding, else LZF (`compress`, over 20 bytes), else verbatim."""
    n = len(raw)
    if n <= 11:
        encoded = encode_int_string(raw)
        if encoded is not None:
            return encoded
    if compress and n > 20:
        packed = lzf_compress(raw, n - 4)
        if packed:
            return b"\xc3" + encode_len(len(packed)) + encode_len(n) + packed
    return encode_len(n) + raw


class Reader:
    """A cursor over a payload; every short read or bad encoding raises BadData."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def read(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise BadData("short read")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise BadData("short read")
        self.pos += 1
        return self.data[self.pos - 1]

    def length(self) -> tuple[int, bool]:
        """rdbLoadLen: (length, is-encoded)."""
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return int.from_bytes(self.read(4), "big"), False
        if first == 0x81:
            return int.from_bytes(self.read(8), "big"), False
        raise BadData("unknown length encoding")

    def plain_len(self) -> int:
        n, encoded = self.length()
        if encoded:
            raise BadData("unexpected encoded length")
        return n

    def string(self) -> bytes:
        """rdbGenericLoadStringObject: a verbatim, integer or LZF string."""
        n, encoded = self.length()
        if not encoded:
            return self.read(n)
        if n == 0:
            return b"%d" % int.from_bytes(self.read(1), "little", signed=True)
        if n == 1:
            return b"%d" % int.from_bytes(self.read(2), "little", signed=True)
        if n == 2:
            return b"%d" % int.from_bytes(self.read(4), "little", signed=True)
        if n == 3:
            clen, out_len = self.plain_len(), self.plain_len()
            if out_len > 1 << 32:
                raise BadData("LZF string too long")
            return lzf_decompress(self.read(clen), out_len)
        raise BadData("unknown string encoding")

    def u64(self) -> int:
        return int.from_bytes(self.read(8), "little")


# ---------------------------------------------------------------- listpack


def _lp_int(value: int) -> bytes:
    """An integer listpack element (encoding and back-length)."""
    if 0 <= value <= 127:
        return bytes((value, 1))
    if -4096 <= value <= 4095:
        v = value & 0x1FFF
        return bytes((0xC0 | (v >> 8), v & 0xFF, 2))
    if -32768 <= value <= 32767:
        return b"\xf1" + (value & 0xFFFF).to_bytes(2, "little") + b"\x03"
    if -8388608 <= value <= 8388607:
        return b"\xf2" + (value & 0xFFFFFF).to_bytes(3, "little") + b"\x04"
    if -(1 << 31) <= value < 1 << 31:
        return b"\xf3" + (value & 0xFFFFFFFF).to_bytes(4, "little") + b"\x05"
    return b"\xf4" + (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little") + b"\x09"


def _backlen(n: int) -> bytes:
    if n <= 127:
        return bytes((n,))
    if n < 16383:
        return bytes((n >> 7, (n & 127) | 128))
    if n < 2097151:
        return bytes((n >> 14, ((n >> 7) & 127) | 128, (n & 127) | 128))
    if n < 268435455:
        return bytes((n >> 21, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128, (n & 127) | 128))
    return bytes(
        (n >> 28, ((n >> 21) & 127) | 128, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128,
         (n & 127) | 128)
    )  # fmt: skip


def lp_entry(raw: bytes) -> bytes:
    """lpAppend's element for `raw`: an integer when lpStringToInt64 accepts it."""
    if len(raw) <= 20 and _INT.fullmatch(raw):
        value = int(raw)
        if INT64_MIN <= value <= INT64_MAX:
            return _lp_int(value)
    n = len(raw)
    if n < 64:
        head = bytes((0x80 | n,))
    elif n < 4096:
        head = bytes((0xE0 | (n >> 8), n & 0xFF))
    else:
        head = b"\xf0" + n.to_bytes(4, "little")
    return head + raw + _backlen(len(head) + n)


def lp_int_entry(value: int) -> bytes:
    """lpAppendInteger's element (a 64-bit signed value)."""
    value &= 0xFFFFFFFFFFFFFFFF
    return _lp_int(value - (1 << 64) if value > INT64_MAX else value)


def lp_pack(entries: list[bytes]) -> bytes:
    """A listpack of already-encoded elements (header, elements, end byte)."""
    body = b"".join(entries)
    count = min(len(entries), 65535)
    return struct.pack("<IH", len(body) + 7, count) + body + b"\xff"


def listpack(items) -> bytes:
    """A listpack of byte strings, each encoded as lpAppend does."""
    return lp_pack([lp_entry(raw) for raw in items])


def lp_items(blob: bytes) -> list:
    """The elements of a listpack (bytes, or int for integer-encoded ones); BadData if it
    is not a well-formed one."""
    if len(blob) < 7 or blob[-1] != 0xFF:
        raise BadData("listpack header")
    total, count = struct.unpack_from("<IH", blob)
    if total != len(blob):
        raise BadData("listpack size")
    items: list = []
    pos, end = 6, len(blob) - 1
    while pos < end:
        start = pos
        first = blob[pos]
        if first < 0x80:
            item: bytes | int = first
            pos += 1
        elif first < 0xC0:
            n = first & 0x3F
            item = blob[pos + 1 : pos + 1 + n]
            pos += 1 + n
        elif first < 0xE0:
            v = ((first & 0x1F) << 8) | _at(blob, pos + 1, end)
            item = v - 8192 if v >= 4096 else v
            pos += 2
        elif first < 0xF0:
            n = ((first & 0x0F) << 8) | _at(blob, pos + 1, end)
            item = blob[pos + 2 : pos + 2 + n]
            pos += 2 + n
        else:
            width = {0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}.get(first)
            if first == 0xF0:
                if pos + 5 > end:
                    raise BadData("listpack entry")
                n = int.from_bytes(blob[pos + 1 : pos + 5], "little")
                item = blob[pos + 5 : pos + 5 + n]
                pos += 5 + n
            elif width is not None:
                item = int.from_bytes(blob[pos + 1 : pos + 1 + width], "little", signed=True)
                pos += 1 + width
            else:
                raise BadData("listpack encoding")
        if pos > end:
            raise BadData("listpack entry")
        back = _backlen(pos - start)
        if blob[pos : pos + len(back)] != back:
            raise BadData("listpack backlen")
        pos += len(back)
        items.append(item)
    if pos != end or (count != 65535 and count != len(items)):
        raise BadData("listpack count")
    return items


def _at(blob: bytes, pos: int, end: int) -> int:
    if pos >= end:
        raise BadData("listpack entry")
    return blob[pos]


def as_bytes(item) -> bytes:
    """A decoded listpack/ziplist element as the string Redis gives back for it."""
    return item if type(item) is bytes else b"%d" % item


# ---------------------------------------------------------------- intset


def intset(values: list[int]) -> bytes:
    """An intset blob of these (sorted, distinct) integers, at the narrowest width."""
    low, high = min(values), max(values)
    if low >= -32768 and high <= 32767:
        width, code = 2, "h"
    elif low >= -(1 << 31) and high < 1 << 31:
        width, code = 4, "i"
    else:
        width, code = 8, "q"
    return struct.pack(f"<II{len(values)}{code}", width, len(values), *values)


def intset_values(blob: bytes) -> list[int]:
    """An intset's integers; BadData unless well formed, sorted and distinct."""
    if len(blob) < 8:
        raise BadData("intset header")
    width, count = struct.unpack_from("<II", blob)
    code = {2: "h", 4: "i", 8: "q"}.get(width)
    if code is None or len(blob) != 8 + width * count or count == 0:
        raise BadData("intset size")
    values = list(struct.unpack_from(f"<{count}{code}", blob, 8))
    if any(a >= b for a, b in itertools.pairwise(values)):
        raise BadData("intset order")
    return values


# ---------------------------------------------------------------- ziplist and zipmap


def ziplist_items(blob: bytes) -> list:
    """A ziplist's elements (bytes or int); BadData if it is not a well-formed one."""
    if len(blob) < 11 or blob[-1] != 0xFF:
        raise BadData("ziplist header")
    total, tail, count = struct.unpack_from("<IIH", blob)
    if total != len(blob) or tail >= total:
        raise BadData("ziplist size")
    items: list = []
    pos, end, prev, last = 10, len(blob) - 1, 0, 10
    while pos < end:
        start = pos
        if blob[pos] < 254:
            prevlen = blob[pos]
            pos += 1
        elif blob[pos] == 254 and pos + 5 <= end:
            prevlen = int.from_bytes(blob[pos + 1 : pos + 5], "little")
            pos += 5
        else:
            raise BadData("ziplist prevlen")
        if prevlen != prev:
            raise BadData("ziplist prevlen")
        item, pos = _ziplist_value(blob, pos, end)
        items.append(item)
        prev, last = pos - start, start
    if pos != end or (items and tail != last) or (count != 65535 and count != len(items)):
        raise BadData("ziplist count")
    return items


def _ziplist_value(blob: bytes, pos: int, end: int) -> tuple:
    enc = _at(blob, pos, end)
    kind = enc >> 6
    if kind == 0:
        n, pos = enc & 0x3F, pos + 1
    elif kind == 1:
        n, pos = ((enc & 0x3F) << 8) | _at(blob, pos + 1, end), pos + 2
    elif kind == 2:
        if enc != 0x80 or pos + 5 > end:
            raise BadData("ziplist encoding")
        n, pos = int.from_bytes(blob[pos + 1 : pos + 5], "big"), pos + 5
    else:
        widths = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}
        if enc in widths:
            w = widths[enc]
            if pos + 1 + w > end:
                raise BadData("ziplist entry")
            return int.from_bytes(blob[pos + 1 : pos + 1 + w], "little", signed=True), pos + 1 + w
        if 0xF1 <= enc <= 0xFD:
            return (enc & 0x0F) - 1, pos + 1
        raise BadData("ziplist encoding")
    if pos + n > end:
        raise BadData("ziplist entry")
    return blob[pos : pos + n], pos + n


def zipmap_pairs(blob: bytes) -> list[tuple[bytes, bytes]]:
    """A zipmap's field-value pairs; BadData if it is not a well-formed one."""
    if len(blob) < 2 or blob[-1] != 0xFF:
        raise BadData("zipmap header")
    pairs, pos, end = [], 1, len(blob) - 1
    while pos < end:
        field, pos = _zipmap_string(blob, pos, end, False)
        value, pos = _zipmap_string(blob, pos, end, True)
        pairs.append((field, value))
    if pos != end:
        raise BadData("zipmap end")
    return pairs


def _zipmap_string(blob: bytes, pos: int, end: int, value: bool) -> tuple[bytes, int]:
    first = _at(blob, pos, end)
    if first < 254:
        n, pos = first, pos + 1
    elif first == 254 and pos + 5 <= end:
        n, pos = int.from_bytes(blob[pos + 1 : pos + 5], "little"), pos + 5
    else:
        raise BadData("zipmap length")
    free = 0
    if value:
        free = _at(blob, pos, end)
        pos += 1
    if pos + n + free > end:
        raise BadData("zipmap entry")
    return blob[pos : pos + n], pos + n + free
