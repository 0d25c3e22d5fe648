"""One sandboxed Lua interpreter (LuaJIT through lupa), as Redis 7.0 sets it up for scripts.

EVAL scripts and FUNCTION libraries live in two separate interpreters, as in Redis, so a
SCRIPT FLUSH or FUNCTION FLUSH simply starts a fresh one. Only the entry points returned by
the prelude (`prelude.PRELUDE`) are called from Python; every value crossing is bytes or a
number, so no Lua object outlives the call that made it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from lupa import luajit21 as lupa

from presence.store.scripting.prelude import PRELUDE

LuaError = lupa.LuaError


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
            unpack_returned_tuples=True,
        )
        entries = self.runtime.execute(
            PRELUDE,
            host.lua_call,
            host.lua_log,
            host.lua_interrupted,
            sha1hex,
            host.lua_known,
            host.lua_register,
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
        table = self.runtime.table_from(list(args))
        return self._run(name, library or False, protocol, kill_command, keys, table)

    def load_library(self, key: int, code: bytes, timeout_ms: int, clock: Callable) -> bytes | None:
        """Run a library's code, keeping its registered functions under `key`; None or the error."""
        return self._load_library(key, code, timeout_ms, clock)

    def drop_library(self, key: int) -> None:
        self._drop_library(key)
