"""HyperLogLog as Redis 7.0 stores it (hyperloglog.c), sans-IO: bytes in, bytes out.

A HyperLogLog is a string value: a 16-byte header (`HYLL`, the encoding byte, three unused
bytes, the cached cardinality as 8 little-endian bytes whose top bit set means "stale")
then 16384 six-bit registers, either dense (12288 bytes, register i at bit 6*i, least
significant bit first) or sparse (ZERO / XZERO / VAL opcodes). Elements are hashed with
MurmurHash64A (seed 0xadc83b19) as Redis does, so the same elements give the same bytes:
GET, SET, DUMP and RESTORE move HyperLogLogs between the store and redis-server.

The sparse form is edited as Redis edits it, opcode by opcode (splits, then merges of
equal neighbours in a 5-opcode window), so that its bytes depend on the order of the
additions exactly as Redis's do. It is worked on as parallel lists (the first register,
value and run length of each opcode, its bytes), found by bisection; the parsed form of
the last sparse values seen is kept in a small cache keyed by their bytes. Register
arrays (one byte per register) are unpacked and packed with big-integer arithmetic, and
merged (MAX) all at once with a SWAR comparison, never register by register.
"""

from __future__ import annotations

import math
import random
import struct
from bisect import bisect_right

P = 14
REGISTERS = 1 << P  # 16384
Q = 64 - P
HEADER = 16
DENSE_BYTES = REGISTERS * 6 // 8  # 12288
DENSE_SIZE = HEADER + DENSE_BYTES
DENSE, SPARSE = 0, 1
MAGIC = b"HYLL"
SPARSE_VAL_MAX_VALUE = 32
SPARSE_VAL_MAX_LEN = 4
SPARSE_ZERO_MAX_LEN = 64
SPARSE_XZERO_MAX_LEN = 16384
ALPHA_INF = 0.721347520444481703680
SEED = 0xADC83B19
_M = 0xC6A4A7935BD1E995
_MASK64 = (1 << 64) - 1
_XZERO = -1  # `vals` entry of an XZERO opcode (0: ZERO, 1..32: VAL)
PROMOTE = 2  # Sparse.set: the register needs the dense form

NOT_HLL = "WRONGTYPE Key is not a valid HyperLogLog string value."
INVALID = "INVALIDOBJ Corrupted HLL object detected"


class InvalidHLL(Exception):
    """A sparse representation whose opcodes do not cover exactly 16384 registers. From
    `HLL.add`, `args[0]` counts the registers changed before the element that failed."""


_UNPACK = [struct.Struct(f"<{n}Q").unpack_from for n in range(64)]


def murmurhash64a(data: bytes, seed: int = SEED) -> int:
    """Redis's MurmurHash64A (endian-neutral: words read little-endian)."""
    n = len(data)
    h = (seed ^ (n * _M)) & _MASK64
    words = n >> 3
    if words:
        unpack_words = _UNPACK[words] if words < 64 else struct.Struct(f"<{words}Q").unpack_from
        for k in unpack_words(data):
            k = (k * _M) & _MASK64
            h = ((h ^ (((k ^ (k >> 47)) * _M) & _MASK64)) * _M) & _MASK64
    if n & 7:
        h = ((h ^ int.from_bytes(data[words << 3 :], "little")) * _M) & _MASK64
    h ^= h >> 47
    h = (h * _M) & _MASK64
    return h ^ (h >> 47)


def pattern(element: bytes) -> tuple[int, int]:
    """The register an element falls in and its run length (zeros + 1), as hllPatLen."""
    h = murmurhash64a(element)
    rest = (h >> P) | (1 << Q)
    return h & (REGISTERS - 1), (rest & -rest).bit_length()


def is_hll(value: bytes) -> bool:
    """Redis's isHLLObjectOrReply test: header, magic, a known encoding, the dense size."""
    if len(value) < HEADER or value[:4] != MAGIC or value[4] > SPARSE:
        return False
    return value[4] != DENSE or len(value) == DENSE_SIZE


def empty_sparse() -> bytes:
    """createHLLObject: a sparse HyperLogLog of one XZERO opcode, cache bits zero."""
    return MAGIC + bytes([SPARSE]) + bytes(11) + bytes([0x7F, 0xFF])


# ------------------------------------------------------------------ register arrays

