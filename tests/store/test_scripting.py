"""Lua scripting (presence/store/scripting, commands/scripting.py), differential against redis-server.

Same script, same reply, byte for byte: conversions both ways, error texts, EVALSHA and the
script cache, FUNCTION and FCALL, atomicity, -BUSY and SCRIPT KILL, notifications.
"""

import json
import time

import pytest

from tests.store.helpers import Pair, run
from tests.store.rawclient import RawClient

CONVERSIONS = [
    "return 'hello'",
    "return 100.5",
    "return -3.99",
    "return 1e20",
    "return true",
    "return false",
    "return nil",
    "return {ok='fine'}",
    "return {ok='a\\r\\nb'}",
    "return {err='ERR this is an error'}",
    "return {err='no code'}",
    "return {1,2,3,'ciao',{1,2}}",
    "return {1,nil,3}",
    "return {1,false,3}",
    "return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}",
    "return _G",
    "local a = {}; setmetatable(a,{__index=function() foo() end}) return a",
    "return {double=3.5}",
    "return {map={a=1}}",
    "return {set={b=true}}",
    "return {big_number='123'}",
    "return {verbatim_string={format='txt', string='hi'}}",
    "redis.setresp(3) return {true, false, nil}",
    "return redis.call('get', KEYS[1])",
    "return redis.call('get', 'missing')",
    "return redis.call('incr', 'counter')",
    "return redis.call('hgetall', 'h')",
    "return redis.call('zrange', 'z', 0, -1, 'withscores')",
    "return redis.call('lrange', 'l', 0, -1)",
    "return redis.call('set', 'x', 'y')",
    "return redis.call('ping')",
    "return redis.call('type', 'l')",
    "redis.setresp(3) return redis.call('hgetall', 'h')",
    "redis.setresp(3) return redis.call('zscore', 'z', 'a')",
    "redis.setresp(3) return redis.call('smembers', 'missing')",
    "redis.setresp(3) return redis.call('get', 'missing')",
    "redis.setresp(3) return redis.call('exists', 'l')",
    "return type(redis.call('get', 'missing'))",
    "return redis.call('set', 'n', 1e20) and redis.call('get', 'n')",
    "return redis.call('set', 'n', 0.1) and redis.call('get', 'n')",
    "return redis.pcall('incr', KEYS[1])",
    "return {pcall(redis.call, 'incr', KEYS[1])}",
    "return redis.error_reply('My Error')",
    "return redis.error_reply('-CODE message\\n')",
    "return redis.error_reply(1)",
    "return redis.status_reply('FINE')",
    "return {redis.sha1hex(''), redis.sha1hex('Pizza & Mandolino')}",
    "return redis.REDIS_VERSION",
    "return {bit.band(7,3), bit.bor(1,2,4), bit.tohex(65535), bit.tohex(-1,-4), bit.lshift(1,31)}",
    "return {bit.rshift(-1,28), bit.arshift(-256,4), bit.bnot(0), bit.rol(0x12345678, 12)}",
    "return {bit.bswap(0x12345678), bit.tobit(0xffffffff + 1), bit.bxor(5, 3)}",
    "return {string.format('%d', 3.9), tostring(0.1), math.mod(7, 3), table.getn({1, 2})}",
    "return redis.call('select', 5) and redis.call('set', 'in5', 'v')",
]

