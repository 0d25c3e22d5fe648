"""CLIENT: connection names, ids, CLIENT LIST/INFO in Redis 7.0's line format, KILL.

SETINFO and NO-TOUCH behave as in Redis 7.2 (redis-py 8 sends SETINFO on connect);
everything else answers like Redis 7.0.
"""

from __future__ import annotations

import socket
import time

from presence.store import replies
from presence.store.blocking import release
from presence.store.commands import CommandError, command, run_subcommand, subcommand
from presence.store.commands.server import help_for
from presence.store.numbers import parse_int
from presence.store.pause import ALL, WRITE
from presence.store.resp import OK, Verbatim

# name        arity  flags
# client       -2    -     (id, getname, setname, list, info, kill, setinfo, no-evict,
#                           no-touch, getredir, pause, unpause, help)

_TYPES = (b"normal", b"master", b"replica", b"slave", b"pubsub")


@command("client", -2, "", keys=(0, 0, 0))
def client_(client, argv):
    """CLIENT subcommands; the last command shown for this client is `client|<sub>`."""
    client.last_command = "client|" + argv[1].decode(errors="replace").lower()
    return run_subcommand("client", client, argv)


@subcommand("client", "id", 2, "noscript loading stale", acl="connection")
def client_id(client, argv):
    return client.id


@subcommand("client", "getname", 2, "noscript loading stale", acl="connection")
def client_getname(client, argv):
    return client.name or None


@subcommand("client", "setname", 3, "noscript loading stale", acl="connection")
def client_setname(client, argv):
    """Name the connection; an empty name clears it."""
    client.name = _valid(argv[2], replies.CLIENT_NAME_INVALID)
    return OK


@subcommand("client", "setinfo", 4, acl="connection")
def client_setinfo(client, argv):
    """Record the client library's name or version (Redis 7.2's LIB-NAME / LIB-VER)."""
    attr = argv[2].decode(errors="replace")
    error = f"ERR {attr} cannot contain spaces, newlines or special characters."
    if attr.lower() == "lib-name":
        client.lib_name = _valid(argv[3], error)
    elif attr.lower() == "lib-ver":
        client.lib_ver = _valid(argv[3], error)
    else:
        raise CommandError(f"ERR Unrecognized option '{attr}'")
    return OK


def _valid(value: bytes, error) -> bytes:
    """`value` if every byte is printable ASCII other than space; raise `error` otherwise."""
    if any(b < 0x21 or b > 0x7E for b in value):
        raise CommandError(error)
    return value


@subcommand("client", "no-evict", 3, "admin noscript loading stale", acl="connection")
def client_no_evict(client, argv):
    client.no_evict = _on_off(argv[2])
    return OK


@subcommand("client", "no-touch", 3, acl="connection")
def client_no_touch(client, argv):
    client.no_touch = _on_off(argv[2])
    return OK


def _on_off(raw: bytes) -> bool:
    word = raw.lower()
    if word not in (b"on", b"off"):
        raise CommandError(replies.SYNTAX)
    return word == b"on"


@subcommand("client", "reply", 3, "noscript loading stale", acl="connection")
def client_reply(client, argv):
    """CLIENT REPLY ON|OFF|SKIP: OFF and SKIP also silence their own reply."""
    mode = argv[2].lower()
    if mode not in (b"on", b"off", b"skip"):
        raise CommandError(replies.SYNTAX)
    client.reply_mode = None if mode == b"on" else mode.decode()
    return OK


@subcommand("client", "unblock", -3, "admin noscript loading stale", acl="connection")
def client_unblock(client, argv):
    """CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 if that client was blocked and is now answered."""
    if len(argv) > 4:
        raise CommandError(replies.wrong_arity("client|unblock"))
    target_id = parse_int(argv[2])
    mode = argv[3].lower() if len(argv) == 4 else b"timeout"
    if mode not in (b"timeout", b"error"):
        raise CommandError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    target = client.server.clients.get(target_id)
    return int(target is not None and release(target, error=mode == b"error"))


