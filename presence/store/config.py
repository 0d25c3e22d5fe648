"""Configuration directives: defaults, parsing, and the redis.conf file format.

One table serves the command line (`--port 6380`), the config file (`port 6380`) and
CONFIG GET/SET. A directive's `apply` pushes a new value into the running server, so a
CONFIG SET takes effect at once.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

from presence.store import notify


class ConfigError(ValueError):
    """A directive value that does not parse; the message is Redis's reason text."""


def _int(text: str) -> int:
    try:
        return int(_memory(text))
    except ValueError:
        raise ConfigError("argument couldn't be parsed into an integer") from None


def _bounded(low: int, high: int = 2147483647) -> Callable[[str], int]:
    """An integer directive that Redis range-checks (e.g. hz, timeout, maxclients)."""

    def parse(text: str) -> int:
        value = _int(text)
        if not low <= value <= high:
            raise ConfigError(f"argument must be between {low} and {high} inclusive")
        return value

    return parse


def _memory_value(text: str) -> int:
    """A non-negative memory amount (maxmemory and friends)."""
    try:
        value = _memory(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError("argument must be a memory value")
    return value


def _bounded_memory(low: int, high: int) -> Callable[[str], int]:
    """A memory directive that Redis range-checks (proto-max-bulk-len: 1mb and up)."""

    def parse(text: str) -> int:
        value = _memory_value(text)
        if not low <= value <= high:
            raise ConfigError(f"argument must be between {low} and {high} inclusive")
        return value

    return parse


def _memory(text: str) -> int:
    """Redis memory units: 1k=1000, 1kb=1024, 1m, 1mb, 1g, 1gb."""
    t = text.strip().lower()
    for suffix, mul in (
        ("gb", 1 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 10**9),
        ("m", 10**6),
        ("k", 1000),
    ):
        if t.endswith(suffix):
            return int(t[: -len(suffix)]) * mul
    return int(t)


def _enum(*choices: str) -> Callable[[str], str]:
    """A directive taking one of a fixed set of words."""

    def parse(text: str) -> str:
        if text.lower() not in choices:
            raise ConfigError("argument(s) must be one of the following: " + ", ".join(choices))
        return text.lower()

    return parse


def _memory_or_percent(text: str) -> str:
    """maxmemory-clients: a memory amount or a percentage of maxmemory (at most 100%)."""
    if text.endswith("%"):
        try:
            percent = int(text[:-1])
        except ValueError:
            raise ConfigError("argument must be a memory or percent value") from None
        if percent > 100:
            raise ConfigError("percentage argument must be less or equal to 100")
        if percent < 0:
            raise ConfigError("argument must be a memory or percent value")
        return text
    try:
        return str(_memory_value(text))
    except ConfigError:
        raise ConfigError("argument must be a memory or percent value") from None


def _save(text: str) -> str:
    """`seconds changes [seconds changes ...]`, or empty (no snapshots)."""
    parts = text.split()
    if len(parts) % 2 or not all(p.isdigit() for p in parts):
        raise ConfigError("Invalid save parameters")
    return " ".join(parts)


def _yesno(text: str) -> str:
    if text.lower() not in ("yes", "no"):
        raise ConfigError("argument must be 'yes' or 'no'")
    return text.lower()


def _plain_name(directive: str, what: str) -> Callable[[str], str]:
    """A file or directory name inside `dir`, never a path (Redis's wording when it is)."""

    def parse(text: str) -> str:
        if not text or "/" in text or text in (".", ".."):
            raise ConfigError(f"{directive} can't be a path, just a {what}")
        return text

    return parse


def _flags(text: str) -> int:
    try:
        return notify.parse_flags(text)
    except ValueError:
        raise ConfigError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.") from None


def _buffer_limits(text: str) -> dict[str, tuple[int, int, int]]:
    """`class hard soft seconds [class hard soft seconds ...]` -> {class: (hard, soft, secs)}."""
    parts = text.split()
    if len(parts) % 4:
        raise ConfigError("Wrong number of arguments in buffer limit configuration.")
    limits = dict(DEFAULT_BUFFER_LIMITS)
    for i in range(0, len(parts), 4):
        cls = parts[i].lower()
        if cls not in ("normal", "slave", "replica", "pubsub"):
            raise ConfigError("Invalid client class specified in buffer limit configuration.")
        try:
            limits["slave" if cls == "replica" else cls] = (
                _memory(parts[i + 1]),
                _memory(parts[i + 2]),
                int(parts[i + 3]),
            )
        except ValueError:
            raise ConfigError(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration."
            ) from None
    return limits


DEFAULT_BUFFER_LIMITS = {
    "normal": (0, 0, 0),
    "slave": (268435456, 67108864, 60),
    "pubsub": (33554432, 8388608, 60),
}


def _format_limits(limits: dict) -> str:
    return " ".join(f"{cls} {h} {s} {t}" for cls, (h, s, t) in limits.items())


@dataclass(slots=True)
class Directive:
    """One configuration parameter.

    `mutable=False`: Redis refuses CONFIG SET too. `restart=True`: Redis changes it live
    but the store cannot, so CONFIG SET accepts only the current value. `hidden`: left
    out of CONFIG GET patterns, shown only when asked for by name (as in Redis).
    """

    name: str
    default: str
    parse: Callable[[str], object] = str
    show: Callable[[object], str] = str
    mutable: bool = True
    restart: bool = False
    hidden: bool = False


_POLICIES = (
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
)
_INT_MAX = 2147483647

DIRECTIVES: dict[str, Directive] = {
    d.name: d
    for d in [
        Directive("bind", "127.0.0.1", restart=True),
        Directive("port", "6380", _bounded(0, 65535), restart=True),
        Directive("unixsocket", "", mutable=False),
        Directive("requirepass", ""),
        Directive("aclfile", "", mutable=False),
        Directive("keys-expire-notify", ""),
        Directive("notify-keyspace-events", "", _flags, notify.format_flags),
        Directive(
            "proto-max-bulk-len", "536870912", _bounded_memory(1024 * 1024, 9223372036854775807)
        ),
        Directive(
            "client-output-buffer-limit",
            _format_limits(DEFAULT_BUFFER_LIMITS),
            _buffer_limits,
            _format_limits,
        ),
        Directive("client-query-buffer-limit", "1073741824", _memory_value),
        Directive("maxclients", "10000", _bounded(1, 4294967295)),
        Directive("timeout", "0", _bounded(0)),
        Directive("databases", "16", _int, mutable=False),
        Directive("hz", "10", _bounded(0)),
        Directive("save", "", _save),
        Directive("appendonly", "no", _yesno),
        Directive("appendfsync", "everysec", _enum("everysec", "always", "no")),
        Directive(
            "appendfilename",
            "appendonly.aof",
            _plain_name("appendfilename", "filename"),
            mutable=False,
        ),
        Directive(
            "appenddirname", "appendonlydir", _plain_name("appenddirname", "dirname"), mutable=False
        ),
        Directive("auto-aof-rewrite-percentage", "100", _bounded(0)),
        Directive("auto-aof-rewrite-min-size", "67108864", _memory_value),
        Directive("aof-load-truncated", "yes", _yesno),
        Directive("aof-use-rdb-preamble", "yes", _yesno),
        Directive("aof-timestamp-enabled", "no", _yesno),
        Directive("aof-rewrite-incremental-fsync", "yes", _yesno),
        Directive("no-appendfsync-on-rewrite", "no", _yesno),
        Directive("aof-load-expire-delay", "0", _bounded(0)),
        Directive("maxmemory", "0", _memory_value),
        Directive("maxmemory-policy", "noeviction", _enum(*_POLICIES)),
        Directive("maxmemory-samples", "5", _bounded(1)),
        Directive("maxmemory-eviction-tenacity", "10", _bounded(0, 100)),
        Directive("maxmemory-clients", "0", _memory_or_percent),
        Directive("min-replicas-to-write", "0", _bounded(0, _INT_MAX)),
        Directive("min-replicas-max-lag", "10", _bounded(0, _INT_MAX)),
        Directive("replicaof", "", mutable=False),
        Directive("repl-backlog-size", "1048576", _memory_value),
        Directive("key-load-delay", "0", _bounded(-2147483648), hidden=True),
        Directive("loglevel", "notice", _enum("debug", "verbose", "notice", "warning")),
        Directive("logfile", "", mutable=False),
        Directive("protected-mode", "yes", _yesno),
        Directive("tcp-keepalive", "300", _bounded(0)),
        Directive("tcp-backlog", "511", _bounded(0), mutable=False),
        Directive("daemonize", "no", _yesno, mutable=False),
        Directive("supervised", "no", _enum("upstart", "systemd", "auto", "no"), mutable=False),
        Directive("pidfile", "", mutable=False),
        Directive("dir", ".", restart=True),
        Directive("dbfilename", "dump.rdb"),
        Directive("rdbcompression", "yes", _yesno),
        Directive("sanitize-dump-payload", "no", _enum("no", "yes", "clients")),
        Directive("busy-reply-threshold", "5000", _bounded(0, 9223372036854775807)),
        Directive("slowlog-log-slower-than", "10000", _bounded(-1, 9223372036854775807)),
        Directive("slowlog-max-len", "128", _bounded(0, 9223372036854775807)),
        Directive("latency-tracking", "yes", _yesno),
        Directive("latency-monitor-threshold", "0", _bounded(0, 9223372036854775807)),
        Directive("cluster-enabled", "no", _yesno, mutable=False),
        Directive("enable-debug-command", "no", _enum("no", "yes", "local"), mutable=False),
        Directive("enable-module-command", "no", _enum("no", "yes", "local"), mutable=False),
        Directive("activerehashing", "yes", _yesno),
        Directive("active-expire-effort", "1", _bounded(1, 10)),
        Directive("lazyfree-lazy-eviction", "no", _yesno),
        Directive("lazyfree-lazy-expire", "no", _yesno),
        Directive("lazyfree-lazy-server-del", "no", _yesno),
        Directive("lazyfree-lazy-user-del", "no", _yesno),
        Directive("lazyfree-lazy-user-flush", "no", _yesno),
        Directive("io-threads", "1", _bounded(1, 128), mutable=False),
        Directive("hash-max-listpack-entries", "512", _bounded(0, 9223372036854775807)),
        Directive("hash-max-listpack-value", "64", _bounded(0, 9223372036854775807)),
        Directive("list-max-listpack-size", "-2", _bounded(-5, _INT_MAX)),
        Directive("list-compress-depth", "0", _bounded(0, _INT_MAX)),
        Directive("set-max-intset-entries", "512", _bounded(0, _INT_MAX)),
        Directive("zset-max-listpack-entries", "128", _bounded(0, 9223372036854775807)),
        Directive("zset-max-listpack-value", "64", _bounded(0, 9223372036854775807)),
        Directive("hll-sparse-max-bytes", "3000", _bounded_memory(0, 9223372036854775807)),
        Directive("stream-node-max-bytes", "4096", _bounded_memory(0, 9223372036854775807)),
        Directive("stream-node-max-entries", "100", _bounded(0, 9223372036854775807)),
    ]
}

# Old names Redis 7 still accepts; CONFIG GET with a glob shows both.
ALIASES = {
    "hash-max-ziplist-entries": "hash-max-listpack-entries",
    "hash-max-ziplist-value": "hash-max-listpack-value",
    "list-max-ziplist-size": "list-max-listpack-size",
    "zset-max-ziplist-entries": "zset-max-listpack-entries",
    "zset-max-ziplist-value": "zset-max-listpack-value",
    "slaveof": "replicaof",
    "lua-time-limit": "busy-reply-threshold",
    "min-slaves-to-write": "min-replicas-to-write",
    "min-slaves-max-lag": "min-replicas-max-lag",
}


def canonical(name: str) -> str | None:
    """The directive a (lower-case) name or alias refers to, or None if unknown."""
    name = ALIASES.get(name, name)
    return name if name in DIRECTIVES else None


class Config:
    """The current values, parsed; `on_change(name, value)` is called after every set."""

    def __init__(self) -> None:
        self.values = {name: d.parse(d.default) for name, d in DIRECTIVES.items()}
        self.on_change: Callable[[str, object], None] = lambda name, value: None

    def __getitem__(self, name: str):
        return self.values[name]

    def set(self, name: str, text: str, startup: bool = False) -> None:
        """Parse and store one directive; raises KeyError (unknown) or ConfigError."""
        directive = DIRECTIVES[canonical(name.lower()) or name.lower()]
        if not startup and not directive.mutable:
            raise ConfigError("can't set immutable config")
        self.values[directive.name] = directive.parse(text)
        self.on_change(directive.name, self.values[directive.name])

    def show(self, name: str) -> str:
        name = canonical(name) or name
        return DIRECTIVES[name].show(self.values[name])


def parse_config_file(text: str) -> list[tuple[str, str]]:
    """redis.conf syntax: `name value...` per line, `#` comments, quoted values allowed.

    Raises ConfigError naming the line for an unknown directive or an unparsable line.
    """
    pairs = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line, posix=True)
        except ValueError as exc:
            raise ConfigError(f"line {lineno}: {exc}") from None
        name = canonical(words[0].lower())
        if name is None:
            raise ConfigError(
                f"line {lineno}: Bad directive or wrong number of arguments: {words[0]}"
            )
        pairs.append((name, " ".join(words[1:])))
    return pairs
