"""The command table: every command module registers its commands here at import.

A command handler is `handler(client, argv) -> reply`. `argv` is the command as
received, its name included (`argv[1]` is the first argument, as in Redis's `c->argv`;
for a subcommand, `argv[1]` is the subcommand's name), and `reply` is a value
`presence.store.resp.encode` understands (or `NO_REPLY` when the handler wrote its
replies itself, as SUBSCRIBE does). Arity follows Redis's convention (it counts the
name; negative means "at least"); the dispatcher checks it, so handlers can index
`argv` freely up to the arity. The whole list is passed, not a slice of it: a slice
per command was a measurable part of the dispatch loop's cost.

A registration is the one place a command is declared: arity, flags (Redis 7.0's,
hyphenated: `skip-monitor` shows as `skip_monitor`), legacy key positions, key specs where
they differ from the default one (`specs=`, see `key_specs`; `KeySpec`, `keynum` and
`unknown` for the ones a range cannot say), the procedure Redis falls back on to find keys
(`getkeys=`, see `find_keys`), the ACL categories Redis declares for it (`acl=`; the
ones Redis derives from flags are added, see `categories_of`) and its command tips
(`tips=`). Subcommands register here
too (`subcommand`). COMMAND, COMMAND GETKEYS and the ACL checks read only this registry.
Number, cursor and scan-option parsers are in presence/store/numbers.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from presence.store import replies
from presence.store.numbers import as_int64, atoi, parse_c_int
from presence.store.replies import CommandError
from presence.store.resp import Error


@dataclass(slots=True, frozen=True)
class KeySpec:
    """One of Redis's key specs: where a command's keys are and how it uses them.

    `begin` is the begin_search index (0: unknown), or with `keyword` where the search for
    that keyword starts (the keys follow it); `kind` the find_keys type: "range" (keys
    from `begin` to `begin + last`, or to `last` from the end when negative, every `step`;
    with `limit`, a 1/limit share of the rest),
    "keynum" (the count at `begin + keynumidx`, keys from `begin + firstkey`, every `step`)
    or "unknown"."""

    flags: tuple[str, ...]
    begin: int = 0
    kind: str = "range"
    last: int = 0
    step: int = 1
    limit: int = 0
    keynumidx: int = 0
    firstkey: int = 1
    notes: str = ""
    keyword: str = ""


def keynum(flags: str, begin: int, keynumidx: int = 0, firstkey: int = 1, step: int = 1,
           notes: str = "") -> KeySpec:  # fmt: skip
    """A key spec whose keys follow a count argument (Redis's KSPEC_FK_KEYNUM)."""
    return KeySpec(tuple(flags.split()), begin, "keynum", 0, step, 0, keynumidx, firstkey, notes)


def unknown(flags: str, notes: str = "") -> KeySpec:
    """A key spec Redis cannot locate (KSPEC_BS_UNKNOWN): its command's `getkeys` finds them."""
    return KeySpec(tuple(flags.split()), 0, "unknown", notes=notes)


# Redis's ACL categories, in its order (ACL CAT, COMMAND INFO).
CATEGORIES = (
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
    "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
    "dangerous", "connection", "transaction", "scripting",
)  # fmt: skip


def categories_of(flags: frozenset, declared: str) -> tuple[str, ...]:
    """A command's ACL categories as Redis 7.0 sets them: the declared ones plus those its
    flags imply (setImplicitACLCategories; @slow when not @fast), in Redis's order."""
    # (frozenset: the names `set` and `list` are this package's modules once imported)
    cats = frozenset(declared.split())
    if not cats <= frozenset(CATEGORIES):
        raise RuntimeError(f"unknown ACL categories in {declared!r}")
    implied = [flag for flag in ("write", "pubsub", "fast", "blocking") if flag in flags]
    if "readonly" in flags and "scripting" not in cats:
        implied.append("read")
    if "admin" in flags:
        implied += ["admin", "dangerous"]
    cats |= frozenset(implied)
    if "fast" not in cats:
        cats |= frozenset(["slow"])
    return tuple(c for c in CATEGORIES if c in cats)


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
    getkeys: Callable | None = None  # Redis's getkeys_proc: see `find_keys`
    categories: tuple = ()  # its ACL categories, in Redis's order
    tips: tuple = ()  # Redis's command tips (nondeterministic_output, request_policy:...)


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
    "hyperloglog",
    "geo",
    "sort",
    "pubsub",
    "transaction",
    "scripting",
    "acl",
    "stream",
    "dump",
    "cluster",
]


