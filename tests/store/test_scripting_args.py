"""redis.call/pcall with as many arguments as Redis takes, and the lines their errors name
(redis.call is a Lua function; `return redis.call(...)` is compiled as a plain call)."""

from __future__ import annotations

import pytest

from presence.store.scripting.sandbox import LuaState
from presence.store.scripting.untail import BadChunk, untail

MASSIVE = """local a = {}
for i=1,%d do
    a[i] = 1
end
return redis.%s("lpush", KEYS[1], unpack(a))
"""


@pytest.mark.parametrize("count", [7995, 7996, 7997, 7998, 7999])
@pytest.mark.parametrize("call", ["call", "pcall"])
def test_massive_unpacked_arguments(pair, count, call):
    pair.same("EVAL", MASSIVE % (count, call), "1", "l")
    pair.same("LLEN", "l")


def test_massive_arguments_in_a_function(pair):
    code = (
        "#!lua name=massive\n"
        "redis.register_function('test', function(keys, args)\n"
        "    local a = {}\n"
        "    for i=1,7999 do\n"
        "        a[i] = 1\n"
        "    end\n"
        "    return redis.call('lpush', keys[1], unpack(a))\n"
        "end)\n"
    )
    pair.same("FUNCTION", "LOAD", "REPLACE", code)
    try:
        pair.same("FCALL", "test", "1", "l")
        pair.same("LLEN", "l")
    finally:
        pair.same("FUNCTION", "DELETE", "massive")


def test_massive_arguments_error_names_the_line(pair):
    pair.same("SET", "s", "x")
    body = "local a = {}\nfor i=1,7999 do a[i] = 1 end\nreturn redis.call('lpush', 's', unpack(a))"
    pair.same("EVAL", body, "0")
    body = "local a = {}\nfor i=1,7999 do a[i] = 'x' end\nreturn redis.call('nosuch', unpack(a))"
    pair.same("EVAL", body, "0")
    body = (
        "local a = {}\nfor i=1,7999 do a[i] = {} end\nreturn redis.pcall('lpush', 'l', unpack(a))"
    )
    pair.same("EVAL", body, "0")


@pytest.mark.parametrize(
    "body",
    [
        "return redis.call('nosuch')",
        "\n\nreturn redis.call(\n  'nosuch',\n  'x')",
        "local r = redis\nreturn r.call('incr', 's')",
        "local function f()\n  return redis.call('incr', 's')\nend\nreturn f()",
        "local function f()\n  return redis.pcall('incr', 's')\nend\nreturn f()",
        "return (redis.call('incr', 's'))",
        "redis.call('incr', 's')",
        "return redis.pcall('incr', 's')",
        "local t = {redis.call('get', 's')}\nreturn redis.call('incr', 's')",
        "local function loop(n)\n  if n == 0 then return 'done' end\n  return loop(n - 1)\nend\n"
        "return loop(100000)",
    ],
)
def test_error_lines_of_calls_in_tail_position(pair, body):
    pair.same("SET", "s", "x")
    pair.same("EVAL", body, "0")


def test_untail_patches_only_calls_of_redis_call():
    lua = LuaState(_Host())
    dump = lua.runtime.eval("string.dump")
    load = lua.runtime.eval("loadstring")
    source = (
        b"local function f() return g() end\n"
        b"local t = {}\n"
        b"if t then return redis.call('a') end\n"
        b"return redis.pcall('b')"
    )
    chunk = dump(load(source))
    patched = untail(chunk)
    assert patched != chunk and len(patched) == len(chunk)
    assert load(patched) is not None  # Lua's loader accepts the patched code
    with pytest.raises(BadChunk):
        untail(b"not a chunk")


class _Host:
    def lua_interrupted(self):
        return False

    def lua_register(self, *args):
        return None
