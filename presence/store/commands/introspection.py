"""Introspection: COMMAND (the command table), OBJECT, MEMORY, DEBUG.

COMMAND's replies are built from the registry (`@command` and `@subcommand`), in
Redis 7's format: flags, ACL categories and key specs as each registration declares them. OBJECT ENCODING and MEMORY USAGE report what Redis
would choose for a value of that shape and size (the store keeps Python objects).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import socket
import struct
import time
from collections import deque
from itertools import islice

from presence.store import replies
from presence.store.commands import (
    COMMANDS,
    SUBCOMMANDS,
    CommandError,
    command,
    find_keys,
    has_keys,
    key_specs,
    run_subcommand,
    subcommand,
)
from presence.store.commands.generic import read_key
from presence.store.commands.server import help_for
from presence.store.hll import is_hll
from presence.store.info import rss_bytes
from presence.store.keyspace import type_name
from presence.store.numbers import as_int64, parse_int
from presence.store.pubsub import glob_match
from presence.store.resp import OK, Double, Set, Status, Verbatim
from presence.store.stream import Stream

# name        arity  flags
# command      -1    -              (count, list, info, docs, getkeys, getkeysandflags, help)
# object       -2    -              (encoding, refcount, idletime, freq, help)
# memory       -2    -              (usage, stats, doctor, malloc-stats, purge, help)
# debug        -2    admin          (sleep, set-active-expire, object, digest, digest-value,
#                                    reload, log, change-repl-id, help)

_FLAG_ORDER = [
    "write",
    "readonly",
    "denyoom",
    "module",
    "admin",
    "pubsub",
    "noscript",
    "blocking",
    "loading",
    "stale",
    "skip_monitor",
    "skip_slowlog",
    "asking",
    "fast",
    "no_auth",
    "may_replicate",
    "no_mandatory_keys",
    "no_async_loading",
    "no_multi",
    "movablekeys",
    "allow_busy",
]
_GROUP_DOCS = {
    "zset": "sorted-set",
    "transaction": "transactions",
    "client": "connection",
    "introspection": "server",
}
SHARED_REFCOUNT = 2147483647  # Redis shares the integers 0..9999 and reports INT_MAX for them


# ---------------------------------------------------------------- COMMAND


@command(
    "command",
    -1,
    "loading stale",
    keys=(0, 0, 0),
    acl="connection",
    tips="nondeterministic_output_order",
)
def command_(client, argv):
    """COMMAND: every command's entry; with a subcommand, COUNT/LIST/INFO/DOCS/GETKEYS."""
    if len(argv) == 1:
        return [_entry(cmd) for cmd in COMMANDS.values()]
    return run_subcommand("command", client, argv)


def _lookup(name: bytes):
    """The Command or Subcommand called `name` (`get`, `config|get`), or None."""
    container, _, sub = name.lower().partition(b"|")
    if not sub:
        return COMMANDS.get(container)
    return SUBCOMMANDS.get(container.decode(errors="replace"), {}).get(sub)


def _flags(cmd) -> list[str]:
    names = [f.replace("-", "_") for f in cmd.flags]
    return sorted(names, key=lambda f: _FLAG_ORDER.index(f) if f in _FLAG_ORDER else 99)


def _key_specs(cmd) -> list[dict]:
    return [_key_spec(spec) for spec in key_specs(cmd)]


def _key_spec(spec) -> dict:
    """One key spec as COMMAND INFO shows it (Redis's addReplyCommandKeySpecs)."""
    entry: dict = {b"notes": spec.notes.encode()} if spec.notes else {}
    entry[b"flags"] = Set(Status(f) for f in spec.flags)
    if spec.kind == "unknown":
        entry[b"begin_search"] = {b"type": b"unknown", b"spec": {}}
        entry[b"find_keys"] = {b"type": b"unknown", b"spec": {}}
        return entry
    if spec.keyword:
        entry[b"begin_search"] = {
            b"type": b"keyword",
            b"spec": {b"keyword": spec.keyword.encode(), b"startfrom": spec.begin},
        }
    else:
        entry[b"begin_search"] = {b"type": b"index", b"spec": {b"index": spec.begin}}
    if spec.kind == "keynum":
        found = {b"keynumidx": spec.keynumidx, b"firstkey": spec.firstkey, b"keystep": spec.step}
    else:
        found = {b"lastkey": spec.last, b"keystep": spec.step, b"limit": spec.limit}
    entry[b"find_keys"] = {b"type": spec.kind.encode(), b"spec": found}
    return entry