ERRORS = [
    "return a",
    "a = 10",
    "return 1 +",
    "error('boom')",
    "error({err='MY boom'})",
    "return nil + 1",
    "return redis.call('incr', KEYS[1])",
    "local x = 1\nreturn redis.call('nosuch')",
    "return redis.call('get')",
    "return redis.call('blpop', 'l', 0)",
    "return redis.call('subscribe', 'c')",
    "return redis.call('multi')",
    "return redis.call('eval', 'return 1', 0)",
    "return redis.call('get', {})",
    "return redis.call()",
    "return redis.call('hgetall', KEYS[1])",
    "setmetatable(_G, {})",
    "local g = getmetatable(_G) g.__index = {}",
    "redis = function() return 1 end",
    "_G = {}",
    "redis.call = function() return 1 end",
    "bit.lshift = function() return 1 end",
    "string.foo = 1",
    "rawset(_G, 'x', 1)",
    "loadfile('some file')",
    "dofile('some file')",
    "print('some data')",
    "return os.time()",
    "return io.write('x')",
    "return require('x')",
    "return getfenv(0)",
    "return debug.getinfo(1)",
    "return loadstring(string.dump(function() return 1 end))()",
    "return loadstring('x = 1')()",
    "redis.setresp(4)",
    "redis.log()",
    "redis.log('x', 'y')",
    "redis.log(9, 'y')",
    "return redis.sha1hex()",
    "return redis.acl_check_cmd('invalid-cmd', 'arg')",
    "redis.set_repl(99)",
]


@pytest.fixture
def loaded(pair):
    """Both servers with the same few keys of each type."""
    run(
        pair,
        "SET s notanumber",
        "SET counter 10",
        "HSET h a 1",
        "ZADD z 1.5 a 2 b",
        "RPUSH l x y z",
    )
    return pair


@pytest.mark.parametrize("script", CONVERSIONS)
def test_conversions(loaded, proto, script):
    loaded.same("EVAL", script, "2", "s", "k2", "a1", "a2")


@pytest.mark.parametrize("script", ERRORS)
def test_errors(loaded, script):
    loaded.same("EVAL", script, "1", "s")


def test_eval_arguments_and_script_cache(pair):
    run(
        pair,
        "EVAL",
        "EVAL x",
        ["EVAL", "return 1", "x"],
        ["EVAL", "return 1", "-1"],
        ["EVAL", "return 1", "2", "a"],
        ["EVALSHA", "abc", "0"],
        ["EVALSHA", "fd758d1589d044dd850a6f05d52f2eefd27f033f", "0"],
        ["SCRIPT", "LOAD", "return redis.call('get', KEYS[1])"],
        ["EVALSHA", "fd758d1589d044dd850a6f05d52f2eefd27f033f", "1", "k"],
        ["EVALSHA", "FD758D1589D044DD850A6F05D52F2EEFD27F033F", "1", "k"],
        ["EVALSHA_RO", "fd758d1589d044dd850a6f05d52f2eefd27f033f", "1", "k"],
        ["SCRIPT", "EXISTS", "fd758d1589d044dd850a6f05d52f2eefd27f033f", "ffff"],
        ["SCRIPT", "LOAD", "return 1 +"],
        ["SCRIPT", "FLUSH", "bad"],
        ["SCRIPT", "FLUSH", "ASYNC"],
        ["SCRIPT", "EXISTS", "fd758d1589d044dd850a6f05d52f2eefd27f033f"],
        ["EVALSHA", "fd758d1589d044dd850a6f05d52f2eefd27f033f", "0"],
        ["SCRIPT", "KILL"],
        ["FUNCTION", "KILL"],
        ["SCRIPT", "NOSUCH"],
        ["SCRIPT", "LOAD"],
    )


def test_info_counts_cached_scripts(pair):
    run(pair, "SCRIPT FLUSH", ["SCRIPT", "LOAD", "return 1"], ["SCRIPT", "LOAD", "return 2"])
    for reply in pair.call("INFO", "memory"):
        assert b"number_of_cached_scripts:2\r\n" in reply


