"""Blocked clients: BLPOP and friends park their client until a push serves it or its
timeout passes.

A blocked client's waiter sits in a FIFO per key (`Database.blocked`, like Redis's
db->blocking_keys), and `client.blocked` points at it, which stops the server from
running the client's further commands (they stay buffered in its parser). A push calls
`serve_ready(client, db, key)`, which hands elements to waiters in the order they
blocked, as Redis does, and wakes waiters on lists a served BLMOVE fills. Answering a
waiter goes through `client.unblock(reply)`, which then runs the buffered commands.
Blocking sorted-set pops (BZPOPMIN, BZMPOP in commands/zset.py) park here too: each
waiter names the type (`kind`) of value that serves it. A waiter of kind None (XREAD,
XREADGROUP in commands/stream.py) is offered whatever the key holds, even nothing, and
answers KEEP to stay blocked.

The queue of keys made ready is per server (`Server.blocking`); waiters live in their
database (`Database.blocked`).
"""

from __future__ import annotations

import asyncio
from collections import deque

from presence.store.commands import NO_REPLY
from presence.store.resp import Error

KEEP = object()  # a kind-None waiter's answer: not served, stay blocked


class _Waiter:
    """One blocked command: its client, keys, timer and how to serve it from a ready list."""

    __slots__ = ("client", "db", "keys", "kind", "serve", "timeout_reply", "timer")

    def __init__(self, client, keys, timeout_reply, serve, kind) -> None:
        self.client = client
        self.kind = kind
        self.db = client.db
        self.keys = list(dict.fromkeys(keys))
        self.timeout_reply = timeout_reply
        self.serve = serve
        self.timer: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        """Forget this waiter (its client disconnected)."""
        _forget(self)


class Blocking:
    """One server's queue of keys made ready (non-empty) by the command being run."""

    __slots__ = ("ready", "serving", "held")

    def __init__(self) -> None:
        self.ready: deque = deque()  # (db, key) pairs
        self.serving = False  # serve_all is running: a served BLMOVE's push queues its key
        self.held = False  # a script is busy: the keys it fills serve their waiters after it

    def hold(self, held: bool) -> None:
        """While a busy script runs, hold back serving the keys it fills (Redis serves them after)."""
        self.held = held
        if not held and self.ready:
            asyncio.get_running_loop().call_soon(self.serve_all)

    def serve_all(self) -> None:
        if self.serving or self.held:
            return  # a served BLMOVE pushed: the outer loop serves that key next
        self.serving = True
        try:
            while self.ready:
                _serve_key(*self.ready.popleft())
        finally:
            self.serving = False


def may_block(client, name: str) -> bool:
    """False inside MULTI/EXEC, where Redis answers at once (EXEC is then the top-level command)."""
    return client.last_command == name


def block(client, keys, timeout: float, timeout_reply, serve, kind: type | None = deque) -> object:
    """Park `client` on `keys` until `serve(db, key, value)` answers it or `timeout` passes.

    Only a key holding a non-empty value of `kind` (deque, ZSet) serves the waiter; with
    kind None, `serve` sees every value (None too) and returns KEEP when it is not served.
    """
    waiter = _Waiter(client, keys, timeout_reply, serve, kind)
    for key in waiter.keys:
        waiter.db.blocked.setdefault(key, deque()).append(waiter)
    client.blocked = waiter
    if timeout:
        waiter.timer = asyncio.get_running_loop().call_later(timeout, _time_out, waiter)
    return NO_REPLY


def serve_later(server, db, key: bytes) -> None:
    """Serve `key`'s waiters after the running command (a stream key deleted or replaced:
    its XREADGROUP waiters get an error, as in Redis 7.0)."""
    blocking = server.blocking
    blocking.ready.append((db, key))
    asyncio.get_running_loop().call_soon(blocking.serve_all)


def serve_ready(client, db, key: bytes) -> None:
    """Answer clients blocked on `key`, now that `client`'s command gave it a value (list, zset).

    Inside EXEC they are answered after the transaction, so it stays atomic, as in Redis.
    """
    if not db.blocked:
        return
    blocking = client.server.blocking
    blocking.ready.append((db, key))
    if client.last_command == "exec":
        asyncio.get_running_loop().call_soon(blocking.serve_all)
    else:
        blocking.serve_all()


def _serve_key(db, key: bytes) -> None:
    """Serve the key's waiters in blocking order; those waiting for another type stay blocked."""
    for waiter in list(db.blocked.get(key, ())):
        value = db.get(key)
        if waiter.client.blocked is not waiter:
            continue
        if waiter.kind is None:
            if waiter.client.closing:
                _forget(waiter)
            else:
                reply = waiter.serve(db, key, value)
                if reply is not KEEP:
                    _answer(waiter, reply)
            continue
        if not value or type(value) is not waiter.kind:
            continue
        if waiter.client.closing:
            _forget(waiter)
            continue
        _answer(waiter, waiter.serve(db, key, value))


def release(client, error: bool) -> bool:
    """CLIENT UNBLOCK: answer `client`'s blocking command now; False if it is not blocked here.

    The reply is the command's timeout reply, or with `error` Redis's UNBLOCKED error.
    """
    waiter = client.blocked
    if not isinstance(waiter, _Waiter):
        return False
    _answer(
        waiter,
        Error("UNBLOCKED client unblocked via CLIENT UNBLOCK") if error else waiter.timeout_reply,
    )
    return True


def _time_out(waiter: _Waiter) -> None:
    waiter.timer = None
    if waiter.client.blocked is waiter:
        _answer(waiter, waiter.timeout_reply)


def _forget(waiter: _Waiter) -> None:
    """Remove `waiter` from every queue and cancel its timer."""
    blocked = waiter.db.blocked
    for key in waiter.keys:
        queue = blocked.get(key)
        if queue is not None:
            try:
                queue.remove(waiter)
            except ValueError:
                pass
            if not queue:
                del blocked[key]
    if waiter.timer is not None:
        waiter.timer.cancel()
        waiter.timer = None
    if waiter.client.blocked is waiter:
        waiter.client.blocked = None


def _answer(waiter: _Waiter, reply) -> None:
    """Send the blocked command's reply; the client then runs its buffered commands."""
    _forget(waiter)
    if not waiter.client.closing:
        waiter.client.unblock(reply)
