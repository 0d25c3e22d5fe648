"""Lua scripting for the bundled store, with Redis 7.0's semantics (EVAL and FUNCTION).

`sandbox` holds one Lua 5.1 interpreter (through lupa) set up like Redis's; `prelude`
is the Lua side of it; `engine` keeps the script cache and libraries and runs one script
at a time, atomically; `payload` reads and writes FUNCTION DUMP payloads.
"""