def test_read_only_scripts_and_shebang_flags(pair):
    run(
        pair,
        ["EVAL_RO", "return redis.call('set', 'a', 'b')", "0"],
        ["EVAL_RO", "return redis.call('publish', 'c', 'm')", "0"],
        ["EVAL_RO", "return redis.call('get', 'a')", "0"],
        ["EVAL", "#!lua flags=no-writes\nreturn redis.call('set','a','b')", "0"],
        ["EVAL", "#!lua\nreturn redis.call('set','a','b')", "0"],
        ["EVAL_RO", "#!lua\nreturn 1", "0"],
        ["EVAL", "#!lua flags=bad\nreturn 1", "0"],
        ["EVAL", "#!lua foo=bar\nreturn 1", "0"],
        ["EVAL", "#!python\nreturn 1", "0"],
        ["EVAL", "#!lua", "0"],
        ["EVAL", "#!lua flags=no-writes,allow-oom\nreturn 2", "0"],
        "GET a",
    )


LIBRARY = (
    "#!lua name=lib\n"
    "redis.register_function('get', function(keys, args) return redis.call('get', keys[1]) end)\n"
    "redis.register_function{function_name='ro', callback=function(keys, args) return args end,"
    " flags={'no-writes'}, description='echoes'}\n"
    "redis.register_function('set', function(keys, args) return redis.call('set', keys[1], args[1]) end)"
)


ONE_FUNCTION = (
    "#!lua name=one\n"
    "redis.register_function{function_name='ro', callback=function(keys, args) return args end,"
    " flags={'allow-stale', 'no-writes'}, description='echoes'}"
)


def test_functions(pair):
    run(
        pair,
        "FUNCTION FLUSH",
        ["FUNCTION", "LOAD", LIBRARY],
        ["FUNCTION", "LOAD", LIBRARY],
        ["FUNCTION", "LOAD", "REPLACE", LIBRARY],
        ["FUNCTION", "LOAD", "BAD", LIBRARY],
        ["FCALL", "set", "1", "k", "v"],
        ["FCALL", "get", "1", "k"],
        ["FCALL", "ro", "0", "a", "b"],
        ["FCALL_RO", "ro", "0", "a"],
        ["FCALL_RO", "set", "1", "k", "v"],
        ["FCALL", "nosuch", "0"],
        ["FCALL", "get", "x"],
        ["FCALL", "get", "2", "k"],
        ["FCALL", "get", "-1"],
        ["FUNCTION", "LIST", "LIBRARYNAME", "nomatch"],
        ["FUNCTION", "LIST", "LIBRARYNAME"],
        ["FUNCTION", "LIST", "BAD"],
        ["FUNCTION", "STATS"],
        ["FUNCTION", "DELETE", "nosuch"],
        ["FUNCTION", "DELETE", "lib"],
        ["FCALL", "get", "1", "k"],
        ["FUNCTION", "LOAD", ONE_FUNCTION],
        ["FUNCTION", "LIST", "WITHCODE"],
        ["FUNCTION", "LIST", "LIBRARYNAME", "o*"],
        ["FUNCTION", "FLUSH", "BAD"],
    )


@pytest.mark.parametrize(
    "code",
    [
        "return 1",
        "#!lua\nreturn 1",
        "#!lua name=l",
        "#!lua name=l name=m\nreturn 1",
        "#!lua foo=bar\nreturn 1",
        "#!python name=l\nreturn 1",
        "#!lua name=a-b\nreturn 1",
        "#!lua name=l\nreturn 1 +",
        "#!lua name=l\nerror('x')",
        "#!lua name=l\nlocal a = string.len('x')",
        "#!lua name=l\nreturn 1",
        "#!lua name=l\nredis.register_function('f-g', function() end)",
        "#!lua name=l\nredis.register_function('f', function() end)\nredis.register_function('f', function() end)",
        "#!lua name=l\nredis.register_function{function_name='f', callback=function() end, flags={'bad'}}",
        "#!lua name=l\nredis.register_function{function_name='f', callback=function() end, other=1}",
        "#!lua name=l\nredis.register_function{callback=function() end}",
        "#!lua name=l\nredis.register_function{function_name='f'}",
        "#!lua name=l\nredis.register_function(1)",
        "#!lua name=l\nredis.register_function('f', 2)",
        "#!lua name=l\nredis.call('ping')",
        "#!lua name=l\nredis.register_function('f', function(k, a) return redis.call('nosuch') end)",
    ],
)
def test_function_load_errors(pair, code):
    run(pair, "FUNCTION FLUSH", ["FUNCTION", "LOAD", code], ["FCALL", "f", "0"])


