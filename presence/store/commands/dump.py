"""DUMP and RESTORE: a key's value as Redis's serialized payload, and a key from one.

The payload format, and which payloads load, is presence/store/rdb.py's. RESTORE checks in
Redis's order (options, existing key, TTL, footer, payload) and changes nothing before the
payload has been read whole; a deadline already past stores nothing (and deletes what
REPLACE replaced). The store tracks neither idle time nor access frequency, so IDLETIME and
FREQ are checked and then have no effect.
"""

from __future__ import annotations

from presence.store import notify as ev
from presence.store.blocking import serve_ready
from presence.store.commands import CommandError, command
from presence.store.commands.generic import read_key
from presence.store.numbers import parse_int
from presence.store.rdb import dump_payload, load_payload, verify_payload
from presence.store.rdbcodec import BadData
from presence.store.replies import BAD_DUMP_DATA, BAD_DUMP_PAYLOAD, BUSYKEY, SYNTAX
from presence.store.resp import OK, Error

# name      arity  flags
# dump        2    readonly
# restore    -4    write denyoom


@command("dump", 2, "readonly", acl="keyspace", tips="nondeterministic_output")
def dump(client, argv):
    """DUMP key: the value's serialized payload, or nil."""
    value = read_key(client.db, argv[1])
    if value is None:
        return None
    return dump_payload(value, client.server.config)


@command(
    "restore",
    -4,
    "write denyoom",
    specs=(("OW update", 1, 0, 1),),
    acl="keyspace dangerous",
)
def restore(client, argv):
    """RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]: OK, or Redis's error."""
    replace, absttl = _restore_options(argv)
    db, key = client.db, argv[1]
    if not replace and db.get(key) is not None:
        raise CommandError(BUSYKEY)
    ttl = parse_int(argv[2])
    if ttl < 0:
        raise CommandError(Error("ERR Invalid TTL value, must be >= 0"))
    payload = argv[3]
    if not verify_payload(payload):
        raise CommandError(BAD_DUMP_PAYLOAD)
    try:
        value = load_payload(payload, client.server.config)
    except BadData:
        raise CommandError(BAD_DUMP_DATA) from None
    deleted = replace and db.delete(key)
    now = db.keyspace.now
    if ttl and not absttl:
        ttl += now
    if ttl and ttl <= now:
        if deleted:
            db.notify(ev.GENERIC, b"del", key)
        return OK
    db.store(key, value)
    if ttl:
        db.set_deadline(key, ttl)
    db.notify(ev.GENERIC, b"restore", key)
    if db.blocked:
        serve_ready(client, db, key)
    return OK


def _restore_options(argv: list[bytes]) -> tuple[bool, bool]:
    """REPLACE, ABSTTL, and IDLETIME or FREQ (not both), with Redis's errors."""
    replace = absttl = False
    idle = freq = -1
    i = 4
    while i < len(argv):
        option, more = argv[i].lower(), len(argv) - i - 1
        if option == b"replace":
            replace = True
        elif option == b"absttl":
            absttl = True
        elif option == b"idletime" and more >= 1 and freq == -1:
            idle = parse_int(argv[i + 1])
            if idle < 0:
                raise CommandError(Error("ERR Invalid IDLETIME value, must be >= 0"))
            i += 1
        elif option == b"freq" and more >= 1 and idle == -1:
            freq = parse_int(argv[i + 1])
            if not 0 <= freq <= 255:
                raise CommandError(Error("ERR Invalid FREQ value, must be >= 0 and <= 255"))
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    return replace, absttl
