"""Server commands: CONFIG, DBSIZE, FLUSHDB, FLUSHALL, SHUTDOWN, TIME."""
from __future__ import annotations

import time

from presence.store import replies
from presence.store.commands import CommandError, command
from presence.store.config import DIRECTIVES, ConfigError
from presence.store.pubsub import glob_match
from presence.store.resp import OK

# name        arity  flags
# config        -2   admin
# dbsize         1   readonly fast
# flushdb       -1   write
# flushall      -1   write
# shutdown      -1   admin no-auth
# time           1   fast


@command("config", -2, "admin", keys=(0, 0, 0))
def config(client, args):
    """CONFIG GET pattern [pattern ...] | SET name value [name value ...] | RESETSTAT | REWRITE."""
    sub = args[0].lower()
    if sub == b"get" and len(args) >= 2:
        return _config_get(client, args[1:])
    if sub == b"set" and len(args) >= 3 and len(args) % 2 == 1:
        return _config_set(client, args[1:])
    if sub == b"resetstat" and len(args) == 1:
        for name in client.server.stats:
            client.server.stats[name] = 0
        return OK
    if sub in (b"get", b"set", b"resetstat"):
        raise CommandError(replies.wrong_arity(f"config|{sub.decode()}"))
    raise CommandError(replies.unknown_subcommand(args[0], "config"))


def _config_get(client, patterns):
    cfg = client.server.config
    found = {}
    for raw in patterns:
        pattern = raw.lower()
        for name in DIRECTIVES:
            if glob_match(pattern, name.encode()):
                found[name.encode()] = cfg.show(name).encode()
    return found


def _config_set(client, args):
    cfg = client.server.config
    pairs = [(args[i].decode(errors="replace").lower(), args[i + 1].decode(errors="replace"))
             for i in range(0, len(args), 2)]
    for name, _ in pairs:
        if name not in DIRECTIVES:
            raise CommandError(f"ERR Unknown option or number of arguments for CONFIG SET - '{name}'")
    for name, value in pairs:  # validate all before applying any
        try:
            DIRECTIVES[name].parse(value)
            if not DIRECTIVES[name].mutable:
                raise ConfigError("can't set immutable config")
        except ConfigError as exc:
            raise CommandError(f"ERR CONFIG SET failed (possibly related to argument '{name}') - {exc}") from None
    for name, value in pairs:
        cfg.set(name, value)
    return OK


@command("dbsize", 1, "readonly fast", keys=(0, 0, 0))
def dbsize(client, args):
    return len(client.db)


@command("flushdb", -1, "write", keys=(0, 0, 0))
def flushdb(client, args):
    _check_flush_args(args)
    client.db.flush()
    return OK


@command("flushall", -1, "write", keys=(0, 0, 0))
def flushall(client, args):
    _check_flush_args(args)
    client.server.keyspace.flush_all()
    return OK


def _check_flush_args(args):
    if len(args) > 1 or (args and args[0].lower() not in (b"sync", b"async")):
        raise CommandError(replies.SYNTAX)


@command("shutdown", -1, "admin no-auth", keys=(0, 0, 0))
def shutdown(client, args):
    """Stop the server; like Redis, a successful SHUTDOWN sends no reply."""
    from presence.store.commands import NO_REPLY
    if not client.authenticated:
        raise CommandError(replies.NOAUTH)
    client.server.shutdown_requested.set()
    return NO_REPLY


@command("time", 1, "fast", keys=(0, 0, 0))
def time_(client, args):
    now = time.time_ns() // 1000
    return [b"%d" % (now // 1_000_000), b"%d" % (now % 1_000_000)]
