"""The network side of the store: asyncio connections, command dispatch, the expiry timer.

Each connection is an `asyncio.Protocol` (no streams, no per-command tasks): bytes go
into the sans-IO parser, every complete command is dispatched synchronously, and all
replies produced by one read are written in one `transport.write`, late in the same
event-loop turn: every ready connection is read before any is written to, as Redis does
(its beforeSleep), so a busy client is woken once per turn rather than once per
connection. One timer is armed for the earliest key deadline; when it fires, due keys
are expired and announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import sys
import time
from time import perf_counter_ns

from presence.store import REDIS_VERSION, replies
from presence.store.acl import NOPERM, AclLog, User, default_user, parse_acl_file
from presence.store.acl import denial as acl_denial
from presence.store.blocking import Blocking, serve_later
from presence.store.commands import (
    NO_REPLY,
    SUBCOMMANDS,
    CommandError,
    load_all,
    subcommand_refusal,
)
from presence.store.commands.client import describe
from presence.store.commands.transaction import end_transaction, unwatch_all
from presence.store.config import Config
from presence.store.keyspace import Keyspace, WrongType, wall_clock_ms
from presence.store.latency import LatencyMonitor
from presence.store.limits import Limits
from presence.store.notify import Notifier
from presence.store.pause import ClientPause
from presence.store.persistence import Persistence
from presence.store.pubsub import PubSubHub
from presence.store.resp import (
    BULK_HEADER_CACHE,
    BULK_HEADERS,
    OK,
    QUEUED,
    Error,
    Push,
    RequestParser,
    encode,
)
from presence.store.scan import ScanCursors
from presence.store.scripting.engine import Scripts
from presence.store.slowlog import SlowLog, monitor_line

log = logging.getLogger("presence.store")
VERSION = REDIS_VERSION  # kept for importers of presence.store.server.VERSION
EXPIRE_SLICE = 2000  # keys expired per timer callback
EXPIRE_SLICE_INLINE = (
    200  # keys expired between two batches of a pipeline (the timer does the rest)
)
NEVER = 1 << 62  # Server.timer_deadline when no timer is armed

# Commands a RESP2 client may send while subscribed.
_SUBSCRIBED_OK = frozenset(
    [
        "subscribe",
        "psubscribe",
        "ssubscribe",
        "unsubscribe",
        "punsubscribe",
        "sunsubscribe",
        "ping",
        "quit",
        "reset",
    ]
)
_UNMONITORED = frozenset(["admin", "skip-monitor"])  # MONITOR does not show these
# Commands that run at once inside MULTI instead of being queued.
# Commands whose first argument is a subcommand, named "config|get" in some errors.
_CONTAINERS = frozenset(
    [
        "config",
        "client",
        "pubsub",
        "command",
        "object",
        "memory",
        "slowlog",
        "latency",
        "acl",
        "script",
        "function",
        "cluster",
        "module",
    ]
)
_NOT_QUEUED = frozenset(["exec", "discard", "multi", "watch", "quit", "reset"])
_ids = itertools.count(1)
# Groups whose commands only read and write keys: they never change a client's session
# state (MULTI, AUTH, subscriptions, CLIENT REPLY, blocking), so the dispatch loop may run
# them without the gate. Blocking commands are left out.
_FAST_GROUPS = frozenset(["generic", "string", "hash", "set", "zset", "list", "bitmap"])
_FAST_EXTRA = frozenset(["ping", "echo", "select", "dbsize", "time"])
_NO_FAST_COMMANDS: dict = {}
# Scripts are shown to MONITOR clients before they run, so before the commands they call
_SHOWN_BEFORE_RUN = frozenset(["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"])
BATCH = 64  # commands of a pipeline run at one clock reading


class Client(asyncio.Protocol):
    """One client connection and its session state (db, protocol, MULTI, subscriptions)."""

    in_script = False  # Redis's CLIENT_SCRIPT: a script's commands run as a ScriptClient

    __slots__ = (
        "server",
        "id",
        "transport",
        "parser",
        "protocol",
        "db",
        "name",
        "lib_name",
        "lib_ver",
        "_authenticated",
        "user",
        "plain",
        "multi",
        "multi_error",
        "watching",
        "watch_dirty",
        "channels",
        "patterns",
        "shard_channels",
        "created",
        "last_interaction",
        "last_command",
        "addr",
        "laddr",
        "closing",
        "blocked",
        "reply_mode",
        "no_evict",
        "no_touch",
        "_out",
        "_soft_limit_since",
        "_held",
        "__weakref__",
    )

    def __init__(self, server: Server) -> None:
        self.server = server
        self.id = next(_ids)
        self.transport: asyncio.Transport | None = None
        default = server.acl_users[b"default"]
        authenticated = default.enabled and default.nopass  # requirepass: not nopass
        self.parser = RequestParser(
            server.config["proto-max-bulk-len"], authenticated=authenticated
        )
        self.protocol = 2
        self.db = server.keyspace.dbs[0]
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self._authenticated = authenticated
        self.user = server.acl_users[b"default"]  # the ACL user commands run as
        self.plain = authenticated and server.pause.mode is None  # see _plain()
        self.multi: list | None = None  # queued commands while in MULTI
        self.multi_error = False  # a queued command was refused: EXEC aborts
        self.watching: set = set()  # (db, key) pairs
        self.watch_dirty = False
        self.channels: set[bytes] = set()
        self.patterns: set[bytes] = set()
        self.shard_channels: set[bytes] = set()  # SSUBSCRIBE's, counted apart (Redis 7.0)
        self.created = time.time()
        self.last_interaction = server.keyspace.clock()  # ms, on the keyspace's clock
        self.last_command = "NULL"  # name of the last command run (CLIENT LIST cmd=)
        self.addr = self.laddr = ""
        self.closing = False
        self.blocked = None  # the waiter of a blocking command (BLPOP); no command runs meanwhile
        self.reply_mode: str | None = None  # CLIENT REPLY: None (on), "off", "skip", "skip-next"
        self.no_evict = self.no_touch = False  # CLIENT NO-EVICT / NO-TOUCH (reported, no effect)
        self._out: list[bytes] | None = None  # replies gathered during one read
        self._held: list[bytes] | None = None  # replies waiting for the end of the loop turn
        self._soft_limit_since = 0.0

    @property
    def authenticated(self) -> bool:
        """Whether AUTH is done (or not needed); until then the parser's limits are Redis's
        unauthenticated ones (10 arguments, 16 KiB each)."""
        return self._authenticated

    @authenticated.setter
    def authenticated(self, value: bool) -> None:
        self._authenticated = self.parser.authenticated = value

    # ------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport) -> None:
        self.transport = transport
        sockname = transport.get_extra_info("sockname")
        self.addr = _format_addr(transport.get_extra_info("peername"), sockname or "")
        self.laddr = _format_addr(sockname)
        self.server.add_client(self)

    def data_received(self, data: bytes) -> None:
        """Run every complete command received so far; hold their replies for one write
        at the end of the loop turn (`Server.write_held`).

        This loop is the hot path. A data command (`Server.fast_commands`: reads and
        writes of keys, none of which can change the session's state) sent by a client
        in the plain state (no MULTI, AUTH pending, subscription or CLIENT REPLY) is
        dispatched right here; everything else goes through `Server.execute`, after
        which the state is looked at again. The clock is read for every BATCH commands
        of a pipeline (a few microseconds of work) and for every command taking the full
        path; a due expiry timer is run between batches (`Server.expire_now`).
        """
        parser = self.parser
        server = self.server
        server.net_input_bytes += len(data)
        keyspace = server.keyspace
        clock = keyspace.clock
        keyspace.now = now = self.last_interaction = clock()
        if self.blocked is not None or self.closing:
            parser.feed(data)  # kept in the parser until the blocking command is answered
            return
        out = self._out = []
        fast = server.fast_commands if self.plain else _NO_FAST_COMMANDS
        run = server.run_command
        # before AUTH, one command is parsed at a time: its AUTH lifts the limits for the next
        limit = BATCH if parser.authenticated else 1
        try:
            commands = parser.take(data, limit)
            while True:  # batches of at most BATCH commands, each at one clock reading
                if now >= server.timer_deadline:
                    server.expire_now()  # expiry notifications do not wait for the rest of a pipeline
                batch = iter(commands)
                for argv in batch:
                    entry = fast.get(argv[0])
                    if entry is None:  # the full path, gate included
                        reply = server.execute(self, argv)
                        if reply is not NO_REPLY and (
                            self.reply_mode is None or not self._silenced()
                        ):
                            out.append(encode(reply, self.protocol))
                        if self.closing or self.blocked is not None:
                            parser.unread(list(batch))  # they run once the client is unblocked
                            return
                        self.plain = plain = self._plain()
                        fast = server.fast_commands if plain else _NO_FAST_COMMANDS
                        continue
                    self.last_command = entry[0]
                    if not entry[2] <= len(argv) <= entry[3]:
                        out.append(encode(server.refuse_arity(self, entry[0]), self.protocol))
                        continue
                    reply = run(self, entry, argv)
                    # the most common replies are encoded inline
                    if type(reply) is bytes:
                        if len(reply) < BULK_HEADER_CACHE:  # three parts joined once, at the end
                            out += (BULK_HEADERS[len(reply)], reply, b"\r\n")
                        else:
                            out.append(b"$%d\r\n%s\r\n" % (len(reply), reply))
                    elif reply is OK:
                        out.append(b"+OK\r\n")
                    elif reply is None:
                        out.append(b"$-1\r\n" if self.protocol == 2 else b"_\r\n")
                    elif reply is not NO_REPLY:
                        out.append(encode(reply, self.protocol))
                if len(commands) < limit:
                    break  # that was everything buffered
                limit = BATCH if parser.authenticated else 1
                commands = parser.read_commands(limit)
                keyspace.now = now = clock()
            if parser.error is not None:
                out.append(b"-ERR %s\r\n" % str(parser.error).encode("utf-8", "surrogateescape"))
                self.closing = True
        finally:
            self._out = None
            if out:  # joined and written at the end of the loop turn
                if self._held is None:
                    self._held = out
                    holding = server.holding
                    if not holding:
                        asyncio.get_running_loop().call_soon(server.write_held)
                    holding.append(self)
                else:
                    self._held += out
            if self.closing:
                self.close()
            elif not self.plain:
                self._check_output_limit()  # for a subscriber

    def _plain(self) -> bool:
        """Whether commands may skip the gate: no MULTI, AUTH done, no subscription, replies
        on, no CLIENT PAUSE.

        Only a command taking the full path (`Server.execute`) changes any of these for
        its own client, so `data_received` keeps the answer in `plain`, looked at again
        after each such command (and by `Server` when requirepass is cleared).
        """
        return (
            self.multi is None
            and self.authenticated
            and not self.channels
            and not self.patterns
            and not self.shard_channels
            and self.reply_mode is None
            and self.server.pause.mode is None
        )

    def _silenced(self) -> bool:
        """Whether CLIENT REPLY OFF/SKIP swallows the reply just produced."""
        if self.reply_mode == "skip":
            self.reply_mode = "skip-next"  # SKIP's own reply, then the next command's
        elif self.reply_mode == "skip-next":
            self.reply_mode = None
        return True

    def connection_lost(self, exc) -> None:
        self.closing = True
        self.server.remove_client(self)

    # ------------------------------------------------------------ output

    def send(self, data: bytes) -> None:
        """Queue bytes for this client: batched during its own read, written at once otherwise."""
        if self._out is not None:
            self._out.append(data)
        elif not self.closing:  # after what this client was already owed, in one write
            if self._held is None:
                self._held = [data]
            else:
                self._held.append(data)
            self.flush()

    def flush(self) -> None:
        """Write the replies held for the end of the loop turn (`Server.write_held`)."""
        held = self._held
        if held is None:
            return
        self._held = None
        if self.transport.is_closing():
            return  # aborted or lost meanwhile: nobody to write to
        payload = b"".join(held) if len(held) > 1 else held[0]
        self.server.net_output_bytes += len(payload)
        self.transport.write(payload)
        if not self.plain:
            self._check_output_limit()  # for a subscriber

    def unblock(self, reply) -> None:
        """Answer the blocking command, then run the commands that arrived meanwhile (soon)."""
        self.blocked = None
        if type(reply) is Error:  # UNBLOCKED, NOGROUP: counted as the command's failure
            self.server.count_error(reply)
            counters = self.server.command_stats.get(self.last_command)
            if counters is not None:
                counters.failed += 1
        self.server.persistence.record_unblocked(self, reply)
        self.send(encode(reply, self.protocol))
        asyncio.get_running_loop().call_soon(self.data_received, b"")

    def send_push(self, push: Push) -> None:
        """Deliver a pub/sub message (RESP3 push, RESP2 array)."""
        self.send(encode(push, self.protocol))

    def _check_output_limit(self) -> None:
        """Disconnect a subscriber whose unread output passes client-output-buffer-limit pubsub."""
        if not self.subscribed or self.closing:
            return
        pending = self.transport.get_write_buffer_size()
        hard, soft, seconds = self.server.config["client-output-buffer-limit"]["pubsub"]
        over_soft = soft and pending > soft
        if over_soft and not self._soft_limit_since:
            self._soft_limit_since = time.monotonic()
        elif not over_soft:
            self._soft_limit_since = 0.0
        if (hard and pending > hard) or (
            over_soft and time.monotonic() - self._soft_limit_since >= seconds
        ):
            log.warning(
                "client id=%d addr=%s closed for overcoming of output buffer limits",
                self.id,
                self.addr,
            )
            self.server.stats["client_output_buffer_limit_disconnections"] += 1
            self.abort()

    def close(self) -> None:
        """Close the connection after what is already queued (held replies too) is written."""
        self.closing = True
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        """Drop the connection now, discarding unwritten output, and forget its subscriptions."""
        self.closing = True
        self.server.remove_client(self)
        self.transport.abort()

    @property
    def subscriptions(self) -> int:
        """Channels and patterns, the count in (P)(UN)SUBSCRIBE replies (shard channels apart)."""
        return len(self.channels) + len(self.patterns)

    @property
    def subscribed(self) -> bool:
        """In the pub/sub context (Redis's CLIENT_PUBSUB): any channel, pattern or shard channel."""
        return bool(self.channels or self.patterns or self.shard_channels)


class CommandCounters:
    """One command's INFO commandstats counters: calls, time spent (ns), rejected (never
    ran), failed (error reply); and whether SLOWLOG and MONITOR leave it out."""

    __slots__ = (
        "calls", "ns", "rejected", "failed", "logged", "monitored", "event", "shown_first",
        "subcommands",
    )  # fmt: skip

    def __init__(self, flags=frozenset(), name: str = "") -> None:
        self.calls = self.ns = self.rejected = self.failed = 0
        self.logged = "skip-slowlog" not in flags  # EXEC: its commands are logged instead
        self.monitored = "admin" not in flags and "skip-monitor" not in flags
        self.subcommands = SUBCOMMANDS.get(name)  # a container: its subcommand's flags decide
        self.event = b"fast-command" if "fast" in flags else b"command"  # LATENCY's event
        self.shown_first = name in _SHOWN_BEFORE_RUN

    def __iter__(self):
        return iter((self.calls, self.ns, self.rejected, self.failed))


def _format_addr(addr, fallback: str = "") -> str:
    """host:port for TCP; `path:0` for a unix socket, as CLIENT LIST shows them."""
    if isinstance(addr, tuple):
        host = f"[{addr[0]}]" if ":" in addr[0] else addr[0]
        return f"{host}:{addr[1]}"
    return f"{addr or fallback}:0"


class Server:
    """The store: configuration, keyspace, pub/sub, clients, and dispatch."""

    def __init__(self, config: Config | None = None, clock=wall_clock_ms) -> None:
        # glob matching recurses once per '*' (up to pubsub.MAX_NESTING deep)
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 4000))
        self.config = config or Config()
        self.hub = PubSubHub()
        self.scans = ScanCursors()
        self.notifier = Notifier(self.hub.publish)
        self.keyspace = Keyspace(clock, self.notifier)
        self.keyspace.on_earlier_deadline = self._arm_timer
        self.keyspace.on_stream_gone = lambda db, key: serve_later(self, db, key)
        self.commands = load_all()
        # exact-case lookup first: clients send "GET" or "get", rarely "Get"
        self._lookup = {**self.commands, **{n.upper(): c for n, c in self.commands.items()}}
        self.clients: dict[int, Client] = {}
        self.acl_users: dict[bytes, User] = {b"default": default_user()}  # ACL SETUSER
        self.acl_log = AclLog()
        self.started = time.time()
        self.stats = {
            "total_connections_received": 0,
            "rejected_connections": 0,
            "expired_keys": 0,
            "client_output_buffer_limit_disconnections": 0,
            "total_error_replies": 0,
            "pubsub_messages": 0,
        }
        self.net_input_bytes = self.net_output_bytes = (
            0  # INFO total_net_*_bytes (counted per read and write)
        )
        # name -> CommandCounters; total_commands_processed is the sum of calls
        self.command_stats = {
            c.name: CommandCounters(c.flags, c.name) for c in self.commands.values()
        }
        self.entries = self._entries_table()
        self.limits = Limits(self)  # maxmemory, min-replicas-to-write (limits.py)
        self.fast_commands = self._fast_table()
        self.slowlog = SlowLog()
        self.slow_ns = 10_000_000  # slowlog-log-slower-than, in ns; NEVER when off
        self.spike_ns = NEVER  # latency-monitor-threshold, in ns; NEVER when off
        self.watch_ns = self.slow_ns  # the lower of the two: run_command looks further above it
        self.latency = LatencyMonitor()
        self.monitors: list[Client] = []  # clients that sent MONITOR, fed by run_command
        self.pause = ClientPause(self._pause_changed)
        self.blocking = Blocking()  # keys made ready for blocked clients (blocking.py)
        self.error_stats: dict[str, int] = {}  # error code -> count
        self.holding: list[Client] = []  # clients with replies held for this loop turn (write_held)
        self.active_expire = True  # DEBUG SET-ACTIVE-EXPIRE 0 leaves expiry to lookups
        self.shutdown_requested = asyncio.Event() if _has_loop() else None
        self.servers: list[asyncio.base_events.Server] = []
        self._timer: asyncio.TimerHandle | None = None
        self.timer_deadline = NEVER  # when the armed expiry timer is due (ms)
        self.persistence = Persistence(self, Client)
        self.scripts = Scripts(self)  # EVAL, FUNCTION; `scripts.busy` while one overruns
        self._fast_while_idle = self.fast_commands  # swapped out while a script overruns
        self.config.on_change = self._config_changed
        self._config_changed("notify-keyspace-events", self.config["notify-keyspace-events"])
        self._requirepass_to_default_user(self.config["requirepass"])
        if self.config["aclfile"]:  # after requirepass, as Redis: the file's default wins
            self.load_acl_file()
        self._config_changed("keys-expire-notify", self.config["keys-expire-notify"])
        self._config_changed("slowlog-log-slower-than", self.config["slowlog-log-slower-than"])
        self._config_changed("latency-monitor-threshold", self.config["latency-monitor-threshold"])
        self._config_changed("maxmemory", self.config["maxmemory"])

    def _entries_table(self) -> dict:
        """name -> (name, handler, fewest and most arguments, counters): what run_command and
        the arity check need, for every command."""
        return {
            c.name: (
                c.name,
                c.handler,
                abs(c.arity),
                c.arity if c.arity > 0 else 1 << 30,
                self.command_stats[c.name],
            )
            for c in self.commands.values()
        }

    def _fast_table(self) -> dict:
        """The dispatch loop's table: name as sent (either case) -> entry, for the data
        commands that may skip the gate (not those a write limit must look at)."""
        return self.limits.fast_commands(
            {
                sent: self.entries[c.name]
                for sent, c in self._lookup.items()
                if (c.group in _FAST_GROUPS or c.name in _FAST_EXTRA) and "blocking" not in c.flags
            }
        )

    def wrap_write_commands(self, wrap, also: frozenset = frozenset()) -> None:
        """From now on run each write command's handler, and those named in `also`, as
        `wrap(command)` (the AOF records)."""
        self.commands = {
            name: dataclasses.replace(c, handler=wrap(c))
            if "write" in c.flags or name in also
            else c
            for name, c in self.commands.items()
        }
        self._lookup = {**self.commands, **{n.upper(): c for n, c in self.commands.items()}}
        self.entries = self._entries_table()
        self.fast_commands = self._fast_while_idle = self._fast_table()

    # ------------------------------------------------------------ output

    def write_held(self) -> None:
        """Write the replies held for this loop turn, connection by connection.

        `Client.data_received` holds a read's replies and has this run once, late in
        the turn: reads of all ready connections come first, then the writes, back to
        back, as Redis's beforeSleep does. A pipelining peer with many connections is
        then woken once per turn, not once per connection (half the system time under
        redis-benchmark).
        """
        self.persistence.write_pending()  # acknowledged writes reach the file before the replies
        holding, self.holding = self.holding, []
        for client in holding:
            try:
                client.flush()
            except Exception:  # one broken connection must not cost the others their replies
                log.exception("writing to client id=%d failed", client.id)
                client.abort()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on the configured TCP address (and unix socket, if set)."""
        loop = asyncio.get_running_loop()
        if self.shutdown_requested is None:
            self.shutdown_requested = asyncio.Event()
        self.persistence.start()  # loads the AOF before anyone can connect
        port = self.config["port"]
        if port:
            hosts = self.config["bind"].split() or ["127.0.0.1"]
            server = await loop.create_server(
                lambda: Client(self), hosts, port, reuse_address=True, backlog=511
            )
            self.servers.append(server)
        path = self.config["unixsocket"]
        if path:
            if os.path.exists(path):
                os.unlink(path)
            self.servers.append(await loop.create_unix_server(lambda: Client(self), path))
        self._arm_timer(self.keyspace.next_deadline())

    def ports(self) -> list[int]:
        """The TCP ports actually bound (useful with port 0)."""
        return [
            s.getsockname()[1]
            for srv in self.servers
            for s in srv.sockets
            if isinstance(s.getsockname(), tuple)
        ]

    async def close(self) -> None:
        """Stop listening and disconnect every client."""
        if self._timer:
            self._timer.cancel()
        self.persistence.stop()
        for server in self.servers:
            server.close()
        for client in list(self.clients.values()):
            client.close()
        for server in self.servers:
            await server.wait_closed()
        if self.config["unixsocket"] and os.path.exists(self.config["unixsocket"]):
            os.unlink(self.config["unixsocket"])

    def commands_processed(self) -> int:
        """Commands executed so far (INFO's total_commands_processed)."""
        return sum(counters.calls for counters in self.command_stats.values())

    def reset_command_stats(self) -> None:
        for counters in self.command_stats.values():
            counters.calls = counters.ns = counters.rejected = counters.failed = 0  # entries too
        self.error_stats.clear()

    def add_client(self, client: Client) -> None:
        self.stats["total_connections_received"] += 1
        if len(self.clients) >= self.config["maxclients"]:
            self.stats["rejected_connections"] += 1
            client.transport.write(b"-ERR max number of clients reached\r\n")
            client.close()
            return
        self.clients[client.id] = client
        client.plain = client._plain()  # a pause may have begun since the client was made

    def remove_client(self, client: Client) -> None:
        self.clients.pop(client.id, None)
        if client in self.monitors:
            self.monitors.remove(client)
        if client.blocked is not None:
            client.blocked.cancel()
        self.hub.drop_client(client)
        unwatch_all(client)

    # ------------------------------------------------------------ dispatch

    def execute(self, client: Client, argv: list[bytes]):
        """Run one command for `client` through the gate; return its reply value (or NO_REPLY)."""
        name = argv[0]
        cmd = self._lookup.get(name)
        if cmd is None:
            name = name.lower()
            cmd = self.commands.get(name)
        if cmd is None:
            client.last_command = name.decode(errors="replace").lower()
            return self._refuse(client, replies.unknown_command(argv[0], argv[1:]))
        client.last_command = cmd.name
        entry = self.entries[cmd.name]
        if not entry[2] <= len(argv) <= entry[3]:  # the same check as the fast path's
            return self._refuse(client, replies.wrong_arity(cmd.name), cmd)
        if self.scripts.busy is not None:
            refused = self.scripts.busy_error(client, cmd, argv)
            if refused is not None:
                return self._refuse(client, refused, cmd)
        elif self.limits.on and client.authenticated:  # maxmemory, min-replicas-to-write
            refused = self.limits.admit(client, cmd, argv)
            if refused is not None:
                return self._refuse(client, refused, cmd)
        if (
            client.multi is not None
            or not client.authenticated
            or client.channels
            or client.patterns
            or client.shard_channels
            or self.pause.mode is not None
        ):
            refused = self._gate(client, cmd, argv)
            if refused is not None:
                return refused
        if self.limits.accounting:
            reply = self.call(client, cmd, argv)
            self.limits.settle()  # reads that skip `admit` see the keys evicted already
            return reply
        return self.call(client, cmd, argv)

    def _gate(self, client: Client, cmd, argv: list[bytes]):
        """The rare checks: AUTH, RESP2 subscribed context, CLIENT PAUSE, MULTI queueing; None
        to run now."""
        if not client.authenticated and "no-auth" not in cmd.flags:
            return self._refuse(client, replies.NOAUTH, cmd)
        if client.protocol == 2 and client.subscribed and cmd.name not in _SUBSCRIBED_OK:
            shown = cmd.name
            if cmd.name in _CONTAINERS and len(argv) > 1:  # Redis names the subcommand too
                shown += "|" + argv[1].decode(errors="replace").lower()
            return self._refuse(client, Error(replies.SUBSCRIBED_CONTEXT.format(shown)), cmd)
        if self.pause.mode is not None and self.pause.holds(cmd, client):
            self.pause.postpone(client, argv)  # runs again when the pause ends
            return NO_REPLY
        if client.multi is not None and cmd.name not in _NOT_QUEUED:
            if not client.user.unrestricted:  # refused when queued, as in Redis
                denied = self._acl_denied(client, cmd, argv, "toplevel")
                if denied is not None:
                    return self._refuse(client, Error(denied), cmd)
            if "no-multi" in cmd.flags:
                return self._refuse(client, replies.NOT_IN_MULTI, cmd)
            if cmd.name in SUBCOMMANDS:  # Redis looks the subcommand up before queueing
                bad_sub = subcommand_refusal(cmd.name, argv)
                if bad_sub is not None:
                    return self._refuse(client, bad_sub, cmd)
            client.multi.append((cmd, argv))
            return QUEUED
        return None

    def call(self, client: Client, cmd, argv: list[bytes]):
        """Run a looked-up command now, at a fresh clock reading (EXEC uses it for queued commands)."""
        self.keyspace.tick()
        if self.limits.accounting:
            return self.limits.run(client, cmd, argv, self.entries[cmd.name])
        return self.run_command(client, self.entries[cmd.name], argv)

    def run_command(self, client: Client, entry: tuple, argv: list[bytes]):
        """Run a command's handler and return its reply: the one place any command runs.

        Both dispatch paths come here (the loop's fast path and `call`), after their
        checks (arity, AUTH, MULTI). It maps exceptions to error replies (a bug costs
        one `ERR internal error`, never the connection), times the handler for INFO
        commandstats and SLOWLOG, counts failures, and feeds MONITOR clients.
        """
        if self.monitors and entry[4].shown_first:
            self._show(client, argv)  # a script: before the commands it runs, as in Redis
        if not client.user.unrestricted:
            denied = self._acl_denied(client, self.commands[entry[0].encode()], argv)
            if denied is not None:
                return self._refuse_denied(client, entry[0], denied)
        start = perf_counter_ns()
        try:
            reply = entry[1](client, argv)
        except (WrongType, CommandError) as exc:
            reply = exc.reply
        except Exception:
            reply = self.internal_error(entry[0])
        spent = perf_counter_ns() - start
        counters = entry[4]
        counters.calls += 1
        counters.ns += spent
        if type(reply) is Error:
            counters.failed += 1
            self.count_error(reply)
        if spent >= self.watch_ns or self.monitors:
            self._watched(client, counters, argv, spent)
        return reply

    def _acl_denied(self, client, cmd, argv: list[bytes], context: str = "") -> str | None:
        """Redis's NOPERM text if `client`'s user may not run `argv` (logged in ACL LOG)."""
        found = acl_denial(client.user, cmd, argv)
        if found is None:
            return None
        reason, obj = found
        if client.id == 0:  # the script client (ScriptClient): log its caller
            running = self.scripts.running
            context, shown = "lua", running.caller if running is not None else None
        else:
            context = context or ("multi" if client.last_command == "exec" else "toplevel")
            shown = client
        self.acl_log_record(reason, context, obj, client.user.name, shown)
        return NOPERM[reason].format(obj)

    def acl_log_record(self, reason: str, context: str, obj: str, username: bytes, client):
        """Add an ACL LOG entry; `client` (may be None) gives its client-info."""
        info = describe(client) if client is not None and client.transport else ""
        self.acl_log.record(reason, context, obj, username, info)

    def load_acl_file(self, current: Client | None = None) -> None:
        """Replace the users by the aclfile's, all or nothing (AclFileError: no change).
        As Redis 7.0, connections of every user but `default` are closed (`current`, the
        one running ACL LOAD, after its reply); `default` keeps its identity."""
        users = parse_acl_file(self.config["aclfile"])
        old = self.acl_users
        default = old[b"default"]
        default.__dict__.update(users[b"default"].__dict__)
        users[b"default"] = default
        self.acl_users = users
        for other in list(self.clients.values()):
            if other.user is default:
                continue
            if other is current:
                other.closing = True
            else:
                other.close()

    def save_acl_file(self) -> None:
        """Write the users to the aclfile (a temporary file renamed over it), as ACL LIST."""
        path = self.config["aclfile"]
        lines = [
            b" ".join([b"user", name, *user.describe()]) + b"\n"
            for name, user in sorted(self.acl_users.items())
        ]
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            with open(tmp, "wb") as fh:
                fh.write(b"".join(lines))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _requirepass_to_default_user(self, password: str) -> None:
        """requirepass is the default user's one password (none: nopass), as in Redis."""
        user = self.acl_users[b"default"]
        user.apply(b"resetpass")
        user.apply(b">" + password.encode() if password else b"nopass")

    def _refuse_denied(self, client: Client, name: str, denied: str) -> Error:
        """An ACL refusal; EXEC's aborts the transaction (even outside MULTI, as Redis says)."""
        cmd = self.commands[name.encode()]
        if name == "exec" and client.multi is None:
            self._refuse(client, Error(denied), cmd)
            return Error(f"EXECABORT Transaction discarded because of: {denied}")
        return self._refuse(client, Error(denied), cmd)

    def _watched(self, client: Client, counters: CommandCounters, argv: list[bytes], spent: int):
        """Log a slow command, record a latency spike; show a command to MONITOR clients (not
        admin commands)."""
        if client.addr:  # a connection's command; a script's or the AOF's are not logged
            if spent >= self.slow_ns and counters.logged:
                self.slowlog.record(client, argv, spent // 1000, self.config["slowlog-max-len"])
            if spent >= self.spike_ns:
                self.latency.add(counters.event, spent // 1_000_000)
        if self.monitors and counters.monitored and not counters.shown_first:
            sub = counters.subcommands.get(argv[1].lower()) if counters.subcommands else None
            if sub is None or not sub.flags & _UNMONITORED:  # Redis: the subcommand's flags
                self._show(client, argv)

    def _show(self, client: Client, argv: list[bytes]) -> None:
        """Send MONITOR clients the line for `argv`."""
        line = monitor_line(client, client.db.index, argv)
        for monitor in self.monitors:
            if monitor is client:  # after the reply to the command itself, as in Redis
                asyncio.get_running_loop().call_soon(monitor.send, line)
            elif not monitor.closing:
                monitor.send(line)

    def internal_error(self, name: str) -> Error:
        """Log the exception being handled; a bug costs one error reply, never the connection."""
        log.exception("command %s failed", name)
        return Error("ERR internal error while executing the command")

    def refuse_arity(self, client: Client, name: str) -> Error:
        return self._refuse(client, replies.wrong_arity(name), self.commands[name.encode()])

    def count_error(self, error: Error) -> None:
        self.stats["total_error_replies"] += 1
        code = error.split(" ", 1)[0]
        self.error_stats[code] = self.error_stats.get(code, 0) + 1

    def _refuse(self, client: Client, error: Error, cmd=None) -> Error:
        """Reply with an error for a command that did not run (and spoil a MULTI).

        A refused EXEC discards the transaction, answering EXECABORT with the reason.
        """
        self.count_error(error)
        if cmd is not None:
            self.command_stats[cmd.name].rejected += 1
        if client.multi is None:
            return error
        client.multi_error = True
        if cmd is not None and cmd.name == "exec":
            end_transaction(client)
            reason = error[4:] if error.startswith("ERR ") else error
            return Error(f"EXECABORT Transaction discarded because of: {reason}")
        return error

    # ------------------------------------------------------------ expiry timer

    def _arm_timer(self, deadline_ms: int | None) -> None:
        """Make sure a timer fires at `deadline_ms` (or earlier)."""
        if deadline_ms is None:
            return
        if self._timer is not None:
            if self.timer_deadline <= deadline_ms:
                return
            self._timer.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not serving yet: start() arms the timer
        delay = self._seconds_until(deadline_ms)
        self.timer_deadline = deadline_ms
        self._timer = loop.call_later(max(0.0, delay), self._on_timer)

    def _seconds_until(self, deadline_ms: int) -> float:
        """How long until `deadline_ms`, to a fraction of a millisecond on the wall clock.

        The clock's readings are whole milliseconds, cut down: a delay computed from one
        would be up to 1 ms long, and every expiry that much late (0.7 ms at the median,
        measured on uvloop). A timer that fires a little early finds nothing due and is
        armed again for the rest.
        """
        clock = self.keyspace.clock
        if clock is wall_clock_ms:
            return deadline_ms / 1000.0 - time.time()
        return (deadline_ms - clock()) / 1000.0

    def expire_now(self) -> None:
        """Do the due expiry timer's work at once, a short slice of it.

        The dispatch loop calls this between two batches of commands when
        `timer_deadline` has passed: a long pipeline (a 2,000-command refresh takes the
        store tens of milliseconds) then delays an expiry notification by one batch, not
        by the whole read. Expiring a key that is past its deadline between two commands
        changes nothing they can see: lookups would have expired it anyway.
        """
        if self._timer is not None:
            self._timer.cancel()
        self._on_timer(EXPIRE_SLICE_INLINE)

    def _on_timer(self, limit: int = EXPIRE_SLICE) -> None:
        self._timer = None
        self.timer_deadline = NEVER
        keyspace = self.keyspace
        keyspace.tick()
        if self.pause.mode is not None:
            return  # expiry waits for the end of the pause (_pause_changed arms the timer)
        if self.scripts.busy is not None:
            return  # nothing expires under a running script; leave_busy() re-arms the timer
        if not self.active_expire:
            self._arm_timer(keyspace.now + 100)  # look again later; lookups still expire keys
            return
        # a bounded slice, so a mass expiry never stalls other clients; the rest is due
        # at once and runs on the next loop iteration, after pending I/O
        keyspace.expire_due(limit=limit)
        self._arm_timer(keyspace.next_deadline())

    def pause_clients(self, mode: str, until: float) -> None:
        """CLIENT PAUSE: hold commands (all, or writes) until `until` (wall clock, s)."""
        self.pause.start(mode, until)
        self._pause_changed()

    def _pause_changed(self) -> None:
        """A pause began or ended: every client takes the gate (or not); expiry re-armed."""
        for client in self.clients.values():
            client.plain = client._plain()
        if self.pause.mode is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.timer_deadline = NEVER
            self._arm_timer(self.keyspace.next_deadline())

    # ------------------------------------------------------------ a busy script

    def enter_busy(self) -> None:
        """A script overran busy-reply-threshold: every command takes the gate (-BUSY)."""
        self.fast_commands = {}
        self.blocking.hold(True)

    def refresh_fast_commands(self) -> None:
        """Build the fast table again (a write limit changed what may skip the gate)."""
        self._fast_while_idle = self._fast_table()
        if self.scripts.busy is None:
            self.fast_commands = self._fast_while_idle

    def leave_busy(self) -> None:
        self.fast_commands = self._fast_while_idle
        self.blocking.hold(False)
        self._arm_timer(self.keyspace.next_deadline())

    def _config_changed(self, name: str, value) -> None:
        self.persistence.config_changed(name, value)
        if name == "notify-keyspace-events":
            self.notifier.flags = value
        elif name == "keys-expire-notify":
            self.notifier.keys_expire_notify = value.encode() if isinstance(value, str) else value
        elif name == "slowlog-log-slower-than":
            self.slow_ns = NEVER if value < 0 else value * 1000
            self.watch_ns = min(self.slow_ns, self.spike_ns)
        elif name == "latency-monitor-threshold":
            self.spike_ns = value * 1_000_000 if value else NEVER
            self.watch_ns = min(self.slow_ns, self.spike_ns)
        elif name == "proto-max-bulk-len":
            for client in self.clients.values():  # Redis reads the global: it applies at once
                client.parser.max_bulk_len = value
        elif name == "requirepass":
            self._requirepass_to_default_user(value)
        elif name.startswith(("maxmemory", "min-replicas-")):
            self.limits.configure(self.config)
            self.refresh_fast_commands()
        if name == "requirepass" and not value:
            for client in self.clients.values():
                client.authenticated = True
                client.plain = client._plain()


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False
