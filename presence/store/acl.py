"""Redis 7.0's ACL users: passwords, allowed commands (by name and category), key and
channel patterns, and the check `Server.run_command` makes for a restricted user.

Commands are allowed as Redis allows them: one bit per command, container and subcommand
of the registry (`+config` sets the container's and every subcommand's), a category rule
sets the bits of its members, and ACL LIST / GETUSER describe the bits the way Redis 7.0
rebuilds them (ACLDescribeSelectorCommandRules), not the rules as given. Key patterns
carry read/write permissions (`~`, `%R~`, `%W~`), checked against the flags of the key
specs (presence/store/commands: `find_keys`).

A user with every command, every key and every channel is *unrestricted*: the check is
then one attribute test, so the default user costs nothing measurable.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

from presence.store.commands import CATEGORIES, COMMANDS, SUBCOMMANDS, find_keys, has_keys
from presence.store.pubsub import glob_matcher
from presence.store.redisonly import REDIS_ONLY

# Redis's no-auth commands, which its ACL check lets through. Not every command flagged
# no-auth here: SHUTDOWN is (its handler answers NOAUTH itself) but a user needs it granted.
_UNCHECKED = frozenset(["auth", "hello", "quit", "reset"])
READ, WRITE = 1, 2  # a key pattern's permissions (Redis's ACL_READ/WRITE_PERMISSION)
_UNKNOWN = "Unknown command or category name in ACL"


@dataclass(slots=True, frozen=True)
class RedisOnly:
    """A Redis 7.0 command the store does not have: a name and categories for ACL's bits."""

    name: str
    categories: tuple


_REDIS_ONLY = {name: RedisOnly(name, tuple(cats.split())) for name, cats in REDIS_ONLY.items()}
_REDIS_ONLY_SUBS: dict[str, list[RedisOnly]] = {}
for _entry in _REDIS_ONLY.values():
    if "|" in _entry.name:
        _REDIS_ONLY_SUBS.setdefault(_entry.name.split("|")[0], []).append(_entry)


def registered_commands() -> Iterator:
    """Every command of the registry, each container followed by its subcommands."""
    for cmd in COMMANDS.values():
        yield cmd
        yield from SUBCOMMANDS.get(cmd.name, {}).values()


def every_command() -> Iterator:
    """What a user's command bits cover, as in Redis 7.0: the registry's commands and
    Redis's others (presence/store/redisonly.py), each container followed by its
    subcommands."""
    for cmd in COMMANDS.values():
        yield cmd
        yield from SUBCOMMANDS.get(cmd.name, {}).values()
        yield from _REDIS_ONLY_SUBS.get(cmd.name, ())
    for entry in _REDIS_ONLY.values():
        if "|" not in entry.name:
            yield entry
            yield from _REDIS_ONLY_SUBS.get(entry.name, ())


def _subcommand_names(name: str) -> list[str]:
    registered = [sub.name for sub in SUBCOMMANDS.get(name, {}).values()]
    return registered + [sub.name for sub in _REDIS_ONLY_SUBS.get(name, ())]


def in_category(category: str) -> list[str]:
    """The commands (`container|sub` for subcommands) in an ACL category, as ACL CAT lists
    them (the store's own)."""
    return [cmd.name for cmd in registered_commands() if category in cmd.categories]


def lookup(name: str):
    """The command or subcommand `name` ("get", "config|get") names, as Redis's
    ACLLookupCommand finds it (Redis's commands the store lacks included), or None."""
    parts = name.lower().split("|")
    if len(parts) > 2:
        return None
    cmd = COMMANDS.get(parts[0].encode()) or _REDIS_ONLY.get(parts[0])
    if cmd is None or len(parts) == 1:
        return cmd
    if not _subcommand_names(cmd.name):
        return None
    sub = SUBCOMMANDS.get(cmd.name, {}).get(parts[1].encode())
    return sub or _REDIS_ONLY.get(name.lower())


class AclError(Exception):
    """A rule ACL SETUSER cannot apply (its message is Redis's reason)."""