def _entry(cmd) -> list:
    """One command's COMMAND INFO entry, Redis 7 layout (ten fields)."""
    container = SUBCOMMANDS.get(cmd.name, {}) if "|" not in cmd.name else {}
    return [
        cmd.name.encode(),
        cmd.arity,
        Set(Status(f) for f in _flags(cmd)),
        cmd.first_key,
        cmd.last_key,
        cmd.step,
        Set(Status("@" + c) for c in cmd.categories),
        Set(t.encode() for t in cmd.tips),
        Set(_key_specs(cmd)),
        [_entry(sub) for sub in container.values()] if container else Set(),
    ]


def _group_of(cmd) -> str:
    if hasattr(cmd, "group"):
        return cmd.group
    parent = COMMANDS.get(cmd.name.partition("|")[0].encode())
    return parent.group if parent else ""


@subcommand("command", "count", 2, "loading stale", acl="connection")
def command_count(client, argv):
    return len(COMMANDS)


@subcommand(
    "command", "list", -2, "loading stale", acl="connection", tips="nondeterministic_output_order"
)
def command_list(client, argv):
    """Every command and subcommand name, optionally FILTERBY MODULE, ACLCAT or PATTERN."""
    names = []
    for cmd in COMMANDS.values():
        names.append(cmd)
        names.extend(SUBCOMMANDS.get(cmd.name, {}).values())
    if len(argv) == 2:
        return [cmd.name.encode() for cmd in names]
    if len(argv) != 5 or argv[2].lower() != b"filterby":
        raise CommandError(replies.SYNTAX)
    kind, value = argv[3].lower(), argv[4]
    if kind == b"module":
        return []
    if kind == b"aclcat":
        wanted = value.decode(errors="replace").lower()
        return [c.name.encode() for c in names if wanted in c.categories]
    if kind == b"pattern":
        return [c.name.encode() for c in names if glob_match(value.lower(), c.name.encode())]
    raise CommandError(replies.SYNTAX)


@subcommand(
    "command", "info", -2, "loading stale", acl="connection", tips="nondeterministic_output_order"
)
def command_info(client, argv):
    """The entry of each named command (nil for unknown ones); all commands without names."""
    if len(argv) == 2:
        return [_entry(cmd) for cmd in COMMANDS.values()]
    return [_entry(cmd) if (cmd := _lookup(name)) else None for name in argv[2:]]


@subcommand(
    "command", "docs", -2, "loading stale", acl="connection", tips="nondeterministic_output_order"
)
def command_docs(client, argv):
    """Minimal documentation (summary from the handler's docstring, group) per command."""
    wanted = [_lookup(name) for name in argv[2:]] if len(argv) > 2 else list(COMMANDS.values())
    return {cmd.name.encode(): _docs(cmd) for cmd in wanted if cmd is not None}


def _docs(cmd) -> dict:
    doc = (cmd.handler.__doc__ or "").strip().splitlines()
    group = _group_of(cmd)
    return {
        b"summary": (doc[0] if doc else "").encode(),
        b"group": _GROUP_DOCS.get(group, group).encode(),
    }


@subcommand("command", "getkeys", -4, "loading stale", acl="connection")
def command_getkeys(client, argv):
    return [argv[2 + i] for i, _ in _keys_of(argv[2:])]


@subcommand("command", "getkeysandflags", -4, "loading stale", acl="connection")
def command_getkeysandflags(client, argv):
    return [[argv[2 + i], Set(Status(f) for f in flags)] for i, flags in _keys_of(argv[2:])]


def _keys_of(argv: list[bytes]) -> list[tuple[int, tuple[str, ...]]]:
    """The key positions of a full command line with their flags, or Redis's error
    (getKeysSubcommandImpl: the command, then whether it has keys, then its arity)."""
    cmd = COMMANDS.get(argv[0].lower())
    if cmd is not None and len(argv) > 1 and cmd.name in SUBCOMMANDS:
        cmd = SUBCOMMANDS[cmd.name].get(argv[1].lower())
    if cmd is None:
        raise CommandError(replies.INVALID_COMMAND)
    if not has_keys(cmd):
        raise CommandError(replies.NO_KEY_ARGUMENTS)
    if (cmd.arity > 0 and len(argv) != cmd.arity) or len(argv) < -cmd.arity:
        raise CommandError(replies.INVALID_COMMAND_ARGS)
    found = find_keys(cmd, argv)
    if not found and "no-mandatory-keys" not in cmd.flags:
        raise CommandError(replies.INVALID_KEY_ARGS)
    return found