def test_function_names_collide_across_libraries(pair):
    first = "#!lua name=one\nredis.register_function('f', function() return 1 end)"
    second = "#!lua name=two\nredis.register_function('f', function() return 2 end)"
    run(pair, "FUNCTION FLUSH", ["FUNCTION", "LOAD", first], ["FUNCTION", "LOAD", second])
    run(pair, ["FCALL", "f", "0"], ["FUNCTION", "LIST", "LIBRARYNAME", "t*"])


def test_function_dump_restore_moves_between_servers(pair):
    run(pair, "FUNCTION FLUSH", ["FUNCTION", "LOAD", LIBRARY])
    ours, theirs = pair.call("FUNCTION", "DUMP")
    run(pair, "FUNCTION FLUSH")
    payloads = [_bulk(ours), _bulk(theirs)]
    for payload in payloads:  # each server restores its own dump and the other's
        run(
            pair,
            ["FUNCTION", "RESTORE", payload],
            ["FUNCTION", "RESTORE", payload],
            ["FUNCTION", "RESTORE", payload, "BAD"],
            ["FUNCTION", "RESTORE", payload, "REPLACE"],
            ["FCALL", "ro", "0", "x"],
            ["FUNCTION", "RESTORE", payload[:-1] + b"x"],
            ["FUNCTION", "RESTORE", "short"],
            "FUNCTION FLUSH",
            ["FUNCTION", "RESTORE", payload, "FLUSH"],
            ["FCALL", "get", "1", "k"],
            "FUNCTION FLUSH",
        )


def _bulk(reply: bytes) -> bytes:
    header, _, rest = reply.partition(b"\r\n")
    return rest[: int(header[1:])]


def test_scripts_in_multi_exec(pair):
    run(
        pair,
        "MULTI",
        ["EVAL", "return redis.call('incr', 'c')", "0"],
        ["EVAL", "return redis.call('incr', 'c')", "0"],
        "EXEC",
    )


def test_blocked_client_is_served_after_the_script(pair):
    waiting = Pair(pair.store_port, pair.redis_port)
    try:
        for client in (waiting.store, waiting.redis):
            client.send("BLPOP", "q", "5")
        time.sleep(0.2)
        script = "redis.call('rpush', 'q', 'a') return redis.call('llen', 'q')"
        pair.same("EVAL", script, "0")  # the script still sees its element
        assert (
            waiting.store.read_reply()
            == waiting.redis.read_reply()
            == b"*2\r\n$1\r\nq\r\n$1\r\na\r\n"
        )
        pair.same("LLEN", "q")
    finally:
        waiting.close()


def test_script_writes_are_notified(pair, events):
    pair.same(
        "EVAL",
        "redis.call('set', 'a', '1') redis.call('del', 'a') return redis.call('set', 'z', 1)",
        "0",
    )
    events.assert_same(6)


def _slow(seconds: float, write: bool = False) -> str:
    """A script busy for `seconds` by the server's own clock (same on both servers)."""
    return (
        ("redis.call('set', 'w', '1') " if write else "")
        + "local t = redis.call('time') local start = t[1] * 1e6 + t[2] "
        + "while true do t = redis.call('time') "
        + f"if t[1] * 1e6 + t[2] - start > {int(seconds * 1e6)} then break end end "
        + "return 'done'"
    )


