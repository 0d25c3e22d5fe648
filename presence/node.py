"""One node's life: bind the port, start (or reach) the store, serve until SIGTERM or
SIGINT, then drain. `presence serve` (presence.cli) parses the flags and comes here; the
workers of `--workers N` (presence.workers) run `run_node` in each child."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from presence import allocator
from presence.runtime import MemoryProbe, Recycler, raise_fd_limit, tune_gc
from presence.service.embedded import (
    EmbeddedStore,
    RestartPolicy,
    StoreStartError,
    StoreStatus,
    StoreSupervisor,
)
from presence.service.gateway import Gateway, StoreSetupError
from presence.service.model import Presence
from presence.service.nodes import NodeReporter
from presence.service.quotas import ClientLimits
from presence.service.records import StoreUnavailable
from presence.service.subscriber import Subscriber
from presence.web.app import WebSettings, default_static_dir, make_app, make_server
from presence.web.limits import Limits, listen_sockets, throttle_logs

DEFAULT_MAX_CONNECTIONS = 20000  # --max-connections; lowered to fit the open-file limit
log = logging.getLogger("presence")


def cannot_listen(host: str, port: int, exc: OSError) -> str:
    """The one-line message of a port that cannot be listened on (exit status 2)."""
    reason = exc.strerror or str(exc)
    hint = " (another process uses it: stop it or choose --port)" if exc.errno in (
        errno.EADDRINUSE, errno.EACCES) else ""  # fmt: skip
    return f"presence: cannot listen on {host}:{port}: {reason.lower()}{hint}"


async def run(args: argparse.Namespace) -> int:

    try:
        sockets = listen_sockets(
            args.port, args.host, args.listen_backlog
        )  # first: a port in use stops at once
    except OSError as exc:
        print(cannot_listen(args.host, args.port, exc), file=sys.stderr)
        return 2
    args.port = sockets[0].getsockname()[1]  # the real one for --port 0
    store = None
    try:
        if args.redis_url:
            label = without_password(args.redis_url)
            return await run_node(args, args.redis_url, label, sockets)
        store = EmbeddedStore(args.store_port, data_dir=args.data_dir)
        url = await store.start()
        status = StoreStatus()
        policy = RestartPolicy(args.store_restarts, args.store_restart_window)
        supervisor = asyncio.ensure_future(StoreSupervisor(store, policy, status).run())
        try:
            return await run_node(
                args, url, f"bundled store on {store.where}", sockets, store_status=status,
                store_lost=supervisor,
            )  # fmt: skip
        finally:
            supervisor.cancel()
    except StoreStartError as exc:
        print(f"presence: cannot start the bundled store: {exc}", file=sys.stderr)
        return 1
    except StoreSetupError as exc:
        print(f"presence: {exc}", file=sys.stderr)
        return 1
    finally:
        for sock in sockets:
            sock.close()  # (the server has its own references while it runs)
        if store is not None:
            store.remove()


async def run_node(
    args: argparse.Namespace,
    url: str,
    store_label: str,
    sockets: list[socket.socket] | None = None,
    ready: Callable[[], object] | None = None,
    store_status: StoreStatus | None = None,
    store_lost: asyncio.Future | None = None,
    recycle: Callable[[], object] | None = None,
) -> int:
    """Serve until signalled (exit 0) or until `store_lost` is done: the supervisor of the
    bundled store gave up on it (exit 1). A worker of presence.workers passes the listening
    `sockets` its parent bound, a `ready()` to call instead of printing the announcement
    and a `recycle()` that asks the parent to replace it (presence.runtime.Recycler)."""

    try:
        gateway = await Gateway.connect(url, args.history, args.store_mode)
        await gateway.ping()
    except StoreUnavailable as exc:
        print(f"presence: cannot reach the store at {store_label}: {exc}", file=sys.stderr)
        return 1
    model = Presence(
        gateway,
        args.timeout,
        args.poll_timeout,
        args.history_age,
        answer_pace=args.answer_pace,
        limits=ClientLimits(
            args.max_held_polls, args.max_tabs, args.max_channels_per_tab,
            args.max_messages_per_second,
        ),
        leave_grace=args.leave_grace,
        disconnect_grace=args.disconnect_grace,
    )  # fmt: skip
    model.bundled_store = store_status
    subscriber = Subscriber(
        model, timers={"auto": None, "on": True, "off": False}[args.offline_timers]
    )
    if recycle is not None:
        subscriber.recycler = Recycler(args.recycle_after_peak, recycle)
    try:
        try:
            await subscriber.start()
        except TimeoutError:
            print(
                f"presence: could not subscribe to the store at {store_label}",
                file=sys.stderr,
            )
            return 1
        static = args.static_dir or default_static_dir()
        settings = WebSettings(
            args.admin_token,
            args.node_id,
            static,
            args.secret,
            network_limits(args),
            public_api=args.public_api,
            access_log=args.access_log,
            access_log_sample=args.access_log_sample,
        )
        server = make_server(make_app(model, settings), args.http_engine, settings.limits)
        throttle_logs()
        if sockets is None:
            server.listen(args.port, args.host)
        else:
            server.add_sockets(sockets)
        reporter = NodeReporter(model, args.node_id, f"{args.host}:{args.port}")
        reporter.start()
        tune_gc()
        if args.memory_probe:
            trimmer = subscriber.trimmer
            probe = MemoryProbe(
                args.memory_probe,
                lambda: {
                    "node": args.node_id,
                    "kept": model.kept(),
                    "trims": trimmer.trims,
                    "trimmed_kib": trimmer.freed_kib,
                },
            )
            probe.install(asyncio.get_running_loop())
        if ready is None:
            announce(args, store_label)
        else:
            ready()
        signalled = await until_signalled(store_lost)
        await reporter.stop()
        await drain(server, model)
        return 0 if signalled else 1
    finally:
        await subscriber.stop()
        await gateway.close()


FD_RESERVE = 1024  # descriptors kept for the store's connections, files and the rest


def network_limits(args: argparse.Namespace) -> Limits:
    """The node's presence.web.limits.Limits from its flags, after raising the open-file
    limit to fit --max-connections (lowered, with a warning, when it cannot)."""

    connections = args.max_connections
    available = raise_fd_limit(connections + FD_RESERVE) - FD_RESERVE
    if available < connections:
        connections = max(available, 64)
        # the default only says "as many as fit": a fresh machine's limit is no news
        level = logging.INFO if args.max_connections == DEFAULT_MAX_CONNECTIONS else logging.WARNING
        log.log(
            level,
            "--max-connections %d is above what the open-file limit allows; using %d "
            "(raise the hard limit: ulimit -Hn, or LimitNOFILE= under systemd)",
            args.max_connections,
            connections,
        )
    return Limits(
        max_body_size=args.max_body_size,
        max_header_size=args.max_header_size,
        max_url_length=args.max_url_length,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        max_connections=connections,
        max_json_depth=args.max_json_depth,
    )


def without_password(url: str) -> str:
    """The store URL as it may be printed: its password (if any) replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:" if parts.username else ":"
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}***@{host}").geturl()


