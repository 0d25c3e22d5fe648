"""Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET."""

from __future__ import annotations

from presence.store import REDIS_VERSION, replies
from presence.store.commands import NO_REPLY, CommandError, command, db_by_index
from presence.store.commands.transaction import end_transaction
from presence.store.numbers import parse_int
from presence.store.resp import OK, PONG, Error, Status

# name       arity  flags
# ping         -1   fast pubsub
# echo          2   fast
# hello        -1   no-auth fast
# auth         -2   no-auth fast
# select        2   fast
# quit         -1   no-auth fast
# reset         1   no-auth fast


@command(
    "ping",
    -1,
    "fast",
    keys=(0, 0, 0),
    acl="connection",
    tips="request_policy:all_shards response_policy:all_succeeded",
)
def ping(client, argv):
    """PONG, or the argument; inside RESP2 subscribed mode a ["pong", msg] array."""
    if len(argv) > 2:
        raise CommandError(replies.wrong_arity("ping"))
    if client.protocol == 2 and client.subscribed:
        return [b"pong", argv[1] if len(argv) > 1 else b""]
    return argv[1] if len(argv) > 1 else PONG


@command("echo", 2, "fast loading stale", keys=(0, 0, 0), acl="connection")
def echo(client, argv):
    return argv[1]


@command(
    "hello", -1, "no-auth fast noscript loading stale allow-busy", keys=(0, 0, 0), acl="connection"
)
def hello(client, argv):
    """Switch protocol (2 or 3), optionally AUTH and SETNAME; reply with server facts."""
    protocol = client.protocol
    if len(argv) > 1:
        try:
            protocol = parse_int(argv[1])
        except CommandError:
            raise CommandError("ERR Protocol version is not an integer or out of range") from None
        if protocol not in (2, 3):
            raise CommandError(replies.NOPROTO)
    i = 2
    name = None
    while i < len(argv):
        option = argv[i].lower()
        if option == b"auth" and i + 2 < len(argv):
            error = _authenticate(client, argv[i + 1], argv[i + 2])
            if error:
                return error
            i += 3
        elif option == b"setname" and i + 1 < len(argv):
            name = argv[i + 1]
            if b" " in name or b"\n" in name:
                raise CommandError(
                    "ERR Client names cannot contain spaces, newlines or special characters."
                )
            i += 2
        else:
            raise CommandError(
                f"ERR Syntax error in HELLO option '{argv[i].decode(errors='replace')}'"
            )
    if not client.authenticated:
        raise CommandError(replies.HELLO_NOAUTH)
    if name is not None:
        client.name = name
    client.protocol = protocol
    return {
        b"server": b"redis",
        b"version": REDIS_VERSION.encode(),
        b"proto": protocol,
        b"id": client.id,
        b"mode": b"standalone",
        b"role": b"master",
        b"modules": [],
    }


def _authenticate(client, username: bytes, password: bytes) -> Error | None:
    """Check credentials against the ACL users; None on success (the connection now runs
    as that user), else the error reply. requirepass is the default user's password."""
    user = client.server.acl_users.get(username)
    if user is None or not user.check_password(password):
        client.server.acl_log_record("auth", "toplevel", "AUTH", username, client)
        return replies.WRONGPASS
    client.user = user
    client.authenticated = True
    return None


@command(
    "auth", -2, "no-auth fast noscript loading stale allow-busy", keys=(0, 0, 0), acl="connection"
)
def auth(client, argv):
    if len(argv) > 3:
        raise CommandError(replies.SYNTAX)
    if len(argv) == 2:
        if client.server.acl_users[b"default"].nopass:
            raise CommandError(replies.AUTH_NOT_CONFIGURED)
        username, password = b"default", argv[1]
    else:
        _, username, password = argv
    return _authenticate(client, username, password) or OK


@command("select", 2, "fast loading stale", keys=(0, 0, 0), acl="connection")
def select(client, argv):
    client.db = db_by_index(client, argv[1])
    return OK


@command(
    "quit", -1, "no-auth fast noscript loading stale allow-busy", keys=(0, 0, 0), acl="connection"
)
def quit_(client, argv):
    """OK, then the connection closes once the reply is written."""
    client.send(b"+OK\r\n")
    client.closing = True
    return NO_REPLY


@command(
    "reset", 1, "no-auth fast noscript loading stale allow-busy", keys=(0, 0, 0), acl="connection"
)
def reset(client, argv):
    """Back to a fresh connection's state: db 0, RESP2, no MULTI, WATCH or subscriptions."""
    end_transaction(client)
    client.server.hub.drop_client(client)
    client.db = client.server.keyspace.dbs[0]
    client.protocol = 2
    client.name = b""
    client.user = default = client.server.acl_users[b"default"]
    client.authenticated = default.enabled and default.nopass
    return Status("RESET")
