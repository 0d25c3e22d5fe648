"""`cmsgpack` (lua-cmsgpack 0.4.0) and `struct` (Roberto's struct.c) in Lua, as Redis 7.0 ships them.

A Lua fragment that `prelude.PRELUDE` splices in after cjson: it sets `VIEW.cmsgpack` and
`VIEW.struct`. Lua 5.1 numbers are doubles and it has no bit operators, so bytes are made
and read with arithmetic (`frexp`/`ldexp` for IEEE 754 bits), 64-bit integers as two 32-bit
words; only a NaN's bits, which Lua cannot see, come from Python (`sandbox.IEEE`). The results are the C libraries' on x86-64, byte for byte: integer and float widths,
float32 where a double survives the round trip, the out-of-range casts (`(unsigned long)NaN`
is 2^63), the 8000-slot C stack (LUAI_MAXCSTACK) that bounds how many values `unpack`
returns, and lauxlib's error texts ("bad argument #1 to 'pack' (...)", the caller's line).

Their errors are raised at the caller's line, as luaL_error does from a C function; the
argument errors name the function as the caller called it (debug.getinfo "n"). A library
function called in tail position (`return cmsgpack.unpack(x)`) has lost its caller's frame
in Lua, so such an error names no line and the function `?` (see docs/store.md).
"""

