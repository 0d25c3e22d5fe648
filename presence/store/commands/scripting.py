"""Scripting: the store runs no Lua. FUNCTION FLUSH and LIST answer as for an empty library
set, so tools that reset or inspect functions (Redis's own test suite does, before every
test block) work; EVAL, FCALL and FUNCTION LOAD are unknown commands or subcommands.
"""

from __future__ import annotations

from presence.store.commands import CommandError, command
from presence.store.commands.server import run_subcommand, subcommand
from presence.store.resp import OK

# name        arity  flags
# function      -2   noscript   (flush, list)


@command("function", -2, "noscript", keys=(0, 0, 0))
def function(client, argv):
    return run_subcommand("function", client, argv)


@subcommand("function", "flush", -2, "write noscript")
def function_flush(client, argv):
    """FUNCTION FLUSH [ASYNC|SYNC]: there are no libraries to delete."""
    if len(argv) > 3 or (len(argv) > 2 and argv[2].lower() not in (b"async", b"sync")):
        raise CommandError("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    return OK


@subcommand("function", "list", -2, "noscript")
def function_list(client, argv):
    """FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]: no libraries."""
    i = 2
    while i < len(argv):
        option = argv[i].lower()
        if option == b"withcode":
            i += 1
        elif option == b"libraryname" and i + 1 < len(argv):
            i += 2
        else:
            raise CommandError(f"ERR Unknown argument {argv[i].decode(errors='replace')}")
    return []
