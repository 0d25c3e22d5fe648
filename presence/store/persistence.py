"""The append-only file: every change to the data, in RESP, replayed at start.

Layout and format follow Redis 7's multi-part AOF, so redis-server 7 can load what the
store writes (and the other way round, with `aof-use-rdb-preamble no`): a directory
`dir/appenddirname` holding a manifest (`appendfilename.manifest`) that names one base
file (the dataset at the last rewrite) and the increment files written since, each a
stream of RESP commands (`SELECT n` where the database changes).

What is written:

* a write command that succeeded, as sent, except where replaying it later would give
  another result: commands with relative or past deadlines are written as the key's
  resulting state with an absolute deadline (`PEXPIREAT`, `SET ... PXAT`, `DEL`), SPOP
  as SREM of what it popped, a served blocking pop as its non-blocking form;
* a `DEL` for every key that expires (lazily or by the timer), so replay never sees a
  key the live store had already dropped.

When: the commands of a loop turn are gathered in memory and written with one
`os.write` before that turn's replies go out (`Server.write_held`), so an acknowledged
write is in the kernel's page cache and survives a `kill -9` of the store. `appendfsync
always` also fsyncs then; `everysec` fsyncs from a thread once a second (a power loss
costs at most about a second); `no` leaves it to the kernel.

Rewrite (BGREWRITEAOF, or automatic when the file grew by `auto-aof-rewrite-percentage`
past `auto-aof-rewrite-min-size`): the store opens a new increment file and forks; the
child writes the dataset as of the fork into a temporary base file while the parent keeps
appending to the new increment. When the child is done, the base is renamed in place and
the manifest swapped atomically (write, fsync, rename); older files are deleted. The fork
gives a consistent snapshot without blocking the server for more than the fork itself.

Loading: files are replayed through the command table by a client of their own, with the
clock held at 0 so nothing expires during the replay (Redis does the same); keys whose
deadline passed while the store was down expire, and are announced, once the server runs
(after `aof-load-expire-delay` ms, so subscribers that reconnect hear of them). A last file
cut short by a crash is truncated to its last complete command (`aof-load-truncated`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
import weakref

from presence.store.aoffile import (
    TRANSLATIONS,
    AofError,
    Manifest,
    Truncated,
    encode_command,
    read_commands,
    write_snapshot,
)
from presence.store.commands import NO_REPLY
from presence.store.resp import Error

log = logging.getLogger("presence.store")

# FUNCTION subcommands that change the libraries, recorded as sent (as Redis's AOF does)
_FUNCTION_CHANGES = frozenset({b"load", b"delete", b"flush", b"restore"})
CRON_INTERVAL = 0.1  # seconds between two looks at fsync, the rewrite child, auto-rewrite


__all__ = ["AofError", "Persistence"]


class Persistence:
    """The server's append-only file: records writes, loads at start, rewrites in a fork."""

    def __init__(self, server, client_class) -> None:
        """`client_class(server)` makes the client that replays the files."""
        self.server = server
        self.client_class = client_class
        self.config = server.config
        self._on = self._enable_after_rewrite = False
        self.recording = False  # writes go into the file: on or enable_after_rewrite
        self.fd: int | None = None  # the increment file being appended to
        self.manifest = Manifest()
        self.pending: list[bytes] = []  # encoded commands not written yet
        self.selected_db = -1  # the database the increment's last command was for
        self.after: list[tuple[int, list[bytes]]] = []  # effects to record after the command
        self.depth = 0  # > 0 while a recorded write command runs
        self.blocked: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # client -> argv
        self.loading = False
        self.current_size = self.base_size = 0
        self.last_fsync = time.monotonic()
        self.fsync_in_flight: asyncio.Future | None = None
        self.delayed_fsync = 0
        self.write_status = "ok"
        self.child_pid = 0
        self.child_temp = ""
        self.rewrite_started = 0.0
        self.rewrite_scheduled = False
        self.enable_after_rewrite = False
        self.rewrites = self.rewrite_failures = 0
        self.last_rewrite_seconds = -1
        self.last_rewrite_status = "ok"
        self._cron: asyncio.TimerHandle | None = None
        self._hooked = False

    @property
    def on(self) -> bool:
        """Appending: appendonly yes, and the AOF is open."""
        return self._on

    @on.setter
    def on(self, value: bool) -> None:
        self._on = value
        self.recording = value or self.enable_after_rewrite

    @property
    def enable_after_rewrite(self) -> bool:
        """appendonly yes was set live: writes are recorded; the AOF is on once rewritten."""
        return self._enable_after_rewrite

    @enable_after_rewrite.setter
    def enable_after_rewrite(self, value: bool) -> None:
        self._enable_after_rewrite = value
        self.recording = value or self.on

    # ------------------------------------------------------------ paths

    @property
    def directory(self) -> str:
        return os.path.join(self.config["dir"], self.config["appenddirname"])

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    @property
    def _manifest_path(self) -> str:
        return self._path(self.config["appendfilename"] + ".manifest")

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """At server start: load the AOF if appendonly is on, then append to it.

        Raises AofError when the files cannot be read or replayed.
        """
        if self.config["appendonly"] == "yes":
            self.load()
            self._open_for_append()
        self._schedule_cron()

    def stop(self) -> None:
        """Write and fsync what is pending, close the file, stop a rewrite in progress."""
        if self._cron is not None:
            self._cron.cancel()
            self._cron = None
        self._stop_child()
        if self.fd is not None:
            self.write_pending()
            _fsync(self.fd)
            os.close(self.fd)
            self.fd = None
        self.on = False

    def config_changed(self, name: str, value) -> None:
        """CONFIG SET appendonly yes starts a rewrite to create the AOF; no stops appending."""
        if name != "appendonly" or self.loading:
            return
        if value == "yes" and not self.on and not self.enable_after_rewrite:
            self.enable_after_rewrite = True
            self._hook()
            try:
                self.rewrite()
            except AofError as exc:
                log.error("appendonly yes: %s", exc)
                self.enable_after_rewrite = False
        elif value == "no" and (self.recording):
            self.stop()
            self.enable_after_rewrite = False
            self._schedule_cron()

    # ------------------------------------------------------------ loading

    def load(self) -> None:
        """Replay the files the manifest names, oldest first; keys do not expire meanwhile."""
        try:
            with open(self._manifest_path, encoding="utf-8") as fh:
                self.manifest = Manifest.parse(fh.read(), self._manifest_path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise AofError(f"cannot read {self._manifest_path}: {exc.strerror}") from None
        server = self.server
        keyspace = server.keyspace
        clock, on_earlier = keyspace.clock, keyspace.on_earlier_deadline
        keyspace.clock, keyspace.on_earlier_deadline = _loading_clock, None
        self.loading = True
        try:
            files = self.manifest.files()
            for i, name in enumerate(files):
                self._replay(name, last=i == len(files) - 1)
        finally:
            self.loading = False
            keyspace.clock, keyspace.on_earlier_deadline = clock, on_earlier
            keyspace.tick()
        delay = self.config["aof-load-expire-delay"]
        if delay > 0 and server.active_expire:
            server.active_expire = False  # the timer looks again every 100 ms meanwhile
            _call_later(delay / 1000, _resume_expiry, weakref.ref(server))
        self.base_size = self._size(self.manifest.base)
        self.current_size = sum(self._size(name) for name in self.manifest.files())

    def _replay(self, name: str, last: bool) -> None:
        path = self._path(name)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise AofError(f"cannot read the append only file {path}: {exc.strerror}") from None
        server = self.server
        client = self.client_class(server)
        client.authenticated = client.plain = True
        good = 0  # where the last complete command (outside MULTI) ends
        try:
            for argv, end in read_commands(data, name):
                name_lower = argv[0].lower()
                if name_lower not in server.commands:
                    raise AofError(
                        f"Unknown command '{argv[0].decode(errors='replace')}' reading the "
                        f"append only file {name}"
                    )
                reply = server.execute(client, argv)
                if type(reply) is Error and name_lower != b"exec":
                    log.warning("replaying %s: %s answered %s", name, argv[0], reply)
                if client.multi is None:
                    good = end
            if client.multi is not None:
                raise Truncated(good)
        except Truncated as cut:
            if not last or self.config["aof-load-truncated"] != "yes":
                raise AofError(
                    f"Unexpected end of file reading the append only file {name}"
                ) from None
            log.warning(
                "the append only file %s ends inside a command: truncated from %d to %d bytes",
                name,
                len(data),
                cut.offset,
            )
            os.truncate(path, cut.offset)

    def _size(self, name: str | None) -> int:
        if not name:
            return 0
        try:
            return os.path.getsize(self._path(name))
        except OSError:
            return 0

    # ------------------------------------------------------------ appending

    def _open_for_append(self) -> None:
        """Append to the manifest's last increment, or to a new one named in a new manifest."""
        os.makedirs(self.directory, exist_ok=True)
        if not self.manifest.incrs:
            self._new_incr()
            self._save_manifest(self.manifest)
        else:
            self.fd = os.open(self._path(self.manifest.incrs[-1]), os.O_WRONLY | os.O_APPEND)
        self.selected_db = -1
        self.on = True
        self._hook()

    def _new_incr(self) -> None:
        """Open a new, empty increment file and add it to `self.manifest` (not saved)."""
        self.manifest.incr_seq += 1
        name = f"{self.config['appendfilename']}.{self.manifest.incr_seq}.incr.aof"
        fd = os.open(self._path(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        if self.fd is not None:
            self.write_pending()
            _fsync(self.fd)
            os.close(self.fd)
        self.fd = fd
        self.manifest.incrs.append(name)
        self.selected_db = -1

    def _save_manifest(self, manifest: Manifest) -> None:
        """Replace the manifest atomically: write a temporary file, fsync, rename, fsync dir."""
        temp = self._path(f"temp-{self.config['appendfilename']}.manifest")
        with open(temp, "wb") as fh:
            fh.write(manifest.render())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, self._manifest_path)
        _fsync_dir(self.directory)

    def _hook(self) -> None:
        if not self._hooked:
            self.server.keyspace.on_expired = self.record_expiry
            self.server.wrap_write_commands(
                self._wrap, also=frozenset({b"function", b"xgroup", b"pfcount"})
            )
            self._hooked = True

    def _wrap(self, cmd):
        """`cmd`'s handler, recording what it changed once it has run."""
        handler, name = cmd.handler, cmd.name
        translate = TRANSLATIONS.get(name)
        as_sent = 3 if name == "set" else -1  # SET key value needs no translation
        pending = self.pending

        def recorded(client, argv):
            if not self.recording or (
                name == "function" and argv[1].lower() not in _FUNCTION_CHANGES
            ):
                return handler(client, argv)
            self.depth += 1
            try:
                reply = handler(client, argv)
            finally:
                self.depth -= 1
            if reply is NO_REPLY:
                self.blocked[client] = argv  # blocked: recorded when served (unblocked)
            elif type(reply) is not Error:
                db = client.db
                if translate is None or len(argv) == as_sent:
                    if db.index != self.selected_db:
                        self.append(db.index, argv)
                    else:
                        pending.append(encode_command(argv))
                else:
                    for effect in translate(db, argv, reply):
                        self.append(db.index, effect)
            if self.after and not self.depth:
                after, self.after = self.after, []
                for index, effect in after:
                    self.append(index, effect)
            return reply

        return recorded

    def record_unblocked(self, client, reply) -> None:
        """A blocked command was answered: record the pop it did, if it did one."""
        argv = self.blocked.pop(client, None)
        if argv is None or reply is None or type(reply) is Error or not self.on:
            return
        translate = TRANSLATIONS.get(argv[0].lower().decode())
        if translate is None:
            return
        for effect in translate(client.db, argv, reply):
            if self.depth:
                self.after.append((client.db.index, effect))  # after the command that served it
            else:
                self.append(client.db.index, effect)

    def record_expiry(self, db_index: int, key: bytes) -> None:
        """A key expired: its DEL goes into the file, so a replay drops it at the same point."""
        if self.recording:
            self.append(db_index, [b"DEL", key])

    def append(self, db_index: int, argv: list[bytes]) -> None:
        """Queue one command for the file (after a SELECT if the database changed)."""
        if db_index != self.selected_db:
            self.pending.append(encode_command([b"SELECT", b"%d" % db_index]))
            self.selected_db = db_index
        self.pending.append(encode_command(argv))

    def write_pending(self) -> None:
        """Write the queued commands (one write), and fsync them with `appendfsync always`."""
        pending = self.pending
        if not pending or self.fd is None:
            return
        data = b"".join(pending)
        try:
            view = memoryview(data)
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
        except OSError as exc:
            if self.write_status == "ok":
                log.error("writing the append only file failed: %s", exc)
            self.write_status = "err"
            pending[:] = [bytes(view)]
            return
        pending.clear()
        self.write_status = "ok"
        self.current_size += len(data)
        if self.config["appendfsync"] == "always":
            _fsync(self.fd)
            self.last_fsync = time.monotonic()

    # ------------------------------------------------------------ the cron

    def _schedule_cron(self) -> None:
        if self._cron is None:
            self._cron = _call_later(CRON_INTERVAL, self._on_cron)

    def _on_cron(self) -> None:
        self._cron = None
        self.write_pending()  # expiries the timer recorded with no reply to wait for
        if self.fd is not None and self.config["appendfsync"] == "everysec":
            self._fsync_in_background()
        if self.child_pid:
            self._check_child()
        elif self.rewrite_scheduled or self._rewrite_due():
            self.rewrite()
        if self.fd is not None or self.child_pid or self.enable_after_rewrite:
            self._schedule_cron()

    def _fsync_in_background(self) -> None:
        """Once a second, fsync from a thread: the loop never waits for the disk."""
        now = time.monotonic()
        if now - self.last_fsync < 1.0:
            return
        if self.fsync_in_flight is not None and not self.fsync_in_flight.done():
            self.delayed_fsync += 1
            return
        fd = os.dup(self.fd)
        self.last_fsync = now
        self.fsync_in_flight = asyncio.get_running_loop().run_in_executor(
            None, _fsync_and_close, fd
        )

    def _rewrite_due(self) -> bool:
        """Whether the AOF grew past auto-aof-rewrite-min-size and the percentage."""
        percentage = self.config["auto-aof-rewrite-percentage"]
        if not self.on or not percentage:
            return False
        if self.current_size < self.config["auto-aof-rewrite-min-size"]:
            return False
        base = self.base_size or 1
        return (self.current_size - base) * 100 / base >= percentage

    # ------------------------------------------------------------ rewrite

    def rewrite(self) -> bool:
        """Start a background rewrite (fork); False if one is already running.

        Raises AofError when the directory or the new increment cannot be created.
        """
        if self.child_pid:
            return False
        self.rewrite_scheduled = False
        try:
            os.makedirs(self.directory, exist_ok=True)
            if self.recording:
                self._new_incr()  # writes from now on: the child's snapshot has the rest
                if self.on:
                    self._save_manifest(self.manifest)
        except OSError as exc:
            raise AofError(f"cannot prepare the AOF rewrite in {self.directory}: {exc}") from None
        self.child_temp = self._path(f"temp-rewriteaof-bg-{os.getpid()}.aof")
        pid = os.fork()
        if pid == 0:  # the child: write the snapshot, exit without running any cleanup
            status = 1
            try:
                gc.disable()  # no finalizer may close a descriptor the child reuses
                libraries = [lib.code for lib in self.server.scripts.libraries.values()]
                write_snapshot(self.server.keyspace, self.child_temp, libraries)
                status = 0
            finally:
                os._exit(status)
        self.child_pid = pid
        self.rewrite_started = time.monotonic()
        self._schedule_cron()
        return True

    def _check_child(self) -> None:
        try:
            pid, status = os.waitpid(self.child_pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.child_pid, 1
        if pid == 0:
            return
        self.child_pid = 0
        self.last_rewrite_seconds = int(time.monotonic() - self.rewrite_started)
        if os.waitstatus_to_exitcode(status) == 0:
            try:
                self._install_new_base()
                self.rewrites += 1
                self.rewrite_failures = 0
                self.last_rewrite_status = "ok"
                return
            except OSError as exc:
                log.error("installing the rewritten AOF failed: %s", exc)
        else:
            log.error("the AOF rewrite child failed (status %d)", status)
        self.last_rewrite_status = "err"
        self.rewrite_failures += 1
        _unlink(self.child_temp)

    def _install_new_base(self) -> None:
        """The child's snapshot becomes the base; the manifest names it and the new increment."""
        old = self.manifest.files()
        manifest = Manifest(base_seq=self.manifest.base_seq + 1, incr_seq=self.manifest.incr_seq)
        manifest.base = f"{self.config['appendfilename']}.{manifest.base_seq}.base.aof"
        if self.recording:
            manifest.incrs = self.manifest.incrs[-1:]  # the one opened when the child forked
        os.replace(self.child_temp, self._path(manifest.base))
        self._save_manifest(manifest)
        self.manifest = manifest
        for name in old:
            if name not in manifest.files():
                _unlink(self._path(name))
        self.base_size = self._size(manifest.base)
        self.current_size = sum(self._size(name) for name in manifest.files())
        if self.enable_after_rewrite:
            self.enable_after_rewrite = False
            self.on = True

    def _stop_child(self) -> None:
        if self.child_pid:
            try:
                os.kill(self.child_pid, 9)
                os.waitpid(self.child_pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.child_pid = 0
            _unlink(self.child_temp)

    # ------------------------------------------------------------ INFO

    def info_fields(self) -> list[tuple[str, object]]:
        """The AOF lines of INFO persistence, in Redis 7.0's order."""
        fields: list[tuple[str, object]] = [
            ("aof_enabled", int(self.recording)),
            ("aof_rewrite_in_progress", int(bool(self.child_pid))),
            ("aof_rewrite_scheduled", int(self.rewrite_scheduled)),
            ("aof_last_rewrite_time_sec", self.last_rewrite_seconds),
            (
                "aof_current_rewrite_time_sec",
                int(time.monotonic() - self.rewrite_started) if self.child_pid else -1,
            ),
            ("aof_last_bgrewrite_status", self.last_rewrite_status),
            ("aof_rewrites", self.rewrites),
            ("aof_rewrites_consecutive_failures", self.rewrite_failures),
            ("aof_last_write_status", self.write_status),
            ("aof_last_cow_size", 0),
            ("module_fork_in_progress", 0),
            ("module_fork_last_cow_size", 0),
        ]
        if self.on:
            pending = sum(len(p) for p in self.pending)
            in_flight = self.fsync_in_flight is not None and not self.fsync_in_flight.done()
            fields += [
                ("aof_current_size", self.current_size + pending),
                ("aof_base_size", self.base_size),
                ("aof_pending_rewrite", int(self.rewrite_scheduled)),
                ("aof_buffer_length", pending),
                ("aof_pending_bio_fsync", int(in_flight)),
                ("aof_delayed_fsync", self.delayed_fsync),
            ]
        return fields


# ---------------------------------------------------------------- small helpers


def _loading_clock() -> int:
    return 0  # while loading, no deadline has passed


def _resume_expiry(server_ref) -> None:
    server = server_ref()
    if server is not None:
        server.active_expire = True


def _call_later(delay: float, callback, *args) -> asyncio.TimerHandle | None:
    try:
        return asyncio.get_running_loop().call_later(delay, callback, *args)
    except RuntimeError:
        return None  # no loop (a Server driven by tests without one)


def _fsync(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:
        log.error("fsync of the append only file failed: %s", exc)


def _fsync_and_close(fd: int) -> None:
    try:
        _fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