subcommand("command", "help", 2, "loading stale", acl="connection")(
    help_for(
        "command",
        [
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    )
)


# ---------------------------------------------------------------- OBJECT


def encoding(value, config) -> str:
    """The encoding Redis 7.0 would use for a value of this shape and size."""
    if type(value) is bytes:
        if as_int64(value) is not None:
            return "int"
        if is_hll(value):  # PFADD/PFMERGE build their value raw, whatever its size
            return "raw"
        return "embstr" if len(value) <= 44 else "raw"
    if type(value) is dict:
        small = len(value) <= config["hash-max-listpack-entries"]
        limit = config["hash-max-listpack-value"]
        return (
            "listpack"
            if small and all(len(k) <= limit and len(v) <= limit for k, v in value.items())
            else "hashtable"
        )
    if type(value) is set:
        small = len(value) <= config["set-max-intset-entries"]
        return "intset" if small and all(as_int64(m) is not None for m in value) else "hashtable"
    if type(value) is deque:
        return "quicklist"
    if type(value) is Stream:
        return "stream"
    scores = getattr(value, "scores", None)
    if scores is not None:
        limit = config["zset-max-listpack-value"]
        small = len(scores) <= config["zset-max-listpack-entries"]
        return "listpack" if small and all(len(m) <= limit for m in scores) else "skiplist"
    return "raw"


def _refcount(value) -> int:
    number = as_int64(value) if type(value) is bytes else None
    return SHARED_REFCOUNT if number is not None and 0 <= number < 10000 else 1


@command("object", -2, "", keys=(0, 0, 0))
def object_(client, argv):
    """OBJECT ENCODING | REFCOUNT | IDLETIME | FREQ | HELP."""
    return run_subcommand("object", client, argv)


def _lfu(client) -> bool:
    return client.server.config["maxmemory-policy"].endswith("-lfu")


@subcommand(
    "object",
    "encoding",
    3,
    "readonly",
    keys=(2, 2, 1),
    specs=(("RO", 2, 0, 1),),
    acl="keyspace",
    tips="nondeterministic_output",
)
def object_encoding(client, argv):
    value = read_key(client.db, argv[2], notify=False)
    return None if value is None else encoding(value, client.server.config).encode()


@subcommand(
    "object",
    "refcount",
    3,
    "readonly",
    keys=(2, 2, 1),
    specs=(("RO", 2, 0, 1),),
    acl="keyspace",
    tips="nondeterministic_output",
)
def object_refcount(client, argv):
    value = read_key(client.db, argv[2], notify=False)
    return None if value is None else _refcount(value)


@subcommand(
    "object",
    "idletime",
    3,
    "readonly",
    keys=(2, 2, 1),
    specs=(("RO", 2, 0, 1),),
    acl="keyspace",
    tips="nondeterministic_output",
)
def object_idletime(client, argv):
    """Seconds since last access: tracked under an LRU maxmemory policy, else 0."""
    if read_key(client.db, argv[2], notify=False) is None:
        return None
    if _lfu(client):
        raise CommandError(replies.LFU_SELECTED)
    return client.server.limits.object_idletime(client.db, argv[2])


@subcommand(
    "object",
    "freq",
    3,
    "readonly",
    keys=(2, 2, 1),
    specs=(("RO", 2, 0, 1),),
    acl="keyspace",
    tips="nondeterministic_output",
)
def object_freq(client, argv):
    """The LFU counter: tracked under an LFU maxmemory policy (maxmemory set), else 0."""
    if read_key(client.db, argv[2], notify=False) is None:
        return None
    if not _lfu(client):
        raise CommandError(replies.LFU_NOT_SELECTED)
    return client.server.limits.object_freq(client.db, argv[2])


subcommand("object", "help", 2, "loading stale", acl="keyspace")(
    help_for(
        "object",
        [
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    )
)


# ---------------------------------------------------------------- MEMORY


def estimate_bytes(key: bytes, value, samples: int = 5) -> int:
    """Bytes Redis would use for `key` and `value` (entry, key, object header, payload).

    Aggregates are sampled like Redis: the first `samples` elements (all when 0) are
    measured and the average is multiplied by the size.
    """
    overhead = 24 + 16 + _sds(key)
    if type(value) is bytes:
        return overhead + (0 if as_int64(value) is not None else _sds(value))
    if type(value) is Stream:  # the listpacks' bytes, as Redis counts them
        return overhead + 64 + sum(node.size + 16 for node in value.nodes)
    size = len(value)
    if not size:
        return overhead
    taken = list(islice(_elements(value), samples or size))
    per_item = sum(_item_bytes(item) for item in taken) / len(taken)
    return overhead + 64 + int(per_item * size)


def _elements(value):
    """What MEMORY USAGE samples: (field, value) or (member, score) pairs, or members."""
    if type(value) is dict:
        return iter(value.items())
    scores = getattr(value, "scores", None)
    return iter(scores.items()) if scores is not None else iter(value)


def _sds(raw: bytes) -> int:
    return len(raw) + (3 if len(raw) < 256 else 5) + 1


def _item_bytes(item) -> int:
    if isinstance(item, tuple):
        return 24 + sum(_sds(x) if isinstance(x, bytes) else 8 for x in item)
    return 24 + _sds(item)


@command("memory", -2, "", keys=(0, 0, 0))
def memory(client, argv):
    """MEMORY USAGE | STATS | DOCTOR | MALLOC-STATS | PURGE | HELP."""
    return run_subcommand("memory", client, argv)


@subcommand("memory", "usage", -3, "readonly", keys=(2, 2, 1), specs=(("RO", 2, 0, 1),))
def memory_usage(client, argv):
    samples = 5
    rest = argv[3:]
    while rest:
        if rest[0].lower() == b"samples" and len(rest) >= 2:
            samples = parse_int(rest[1])
            if samples < 0:  # Redis: a syntax error, not a range error
                raise CommandError(replies.SYNTAX)
            rest = rest[2:]
        else:
            raise CommandError(replies.SYNTAX)
    value = client.db.get(argv[2])  # not a counted lookup in Redis either (dictFind)
    return None if value is None else estimate_bytes(argv[2], value, samples)


@subcommand(
    "memory",
    "stats",
    2,
    tips="nondeterministic_output request_policy:all_shards response_policy:special",
)
def memory_stats(client, argv):
    """Redis 7.0's MEMORY STATS fields, in its order, from the process's RSS (the store has
    no allocator of its own to ask: allocated, active and resident are all the RSS)."""
    rss = rss_bytes()
    keys = 0
    stats: dict = {
        b"peak.allocated": rss,
        b"total.allocated": rss,
        b"startup.allocated": 0,
        b"replication.backlog": 0,
        b"clients.slaves": 0,
        b"clients.normal": 0,
        b"cluster.links": 0,
        b"aof.buffer": 0,
        b"lua.caches": 0,
        b"functions.caches": 0,
    }
    overhead = 0
    for db in client.server.keyspace.dbs:
        if not db.data:
            continue
        keys += len(db.data)
        main, expires = _dict_bytes(len(db.data)), _dict_bytes(len(db.expires))
        overhead += main + expires
        stats[b"db.%d" % db.index] = {
            b"overhead.hashtable.main": main,
            b"overhead.hashtable.expires": expires,
            b"overhead.hashtable.slot-to-keys": 0,
        }
    dataset = max(rss - overhead, 0)
    stats.update(
        {
            b"overhead.total": overhead,
            b"keys.count": keys,
            b"keys.bytes-per-key": rss // keys if keys else 0,
            b"dataset.bytes": dataset,
            b"dataset.percentage": Double(dataset * 100 / (rss or 1)),
            b"peak.percentage": Double(100.0),
            b"allocator.allocated": rss,
            b"allocator.active": rss,
            b"allocator.resident": rss,
            b"allocator-fragmentation.ratio": Double(1.0),
            b"allocator-fragmentation.bytes": 0,
            b"allocator-rss.ratio": Double(1.0),
            b"allocator-rss.bytes": 0,
            b"rss-overhead.ratio": Double(1.0),
            b"rss-overhead.bytes": 0,
            b"fragmentation": Double(1.0),
            b"fragmentation.bytes": 0,
        }
    )
    return stats


def _dict_bytes(entries: int) -> int:
    """What Redis's dict of `entries` keys costs: its entries (24 bytes) and its bucket array
    (8 bytes a slot, a power of two at least as large as the entries)."""
    if not entries:
        return 0
    return entries * 24 + (1 << (entries - 1).bit_length()) * 8


DOCTOR_MIN_BYTES = 5 * 1024 * 1024  # under this much data Redis gives no report


@subcommand(
    "memory",
    "doctor",
    2,
    tips="nondeterministic_output request_policy:all_shards response_policy:special",
)
def memory_doctor(client, argv):
    """Redis's two answers for a healthy server: too little data to judge (under 5 MB,
    here by MEMORY USAGE's estimates of the keys), or no issue found."""
    total = 0
    for db in client.server.keyspace.dbs:
        for key, value in db.data.items():
            total += estimate_bytes(key, value, 5)
            if total >= DOCTOR_MIN_BYTES:
                return Verbatim(replies.MEMORY_DOCTOR_NO_ISSUE)
    return Verbatim(replies.MEMORY_DOCTOR_EMPTY)


@subcommand(
    "memory",
    "malloc-stats",
    2,
    tips="nondeterministic_output request_policy:all_shards response_policy:special",
)
def memory_malloc_stats(client, argv):
    return Verbatim("Stats not supported for the current allocator")


@subcommand("memory", "purge", 2, tips="request_policy:all_shards response_policy:all_succeeded")
def memory_purge(client, argv):
    return OK


subcommand("memory", "help", 2, "loading stale")(
    help_for(
        "memory",
        [
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    )
)


# ---------------------------------------------------------------- DEBUG


@command("debug", -2, "admin noscript loading stale", keys=(0, 0, 0))
def debug(client, argv):
    """DEBUG subcommands used by Redis's own test suite; refused unless enable-debug-command."""
    allowed = client.server.config["enable-debug-command"]
    if allowed == "no" or (allowed == "local" and not _is_local(client)):
        raise CommandError(replies.DEBUG_NOT_ALLOWED)
    handler, arity = _DEBUG.get(argv[1].lower(), (None, 0))
    count = len(argv) - 1  # the subcommand and its arguments, as _DEBUG's arities count them
    if handler is None or (arity > 0 and count != arity) or count < -arity:
        raise CommandError(replies.subcommand_syntax(argv[1], "debug"))
    return handler(client, argv[2:])


def _is_local(client) -> bool:
    """True for a unix-socket or loopback connection (enable-debug-command local)."""
    sock = client.transport.get_extra_info("socket") if client.transport else None
    if sock is not None and sock.family == socket.AF_UNIX:
        return True
    try:
        return ipaddress.ip_address(client.addr.rpartition(":")[0].strip("[]")).is_loopback
    except ValueError:
        return False


def _debug_sleep(client, args):
    """Block the whole server for the given seconds (a float), as Redis does."""
    time.sleep(max(0.0, _atof(args[0])))
    return OK


def _debug_set_active_expire(client, args):
    """Switch expiry by deadline on (1) or off (0; keys then expire only when touched)."""
    client.server.active_expire = bool(_atoi(args[0]))
    return OK


def _debug_object(client, args):
    value = client.db.get(args[0])
    if value is None:
        raise CommandError(replies.NO_SUCH_KEY)
    text = (
        f"Value at:0x{id(value):x} refcount:{_refcount(value)} "
        f"encoding:{encoding(value, client.server.config)} "
        f"serializedlength:{max(1, estimate_bytes(b'', value) - 41)} "
        f"lru:{int(time.time()) & 0xFFFFFF} lru_seconds_idle:0"
    )
    if type(value) is deque:
        text += (
            f" ql_nodes:1 ql_avg_node:{len(value):.2f} ql_listpack_max:-2 ql_compressed:0 "
            f"ql_uncompressed_size:{sum(len(v) + 2 for v in value)}"
        )
    return Status(text)


def _debug_digest(client, args):
    """A hex digest of the whole dataset: equal datasets give equal digests."""
    digest = bytes(20)
    for db in client.server.keyspace.dbs:
        for key in db.live_keys():
            digest = _xor(digest, _key_digest(db, key, prefix=b"%d:" % db.index))
    return Status(digest.hex() if any(digest) else "0" * 40)


def _debug_digest_value(client, args):
    db = client.db
    return [
        Status(_key_digest(db, key).hex() if db.get(key) is not None else "0" * 40) for key in args
    ]


def _key_digest(db, key: bytes, prefix: bytes = b"") -> bytes:
    value = db.get(key)
    h = hashlib.sha1(prefix + key + b"\0" + type_name(value).encode())
    if type(value) is bytes:
        h.update(value)
    elif type(value) in (set, dict) or hasattr(value, "scores"):
        items = getattr(value, "scores", value)
        pairs = items.items() if isinstance(items, dict) else ((m, b"") for m in items)
        for member, extra in sorted(pairs):
            h.update(struct.pack(">I", len(member)) + member + repr(extra).encode())
    elif type(value) is Stream:
        for sid, items in value.range(0, (1 << 128) - 1):
            h.update(b"%d" % sid + b"".join(struct.pack(">I", len(x)) + x for x in items))
        h.update(b"%d:%d:%d" % (value.last_id, value.entries_added, len(value.groups)))
    else:
        for item in value:
            h.update(struct.pack(">I", len(item)) + item)
    deadline = db.expires.get(key)
    if deadline is not None:
        h.update(b"expire:%d" % deadline)
    return h.digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=False))


def _atoi(raw: bytes) -> int:
    match = re.match(rb"\s*[-+]?[0-9]+", raw)
    return int(match.group()) if match else 0


def _atof(raw: bytes) -> float:
    match = re.match(rb"\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?", raw)
    return float(match.group()) if match else 0.0


_DEBUG_HELP = [
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANGE-REPL-ID",
    "    Change the replication IDs of the instance.",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "OBJECT <key>",
    "    Show low level info about the <key> and associated value.",
    "RELOAD",
    "    Save the RDB on disk and reload it back to memory (a no-op: the store keeps no RDB).",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys at their deadline (they still expire",
    "    when accessed).",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "HELP",
    "    Prints this help.",
]


def _debug_log(client, args):
    logging.getLogger("presence.store").warning("DEBUG LOG: %s", args[0].decode(errors="replace"))
    return OK


_DEBUG = {
    b"sleep": (_debug_sleep, 2),
    b"set-active-expire": (_debug_set_active_expire, 2),
    b"object": (_debug_object, 2),
    b"digest": (_debug_digest, 1),
    b"digest-value": (_debug_digest_value, -1),
    b"reload": (lambda client, args: OK, -1),
    b"change-repl-id": (lambda client, args: OK, 1),
    b"log": (_debug_log, 2),
    b"help": (lambda client, args: [Status(line) for line in _DEBUG_HELP], 1),
}


# ---------------------------------------------------------------- MODULE (none can be loaded)


@command("module", -2, "", keys=(0, 0, 0))
def module(client, argv):
    """MODULE LIST | LOAD | LOADEX | UNLOAD | HELP: the store loads no modules."""
    return run_subcommand("module", client, argv)


@subcommand("module", "list", 2, "admin noscript", tips="nondeterministic_output_order")
def module_list(client, argv):
    """The loaded modules: none."""
    return []


def _module_allowed(client) -> None:
    """Redis's refusal of LOAD/LOADEX/UNLOAD unless enable-module-command allows them."""
    allowed = client.server.config["enable-module-command"]
    if allowed == "no" or (allowed == "local" and not _is_local(client)):
        raise CommandError(replies.MODULE_NOT_ALLOWED)


@subcommand("module", "load", -3, "admin noscript no-async-loading")
def module_load(client, argv):
    """Fails as Redis does for a library it cannot load: the store loads none."""
    _module_allowed(client)
    raise CommandError(replies.MODULE_LOAD_FAILED)


@subcommand("module", "loadex", -3, "admin noscript no-async-loading")
def module_loadex(client, argv):
    """Fails as Redis does for a library it cannot load: the store loads none."""
    _module_allowed(client)
    raise CommandError(replies.MODULE_LOAD_FAILED)


@subcommand("module", "unload", 3, "admin noscript no-async-loading")
def module_unload(client, argv):
    """Fails: no module has that name."""
    _module_allowed(client)
    raise CommandError(replies.MODULE_UNLOAD_NO_SUCH)


subcommand("module", "help", 2, "loading stale")(
    help_for(
        "module",
        [
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and "
            "optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
        ],
    )
)