_B3F = int.from_bytes(b"\x3f" * (REGISTERS // 4), "little")
_B03 = int.from_bytes(b"\x03" * (REGISTERS // 4), "little")
_B3C = int.from_bytes(b"\x3c" * (REGISTERS // 4), "little")
_B0F = int.from_bytes(b"\x0f" * (REGISTERS // 4), "little")
_B30 = int.from_bytes(b"\x30" * (REGISTERS // 4), "little")
_BC0 = int.from_bytes(b"\xc0" * (REGISTERS // 4), "little")
_BF0 = int.from_bytes(b"\xf0" * (REGISTERS // 4), "little")
_BFC = int.from_bytes(b"\xfc" * (REGISTERS // 4), "little")
_H80 = int.from_bytes(b"\x80" * REGISTERS, "little")
_QUARTER = REGISTERS // 4


def unpack(dense: bytes | bytearray) -> bytearray:
    """16384 registers, one byte each, from the 12288 dense bytes."""
    b0 = int.from_bytes(dense[0::3], "little")
    b1 = int.from_bytes(dense[1::3], "little")
    b2 = int.from_bytes(dense[2::3], "little")
    out = bytearray(REGISTERS)
    out[0::4] = (b0 & _B3F).to_bytes(_QUARTER, "little")
    out[1::4] = (((b0 >> 6) & _B03) | ((b1 << 2) & _B3C)).to_bytes(_QUARTER, "little")
    out[2::4] = (((b1 >> 4) & _B0F) | ((b2 << 4) & _B30)).to_bytes(_QUARTER, "little")
    out[3::4] = ((b2 >> 2) & _B3F).to_bytes(_QUARTER, "little")
    return out


def pack(registers: bytes | bytearray) -> bytearray:
    """The 12288 dense bytes of 16384 registers (each below 64)."""
    r0 = int.from_bytes(registers[0::4], "little")
    r1 = int.from_bytes(registers[1::4], "little")
    r2 = int.from_bytes(registers[2::4], "little")
    r3 = int.from_bytes(registers[3::4], "little")
    out = bytearray(DENSE_BYTES)
    out[0::3] = (r0 | ((r1 << 6) & _BC0)).to_bytes(_QUARTER, "little")
    out[1::3] = (((r1 >> 2) & _B0F) | ((r2 << 4) & _BF0)).to_bytes(_QUARTER, "little")
    out[2::3] = (((r2 >> 4) & _B03) | ((r3 << 2) & _BFC)).to_bytes(_QUARTER, "little")
    return out


def _max_int(x: int, y: int) -> int:
    """Byte-wise MAX of two register arrays read as little-endian integers (bytes < 128)."""
    mask = ((((x | _H80) - y) & _H80) >> 7) * 0xFF  # 0xff where x >= y
    return (x & mask) | (y & ~mask)


def maximum(a: bytes | bytearray, b: bytes | bytearray) -> bytes:
    """Register-wise MAX of two register arrays (values below 128)."""
    x, y = int.from_bytes(a, "little"), int.from_bytes(b, "little")
    return _max_int(x, y).to_bytes(REGISTERS, "little")


def histogram(registers: bytes | bytearray) -> list[int]:
    """How many registers hold each value (64 slots, as hllCount's reghisto)."""
    hist = [0] * 64
    seen = 0
    for value in range(64):
        found = registers.count(value)
        hist[value] = found
        seen += found
        if seen == len(registers):
            break
    return hist


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if previous == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1 - x) ** 2 * y
        if previous == z:
            return z / 3


def estimate(hist: list[int]) -> int:
    """hllCount's estimate from a register histogram (Ertl's improved estimator)."""
    m = float(REGISTERS)
    z = m * _tau((m - hist[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += hist[j]
        z *= 0.5
    z += m * _sigma(hist[0] / m)
    e = ALPHA_INF * m * m / z
    whole = int(e)
    return whole + 1 if e - whole >= 0.5 else whole  # llroundl


# ------------------------------------------------------------------ sparse opcodes

_ONE = [bytes([b]) for b in range(256)]
_LOW6 = bytes(b & 63 for b in range(256))
_VAL1 = [b""] + [_ONE[0x80 | ((v - 1) << 2)] for v in range(1, SPARSE_VAL_MAX_VALUE + 1)]


def _op_bytes(value: int, length: int) -> bytes:
    if value > 0:
        return _ONE[0x80 | ((value - 1) << 2) | (length - 1)]
    if value == 0:
        return _ONE[length - 1]
    return bytes([0x40 | ((length - 1) >> 8), (length - 1) & 0xFF])


class Sparse:
    """A sparse body as opcode lists; `registers` is None when they do not cover exactly
    16384 registers (a corrupted value: counting or merging it is INVALIDOBJ)."""

    __slots__ = ("starts", "vals", "lens", "chunks", "nbytes", "total", "registers")

    def __init__(self, body: bytes) -> None:
        starts: list[int] = []
        vals: list[int] = []
        lens: list[int] = []
        chunks: list[bytes] = []
        registers = bytearray(REGISTERS)
        i, n, first, ok = 0, len(body), 0, True
        while i < n:
            b = body[i]
            if b & 0x80:
                value, length = ((b >> 2) & 31) + 1, (b & 3) + 1
                if ok and first + length <= REGISTERS:
                    registers[first : first + length] = _ONE[value] * length
                else:
                    ok = False
                chunk = _ONE[b]
                i += 1
            elif b & 0x40:
                second = body[i + 1] if i + 1 < n else 0  # Redis reads the sds terminator
                value, length = _XZERO, (((b & 0x3F) << 8) | second) + 1
                chunk = body[i : i + 2]
                i += 2
            else:
                value, length = 0, (b & 0x3F) + 1
                chunk = _ONE[b]
                i += 1
            starts.append(first)
            vals.append(value)
            lens.append(length)
            chunks.append(chunk)
            first += length
        self.starts, self.vals, self.lens, self.chunks = starts, vals, lens, chunks
        self.nbytes, self.total = n, first
        self.registers: bytearray | None = registers if ok and first == REGISTERS else None

    def body(self) -> bytes:
        return b"".join(self.chunks)

    def set(self, index: int, count: int, max_bytes: int) -> int:
        """hllSparseSet: 1 if the register grew, 0 if not, -1 for a corrupted body,
        PROMOTE when the value or the grown size needs the dense form."""
        if count > SPARSE_VAL_MAX_VALUE:
            return PROMOTE
        starts, vals, lens, chunks = self.starts, self.vals, self.lens, self.chunks
        i = bisect_right(starts, index) - 1
        if i < 0 or index >= starts[i] + lens[i]:
            return -1
        value, runlen, first = vals[i], lens[i], starts[i]
        if value > 0 and value >= count:
            return 0
        if runlen == 1 and value >= 0:  # a VAL or ZERO of one register: rewritten in place
            vals[i] = count
            chunks[i] = _VAL1[count]
        else:
            left, right = index - first, first + runlen - 1 - index
            if value <= 0:  # split a ZERO / XZERO run around the register
                delta = (left > 0) + (left > SPARSE_ZERO_MAX_LEN) + (right > 0)
                delta += (right > SPARSE_ZERO_MAX_LEN) + 1 - (2 if value else 1)
                lv = _XZERO if left > SPARSE_ZERO_MAX_LEN else 0
                rv = _XZERO if right > SPARSE_ZERO_MAX_LEN else 0
            else:  # split a VAL run
                delta = (left > 0) + (right > 0)
                lv = rv = value
            if delta > 0 and HEADER + self.nbytes + delta > max_bytes:
                return PROMOTE
            new_vals, new_lens, new_chunks, new_starts = [count], [1], [_VAL1[count]], [index]
            if left:
                new_vals.insert(0, lv)
                new_lens.insert(0, left)
                new_chunks.insert(0, _op_bytes(lv, left))
                new_starts.insert(0, first)
            if right:
                new_vals.append(rv)
                new_lens.append(right)
                new_chunks.append(_op_bytes(rv, right))
                new_starts.append(index + 1)
            if value == _XZERO and len(chunks[i]) == 1:
                self._cut_last_byte(new_vals, new_lens, new_chunks, new_starts)
            j = i + 1
            starts[i:j] = new_starts
            vals[i:j] = new_vals
            lens[i:j] = new_lens
            chunks[i:j] = new_chunks
            self.nbytes += delta
        if self.registers is not None and self.total == REGISTERS:
            self.registers[index] = count
        else:
            self.registers = None
        self._merge_from(i - 1 if i > 0 else 0)
        return 1

    def _cut_last_byte(self, vals: list, lens: list, chunks: list, starts: list) -> None:
        """Splitting an XZERO cut short at the end of the string (its second byte was the
        string's terminator): Redis counts it 2 bytes long, so the new opcodes' last byte
        lands past the string's new end and is lost."""
        if len(chunks[-1]) == 2:
            chunks[-1] = chunks[-1][:1]
            return
        self.total -= lens[-1]
        del vals[-1], lens[-1], chunks[-1], starts[-1]

    def _merge_from(self, p: int) -> None:
        """Merge equal adjacent VAL opcodes, scanning at most 5 opcodes from `p`."""
        vals, lens, chunks = self.vals, self.lens, self.chunks
        scan, n = 5, len(vals)
        while p < n and scan:
            scan -= 1
            value = vals[p]
            if value <= 0:
                p += 1
                continue
            if p + 1 < n and vals[p + 1] == value:
                length = lens[p] + lens[p + 1]
                if length <= SPARSE_VAL_MAX_LEN:
                    lens[p] = length
                    chunks[p] = _ONE[0x80 | ((value - 1) << 2) | (length - 1)]
                    del vals[p + 1], lens[p + 1], chunks[p + 1], self.starts[p + 1]
                    self.nbytes -= 1
                    n -= 1
                    continue
            p += 1

    def decode(self) -> str:
        """PFDEBUG DECODE's text: `z:len`, `Z:len`, `v:value,len` per opcode."""
        out = []
        for value, length in zip(self.vals, self.lens, strict=True):
            if value == 0:
                out.append(f"z:{length}")
            elif value == _XZERO:
                out.append(f"Z:{length}")
            else:
                out.append(f"v:{value},{length}")
        return " ".join(out)


_CACHE: dict[bytes, Sparse] = {}
SPARSE_CACHE = 64  # parsed sparse bodies kept, by their bytes (a few MB at most)


def _remember(body: bytes, sparse: Sparse) -> None:
    if len(_CACHE) >= SPARSE_CACHE:
        del _CACHE[next(iter(_CACHE))]
    _CACHE[body] = sparse


def parse_sparse(body: bytes, own: bool = False) -> Sparse:
    """The opcode lists of a sparse body; `own` takes it out of the cache (to edit it)."""
    sparse = _CACHE.pop(body, None) if own else _CACHE.get(body)
    if sparse is None:
        sparse = Sparse(body)
        if not own:
            _remember(body, sparse)
    return sparse


# ------------------------------------------------------------------ a value being edited


class HLL:
    """One HyperLogLog value being read or edited: its header and its sparse opcodes or
    dense bytes. `value()` gives the bytes to store."""

    __slots__ = ("header", "sparse", "dense", "_body")

    def __init__(self, value: bytes, edit: bool = False) -> None:
        self.header = bytearray(value[:HEADER])
        self.sparse: Sparse | None = None
        self.dense: bytearray | None = None
        self._body = b""
        if value[4] == SPARSE:
            self._body = value[HEADER:]
            self.sparse = parse_sparse(self._body, own=edit)
        else:  # one zero byte past the end, as the sds terminator Redis's macros touch
            self.dense = bytearray(value[HEADER:]) + b"\0"

    @property
    def encoding(self) -> int:
        return self.header[4]

    def value(self) -> bytes:
        if self.sparse is not None:
            body = self.sparse.body()
            _remember(body, self.sparse)
            return bytes(self.header) + body
        assert self.dense is not None
        return bytes(self.header) + bytes(self.dense[:DENSE_BYTES])

    def unchanged(self) -> None:
        """Give an edited, unchanged sparse body back to the cache."""
        if self.sparse is not None:
            _remember(self._body, self.sparse)

    def invalidate(self) -> None:
        self.header[15] |= 0x80

    def cached(self) -> int | None:
        """The cached cardinality, or None when stale."""
        if self.header[15] & 0x80:
            return None
        return int.from_bytes(self.header[8:16], "little")

    def cache(self, card: int) -> None:
        self.header[8:16] = card.to_bytes(8, "little")

    def to_dense(self) -> None:
        """hllSparseToDense (header kept, encoding byte set); InvalidHLL if corrupted."""
        if self.sparse is None:
            return
        registers = self.sparse.registers
        if registers is None:
            raise InvalidHLL()
        self.set_registers(registers)

    def set_registers(self, registers: bytes | bytearray) -> None:
        """Make the value dense with these registers (header kept)."""
        self.dense = pack(registers) + b"\0"
        self.sparse = None
        self.header[4] = DENSE

    def add(self, elements, max_bytes: int) -> int:
        """hllAdd for each element: how many changed a register; InvalidHLL (after the
        ones before it were applied, as in Redis) for a corrupted sparse body."""
        updated = 0
        rest = iter(elements)
        sparse = self.sparse
        if sparse is not None:
            sparse_set = sparse.set
            for element in rest:
                index, count = pattern(element)
                result = sparse_set(index, count, max_bytes)
                if result == 1:
                    updated += 1
                elif result == PROMOTE:
                    try:
                        self.to_dense()
                    except InvalidHLL:
                        result = -1
                    else:
                        updated += self.set(index, count, max_bytes)
                        break
                if result == -1:
                    if updated:
                        self.invalidate()
                    raise InvalidHLL(updated)
        if self.sparse is None:
            dense = self.dense
            assert dense is not None
            for element in rest:
                index, count = pattern(element)
                b = index * 6
                shift = b & 7
                b >>= 3
                word = dense[b] | (dense[b + 1] << 8)
                if count > (word >> shift) & 63:
                    word = (word & ~(63 << shift)) | (count << shift)
                    dense[b] = word & 0xFF
                    dense[b + 1] = word >> 8
                    updated += 1
        if updated:
            self.invalidate()
        return updated

    def set(self, index: int, count: int, max_bytes: int) -> int:
        sparse = self.sparse
        if sparse is not None:
            result = sparse.set(index, count, max_bytes)
            if result == -1:
                raise InvalidHLL()
            if result != PROMOTE:
                if result:
                    self.invalidate()
                return result
            self.to_dense()
        dense = self.dense
        assert dense is not None
        pos = index * 6
        b, shift = pos >> 3, pos & 7
        word = dense[b] | (dense[b + 1] << 8)
        if count <= (word >> shift) & 63:
            return 0
        word = (word & ~(63 << shift)) | (count << shift)
        dense[b] = word & 0xFF
        dense[b + 1] = word >> 8
        return 1

    def registers(self) -> bytes | bytearray:
        """All 16384 registers, one byte each; InvalidHLL for a corrupted sparse body."""
        if self.sparse is not None:
            if self.sparse.registers is None:
                raise InvalidHLL()
            return self.sparse.registers
        assert self.dense is not None
        return unpack(self.dense[:DENSE_BYTES])

    def count(self) -> int:
        return estimate(histogram(self.registers()))


def merge_registers(values) -> tuple[bytes, bool]:
    """The register-wise MAX of HyperLogLog values and whether one was dense; InvalidHLL
    for a corrupted sparse one."""
    merged = 0
    dense = False
    for value in values:
        hll = HLL(value)
        dense = dense or hll.encoding == DENSE
        merged = _max_int(merged, int.from_bytes(hll.registers(), "little"))
    return merged.to_bytes(REGISTERS, "little"), dense


def self_test(max_bytes: int, cycles: int = 20, elements: int = 100_000) -> str | None:
    """PFSELFTEST's checks, smaller (Redis does 1000 register cycles and 10 million
    elements): the error text of the first that fails, or None."""
    for _ in range(cycles):
        registers = random.randbytes(REGISTERS).translate(_LOW6)
        got = unpack(pack(registers))
        if got != registers:
            i = next(j for j in range(REGISTERS) if got[j] != registers[j])
            return f"TESTFAILED Register {i} should be {registers[i]} but is {got[i]}"
    dense = HLL(empty_sparse())
    dense.to_dense()
    sparse = HLL(empty_sparse(), edit=True)
    relerr = 1.04 / math.sqrt(REGISTERS)
    checkpoint = 1
    seed = random.getrandbits(64)
    for j in range(1, elements + 1):
        element = struct.pack("<Q", j ^ seed)
        dense.add((element,), max_bytes)
        sparse.add((element,), max_bytes)
        if j != checkpoint:
            continue
        if j < max_bytes / 2 and sparse.encoding != SPARSE:
            return "TESTFAILED sparse encoding not used"
        card = dense.count()
        if card != sparse.count():
            return "TESTFAILED dense/sparse disagree"
        maxerr = 1 if j == 10 else math.ceil(relerr * 6 * checkpoint)
        if abs(checkpoint - card) > maxerr:
            return f"TESTFAILED Too big error. card:{checkpoint} abserr:{abs(checkpoint - card)}"
        checkpoint *= 10
    return None
