"""Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.

The dispatcher queues commands while `client.multi` is a list; it refuses (and marks
the transaction as failed) a command with a wrong name or arity, so EXEC answers
EXECABORT, as Redis does. A WATCHed key touched by anyone (including expiry) makes
EXEC return a nil array.
"""

from __future__ import annotations

from presence.store import replies
from presence.store.commands import NO_REPLY, CommandError, command
from presence.store.resp import NIL_ARRAY, OK, encode

# name      arity  flags
# multi       1    fast
# exec        1    skip-slowlog
# discard     1    fast
# watch      -2    fast
# unwatch     1    fast


def unwatch_all(client) -> None:
    """Forget every key `client` WATCHes."""
    for db, key in client.watching:
        watchers = db.watchers.get(key)
        if watchers is not None:
            watchers.discard(client)
            if not watchers:
                del db.watchers[key]
    client.watching.clear()
    client.watch_dirty = False


def end_transaction(client) -> None:
    """Leave MULTI (if in it) and drop every WATCH: after EXEC, DISCARD, an aborted EXEC, RESET."""
    client.multi = None
    client.multi_error = False
    unwatch_all(client)


@command("multi", 1, "fast noscript loading stale allow-busy", keys=(0, 0, 0), acl="transaction")
def multi(client, argv):
    if client.multi is not None:
        raise CommandError(replies.NESTED_MULTI)
    client.multi = []
    client.multi_error = False
    client.multi_rules = (client.user, client.user.generation)
    return OK


@command("exec", 1, "skip-slowlog noscript loading stale", keys=(0, 0, 0), acl="transaction")
def exec_(client, argv):
    """Run the queued commands atomically and reply with all their replies.

    The reply is written as it is produced, like Redis does: an array header, then each
    command's reply, so a command that writes its own replies (SUBSCRIBE) fits in.
    """
    if client.multi is None:
        raise CommandError(replies.EXEC_WITHOUT_MULTI)
    queued, failed, dirty = (
        client.multi,
        client.multi_error,
        client.watch_dirty or _expired_since_watch(client),
    )
    end_transaction(client)
    if failed:
        raise CommandError(replies.EXECABORT)
    if dirty:
        return NIL_ARRAY
    call = client.server.call
    client.send(b"*%d\r\n" % len(queued))
    client.acl_checked_under = client.multi_rules  # each was checked when queued
    try:
        for cmd, argv in queued:
            reply = call(client, cmd, argv)
            if reply is not NO_REPLY:
                client.send(encode(reply, client.protocol))
    finally:
        client.acl_checked_under = None
    return NO_REPLY


def _expired_since_watch(client) -> bool:
    """Whether a WATCHed key passed its deadline after WATCH (not yet deleted: lazy expiry).

    WATCH expires a key that is already due, so any due key found here expired since.
    """
    now = client.server.keyspace.now
    for db, key in client.watching:
        deadline = db.expires.get(key)
        if deadline is not None and deadline <= now:
            return True
    return False


@command("discard", 1, "fast noscript loading stale allow-busy", keys=(0, 0, 0), acl="transaction")
def discard(client, argv):
    if client.multi is None:
        raise CommandError(replies.DISCARD_WITHOUT_MULTI)
    end_transaction(client)
    return OK


@command(
    "watch",
    -2,
    "fast noscript loading stale allow-busy",
    keys=(1, -1, 1),
    specs=(("RO", 1, -1, 1),),
    acl="transaction",
)
def watch(client, argv):
    if client.multi is not None:
        raise CommandError(replies.WATCH_IN_MULTI)
    db = client.db
    for key in argv[1:]:
        db.get(key)  # expire it now if due, so a later expiry is not mistaken for a change
        if (db, key) not in client.watching:
            client.watching.add((db, key))
            db.watchers.setdefault(key, set()).add(client)
    return OK


@command("unwatch", 1, "fast noscript loading stale allow-busy", keys=(0, 0, 0), acl="transaction")
def unwatch(client, argv):
    unwatch_all(client)
    return OK
