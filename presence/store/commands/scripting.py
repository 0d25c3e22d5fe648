"""Scripting: EVAL, EVALSHA, their _RO forms, SCRIPT, FUNCTION, FCALL, FCALL_RO (Redis 7.0).

The commands parse and check their arguments here; running a script, the script cache and
function libraries are `presence.store.scripting` (one `Scripts` per server).
"""

from __future__ import annotations

import time

from presence.store.commands import (
    CommandError,
    command,
    keynum,
    numkeys_getkeys,
    run_subcommand,
    subcommand,
)
from presence.store.commands.server import help_for
from presence.store.numbers import parse_int
from presence.store.pubsub import glob_match
from presence.store.resp import OK, Set, Status
from presence.store.scripting import payload
from presence.store.scripting.engine import BUSY_EVAL, NOSCRIPT_ERROR, SCRIPT_FLAGS

# name          arity  flags
# eval            -3   noscript stale movablekeys
# evalsha         -3   noscript stale movablekeys
# eval_ro         -3   noscript stale readonly movablekeys
# evalsha_ro      -3   noscript stale readonly movablekeys
# fcall           -3   noscript stale movablekeys
# fcall_ro        -3   noscript stale readonly movablekeys
# script          -2   (debug exists flush help kill load)
# function        -2   (delete dump flush help kill list load restore stats)

RO_WITH_WRITE_FLAG = "ERR Can not execute a script with write flag using *_ro command."


def _numkeys(argv, error: str | None = None) -> int:
    """EVAL's and FCALL's numkeys, checked against the arguments that follow it."""
    numkeys = parse_int(argv[2], error)
    if numkeys > len(argv) - 3:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise CommandError("ERR Number of keys can't be negative")
    return numkeys


def _eval(client, argv, evalsha: bool, read_only: bool):
    scripts = client.server.scripts
    if evalsha and len(argv[1]) != 40:
        raise CommandError(NOSCRIPT_ERROR)
    _numkeys(argv)
    if evalsha:
        sha = argv[1].lower()
        if sha not in scripts.scripts:
            raise CommandError(NOSCRIPT_ERROR)
    else:
        sha = scripts.load_script(argv[1])
    flags = scripts.scripts[sha].flags
    if flags is not None and "no-writes" not in flags and read_only:
        raise CommandError(RO_WITH_WRITE_FLAG)
    if flags is not None and client.server.limits.on:
        refused = client.server.limits.script_refusal(flags)
        if refused is not None:
            raise CommandError(refused)
    read_only = read_only or (flags is not None and "no-writes" in flags)
    allow_oom = flags is not None and "allow-oom" in flags
    return scripts.start(client, argv, b"f_" + sha, None, read_only, allow_oom)


@command(
    "eval",
    -3,
    "noscript stale movablekeys skip-monitor no-mandatory-keys",
    keys=(0, 0, 0),
    specs=(
        keynum(
            "RW access update",
            2,
            notes="We cannot tell how the keys will be used so we assume the worst, RW and UPDATE",
        ),
    ),
    getkeys=numkeys_getkeys(2),
    acl="scripting",
)
def eval_(client, argv):
    return _eval(client, argv, evalsha=False, read_only=False)


@command(
    "evalsha",
    -3,
    "noscript stale movablekeys skip-monitor no-mandatory-keys",
    keys=(0, 0, 0),
    specs=(keynum("RW access update", 2),),
    getkeys=numkeys_getkeys(2),
    acl="scripting",
)
def evalsha(client, argv):
    return _eval(client, argv, evalsha=True, read_only=False)


@command(
    "eval_ro",
    -3,
    "noscript stale readonly movablekeys skip-monitor no-mandatory-keys",
    keys=(0, 0, 0),
    specs=(
        keynum(
            "RO access",
            2,
            notes="We cannot tell how the keys will be used so we assume the worst, RO and ACCESS",
        ),
    ),
    getkeys=numkeys_getkeys(2),
    acl="scripting",
)
def eval_ro(client, argv):
    return _eval(client, argv, evalsha=False, read_only=True)


