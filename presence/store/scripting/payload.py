"""FUNCTION DUMP payloads in Redis 7.0's format, so dumps move between the store and Redis.

A payload is, per library, the RDB opcode FUNCTION2 (245) and the library's code as an RDB
string; then the RDB version (2 bytes, little-endian) and a CRC-64 (Jones, reflected) of
all that, little-endian. Redis may LZF-compress a string; both forms are read, plain ones
are written.
"""

from __future__ import annotations

import struct

RDB_VERSION = 10  # Redis 7.0
OPCODE_FUNCTION2 = 245


def _crc64_table() -> list[int]:
    poly = 0x95AC9329AC4BC9B5  # 0xad93d23594c935a9, bit-reversed
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc64_table()


def crc64(data: bytes, crc: int = 0) -> int:
    """Redis's crc64 (crc64_jones): crc64(b"123456789") == 0xe9c6d914c4b8d9ca."""
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


class PayloadError(ValueError):
    """The payload is not a function dump; the message is Redis's reason."""


def dump(codes: list[bytes]) -> bytes:
    """A payload holding each library's code."""
    body = b"".join(bytes([OPCODE_FUNCTION2]) + _string(code) for code in codes)
    body += struct.pack("<H", RDB_VERSION)
    return body + struct.pack("<Q", crc64(body))


def load(payload: bytes) -> list[bytes]:
    """The library codes of a payload. Raises PayloadError (checksum, type, truncation)."""
    if len(payload) < 10:
        raise PayloadError("DUMP payload version or checksum are wrong")
    version = struct.unpack("<H", payload[-10:-8])[0]
    crc = struct.unpack("<Q", payload[-8:])[0]
    if version > RDB_VERSION or (crc != 0 and crc64(payload[:-8]) != crc):
        raise PayloadError("DUMP payload version or checksum are wrong")
    codes, pos, end = [], 0, len(payload) - 10
    while pos < end:
        if payload[pos] != OPCODE_FUNCTION2:
            raise PayloadError("given type is not a function")
        try:
            code, pos = _read_string(payload, pos + 1)
        except (IndexError, struct.error, ValueError):
            raise PayloadError("failed loading the given functions payload") from None
        codes.append(code)
    return codes


def _length(n: int) -> bytes:
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    if n < 1 << 32:
        return b"\x80" + struct.pack(">I", n)
    return b"\x81" + struct.pack(">Q", n)


def _string(data: bytes) -> bytes:
    return _length(len(data)) + data


def _read_length(buf: bytes, pos: int) -> tuple[int, bool, int]:
    """(length or encoding type, is it an encoding, next position)."""
    first = buf[pos]
    kind = first >> 6
    if kind == 0:
        return first & 0x3F, False, pos + 1
    if kind == 1:
        return ((first & 0x3F) << 8) | buf[pos + 1], False, pos + 2
    if kind == 3:
        return first & 0x3F, True, pos + 1
    if first == 0x80:
        return struct.unpack(">I", buf[pos + 1 : pos + 5])[0], False, pos + 5
    if first == 0x81:
        return struct.unpack(">Q", buf[pos + 1 : pos + 9])[0], False, pos + 9
    raise ValueError("bad length")


def _read_string(buf: bytes, pos: int) -> tuple[bytes, int]:
    value, encoded, pos = _read_length(buf, pos)
    if not encoded:
        if pos + value > len(buf):
            raise ValueError("truncated")
        return buf[pos : pos + value], pos + value
    if value in (0, 1, 2):  # an integer stored in 1, 2 or 4 bytes
        size = 1 << value
        number = int.from_bytes(buf[pos : pos + size], "little", signed=True)
        return str(number).encode(), pos + size
    if value == 3:  # LZF
        compressed, _, pos = _read_length(buf, pos)
        length, _, pos = _read_length(buf, pos)
        data = _lzf_decompress(buf[pos : pos + compressed], length)
        return data, pos + compressed
    raise ValueError("unknown string encoding")


def _lzf_decompress(data: bytes, length: int) -> bytes:
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        ctrl = data[i]
        i += 1
        if ctrl < 32:  # a literal run of ctrl + 1 bytes
            out += data[i : i + ctrl + 1]
            i += ctrl + 1
            continue
        size = ctrl >> 5
        if size == 7:
            size += data[i]
            i += 1
        ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
        i += 1
        if ref < 0:
            raise ValueError("bad back reference")
        for _ in range(size + 2):
            out.append(out[ref])
            ref += 1
    if len(out) != length:
        raise ValueError("bad length")
    return bytes(out)
