"""Server commands: CONFIG, INFO, the database-wide commands, and what operators poke at.

Container commands (CONFIG, SLOWLOG, LATENCY here; CLIENT, COMMAND, OBJECT, MEMORY
elsewhere) register their subcommands with `@subcommand`, so arity errors, unknown
subcommands and COMMAND INFO's subcommand list come from one table, as in Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from presence.store import info as info_sections
from presence.store import replies
from presence.store.blocking import serve_later
from presence.store.commands import (
    NO_REPLY,
    CommandError,
    command,
    run_subcommand,
    subcommand,
)
from presence.store.config import ALIASES, DIRECTIVES, ConfigError, canonical
from presence.store.numbers import parse_int
from presence.store.persistence import AofError
from presence.store.pubsub import glob_match
from presence.store.resp import OK, Status, Verbatim

# name        arity  flags
# config        -2   -              (get, set, resetstat, rewrite, help)
# info          -1   -
# dbsize         1   readonly fast
# flushdb       -1   write
# flushall      -1   write
# swapdb         3   write fast
# lastsave       1   fast
# save           1   admin
# bgsave        -1   admin
# bgrewriteaof   1   admin no-async-deletion
# shutdown      -1   admin no-auth
# time           1   fast
# role           1   fast
# wait           3   -
# slowlog       -2   -              (get, len, reset, help)
# monitor        1   admin
# latency       -2   -              (latest, history, reset, doctor, graph, histogram, help)


def help_reply(lines: list[str]) -> list[Status]:
    """A HELP reply: status lines, as Redis's addReplyHelp sends them."""
    return [Status(line) for line in lines]


def help_for(container: str, entries: list[str]) -> Callable:
    """A HELP handler for `container` listing `entries` (and HELP itself)."""
    text = [
        f"{container.upper()} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        *entries,
        "HELP",
        "    Prints this help.",
    ]
    return lambda client, args: help_reply(text)


# ---------------------------------------------------------------- CONFIG


@command("config", -2, "", keys=(0, 0, 0))
def config(client, argv):
    """CONFIG GET | SET | RESETSTAT | REWRITE | HELP."""
    return run_subcommand("config", client, argv)


@subcommand("config", "get", -3, "admin noscript loading stale")
def config_get(client, argv):
    """A map of every directive matching any pattern; an exact name is echoed as given."""
    cfg = client.server.config
    found: dict[bytes, tuple[bytes, bytes]] = {}  # lower-case name -> (name as shown, value)
    for raw in argv[2:]:
        if not any(ch in raw for ch in b"*?["):
            name = canonical(raw.decode(errors="replace").lower())
            if name is not None and raw.lower() not in found:
                found[raw.lower()] = (raw, cfg.show(name).encode())
            continue
        for name in (*DIRECTIVES, *ALIASES):
            shown = name.encode()
            if (
                shown not in found
                and not DIRECTIVES[canonical(name)].hidden
                and glob_match(raw.lower(), shown)
            ):
                found[shown] = (shown, cfg.show(name).encode())
    return dict(found.values())


@subcommand(
    "config",
    "set",
    -4,
    "admin noscript loading stale",
    tips="request_policy:all_nodes response_policy:all_succeeded",
)
def config_set(client, argv):
    """Set several directives atomically: all are checked before any is applied."""
    if len(argv) % 2:
        raise CommandError(replies.SYNTAX)
    seen, parsed = set(), []
    for raw_name, raw_value in zip(argv[2::2], argv[3::2], strict=False):
        shown = raw_name.decode(errors="replace")
        name = canonical(shown.lower())
        if name is None:
            raise CommandError(
                f"ERR Unknown option or number of arguments for CONFIG SET - '{shown}'"
            )
        if not DIRECTIVES[name].mutable:
            raise CommandError(replies.config_set_failed(shown, "can't set immutable config"))
        if name in seen:
            raise CommandError(replies.config_set_failed(shown, "duplicate parameter"))
        seen.add(name)
        parsed.append((shown, name, raw_value.decode(errors="replace")))
    for shown, name, value in parsed:
        try:
            _check_value(client.server.config, name, value)
        except ConfigError as exc:  # an alias is named as such (Redis 7.0's alias entries)
            raise CommandError(replies.config_set_failed(shown.lower(), str(exc))) from None
    for _, name, value in parsed:
        client.server.config.set(name, value)
    return OK


def _check_value(cfg, name: str, value: str) -> None:
    """Raise ConfigError unless `value` parses and can be applied while running."""
    parsed = DIRECTIVES[name].parse(value)
    if DIRECTIVES[name].restart and parsed != cfg[name]:
        raise ConfigError("the store cannot change it while running; restart with the new value")


@subcommand("config", "resetstat", 2, "admin noscript loading stale")
def config_resetstat(client, argv):
    """Zero the counters INFO reports."""
    server = client.server
    for name in server.stats:
        server.stats[name] = 0
    server.net_input_bytes = server.net_output_bytes = 0
    server.keyspace.expired_count = server.keyspace.hits = server.keyspace.misses = 0
    server.limits.evicted_keys = 0
    server.reset_command_stats()
    info_sections.reset(server)
    return OK


