"""One sandboxed Lua 5.1 interpreter (through lupa), as Redis 7.0 sets it up for scripts.

EVAL scripts and FUNCTION libraries live in two separate interpreters, as in Redis, so a
SCRIPT FLUSH or FUNCTION FLUSH simply starts a fresh one. Only the entry points returned by
the prelude (`prelude.PRELUDE`) are called from Python, on the script worker thread (or the
loop thread when nothing runs there); Lua tables for command replies are made there too.

Lua 5.1 rather than LuaJIT: it is Redis's own Lua, its count hook fires in every loop (SCRIPT
KILL), and a C function called in tail position keeps its caller's frame, which Redis's
error messages name (`on @user_script:3.`).
"""

from __future__ import annotations

import hashlib
import struct
import types
from collections.abc import Callable

from lupa import lua51 as lupa

from presence.store.resp import (
    NIL_ARRAY,
    Double,
    DoubleText,
    Error,
    Push,
    Set,
    Status,
    Verbatim,
    format_double,
)
from presence.store.scripting.prelude import PRELUDE
from presence.store.scripting.untail import untail

LuaError = lupa.LuaError


class CallError(Exception):
    """redis.call got an error reply: raised into Lua, which reports its text (`args[0]`)."""


def sha1hex(data: bytes) -> bytes:
    return hashlib.sha1(data).hexdigest().encode()


class LuaState:
    """A Lua interpreter with Redis's scripting API; calls back `host` for redis.call and logs.

    `host` provides `lua_call(resp, *args) -> RESP bytes`, `lua_log(level, message)`,
    `lua_interrupted() -> bool` (SCRIPT KILL), `lua_known(name) -> bool` and
    `lua_register(name, description, *flags) -> error text or None` (FUNCTION LOAD).
    """

    def __init__(self, host) -> None:
        self.runtime = lupa.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=False,
        )
        self.resp = 2  # the running script's redis.setresp
        self._table = self.runtime.table_from

        def call(*args):
            reply = host.lua_call(self.resp, args)
            if type(reply) is Error:
                raise CallError(reply.encode("utf-8", "surrogateescape"))
            return self.to_lua(reply)

        def pcall(*args):
            return self.to_lua(host.lua_call(self.resp, args))

        def setresp(*args):
            if len(args) != 1:
                raise CallError(b"ERR redis.setresp() requires one argument.")
            resp = _number(args[0])
            if resp not in (2, 3):
                raise CallError(b"ERR RESP version must be 2 or 3.")
            self.resp = int(resp)

        def packed(function):  # redis.call's arguments past DIRECT_ARGS, as one table
            return lambda table, count: function(*[table[i] for i in range(1, int(count) + 1)])

        api = types.SimpleNamespace(
            call_packed=packed(call),
            pcall_packed=packed(pcall),
            untail=untail,
            sha1hex=_sha1hex,
            log=lambda *args: _log(host, args),
            set_repl=_set_repl,
            acl_check_cmd=lambda *args: _acl_check(host, args),
        )
        entries = self.runtime.execute(
            PRELUDE,
            call,
            pcall,
            setresp,
            lambda: self.resp,
            _error_text,
            api,
            host.lua_interrupted,
            host.lua_register,
            BIT,
            IEEE,
            name="=sandbox",
        )
        self._compile, self._run, self._load_library, self._drop_library = entries

    def compile(self, name: bytes, code: bytes) -> bytes | None:
        """Compile an EVAL body as function `name`; None, or Lua's compiler message."""
        return self._compile(name, code)

    def run(
        self, name: bytes, library: int | None, protocol: int, kill_command: bytes, keys: int, args
    ) -> bytes:
        """Run a script (library None) or a library's function; its reply as RESP bytes.

        Blocks until the script ends; call it from the script worker thread only.
        """
        table = self._table(list(args))
        self.resp = 2
        return self._run(name, library or False, protocol, kill_command, keys, table)

    def load_library(self, key: int, code: bytes, timeout_ms: int, clock: Callable) -> bytes | None:
        """Run a library's code, keeping its registered functions under `key`; None or the error."""
        return self._load_library(key, code, timeout_ms, clock)

    def drop_library(self, key: int) -> None:
        self._drop_library(key)

    def to_lua(self, reply):
        """A command's reply as Redis hands it to Lua under the script's RESP version."""
        kind = type(reply)
        if kind is bytes or kind is int:
            return reply
        resp3 = self.resp == 3
        table = self._table
        if reply is None or reply is NIL_ARRAY:
            return None if resp3 else False
        if kind is Status:
            return table({b"ok": reply.encode()})
        if kind is Error:
            return table({b"err": reply.encode("utf-8", "surrogateescape")})
        if kind is list or kind is tuple or kind is Push or (kind is Set and not resp3):
            return table([self.to_lua(item) for item in reply])
        if kind is Set:
            return table({b"set": table({self.to_lua(item): True for item in reply})})
        if kind is dict:
            if resp3:
                pairs = {self.to_lua(k): self.to_lua(v) for k, v in reply.items()}
                return table({b"map": table(pairs)})
            flat = [self.to_lua(x) for item in reply.items() for x in item]
            return table(flat)
        if kind is bool:
            return reply if resp3 else int(reply)
        if kind is Double or kind is float:
            return table({b"double": float(reply)}) if resp3 else format_double(reply)
        if kind is DoubleText:
            return table({b"double": float(reply)}) if resp3 else bytes(reply)
        if kind is Verbatim:
            text = reply.encode()
            if resp3:
                return table({b"verbatim_string": table({b"format": b"txt", b"string": text})})
            return text
        if kind is str:
            return reply.encode()
        return bytes(reply)


