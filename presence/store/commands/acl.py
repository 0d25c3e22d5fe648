"""ACL: users (SETUSER, GETUSER, DELUSER, USERS, LIST, WHOAMI), CAT, DRYRUN, GENPASS, LOG,
LOAD, SAVE (the aclfile).

The model and the check commands go through live in presence/store/acl.py.
"""

from __future__ import annotations

import logging
import time

from presence.store import replies
from presence.store.acl import (
    DRYRUN,
    NO_ACL_FILE,
    AclError,
    AclFileError,
    User,
    denial,
    genpass,
    in_category,
)
from presence.store.commands import (
    CATEGORIES,
    COMMANDS,
    CommandError,
    command,
    run_subcommand,
    subcommand,
)
from presence.store.commands.server import help_for
from presence.store.numbers import parse_int
from presence.store.resp import OK, Double, Set

log = logging.getLogger("presence.store")

# name  arity  flags
# acl    -2    (container; its subcommands are admin but WHOAMI, CAT, GENPASS)


@command("acl", -2, "", keys=(0, 0, 0))
def acl(client, argv):
    """ACL SETUSER | GETUSER | DELUSER | USERS | LIST | WHOAMI | CAT | DRYRUN | GENPASS | HELP."""
    return run_subcommand("acl", client, argv)


@subcommand("acl", "setuser", -3, "admin noscript loading stale")
def acl_setuser(client, argv):
    """Create or change a user, rules applied left to right; a bad rule changes nothing."""
    name = argv[2]
    if b" " in name or b"\0" in name:
        raise CommandError("ERR Usernames can't contain spaces or null characters")
    users = client.server.acl_users
    user = (users.get(name) or User(name)).copy()
    for rule in argv[3:]:
        try:
            user.apply(rule)
        except AclError as exc:
            shown = rule.decode(errors="replace")
            raise CommandError(f"ERR Error in ACL SETUSER modifier '{shown}': {exc}") from None
    if name in users:
        users[name].__dict__.update(user.__dict__)  # connected clients see the change
    else:
        users[name] = user
    return OK


@subcommand("acl", "getuser", 3, "admin noscript loading stale")
def acl_getuser(client, argv):
    user = client.server.acl_users.get(argv[2])
    if user is None:
        return None
    if user.all_channels:
        channels = b"&*"
    else:
        channels = b" ".join(b"&" + p for p in user.channel_patterns)
    return {
        b"flags": Set(user.flags()),
        b"passwords": [d.encode() for d in user.passwords],
        b"commands": b" ".join(user.describe_commands()),
        b"keys": b" ".join(user.describe_keys()),
        b"channels": channels,
        b"selectors": [],
    }


@subcommand("acl", "deluser", -3, "admin noscript loading stale")
def acl_deluser(client, argv):
    """Delete users (not `default`); their connections are closed. Replies how many went."""
    server = client.server
    if b"default" in argv[2:]:
        raise CommandError("ERR The 'default' user cannot be removed")
    deleted = 0
    for name in dict.fromkeys(argv[2:]):
        user = server.acl_users.pop(name, None)
        if user is None:
            continue
        deleted += 1
        for other in list(server.clients.values()):
            if other.user is user and other is not client:
                other.close()
            elif other.user is user:
                other.closing = True  # after this reply, as Redis does
    return deleted


@subcommand("acl", "users", 2, "admin noscript loading stale")
def acl_users(client, argv):
    return sorted(client.server.acl_users)


@subcommand("acl", "list", 2, "admin noscript loading stale")
def acl_list(client, argv):
    return [
        b" ".join([b"user", name, *user.describe()])
        for name, user in sorted(client.server.acl_users.items())
    ]


@subcommand("acl", "whoami", 2, "noscript loading stale")
def acl_whoami(client, argv):
    return client.user.name


@subcommand("acl", "cat", -2, "noscript loading stale")
def acl_cat(client, argv):
    """The categories, or the commands of one (those this store has)."""
    if len(argv) > 3:
        raise CommandError(replies.wrong_arity("acl|cat"))
    if len(argv) == 2:
        return [c.encode() for c in CATEGORIES]
    category = argv[2].lower().decode(errors="replace")
    if category not in CATEGORIES:
        raise CommandError(f"ERR Unknown category '{argv[2].decode(errors='replace')}'")
    return [name.encode() for name in in_category(category)]


@subcommand("acl", "dryrun", -4, "admin noscript loading stale")
def acl_dryrun(client, argv):
    """OK if the user may run the command, else the reason (a bulk string, as Redis)."""
    user = client.server.acl_users.get(argv[2])
    if user is None:
        raise CommandError(f"ERR User '{argv[2].decode(errors='replace')}' not found")
    cmd = COMMANDS.get(argv[3].lower())
    if cmd is None:
        raise CommandError(f"ERR Command '{argv[3].decode(errors='replace')}' not found")
    rest = argv[3:]
    if (cmd.arity > 0 and len(rest) != cmd.arity) or len(rest) < -cmd.arity:
        raise CommandError(replies.wrong_arity(cmd.name))
    found = denial(user, cmd, rest)
    if found is None:
        return OK
    return DRYRUN[found[0]].format(found[1]).encode()


@subcommand("acl", "genpass", -2, "noscript loading stale")
def acl_genpass(client, argv):
    bits = 256
    if len(argv) > 3:
        raise CommandError(replies.wrong_arity("acl|genpass"))
    if len(argv) == 3:
        bits = parse_int(argv[2])
        if not 0 < bits <= 4096:
            raise CommandError(
                "ERR ACL GENPASS argument must be the number of bits for the output "
                "password, a positive number up to 4096"
            )
    return genpass(bits)


@subcommand("acl", "load", 2, "admin noscript loading stale")
def acl_load(client, argv):
    """Replace the users by the aclfile's; any error in the file changes nothing."""
    server = client.server
    if not server.config["aclfile"]:
        raise CommandError(NO_ACL_FILE)
    try:
        server.load_acl_file(client)
    except AclFileError as exc:
        raise CommandError(f"ERR {exc}") from None
    return OK


@subcommand("acl", "save", 2, "admin noscript loading stale")
def acl_save(client, argv):
    """Write the users to the aclfile, one `user` line each as ACL LIST shows them."""
    server = client.server
    if not server.config["aclfile"]:
        raise CommandError(NO_ACL_FILE)
    try:
        server.save_acl_file()
    except OSError as exc:
        log.warning("ACL SAVE: cannot write %s: %s", server.config["aclfile"], exc)
        raise CommandError(
            "ERR There was an error trying to save the ACLs. Please check the server logs "
            "for more information"
        ) from None
    return OK


@subcommand("acl", "log", -2, "admin noscript loading stale")
def acl_log(client, argv):
    """ACL LOG [count | RESET]: the latest refusals and failed AUTHs, newest first."""
    log = client.server.acl_log
    if len(argv) > 3:
        raise CommandError(replies.wrong_arity("acl|log"))
    count = len(log.entries)
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            log.entries.clear()
            return OK
        count = max(parse_int(argv[2]), 0)  # a negative count lists nothing, as in Redis
    now = time.time()
    return [
        {
            b"count": e["count"],
            b"reason": e["reason"].encode(),
            b"context": e["context"].encode(),
            b"object": e["object"].encode(),
            b"username": e["username"],
            b"age-seconds": Double(round(now - e["ctime"], 3)),
            b"client-info": e["client-info"].encode(),
        }
        for e in log.entries[:count]
    ]


subcommand("acl", "help", 2, "loading stale")(
    help_for(
        "acl",
        [
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    )
)