def test_nothing_runs_while_a_script_runs(pair):
    """Another client's command waits for the script (below the busy threshold) and sees its end."""
    other = Pair(pair.store_port, pair.redis_port)
    try:
        script = "redis.call('set', 'k', 'first') " + _slow(0.3).replace(
            "return 'done'", "redis.call('set', 'k', 'last') return 'done'"
        )
        for client in (pair.store, pair.redis):
            client.send("EVAL", script, "0")
        time.sleep(0.1)
        for client in (other.store, other.redis):
            assert client.call("GET", "k") == b"$4\r\nlast\r\n"
        assert pair.store.read_reply() == pair.redis.read_reply() == b"$4\r\ndone\r\n"
    finally:
        other.close()


def test_busy_script_kill(pair):
    """Past busy-reply-threshold others get -BUSY; SCRIPT KILL stops a script that wrote nothing."""
    other = Pair(pair.store_port, pair.redis_port)
    try:
        run(pair, "CONFIG SET lua-time-limit 100", "SET k v")
        for client in (pair.store, pair.redis):
            client.send("EVAL", "local i = 0 while true do i = i + 1 end", "0")
        time.sleep(0.4)
        for command in (
            ["GET", "k"],
            ["PING"],
            ["FUNCTION", "STATS"],
            ["FUNCTION", "KILL"],
            ["MULTI"],
            ["GET", "k"],
            ["DISCARD"],
        ):
            other.same(*command)
        other.same("SCRIPT", "KILL")
        assert pair.store.read_reply() == pair.redis.read_reply()
        other.same("GET", "k")
        other.same("SCRIPT", "KILL")
    finally:
        pair.same("CONFIG", "SET", "lua-time-limit", "5000")
        other.close()


def test_busy_script_that_wrote_is_unkillable(pair):
    other = Pair(pair.store_port, pair.redis_port)
    try:
        run(pair, "CONFIG SET lua-time-limit 50")
        for client in (pair.store, pair.redis):
            client.send("EVAL", _slow(0.6, write=True), "0")
        time.sleep(0.3)
        other.same("SCRIPT", "KILL")
        other.same("GET", "w")
        assert pair.store.read_reply() == pair.redis.read_reply() == b"$4\r\ndone\r\n"
        other.same("GET", "w")
    finally:
        pair.same("CONFIG", "SET", "lua-time-limit", "5000")
        other.close()


def test_busy_function_kill(pair):
    other = Pair(pair.store_port, pair.redis_port)
    code = "#!lua name=spin\nredis.register_function('spin', function() while true do end end)"
    try:
        run(pair, "FUNCTION FLUSH", ["FUNCTION", "LOAD", code], "CONFIG SET lua-time-limit 100")
        for client in (pair.store, pair.redis):
            client.send("FCALL", "spin", "0")
        time.sleep(0.4)
        other.same("GET", "k")
        other.same("SCRIPT", "KILL")
        stats = [c.call("FUNCTION", "STATS") for c in (other.store, other.redis)]
        assert all(b"running_script" in s and b"spin" in s for s in stats)
        other.same("FUNCTION", "KILL")
        assert pair.store.read_reply() == pair.redis.read_reply()
    finally:
        pair.same("CONFIG", "SET", "lua-time-limit", "5000")
        other.close()


def test_config_lua_time_limit_alias(pair):
    run(
        pair,
        "CONFIG SET lua-time-limit 1234",
        "CONFIG GET lua-time-limit",
        "CONFIG GET busy-reply-threshold",
    )
    pair.same("CONFIG", "SET", "busy-reply-threshold", "5000")


def test_keys_do_not_expire_during_a_script(store_port):
    """Time is frozen for a script's commands, as Redis 7.0 does (store only: timing)."""
    with RawClient(store_port) as client:
        client.call("SET", "k", "v", "PX", "100")
        script = (
            "local t = redis.call('time') local start = t[1] * 1e6 + t[2] "
            "while true do t = redis.call('time') if t[1] * 1e6 + t[2] - start > 300000 then break end end "
            "return redis.call('get', 'k')"
        )
        assert client.call("EVAL", script, "0") == b"$1\r\nv\r\n"
        assert client.call("GET", "k") == b"$-1\r\n"


