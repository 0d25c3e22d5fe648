"""Running scripts: the script cache, function libraries, and one script at a time, atomically.

A script's Lua runs on a worker thread while the event loop's thread does everything the
store does: each `redis.call` is handed to the loop thread, which runs the command and hands
back its reply as RESP bytes. Until `busy-reply-threshold` (`lua-time-limit`) has passed,
the loop thread does nothing but serve the script, so nothing else runs meanwhile (the
script is atomic, as in Redis). After that, the caller is parked like a blocked client and
the loop goes back to its other clients, answering them `-BUSY` (except SCRIPT KILL,
FUNCTION KILL, FUNCTION STATS, SHUTDOWN and a few connection commands, Redis's allow-busy
set) until the script ends or is killed. Inside EXEC, or without a running loop, the script
is served to its end without that switch.

Time is frozen for the script's commands (keys expire as of its start) and clients blocked
on keys it fills are served after it, as in Redis 7.0.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
import time

from presence.store import replies
from presence.store.acl import denial as acl_denial
from presence.store.acl import in_script as acl_in_script
from presence.store.commands import NO_REPLY, CommandError
from presence.store.resp import Error, Raw, encode, split_inline
from presence.store.scripting.sandbox import LuaError, LuaState, sha1hex

log = logging.getLogger("presence.store")

# Redis 7.0's CMD_NOSCRIPT commands and subcommands (commands.c): refused inside scripts
NOSCRIPT = frozenset(
    [
        "auth",
        "hello",
        "quit",
        "reset",
        "wait",
        "blmove",
        "blpop",
        "brpop",
        "brpoplpush",
        "bzpopmax",
        "bzpopmin",
        "psubscribe",
        "punsubscribe",
        "ssubscribe",
        "subscribe",
        "sunsubscribe",
        "unsubscribe",
        "eval",
        "evalsha",
        "evalsha_ro",
        "eval_ro",
        "fcall",
        "fcall_ro",
        "bgrewriteaof",
        "bgsave",
        "debug",
        "failover",
        "monitor",
        "psync",
        "replconf",
        "replicaof",
        "role",
        "save",
        "shutdown",
        "slaveof",
        "sync",
        "discard",
        "exec",
        "multi",
        "unwatch",
        "watch",
        "cluster|reset",
        "client|caching",
        "client|getname",
        "client|getredir",
        "client|id",
        "client|info",
        "client|kill",
        "client|list",
        "client|no-evict",
        "client|pause",
        "client|reply",
        "client|setname",
        "client|tracking",
        "client|trackinginfo",
        "client|unblock",
        "client|unpause",
        "function|delete",
        "function|dump",
        "function|flush",
        "function|kill",
        "function|list",
        "function|load",
        "function|restore",
        "function|stats",
        "script|debug",
        "script|exists",
        "script|flush",
        "script|kill",
        "script|load",
        "acl|cat",
        "acl|deluser",
        "acl|dryrun",
        "acl|genpass",
        "acl|getuser",
        "acl|list",
        "acl|load",
        "acl|log",
        "acl|save",
        "acl|setuser",
        "acl|users",
        "acl|whoami",
        "config|get",
        "config|resetstat",
        "config|rewrite",
        "config|set",
        "latency|doctor",
        "latency|graph",
        "latency|histogram",
        "latency|history",
        "latency|latest",
        "latency|reset",
        "module|list",
        "module|load",
        "module|loadex",
        "module|unload",
    ]
)
# Redis 7.0's CMD_ALLOW_BUSY: what other clients may run while a script is busy
ALLOW_BUSY = frozenset(
    [
        "function|kill",
        "function|stats",
        "script|kill",
        "auth",
        "hello",
        "quit",
        "reset",
        "replconf",
        "shutdown",
        "discard",
        "multi",
        "unwatch",
        "watch",
    ]
)
# Not flagged write, but refused in read-only scripts (CMD_MAY_REPLICATE)
MAY_REPLICATE = frozenset(["publish", "spublish", "pfcount", "flushall", "flushdb"])
SCRIPT_FLAGS = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")
LOAD_TIMEOUT_MS = 500  # FUNCTION LOAD gives up on library code running longer (as Redis)
_LOG_LEVELS = (logging.DEBUG, logging.INFO, logging.INFO, logging.WARNING)

NOSCRIPT_ERROR = Error("NOSCRIPT No matching script. Please use EVAL.")
BUSY_EVAL = Error(
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
)
BUSY_FUNCTION = Error(
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
)
NOTBUSY = Error("NOTBUSY No scripts in execution right now.")
UNKILLABLE = Error(
    "UNKILLABLE Sorry the script already executed write commands against the dataset. You can "
    "either wait the script termination or kill the server in a hard way using the SHUTDOWN "
    "NOSAVE command."
)


def command_path(argv: list[bytes], container: bool) -> str:
    """`name` or `name|subcommand`, the key of NOSCRIPT and ALLOW_BUSY."""
    name = argv[0].decode(errors="replace").lower()
    if container and len(argv) > 1:
        return f"{name}|{argv[1].decode(errors='replace').lower()}"
    return name


class Script:
    """An EVAL script in the cache: its body and shebang flags (None: no shebang)."""

    __slots__ = ("body", "flags")

    def __init__(self, body: bytes, flags: frozenset | None) -> None:
        self.body, self.flags = body, flags


class Function:
    """One function of a library, as FUNCTION LIST shows it."""

    __slots__ = ("name", "description", "flags", "library")

    def __init__(self, name: bytes, description: bytes | None, flags: frozenset, library) -> None:
        self.name, self.description, self.flags, self.library = name, description, flags, library


class Library:
    """A loaded library: its name, full code (shebang included), functions, and Lua key."""

    __slots__ = ("name", "code", "functions", "key")

    def __init__(self, name: bytes, code: bytes, key: int) -> None:
        self.name, self.code, self.key = name, code, key
        self.functions: dict[bytes, Function] = {}


class ScriptClient:
    """The client a script's commands run as (Redis's lua_client): the caller's db, RESP2 first.

    It presents itself as running inside EXEC (`last_command`): blocking commands then answer
    at once, and clients blocked on keys the script fills are served after it, as in Redis.
    """

    in_script = True  # Redis's CLIENT_SCRIPT (SORT of a set orders its output, for one)

    __slots__ = (
        "server",
        "db",
        "protocol",
        "id",
        "name",
        "multi",
        "multi_error",
        "authenticated",
        "user",
        "plain",
        "channels",
        "patterns",
        "shard_channels",
        "watching",
        "watch_dirty",
        "blocked",
        "closing",
        "reply_mode",
        "last_command",
        "addr",
        "laddr",
        "lib_name",
        "lib_ver",
        "no_evict",
        "no_touch",
        "_sent",
        "__weakref__",
    )

    def __init__(self, server, db) -> None:
        self.server, self.db, self.protocol = server, db, 2
        self.id, self.name, self.addr, self.laddr = 0, b"", "", ""
        self.lib_name = self.lib_ver = b""
        self.multi, self.multi_error, self.authenticated, self.plain = None, False, True, True
        self.channels: set = set()
        self.patterns: set = set()
        self.shard_channels: set = set()
        self.watching: set = set()
        self.watch_dirty = self.closing = self.no_evict = self.no_touch = False
        self.blocked = self.reply_mode = None
        self.last_command = "exec"
        self.user = server.acl_users[b"default"]  # start() puts the caller's ACL user here
        self._sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self._sent.append(data)

    def send_push(self, push) -> None:
        self._sent.append(encode(push, self.protocol))

    def take_sent(self) -> bytes:
        sent, self._sent = b"".join(self._sent), []
        return sent

    @property
    def subscribed(self) -> bool:
        return False

    @property
    def subscriptions(self) -> int:
        return 0


class Run:
    """One script being run: who asked, what it may do, and the queues to its worker thread.

    As `client.blocked` of a caller parked while the script is busy, `cancel()` is what a
    disconnect calls: the script goes on, its reply is dropped.
    """

    def __init__(self, caller, argv, name: bytes, is_eval: bool, read_only: bool, now_ms: int):
        self.caller, self.argv, self.name, self.is_eval = caller, argv, name, is_eval
        self.read_only = read_only
        self.allow_oom = False  # the script's allow-oom flag (maxmemory)
        self.call_errors: list[Error] = []  # error replies redis.call/pcall got (counted then)
        self.dirty = False  # a write ran: SCRIPT KILL refuses (UNKILLABLE)
        self.killed = False
        self.caller_gone = False
        self.started = time.monotonic()
        self.snapshot_ms = now_ms  # the keyspace's clock, frozen for the script's commands
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()  # worker -> loop thread
        self.answers: queue.SimpleQueue = queue.SimpleQueue()  # loop thread -> worker
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None  # set once the caller is parked

    def cancel(self) -> None:
        self.caller_gone = True

    def post(self, message) -> None:
        """From the worker: hand `message` to the loop thread (waking it once it is parked)."""
        with self.lock:
            self.inbox.put(message)
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self.caller.server.scripts.pump, self)


class Scripts:
    """A server's scripting state: cached scripts, libraries, the running script, its worker."""

    def __init__(self, server) -> None:
        self.server = server
        self.scripts: dict[bytes, Script] = {}  # sha1 hex (lower case) -> script
        self.libraries: dict[bytes, Library] = {}
        self.functions: dict[bytes, Function] = {}
        self.running: Run | None = None
        self.busy: Run | None = None  # the running script, once past busy-reply-threshold
        self._eval_lua: LuaState | None = None
        self._function_lua: LuaState | None = None
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._keys = itertools.count(1)
        self._loading: list | None = None  # functions registered by the library being loaded

    # ------------------------------------------------------------ interpreters

    @property
    def eval_lua(self) -> LuaState:
        if self._eval_lua is None:
            self._eval_lua = LuaState(self)
        return self._eval_lua

    @property
    def function_lua(self) -> LuaState:
        if self._function_lua is None:
            self._function_lua = LuaState(self)
        return self._function_lua

    def flush_scripts(self) -> None:
        """SCRIPT FLUSH: forget every script and start a fresh interpreter."""
        self.scripts.clear()
        self._eval_lua = None

    def flush_functions(self) -> None:
        self.libraries.clear()
        self.functions.clear()
        self._function_lua = None

    # ------------------------------------------------------------ EVAL scripts

    def load_script(self, body: bytes) -> bytes:
        """Compile and cache `body` (SCRIPT LOAD, EVAL); its sha1. Raises CommandError."""
        sha = sha1hex(body)
        if sha in self.scripts:
            return sha
        flags, shebang_len = parse_shebang(body)
        # the shebang line is cut but its line feed kept, so line numbers stay right
        problem = self.eval_lua.compile(b"f_" + sha, body[shebang_len:])
        if problem is not None:
            raise CommandError(
                "ERR Error compiling script (new function): " + problem.decode(errors="replace")
            )
        self.scripts[sha] = Script(body, flags)
        return sha

    # ------------------------------------------------------------ function libraries

    def load_library(self, code: bytes, replace: bool) -> bytes:
        """FUNCTION LOAD: run the library's code and link its functions; its name.

        Raises CommandError with Redis's reason; on error nothing changes.
        """
        library = self._build(code, replace)
        old = self.libraries.get(library.name)
        if old is not None:
            self._unlink(old)
            self.function_lua.drop_library(old.key)
        self._link(library)
        return library.name

    def _build(self, code: bytes, replace: bool) -> Library:
        """Run a library's code into a Library not yet linked; CommandError if it cannot be."""
        name, body = parse_library_header(code)
        old = self.libraries.get(name)
        if old is not None and not replace:
            raise CommandError(f"ERR Library '{name.decode(errors='replace')}' already exists")
        library = Library(name, code, next(self._keys))
        self._loading = []
        try:
            problem = self.function_lua.load_library(
                library.key, body, LOAD_TIMEOUT_MS, lambda: time.monotonic() * 1000
            )
            registered = self._loading
        finally:
            self._loading = None
        if problem is not None:
            self.function_lua.drop_library(library.key)
            raise CommandError("ERR " + problem.decode(errors="replace"))
        for fname, description, flags in registered:
            library.functions[fname] = Function(fname, description, flags, library)
        error = None
        if not library.functions:
            error = "ERR No functions registered"
        for fname in library.functions:
            other = self.functions.get(fname)
            if error is None and other is not None and other.library is not old:
                error = f"ERR Function {fname.decode(errors='replace')} already exists"
        if error is not None:
            self.function_lua.drop_library(library.key)
            raise CommandError(error)
        return library

    def _link(self, library: Library) -> None:
        self.libraries[library.name] = library
        self.functions.update(library.functions)

    def _unlink(self, library: Library) -> None:
        del self.libraries[library.name]
        for fname in library.functions:
            self.functions.pop(fname, None)

    def delete_library(self, name: bytes) -> None:
        library = self.libraries.get(name)
        if library is None:
            raise CommandError("ERR Library not found")
        self._unlink(library)
        self.function_lua.drop_library(library.key)

    def restore_libraries(self, codes: list[bytes], policy: str) -> None:
        """FUNCTION RESTORE: link every library of a dump (flush, append, replace); all or none."""
        saved = (dict(self.libraries), dict(self.functions))
        if policy == "flush":
            self.libraries.clear()
            self.functions.clear()
        added: list[Library] = []
        try:
            for code in codes:
                name, _body = parse_library_header(code)
                if name in self.libraries and policy == "append":
                    raise CommandError(
                        f"ERR Library {name.decode(errors='replace')} already exists"
                    )
                library = self._build(code, replace=True)
                old = self.libraries.get(name)
                if old is not None:
                    self._unlink(old)
                self._link(library)
                added.append(library)
        except CommandError:
            for library in added:
                self.function_lua.drop_library(library.key)
            self.libraries, self.functions = saved
            raise
        for library in saved[0].values():
            if self.libraries.get(library.name) is not library:
                self.function_lua.drop_library(library.key)

    # ------------------------------------------------------------ callbacks from Lua

    def lua_call(self, resp: int, args):
        """redis.call/pcall (worker thread): the command's reply value (an Error on failure)."""
        if not args:
            return Error("ERR Please specify at least one argument for this redis lib call")
        argv = []
        for arg in args:
            kind = type(arg)
            if kind is bytes:
                argv.append(arg)
            elif kind is int or kind is float:
                argv.append(b"%.17g" % arg)
            else:
                return Error("ERR Lua redis lib command arguments must be strings or integers")
        run = self.running
        if run is None:  # a function called at FUNCTION LOAD time has no run
            return Error("ERR redis.call/pcall can only be called inside a script invocation")
        run.post(("call", argv, resp))
        reply = run.answers.get()
        if type(reply) is Error:
            run.call_errors.append(reply)
        return reply

    def lua_log(self, level: int, message: bytes) -> None:
        log.log(_LOG_LEVELS[level], "%s", message.decode(errors="replace"))

    def lua_interrupted(self) -> bool:
        run = self.running
        return run is not None and run.killed

    def lua_known(self, name) -> bool:
        return type(name) is bytes and name.lower() in self.server.commands

    def lua_acl_allows(self, args) -> bool:
        """redis.acl_check_cmd: whether the script's user may run `args` (a known command)."""
        argv = [a if type(a) is bytes else str(a).encode() for a in args]
        run = self.running
        user = run.script_client.user if run is not None else self.server.acl_users[b"default"]
        return acl_denial(user, self.server.commands[argv[0].lower()], argv) is None

    def lua_register(self, name: bytes, description, *flags) -> bytes | None:
        """redis.register_function during FUNCTION LOAD: check it; None or the error text."""
        if self._loading is None:
            return b"redis.register_function can only be called on FUNCTION LOAD command"
        if not _valid_name(name):
            return (
                b"Library names can only contain letters, numbers, or underscores(_) and must "
                b"be at least one character long"
            )
        lowered = [flag.decode(errors="replace").lower() for flag in flags]
        if any(flag not in SCRIPT_FLAGS for flag in lowered):
            return b"unknown flag given"
        self._loading.append((name, description, frozenset(lowered)))
        return None

    # ------------------------------------------------------------ running

    def start(
        self,
        client,
        argv,
        name: bytes,
        function: Function | None,
        read_only: bool,
        allow_oom: bool = False,
    ):
        """Run a script for `client` and return its reply (NO_REPLY once parked as busy)."""
        server = self.server
        run = Run(
            client,
            list(argv),
            name,
            function is None,
            read_only,
            server.keyspace.now,
        )
        run.allow_oom = allow_oom
        run.script_client = ScriptClient(server, client.db)  # type: ignore[attr-defined]
        run.script_client.user = client.user  # type: ignore[attr-defined]
        numkeys = int(argv[2])
        keys_and_args = argv[3:]
        lua = self.eval_lua if function is None else self.function_lua
        library = None if function is None else function.library.key
        kill = b"SCRIPT KILL"  # Redis 7.0 says so for FUNCTION KILL too
        protocol = client.protocol

        def job() -> None:
            try:
                reply = lua.run(name, library, protocol, kill, numkeys, keys_and_args)
            except LuaError as exc:
                reply = b"-ERR Error running script %s, %s\r\n" % (
                    name,
                    str(exc).encode(errors="replace")[:100],
                )
            except Exception:
                log.exception("script %s failed", name.decode(errors="replace"))
                reply = b"-ERR internal error while running the script\r\n"
            run.post(("done", reply))

        self.running = run
        self._submit(job)
        return self._serve(run, may_park=client.last_command == argv[0].decode().lower())

    def _submit(self, job) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(
                target=self._work, name="presence-store-scripts", daemon=True
            )
            self._worker.start()
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            self._jobs.get()()

    def _serve(self, run: Run, may_park: bool):
        """Serve the worker's requests on this thread until the script ends or turns busy."""
        threshold = self.server.config["busy-reply-threshold"]
        deadline = run.started + threshold / 1000 if threshold > 0 and may_park else None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            deadline = None
        while True:
            if deadline is None:
                message = run.inbox.get()
            else:
                try:
                    message = run.inbox.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    self._park(run, loop)
                    return NO_REPLY
            if message[0] == "done":
                return self._finish(run, message[1])
            self._answer(run, message)

    def _park(self, run: Run, loop) -> None:
        """The script passed busy-reply-threshold: park its caller, answer others -BUSY."""
        with run.lock:
            run.loop = loop
        self.busy = run
        run.caller.blocked = run
        self.server.enter_busy()
        loop.call_soon(self.pump, run)  # requests posted before the switch

    def pump(self, run: Run) -> None:
        """Serve what the worker posted while parked (loop thread)."""
        while True:
            try:
                message = run.inbox.get_nowait()
            except queue.Empty:
                return
            if message[0] == "done":
                reply = self._finish(run, message[1])
                self.busy = None
                self.server.leave_busy()
                caller = run.caller
                if caller.blocked is run:
                    caller.blocked = None
                    if not run.caller_gone and not caller.closing:
                        caller.unblock(reply)
                return
            self._answer(run, message)

    def _answer(self, run: Run, message) -> None:
        _kind, argv, resp = message
        try:
            reply = self.run_command(run, argv, resp)
        except Exception:
            log.exception("a script's command failed")
            reply = Error("ERR internal error while executing the command")
        run.answers.put(reply)

    def _finish(self, run: Run, raw: bytes):
        self.running = None
        if raw[:1] == b"-":
            error = Error(raw[1:-2].decode("utf-8", "surrogateescape"))
            self._uncount_relayed(run, error)
            return error
        return Raw(raw)

    def _uncount_relayed(self, run: Run, error: Error) -> None:
        """A script's error that relays a redis.call/pcall error reply is counted once in
        INFO errorstats (Redis's ignore_error_stats_update): the command's count is taken
        back here, the script's reply counts it again (and the script's failed_calls)."""
        for inner in run.call_errors:
            if error.startswith(inner):
                stats = self.server.error_stats
                code = inner.split(" ", 1)[0]
                if stats.get(code):
                    stats[code] -= 1
                    self.server.stats["total_error_replies"] -= 1
                return

    def run_command(self, run: Run, argv: list[bytes], resp: int):
        """One redis.call, on the loop thread: checks as Redis's scriptCall, then the command."""
        server = self.server
        cmd = server.commands.get(argv[0].lower())
        if cmd is None:
            return self._reject(None, "ERR Unknown Redis command called from script")
        if (cmd.arity > 0 and len(argv) != cmd.arity) or len(argv) < -cmd.arity:
            return self._reject(cmd, "ERR Wrong number of args calling Redis command from script")
        path = command_path(argv, cmd.name in CONTAINERS)
        if path in NOSCRIPT or cmd.name in NOSCRIPT:
            return self._reject(cmd, "ERR This Redis command is not allowed from script")
        writes = "write" in cmd.flags
        if run.read_only and (writes or cmd.name in MAY_REPLICATE):
            return self._reject(cmd, "ERR Write commands are not allowed from read-only scripts.")
        limits = server.limits
        if limits.on:  # maxmemory, min-replicas-to-write: before the script's first write
            refused = limits.script_call_refusal(cmd, run.dirty, run.allow_oom)
            if refused is not None:
                return self._reject(cmd, refused)
        if writes:
            run.dirty = True
        client = run.script_client  # type: ignore[attr-defined]
        client.protocol = resp
        server.keyspace.now = run.snapshot_ms
        if limits.accounting:
            reply = limits.run(client, cmd, argv, server.entries[cmd.name])
        else:
            reply = server.run_command(client, server.entries[cmd.name], argv)  # the one place
        if type(reply) is Error and reply.startswith("NOPERM "):
            return Error(acl_in_script(reply))
        if reply is NO_REPLY:  # no command allowed in scripts writes its own replies today
            client.take_sent()
            return None
        return reply

    def _reject(self, cmd, text: str) -> Error:
        error = Error(text)
        self.server.count_error(error)
        if cmd is not None:
            self.server.command_stats[cmd.name].rejected += 1
        return error

    # ------------------------------------------------------------ SCRIPT KILL, BUSY

    def kill(self, is_eval: bool) -> Error | None:
        """SCRIPT KILL / FUNCTION KILL: None once the running script is told to stop."""
        run = self.running
        if run is None:
            return NOTBUSY
        if run.dirty:
            return UNKILLABLE
        if is_eval and not run.is_eval:
            return BUSY_FUNCTION
        if not is_eval and run.is_eval:
            return BUSY_EVAL
        run.killed = True
        return None

    def busy_error(self, client, cmd, argv) -> Error | None:
        """The -BUSY answer for `cmd` from another client while a script is busy, or None."""
        run = self.busy
        if run is None or client is run.caller:
            return None
        if cmd.name in ALLOW_BUSY or command_path(argv, cmd.name in CONTAINERS) in ALLOW_BUSY:
            return None
        if not client.authenticated and "no-auth" not in cmd.flags:
            return replies.NOAUTH
        return BUSY_EVAL if run.is_eval else BUSY_FUNCTION