@subcommand("config", "rewrite", 2, "admin noscript loading stale")
def config_rewrite(client, argv):
    raise CommandError(replies.NO_CONFIG_FILE)


subcommand("config", "help", 2, "loading stale")(
    help_for(
        "config",
        [
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    )
)


# ---------------------------------------------------------------- INFO


@command(
    "info",
    -1,
    "loading stale",
    keys=(0, 0, 0),
    acl="dangerous",
    tips="nondeterministic_output request_policy:all_shards response_policy:special",
)
def info(client, argv):
    """The named INFO sections (default set without arguments) as one text reply."""
    return Verbatim(
        info_sections.render(client.server, [a.decode(errors="replace") for a in argv[1:]])
    )


# ---------------------------------------------------------------- databases


@command(
    "dbsize",
    1,
    "readonly fast",
    keys=(0, 0, 0),
    acl="keyspace",
    tips="request_policy:all_shards response_policy:agg_sum",
)
def dbsize(client, argv):
    return len(client.db)


@command(
    "flushdb",
    -1,
    "write",
    keys=(0, 0, 0),
    acl="keyspace dangerous",
    tips="request_policy:all_shards response_policy:all_succeeded",
)
def flushdb(client, argv):
    """Remove every key of the selected database (ASYNC and SYNC are both synchronous)."""
    _check_flush_args(argv[1:])
    client.db.flush()
    return OK


@command(
    "flushall",
    -1,
    "write",
    keys=(0, 0, 0),
    acl="keyspace dangerous",
    tips="request_policy:all_shards response_policy:all_succeeded",
)
def flushall(client, argv):
    """Remove every key of every database."""
    _check_flush_args(argv[1:])
    client.server.keyspace.flush_all()
    return OK


def _check_flush_args(args):
    if len(args) > 1 or (args and args[0].lower() not in (b"sync", b"async")):
        raise CommandError(replies.SYNTAX)


@command("swapdb", 3, "write fast", keys=(0, 0, 0), acl="keyspace dangerous")
def swapdb(client, argv):
    """Exchange the contents of two databases; clients keep their selected index."""
    keyspace = client.server.keyspace
    first = parse_int(argv[1], replies.INVALID_FIRST_DB)
    second = parse_int(argv[2], replies.INVALID_SECOND_DB)
    if not (0 <= first < len(keyspace.dbs) and 0 <= second < len(keyspace.dbs)):
        raise CommandError(replies.DB_INDEX_OUT_OF_RANGE)
    a, b = keyspace.dbs[first], keyspace.dbs[second]
    if a is b:
        return OK
    a.data, b.data = b.data, a.data
    a.expires, b.expires = b.expires, a.expires
    for db in (a, b):
        for key, deadline in db.expires.items():
            keyspace.schedule(deadline, db.index, key)  # heap entries name the db index
        for key in list(db.watchers):
            if key in a.data or key in b.data:
                db.touch(key)
        for key in list(db.blocked):  # what a blocked client waits for may be there now,
            serve_later(client.server, db, key)  # or its stream gone (Redis 7.0 does both)
    return OK


# ---------------------------------------------------------------- persistence and lifecycle


@command(
    "lastsave",
    1,
    "fast loading stale",
    keys=(0, 0, 0),
    acl="admin dangerous",
    tips="nondeterministic_output",
)
def lastsave(client, argv):
    """The Unix time of the last save: the store never saves, so its start time."""
    return int(client.server.started)


@command("save", 1, "admin no-multi noscript no-async-loading", keys=(0, 0, 0))
def save(client, argv):
    raise CommandError(replies.NO_PERSISTENCE)


@command("bgsave", -1, "admin noscript no-async-loading", keys=(0, 0, 0))
def bgsave(client, argv):
    if len(argv) > 2 or (len(argv) > 1 and argv[1].lower() != b"schedule"):
        raise CommandError(replies.SYNTAX)
    raise CommandError(replies.NO_PERSISTENCE)


@command("bgrewriteaof", 1, "admin no-async-deletion noscript no-async-loading", keys=(0, 0, 0))
def bgrewriteaof(client, argv):
    """Rewrite the append-only file from the dataset, in a forked child (persistence.py)."""
    try:
        started = client.server.persistence.rewrite()
    except AofError as exc:
        raise CommandError(f"ERR {exc}") from None
    if not started:
        raise CommandError(replies.AOF_REWRITE_IN_PROGRESS)
    return Status("Background append only file rewriting started")


@command("shutdown", -1, "admin no-auth no-multi noscript loading stale allow-busy", keys=(0, 0, 0))
def shutdown(client, argv):
    """Stop the server; like Redis, a successful SHUTDOWN sends no reply."""
    if not client.authenticated:
        raise CommandError(replies.NOAUTH)
    client.server.shutdown_requested.set()
    return NO_REPLY


@command("time", 1, "fast loading stale", keys=(0, 0, 0), tips="nondeterministic_output")
def time_(client, argv):
    now = time.time_ns() // 1000
    return [b"%d" % (now // 1_000_000), b"%d" % (now % 1_000_000)]


# ---------------------------------------------------------------- replication stand-ins


@command("role", 1, "fast noscript loading stale", keys=(0, 0, 0), acl="admin dangerous")
def role(client, argv):
    """A master with no replicas."""
    return [b"master", 0, []]


@command(
    "wait",
    3,
    "noscript",
    keys=(0, 0, 0),
    acl="connection",
    tips="request_policy:all_shards response_policy:agg_min",
)
def wait(client, argv):
    """No replicas acknowledge anything: 0, after validating the arguments like Redis."""
    parse_int(argv[1])
    timeout = parse_int(argv[2], replies.TIMEOUT_NOT_INTEGER)
    if timeout < 0:
        raise CommandError(replies.TIMEOUT_NEGATIVE)
    return 0


# ---------------------------------------------------------------- SLOWLOG and LATENCY (always empty)


@command("slowlog", -2, "", keys=(0, 0, 0))
def slowlog(client, argv):
    """SLOWLOG GET | LEN | RESET | HELP: commands that took slowlog-log-slower-than or longer."""
    if argv[1].lower() == b"get" and len(argv) > 3:
        raise CommandError(replies.subcommand_syntax(argv[1], "slowlog"))
    return run_subcommand("slowlog", client, argv)


@subcommand(
    "slowlog",
    "get",
    -2,
    "admin loading stale",
    tips="request_policy:all_nodes nondeterministic_output",
)
def slowlog_get(client, argv):
    count = 10
    if len(argv) > 2:
        count = parse_int(argv[2], replies.SLOWLOG_COUNT)
        if count < -1:
            raise CommandError(replies.SLOWLOG_COUNT)
    return client.server.slowlog.newest(count)


@subcommand(
    "slowlog",
    "len",
    2,
    "admin loading stale",
    tips="request_policy:all_nodes response_policy:agg_sum nondeterministic_output",
)
def slowlog_len(client, argv):
    return len(client.server.slowlog.entries)


@subcommand(
    "slowlog",
    "reset",
    2,
    "admin loading stale",
    tips="request_policy:all_nodes response_policy:all_succeeded",
)
def slowlog_reset(client, argv):
    client.server.slowlog.reset()
    return OK


@command("monitor", 1, "admin noscript loading stale", keys=(0, 0, 0))
def monitor(client, argv):
    """OK, then a line for every command run (admin ones aside) until the connection closes.

    A second MONITOR gets no reply at all, as in Redis.
    """
    monitors = client.server.monitors
    if client in monitors:
        return NO_REPLY
    monitors.append(client)
    return OK


subcommand("slowlog", "help", 2, "loading stale")(
    help_for(
        "slowlog",
        [
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    )
)


@command("latency", -2, "", keys=(0, 0, 0))
def latency(client, argv):
    """LATENCY subcommands: the `command` and `fast-command` spikes (latency.py); GRAPH and
    HISTOGRAM report nothing."""
    return run_subcommand("latency", client, argv)


@subcommand(
    "latency",
    "latest",
    2,
    "admin noscript loading stale",
    tips="nondeterministic_output request_policy:all_nodes response_policy:special",
)
def latency_latest(client, argv):
    return client.server.latency.latest()


@subcommand(
    "latency",
    "history",
    3,
    "admin noscript loading stale",
    tips="nondeterministic_output request_policy:all_nodes response_policy:special",
)
def latency_history(client, argv):
    return client.server.latency.history(argv[2].lower())


@subcommand(
    "latency",
    "reset",
    -2,
    "admin noscript loading stale",
    tips="request_policy:all_nodes response_policy:all_succeeded",
)
def latency_reset(client, argv):
    return client.server.latency.reset([event.lower() for event in argv[2:]])


@subcommand(
    "latency",
    "graph",
    3,
    "admin noscript loading stale",
    tips="nondeterministic_output request_policy:all_nodes response_policy:special",
)
def latency_graph(client, argv):
    raise CommandError(f"ERR No samples available for event '{argv[2].decode(errors='replace')}'")


@subcommand(
    "latency",
    "histogram",
    -2,
    "admin noscript loading stale",
    tips="nondeterministic_output request_policy:all_nodes response_policy:special",
)
def latency_histogram(client, argv):
    return {}


@subcommand(
    "latency",
    "doctor",
    2,
    "admin noscript loading stale",
    tips="nondeterministic_output request_policy:all_nodes response_policy:special",
)
def latency_doctor(client, argv):
    monitor = client.server.latency
    if not monitor.events and not client.server.config["latency-monitor-threshold"]:
        return Verbatim(replies.LATENCY_DOCTOR_DISABLED)
    return Verbatim(monitor.doctor())


subcommand("latency", "help", 2, "loading stale")(
    help_for(
        "latency",
        [
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the "
            "specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    )
)