def test_info_errorstats_with_an_error_code_of_raw_bytes(pair):
    """A script's error_reply may name an error in bytes that are not UTF-8: INFO
    errorstats then quotes them, as Redis does, and the connection lives on."""
    pair.same("CONFIG", "RESETSTAT")
    script = "return redis.error_reply(ARGV[1])"
    pair.same("EVAL", script, "0", b"\xff\xfeBAD code")
    store, redis = pair.call("INFO", "errorstats")
    assert b"errorstat_\xff\xfeBAD:count=1" in redis
    assert b"errorstat_\xff\xfeBAD:count=1" in store
    pair.same("PING")


CJSON = [
    "return cjson.encode({1,2,3})",
    "return cjson.encode({})",
    "return cjson.encode({a=1})",
    "return cjson.encode({a={b={1,{c='d'}}}})",
    "return cjson.encode({1,nil,3})",
    "return cjson.encode({[1]=1,[3]=3})",
    "return cjson.encode({[-1]=1})",
    "return cjson.encode({[1.5]=true})",
    "return cjson.encode({'a/b\"\\\\', '\\1\\8\\127\\t\\n\\r\\12\\31', 'caf\\195\\169', '\\0'})",
    "return cjson.encode({1, 1.5, 1e20, -0.5, 3.14159265358979, 1/3, 100, 2^53, -0})",
    "return cjson.encode({true, false, cjson.null})",
    "return cjson.encode('x')",
    "return cjson.encode(nil)",
    "return cjson.encode({a=cjson.null})",
    "return cjson.encode(cjson.decode('{}'))",
    'return cjson.decode(\'[1,"a",{"b":2}]\')[3].b',
    'return cjson.decode(\'{"keya": "a", "keyb": "b"}\').keyb',
    "return table.concat(cjson.decode('[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]'), ' ')",
    'return cjson.decode(\'"\\\\u00e9\\\\ud83d\\\\ude00\\\\/\\\\n\\\\""\')',
    "return cjson.decode(' [ true , false ] ')",
    "return {type(cjson.decode('null')), cjson.decode('[null]')[1] == cjson.null}",
    "return {tostring(cjson.null), type(cjson.null)}",
    "return #cjson.decode('[]')",
    "return cjson.decode(12)",
    "return {cjson.decode('0x10'), cjson.decode('01'), cjson.decode('-2.5e1')}",
    "return {cjson._NAME, cjson._VERSION}",
    "return {cjson.encode_max_depth(), cjson.decode_max_depth(), cjson.encode_keep_buffer()}",
    "return {pcall(cjson.decode, 'x')}",
    'return cjson.encode(cjson.decode(\'[1,[2,[3,{"a":[4]}]],"s"]\'))',
]

# errors are compared with the call outside `return` (a tail call): see test_cjson_tail_call
CJSON_ERRORS = [
    "local r = cjson.encode({[20]=1}) return r",
    "local r = cjson.encode({[false]=1}) return r",
    "local r = cjson.encode(1/0) return r",
    "local r = cjson.encode(function() end) return r",
    "local r = cjson.encode() return r",
    "local r = cjson.encode(1, 2) return r",
    "local t = {} local x = t for i=1,1100 do x[1] = {} x = x[1] end local r = cjson.encode(t) return r",
    "local r = cjson.decode('') return r",
    "local r = cjson.decode('xyz') return r",
    "local r = cjson.decode('[1,') return r",
    "local r = cjson.decode('[1 2]') return r",
    "local r = cjson.decode('[1,]') return r",
    "local r = cjson.decode('[1]]') return r",
    "local r = cjson.decode('{1:2}') return r",
    "local r = cjson.decode('{\"a\" 2}') return r",
    "local r = cjson.decode('{\"a\":2 3}') return r",
    "local r = cjson.decode('{\"a\":1,}') return r",
    "local r = cjson.decode('1 2') return r",
    "local r = cjson.decode('\"abc') return r",
    "local r = cjson.decode('\"a\\0b\"') return r",
    "local r = cjson.decode('\"\\\\x\"') return r",
    "local r = cjson.decode('\"\\\\ud800\"') return r",
    "local r = cjson.decode('\"\\\\udc00\"') return r",
    "local r = cjson.decode('-') return r",
    "local r = cjson.decode() return r",
    "local r = cjson.decode({}) return r",
    "local r = cjson.decode(string.rep('[', 1001)) return r",
    "local r = cjson.encode(string) return r",
    "return {cjson.encode({KEYS}), cjson.encode(setmetatable({}, {__index={a=1}}))}",
    "return {pcall(cjson.encode, function() end)}",
    "cjson.encode = function() return 1 end",
    "cjson.foo = 1",
]