CONTAINERS = frozenset(
    ["client", "config", "function", "script", "acl", "latency", "module", "cluster"]
)


def _valid_name(name: bytes) -> bool:
    return bool(name) and all(
        c == 95 or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 for c in name
    )


def parse_shebang(body: bytes) -> tuple[frozenset | None, int]:
    """An EVAL body's `#!lua flags=...` line: (flags or None without shebang, its length)."""
    if not body.startswith(b"#!"):
        return None, 0
    end = body.find(b"\n")
    if end < 0:
        raise CommandError("ERR Invalid script shebang")
    parts = _split_args(body[:end])
    if not parts:
        raise CommandError("ERR Invalid engine in script shebang")
    if parts[0] != b"#!lua":
        raise CommandError(
            "ERR Unexpected engine in script shebang: " + parts[0].decode(errors="replace")
        )
    flags: set[str] = set()
    for part in parts[1:]:
        if not part.startswith(b"flags="):
            raise CommandError("ERR Unknown lua shebang option: " + part.decode(errors="replace"))
        for flag in part[6:].split(b",") if part[6:] else ():  # "flags=": none (sdssplitlen)
            text = flag.decode(errors="replace")
            if text not in SCRIPT_FLAGS:
                raise CommandError("ERR Unexpected flag in script shebang: " + text)
            flags.add(text)
    return frozenset(flags), end


def parse_library_header(code: bytes) -> tuple[bytes, bytes]:
    """A library's `#!lua name=<name>` line: (name, the code after it, line feed kept)."""
    if not code.startswith(b"#!"):
        raise CommandError("ERR Missing library metadata")
    end = code.find(b"\n")
    if end < 0:
        raise CommandError("ERR Invalid library metadata")
    parts = _split_args(code[:end])
    if not parts:
        raise CommandError("ERR Invalid library metadata")
    engine = parts[0][2:]
    name = None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                raise CommandError(
                    "ERR Invalid metadata value, name argument was given multiple times"
                )
            name = part[5:]
            continue
        raise CommandError("ERR Invalid metadata value given: " + part.decode(errors="replace"))
    if name is None:
        raise CommandError("ERR Library name was not given")
    if not _valid_name(name):
        raise CommandError(
            "ERR Library names can only contain letters, numbers, or underscores(_) and must be "
            "at least one character long"
        )
    if engine != b"lua":
        raise CommandError(f"ERR Engine '{engine.decode(errors='replace')}' not found")
    return name, code[end:]


def _split_args(line: bytes) -> list[bytes]:
    """Words of a shebang line, as sdssplitargs splits them."""
    try:
        return split_inline(line)
    except Exception:
        return []