def command(
    name: str,
    arity: int,
    flags: str = "",
    keys: tuple[int, int, int] = (1, 1, 1),
    not_key: bool = False,
    specs: tuple = (),
    getkeys: Callable | None = None,
    acl: str = "",
    tips: str = "",
):
    """Register the decorated function as command `name`; a second registration is an error.

    `not_key` marks `keys` as positions of arguments that are not keys (shard channels):
    COMMAND INFO shows them in a NOT_KEY key spec and COMMAND GETKEYS finds no keys.
    `specs` declares Redis's key specs where they differ from the default (see `key_specs`),
    `getkeys` the procedure Redis uses when they cannot say (see `find_keys`), `acl` the
    ACL categories Redis's command table gives it beyond those its flags imply, `tips` its
    command tips (COMMAND INFO).
    """

    def register(handler: Callable) -> Callable:
        lowered = name.lower().encode()
        if lowered in COMMANDS:
            raise RuntimeError(f"command {name!r} is registered twice")
        group = handler.__module__.rsplit(".", 1)[-1]
        flagset = frozenset(flags.split())
        COMMANDS[lowered] = Command(
            name.lower(),
            handler,
            arity,
            flagset,
            *keys,
            group,
            not_key,
            _specs(specs),
            getkeys,
            categories_of(flagset, acl),
            tuple(tips.split()),
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
    categories: tuple = ()
    tips: tuple = ()
    getkeys: Callable | None = None
    not_key: bool = False


SUBCOMMANDS: dict[str, dict[bytes, Subcommand]] = {}


def subcommand(
    container: str,
    name: str,
    arity: int,
    flags: str = "",
    keys: tuple[int, int, int] = (0, 0, 0),
    specs: tuple = (),
    acl: str = "",
    tips: str = "",
):
    """Register the decorated `handler(client, argv)` as `container name`; arity counts both
    (argv is the whole command: argv[0] the container, argv[1] the subcommand). `specs`,
    `acl` and `tips` as for `command`."""

    def register(handler: Callable) -> Callable:
        table = SUBCOMMANDS.setdefault(container, {})
        if name.encode() in table:
            raise RuntimeError(f"subcommand {container}|{name} is registered twice")
        flagset = frozenset(flags.split())
        table[name.encode()] = Subcommand(
            f"{container}|{name}",
            handler,
            arity,
            flagset,
            *keys,
            _specs(specs),
            categories_of(flagset, acl),
            tuple(tips.split()),
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


def subcommand_refusal(container: str, argv) -> Error | None:
    """The error `run_subcommand` would raise for `argv` (unknown subcommand, wrong arity),
    or None: Redis checks both before queueing a command in MULTI."""
    table = SUBCOMMANDS.get(container)
    if table is None or len(argv) < 2:
        return None
    sub = table.get(argv[1].lower())
    if sub is None:
        return replies.unknown_subcommand(argv[1], container)
    if (sub.arity > 0 and len(argv) != sub.arity) or len(argv) < -sub.arity:
        return replies.wrong_arity(sub.name)
    return None


def _specs(specs: tuple) -> tuple:
    """Declared key specs as KeySpec; a tuple (flags, begin index, lastkey, keystep[, notes])
    declares a range one."""
    return tuple(
        spec if isinstance(spec, KeySpec)
        else KeySpec(tuple(spec[0].split()), spec[1], "range", spec[2], spec[3],
                     notes="".join(spec[4:]))
        for spec in specs
    )  # fmt: skip


def key_specs(cmd) -> tuple:
    """A command's key specs (KeySpec) in Redis's terms. Declared ones when the registration
    gave `specs`; otherwise one range spec over the command's key positions, its flags
    derived from the command's (RW update for a write, RO access for a read)."""
    if cmd.specs:
        return cmd.specs
    if cmd.first_key <= 0:
        return ()
    if cmd.not_key:
        flags: tuple = ("not_key",)
    else:
        flags = ("RW", "update") if "write" in cmd.flags else ("RO", "access")
    last = cmd.last_key - cmd.first_key if cmd.last_key >= 0 else cmd.last_key
    return (KeySpec(flags, cmd.first_key, "range", last, cmd.step),)


def has_keys(cmd) -> bool:
    """Redis's doesCommandHaveKeys: a getkeys procedure, or a key spec not NOT_KEY."""
    return cmd.getkeys is not None or any("not_key" not in s.flags for s in key_specs(cmd))


def find_keys(cmd, argv: list[bytes]) -> list[tuple[int, tuple[str, ...]]]:
    """The positions of `argv`'s keys and their key-spec flags, as Redis 7.0's
    getKeysFromCommandWithSpecs finds them: by the key specs when they can say (none marked
    variable_flags, none unknown or out of bounds), else by the command's `getkeys`."""
    specs = key_specs(cmd)
    if any("not_key" not in s.flags for s in specs) and not any(
        "variable_flags" in s.flags for s in specs
    ):
        found = _keys_by_specs(specs, argv, cmd.arity)
        if found is not None:
            return found
    return cmd.getkeys(argv) if cmd.getkeys is not None else []


def _keys_by_specs(specs: tuple, argv: list[bytes], arity: int):
    """Redis's getKeysUsingKeySpecs: the keys the specs give, or None when one cannot say."""
    argc, found = len(argv), []
    for spec in specs:
        if "not_key" in spec.flags:
            continue
        first = spec.begin
        if spec.keyword:
            first = _after_keyword(spec, argv)
            if not first:
                continue
        if spec.kind == "range":
            if spec.last >= 0:
                last = first + spec.last
            elif spec.limit:
                last = first + ((argc - first) // spec.limit + spec.last)
            else:
                last = argc + spec.last
        elif spec.kind == "keynum":
            if spec.keynumidx >= argc or first + spec.keynumidx >= argc:
                return None
            count = as_int64(argv[first + spec.keynumidx])
            if count is None or count < 0:
                return None
            first += spec.firstkey
            last = first + _c_int(count) - 1
        else:
            return None
        if last >= argc or last < first or first >= argc:
            return None
        found.extend((i, spec.flags) for i in range(first, last + 1, spec.step))
        if "incomplete" in spec.flags:
            return None
    return found


def _after_keyword(spec: KeySpec, argv: list[bytes]) -> int:
    """Redis's KSPEC_BS_KEYWORD search: the index after the keyword, 0 if it is not there."""
    argc = len(argv)
    start = spec.begin if spec.begin > 0 else argc + spec.begin
    end = argc - 1 if spec.begin > 0 else 0
    step = 1 if start <= end else -1
    i = start
    while i != end:
        if i >= argc or i < 1:
            break
        if argv[i].lower() == spec.keyword.lower().encode():
            return i + 1
        i += step
    return 0


def _c_int(value: int) -> int:
    """A 64-bit integer cast to a C int (its low 32 bits, signed)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def numkeys_getkeys(count_at: int, store_at: int = 0) -> Callable:
    """Redis's genericGetKeys for a command whose keys follow a count at `count_at` (and a
    destination at `store_at`): no keys when the count is below 1 or beyond the arguments."""

    def getkeys(argv: list[bytes]) -> list[tuple[int, tuple[str, ...]]]:
        count, first = atoi(argv[count_at]), count_at + 1
        if count < 1 or count > len(argv) - first:
            return []
        found = [(first + i, ()) for i in range(count)]
        return found + [(store_at, ())] if store_at else found

    return getkeys
