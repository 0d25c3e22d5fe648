"""Redis 7.0's ACL users: passwords, allowed commands (by name and category), key and
channel patterns, and the check `Server.run_command` makes for a restricted user.

A user with every command, every key and every channel is *unrestricted*: the check is
then one attribute test, so the default user costs nothing measurable.
"""

from __future__ import annotations

import hashlib
import secrets

from presence.store.pubsub import glob_match

# Command groups (the modules in presence/store/commands) -> Redis's category.
_GROUP_CATEGORY = {
    "generic": "keyspace",
    "string": "string",
    "hash": "hash",
    "list": "list",
    "set": "set",
    "zset": "sortedset",
    "bitmap": "bitmap",
    "pubsub": "pubsub",
    "transaction": "transaction",
    "scripting": "scripting",
    "connection": "connection",
}
CATEGORIES = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
]
# Commands evaluating scripts: their keys follow the numkeys argument.
_NUMKEYS_AT_2 = frozenset(["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"])
_DANGEROUS = frozenset(
    [
        "flushall",
        "flushdb",
        "keys",
        "sort",
        "sort_ro",
        "debug",
        "config",
        "save",
        "bgsave",
        "bgrewriteaof",
        "shutdown",
        "monitor",
        "client",
        "slowlog",
        "latency",
        "info",
        "acl",
        "swapdb",
        "role",
        "replicaof",
        "slaveof",
        "sync",
        "psync",
        "migrate",
        "restore",
        "lastsave",
        "failover",
    ]
)


def categories_of(cmd) -> set[str]:
    """The ACL categories of a registered command: its group's, and those its flags imply."""
    found = set()
    if cmd.group in _GROUP_CATEGORY:
        found.add(_GROUP_CATEGORY[cmd.group])
    if "write" in cmd.flags:
        found.add("write")
    if "readonly" in cmd.flags:
        found.add("read")
    found.add("fast" if "fast" in cmd.flags else "slow")
    if "blocking" in cmd.flags:
        found.add("blocking")
    if "admin" in cmd.flags:
        found.update(("admin", "dangerous"))
    if cmd.name in _DANGEROUS:
        found.add("dangerous")
    return found


class AclError(Exception):
    """A rule ACL SETUSER cannot apply (its message is Redis's reason)."""