def _number(value) -> float | None:
    """Lua's tonumber of an argument (numbers and numeric strings), else None."""
    if type(value) in (int, float):
        return value
    if type(value) is bytes:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _sha1hex(*args) -> bytes:
    if len(args) != 1:
        raise CallError(b"ERR wrong number of arguments")
    value = args[0]
    if type(value) in (int, float):
        value = b"%.14g" % value
    return sha1hex(value if type(value) is bytes else b"")


def _log(host, args) -> None:
    if len(args) < 2:
        raise CallError(b"ERR redis.log() requires two arguments or more.")
    level = _number(args[0])
    if level is None:
        raise CallError(b"ERR First argument must be a number (log level).")
    if not 0 <= level <= 3:
        raise CallError(b"ERR Invalid debug level.")
    parts = [
        a if type(a) is bytes else b"%.14g" % a for a in args[1:] if type(a) in (bytes, int, float)
    ]
    host.lua_log(int(level), b" ".join(parts))


def _set_repl(*args) -> None:
    """redis.set_repl: checked, then nothing (the store has no replicas or AOF to spare)."""
    if len(args) != 1:
        raise CallError(b"ERR redis.set_repl() requires two arguments.")
    if _number(args[0]) not in (0, 1, 2, 3):
        raise CallError(
            b"ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."
        )


def _acl_check(host, args) -> bool:
    """redis.acl_check_cmd: whether the script's ACL user may run the command."""
    if not args:
        raise CallError(b"ERR Please specify at least one argument for this redis lib call")
    if not host.lua_known(args[0]):
        raise CallError(b"ERR Invalid command passed to redis.acl_check_cmd()")
    return host.lua_acl_allows(args)


def _error_text(error) -> bytes | None:
    """The reply text a redis.call error carries (None for any other Lua error value)."""
    if isinstance(error, CallError):
        return error.args[0]
    return None


def _bits(value) -> int:
    """LuaBitOp's tobit: the number rounded and wrapped to a signed 32-bit integer."""
    number = round(float(value)) & 0xFFFFFFFF
    return number - (1 << 32) if number & 0x80000000 else number


def _tohex(value, digits=8) -> bytes:
    digits = int(digits)
    upper = digits < 0
    digits = min(abs(digits), 8)
    text = "%0*x" % (digits, _bits(value) & ((1 << (4 * digits)) - 1)) if digits else ""
    return (text.upper() if upper else text).encode()


def _fold(op):
    def apply(first, *rest):
        result = _bits(first)
        for other in rest:
            result = op(result, _bits(other))
        return _bits(result)

    return apply


def _shift(op):
    return lambda value, n: _bits(op(_bits(value) & 0xFFFFFFFF, _bits(n) & 31))


BIT = types.SimpleNamespace(
    tobit=_bits,
    tohex=_tohex,
    bnot=lambda value: _bits(~_bits(value)),
    band=_fold(lambda a, b: a & b),
    bor=_fold(lambda a, b: a | b),
    bxor=_fold(lambda a, b: a ^ b),
    lshift=_shift(lambda v, n: v << n),
    rshift=_shift(lambda v, n: v >> n),
    arshift=lambda value, n: _bits(_bits(value) >> (_bits(n) & 31)),
    rol=_shift(lambda v, n: (v << n) | (v >> (32 - n)) if n else v),
    ror=_shift(lambda v, n: (v >> n) | (v << (32 - n)) if n else v),
    bswap=lambda value: _bits(
        int.from_bytes((_bits(value) & 0xFFFFFFFF).to_bytes(4, "little"), "big")
    ),
)


IEEE = types.SimpleNamespace(
    bits=lambda value: struct.pack(">d", value),
    value=lambda bits: struct.unpack(">d", bits)[0],
)
"""A double's 8 bytes and back, for NaNs, whose payload Lua cannot read (cmsgpack, struct)."""
