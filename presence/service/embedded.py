"""The bundled store as a supervised child process of `presence serve` (the embedded default).

The child listens on a unix socket in a private directory (mode 0700, made by
tempfile.mkdtemp) and requires a password generated at start-up: another local user can
neither reach the socket nor, on the optional TCP port (`--store-port`), get past AUTH.
The node itself logs in as the ACL user `presence`, allowed only the commands, keys and
channels the service uses (NODE_ACL_RULES): a node that misbehaves, or whose process is
made to send what it should not, cannot FLUSHALL, CONFIG SET, SHUTDOWN, run scripts or
read other keys; the `default` user (all rights) is the operator's and the supervisor's.
Passwords reach the child in files of that directory (mode 0600: store.conf, users.acl),
never on its command line, which every user can read in `ps`.

When the child dies (SIGKILL, SHUTDOWN, a crash), the node hears it at once (a pidfd
becomes readable, see `exit_fd`), reaps it and starts a new one after a backoff
(RestartPolicy); a store that keeps dying is given up on and `presence serve` exits 1 so
that systemd restarts the whole unit. StoreStatus holds what /readyz and /metrics report,
in shared memory so that the workers of `--workers N` see what their parent does.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import mmap
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import quote

from presence import allocator
from presence.service.keys import EXPIRY_CHANNEL

log = logging.getLogger("presence.store")

RESTART_BACKOFF = 0.1  # seconds before the first restart of a dead store; doubles, up to
MAX_BACKOFF = 5.0  # this, while the store keeps dying within the window
NODE_USER = "presence"  # the ACL user a node logs in as
# What a node may do on the bundled store: README.md's line for Redis ("A restricted store
# user"), without what the bundled store does not need (CONFIG SET and the keyspace-event
# channel: it announces expiries on keys-expire-notify, a channel under presence:), with
# CLIENT SETINFO (redis-py names its connections with it).
NODE_ACL_RULES = (
    "resetkeys ~presence:* resetchannels &presence:* -@all +ping +hello +info +config|get "
    "+client|setinfo +get +set +del +exists +mget +incr +pttl +pexpire +pexpireat +hget +hset "
    "+hsetnx +hdel +hgetall +rpush +lrange +ltrim +llen +lindex +zadd +zcard +zcount +zincrby "
    "+zrange +zrangebylex +zrangebyscore +zrem +zremrangebyscore +zscore +watch +unwatch "
    "+multi +exec +discard +subscribe +unsubscribe +ssubscribe +sunsubscribe +spublish"
)
LOAD_EXPIRE_DELAY_MS = 3000  # the node's subscriber retries a lost connection every 2 s at most


class StoreStartError(RuntimeError):
    """The bundled store did not come up; the message says why (with its log's tail)."""


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM us if `presence serve` dies without stopping us."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def describe_exit(code: int) -> str:
    """'was killed by SIGKILL' or 'exited with status 1' for a Popen returncode."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class StoreStatus:
    """Whether the bundled store is up and how often it was restarted, readable by every
    process forked after its creation (an anonymous shared mapping)."""

    _FORMAT = "=qq"  # up (0/1), restarts

    def __init__(self) -> None:
        self._shared = mmap.mmap(-1, struct.calcsize(self._FORMAT))
        self._write(True, 0)

    def _write(self, up: bool, restarts: int) -> None:
        self._shared[:] = struct.pack(self._FORMAT, int(up), restarts)

    def _read(self) -> tuple[int, int]:
        return struct.unpack(self._FORMAT, self._shared[:])

    @property
    def up(self) -> bool:
        return bool(self._read()[0])

    @property
    def restarts(self) -> int:
        return self._read()[1]

    def went_down(self) -> None:
        self._write(False, self.restarts)

    def came_back(self) -> None:
        self._write(True, self.restarts + 1)


class RestartPolicy:
    """When to restart a dead store: after a backoff that doubles with each death within
    `window` seconds; None (give up) at the (max_restarts + 1)-th death in a window."""

    def __init__(
        self,
        max_restarts: int = 5,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_restarts = max_restarts
        self.window = window
        self.clock = clock
        self._deaths: deque[float] = deque()

    def next_delay(self) -> float | None:
        """Record a death now; seconds to wait before the restart, or None to give up."""
        now = self.clock()
        self._deaths.append(now)
        while self._deaths and self._deaths[0] < now - self.window:
            self._deaths.popleft()
        recent = len(self._deaths)
        if recent > self.max_restarts:
            return None
        return min(RESTART_BACKOFF * 2 ** (recent - 1), MAX_BACKOFF)


class EmbeddedStore:
    """Starts `python -m presence.store` on a private unix socket (and, with `port`, on
    TCP `host:port` too), password-protected; restarts it with `start()` again.

    The store announces every expired key on presence.service.keys.EXPIRY_CHANNEL.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", data_dir: str | None = None) -> None:
        """`data_dir`: keep the data there in an append-only file (None: memory only)."""
        self.host = host
        self.data_dir = data_dir
        self.port = port  # 0: no TCP listener, only the unix socket
        self.dir = tempfile.mkdtemp(prefix="presence-store-")  # mode 0700: ours alone
        self.socket_path = os.path.join(self.dir, "store.sock")
        self.config_path = os.path.join(self.dir, "store.conf")
        self.acl_path = os.path.join(self.dir, "users.acl")
        self.password = secrets.token_hex(32)  # the default user's: the operator's
        self.node_password = secrets.token_hex(32)  # NODE_USER's
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (the store log, read on failure)

    @property
    def url(self) -> str:
        """The redis-py URL of the socket for a node (NODE_USER), password included (print
        `where` instead)."""
        return f"unix://{NODE_USER}:{self.node_password}@{quote(self.socket_path)}?db=0"

    @property
    def where(self) -> str:
        """Where the store listens, without its password (for banners and logs)."""
        tcp = f" and {self.host} port {self.port}" if self.port else ""
        return f"unix socket {self.socket_path}{tcp}"

    @property
    def contents(self) -> str:
        """What a restarted store holds, for the log."""
        return f"it reloads its data from {self.data_dir}" if self.data_dir else "it starts empty"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def directives(self) -> list[tuple[str, str]]:
        """The child's configuration, as redis.conf directives."""
        return [
            ("bind", self.host),
            ("port", str(self.port)),
            ("unixsocket", self.socket_path),
            ("aclfile", self.acl_path),
            ("keys-expire-notify", EXPIRY_CHANNEL),
            *self._persistence(),
        ]

    def users(self) -> list[str]:
        """The child's ACL users, as aclfile lines: the operator, then the node."""
        return [
            f"user default on >{self.password} ~* &* +@all",
            f"user {NODE_USER} on >{self.node_password} {NODE_ACL_RULES}",
        ]

    def _write_config(self) -> None:
        for path, lines in (
            (self.acl_path, self.users()),
            (self.config_path, [f"{name} {value}" for name, value in self.directives()]),
        ):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.writelines(f"{line}\n" for line in lines)

    async def start(self, timeout: float = 15) -> str:
        """Spawn the store and wait until it answers; returns its URL (with the password).

        Raises StoreStartError when it exits early or does not answer within `timeout`.
        """
        self._write_config()
        cmd = [sys.executable, "-m", "presence.store", self.config_path]
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=allocator.without_choice(dict(os.environ)),  # CPython's default for it
                preexec_fn=_die_with_parent if os.name == "posix" else None,
            )
        except OSError as exc:
            raise StoreStartError(f"cannot run the bundled store ({' '.join(cmd)}): {exc}") from exc
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.proc.poll() is not None:
                raise StoreStartError(
                    f"the bundled store {describe_exit(self.proc.returncode)}"
                    f" (listening on {self.where}):\n{self.log_tail()}"
                )
            if await self._answers_ping():
                if self.proc.poll() is None:
                    return self.url
            else:
                await asyncio.sleep(0.05)
        self.stop()
        raise StoreStartError(
            f"the bundled store did not answer on {self.where} within {timeout:g}s:\n"
            f"{self.log_tail()}"
        )

    def _persistence(self) -> list[tuple[str, str]]:
        """appendonly in `data_dir`; keys that expired while the store was down are announced
        LOAD_EXPIRE_DELAY_MS after it starts, once the node's subscriber is back."""
        if not self.data_dir:
            return []
        os.makedirs(self.data_dir, exist_ok=True)
        return [
            ("appendonly", "yes"),
            ("dir", os.path.abspath(self.data_dir)),
            ("aof-load-expire-delay", str(LOAD_EXPIRE_DELAY_MS)),
        ]

    async def _answers_ping(self) -> bool:
        """True when our socket answers AUTH and PING like a Redis (not just any listener)."""
        try:
            reader, writer = await asyncio.open_unix_connection(self.socket_path)
        except OSError:
            return False
        try:
            writer.write(f"AUTH {self.password}\r\nPING\r\n".encode())
            replies = [await asyncio.wait_for(reader.readline(), 1) for _ in range(2)]
            return replies == [b"+OK\r\n", b"+PONG\r\n"]
        except (TimeoutError, OSError):
            return False
        finally:
            writer.close()

    def exit_fd(self) -> int:
        """A pidfd of the running child: readable once it has exited (the caller closes it)."""
        assert self.proc is not None
        return os.pidfd_open(self.proc.pid)

    def reap(self) -> int | None:
        """Collect the child's exit status if it has exited (no `<defunct>` left behind)."""
        return None if self.proc is None else self.proc.poll()

    def log_tail(self, size: int = 2000) -> str:
        self._log.seek(0, os.SEEK_END)
        self._log.seek(max(self._log.tell() - size, 0))
        return self._log.read().decode("utf-8", "replace").strip()

    def stop(self) -> None:
        """Terminate the store (kill it after 5 s); safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def remove(self) -> None:
        """Stop the store and delete its private directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _set_once(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class StoreSupervisor:
    """Keeps the bundled store running under an asyncio loop (a single-process node).

    `run()` returns only when it gives up (the store died more often than the policy
    allows, or a restart failed that often): the node then exits 1.
    """

    def __init__(self, store: EmbeddedStore, policy: RestartPolicy, status: StoreStatus) -> None:
        self.store = store
        self.policy = policy
        self.status = status

    async def run(self) -> None:
        while True:
            code = await self._exit()
            self.status.went_down()
            log.warning("the bundled store (pid %s) %s", self.store.pid, describe_exit(code))
            if not await self._restart():
                return

    async def _exit(self) -> int:
        """Wait until the child exits, reap it; its Popen returncode."""
        loop = asyncio.get_running_loop()
        exited = loop.create_future()
        fd = self.store.exit_fd()
        loop.add_reader(fd, _set_once, exited)
        try:
            await exited
        finally:
            loop.remove_reader(fd)
            os.close(fd)
        code = self.store.reap()
        assert code is not None
        return code

    async def _restart(self) -> bool:
        """Start the store again, with backoff; False once the policy gives up."""
        while True:
            delay = self.policy.next_delay()
            if delay is None:
                log.error(
                    "the bundled store died %d times within %gs; giving up (exit 1)",
                    self.policy.max_restarts + 1,
                    self.policy.window,
                )
                return False
            log.warning("restarting the bundled store in %gs", delay)
            await asyncio.sleep(delay)
            try:
                await self.store.start()
            except StoreStartError as exc:
                log.error("restarting the bundled store failed: %s", exc)
                continue
            self.status.came_back()
            log.warning(
                "the bundled store is back (pid %s, restart %d); %s",
                self.store.pid,
                self.status.restarts,
                self.store.contents,
            )
            return True
