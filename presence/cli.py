"""`presence serve` (one service node) and `presence bench` (see presence.bench).

Every `serve` flag can also be given as an environment variable PRESENCE_<FLAG>, e.g.
PRESENCE_REDIS_URL or PRESENCE_POLL_TIMEOUT; a flag on the command line wins.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys

from presence import allocator, node
from presence.web import auth
from presence.web.auth import parse_admin_tokens
from presence.web.base import install_log_redaction
from presence.workers import serve_workers

USAGE = """usage: presence <command> [options]

commands:
  serve   run one service node (with no --redis-url it starts the bundled store itself)
  bench   drive a running deployment with simulated users
  token   print a signed client token:
          presence token --secret S --user U [--ttl SECONDS] [--channels 'lobby,team-*']

`presence <command> --help` for the options of a command."""

log = logging.getLogger("presence")


def _env(flag: str, default=None):
    return os.environ.get("PRESENCE_" + flag.upper().replace("-", "_"), default)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


_ON, _OFF = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def _flag_env(flag: str) -> bool:
    """An on/off flag's default from PRESENCE_<FLAG> (1, true, yes, on; or 0, false, no,
    off); any other value stops start-up, as a bad flag would (exit status 2)."""
    value = str(_env(flag, "")).strip().lower()
    if value not in _ON + _OFF:
        variable = "PRESENCE_" + flag.upper().replace("-", "_")
        print(
            f"presence serve: {variable} must be one of {', '.join(_ON + _OFF[1:])}",
            file=sys.stderr,
        )
        sys.exit(2)
    return value in _ON


def _admin_tokens(text: str) -> str:
    """--admin-token checked (its error never repeats a token)."""
    try:
        parse_admin_tokens(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _workers(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (one per core) or more, not {text}")
    return value


class _EnvCheckedParser(argparse.ArgumentParser):
    """argparse checks `choices` only on the command line; this one also checks a default
    that came from a PRESENCE_<FLAG> variable, and names the variable."""

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed, rest = super().parse_known_args(args, namespace)
        for action in self._actions:
            value = getattr(parsed, action.dest, None)
            if action.choices is None or value is None or value in action.choices:
                continue
            variable = "PRESENCE_" + action.dest.upper()
            self.error(
                f"{variable}: invalid choice: {value!r} (choose from "
                f"{', '.join(map(str, action.choices))})"
            )
        return parsed, rest


def serve_parser() -> argparse.ArgumentParser:
    """The `presence serve` options; each defaults to its PRESENCE_<FLAG> variable.

    Environment values go through the same checks as flags (argparse converts string
    defaults with the option's type).
    """
    p = _EnvCheckedParser(prog="presence serve", description="Run one presence service node.")
    add = p.add_argument
    add("--host", default=_env("host", "127.0.0.1"), help="address to listen on (127.0.0.1)")
    add("--port", type=int, default=_env("port", "8080"), help="HTTP port (8080)")
    add(
        "--redis-url",
        default=_env("redis-url"),
        help="redis://, rediss:// or unix:// store URL; omitted: start the bundled store",
    )
    add(
        "--store-mode",
        choices=["auto", "standalone", "cluster"],
        default=_env("store-mode", "auto"),
        help="what --redis-url is: auto (ask the node), standalone, or a node of a Redis "
        "Cluster; a store of the other kind stops start-up with a message saying so (auto)",
    )
    add(
        "--offline-timers",
        choices=["auto", "on", "off"],
        default=_env("offline-timers", "auto"),
        help="claim a silent user's offline at its deadline from this node instead of "
        "waiting for the store's expiry notice: auto = on unless the store announces expiries "
        "at the deadline (the bundled store does; Redis announces them late) (auto)",
    )
    add(
        "--answer-pace",
        type=_non_negative,
        default=_env("answer-pace", "0.05"),
        help="seconds between two answers of one channel's held polls while chat messages "
        "stream in: each answer then carries the messages of that time (one poll per tab per "
        "pace, not one per message), for busy channels; presence events are never paced; "
        "0 = off (0.05)",
    )
    add(
        "--timeout",
        type=_positive,
        default=_env("timeout", "30"),
        help="seconds of silence before a user is offline (30)",
    )
    add(
        "--poll-timeout",
        type=_positive,
        default=_env("poll-timeout", "25"),
        help="seconds a long-poll is held (25)",
    )
    add(
        "--leave-grace",
        type=_non_negative,
        default=_env("leave-grace", "2"),
        help="seconds a user whose last tab left stays a member: a tab that comes back within "
        "it (a reload) makes no leave and no join for the others; 0 = off (2)",
    )
    add(
        "--disconnect-grace",
        type=_non_negative,
        default=_env("disconnect-grace", "3"),
        help="seconds after the connection of a held poll closes before its tab is gone, "
        "unless the tab makes a new request meanwhile (instead of --timeout); 0 = off (3)",
    )
    add(
        "--admin-token",
        type=_admin_tokens,
        default=_env("admin-token"),
        help="bearer tokens for the operator endpoints (/api/*, /metrics): TOKEN or "
        "NAME=TOKEN, comma-separated; a kick's leave event names the token's NAME ('admin' "
        "when unnamed); unset: the operator endpoints are open",
    )
    add(
        "--public-api",
        action="store_true",
        default=_flag_env("public-api"),
        help="with --admin-token, let anyone read /api/channels, /api/events and /metrics "
        "(kicks still need a token; private channels are shown to token holders only) (off)",
    )
    add(
        "--access-log",
        choices=["off", "errors", "sample", "all"],
        default=_env("access-log", "errors"),
        help="which requests get an access-log line: none, answers >= 400, those and one "
        "in --access-log-sample of the others, or every request (errors)",
    )
    add(
        "--access-log-sample",
        type=_positive_int,
        default=_env("access-log-sample", "100"),
        help="with --access-log sample: log one in this many answers below 400 (100)",
    )
    add(
        "--secret",
        default=_env("secret"),
        help="HMAC secret: client endpoints then need a signed `token` (see `presence token`)",
    )
    add(
        "--node-id",
        default=_env("node-id", socket.gethostname()),
        help="this node's name in /healthz and /metrics (host name)",
    )
    add(
        "--store-port",
        type=int,
        default=_env("store-port", "0"),
        help="also let the bundled store listen on TCP 127.0.0.1:<port> (password-protected: "
        "the passwords are in users.acl of its private directory); 0 = only its private unix "
        "socket (0)",
    )
    add(
        "--store-restarts",
        type=_count,
        default=_env("store-restarts", "5"),
        help="restarts of a dead bundled store allowed within --store-restart-window; one "
        "more death and the node exits 1 (for systemd to restart the unit) (5)",
    )
    add(
        "--store-restart-window",
        type=_positive,
        default=_env("store-restart-window", "60"),
        help="seconds over which --store-restarts counts (60)",
    )
    add(
        "--data-dir",
        default=_env("data-dir"),
        help="directory where the bundled store keeps its data (appendonly yes, fsync "
        "everysec), so a restart of the store keeps users and events; unset: in memory only",
    )
    add(
        "--history",
        type=_positive_int,
        default=_env("history", "1000"),
        help="events kept per channel (1000)",
    )
    add(
        "--history-age",
        type=_positive,
        default=_env("history-age", "600"),
        help="seconds an event is kept (600)",
    )
    _add_limits(add)
    add("--static-dir", default=_env("static-dir"), help="folder of the demo page and client")
    add(
        "--http-engine",
        choices=["own", "tornado"],
        default=_env("http-engine", "own"),
        help="the HTTP/1.1 server: own (asyncio and httptools, polls and heartbeats served "
        "without a Tornado request) or tornado (Tornado's HTTPServer); the same answers and "
        "limits on both (own)",
    )
    add(
        "--workers",
        type=_workers,
        default=_env("workers", "1"),
        help="node processes sharing the port, named <node-id>-<i>; 0: one per core (1)",
    )
    add(
        "--recycle-after-peak",
        type=_count,
        default=_env("recycle-after-peak", "500"),
        metavar="POLLS",
        help="with --workers: a worker that held this many polls at once is replaced by a "
        "fresh process once it holds a tenth of that at two sweeps in a row (the memory a "
        "peak leaves goes with it; its held polls are answered reconnect: true); 0: never "
        "(500)",
    )
    add(
        "--log-level",
        type=str.lower,
        default=_env("log-level", "info"),
        choices=["debug", "info", "warning", "error"],
        help="(info)",
    )
    add(
        "--allocator",
        choices=allocator.CHOICES,
        default=_env("allocator", "auto"),
        help="what Python's objects are allocated with: jemalloc (memory goes back to the "
        "system after a peak; needs libjemalloc2), malloc (the C library's; the same, 12-16%% "
        "more CPU), pymalloc (CPython's default: 3%% less CPU than jemalloc, keeps arenas "
        "after a peak), auto: jemalloc when the system has it, else pymalloc; `presence "
        "serve` re-executes itself once to apply it (auto)",
    )
    add(
        "--memory-probe",
        metavar="DIR",
        default=_env("memory-probe"),
        help="diagnosis: on SIGUSR2, write what holds the node's memory to DIR (with "
        "PYTHONTRACEMALLOC=1 also a tracemalloc snapshot; presence.runtime.MemoryProbe); "
        "unset: off",
    )
    return p


def _add_limits(add) -> None:
    """The limits of one node: what a client may send and hold (see README, Limits)."""
    for flag, kind, default, meaning in (
        ("max-body-size", _positive_int, "65536", "bytes of a request body; more: 413"),
        ("max-header-size", _positive_int, "32768", "bytes of a request's line and headers; "
         "more: 431"),
        ("max-url-length", _positive_int, "16384", "bytes of a request's URL; more: 414"),
        ("header-timeout", _positive, "10", "seconds to receive a request's headers (also "
         "the longest a kept-alive connection idles); then it is closed"),
        ("body-timeout", _positive, "10", "seconds to receive a request's body; then the "
         "connection is closed"),
        ("listen-backlog", _positive_int, "4096", "connections the kernel queues for a node "
         "before it accepts them (capped by net.core.somaxconn); a full queue drops new ones "
         "for a second: the tabs of a node that died all reconnect at once"),
        ("max-connections", _positive_int, str(node.DEFAULT_MAX_CONNECTIONS), "open HTTP connections of a node (the "
         "file descriptor limit is raised to fit); more are answered 503 and closed"),
        ("max-json-depth", _positive_int, "32", "nesting of arrays and objects in a JSON "
         "body or `info`; deeper: 400"),
        ("max-held-polls", _positive_int, "15000", "long-polls a node holds at once; more: "
         "503 with Retry-After"),
        ("max-tabs", _positive_int, "32", "live tabs (conn ids) of one user in one channel; "
         "a join of one more: 429 with Retry-After"),
        ("max-channels-per-tab", _positive_int, "64", "channels one tab (conn id) is in, "
         "counted by each node; a join of one more: 429 with Retry-After"),
        ("max-messages-per-second", _positive, "10", "chat messages one tab (conn id) may "
         "send per second, in bursts of as many; more: 429 with Retry-After"),
    ):  # fmt: skip
        add(f"--{flag}", type=kind, default=_env(flag, default), help=f"{meaning} ({default})")


def main(argv: list[str] | None = None) -> int:
    """`presence ...`; argv None: this process's command line (then `serve` may re-execute
    the process on the allocator it asks for; a call from Python never does)."""
    from_command_line = argv is None
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        args = serve_parser().parse_args(rest)
        if from_command_line:
            allocator.reexec(args.allocator)  # returns when nothing needs doing
        return serve(args)
    if command == "token":
        return token(rest)
    if command == "bench":
        try:  # imported here: the bench needs only what `presence bench` runs
            from presence.bench import main as bench_main
        except ImportError as exc:
            print(f"presence bench is not available: {exc}", file=sys.stderr)
            return 2
        return bench_main(rest) or 0
    print(f"presence: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


def token(argv: list[str]) -> int:
    """`presence token`: mint a client token for --secret deployments."""
    p = argparse.ArgumentParser(prog="presence token", description="Print a signed client token.")
    p.add_argument("--secret", default=_env("secret"), required=_env("secret") is None)
    p.add_argument("--user", required=True)
    p.add_argument("--ttl", type=float, default=86400, help="seconds the token is valid (1 day)")
    p.add_argument(
        "--channels",
        help="comma-separated channels or prefixes ending in * (e.g. 'lobby,team-*'): the "
        "token is valid there only, private-* channels included; omitted: any channel but "
        "private-* ones",
    )
    args = p.parse_args(argv)
    channels = None if args.channels is None else args.channels.split(",")
    try:
        print(auth.sign(args.secret, args.user, args.ttl, channels=channels))
    except ValueError as exc:
        p.error(f"--channels: {exc}")
    return 0


def serve(args: argparse.Namespace) -> int:
    """Run a node until SIGTERM/SIGINT; returns the process exit status."""
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    if args.data_dir and args.redis_url:
        print(
            "presence serve: --data-dir is where the bundled store keeps its data; with "
            "--redis-url the store is yours and keeps its own (drop one of the two)",
            file=sys.stderr,
        )
        return 2
    install_log_redaction()
    if args.poll_timeout >= args.timeout:
        clamped = args.timeout * 0.8
        log.warning(
            "--poll-timeout %g must be below --timeout %g (a held poll does not keep its "
            "user online); using %g",
            args.poll_timeout,
            args.timeout,
            clamped,
        )
        args.poll_timeout = clamped
    workers = args.workers or os.cpu_count() or 1
    if workers > 1:
        return serve_workers(args, workers)
    try:
        import uvloop

        return uvloop.run(node.run(args))
    except ImportError:
        return asyncio.run(node.run(args))


if __name__ == "__main__":
    sys.exit(main())
