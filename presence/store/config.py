"""Configuration directives: defaults, parsing, and the redis.conf file format.

One table serves the command line (`--port 6380`), the config file (`port 6380`) and
CONFIG GET/SET. A directive's `apply` pushes a new value into the running server, so a
CONFIG SET takes effect at once.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Callable

from presence.store import notify


class ConfigError(ValueError):
    """A directive value that does not parse; the message is Redis's reason text."""


def _int(text: str) -> int:
    try:
        return int(_memory(text))
    except ValueError:
        raise ConfigError("argument couldn't be parsed into an integer") from None


def _memory(text: str) -> int:
    """Redis memory units: 1k=1000, 1kb=1024, 1m, 1mb, 1g, 1gb."""
    t = text.strip().lower()
    for suffix, mul in (("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10),
                        ("g", 10**9), ("m", 10**6), ("k", 1000)):
        if t.endswith(suffix):
            return int(t[:-len(suffix)]) * mul
    return int(t)


def _yesno(text: str) -> str:
    if text.lower() not in ("yes", "no"):
        raise ConfigError("argument must be 'yes' or 'no'")
    return text.lower()


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
                _memory(parts[i + 1]), _memory(parts[i + 2]), int(parts[i + 3]))
        except ValueError:
            raise ConfigError("Error in hard, soft or soft_seconds setting in buffer limit configuration.") from None
    return limits


DEFAULT_BUFFER_LIMITS = {"normal": (0, 0, 0), "slave": (268435456, 67108864, 60),
                         "pubsub": (33554432, 8388608, 60)}


def _format_limits(limits: dict) -> str:
    return " ".join(f"{cls} {h} {s} {t}" for cls, (h, s, t) in limits.items())


@dataclass(slots=True)
class Directive:
    """One configuration parameter."""

    name: str
    default: str
    parse: Callable[[str], object] = str
    show: Callable[[object], str] = str
    mutable: bool = True


DIRECTIVES: dict[str, Directive] = {d.name: d for d in [
    Directive("bind", "127.0.0.1", mutable=False),
    Directive("port", "6380", _int, mutable=False),
    Directive("unixsocket", "", mutable=False),
    Directive("requirepass", ""),
    Directive("keys-expire-notify", ""),
    Directive("notify-keyspace-events", "", _flags, notify.format_flags),
    Directive("proto-max-bulk-len", "536870912", _int),
    Directive("client-output-buffer-limit", _format_limits(DEFAULT_BUFFER_LIMITS),
              _buffer_limits, _format_limits),
    Directive("maxclients", "10000", _int),
    Directive("timeout", "0", _int),
    Directive("databases", "16", _int, mutable=False),
    Directive("hz", "10", _int),
    Directive("save", ""),
    Directive("appendonly", "no", _yesno),
    Directive("maxmemory", "0", _int),
    Directive("maxmemory-policy", "noeviction"),
    Directive("loglevel", "notice"),
    Directive("logfile", ""),
    Directive("protected-mode", "yes", _yesno),
    Directive("tcp-keepalive", "300", _int),
    Directive("daemonize", "no", _yesno, mutable=False),
    Directive("dir", ".", mutable=False),
    Directive("dbfilename", "dump.rdb"),
    Directive("lua-time-limit", "5000", _int),
    Directive("slowlog-log-slower-than", "10000", _int),
    Directive("slowlog-max-len", "128", _int),
    Directive("latency-tracking", "yes", _yesno),
    Directive("cluster-enabled", "no", _yesno, mutable=False),
]}


class Config:
    """The current values, parsed; `on_change(name, value)` is called after every set."""

    def __init__(self) -> None:
        self.values = {name: d.parse(d.default) for name, d in DIRECTIVES.items()}
        self.on_change: Callable[[str, object], None] = lambda name, value: None

    def __getitem__(self, name: str):
        return self.values[name]

    def set(self, name: str, text: str, startup: bool = False) -> None:
        """Parse and store one directive; raises KeyError (unknown) or ConfigError."""
        directive = DIRECTIVES[name.lower()]
        if not startup and not directive.mutable:
            raise ConfigError("can't set immutable config")
        self.values[directive.name] = directive.parse(text)
        self.on_change(directive.name, self.values[directive.name])

    def show(self, name: str) -> str:
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
        name = words[0].lower()
        if name not in DIRECTIVES:
            raise ConfigError(f"line {lineno}: Bad directive or wrong number of arguments: {words[0]}")
        pairs.append((name, " ".join(words[1:])))
    return pairs