@subcommand("client", "getredir", 2, "noscript loading stale", acl="connection")
def client_getredir(client, argv):
    """No tracking redirection: -1."""
    return -1


@subcommand("client", "pause", -3, "admin noscript loading stale", acl="connection")
def client_pause(client, argv):
    """CLIENT PAUSE timeout-ms [WRITE|ALL]: hold commands (writes only, or all) that long."""
    if len(argv) > 4:
        raise CommandError(replies.subcommand_syntax(argv[1], "client"))
    mode = ALL
    if len(argv) == 4:  # Redis looks at the mode before the timeout
        mode = {b"write": WRITE, b"all": ALL}.get(argv[3].lower())
        if mode is None:
            raise CommandError("ERR CLIENT PAUSE mode must be WRITE or ALL")
    milliseconds = parse_int(argv[2], replies.TIMEOUT_NOT_INTEGER)
    if milliseconds < 0:
        raise CommandError(replies.TIMEOUT_NEGATIVE)
    client.server.pause_clients(mode, time.time() + milliseconds / 1000)
    return OK


@subcommand("client", "unpause", 2, "admin noscript loading stale", acl="connection")
def client_unpause(client, argv):
    """End a CLIENT PAUSE now; the held commands run."""
    if client.server.pause.mode is not None:
        client.server.pause.end()
    return OK


# ---------------------------------------------------------------- LIST and INFO


