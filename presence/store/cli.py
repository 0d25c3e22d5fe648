"""`presence-store`: run the bundled store standalone, like `redis-server`.

    presence-store [/path/to/presence.conf] [--port 6380] [--bind 127.0.0.1] ...

Every directive of the config table is accepted as `--name value` (as redis-server
does), after the optional config file, and is also settable later with CONFIG SET.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from presence import __version__
from presence.runtime import tune_gc
from presence.store.acl import AclFileError
from presence.store.config import DIRECTIVES, Config, ConfigError, parse_config_file
from presence.store.persistence import AofError
from presence.store.server import VERSION, Server

log = logging.getLogger("presence.store")
USAGE = """usage: presence-store [config-file] [--directive value ...]

Runs the bundled Redis-compatible store (default 127.0.0.1:6380).
Common directives:
  --bind ADDRS                 addresses to listen on (default 127.0.0.1)
  --port N                     TCP port (default 6380; 0 disables TCP)
  --unixsocket PATH            also listen on a unix socket
  --requirepass PASSWORD       require AUTH
  --aclfile PATH               ACL users, one `user <name> <rules>` a line (ACL LOAD/SAVE)
  --keys-expire-notify CHANNEL PUBLISH CHANNEL <key> at every key's expiry
  --notify-keyspace-events F   Redis keyspace notification flags (e.g. Ex, KEA)
  --appendonly yes|no          keep an append-only file in --dir, load it at start (no)
  --appendfsync POLICY         everysec (default), always or no
  --dir DIR                    where the append-only files are (default .)
Any other redis.conf directive the store knows is accepted the same way.
"""


def parse_args(argv: list[str]) -> Config:
    """Build a Config from an optional config file then `--name value...` pairs.

    Raises ConfigError with a message naming the bad directive.
    """
    config = Config()
    if argv and not argv[0].startswith("--"):
        path, argv = argv[0], argv[1:]
        try:
            with open(path, encoding="utf-8") as fh:
                pairs = parse_config_file(fh.read())
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        for name, value in pairs:
            _set(config, name, value)
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise ConfigError(f"unexpected argument {arg!r} (directives are --name value)")
        name = arg[2:].lower()
        values = []
        i += 1
        while i < len(argv) and not argv[i].startswith("--"):
            values.append(argv[i])
            i += 1
        _set(config, name, " ".join(values))
    return config


def _set(config: Config, name: str, value: str) -> None:
    if name not in DIRECTIVES:
        raise ConfigError(f"unknown directive '{name}'")
    try:
        config.set(name, value, startup=True)
    except ConfigError as exc:
        raise ConfigError(f"bad value for '{name}' ({value!r}): {exc}") from None


async def serve(config: Config) -> None:
    """Run until SIGINT/SIGTERM or SHUTDOWN."""
    server = Server(config)
    await server.start()
    tune_gc()
    where = (
        ", ".join(f"{h}:{config['port']}" for h in config["bind"].split()) if config["port"] else ""
    )
    if config["unixsocket"]:
        where = ", ".join(filter(None, [where, config["unixsocket"]]))
    log.info("presence-store %s (Redis %s compatible) ready on %s", _version(), VERSION, where)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.shutdown_requested.set)
    await server.shutdown_requested.wait()
    log.info("shutting down")
    await server.close()


def _version() -> str:
    return __version__


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return
    if argv and argv[0] in ("-v", "--version"):
        print(f"presence-store {_version()} (Redis {VERSION} compatible)")
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s store %(levelname)s %(message)s")
    try:
        config = parse_args(argv)
    except ConfigError as exc:
        print(f"presence-store: {exc}", file=sys.stderr)
        sys.exit(2)
    run = asyncio.run
    try:
        import uvloop  # not installed on Windows (pyproject.toml): optional, not an import cycle

        run = uvloop.run  # about 1.3x the request rate of the default loop here
    except ImportError:
        pass
    try:
        run(serve(config))
    except AofError as exc:
        print(f"presence-store: {exc}", file=sys.stderr)
        sys.exit(1)
    except AclFileError as exc:
        print(f"presence-store: Aborting startup because of ACL errors: {exc}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:
        print(f"presence-store: cannot listen: {exc}", file=sys.stderr)
        sys.exit(1)
