"""The command table: every command module registers its commands here at import.

A command handler is `handler(client, argv) -> reply`. `argv` is the command as
received, its name included (`argv[1]` is the first argument, as in Redis's `c->argv`;
for a subcommand, `argv[1]` is the subcommand's name), and `reply` is a value
`presence.store.resp.encode` understands (or `NO_REPLY` when the handler wrote its
replies itself, as SUBSCRIBE does). Arity follows Redis's convention (it counts the
name; negative means "at least"); the dispatcher checks it, so handlers can index
`argv` freely up to the arity. The whole list is passed, not a slice of it: a slice
per command was a measurable part of the dispatch loop's cost.

A registration declares everything COMMAND reports: arity, flags (Redis 7.0's, hyphenated:
`skip-monitor` shows as `skip_monitor`), legacy key positions, and key specs where they
differ from the default one (`specs=`, see `key_specs`). Subcommands register here too
(`subcommand`). A command's ACL categories are Redis's table in presence/store/aclcategories.py
(tests/store/test_command_table.py fails for a command missing from it). Number, cursor and
scan-option parsers are in presence/store/numbers.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from presence.store import replies
from presence.store.numbers import parse_c_int
from presence.store.replies import CommandError


@dataclass(slots=True, frozen=True)
class Command:
    """One registered command and the metadata COMMAND INFO reports."""

    name: str
    handler: Callable
    arity: int
    flags: frozenset
    first_key: int
    last_key: int
    step: int
    group: str
    not_key: bool = False  # its key positions name channels (Redis's NOT_KEY key spec)
    specs: tuple = ()  # Redis's key specs when not derived from the flags: see `key_specs`


NO_REPLY = object()
COMMANDS: dict[bytes, Command] = {}

# Modules holding command groups, imported by load_all() in this order.
GROUPS = [
    "connection",
    "client",
    "server",
    "introspection",
    "generic",
    "string",
    "hash",
    "set",
    "zset",
    "list",
    "bitmap",
    "sort",
    "pubsub",
    "transaction",
    "scripting",
    "acl",
]


def command(
    name: str,
    arity: int,
    flags: str = "",
    keys: tuple[int, int, int] = (1, 1, 1),
    not_key: bool = False,
    specs: tuple = (),
):
    """Register the decorated function as command `name`; a second registration is an error.

    `not_key` marks `keys` as positions of arguments that are not keys (shard channels):
    COMMAND INFO shows them in a NOT_KEY key spec and COMMAND GETKEYS finds no keys.
    `specs` declares Redis's key specs where they differ from the default (see `key_specs`).
    """

    def register(handler: Callable) -> Callable:
        lowered = name.lower().encode()
        if lowered in COMMANDS:
            raise RuntimeError(f"command {name!r} is registered twice")
        group = handler.__module__.rsplit(".", 1)[-1]
        COMMANDS[lowered] = Command(
            name.lower(),
            handler,
            arity,
            frozenset(flags.split()),
            *keys,
            group,
            not_key,
            _specs(specs),
        )
        return handler

    return register


def load_all() -> dict[bytes, Command]:
    """Import every command group module (registering its commands) and return the table."""
    for group in GROUPS:
        try:
            importlib.import_module(f"{__name__}.{group}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{group}":
                raise
    return COMMANDS


def db_by_index(client, raw: bytes):
    """The database a SELECT/MOVE/COPY index names; Redis's errors for a bad one."""
    index = parse_c_int(raw)
    dbs = client.server.keyspace.dbs
    if not 0 <= index < len(dbs):
        raise CommandError(replies.DB_INDEX_OUT_OF_RANGE)
    return dbs[index]


@dataclass(slots=True, frozen=True)
class Subcommand:
    """One subcommand of a container command (`config|get`) and its arity."""

    name: str
    handler: Callable
    arity: int
    flags: frozenset
    first_key: int
    last_key: int
    step: int
    specs: tuple = ()


SUBCOMMANDS: dict[str, dict[bytes, Subcommand]] = {}


def subcommand(
    container: str,
    name: str,
    arity: int,
    flags: str = "",
    keys: tuple[int, int, int] = (0, 0, 0),
    specs: tuple = (),
):
    """Register the decorated `handler(client, argv)` as `container name`; arity counts both
    (argv is the whole command: argv[0] the container, argv[1] the subcommand)."""

    def register(handler: Callable) -> Callable:
        table = SUBCOMMANDS.setdefault(container, {})
        if name.encode() in table:
            raise RuntimeError(f"subcommand {container}|{name} is registered twice")
        table[name.encode()] = Subcommand(
            f"{container}|{name}", handler, arity, frozenset(flags.split()), *keys, _specs(specs)
        )
        return handler

    return register


def run_subcommand(container: str, client, argv):
    """Run `argv[1]` of `container` with Redis's unknown-subcommand and arity errors."""
    sub = SUBCOMMANDS[container].get(argv[1].lower())
    if sub is None:
        raise CommandError(replies.unknown_subcommand(argv[1], container))
    if (sub.arity > 0 and len(argv) != sub.arity) or len(argv) < -sub.arity:
        raise CommandError(replies.wrong_arity(sub.name))
    return sub.handler(client, argv)


def _specs(specs: tuple) -> tuple:
    """Declared key specs as ((flag, ...), begin index, lastkey, keystep) tuples."""
    return tuple((tuple(flags.split()), begin, last, step) for flags, begin, last, step in specs)


def key_specs(cmd) -> tuple:
    """A command's key specs in Redis's terms: ((flag, ...), begin index, lastkey, keystep),
    lastkey relative to the begin index (-1: the last argument). Declared ones when the
    registration gave `specs`; otherwise one spec over the command's key range, its flags
    derived from the command's (RW update for a write, RO access for a read)."""
    if cmd.specs:
        return cmd.specs
    if cmd.first_key <= 0:
        return ()
    if getattr(cmd, "not_key", False):
        flags: tuple = ("not_key",)
    else:
        flags = ("RW", "update") if "write" in cmd.flags else ("RO", "access")
    last = cmd.last_key - cmd.first_key if cmd.last_key >= 0 else cmd.last_key
    return ((flags, cmd.first_key, last, cmd.step),)
