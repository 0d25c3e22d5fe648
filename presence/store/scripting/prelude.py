"""The Lua side of the sandbox: run once in every fresh Lua state (see `sandbox.LuaState`).

It builds what Redis 7.0 gives a script: the `redis` table, a `pcall` that turns error
tables into their message, globals that refuse to be created or read when missing, library
tables that refuse to be changed, no `os`/`io`/`loadfile`/`dofile`/`print`/`require`, `cjson`
(lua-cjson 2.1 in Lua), `cmsgpack` and `struct` (spliced in from `binlibs`) and the two
conversions (a command's RESP reply into Lua values, a script's result into RESP). It
returns the entry points Python calls: compile, run, load a library, set the key arrays.

Stock Lua has no read-only tables (Redis patches its Lua for them): the globals a script
sees are an empty proxy whose metatable reads through to the real ones, and each library
table is such a proxy too; `rawset`, `rawget`, `setmetatable`, `load` and `loadstring`
are wrapped so that no script reaches the real tables behind them (Debian's Redis 7.0.15,
the reference, has no `getfenv`, `setfenv` or `newproxy` either).
"""

from presence.store.scripting.binlibs import BINLIBS

PRELUDE = (
    r"""
local py_call, py_pcall, py_setresp, py_getresp, py_error_text, py_api, py_interrupted,
  py_register, py_bit, py_ieee = ...

local type, error, tostring, tonumber, select = type, error, tostring, tonumber, select
local rawget, rawset, rawequal, next, pairs = rawget, rawset, rawequal, next, pairs
local setmetatable, getmetatable = setmetatable, getmetatable
local raw_pcall, xpcall, raw_setfenv, raw_getfenv = pcall, xpcall, setfenv, getfenv
local raw_loadstring, unpack = loadstring, unpack
local sub, find, format, gsub, byte, concat = string.sub, string.find, string.format, string.gsub, string.byte, table.concat
local floor, huge = math.floor, math.huge
local dbg = debug
local G = _G
local SELF = dbg.getinfo(1, "S").source
local dump = string.dump
local py_call_packed, py_pcall_packed, py_untail = py_api.call_packed, py_api.pcall_packed, py_api.untail
-- lupa lets a Python callable take at most 7,997 arguments (lua_checkstack's 8,000 slots);
-- past this, redis.call hands Python its arguments as one table (Redis takes 8,000 and more)
local DIRECT_ARGS = 7900

-- LuaBitOp's API, computed in Python (Lua 5.1 has no bit library of its own)
local bit = {}
for _, name in ipairs({"tobit", "tohex", "bnot", "band", "bor", "bxor", "lshift", "rshift",
    "arshift", "rol", "ror", "bswap"}) do
  bit[name] = py_bit[name]
end
G.bit = bit

-- ---------------------------------------------------------------- globals
local allowed = {}
-- Redis 7.0.15 as Debian builds it: no getfenv, setfenv or newproxy either
for name in string.gmatch([[string math table coroutine bit cjson cmsgpack struct redis xpcall tostring
    setmetatable next assert tonumber rawequal collectgarbage getmetatable rawset pcall type
    _G select unpack gcinfo pairs rawget loadstring ipairs _VERSION load error]], "%S+") do
  allowed[name] = true
end
-- what scripts see as globals: a copy of the allowed ones (lupa itself still uses _G)
local VIEW = {}
for name in pairs(allowed) do VIEW[name] = G[name] end

local protected = setmetatable({}, {__mode = "k"})  -- read-only proxy -> the table behind it

-- level 3: the script line that assigned (through __newindex); 0: no position, as Redis's
-- C functions (rawset, setmetatable) report it
local function refuse(level)
  error("Attempt to modify a readonly table", level or 3)
end

local RO_META = {}
local function readonly(t)
  local proxy = {}
  protected[proxy] = t
  setmetatable(proxy, {__index = t, __newindex = function() refuse() end, __metatable = RO_META})
  return proxy
end
RO_META = readonly({})

local function missing_global(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end

-- The environment scripts run in: empty, reading through to `view` (the real globals).
local function environment(view)
  local env = {}
  local meta = {__index = view, __newindex = function() refuse() end, __metatable = RO_META}
  protected[env] = view
  setmetatable(env, meta)
  return env, meta
end

-- ---------------------------------------------------------------- cjson (lua-cjson 2.1)
-- In Lua rather than C: Redis's messages, `%.14g` numbers, `\/` escapes, sparse arrays and
-- depth limits; cjson.null is a unique userdata (Redis's is a NULL lightuserdata).
local cjson = {_NAME = "cjson", _VERSION = "2.1.0"}
do
  local char, lower, match, tostr = string.char, string.lower, string.match, tostring
  local null = newproxy(true)
  getmetatable(null).__tostring = function() return "userdata: (nil)" end
  cjson.null = null
  local cfg = {encode_depth = 1000, decode_depth = 1000, precision = 14, keep = true,
    sparse_convert = false, sparse_ratio = 2, sparse_safe = 10, enc_invalid = false,
    dec_invalid = true}
  local numfmt = "%.14g"

  local escapes = {["\""] = "\\\"", ["\\"] = "\\\\", ["/"] = "\\/", ["\b"] = "\\b",
    ["\t"] = "\\t", ["\n"] = "\\n", ["\f"] = "\\f", ["\r"] = "\\r", ["\127"] = "\\u007f"}
  for i = 0, 31 do
    local c = char(i)
    if not escapes[c] then escapes[c] = format("\\u%04x", i) end
  end
  local function quote(s)
    return "\"" .. gsub(s, "[%z\1-\31\"\\/\127]", escapes) .. "\""
  end

  local function fail(msg) error(msg, 0) end

  local function number(n)
    if n ~= n or n == huge or n == -huge then
      if cfg.enc_invalid == "null" then return "null" end
      if not cfg.enc_invalid then fail("Cannot serialise number: must not be NaN or Inf") end
      if n ~= n then return "nan" end
      return n > 0 and "inf" or "-inf"
    end
    return format(numfmt, n)
  end

  -- lua_array_length: the array's length, or -1 when the table is an object
  local function array_length(t)
    local max, items = 0, 0
    for k in next, t do
      if type(k) == "number" and k >= 1 and floor(k) == k then
        if k > max then max = k end
        items = items + 1
      else
        return -1
      end
    end
    if cfg.sparse_ratio > 0 and max > items * cfg.sparse_ratio and max > cfg.sparse_safe then
      if not cfg.sparse_convert then fail("Cannot serialise table: excessively sparse array") end
      return -1
    end
    return max
  end

  local enc
  enc = function(v, depth, out)
    local t = type(v)
    if t == "string" then
      out[#out + 1] = quote(v)
    elseif t == "number" then
      out[#out + 1] = number(v)
    elseif t == "boolean" then
      out[#out + 1] = v and "true" or "false"
    elseif t == "nil" or v == null then
      out[#out + 1] = "null"
    elseif t == "table" then
      v = protected[v] or v  -- a read-only library table: the one behind it
      depth = depth + 1
      if depth > cfg.encode_depth then fail("Cannot serialise, excessive nesting (" .. depth .. ")") end
      local n = array_length(v)
      if n > 0 then
        out[#out + 1] = "["
        for i = 1, n do
          if i > 1 then out[#out + 1] = "," end
          enc(rawget(v, i), depth, out)
        end
        out[#out + 1] = "]"
      else
        out[#out + 1] = "{"
        local first = true
        for k, item in next, v do
          if not first then out[#out + 1] = "," end
          first = false
          local kt = type(k)
          if kt == "string" then out[#out + 1] = quote(k)
          elseif kt == "number" then out[#out + 1] = "\"" .. number(k) .. "\""
          else fail("Cannot serialise " .. kt .. ": table key must be a number or string") end
          out[#out + 1] = ":"
          enc(item, depth, out)
        end
        out[#out + 1] = "}"
      end
    else
      fail("Cannot serialise " .. t .. ": type not supported")
    end
  end

  local function encode(...)
    if select("#", ...) ~= 1 then fail("bad argument #1 to 'encode' (expected 1 argument)") end
    local out = {}
    enc((...), 0, out)
    return concat(out)
  end

  -- ---- decoding
  local TOKENS = {["{"] = "T_OBJ_BEGIN", ["}"] = "T_OBJ_END", ["["] = "T_ARR_BEGIN",
    ["]"] = "T_ARR_END", [":"] = "T_COLON", [","] = "T_COMMA"}
  local unescapes = {["\""] = "\"", ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f",
    n = "\n", r = "\r", t = "\t"}

  local function utf8(cp)
    if cp < 0x80 then return char(cp) end
    if cp < 0x800 then return char(0xC0 + floor(cp / 64), 0x80 + cp % 64) end
    if cp < 0x10000 then
      return char(0xE0 + floor(cp / 4096), 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
    end
    return char(0xF0 + floor(cp / 262144), 0x80 + floor(cp / 4096) % 64,
      0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
  end

  -- the next token at s[pos...]: kind, value, start, next position (kind "error": value is
  -- lua-cjson's message and start the character it names)
  local function token(s, pos)
    pos = find(s, "[^ \t\n\r]", pos) or #s + 1
    local c = sub(s, pos, pos)
    if c == "" or c == "\0" then return "T_END", nil, pos, pos end
    if TOKENS[c] then return TOKENS[c], c, pos, pos + 1 end
    if c == "\"" then
      local parts, i = {}, pos + 1
      while true do
        local j = find(s, "[%z\"\\]", i)
        if not j or byte(s, j) == 0 then return "error", "unexpected end of string", j or #s + 1 end
        parts[#parts + 1] = sub(s, i, j - 1)
        if byte(s, j) == 34 then return "T_STRING", concat(parts), pos, j + 1 end
        local e = sub(s, j + 1, j + 1)
        if e == "u" then
          local hex = match(s, "^%x%x%x%x", j + 2)
          local cp = hex and tonumber(hex, 16)
          local after = j + 6
          if cp and cp >= 0xD800 and cp <= 0xDBFF then
            local low = match(s, "^\\u(%x%x%x%x)", after)
            low = low and tonumber(low, 16)
            if low and low >= 0xDC00 and low <= 0xDFFF then
              cp = 0x10000 + (cp - 0xD800) * 1024 + (low - 0xDC00)
              after = after + 6
            else
              cp = nil
            end
          elseif cp and cp >= 0xDC00 and cp <= 0xDFFF then
            cp = nil
          end
          if not cp then return "error", "invalid unicode escape code", j end
          parts[#parts + 1] = utf8(cp)
          i = after
        elseif unescapes[e] then
          parts[#parts + 1] = unescapes[e]
          i = j + 2
        else
          return "error", "invalid escape code", j
        end
      end
    end
    local rest = lower(sub(s, pos, pos + 8))
    if find(c, "^[%-%d]") or (cfg.dec_invalid and (find(rest, "^inf") or find(rest, "^nan"))) then
      local text = match(s, "^-?0[xX]%x+", pos)
        or (cfg.dec_invalid and (match(rest, "^-?infinity") or match(rest, "^-?inf") or match(rest, "^-?nan")))
        or match(s, "^-?%d+%.?%d*[eE][%+%-]?%d+", pos) or match(s, "^-?%.%d+[eE][%+%-]?%d+", pos)
        or match(s, "^-?%d+%.?%d*", pos) or match(s, "^-?%.%d+", pos)
      local n
      if text then
        local bare = gsub(text, "^-", "")
        if bare == "inf" or bare == "infinity" then n = huge
        elseif bare == "nan" then n = 0 / 0
        else n = tonumber(bare) end
        if n and sub(text, 1, 1) == "-" then n = -n end
      end
      if not n then return "error", "invalid number", pos end
      return "T_NUMBER", n, pos, pos + #text
    end
    if sub(s, pos, pos + 3) == "true" then return "T_BOOLEAN", true, pos, pos + 4 end
    if sub(s, pos, pos + 4) == "false" then return "T_BOOLEAN", false, pos, pos + 5 end
    if sub(s, pos, pos + 3) == "null" then return "T_NULL", null, pos, pos + 4 end
    return "error", "invalid token", pos
  end

  local function expected(what, kind, value, at)
    if kind == "error" then kind = value end
    fail("Expected " .. what .. " but found " .. kind .. " at character " .. at)
  end

  local value
  local function descend(depth, at)
    depth = depth + 1
    if depth > cfg.decode_depth then
      fail("Found too many nested data structures (" .. depth .. ") at character " .. at)
    end
    return depth
  end

  value = function(s, pos, depth)
    local kind, v, at, nxt = token(s, pos)
    if kind == "T_STRING" or kind == "T_NUMBER" or kind == "T_BOOLEAN" or kind == "T_NULL" then
      return v, nxt
    end
    if kind == "T_OBJ_BEGIN" then
      depth = descend(depth, at)
      local t = {}
      kind, v, at, nxt = token(s, nxt)
      if kind == "T_OBJ_END" then return t, nxt end
      while true do
        if kind ~= "T_STRING" then expected("object key string", kind, v, at) end
        local key = v
        kind, v, at, nxt = token(s, nxt)
        if kind ~= "T_COLON" then expected("colon", kind, v, at) end
        t[key], nxt = value(s, nxt, depth)
        kind, v, at, nxt = token(s, nxt)
        if kind == "T_OBJ_END" then return t, nxt end
        if kind ~= "T_COMMA" then expected("comma or object end", kind, v, at) end
        kind, v, at, nxt = token(s, nxt)
      end
    end
    if kind == "T_ARR_BEGIN" then
      depth = descend(depth, at)
      local t, n = {}, 0
      kind, v, at, nxt = token(s, nxt)
      if kind == "T_ARR_END" then return t, nxt end
      nxt = at
      while true do
        n = n + 1
        t[n], nxt = value(s, nxt, depth)
        kind, v, at, nxt = token(s, nxt)
        if kind == "T_ARR_END" then return t, nxt end
        if kind ~= "T_COMMA" then expected("comma or array end", kind, v, at) end
      end
    end
    expected("value", kind, v, at)
  end

  local function decode(...)
    if select("#", ...) ~= 1 then fail("bad argument #1 to 'decode' (expected 1 argument)") end
    local text = ...
    local t = type(text)
    if t == "number" then text = tostr(text)
    elseif t ~= "string" then
      fail("bad argument #1 to 'decode' (string expected, got " .. t .. ")")
    end
    local v, nxt = value(text, 1, 0)
    local kind, tv, at = token(text, nxt)
    if kind ~= "T_END" then expected("the end", kind, tv, at) end
    return v
  end

  -- errors are raised at the caller's line (`user_script:1:`); in Redis these are C
  -- functions, which keep the script's frame even in `return cjson.decode(x)`: here such a
  -- tail call loses it (see docs/store.md)
  local function guarded(ok, ...)
    if ok then return ... end
    error((...), 3)
  end
  cjson.encode = function(...)
    local result = guarded(raw_pcall(encode, ...))
    return result
  end
  cjson.decode = function(...)
    local result = guarded(raw_pcall(decode, ...))
    return result
  end

  -- the configuration functions: each sets (when given) and returns its setting
  local function flag(v) if v then return 1 end return 0 end
  cjson.encode_max_depth = function(n)
    if n ~= nil then cfg.encode_depth = tonumber(n) end
    return cfg.encode_depth
  end
  cjson.decode_max_depth = function(n)
    if n ~= nil then cfg.decode_depth = tonumber(n) end
    return cfg.decode_depth
  end
  cjson.encode_number_precision = function(n)
    if n ~= nil then
      n = tonumber(n)
      if not n or n < 1 or n > 14 then error("bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)", 2) end
      cfg.precision, numfmt = n, "%." .. n .. "g"
    end
    return cfg.precision
  end
  cjson.encode_keep_buffer = function(v)
    if v ~= nil then cfg.keep = v and true or false end
    return flag(cfg.keep)
  end
  cjson.encode_invalid_numbers = function(v)
    if v ~= nil then cfg.enc_invalid = (v == "null") and "null" or (v and true or false) end
    if cfg.enc_invalid == "null" then return "null" end
    return flag(cfg.enc_invalid)
  end
  cjson.decode_invalid_numbers = function(v)
    if v ~= nil then cfg.dec_invalid = v and true or false end
    return flag(cfg.dec_invalid)
  end
  cjson.encode_sparse_array = function(convert, ratio, safe)
    if convert ~= nil then cfg.sparse_convert = convert and true or false end
    if ratio ~= nil then cfg.sparse_ratio = tonumber(ratio) end
    if safe ~= nil then cfg.sparse_safe = tonumber(safe) end
    return flag(cfg.sparse_convert), cfg.sparse_ratio, cfg.sparse_safe
  end
end
VIEW.cjson = cjson
"""
    + BINLIBS
    + r"""
VIEW.rawset = function(t, k, v)
  if protected[t] then refuse(0) end
  return rawset(t, k, v)
end
VIEW.rawget = function(t, k)
  local behind = protected[t]
  if behind then return behind[k] end
  return rawget(t, k)
end
VIEW.setmetatable = function(t, m)
  if protected[t] then refuse(0) end
  return setmetatable(t, m)
end

local ENV

local function safe_loadstring(code, name)
  if type(code) == "string" and byte(code, 1) == 27 then
    return nil, "binary chunks are not allowed"
  end
  local f, err = raw_loadstring(code, name)
  if f then raw_setfenv(f, ENV) end
  return f, err
end
VIEW.loadstring = safe_loadstring
VIEW.load = function(source, name)
  if type(source) == "string" then return safe_loadstring(source, name) end
  local parts = {}
  while true do
    local piece = source()
    if piece == nil or piece == "" then break end
    parts[#parts + 1] = piece
  end
  return safe_loadstring(concat(parts), name)
end

-- luaPushErrorBuff: "-CODE message" or "message" (code ERR) into an error table
local function error_table(s)
  local code, msg
  if byte(s, 1) == 45 then
    local space = find(s, " ", 1, true)
    if space then
      code, msg = sub(s, 2, space - 1), sub(s, space + 1)
    else
      code, msg = "ERR", sub(s, 2)
    end
  else
    code, msg = "ERR", s
  end
  msg = (gsub((gsub(msg, "^[\r\n]+", "")), "[\r\n]+$", ""))
  return {err = code .. " " .. msg}
end

-- a Python exception raised by redis.call carries the error reply's text
local function unwrap(e)
  if type(e) == "userdata" then
    local text = py_error_text(e)
    if text then return {err = text} end
  end
  return e
end

local script_resp = 2  -- what redis.setresp chose (the conversions follow it)

-- ---------------------------------------------------------------- Lua values to replies
local function no_newlines(s)
  return (gsub(s, "[\r\n]", " "))
end

local function bulk(s)
  return "$" .. #s .. "\r\n" .. s .. "\r\n"
end

local function null(proto)
  if proto == 3 then return "_\r\n" end
  return "$-1\r\n"
end

local function integer(n)
  if n ~= n or n >= 9223372036854775807 or n < -9223372036854775808 then
    return ":-9223372036854775808\r\n"  -- what the C cast gives on x86-64
  end
  if n < 0 then n = -floor(-n) else n = floor(n) end
  return format(":%.0f\r\n", n)
end

local function double(d, proto)
  local text
  if d == huge then text = "inf" elseif d == -huge then text = "-inf"
  elseif d ~= d then text = "nan" else text = format("%.17g", d) end
  if proto == 3 then return "," .. text .. "\r\n" end
  return bulk(text)
end

local encode
encode = function(v, proto, out)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = bulk(v)
  elseif t == "number" then
    out[#out + 1] = integer(v)
  elseif t == "boolean" then
    if script_resp == 2 then
      out[#out + 1] = v and ":1\r\n" or null(proto)
    elseif proto == 3 then
      out[#out + 1] = v and "#t\r\n" or "#f\r\n"
    else
      out[#out + 1] = v and ":1\r\n" or ":0\r\n"
    end
  elseif t == "table" then
    local f = rawget(v, "err")
    if type(f) == "string" then
      out[#out + 1] = "-" .. no_newlines(f) .. "\r\n"
      return
    end
    f = rawget(v, "ok")
    if type(f) == "string" then
      out[#out + 1] = "+" .. no_newlines(f) .. "\r\n"
      return
    end
    f = rawget(v, "double")
    if type(f) == "number" then
      out[#out + 1] = double(f, proto)
      return
    end
    f = rawget(v, "big_number")
    if type(f) == "string" then
      f = no_newlines(f)
      out[#out + 1] = proto == 3 and "(" .. f .. "\r\n" or bulk(f)
      return
    end
    f = rawget(v, "verbatim_string")
    if type(f) == "table" then
      local fmt, text = rawget(f, "format"), rawget(f, "string")
      if type(fmt) == "string" and type(text) == "string" then
        if proto == 3 then
          out[#out + 1] = "=" .. (#text + 4) .. "\r\n" .. sub(fmt .. "   ", 1, 3) .. ":" .. text .. "\r\n"
        else
          out[#out + 1] = bulk(text)
        end
        return
      end
    end
    f = rawget(v, "map")
    if type(f) == "table" then
      local at, n = #out + 1, 0
      out[at] = ""
      for k, item in next, f do
        encode(k, proto, out)
        encode(item, proto, out)
        n = n + 1
      end
      out[at] = proto == 3 and "%" .. n .. "\r\n" or "*" .. (2 * n) .. "\r\n"
      return
    end
    f = rawget(v, "set")
    if type(f) == "table" then
      local at, n = #out + 1, 0
      out[at] = ""
      for k in next, f do
        encode(k, proto, out)
        n = n + 1
      end
      out[at] = (proto == 3 and "~" or "*") .. n .. "\r\n"
      return
    end
    local at, n = #out + 1, 0
    out[at] = ""
    while true do
      local item = rawget(v, n + 1)
      if item == nil then break end
      n = n + 1
      encode(item, proto, out)
    end
    out[at] = "*" .. n .. "\r\n"
  else
    out[#out + 1] = null(proto)
  end
end

local function to_reply(v, proto)
  script_resp = py_getresp()
  local out = {}
  encode(v, proto, out)
  return concat(out)
end

-- ---------------------------------------------------------------- the redis table
local function runtime_api()
  local redis = {}
  -- Lua functions calling Python; a script's `return redis.call(...)` is compiled as a
  -- plain call (untail.py), so the script's frame, and the line an error names, stays
  redis.call = function(...)
    local n = select("#", ...)
    if n < DIRECT_ARGS then return py_call(...) end
    return py_call_packed({...}, n)
  end
  redis.pcall = function(...)
    local n = select("#", ...)
    if n < DIRECT_ARGS then return py_pcall(...) end
    return py_pcall_packed({...}, n)
  end
  -- the ones that may raise are C functions (Python) too, for the same reason
  redis.setresp = py_setresp
  redis.sha1hex = py_api.sha1hex
  redis.error_reply = function(...)
    local s = ...
    if select("#", ...) ~= 1 or type(s) ~= "string" then
      return error_table("wrong number or type of arguments")
    end
    if byte(s, 1) ~= 45 then s = "-" .. s end
    return error_table(s)
  end
  redis.status_reply = function(...)
    local s = ...
    if select("#", ...) ~= 1 or type(s) ~= "string" then
      return error_table("wrong number or type of arguments")
    end
    return {ok = s}
  end
  redis.set_repl = py_api.set_repl
  redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
  redis.replicate_commands = function() return true end
  redis.breakpoint = function() return false end
  redis.debug = function() end
  redis.acl_check_cmd = py_api.acl_check_cmd
  return redis
end

local function add_common(redis)
  redis.log = py_api.log
  redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
  redis.REDIS_VERSION, redis.REDIS_VERSION_NUM = "7.0.15", 0x07000f
  return redis
end

VIEW.redis = add_common(runtime_api())

local function fix_pcall(ok, ...)
  if ok then return ok, ... end
  local e = unwrap((...))
  if type(e) == "table" then
    local m = e.err
    if type(m) == "string" or type(m) == "number" then return false, m end
  end
  return false, e
end
VIEW.pcall = function(...) return fix_pcall(raw_pcall(...)) end

for _, name in ipairs({"string", "math", "table", "coroutine", "bit", "cjson", "cmsgpack", "struct",
    "redis"}) do
  if VIEW[name] ~= nil then VIEW[name] = readonly(VIEW[name]) end
end
setmetatable(VIEW, {__index = missing_global, __newindex = function() refuse() end, __metatable = RO_META})
ENV = environment(VIEW)
rawset(VIEW, "_G", ENV)

-- ---------------------------------------------------------------- running
local killed_message = "Script killed by user with SCRIPT KILL..."
local function hook()
  if py_interrupted() then
    dbg.sethook(hook, "l")  -- every line from now on: a pcall cannot swallow the kill
    local info = dbg.getinfo(2, "S")
    if info and info.source == SELF then return end  -- not in the error handler: at the script's next line
    error(error_table(killed_message))
  end
end

-- the frame an error is reported at: the first one that is neither C nor this prelude
local function handler(err)
  local level, info = 2, nil
  while true do
    info = dbg.getinfo(level, "nSl")
    if info == nil or (info.what ~= "C" and info.source ~= SELF) then break end
    level = level + 1
  end
  err = unwrap(err)
  if type(err) ~= "table" then err = {err = "ERR " .. tostring(err)} end
  if info then
    rawset(err, "source", info.source)
    rawset(err, "line", info.currentline)
  end
  return err
end

local function failure(err, funcname)
  if type(err) ~= "table" then
    return "-ERR Error running script " .. funcname .. ", " .. sub(tostring(err), 1, 100) .. "\r\n"
  end
  local msg = err.err
  if type(msg) ~= "string" and type(msg) ~= "number" then msg = "" end
  local text = tostring(msg)
  local source, line = err.source, err.line
  if (type(source) == "string" or type(source) == "number")
      and (type(line) == "string" or type(line) == "number") then
    text = text .. " script: " .. funcname .. ", on " .. tostring(source) .. ":" .. tostring(line) .. "."
  end
  return "-" .. no_newlines(text) .. "\r\n"
end

-- `f` compiled again without tail calls to redis.call/pcall (untail.py)
local function untailed(f, name)
  local g = raw_loadstring(py_untail(dump(f)), name)
  return g or f
end

local scripts = {}     -- EVAL scripts by function name (f_<sha1>)
local libraries = {}   -- function libraries by load key: {function name -> callback}

local entry = {}

-- compile an EVAL script body; nil on success, else the compiler's message
function entry.compile(name, code)
  local f, err = raw_loadstring(code, "@user_script")
  if not f then return err end
  f = untailed(f, "@user_script")
  raw_setfenv(f, ENV)
  scripts[name] = f
  return nil
end

-- run an EVAL script (lib false) or a library's function; the reply as RESP bytes
function entry.run(name, lib, caller_proto, killed_by, nkeys, args)
  local is_eval = not lib
  local f
  if is_eval then f = scripts[name] else f = libraries[lib][name] end
  local keys, argv = {}, {}
  for i = 1, #args do
    if i <= nkeys then keys[i] = args[i] else argv[i - nkeys] = args[i] end
  end
  killed_message = "Script killed by user with " .. killed_by .. "..."
  script_resp = 2
  local ok, result
  dbg.sethook(hook, "", 100000)
  if is_eval then
    rawset(VIEW, "KEYS", keys)
    rawset(VIEW, "ARGV", argv)
    ok, result = xpcall(f, handler)
  else
    ok, result = xpcall(function() return f(keys, argv) end, handler)
  end
  dbg.sethook()
  local funcname = is_eval and sub(name, 3) or name
  local reply
  if ok then
    local done
    done, reply = raw_pcall(to_reply, result, caller_proto)
    if not done then reply = "-ERR reached lua stack limit\r\n" end
  else
    reply = failure(result, funcname)
  end
  return reply
end

-- ---------------------------------------------------------------- function libraries
local load_api = add_common({})
local register = {}
local function read_flags(flags)
  local list = {}
  local i = 1
  while true do
    local flag = flags[i]
    if flag == nil then break end
    if type(flag) ~= "string" and type(flag) ~= "number" then return nil end
    list[#list + 1] = tostring(flag)
    i = i + 1
  end
  return list
end
load_api.register_function = function(...)
  if not register.open then
    error(error_table("redis.register_function can only be called on FUNCTION LOAD command"))
  end
  local argc = select("#", ...)
  if argc < 1 or argc > 2 then error(error_table("wrong number of arguments to redis.register_function")) end
  local name, callback, description, flags
  if argc == 1 then
    local args = ...
    if type(args) ~= "table" then
      error(error_table("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."))
    end
    for k, v in pairs(args) do
      if type(k) ~= "string" and type(k) ~= "number" then
        error(error_table("named argument key given to redis.register_function is not a string"))
      end
      local key = string.lower(tostring(k))
      if key == "function_name" then
        if type(v) ~= "string" and type(v) ~= "number" then
          error(error_table("function_name argument given to redis.register_function must be a string"))
        end
        name = tostring(v)
      elseif key == "description" then
        if type(v) ~= "string" and type(v) ~= "number" then
          error(error_table("description argument given to redis.register_function must be a string"))
        end
        description = tostring(v)
      elseif key == "callback" then
        if type(v) ~= "function" then
          error(error_table("callback argument given to redis.register_function must be a function"))
        end
        callback = v
      elseif key == "flags" then
        if type(v) ~= "table" then
          error(error_table("flags argument to redis.register_function must be a table representing function flags"))
        end
        flags = read_flags(v)
        if flags == nil then error(error_table("unknown flag given")) end
      else
        error(error_table("unknown argument given to redis.register_function"))
      end
    end
    if name == nil then error(error_table("redis.register_function must get a function name argument")) end
    if callback == nil then error(error_table("redis.register_function must get a callback argument")) end
  else
    local first, second = ...
    if type(first) ~= "string" and type(first) ~= "number" then
      error(error_table("first argument to redis.register_function must be a string"))
    end
    if type(second) ~= "function" then
      error(error_table("second argument to redis.register_function must be a function"))
    end
    name, callback = tostring(first), second
  end
  local problem = py_register(name, description, unpack(flags or {}))
  if problem then error(error_table(problem)) end
  if register.functions[name] ~= nil then error(error_table("Function already exists in the library")) end
  register.functions[name] = callback
end
setmetatable(load_api, {__index = missing_global})
local load_view = setmetatable({redis = readonly(load_api)}, {__index = missing_global})

-- run a library's code, keeping its functions under `key`; nil on success, else the error text
function entry.load_library(key, code, timeout_ms, clock)
  local f, err = raw_loadstring(code, "@user_function")
  if not f then return "Error compiling function: " .. err end
  f = untailed(f, "@user_function")
  local env, meta = environment(load_view)
  raw_setfenv(f, env)
  register.open, register.functions = true, {}
  local started = clock()
  local function load_hook()
    if timeout_ms > 0 and clock() - started > timeout_ms then
      dbg.sethook(load_hook, "l")
      local info = dbg.getinfo(2, "S")
      if info and info.source == SELF then return end
      error(error_table("FUNCTION LOAD timeout"))
    end
  end
  dbg.sethook(load_hook, "", 100000)
  local ok, problem = raw_pcall(f)
  dbg.sethook()
  register.open = false
  rawset(meta, "__index", VIEW)  -- the functions run with the runtime globals
  if not ok then
    local msg
    if type(problem) == "table" and type(problem.err) == "string" then msg = problem.err
    else msg = "ERR " .. tostring(problem) end
    return "Error registering functions: " .. msg
  end
  libraries[key] = register.functions
  return nil
end

function entry.drop_library(key)
  libraries[key] = nil
end

return entry.compile, entry.run, entry.load_library, entry.drop_library
"""
)