BINLIBS = r"""
do
  local floor, ceil, frexp, ldexp = math.floor, math.ceil, math.frexp, math.ldexp
  local char, rep, match = string.char, string.rep, string.match
  local TWO32, TWO31, TWO63 = 4294967296, 2147483648, 2^63
  local MAXCSTACK = 8000  -- LUAI_MAXCSTACK: the stack slots a C function may use

  -- ---------------------------------------------------------------- lauxlib's errors
  -- the library functions (each a C function's frame in Redis). No function here tail-calls
  -- one that may raise: the frame it drops would be a "(tail call)" the error handler names
  local public = {}

  -- the stack level, seen from the function that calls this, of the library function running
  local function entry_level()
    local level = 3
    while true do
      local info = dbg.getinfo(level, "f")
      if info == nil then return nil end
      if public[info.func] then return level - 1 end
      level = level + 1
    end
  end

  -- luaL_error (`where`: the caller's position first) or a runtime error (no position)
  local function raise(msg, where)
    local level = entry_level()
    if where and level then error(msg, level + 1) end
    error(msg, 0)
  end

  local function argerror(narg, extramsg)
    local level = entry_level()
    local info = level and dbg.getinfo(level, "n")
    local name = info and info.name
    if info and info.namewhat == "method" then
      narg = narg - 1
      if narg == 0 then
        raise("calling '" .. tostring(name) .. "' on bad self (" .. extramsg .. ")", true)
      end
    end
    raise("bad argument #" .. narg .. " to '" .. (name or "?") .. "' (" .. extramsg .. ")", true)
  end

  local function typeerror(args, nargs, i, expected)
    local got = i > nargs and "no value" or type(args[i])
    argerror(i, expected .. " expected, got " .. got)
  end

  local function checkstack(top, size, msg)
    if top + size > MAXCSTACK then raise("stack overflow (" .. msg .. ")", true) end
  end

  local function checklstring(args, nargs, i)
    local v = args[i]
    local t = type(v)
    if t == "string" then return v end
    if t == "number" then return tostring(v) end
    typeerror(args, nargs, i, "string")
  end

  local function checknumber(args, nargs, i)
    local v = args[i]
    local t = type(v)
    if t == "number" then return v end
    v = t == "string" and tonumber(v)
    if not v then typeerror(args, nargs, i, "number") end
    return v
  end

  -- lua_tointeger: truncated to a ptrdiff_t (out of range: what x86's conversion gives)
  local function tointeger(n)
    if n >= 0 then n = floor(n) else n = ceil(n) end
    if not (n >= -TWO63 and n < TWO63) then return -TWO63 end
    return n
  end

  local function checkinteger(args, nargs, i)
    return tointeger(checknumber(args, nargs, i))
  end

  local function optinteger(args, nargs, i, default)
    if args[i] == nil then return default end
    local n = checkinteger(args, nargs, i)
    return n
  end

  -- `%d` of an (int) cast
  local function int32(n)
    n = n % TWO32
    if n >= TWO31 then n = n - TWO32 end
    return format("%d", n)
  end

  -- return t[1..n] (n up to 7999: Lua's unpack has the same 8000-slot stack)
  local function spread(t, n)
    if n <= 7997 then return unpack(t, 1, n) end
    return t[1], t[2], unpack(t, 3, n)
  end

  -- ---------------------------------------------------------------- bytes and IEEE 754
  local function be32(x)  -- 0 <= x < 2^32: four bytes, big-endian
    local d = x % 256
    x = (x - d) / 256
    local c = x % 256
    x = (x - c) / 256
    local b = x % 256
    return char((x - b) / 256, b, c, d)
  end

  local function read32(s, at)  -- four bytes at s[at], big-endian
    local a, b, c, d = byte(s, at, at + 3)
    return ((a * 256 + b) * 256 + c) * 256 + d
  end

  -- an integral n in [-2^63, 2^64) as the two 32-bit words of its 64-bit two's complement
  local function words(n)
    local hi = floor(n / TWO32)
    local lo = n - hi * TWO32
    if hi < 0 then hi = hi + TWO32 end
    return hi, lo
  end

  -- the words of a signed 64-bit integer (hi unsigned) as the nearest double
  local function signed64(hi, lo)
    if hi >= TWO31 then hi = hi - TWO32 end
    return hi * TWO32 + lo
  end

  local function negative(d)  -- the sign bit, -0 included (not for NaN)
    return d < 0 or (d == 0 and 1 / d < 0)
  end

  -- a NaN's bits (payload included: Lua cannot see them, Python can) and back
  local function nan_words(d)
    local bits = py_ieee.bits(d)
    return read32(bits, 1), read32(bits, 5)
  end

  local function nan_value(hi, lo)
    return py_ieee.value(be32(hi) .. be32(lo))
  end

  local function round_even(x)  -- x >= 0
    local f = floor(x)
    local rest = x - f
    if rest > 0.5 or (rest == 0.5 and f % 2 == 1) then return f + 1 end
    return f
  end

  -- (float)d: the bits of the nearest float32 (ties to even; too large: infinity; a NaN
  -- quiet, the top of its payload kept, as x86's cvtsd2ss makes it)
  local function float_bits(d)
    if d ~= d then
      local hi, lo = nan_words(d)
      local sign = hi >= TWO31 and TWO31 or 0
      local payload = (hi % 1048576) * 8 + floor(lo / 536870912)
      if payload < 4194304 then payload = payload + 4194304 end
      return sign + 0x7F800000 + payload
    end
    local sign = 0
    if negative(d) then sign, d = TWO31, -d end
    if d == huge then return sign + 0x7F800000 end
    if d == 0 then return sign end
    local m, e = frexp(d)
    if e < -125 then return sign + round_even(ldexp(d, 149)) end  -- subnormal
    local r = round_even(m * 16777216)
    if r == 16777216 then r, e = 8388608, e + 1 end
    if e > 128 then return sign + 0x7F800000 end
    return sign + (e + 126) * 8388608 + (r - 8388608)
  end

  -- (double)f of a float's bits (a NaN quiet, as cvtss2sd makes it)
  local function float_value(bits)
    local neg = bits >= TWO31
    if neg then bits = bits - TWO31 end
    local exponent, mantissa = floor(bits / 8388608), bits % 8388608
    local v
    if exponent == 255 then
      if mantissa ~= 0 then
        if mantissa < 4194304 then mantissa = mantissa + 4194304 end
        return nan_value((neg and TWO31 or 0) + 0x7FF00000 + floor(mantissa / 8),
          mantissa % 8 * 536870912)
      end
      v = huge
    elseif exponent == 0 then
      v = ldexp(mantissa, -149)
    else
      v = ldexp(mantissa + 8388608, exponent - 150)
    end
    if neg then return -v end
    return v
  end

  local function double_words(d)
    if d ~= d then return nan_words(d) end
    local sign = 0
    if negative(d) then sign, d = TWO31, -d end
    if d == huge then return sign + 0x7FF00000, 0 end
    if d == 0 then return sign, 0 end
    local m, e = frexp(d)
    local exponent, fraction
    if e >= -1021 then
      exponent, fraction = e + 1022, m * 9007199254740992 - 4503599627370496
    else
      exponent, fraction = 0, ldexp(d, 1074)  -- subnormal
    end
    local high = floor(fraction / TWO32)
    return sign + exponent * 1048576 + high, fraction - high * TWO32
  end

  local function double_value(hi, lo)
    local bits = hi
    local neg = hi >= TWO31
    if neg then hi = hi - TWO31 end
    local exponent = floor(hi / 1048576)
    local fraction = (hi % 1048576) * TWO32 + lo
    local v
    if exponent == 2047 then
      if fraction ~= 0 then return nan_value(bits, lo) end
      v = huge
    elseif exponent == 0 then
      v = ldexp(fraction, -1074)
    else
      v = ldexp(fraction + 4503599627370496, exponent - 1075)
    end
    if neg then return -v end
    return v
  end

  -- ---------------------------------------------------------------- cmsgpack
  local cmsgpack = {_NAME = "cmsgpack", _VERSION = "lua-cmsgpack 0.4.0",
    _COPYRIGHT = "Copyright (C) 2012, Salvatore Sanfilippo",
    _DESCRIPTION = "MessagePack C implementation for Lua"}
  local MAX_NESTING = 16

  local function header(n, fix, limit, op16, op32)
    if n <= limit then return char(fix + n) end
    if n <= 65535 then return char(op16, floor(n / 256), n % 256) end
    return char(op32) .. be32(n)
  end

  local function mp_integer(n)
    if n >= 0 then
      if n <= 127 then return char(n) end
      if n <= 255 then return char(0xcc, n) end
      if n <= 65535 then return char(0xcd, floor(n / 256), n % 256) end
      if n <= 4294967295 then return "\206" .. be32(n) end
      local hi, lo = words(n)
      return "\207" .. be32(hi) .. be32(lo)
    end
    if n >= -32 then return char(n + 256) end
    if n >= -128 then return char(0xd0, n + 256) end
    if n >= -32768 then
      n = n + 65536
      return char(0xd1, floor(n / 256), n % 256)
    end
    if n >= -TWO31 then return "\210" .. be32(n + TWO32) end
    local hi, lo = words(n)
    return "\211" .. be32(hi) .. be32(lo)
  end

  local function mp_number(n)
    if n == floor(n) and n >= -TWO63 and n < TWO63 then return mp_integer(n) end
    local bits = float_bits(n)
    if float_value(bits) == n then return "\202" .. be32(bits) end
    local hi, lo = double_words(n)
    return "\203" .. be32(hi) .. be32(lo)
  end

  -- the pieces of the string being packed (no script code runs while pack works)
  local buf, nbuf = {}, 0

  -- v is at stack slot `top` (the C code's Lua stack, which bounds it)
  local encode
  encode = function(v, level, top)
    local t = type(v)
    if t == "number" then
      nbuf = nbuf + 1
      if v >= 0 and v <= 127 and v == floor(v) then buf[nbuf] = char(v)
      else buf[nbuf] = mp_number(v) end
      return
    end
    if t == "table" and level == MAX_NESTING then t = "nil" end
    if t == "string" then
      local n = #v
      if n < 32 then buf[nbuf + 1] = char(0xa0 + n)
      elseif n <= 255 then buf[nbuf + 1] = char(0xd9, n)
      else buf[nbuf + 1] = header(n, 0, -1, 0xda, 0xdb) end
      buf[nbuf + 2] = v
      nbuf = nbuf + 2
    elseif t == "boolean" then
      nbuf = nbuf + 1
      buf[nbuf] = v and "\195" or "\194"
    elseif t == "table" then
      v = protected[v] or v
      if top + 2 > MAXCSTACK then checkstack(top, 2, "in function table_is_an_array") end
      local count, max, array = 0, 0, true
      for k in next, v do
        if type(k) ~= "number" or k <= 0 or k ~= floor(k) or k >= TWO31 then
          array = false
          break
        end
        if k > max then max = k end
        count = count + 1
      end
      if array and count == max then
        checkstack(top, 1, "in function mp_encode_lua_table_as_array")
        nbuf = nbuf + 1
        buf[nbuf] = header(count, 0x90, 15, 0xdc, 0xdd)
        level, top = level + 1, top + 1
        for i = 1, count do encode(rawget(v, i), level, top) end
      else
        checkstack(top, 3, "in function mp_encode_lua_table_as_map")
        count = 0
        for _ in next, v do count = count + 1 end
        nbuf = nbuf + 1
        buf[nbuf] = header(count, 0x80, 15, 0xde, 0xdf)
        level = level + 1
        for k, item in next, v do
          encode(k, level, top + 3)
          encode(item, level, top + 2)
        end
      end
    else
      nbuf = nbuf + 1
      buf[nbuf] = "\192"
    end
  end

  local function pack(...)
    local nargs = select("#", ...)
    if nargs == 0 then argerror(0, "MessagePack pack needs input.") end
    if nargs + nargs > MAXCSTACK then argerror(0, "Too many arguments for MessagePack pack.") end
    local args = {...}
    buf, nbuf = {}, 0
    for i = 1, nargs do encode(args[i], 0, nargs + i) end
    local packed = concat(buf, "", 1, nbuf)
    buf = {}
    return packed
  end

  local function eof() raise("Missing bytes in input.", true) end

  local decode
  local function decode_array(s, len, pos, n, top)
    local t = {}
    checkstack(top + 1, 1, "in function mp_decode_to_lua_array")
    for i = 1, n do
      local v
      v, pos = decode(s, len, pos, top + 2)
      t[i] = v
    end
    return t, pos
  end

  local function decode_map(s, len, pos, n, top)
    local t = {}
    for _ = 1, n do
      local k, v
      k, pos = decode(s, len, pos, top + 1)
      v, pos = decode(s, len, pos, top + 2)
      if k == nil then raise("table index is nil") end
      if k ~= k then raise("table index is NaN") end
      t[k] = v
    end
    return t, pos
  end

  -- the value at s[pos], to be pushed above `top` stack slots; and the position after it
  decode = function(s, len, pos, top)
    local left = len - pos + 1
    if left < 1 then eof() end
    if top + 1 > MAXCSTACK then
      checkstack(top, 1, "too many return values at once; use unpack_one or unpack_limit instead.")
    end
    local c = byte(s, pos)
    if c < 0x80 then return c, pos + 1 end
    if c >= 0xe0 then return c - 256, pos + 1 end
    if c < 0xa0 then
      local t
      if c < 0x90 then t, pos = decode_map(s, len, pos + 1, c - 0x80, top)
      else t, pos = decode_array(s, len, pos + 1, c - 0x90, top) end
      return t, pos
    end
    if c < 0xc0 then
      local n = c - 0xa0
      if left < 1 + n then eof() end
      return sub(s, pos + 1, pos + n), pos + 1 + n
    end
    if c == 0xc0 then return nil, pos + 1 end
    if c == 0xc2 then return false, pos + 1 end
    if c == 0xc3 then return true, pos + 1 end
    if c == 0xcc or c == 0xd0 then
      if left < 2 then eof() end
      local v = byte(s, pos + 1)
      if c == 0xd0 and v >= 128 then v = v - 256 end
      return v, pos + 2
    end
    if c == 0xcd or c == 0xd1 then
      if left < 3 then eof() end
      local a, b = byte(s, pos + 1, pos + 2)
      local v = a * 256 + b
      if c == 0xd1 and v >= 32768 then v = v - 65536 end
      return v, pos + 3
    end
    if c == 0xce or c == 0xd2 or c == 0xca then
      if left < 5 then eof() end
      local v = read32(s, pos + 1)
      if c == 0xca then v = float_value(v)
      elseif c == 0xd2 and v >= TWO31 then v = v - TWO32 end
      return v, pos + 5
    end
    if c == 0xcf or c == 0xd3 or c == 0xcb then
      if left < 9 then eof() end
      local hi, lo = read32(s, pos + 1), read32(s, pos + 5)
      if c == 0xcb then return double_value(hi, lo), pos + 9 end
      return signed64(hi, lo), pos + 9
    end
    if c == 0xd9 or c == 0xda or c == 0xdb then
      local width = c == 0xd9 and 1 or c == 0xda and 2 or 4
      if left < 1 + width then eof() end
      local n
      if width == 1 then n = byte(s, pos + 1)
      elseif width == 2 then n = byte(s, pos + 1) * 256 + byte(s, pos + 2)
      else n = read32(s, pos + 1) end
      pos = pos + 1 + width
      if left - 1 - width < n then eof() end
      return sub(s, pos, pos + n - 1), pos + n
    end
    if c >= 0xdc and c <= 0xdf then
      local width = (c == 0xdc or c == 0xde) and 2 or 4
      if left < 1 + width then eof() end
      local n
      if width == 2 then n = byte(s, pos + 1) * 256 + byte(s, pos + 2)
      else n = read32(s, pos + 1) end
      local t
      if c <= 0xdd then t, pos = decode_array(s, len, pos + 1 + width, n, top)
      else t, pos = decode_map(s, len, pos + 1 + width, n, top) end
      return t, pos
    end
    raise("Bad data format in input.", true)
  end

  -- mp_unpack_full: `base` stack slots are taken by the arguments; the values to return in
  -- a table, and their number (a library function must not tail-call what may raise: its
  -- frame, which the error names, would be gone)
  local function unpack_full(s, limit, offset, base)
    local len = #s
    if offset < 0 or limit < 0 then
      raise("Invalid request to unpack with offset of " .. int32(offset) .. " and limit of "
        .. int32(len) .. ".", true)
    elseif offset > len then
      raise("Start offset " .. int32(offset) .. " greater than input length " .. int32(len)
        .. ".", true)
    end
    local all = limit == 0 and offset == 0
    if all then limit = 2147483647 end
    local results, count, pos = {}, 0, offset + 1
    local first = all and 0 or 1  -- the offset goes first
    while pos <= len and count < limit do
      results[first + count + 1], pos = decode(s, len, pos, base + count)
      count = count + 1
    end
    if all then return results, count end
    checkstack(base + count, 1, "in function mp_unpack_full")
    results[1] = pos > len and -1 or pos - 1
    return results, count + 1
  end

  local function unpack_all(...)
    local nargs = select("#", ...)
    local args = {...}
    local results, n = unpack_full(checklstring(args, nargs, 1), 0, 0, nargs)
    return spread(results, n)
  end

  local function unpack_one(...)
    local nargs = select("#", ...)
    local args = {...}
    local offset = optinteger(args, nargs, 2, 0)
    local results, n = unpack_full(checklstring(args, nargs, 1), 1, offset, 1)
    return spread(results, n)
  end

  local function unpack_limit(...)
    local nargs = select("#", ...)
    local args = {...}
    local limit = checkinteger(args, nargs, 2)
    local offset = optinteger(args, nargs, 3, 0)
    local results, n = unpack_full(checklstring(args, nargs, 1), limit, offset, 1)
    return spread(results, n)
  end

  cmsgpack.pack, cmsgpack.unpack = pack, unpack_all
  cmsgpack.unpack_one, cmsgpack.unpack_limit = unpack_one, unpack_limit
  for _, f in next, {pack, unpack_all, unpack_one, unpack_limit} do public[f] = true end
  VIEW.cmsgpack = cmsgpack

  -- ---------------------------------------------------------------- struct
  local INTEGERS = {b = 1, B = 1, h = 2, H = 2, l = 8, L = 8, T = 8, i = 4, I = 4}
  local MAXINTSIZE, MAXALIGN = 32, 8

  local function getnum(fmt, i, default)
    local digits = match(fmt, "^%d+", i)
    if not digits then return default, i end
    local a = 0
    for k = 1, #digits do
      local d = byte(digits, k) - 48
      if a > 214748364 or a * 10 > 2147483647 - d then raise("integral size overflow", true) end
      a = a * 10 + d
    end
    return a, i + #digits
  end

  -- the option's size (and the format position after its number)
  local function optsize(opt, fmt, i)
    if opt == "c" then
      local size
      size, i = getnum(fmt, i, 1)
      return size, i
    end
    if opt == "i" or opt == "I" then
      local size
      size, i = getnum(fmt, i, 4)
      if size > MAXINTSIZE then
        raise("integral size " .. size .. " is larger than limit of " .. MAXINTSIZE, true)
      end
      return size, i
    end
    if INTEGERS[opt] then return INTEGERS[opt], i end
    if opt == "f" then return 4, i end
    if opt == "d" then return 8, i end
    if opt == "x" then return 1, i end
    return 0, i
  end

  local function band(x, mask)  -- x & mask, mask < 32 (x in two's complement)
    x = x % 32
    local result, bit = 0, 1
    while mask > 0 do
      if mask % 2 == 1 and x % 2 == 1 then result = result + bit end
      mask, x, bit = floor(mask / 2), floor(x / 2), bit * 2
    end
    return result
  end

  local function gettoalign(len, align, opt, size)
    if size == 0 or opt == "c" then return 0 end
    if size > align then size = align end
    return band(size - band(len, size - 1), size - 1)
  end

  -- '>', '<', '!n', ' ': the new byte order and alignment, the format position after it
  local function control(opt, fmt, i, big, align)
    if opt == " " then return big, align, i end
    if opt == ">" then return true, align, i end
    if opt == "<" then return false, align, i end
    if opt == "!" then
      local a
      a, i = getnum(fmt, i, MAXALIGN)
      local m = frexp(a)
      if a <= 0 or m ~= 0.5 then raise("alignment " .. a .. " is not a power of 2", true) end
      return big, a, i
    end
    argerror(1, "invalid format option '" .. opt .. "'")
  end

  local function checkformat(args, nargs)
    local fmt = checklstring(args, nargs, 1)
    local nul = find(fmt, "\0", 1, true)
    if nul then return sub(fmt, 1, nul - 1) end  -- a C string
    return fmt
  end

  -- `size` bytes of the words hi, lo (zeros past 8), in the byte order asked
  local function int_bytes(hi, lo, size, big)
    local b = {}
    for k = 1, size do
      if k <= 4 then b[k] = lo % 256; lo = floor(lo / 256)
      elseif k <= 8 then b[k] = hi % 256; hi = floor(hi / 256)
      else b[k] = 0 end
    end
    if big then
      for k = 1, floor(size / 2) do b[k], b[size + 1 - k] = b[size + 1 - k], b[k] end
    end
    return char(unpack(b, 1, size))
  end

  -- (unsigned long) of a number as putinteger casts it: its two 32-bit words
  local function cast_words(n)
    if n < 0 then
      n = ceil(n)
      if n < -TWO63 then n = -TWO63 end
    elseif n >= 0 then
      n = floor(n)
      if n >= 18446744073709551616 then return 0, 0 end
    else
      return TWO31, 0  -- NaN
    end
    return words(n)
  end

  local function struct_pack(...)
    local nargs = select("#", ...)
    local args = {...}
    local fmt = checkformat(args, nargs)
    -- b_pack pushes a nil above its arguments: a missing one is "nil", then "no value" (past
    -- 8 KB of output, lauxlib's buffer pieces would sit there too: not emulated)
    nargs = nargs + 1
    local big, align = false, 1
    local out, total, arg, i = {}, 0, 2, 1
    while i <= #fmt do
      local opt = sub(fmt, i, i)
      local size
      size, i = optsize(opt, fmt, i + 1)
      local toalign = gettoalign(total, align, opt, size)
      total = total + toalign
      if toalign > 0 then out[#out + 1] = rep("\0", toalign) end
      if INTEGERS[opt] then
        local hi, lo = cast_words(checknumber(args, nargs, arg))
        arg = arg + 1
        out[#out + 1] = int_bytes(hi, lo, size, big)
      elseif opt == "x" then
        out[#out + 1] = "\0"
      elseif opt == "f" then
        out[#out + 1] = int_bytes(0, float_bits(checknumber(args, nargs, arg)), 4, big)
        arg = arg + 1
      elseif opt == "d" then
        local hi, lo = double_words(checknumber(args, nargs, arg))
        arg = arg + 1
        out[#out + 1] = int_bytes(hi, lo, 8, big)
      elseif opt == "c" or opt == "s" then
        local s = checklstring(args, nargs, arg)
        arg = arg + 1
        local l = #s
        if size == 0 then size = l end
        if l < size then argerror(arg, "string too short") end
        out[#out + 1] = sub(s, 1, size)
        if opt == "s" then
          out[#out + 1] = "\0"
          size = size + 1
        end
      else
        big, align, i = control(opt, fmt, i, big, align)
      end
      total = total + size
    end
    return concat(out)
  end

  -- getinteger: the field's low 64 bits (as the C code reads them), signed or not
  local function getinteger(data, at, big, signed, size)
    local n = size < 8 and size or 8
    local b = {}
    for k = 1, n do
      if big then b[k] = byte(data, at + size - k) else b[k] = byte(data, at + k - 1) end
    end
    for k = n + 1, 8 do b[k] = 0 end
    local lo = ((b[4] * 256 + b[3]) * 256 + b[2]) * 256 + b[1]
    local hi = ((b[8] * 256 + b[7]) * 256 + b[6]) * 256 + b[5]
    if signed then
      local shift = (size * 8 - 1) % 64  -- x86 masks the shift count
      if shift >= 32 then
        local sbit = 2 ^ (shift - 32)
        if hi >= sbit then hi = hi % sbit - sbit end
      else
        local sbit = 2 ^ shift
        if hi > 0 or lo >= sbit then return lo % sbit - sbit end
        return lo
      end
    end
    return hi * TWO32 + lo
  end

  local function struct_unpack(...)
    local nargs = select("#", ...)
    local args = {...}
    local fmt = checkformat(args, nargs)
    local data = checklstring(args, nargs, 2)
    local ld = #data
    local pos = optinteger(args, nargs, 3, 1)
    if pos == 0 then argerror(3, "offset must be 1 or greater") end
    pos = pos - 1  -- a size_t: negative stands for 2^64 + pos
    local big, align = false, 1
    local results, n, i = {}, 0, 1
    local function fits(size)
      return size >= 0 and size <= ld and pos >= 0 and pos <= ld - size
    end
    while i <= #fmt do
      local opt = sub(fmt, i, i)
      local size
      size, i = optsize(opt, fmt, i + 1)
      pos = pos + gettoalign(pos, align, opt, size)
      if not fits(size) then argerror(2, "data string too short") end
      checkstack(nargs + n, 2, "too many results")
      if INTEGERS[opt] then
        n = n + 1
        results[n] = getinteger(data, pos + 1, big, opt == "b" or opt == "h" or opt == "l"
          or opt == "i", size)
      elseif opt == "f" then
        n = n + 1
        local a, b, c, d = byte(data, pos + 1, pos + 4)
        if big then a, b, c, d = d, c, b, a end
        results[n] = float_value(((d * 256 + c) * 256 + b) * 256 + a)
      elseif opt == "d" then
        n = n + 1
        local lo = getinteger(data, pos + 1, big, false, 4)
        local hi = getinteger(data, pos + 5, big, false, 4)
        if big then hi, lo = lo, hi end
        results[n] = double_value(hi, lo)
      elseif opt == "c" then
        if size == 0 then
          local previous = n > 0 and tonumber(results[n])
          if not previous then raise("format 'c0' needs a previous size", true) end
          -- (size_t) of the number on x86-64: NaN and negatives are huge (-1 here),
          -- 2^64 and more wrap to 0
          if previous ~= previous then size = -1
          elseif previous >= 18446744073709551616 then size = 0
          elseif previous >= 0 then size = floor(previous)
          else size = ceil(previous) end
          if size < 0 then size = -1 end
          n = n - 1
          if not fits(size) then argerror(2, "data string too short") end
        end
        n = n + 1
        results[n] = sub(data, pos + 1, pos + size)
      elseif opt == "s" then
        local nul = find(data, "\0", pos + 1, true)
        if not nul then raise("unfinished string in data", true) end
        size = nul - pos
        n = n + 1
        results[n] = sub(data, pos + 1, nul - 1)
      elseif opt ~= "x" then
        big, align, i = control(opt, fmt, i, big, align)
      end
      pos = pos + size
    end
    results[n + 1] = pos + 1
    return spread(results, n + 1)
  end

  local function struct_size(...)
    local nargs = select("#", ...)
    local args = {...}
    local fmt = checkformat(args, nargs)
    local align, pos, i = 1, 0, 1
    local _
    while i <= #fmt do
      local opt = sub(fmt, i, i)
      local size
      size, i = optsize(opt, fmt, i + 1)
      pos = pos + gettoalign(pos, align, opt, size)
      if opt == "s" then argerror(1, "option 's' has no fixed size")
      elseif opt == "c" and size == 0 then argerror(1, "option 'c0' has no fixed size") end
      if not find(opt, "^%w") then _, align, i = control(opt, fmt, i, false, align) end
      pos = pos + size
    end
    return pos
  end

  public[struct_pack], public[struct_unpack], public[struct_size] = true, true, true
  VIEW.struct = {pack = struct_pack, unpack = struct_unpack, size = struct_size}
end
"""