def describe(c, now: float | None = None) -> str:
    """One CLIENT LIST line (without newline), Redis 7.0.15's fields in its order."""
    now = time.time() if now is None else now
    transport = c.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    omem = transport.get_write_buffer_size() if transport is not None else 0
    qbuf = c.parser.buffered() if hasattr(c.parser, "buffered") else 0
    multi = -1 if c.multi is None else len(c.multi)
    multi_mem = sum(len(a) for _, argv in (c.multi or ()) for a in argv)
    fields = [
        ("id", c.id),
        ("addr", c.addr),
        ("laddr", c.laddr),
        ("fd", sock.fileno() if sock is not None else -1),
        ("name", c.name.decode(errors="replace")),
        ("age", int(now - c.created)),
        ("idle", (c.server.keyspace.clock() - c.last_interaction) // 1000),
        ("flags", _flags(c)),
        ("db", c.db.index),
        ("sub", len(c.channels)),
        ("psub", len(c.patterns)),
        ("ssub", len(c.shard_channels)),
        ("multi", multi),
        ("qbuf", qbuf),
        ("qbuf-free", 0),
        ("argv-mem", 0),
        ("multi-mem", multi_mem),
        ("rbs", 1024),
        ("rbp", 0),
        ("obl", 0),
        ("oll", 0),
        ("omem", omem),
        ("tot-mem", 1024 + qbuf + omem + multi_mem),
        ("events", "rw" if omem else "r"),
        ("cmd", _command_name(c.last_command)),
        ("user", c.user.name.decode(errors="replace")),
        ("redir", -1),
        ("resp", c.protocol),
    ]
    return " ".join(f"{k}={v}" for k, v in fields)


def _command_name(name: str | bytes) -> str:
    return (name.decode(errors="replace") if isinstance(name, bytes) else name).lower()


def _flags(c) -> str:
    flags = ""
    if c.subscribed:
        flags += "P"
    if c.multi is not None:
        flags += "x"
    if c.watch_dirty:
        flags += "d"
    if c.closing:
        flags += "c"
    sock = c.transport.get_extra_info("socket") if c.transport is not None else None
    if sock is not None and sock.family == socket.AF_UNIX:
        flags += "U"
    if c.no_evict:
        flags += "e"
    if c.no_touch:
        flags += "T"
    return flags or "N"


def _is_type(c, kind: bytes) -> bool:
    """True if client `c` is of CLIENT LIST/KILL type `kind` (no replication links exist)."""
    pubsub = c.subscribed
    return (kind == b"pubsub" and pubsub) or (kind == b"normal" and not pubsub)


def _client_type(raw: bytes) -> bytes:
    if raw.lower() not in _TYPES:
        raise CommandError(f"ERR Unknown client type '{raw.decode(errors='replace')}'")
    return raw.lower()


@subcommand(
    "client",
    "list",
    -2,
    "admin noscript loading stale",
    acl="connection",
    tips="nondeterministic_output",
)
def client_list(client, argv):
    """One line per connection, optionally only TYPE t or ID id [id ...]."""
    everyone = client.server.clients
    if len(argv) == 2:
        chosen = list(everyone.values())
    elif len(argv) == 4 and argv[2].lower() == b"type":
        kind = _client_type(argv[3])
        chosen = [c for c in everyone.values() if _is_type(c, kind)]
    elif len(argv) > 3 and argv[2].lower() == b"id":
        ids = [parse_int(raw, replies.CLIENT_LIST_ID_INVALID) for raw in argv[3:]]
        chosen = [everyone[i] for i in ids if i in everyone]
    else:
        raise CommandError(replies.SYNTAX)
    now = time.time()
    return Verbatim("".join(describe(c, now) + "\n" for c in chosen))


@subcommand(
    "client", "info", 2, "noscript loading stale", acl="connection", tips="nondeterministic_output"
)
def client_info(client, argv):
    return Verbatim(describe(client) + "\n")


# ---------------------------------------------------------------- KILL


@subcommand("client", "kill", -3, "admin noscript loading stale", acl="connection")
def client_kill(client, argv):
    """Old form `CLIENT KILL addr` (OK or an error); new form with filters -> how many."""
    if len(argv) == 3:
        victims = [
            c for c in client.server.clients.values() if c.addr == argv[2].decode(errors="replace")
        ]
        if not victims:
            raise CommandError(replies.NO_SUCH_CLIENT)
        _kill(client, victims[:1])
        return OK
    if len(argv) % 2:
        raise CommandError(replies.SYNTAX)
    tests, skipme = _kill_filters(argv[2:], client.server.acl_users)
    victims = [
        c
        for c in client.server.clients.values()
        if all(test(c) for test in tests) and not (skipme and c is client)
    ]
    _kill(client, victims)
    return len(victims)


def _kill_filters(args, users: dict) -> tuple[list, bool]:
    """Parse `option value` pairs into predicates on a client, and SKIPME."""
    tests, skipme = [], True
    for option, raw in zip(args[::2], args[1::2], strict=False):
        option = option.lower()
        value = raw.decode(errors="replace")
        if option == b"id":
            wanted = parse_int(raw, replies.CLIENT_ID_INVALID)
            if wanted < 1:
                raise CommandError(replies.CLIENT_ID_INVALID)
            tests.append(lambda c, wanted=wanted: c.id == wanted)
        elif option == b"type":
            kind = _client_type(raw)
            tests.append(lambda c, kind=kind: _is_type(c, kind))
        elif option == b"addr":
            tests.append(lambda c, value=value: c.addr == value)
        elif option == b"laddr":
            tests.append(lambda c, value=value: c.laddr == value)
        elif option == b"user":
            user = users.get(raw)
            if user is None:
                raise CommandError(f"ERR No such user '{value}'")
            tests.append(lambda c, user=user: c.user is user)
        elif option == b"skipme" and raw.lower() in (b"yes", b"no"):
            skipme = raw.lower() == b"yes"
        else:
            raise CommandError(replies.SYNTAX)
    return tests, skipme


def _kill(me, victims) -> None:
    """Disconnect `victims`; the calling client itself closes after this reply."""
    for victim in victims:
        if victim is me:
            me.closing = True
        else:
            victim.close()


subcommand("client", "help", 2, "loading stale", acl="connection")(
    help_for(
        "client",
        [
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are:",
            "    * LIB-NAME: the client lib name.",
            "    * LIB-VER: the client lib version.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "NO-TOUCH (ON|OFF)",
            "    Will not touch LRU/LFU stats when this mode is on.",
        ],
    )
)
