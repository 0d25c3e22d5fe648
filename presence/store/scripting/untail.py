"""Lua 5.1 bytecode: `return redis.call(...)` compiled as a plain call, not a tail call.

`redis.call` and `redis.pcall` are Lua functions of the prelude (they take Redis's 8,000
arguments, more than lupa lets a Python callable take). A tail call to one would replace the
script's frame, and with it the line an error reply names (`@user_script:6`). So once a script
or library is compiled, its chunk (`string.dump`) is patched here: every OP_TAILCALL whose
function register was loaded by a GETTABLE with the constant key "call" or "pcall" becomes
OP_CALL with C=0 (all results); the OP_RETURN A 0 that always follows a tail call returns them.
Lua 5.1's loader checks the patched code (luaG_checkcode) like any other.
"""

from __future__ import annotations

import struct

OP_GETTABLE, OP_CALL, OP_TAILCALL = 6, 28, 29
# opcodes that write register A (lopcodes.h), the ones a function register is loaded by
_WRITES_A = frozenset([0, 1, 2, 3, 4, 5, 6, 10, 11, *range(12, 22), 27, 28, 36, 37])
_CALL_KEYS = (b"call", b"pcall")
_HEADER = b"\x1bLua\x51\x00\x01\x04\x08\x04\x08\x00"  # 5.1, little endian, size_t 8, double


class BadChunk(ValueError):
    """Not a chunk of the layout this Lua (lupa's lua51, x86-64) dumps."""


def untail(chunk: bytes) -> bytes:
    """`chunk` with the tail calls to redis.call/pcall made plain calls (see the module)."""
    if not chunk.startswith(_HEADER):
        raise BadChunk("unexpected chunk header")
    out = bytearray(chunk)
    _function(out, len(_HEADER))
    return bytes(out)


def _function(buf: bytearray, pos: int) -> int:
    """Patch one function prototype (and its nested ones) in place; the position after it."""
    pos = _skip_string(buf, pos)  # source
    pos += 4 + 4 + 4  # linedefined, lastlinedefined, nups/numparams/is_vararg/maxstacksize
    (ncode,) = struct.unpack_from("<i", buf, pos)
    code_at = pos + 4
    pos = code_at + 4 * ncode
    constants, pos = _constants(buf, pos)
    (nprotos,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    for _ in range(nprotos):
        pos = _function(buf, pos)
    _patch(buf, code_at, ncode, constants)
    (nlines,) = struct.unpack_from("<i", buf, pos)
    pos += 4 + 4 * nlines
    (nlocals,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    for _ in range(nlocals):
        pos = _skip_string(buf, pos) + 8
    (nupvalues,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    for _ in range(nupvalues):
        pos = _skip_string(buf, pos)
    return pos


def _skip_string(buf: bytearray, pos: int) -> int:
    (size,) = struct.unpack_from("<Q", buf, pos)
    return pos + 8 + size


def _constants(buf: bytearray, pos: int) -> tuple[list, int]:
    (count,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    constants: list = []
    for _ in range(count):
        kind = buf[pos]
        pos += 1
        if kind == 0:  # nil
            constants.append(None)
        elif kind == 1:  # boolean
            constants.append(bool(buf[pos]))
            pos += 1
        elif kind == 3:  # number
            constants.append(struct.unpack_from("<d", buf, pos)[0])
            pos += 8
        elif kind == 4:  # string, with its trailing NUL
            (size,) = struct.unpack_from("<Q", buf, pos)
            constants.append(bytes(buf[pos + 8 : pos + 8 + size - 1]))
            pos += 8 + size
        else:
            raise BadChunk(f"unexpected constant type {kind}")
    return constants, pos


def _patch(buf: bytearray, code_at: int, ncode: int, constants: list) -> None:
    code = list(struct.unpack_from(f"<{ncode}I", buf, code_at))
    for pc, ins in enumerate(code):
        if ins & 0x3F != OP_TAILCALL:
            continue
        a = (ins >> 6) & 0xFF
        for back in range(pc - 1, -1, -1):
            loader = code[back]
            if (loader >> 6) & 0xFF == a and loader & 0x3F in _WRITES_A:
                key = (loader >> 14) & 0x1FF  # C: the key, a constant when its 0x100 bit is set
                if (
                    loader & 0x3F == OP_GETTABLE
                    and key & 0x100
                    and constants[key & 0xFF] in _CALL_KEYS
                ):
                    patched = (ins & ~0x3F & ~(0x1FF << 14)) | OP_CALL  # CALL A B 0
                    struct.pack_into("<I", buf, code_at + 4 * pc, patched)
                break