@pytest.mark.parametrize("script", CJSON + CJSON_ERRORS)
def test_cjson(pair, script):
    pair.same("EVAL", script, "0")


def test_cjson_object_order_free(pair):
    """Key order in an encoded object is the hash's: compare the objects decoded."""
    script = "return cjson.encode({s1='Some string', n1=100, a1={'x','y'}, b1=true, b2=false})"
    ours, theirs = pair.call("EVAL", script, "0")
    assert json.loads(ours.split(b"\r\n")[1]) == json.loads(theirs.split(b"\r\n")[1])


def test_cjson_settings(pair):
    """Redis's smoke test: the settings hold in the scripting state until SCRIPT FLUSH."""
    smoke = """
        local some_map = {s1='Some string', n1=100, a1={'Some','String','Array'}, b1=true}
        local decoded = cjson.decode(cjson.encode(some_map))
        assert(decoded.s1 == 'Some string' and decoded.a1[3] == 'Array')
        cjson.encode_keep_buffer(false)
        local table1 = {one='one', [1]='one'}
        decoded = cjson.decode(cjson.encode(table1))
        assert(decoded['one'] == 'one' and decoded['1'] == 'one')
        assert(pcall(cjson.encode, {[false]='false'}) == false)
        cjson.encode_max_depth(1)
        assert(pcall(cjson.encode, some_map) == false)
        cjson.decode_max_depth(1)
        assert(pcall(cjson.decode, '{"obj": {"array": [1,2,3,4]}}') == false)
        return 'OK'
    """
    run(
        pair,
        ["EVAL", smoke, "0"],
        ["EVAL", "return {cjson.encode_max_depth(), cjson.decode_max_depth()}", "0"],
        ["EVAL", "local r = cjson.encode({{1}}) return r", "0"],
        ["EVAL", "local r = cjson.decode('[[1]]') return r", "0"],
        ["EVAL", "cjson.encode_number_precision(3) return cjson.encode(3.14159)", "0"],
        ["EVAL", "cjson.encode_invalid_numbers('null') return cjson.encode({1/0})", "0"],
        ["EVAL", "return {cjson.encode_sparse_array(true)}", "0"],
        ["EVAL", "local r = cjson.encode({[20]=1}) return r", "0"],
        "SCRIPT FLUSH",
        ["EVAL", "return {cjson.encode_max_depth(), cjson.encode(3.14159)}", "0"],
    )


def test_cjson_in_functions(pair):
    library = (
        "#!lua name=cj\n"
        "redis.register_function('cj', function(keys, args)"
        " return cjson.encode(cjson.decode(args[1])) end)"
    )
    run(
        pair,
        ["FUNCTION", "LOAD", "REPLACE", library],
        ["FCALL", "cj", "0", '[1,{"a":null},"\\u00e9"]'],
        ["FCALL", "cj", "0", "[1,"],
        ["FUNCTION", "DELETE", "cj"],
    )


def test_cjson_tail_call(store):
    """`return cjson.decode(bad)` loses the script's line here (Redis's C function keeps it)."""
    reply = store.call("EVAL", "return cjson.decode('x')", "0")
    assert reply.startswith(b"-ERR Expected value but found invalid token at character 1 script: ")