def hash_password(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


class User:
    """One ACL user. `unrestricted` is kept up to date by `apply` for the fast path."""

    def __init__(self, name: bytes) -> None:
        self.name = name
        self.enabled = False
        self.nopass = False
        self.payload_flag = b""  # b"sanitize-payload" / b"skip-sanitize-payload" once set
        self.passwords: list[str] = []  # sha256 hex, in the order added
        self.all_commands = False
        self.allowed: set[str] = set()  # command names, when not all_commands
        self.all_commands_base = False  # the last allcommands/nocommands (ACL LIST's start)
        self.command_rules: list[bytes] = []  # +cmd/-@cat rules since then, as ACL LIST shows
        self.all_keys = False
        self.key_patterns: list[bytes] = []
        self.all_channels = False
        self.channel_patterns: list[bytes] = []
        self.unrestricted = False

    def apply(self, rule: bytes, commands: dict) -> None:
        """Apply one ACL SETUSER rule; AclError (nothing changed) if it is not valid."""
        low = rule.lower()
        if low == b"on":
            self.enabled = True
        elif low == b"off":
            self.enabled = False
        elif low == b"nopass":
            self.nopass, self.passwords = True, []
        elif low == b"resetpass":
            self.nopass, self.passwords = False, []
        elif rule.startswith(b">"):
            self._add_password(hash_password(rule[1:]))
        elif rule.startswith(b"#"):
            digest = rule[1:].decode(errors="replace")
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise AclError(
                    "The password hash must be exactly 64 characters and contain "
                    "only lowercase hexadecimal characters"
                )
            self._add_password(digest)
        elif rule.startswith((b"<", b"!")):
            digest = hash_password(rule[1:]) if rule[:1] == b"<" else rule[1:].decode()
            if digest not in self.passwords:
                raise AclError("The password you are trying to remove from the user does not exist")
            self.passwords.remove(digest)
        elif low in (b"allcommands", b"+@all"):
            self.all_commands, self.allowed = True, set()
            self.all_commands_base, self.command_rules = True, []
        elif low in (b"nocommands", b"-@all"):
            self.all_commands, self.allowed = False, set()
            self.all_commands_base, self.command_rules = False, []
        elif rule[:2] in (b"+@", b"-@"):
            category = low[2:].decode(errors="replace")
            if category not in CATEGORIES:
                raise AclError("Unknown command or category name in ACL")
            names = {c.name for c in commands.values() if category in categories_of(c)}
            self._change_commands(low, names, commands)
        elif rule[:1] in (b"+", b"-"):
            name = low[1:].decode(errors="replace")
            if name.encode() not in commands:
                raise AclError("Unknown command or category name in ACL")
            self._change_commands(low, {name}, commands)
        elif low in (b"allkeys", b"~*"):
            self.all_keys, self.key_patterns = True, []
        elif low == b"resetkeys":
            self.all_keys, self.key_patterns = False, []
        elif rule.startswith(b"~"):
            if self.all_keys:
                raise AclError(
                    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid "
                    "and does not have any effect. Try 'resetkeys' to start with an empty "
                    "list of patterns"
                )
            self.key_patterns.append(rule[1:])
        elif low in (b"allchannels", b"&*"):
            self.all_channels, self.channel_patterns = True, []
        elif low == b"resetchannels":
            self.all_channels, self.channel_patterns = False, []
        elif rule.startswith(b"&"):
            if self.all_channels:
                raise AclError(
                    "Adding a pattern after the * pattern (or the 'allchannels' flag) is not "
                    "valid and does not have any effect. Try 'resetchannels' to start with an "
                    "empty list of channels"
                )
            self.channel_patterns.append(rule[1:])
        elif low in (b"sanitize-payload", b"skip-sanitize-payload"):
            self.payload_flag = low
        elif low == b"reset":
            self.__init__(self.name)  # type: ignore[misc]
            self.payload_flag = b"sanitize-payload"
        else:
            raise AclError("Syntax error")
        self.unrestricted = self.all_commands and self.all_keys and self.all_channels

    def _add_password(self, digest: str) -> None:
        if digest not in self.passwords:
            self.passwords.append(digest)
        self.nopass = False

    def _change_commands(self, rule: bytes, names: set[str], commands: dict) -> None:
        allow = rule[:1] == b"+"
        if self.all_commands:
            if allow:
                return
            self.all_commands, self.allowed = False, {c.name for c in commands.values()}
        self.command_rules.append(rule)
        if allow:
            self.allowed |= names
        else:
            self.allowed -= names

    def check_password(self, password: bytes) -> bool:
        return self.enabled and (self.nopass or hash_password(password) in self.passwords)

    def may_run(self, name: str) -> bool:
        return self.all_commands or name in self.allowed

    def may_access_key(self, key: bytes) -> bool:
        return self.all_keys or any(glob_match(p, key) for p in self.key_patterns)

    def may_access_channel(self, channel: bytes, literal: bool = False) -> bool:
        """Whether a channel (or, `literal`, a PSUBSCRIBE pattern as written) is allowed."""
        if self.all_channels:
            return True
        if literal:
            return channel in self.channel_patterns
        return any(glob_match(p, channel) for p in self.channel_patterns)

    def flags(self) -> list[bytes]:
        """ACL GETUSER's flags: on/off, nopass, the payload sanitizing flag."""
        words = [b"on" if self.enabled else b"off"]
        if self.nopass:
            words.append(b"nopass")
        if self.payload_flag:
            words.append(self.payload_flag)
        return words

    def describe(self) -> list[bytes]:
        """The user's rules, as ACL LIST shows them (flags, passwords, keys, channels,
        commands)."""
        words = self.flags()
        words += [b"#" + d.encode() for d in self.passwords]
        if self.all_keys:
            words.append(b"~*")
        else:
            words += [b"~" + p for p in self.key_patterns]
        if self.all_channels:
            words.append(b"&*")
        else:
            words.append(b"resetchannels")
            words += [b"&" + p for p in self.channel_patterns]
        words.append(b"+@all" if self.all_commands_base else b"-@all")
        words += self.command_rules
        return words


def default_user() -> User:
    """The `default` user of a fresh server: on, nopass, everything allowed."""
    user = User(b"default")
    for rule in (b"on", b"nopass", b"allkeys", b"allchannels", b"allcommands"):
        user.apply(rule, {})
    return user


def genpass(bits: int = 256) -> bytes:
    """ACL GENPASS: `bits` random bits as hex (rounded up to a multiple of 4)."""
    return secrets.token_hex((bits + 7) // 8)[: (bits + 3) // 4].encode()


NOPERM = {
    "command": "NOPERM this user has no permissions to run the '{}' command",
    "key": "NOPERM this user has no permissions to access one of the keys used as arguments",
    "channel": (
        "NOPERM this user has no permissions to access one of the channels used as arguments"
    ),
}
DRYRUN = {
    "command": "This user has no permissions to run the '{}' command",
    "key": "This user has no permissions to access the '{}' key",
    "channel": "This user has no permissions to access the '{}' channel",
}
_SUBSCRIBE = frozenset(["subscribe", "ssubscribe", "publish", "spublish"])
CONTAINERS = frozenset(["config", "client", "acl", "command", "object", "script", "function"])


def denial(user: User, cmd, argv: list[bytes]) -> tuple[str, str] | None:
    """Why `user` may not run `argv`: ("command"|"key"|"channel", the object), or None."""
    name = cmd.name
    if "no-auth" in cmd.flags:
        return None
    if not user.may_run(name):
        shown = name
        if len(argv) > 1 and name in CONTAINERS:
            shown += "|" + argv[1].decode(errors="replace").lower()
        return "command", shown
    if not user.all_keys:
        for key in keys_of(cmd, argv):
            if not user.may_access_key(key):
                return "key", key.decode(errors="replace")
    if not user.all_channels:
        literal = name == "psubscribe"
        if name in _SUBSCRIBE or literal:
            channels = argv[1:2] if name.endswith("publish") else argv[1:]
            for channel in channels:
                if not user.may_access_channel(channel, literal):
                    return "channel", channel.decode(errors="replace")
    return None


def refusal(user: User, cmd, argv: list[bytes]) -> str | None:
    """Redis's NOPERM error for `user` running `argv`, or None if it may."""
    found = denial(user, cmd, argv)
    if found is None:
        return None
    return NOPERM[found[0]].format(found[1])


def keys_of(cmd, argv: list[bytes]) -> list[bytes]:
    """The key arguments of `argv` by the registry's key positions (scripts: by numkeys)."""
    if cmd.name in _NUMKEYS_AT_2 and len(argv) > 2:
        try:
            count = int(argv[2])
        except ValueError:
            return []
        return argv[3 : 3 + max(count, 0)]
    if cmd.first_key <= 0 or cmd.not_key:
        return []
    last = cmd.last_key if cmd.last_key >= 0 else len(argv) + cmd.last_key
    return argv[cmd.first_key : min(last, len(argv) - 1) + 1 : cmd.step]


_IN_SCRIPT = {
    NOPERM["key"]: "ERR The user executing the script can't access at least one of the keys "
    "mentioned in the command arguments",
    NOPERM["channel"]: "ERR The user executing the script can't publish to the channel "
    "mentioned in the command",
}


def in_script(error: str) -> str:
    """The error redis.call raises for a NOPERM refusal (Redis's scriptVerifyACL wording)."""
    if error.startswith("NOPERM this user has no permissions to run"):
        return "ERR The user executing the script can't run this command or subcommand"
    return _IN_SCRIPT.get(error, error)
