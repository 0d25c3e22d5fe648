"""The Lua side of the sandbox: run once in every fresh Lua state (see `sandbox.LuaState`).

It builds what Redis 7.0 gives a script: the `redis` table, a `pcall` that turns error
tables into their message, globals that refuse to be created or read when missing, library
tables that refuse to be changed, no `os`/`io`/`loadfile`/`dofile`/`print`/`require`, and the
two conversions (a command's RESP reply into Lua values, a script's result into RESP). It
returns the entry points Python calls: compile, run, load a library, set the key arrays.

Stock Lua has no read-only tables (Redis patches its Lua for them): the globals a script
sees are an empty proxy whose metatable reads through to the real ones, and each library
table is such a proxy too; `rawset`, `rawget`, `setmetatable`, `load` and `loadstring`
are wrapped so that no script reaches the real tables behind them (Debian's Redis 7.0.15,
the reference, has no `getfenv`, `setfenv` or `newproxy` either).
"""

PRELUDE = r"""
local py_call, py_pcall, py_setresp, py_getresp, py_error_text, py_api, py_interrupted,
  py_register, py_bit = ...

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
for name in string.gmatch([[string math table coroutine bit redis xpcall tostring
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
  -- C functions (Python callables), so that `return redis.call(...)` keeps the script's
  -- frame for the error's line, as Redis's C redis.call does
  redis.call = py_call
  redis.pcall = py_pcall
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

for _, name in ipairs({"string", "math", "table", "coroutine", "bit", "redis"}) do
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

local scripts = {}     -- EVAL scripts by function name (f_<sha1>)
local libraries = {}   -- function libraries by load key: {function name -> callback}

local entry = {}

-- compile an EVAL script body; nil on success, else the compiler's message
function entry.compile(name, code)
  local f, err = raw_loadstring(code, "@user_script")
  if not f then return err end
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