def announce(args: argparse.Namespace, store_label: str, workers: list[str] | None = None) -> None:
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(args.host, args.host)
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    base = f"http://{host}:{args.port}"  # a URL one can open, also when listening on all
    node = args.node_id
    if workers:
        node += f" ({len(workers)} workers: {', '.join(workers)})"
    print(
        f"presence node {node} listening on {args.host}:{args.port} (store: {store_label})\n"
        f"  demo page:  {base}/\n"
        f"  dashboard:  {base}/dashboard\n"
        f"  API:        {base}/api/channels   health: {base}/healthz   metrics: {base}/metrics\n"
        f"  memory:     {allocator.current()} (--allocator {getattr(args, 'allocator', 'auto')})",
        flush=True,
    )


async def until_signalled(store_lost: asyncio.Future | None = None) -> bool:
    """Wait for SIGTERM/SIGINT (True) or for `store_lost` to be done (False)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    signalled = asyncio.ensure_future(stop.wait())
    waits: list[asyncio.Future] = [signalled] if store_lost is None else [signalled, store_lost]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    if not signalled.done():
        signalled.cancel()
        log.error("stopping: the bundled store cannot be kept running")
        return False
    return True


async def drain(server: Any, model: Presence, grace: float = 3.0) -> None:
    """Stop accepting, refresh the held polls' tabs (at most 2 s) and answer them with a
    reconnect hint, then close connections."""
    server.stop()
    await model.drain()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while model.pending and loop.time() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # let the answers flush
    await server.close_all_connections()
    log.info("stopped")