@command(
    "evalsha_ro",
    -3,
    "noscript stale readonly movablekeys skip-monitor no-mandatory-keys",
    keys=(0, 0, 0),
    specs=(keynum("RO access", 2),),
    getkeys=numkeys_getkeys(2),
    acl="scripting",
)
def evalsha_ro(client, argv):
    return _eval(client, argv, evalsha=True, read_only=True)


def _fcall(client, argv, read_only: bool):
    scripts = client.server.scripts
    function = scripts.functions.get(argv[1])
    if function is None:
        raise CommandError("ERR Function not found")
    _numkeys(argv, "ERR Bad number of keys provided")
    if read_only and "no-writes" not in function.flags:
        raise CommandError(RO_WITH_WRITE_FLAG)
    if client.server.limits.on:
        refused = client.server.limits.script_refusal(function.flags)
        if refused is not None:
            raise CommandError(refused)
    read_only = read_only or "no-writes" in function.flags
    allow_oom = "allow-oom" in function.flags
    return scripts.start(client, argv, function.name, function, read_only, allow_oom)


@command(
    "fcall",
    -3,
    "noscript stale movablekeys skip-monitor no-mandatory-keys",
    keys=(0, 0, 0),
    specs=(
        keynum(
            "RW access update",
            2,
            notes="We cannot tell how the keys will be used so we assume the worst, RW and UPDATE",
        ),
    ),
    getkeys=numkeys_getkeys(2),
    acl="scripting",
)
def fcall(client, argv):
    return _fcall(client, argv, read_only=False)


@command(
    "fcall_ro",
    -3,
    "noscript stale readonly movablekeys skip-monitor no-mandatory-keys",
    keys=(0, 0, 0),
    specs=(
        keynum(
            "RO access",
            2,
            notes="We cannot tell how the keys will be used so we assume the worst, RO and ACCESS",
        ),
    ),
    getkeys=numkeys_getkeys(2),
    acl="scripting",
)
def fcall_ro(client, argv):
    return _fcall(client, argv, read_only=True)


# ------------------------------------------------------------ SCRIPT


@command("script", -2, "", keys=(0, 0, 0))
def script(client, argv):
    return run_subcommand("script", client, argv)


subcommand("script", "help", 2, "loading stale", acl="scripting")(
    help_for(
        "SCRIPT",
        [
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    )
)


@subcommand(
    "script",
    "load",
    3,
    "noscript stale",
    acl="scripting",
    tips="request_policy:all_nodes response_policy:all_succeeded",
)
def script_load(client, argv):
    return client.server.scripts.load_script(argv[2])


@subcommand(
    "script",
    "exists",
    -3,
    "noscript stale",
    acl="scripting",
    tips="request_policy:all_shards response_policy:agg_logical_and",
)
def script_exists(client, argv):
    cached = client.server.scripts.scripts
    return [1 if sha.lower() in cached else 0 for sha in argv[2:]]


@subcommand(
    "script",
    "flush",
    -2,
    "noscript",
    acl="scripting",
    tips="request_policy:all_nodes response_policy:all_succeeded",
)
def script_flush(client, argv):
    _flush_mode(argv, "ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    client.server.scripts.flush_scripts()
    return OK


@subcommand(
    "script",
    "kill",
    2,
    "noscript allow_busy",
    acl="scripting",
    tips="request_policy:all_shards response_policy:one_succeeded",
)
def script_kill(client, argv):
    refused = client.server.scripts.kill(is_eval=True)
    if refused is not None:
        raise CommandError(refused)
    return OK


@subcommand("script", "debug", 3, "noscript", acl="scripting")
def script_debug(client, argv):
    raise CommandError("ERR the bundled store has no Lua debugger (SCRIPT DEBUG)")


def _flush_mode(argv, error: str) -> None:
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"sync", b"async")):
        raise CommandError(error)


# ------------------------------------------------------------ FUNCTION


@command("function", -2, "", keys=(0, 0, 0))
def function(client, argv):
    return run_subcommand("function", client, argv)