def hash_password(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


def _set_perm(bits: set[str], cmd, allow: bool) -> None:
    """Redis's ACLChangeSelectorPerm on a set of allowed names: a container's subcommands
    follow it."""
    names = [cmd.name, *_subcommand_names(cmd.name)]
    if allow:
        bits.update(names)
    else:
        bits.difference_update(names)


def _set_category(bits: set[str], category: str, allow: bool) -> None:
    """Redis's ACLSetSelectorCommandBitsForCategory on a set of allowed names."""
    for cmd in every_command():
        if category in cmd.categories:
            _set_perm(bits, cmd, allow)


class User:
    """One ACL user. `unrestricted` is kept up to date by `apply` for the fast path."""

    def __init__(self, name: bytes) -> None:
        self.name = name
        self.enabled = False
        self.nopass = False
        self.payload_flag = b""  # b"sanitize-payload" / b"skip-sanitize-payload" once set
        self.passwords: list[str] = []  # sha256 hex, in the order added
        self.all_commands = False  # every bit set (Redis's ALLCOMMANDS flag): no lookup
        self.allowed: set[str] = set()  # the names whose bit is set, when not all_commands
        self.future_commands = False  # the last of +@all / -@all was +@all
        self.first_args: dict[str, list[bytes]] = {}  # +select|0: allowed first arguments
        self.all_keys = False
        self.key_patterns: list[list] = []  # [pattern, READ|WRITE permissions]
        self.all_channels = False
        self.channel_patterns: list[bytes] = []
        self.unrestricted = False
        self.generation = 0  # bumped by every rule applied: a check made earlier still holds

    def copy(self) -> User:
        """An independent copy (ACL SETUSER applies rules to one, all or nothing)."""
        other = User(self.name)
        other.__dict__.update(self.__dict__)
        other.passwords = list(self.passwords)
        other.allowed = set(self.allowed)
        other.first_args = {k: list(v) for k, v in self.first_args.items()}
        other.key_patterns = [list(p) for p in self.key_patterns]
        other.channel_patterns = list(self.channel_patterns)
        return other

    def apply(self, rule: bytes) -> None:
        """Apply one ACL SETUSER rule (Redis 7.0's ACLSetUser); AclError if it is not valid."""
        self.generation += 1
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
        elif low in (b"sanitize-payload", b"skip-sanitize-payload"):
            self.payload_flag = low
        elif low == b"reset":
            self.__init__(self.name)  # type: ignore[misc]
            self.payload_flag = b"sanitize-payload"
        else:
            self._apply_selector_rule(rule, low)
        self.unrestricted = self.all_commands and self.all_keys and self.all_channels

    def _apply_selector_rule(self, rule: bytes, low: bytes) -> None:
        """Keys, channels and commands (Redis's ACLSetSelector)."""
        if low in (b"allkeys", b"~*"):
            self.all_keys, self.key_patterns = True, []
        elif low == b"resetkeys":
            self.all_keys, self.key_patterns = False, []
        elif low in (b"allchannels", b"&*"):
            self.all_channels, self.channel_patterns = True, []
        elif low == b"resetchannels":
            self.all_channels, self.channel_patterns = False, []
        elif low in (b"allcommands", b"+@all"):
            self.all_commands, self.allowed, self.future_commands = True, set(), True
            self.first_args = {}
        elif low in (b"nocommands", b"-@all"):
            self.all_commands, self.allowed, self.future_commands = False, set(), False
            self.first_args = {}
        elif rule[:1] in (b"~", b"%"):
            self._add_key_pattern(rule)
        elif rule.startswith(b"&"):
            if self.all_channels:
                raise AclError(
                    "Adding a pattern after the * pattern (or the 'allchannels' flag) is not "
                    "valid and does not have any effect. Try 'resetchannels' to start with an "
                    "empty list of channels"
                )
            if b" " in rule:
                raise AclError("Syntax error")
            if rule[1:] not in self.channel_patterns:
                self.channel_patterns.append(rule[1:])
        elif rule[:2] in (b"+@", b"-@"):
            category = low[2:].decode(errors="replace")
            if category not in CATEGORIES:
                raise AclError(_UNKNOWN)
            if rule[:1] == b"-":
                self._materialize()
            _set_category(self.allowed, category, rule[:1] == b"+")
            for cmd in every_command():
                if category in cmd.categories:
                    self.first_args.pop(cmd.name, None)
        elif rule[:1] == b"+":
            self._allow(low[1:].decode(errors="replace"), rule[1:])
        elif rule[:1] == b"-":
            cmd = lookup(low[1:].decode(errors="replace"))
            if cmd is None:
                raise AclError(_UNKNOWN)
            self._change_perm(cmd, False)
        else:
            raise AclError("Syntax error")

    def _add_key_pattern(self, rule: bytes) -> None:
        if self.all_keys:
            raise AclError(
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid "
                "and does not have any effect. Try 'resetkeys' to start with an empty "
                "list of patterns"
            )
        offset, perms = 1, READ | WRITE
        if rule[:1] == b"%":
            perms = 0
            while offset < len(rule):
                char = rule[offset : offset + 1]
                if char.upper() == b"R" and not perms & READ:
                    perms |= READ
                elif char.upper() == b"W" and not perms & WRITE:
                    perms |= WRITE
                elif char == b"~":
                    offset += 1
                    break
                else:
                    raise AclError("Syntax error")
                offset += 1
        pattern = rule[offset:]
        if not perms or b" " in pattern:  # redis-server 7.0.15 refuses `%~p` too
            raise AclError("Syntax error")
        for entry in self.key_patterns:
            if entry[0] == pattern:  # the same pattern again adds its permissions
                entry[1] |= perms
                return
        self.key_patterns.append([pattern, perms])

    def _allow(self, name: str, raw: bytes) -> None:
        """+cmd, +container|sub, or +cmd|first-arg (Redis's deprecated first-arg rule)."""
        if "|" not in name:
            cmd = lookup(name)
            if cmd is None:
                raise AclError(_UNKNOWN)
            self._change_perm(cmd, True)
            return
        head, _, arg = name.rpartition("|")
        cmd = lookup(head)
        if cmd is None:
            raise AclError(_UNKNOWN)
        if "|" in cmd.name:
            raise AclError("Allowing first-arg of a subcommand is not supported")
        if not arg:
            raise AclError("Syntax error")
        if _subcommand_names(cmd.name):
            sub = lookup(name)
            if sub is None:
                raise AclError(_UNKNOWN)
            self._change_perm(sub, True)
        else:
            args = self.first_args.setdefault(cmd.name, [])
            arg_raw = raw.rpartition(b"|")[2]
            if arg_raw.lower() not in (a.lower() for a in args):
                args.append(arg_raw)

    def _materialize(self) -> None:
        """Turn the all-commands flag into explicit bits, before one is cleared."""
        if self.all_commands:
            self.all_commands = False
            self.allowed = {cmd.name for cmd in every_command()}

    def _change_perm(self, cmd, allow: bool) -> None:
        if not allow:
            self._materialize()
        self.first_args.pop(cmd.name, None)
        if not self.all_commands:
            _set_perm(self.allowed, cmd, allow)

    def _add_password(self, digest: str) -> None:
        if digest not in self.passwords:
            self.passwords.append(digest)
        self.nopass = False

    def check_password(self, password: bytes) -> bool:
        return self.enabled and (self.nopass or hash_password(password) in self.passwords)

    def may_run(self, name: str, argv: list[bytes]) -> bool:
        """Whether the user may run command `name` (for a container, argv[1]'s subcommand)."""
        if self.all_commands:
            return True
        table = SUBCOMMANDS.get(name)
        if table is not None and len(argv) > 1:
            sub = table.get(argv[1].lower())
            if sub is None:
                return True  # an unknown subcommand: its own error
            name = sub.name
        if name in self.allowed:
            return True
        args = self.first_args.get(name)
        if not args or len(argv) < 2:
            return False
        wanted = argv[1].lower()
        return any(arg.lower() == wanted for arg in args)

    def may_access_key(self, key: bytes, flags: tuple[str, ...] = ()) -> bool:
        """Whether a key used with these key-spec flags is allowed (Redis's
        ACLSelectorCheckKey: `access` needs read permission, a change write permission)."""
        if self.all_keys:
            return True
        needed = READ if "access" in flags else 0
        if "insert" in flags or "delete" in flags or "update" in flags:
            needed |= WRITE
        return any(
            perms & needed == needed and glob_matcher(pattern)(key)
            for pattern, perms in self.key_patterns
        )

    def reads_every_key(self) -> bool:
        """Whether the user may read any key (Redis's ACLSelectorHasUnrestrictedKeyAccess
        for CMD_KEY_ACCESS): allkeys, or a `*` pattern with read permission."""
        return self.all_keys or any(p == b"*" and perms & READ for p, perms in self.key_patterns)

    def may_access_channel(self, channel: bytes, literal: bool = False) -> bool:
        """Whether a channel (or, `literal`, a PSUBSCRIBE pattern as written) is allowed."""
        if self.all_channels:
            return True
        if literal:
            return channel in self.channel_patterns
        return any(glob_matcher(p)(channel) for p in self.channel_patterns)

    def flags(self) -> list[bytes]:
        """ACL GETUSER's flags: on/off, nopass, the payload sanitizing flag."""
        words = [b"on" if self.enabled else b"off"]
        if self.nopass:
            words.append(b"nopass")
        if self.payload_flag:
            words.append(self.payload_flag)
        return words

    def describe_keys(self) -> list[bytes]:
        """The key patterns as ACL LIST shows them (`~p`, `%R~p`, `%W~p`)."""
        if self.all_keys:
            return [b"~*"]
        prefix = {READ | WRITE: b"~", READ: b"%R~", WRITE: b"%W~"}
        return [prefix[perms] + pattern for pattern, perms in self.key_patterns]

    def describe_commands(self) -> list[bytes]:
        """The command rules Redis 7.0 rebuilds from the user's bits: +@all or -@all, the
        categories that fit best, then single commands (ACLDescribeSelectorCommandRules)."""
        every = list(every_command())
        user = {cmd.name for cmd in every} if self.all_commands else self.allowed
        additive = not self.future_commands
        rules = [b"-@all" if additive else b"+@all"]
        fake = set() if additive else {cmd.name for cmd in every}
        temp = set(user)
        members = {c: [cmd.name for cmd in every if c in cmd.categories] for c in CATEGORIES}
        applied: set[str] = set()
        while True:
            best, mindiff, maxsame = "", 1 << 31, 0
            for category in CATEGORIES:
                if category in applied:
                    continue
                on = sum(1 for name in members[category] if name in temp)
                off = len(members[category]) - on
                diff, same = (off, on) if additive else (on, off)
                if same > diff and (diff < mindiff or (diff == mindiff and same > maxsame)):
                    best, mindiff, maxsame = category, diff, same
            if not best:
                break
            _set_category(fake, best, additive)
            _set_category(temp, best, not additive)
            rules.append((b"+@" if additive else b"-@") + best.encode())
            applied.add(best)
        for cmd in every:
            allowed = cmd.name in user
            if allowed != (cmd.name in fake):
                rules.append((b"+" if allowed else b"-") + cmd.name.encode())
                _set_perm(fake, cmd, allowed)
            if not allowed:
                rules += [
                    b"+" + cmd.name.encode() + b"|" + a for a in self.first_args.get(cmd.name, ())
                ]
        return rules

    def describe(self) -> list[bytes]:
        """The user's rules, as ACL LIST shows them (flags, passwords, keys, channels,
        commands)."""
        words = self.flags()
        words += [b"#" + d.encode() for d in self.passwords]
        words += self.describe_keys()
        if self.all_channels:
            words.append(b"&*")
        else:
            words.append(b"resetchannels")
            words += [b"&" + p for p in self.channel_patterns]
        return words + self.describe_commands()


def default_user() -> User:
    """The `default` user of a fresh server: on, nopass, everything allowed."""
    user = User(b"default")
    for rule in (b"on", b"nopass", b"allkeys", b"allchannels", b"allcommands"):
        user.apply(rule)
    return user


def genpass(bits: int = 256) -> bytes:
    """ACL GENPASS: `bits` random bits as hex (rounded up to a multiple of 4)."""
    return secrets.token_hex((bits + 7) // 8)[: (bits + 3) // 4].encode()


# EXEC's refusal of a queued command whose check fails again at execution (Redis 7.0's
# execCommand): the user's rules changed after it was queued.
RULES_CHANGED = (
    "NOPERM ACLs rules changed between the moment the transaction was accumulated and the "
    "EXEC call. This command is no longer allowed for the following reason: {}"
)
RULES_CHANGED_REASONS = {
    "command": "no permission to execute the command or subcommand",
    "key": "no permission to touch the specified keys",
    "channel": "no permission to access one of the channels used as arguments",
}
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
        if len(argv) > 1 and name in SUBCOMMANDS:
            shown += "|" + argv[1].decode(errors="replace").lower()
        return "command", shown
    if not user.all_keys:
        table = SUBCOMMANDS.get(name)
        if table is not None and len(argv) > 1:  # a container: its subcommand's keys
            cmd = table.get(argv[1].lower(), cmd)
        for key, flags in keys_of(cmd, argv):
            if not user.may_access_key(key, flags):
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


def keys_of(cmd, argv: list[bytes]) -> list[tuple[bytes, tuple[str, ...]]]:
    """The keys of `argv` and their key-spec flags, found as Redis's ACL check finds them
    (the registry's key specs, else the command's getkeys procedure)."""
    if not has_keys(cmd):
        return []
    return [(argv[i], flags) for i, flags in find_keys(cmd, argv)]


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


def parse_acl_file(path: str) -> dict[bytes, User]:
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
                user.apply(rule)
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
