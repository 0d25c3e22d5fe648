"""`presence serve --workers N`: N node processes on one port, supervised by a parent.

Nodes share nothing but the store, so N processes on one machine are simply N nodes
(named `<node-id>-0` ... `<node-id>-<N-1>` in /healthz and /metrics). The parent:

* binds the listening socket(s) once (presence.web.limits.listen_sockets, with --listen-backlog), so a port in use
  is reported once, before anything else starts;
* starts the bundled store once (without --redis-url), on a throwaway event loop that is
  closed before any fork, and supervises it as a single node does (presence.service.embedded):
  its death is heard at once (a pidfd in the parent's poll), it is restarted after a backoff
  (--store-restarts within --store-restart-window, else the parent stops the workers and
  exits 1), and the workers read its state (/readyz, /metrics) from a shared StoreStatus;
* forks the workers: each builds its own event loop (uvloop when installed), store
  connection pool, subscriber and HTTP server on the inherited socket, and tells the
  parent through a pipe when it serves. Worker 0 starts first: when it cannot (store
  unreachable or misconfigured), the parent exits with its status and its one message
  instead of starting the others or restarting it. The announcement is printed once all
  workers serve;
* restarts a worker that dies (at once if it had lived STABLE_SECONDS, else after 0.25 s,
  doubling while it keeps dying that soon, a restart that cannot start included; after
  MAX_QUICK_DEATHS such deaths in a row it gives up, stops the others and exits 1);
* replaces a worker that asks for it (--recycle-after-peak, presence.runtime.Recycler:
  quiet after a peak, whose memory it keeps): a fresh worker is forked first and, once it
  serves, the old one gets SIGTERM and drains; one replacement at a time, so the port is
  always served by all N;
* on SIGTERM/SIGINT closes its copy of the socket, sends SIGTERM to every worker (each
  drains as a single node does: held polls are answered with `reconnect: true`), waits
  up to STOP_GRACE seconds (then SIGKILL, exit 1), stops the bundled store and exits 0.

Workers also get SIGTERM from the kernel when the parent dies (PR_SET_PDEATHSIG), like
the bundled store.

Why pre-fork on one shared socket rather than SO_REUSEPORT (one socket per worker):

* one accept queue: a connection waits for whichever worker accepts first, and a worker
  that is busy is not the one that wins the race, so load follows free CPU; with
  SO_REUSEPORT the kernel hashes each connection to a worker blindly, however busy;
* a worker that dies loses nothing: connections queued on the socket are taken by the
  others while it restarts, whereas the queue of a SO_REUSEPORT socket belongs to one
  worker and its connections are reset or wait for the restart;
* the port stays exclusive: any process of the same user that sets SO_REUSEPORT can bind
  a port bound that way and silently take a share of its connections (a second
  `presence serve` on the same port would start instead of failing).

The costs: every idle worker wakes for a new connection and all but one find nothing to
accept (cheap with N = cores); and Tornado accepts every connection it finds queued, so
the first worker to wake took 44 of a burst of 50 keep-alive connections. Workers
therefore accept one connection per wake-up (_OneAcceptPerWakeup), which splits such a
burst about evenly when both get CPU (20/30 to 16/34 in bench/service_bench.py
--only workers on a busy 2-core machine). The own HTTP engine accepts so fast that the
worker that woke first still took whole bursts (41/9, 0/50), so a worker also waits GAP
(0.2 ms) after an accept before it takes another queued connection: 30/20 to 16/34 again
(at most 5,000 accepts/s per worker while connections are queued).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import logging
import os
import select
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from typing import NoReturn

from presence import node
from presence.runtime import proc_status
from presence.service.embedded import (
    EmbeddedStore,
    RestartPolicy,
    StoreStartError,
    StoreStatus,
    describe_exit,
)
from presence.service.gateway import StoreSetupError
from presence.web.limits import listen_sockets

log = logging.getLogger("presence")

STABLE_SECONDS = 10.0  # a worker that dies sooner after its start died "at once"
MAX_QUICK_DEATHS = 5  # that many in a row and the parent gives up
FIRST_BACKOFF = 0.25  # seconds before restarting a worker that died at once; doubles
STOP_GRACE = 10.0  # seconds the workers get to drain after SIGTERM (theirs is 3 s)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass
class Worker:
    index: int
    name: str
    pid: int = 0  # 0: not running
    pipe: int = -1  # read end: b"r" once it serves, EOF once it exited
    started: float = 0.0
    ready: bool = False
    quick_deaths: int = 0  # consecutive deaths within STABLE_SECONDS of a start
    restart_at: float | None = None
    wants_recycle: bool = False  # it asked to be replaced (b"m": presence.runtime.Recycler)


def serve_workers(args: argparse.Namespace, count: int) -> int:
    """Run `count` worker nodes on one port (see the module docstring); the exit status."""
    return Supervisor(args, count).main()


class Supervisor:
    def __init__(self, args: argparse.Namespace, count: int) -> None:
        self.args = args
        self.workers = [Worker(i, f"{args.node_id}-{i}") for i in range(count)]
        self.sockets: list = []
        self.url = ""
        self.store_label = ""
        self.store: EmbeddedStore | None = None
        self.store_status: StoreStatus | None = None
        self.store_fd = -1  # pidfd of the bundled store: readable once it exited
        self.store_restart_at: float | None = None
        self.store_policy = RestartPolicy(args.store_restarts, args.store_restart_window)
        self.stopping = False
        self.serving = False  # all workers have served once: the announcement is out
        self.replacing: tuple[Worker, Worker] | None = None  # (old, its fresh replacement)
        self.retiring: list[Worker] = []  # replaced, draining
        self.recycles = 0
        self.poller = select.poll()
        self._wake_r = self._wake_w = -1

    # ------------------------------------------------------------------ the parent

    def main(self) -> int:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.poller.register(self._wake_r, select.POLLIN)
        old_wakeup = signal.set_wakeup_fd(self._wake_w)
        old_handlers = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
        try:
            try:
                self.sockets = listen_sockets(
                    self.args.port, self.args.host, self.args.listen_backlog
                )
            except OSError as exc:
                print(node.cannot_listen(self.args.host, self.args.port, exc), file=sys.stderr)
                return 2
            self.args.port = self.sockets[0].getsockname()[1]  # the real one for --port 0
            self.url = self.args.redis_url
            if self.url:
                self.store_label = node.without_password(self.url)
            else:
                self.store = EmbeddedStore(self.args.store_port, data_dir=self.args.data_dir)
                self.store_label = f"bundled store on {self.store.where}"
                self.store_status = StoreStatus()
                try:
                    self.url = self._start_store()
                except StoreStartError as exc:
                    print(f"presence: cannot start the bundled store: {exc}", file=sys.stderr)
                    return 1
            _preload()
            return self._supervise()
        finally:
            for sock in self.sockets:
                sock.close()
            self._unwatch_store()
            if self.store is not None:
                self.store.remove()
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(old_wakeup)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True  # the wakeup fd wakes the poll in _supervise

    def _supervise(self) -> int:
        """Start the workers, restart those that die, until signalled; the exit status."""
        if not self.stopping:
            self._spawn(self.workers[0])  # the others once this one serves
        while not self.stopping:
            now = time.monotonic()
            due = [w.restart_at for w in self.workers if w.restart_at is not None]
            due += [self.store_restart_at] if self.store_restart_at is not None else []
            timeout = None if not due else max(0, int((min(due) - now) * 1000) + 1)
            for fd, _ in self.poller.poll(timeout):
                if fd == self._wake_r:
                    _drain_pipe(fd)
                    continue
                if fd == self.store_fd:
                    status = self._store_exited()
                    if status is not None:
                        self._stop()
                        return status
                    continue
                worker = next(w for w in self._processes() if w.pipe == fd)
                said = os.read(fd, 64)
                if said:
                    status = self._heard(worker, said)
                else:
                    status = self._exited(worker, self._reap(worker))
                if status is not None:
                    self._stop()
                    return status
            now = time.monotonic()
            store_due = self.store_restart_at is not None and self.store_restart_at <= now
            if store_due and not self._restart_store():
                self._stop()
                return 1
            for w in self.workers:
                if w.restart_at is not None and w.restart_at <= now and not self.stopping:
                    w.restart_at = None
                    self._spawn(w)
        return self._stop()

    def _processes(self) -> list[Worker]:
        """Every worker process there is: the serving ones, a replacement being started
        and the replaced ones that drain."""
        fresh = [self.replacing[1]] if self.replacing is not None else []
        return [*self.workers, *fresh, *self.retiring]

    def _heard(self, w: Worker, said: bytes) -> int | None:
        """A worker wrote on its pipe: b"r" it serves, b"m" it asks to be replaced."""
        status = self._ready(w) if b"r" in said else None
        if b"m" in said:
            w.wants_recycle = True
            self._recycle_next()
        return status

    def _ready(self, w: Worker) -> int | None:
        w.ready = True
        log.info("worker %s (pid %d) serving", w.name, w.pid)
        if self.replacing is not None and w is self.replacing[1]:
            self._swap()
            return None
        if self.serving:
            self._recycle_next()
            return None
        if w.index == 0:
            for other in self.workers[1:]:
                self._spawn(other)
        if all(x.ready for x in self.workers):
            self.serving = True
            node.announce(self.args, self.store_label, [x.name for x in self.workers])
            self._recycle_next()
        return None

    # ------------------------------------------------------------------ recycling

    def _recycle_next(self) -> None:
        """Start a fresh process for a worker that asked to be replaced (one at a time,
        once all serve); the old one serves on until the new one does (see _swap)."""
        if self.stopping or not self.serving or self.replacing is not None or self.retiring:
            return
        old = next((w for w in self.workers if w.wants_recycle and w.ready), None)
        if old is None:
            return
        old.wants_recycle = False
        new = Worker(old.index, old.name)
        self.replacing = (old, new)
        log.info(
            "worker %s (pid %d, %s) is quiet after a peak of --recycle-after-peak %d held "
            "polls or more: starting a fresh process to replace it",
            old.name,
            old.pid,
            _rss(old.pid),
            self.args.recycle_after_peak,
        )
        self._spawn(new)

    def _swap(self) -> None:
        """The replacement serves: it takes the old worker's place, which drains (SIGTERM:
        its held polls are answered `reconnect: true`) and exits."""
        assert self.replacing is not None
        old, new = self.replacing
        self.replacing = None
        self.workers[old.index] = new
        self.retiring.append(old)
        self.recycles += 1
        log.info(
            "worker %s: pid %d (%s) replaced by pid %d (%s); the old one drains",
            new.name,
            old.pid,
            _rss(old.pid),
            new.pid,
            _rss(new.pid),
        )
        _signal(old.pid, signal.SIGTERM)

    def _recycling_exit(self, w: Worker, how: str) -> bool:
        """Handle the exit of a worker involved in a replacement; False if it was not."""
        if w in self.retiring:
            self.retiring.remove(w)
            level = (
                logging.INFO if how in ("exited (0)", "was killed by SIGTERM") else logging.WARNING
            )
            log.log(level, "worker %s (pid %d), replaced, %s", w.name, w.pid, how)
            self._recycle_next()
            return True
        if self.replacing is None or w not in self.replacing:
            return False
        old, new = self.replacing
        self.replacing = None
        if w is new:  # the fresh process could not start: the old one serves on
            log.warning(
                "the replacement of worker %s (pid %d) %s before serving; the old one "
                "(pid %d) serves on",
                new.name,
                new.pid,
                how,
                old.pid,
            )
        else:  # the old one died meanwhile: the replacement takes its place
            log.warning(
                "worker %s (pid %d) %s while its replacement (pid %d) starts; that one "
                "takes its place",
                old.name,
                old.pid,
                how,
                new.pid,
            )
            self.workers[old.index] = new
        return True

    def _exited(self, w: Worker, status: int) -> int | None:
        """Handle a worker that exited; returns an exit status when the parent must stop."""
        code = os.waitstatus_to_exitcode(status)
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited ({code})"
        if self.stopping or self._recycling_exit(w, how):
            return None
        if not self.serving:  # start-up: the worker said why on stderr; no restart loop
            log.error("worker %s (pid %d) %s before serving; stopping", w.name, w.pid, how)
            return code if code > 0 else 1
        lived = time.monotonic() - w.started
        w.quick_deaths = w.quick_deaths + 1 if lived < STABLE_SECONDS else 0
        if w.quick_deaths >= MAX_QUICK_DEATHS:
            log.error(
                "worker %s (pid %d) %s, %d times in a row within %gs of its start; giving up",
                w.name,
                w.pid,
                how,
                w.quick_deaths,
                STABLE_SECONDS,
            )
            return 1
        delay = FIRST_BACKOFF * 2 ** (w.quick_deaths - 1) if w.quick_deaths else 0.0
        log.warning(
            "worker %s (pid %d) %s after %.1fs; restarting it in %gs",
            w.name,
            w.pid,
            how,
            lived,
            delay,
        )
        w.pid = 0
        w.restart_at = time.monotonic() + delay
        return None

    def _reap(self, w: Worker) -> int:
        """Wait for a worker whose pipe reached EOF (it exited); its wait status."""
        self.poller.unregister(w.pipe)
        os.close(w.pipe)
        w.pipe, w.ready = -1, False
        _, status = os.waitpid(w.pid, 0)
        return status

    def _stop(self) -> int:
        """SIGTERM every worker, wait for them (SIGKILL after STOP_GRACE); the exit status."""
        self.stopping = True
        for sock in self.sockets:  # the port closes as soon as the workers closed theirs
            sock.close()
        running = [w for w in self._processes() if w.pipe >= 0]
        for w in running:
            _signal(w.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while running and time.monotonic() < deadline:
            for fd, _ in self.poller.poll(100):
                if fd == self._wake_r:
                    _drain_pipe(fd)
                elif not os.read(fd, 64):
                    w = next(w for w in running if w.pipe == fd)
                    code = os.waitstatus_to_exitcode(self._reap(w))
                    if code not in (0, -signal.SIGTERM):
                        log.warning(
                            "worker %s (pid %d) stopped with status %d", w.name, w.pid, code
                        )
                    running.remove(w)
        for w in running:
            log.error(
                "worker %s (pid %d) did not stop within %gs; killed", w.name, w.pid, STOP_GRACE
            )
            _signal(w.pid, signal.SIGKILL)
            self._reap(w)
        log.info("stopped")
        return 1 if running else 0

    # ------------------------------------------------------------------ the bundled store

    def _start_store(self) -> str:
        """Start the bundled store and watch for its exit; its URL. Raises StoreStartError."""
        assert self.store is not None
        # a loop of its own, closed before any fork (stdlib asyncio: uvloop is only ever
        # started in the workers)
        url = asyncio.run(self.store.start())
        self.store_fd = self.store.exit_fd()
        self.poller.register(self.store_fd, select.POLLIN)
        return url

    def _unwatch_store(self) -> None:
        if self.store_fd >= 0:
            self.poller.unregister(self.store_fd)
            os.close(self.store_fd)
            self.store_fd = -1

    def _store_exited(self) -> int | None:
        """Reap the dead store and schedule its restart; 1 when the policy gives up."""
        assert self.store is not None and self.store_status is not None
        self._unwatch_store()
        code = self.store.reap()
        self.store_status.went_down()
        log.warning("the bundled store (pid %s) %s", self.store.pid, describe_exit(code or 0))
        return self._schedule_store_restart()

    def _schedule_store_restart(self) -> int | None:
        delay = self.store_policy.next_delay()
        if delay is None:
            log.error(
                "the bundled store died %d times within %gs; giving up (exit 1)",
                self.store_policy.max_restarts + 1,
                self.store_policy.window,
            )
            return 1
        log.warning("restarting the bundled store in %gs", delay)
        self.store_restart_at = time.monotonic() + delay
        return None

    def _restart_store(self) -> bool:
        """Start the store again (its URL is unchanged); False once the policy gives up."""
        assert self.store is not None and self.store_status is not None
        self.store_restart_at = None
        try:
            self._start_store()
        except StoreStartError as exc:
            log.error("restarting the bundled store failed: %s", exc)
            return self._schedule_store_restart() is None
        self.store_status.came_back()
        log.warning(
            "the bundled store is back (pid %s, restart %d); %s",
            self.store.pid,
            self.store_status.restarts,
            self.store.contents,
        )
        return True

    # ------------------------------------------------------------------ workers

    def _spawn(self, w: Worker) -> None:
        """Fork worker `w`; the child never returns from here."""
        read_end, write_end = os.pipe()
        sys.stdout.flush()  # else the child would write the parent's buffered output again
        sys.stderr.flush()
        gc.freeze()  # the parent's objects stay shared with the child (no refcount writes)
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:
            self._child(w, read_end, write_end)  # exits
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(write_end)
        w.pid, w.pipe, w.started, w.ready = pid, read_end, time.monotonic(), False
        self.poller.register(read_end, select.POLLIN)
        log.debug("worker %s forked (pid %d)", w.name, pid)

    # ------------------------------------------------------------------ a worker

    def _child(self, w: Worker, read_end: int, ready_fd: int) -> NoReturn:
        code = 1
        try:
            parent = os.getppid()
            signal.set_wakeup_fd(-1)
            for sig in _STOP_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
            fds = (read_end, self._wake_r, self._wake_w, self.store_fd)
            for fd in (*fds, *(x.pipe for x in self._processes())):
                if fd >= 0:
                    os.close(fd)
            _die_with_parent(parent)
            args = copy.copy(self.args)
            args.node_id = w.name
            code = _run_worker(
                args, self.url, self.store_label, self.sockets, ready_fd, self.store_status
            )
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)


def _run_worker(
    args: argparse.Namespace,
    url: str,
    store_label: str,
    sockets: list,
    ready_fd: int,
    store_status: StoreStatus | None,
) -> int:
    """A worker's node on a loop created here, after the fork. It writes on `ready_fd`
    b"r" once it serves and b"m" when it asks to be replaced (--recycle-after-peak)."""
    sockets = [_OneAcceptPerWakeup.of(sock) for sock in sockets]

    async def serve_node() -> int:
        try:
            return await node.run_node(
                args,
                url,
                store_label,
                sockets=sockets,
                ready=lambda: os.write(ready_fd, b"r"),
                store_status=store_status,
                recycle=lambda: os.write(ready_fd, b"m"),
            )
        except StoreSetupError as exc:
            print(f"presence: {exc}", file=sys.stderr)
            return 1

    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve_node())
    return uvloop.run(serve_node())


class _OneAcceptPerWakeup(socket.socket):
    """A worker's copy of the shared listening socket that gives Tornado one connection
    each time the socket is readable (Tornado's handler takes all that are queued, up to
    128). The socket stays readable while connections are queued, so the workers accept
    in turns, and a busy worker, back in its loop later, takes fewer."""

    _took_one = False
    _last = 0.0  # when this worker last accepted (monotonic)
    GAP = 0.0002  # seconds between two accepts of one worker while connections are queued

    @classmethod
    def of(cls, sock: socket.socket) -> _OneAcceptPerWakeup:
        one = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        one.setblocking(False)
        return one

    def accept(self):
        # The accept loop calls accept() until BlockingIOError: every second call ends it.
        # A worker that accepted less than GAP ago leaves the connection to another (the
        # own HTTP engine accepts so fast that the worker that woke first would take a
        # whole burst): at most one accept per GAP per worker while a burst is queued.
        self._took_one = not self._took_one
        if not self._took_one:
            raise BlockingIOError
        now = time.monotonic()
        if now - self._last < self.GAP:
            self._took_one = False
            raise BlockingIOError
        self._last = now
        return super().accept()


def _preload() -> None:
    """Import the optional event loop once, in the parent (the node's modules are imported
    with presence.node): forks start faster and share it."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        pass


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGTERM this worker when the parent dies (it drains like on a stop)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _rss(pid: int) -> str:
    """A process's resident set size, as a log line says it."""
    kib = proc_status(pid).get("VmRSS")
    return f"RSS {kib / 1024:.1f} MiB" if kib else "RSS unknown"


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _drain_pipe(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