subcommand("function", "help", 2, "loading stale", acl="scripting")(
    help_for(
        "FUNCTION",
        [
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    )
)


@subcommand(
    "function",
    "load",
    -3,
    "write denyoom noscript",
    acl="scripting",
    tips="request_policy:all_shards response_policy:all_succeeded",
)
def function_load(client, argv):
    """FUNCTION LOAD [REPLACE] code."""
    replace = False
    for arg in argv[2:-1]:
        if arg.lower() != b"replace":
            raise CommandError(f"ERR Unknown option given: {arg.decode(errors='replace')}")
        replace = True
    return client.server.scripts.load_library(argv[-1], replace)


@subcommand(
    "function",
    "delete",
    3,
    "write noscript",
    acl="scripting",
    tips="request_policy:all_shards response_policy:all_succeeded",
)
def function_delete(client, argv):
    client.server.scripts.delete_library(argv[2])
    return OK


@subcommand(
    "function",
    "flush",
    -2,
    "write noscript",
    acl="scripting",
    tips="request_policy:all_shards response_policy:all_succeeded",
)
def function_flush(client, argv):
    """FUNCTION FLUSH [ASYNC|SYNC]."""
    _flush_mode(argv, "ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    client.server.scripts.flush_functions()
    return OK


@subcommand(
    "function", "list", -2, "noscript", acl="scripting", tips="nondeterministic_output_order"
)
def function_list(client, argv):
    """FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]: one map per library."""
    with_code, pattern = False, None
    i = 2
    while i < len(argv):
        option = argv[i].lower()
        if not with_code and option == b"withcode":
            with_code = True
        elif pattern is None and option == b"libraryname":
            if i >= len(argv) - 1:
                raise CommandError("ERR library name argument was not given")
            i += 1
            pattern = argv[i]
        else:
            raise CommandError(f"ERR Unknown argument {argv[i].decode(errors='replace')}")
        i += 1
    listed = []
    for library in client.server.scripts.libraries.values():
        if pattern is not None and not glob_match(pattern, library.name):
            continue
        entry = {
            "library_name": library.name,
            "engine": b"LUA",
            "functions": [
                {
                    "name": f.name,
                    "description": f.description,
                    "flags": Set(Status(flag) for flag in SCRIPT_FLAGS if flag in f.flags),
                }
                for f in library.functions.values()
            ],
        }
        if with_code:
            entry["library_code"] = library.code
        listed.append(entry)
    return listed


@subcommand("function", "dump", 2, "noscript", acl="scripting")
def function_dump(client, argv):
    return payload.dump([lib.code for lib in client.server.scripts.libraries.values()])


@subcommand(
    "function",
    "restore",
    -3,
    "write denyoom noscript",
    acl="scripting",
    tips="request_policy:all_shards response_policy:all_succeeded",
)
def function_restore(client, argv):
    """FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]."""
    if len(argv) > 4:
        raise CommandError(
            "ERR unknown subcommand or wrong number of arguments for 'restore'. Try FUNCTION HELP."
        )
    policy = "append"
    if len(argv) == 4:
        policy = argv[3].decode(errors="replace").lower()
        if policy not in ("append", "replace", "flush"):
            raise CommandError(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
            )
    try:
        codes = payload.load(argv[2])
    except payload.PayloadError as exc:
        raise CommandError(f"ERR {exc}") from None
    client.server.scripts.restore_libraries(codes, policy)
    return OK


@subcommand(
    "function",
    "stats",
    2,
    "noscript allow_busy",
    acl="scripting",
    tips="nondeterministic_output request_policy:all_shards response_policy:special",
)
def function_stats(client, argv):
    scripts = client.server.scripts
    run = scripts.running
    if run is not None and run.is_eval:
        raise CommandError(BUSY_EVAL)
    running = None
    if run is not None:
        running = {
            "name": run.name,
            "command": run.argv,
            "duration_ms": int((time.monotonic() - run.started) * 1000),
        }
    return {
        "running_script": running,
        "engines": {
            "LUA": {
                "libraries_count": len(scripts.libraries),
                "functions_count": len(scripts.functions),
            }
        },
    }


@subcommand(
    "function",
    "kill",
    2,
    "noscript allow_busy",
    acl="scripting",
    tips="request_policy:all_shards response_policy:one_succeeded",
)
def function_kill(client, argv):
    refused = client.server.scripts.kill(is_eval=False)
    if refused is not None:
        raise CommandError(refused)
    return OK
