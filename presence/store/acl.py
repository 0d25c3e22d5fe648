"""Redis 7.0's ACL users: passwords, allowed commands (by name and category), key and
channel patterns, and the check `Server.run_command` makes for a restricted user.

A user with every command, every key and every channel is *unrestricted*: the check is
then one attribute test, so the default user costs nothing measurable.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from presence.store.aclcategories import CATEGORIES_OF
from presence.store.pubsub import glob_match

CATEGORIES = [
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
    "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
    "dangerous", "connection", "transaction", "scripting",
]  # fmt: skip
# Commands evaluating scripts: their keys follow the numkeys argument.
_NUMKEYS_AT_2 = frozenset(["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"])
# Redis's no-auth commands, which its ACL check lets through. Not every command flagged
# no-auth here: SHUTDOWN is (its handler answers NOAUTH itself) but a user needs it granted.
_UNCHECKED = frozenset(["auth", "hello", "quit", "reset"])
SUBCOMMAND_NAMES = frozenset(n for n in CATEGORIES_OF if "|" in n)  # "config|get", ...
CONTAINERS = frozenset(n.split("|")[0] for n in SUBCOMMAND_NAMES)


def in_category(category: str) -> list[str]:
    """The commands (`container|sub` for subcommands) in an ACL category, as ACL CAT lists."""
    return [name for name, cats in CATEGORIES_OF.items() if category in cats.split()]


def _every_command(commands: dict) -> set[str]:
    """Every name a rule can allow: plain commands, and containers' subcommands."""
    return {c.name for c in commands.values() if c.name not in CONTAINERS} | SUBCOMMAND_NAMES


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
            self._change_commands(low, set(in_category(category)), commands)
        elif rule[:1] in (b"+", b"-"):
            name = low[1:].decode(errors="replace")
            if name in CONTAINERS:
                names = {n for n in SUBCOMMAND_NAMES if n.startswith(name + "|")}
            elif name in SUBCOMMAND_NAMES or name.encode() in commands:
                names = {name}
            else:
                raise AclError("Unknown command or category name in ACL")
            self._change_commands(low, names, commands)
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
            self.all_commands, self.allowed = False, _every_command(commands)
        self.command_rules.append(rule)
        if allow:
            self.allowed |= names
        else:
            self.allowed -= names

    def check_password(self, password: bytes) -> bool:
        return self.enabled and (self.nopass or hash_password(password) in self.passwords)

    def may_run(self, name: str, argv: list[bytes]) -> bool:
        """Whether the user may run command `name` (for a container, argv[1]'s subcommand)."""
        if self.all_commands:
            return True
        if name not in CONTAINERS:
            return name in self.allowed
        if len(argv) < 2:
            return False
        path = name + "|" + argv[1].decode(errors="replace").lower()
        return path in self.allowed or path not in SUBCOMMAND_NAMES  # unknown: its own error

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


def denial(user: User, cmd, argv: list[bytes]) -> tuple[str, str] | None:
    """Why `user` may not run `argv`: ("command"|"key"|"channel", the object), or None."""
    name = cmd.name
    if name in _UNCHECKED:
        return None
    if not user.may_run(name, argv):
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


class AclLog:
    """ACL LOG: the latest refusals and failed AUTHs, newest first, at most `max_len`; a
    refusal like one logged in the last 60 seconds counts into it (Redis's grouping)."""

    GROUPING_SECONDS = 60.0

    def __init__(self, max_len: int = 128) -> None:
        self.max_len = max_len
        self.entries: list[dict] = []

    def record(
        self, reason: str, context: str, obj: str, username: bytes, client_info: str
    ) -> None:
        now = time.time()
        for i, entry in enumerate(self.entries):
            if (entry["reason"], entry["context"], entry["object"], entry["username"]) == (
                reason,
                context,
                obj,
                username,
            ) and now - entry["ctime"] <= self.GROUPING_SECONDS:
                entry["count"] += 1
                entry["ctime"], entry["client-info"] = now, client_info
                self.entries.insert(0, self.entries.pop(i))
                return
        self.entries.insert(0, {
            "count": 1, "reason": reason, "context": context, "object": obj,
            "username": username, "ctime": now, "client-info": client_info,
        })  # fmt: skip
        del self.entries[self.max_len :]


NO_ACL_FILE = (
    "ERR This Redis instance is not configured to use an ACL file. You may want to specify "
    "users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a "
    "Redis configuration file set) in order to store users in the Redis configuration."
)


class AclFileError(Exception):
    """An ACL file that cannot be loaded; the message is Redis's (every line's errors)."""


def parse_acl_file(path: str, commands: dict) -> dict[bytes, User]:
    """The users an ACL file describes (one `user <name> <rules...>` a line, as ACL LIST
    prints them), Redis 7.0's way: every line is checked and every error reported, and any
    error means no users (AclFileError). `default` is added (on, nopass, +@all) if absent."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise AclFileError(f"Error loading ACLs, opening file '{path}': {exc.strerror}") from None
    users: dict[bytes, User] = {}
    errors: list[str] = []
    for number, line in enumerate(data.split(b"\n"), 1):
        line = line.strip(b" \t\r\n")
        if not line:
            continue
        argv = line.split(b" ")
        if argv[0] != b"user" or len(argv) < 2:
            errors.append(
                f"{path}:{number} should start with user keyword followed by the username. "
            )
            continue
        name = argv[1]
        if b"\0" in name:
            shown = name.decode(errors="replace")
            errors.append(f"'{path}:{number}: username '{shown}' contains invalid characters. ")
            continue
        if name in users:
            shown = name.decode(errors="replace")
            errors.append(f"WARNING: Duplicate user '{shown}' found on line {number}. ")
            continue
        user = users[name] = User(name)
        reported = False
        for rule in argv[2:]:
            rule = rule.strip(b"\t\r\n")
            try:
                user.apply(rule, commands)
            except AclError as exc:
                if str(exc) == "Unknown command or category name in ACL":
                    shown = rule.decode(errors="replace")  # Redis shows every unknown name
                    errors.append(
                        f"{path}:{number}: Error in applying operation '{shown}': {exc}. "
                    )
                elif not reported:  # only the first other error: it may explain the rest
                    errors.append(f"{path}:{number}: {exc}. ")
                    reported = True
    if errors:
        raise AclFileError(
            "".join(errors) + "WARNING: ACL errors detected, no change to the previously "
            "active ACL rules was performed"
        )
    if b"default" not in users:
        users[b"default"] = default_user()
    return users
