"""ACL users and NOPERM checks (presence/store/acl.py, commands/acl.py), differential
against redis-server: the same commands give the same raw replies on both."""

import pytest

from presence.store.commands import COMMANDS, SUBCOMMANDS, load_all
from presence.store.redisonly import REDIS_ONLY
from tests.store.helpers import Pair
from tests.store.rawclient import RawClient

USERS = ["alice", "bob", "carol", "dave"]


@pytest.fixture
def acl(pair):
    """The pair, with the test's users deleted afterwards on both servers."""
    yield pair
    pair.same("ACL", "DELUSER", *USERS)  # how many existed: the same on both


def as_user(pair: Pair, user: str, password: str) -> Pair:
    """A second pair of connections, authenticated as `user` on both servers."""
    other = Pair(pair.store_port, pair.redis_port)
    assert other.same("AUTH", user, password) == b"+OK\r\n"
    return other


def test_setuser_getuser_list_users(acl):
    acl.same("ACL", "SETUSER", "alice", "on", ">p1", "~k*", "&ch", "+@hash", "+get")
    acl.same("ACL", "GETUSER", "alice")
    acl.same("ACL", "GETUSER", "default")
    acl.same("ACL", "GETUSER", "nobody")
    acl.same("ACL", "LIST")
    acl.same("ACL", "USERS")
    acl.same("ACL", "WHOAMI")
    acl.same("ACL", "SETUSER", "alice", "<p1", "nopass", "allkeys", "allchannels", "+@all", "-set")
    acl.same("ACL", "LIST")
    acl.same("ACL", "SETUSER", "alice", "reset")
    acl.same("ACL", "GETUSER", "alice")
    acl.same("ACL", "SETUSER", "bob", "#" + "a" * 64, ">x", "resetpass", "off")
    acl.same("ACL", "GETUSER", "bob")


@pytest.mark.parametrize(
    "rule",
    ["+nosuchcommand", "+@nosuchcategory", "#abc", "#" + "A" * 64, "<nope", "whatever"],
)
def test_setuser_bad_rule_changes_nothing(acl, rule):
    acl.same("ACL", "SETUSER", "alice", "on", ">p1", "~a")
    acl.same("ACL", "SETUSER", "alice", "off", "~b", rule)
    acl.same("ACL", "GETUSER", "alice")


def test_setuser_errors(acl):
    acl.same("ACL", "SETUSER", "a b")
    acl.same("ACL", "SETUSER", "alice", "allkeys", "~x")
    acl.same("ACL", "SETUSER", "alice", "allchannels", "&x")
    acl.same("ACL", "DELUSER", "default")
    acl.same("ACL", "DELUSER", "alice", "nobody")
    acl.same("ACL", "NOSUCH")
    acl.same("ACL", "GETUSER")
    acl.same("ACL", "WHOAMI", "x")


def test_auth_as_user(acl):
    acl.same("ACL", "SETUSER", "alice", "on", ">secret", "+@all", "~*")
    other = Pair(acl.store_port, acl.redis_port)
    other.same("AUTH", "alice", "wrong")
    other.same("AUTH", "nobody", "secret")
    other.same("ACL", "WHOAMI")
    other.same("AUTH", "alice", "secret")
    other.same("ACL", "WHOAMI")
    other.same("RESET")
    other.same("ACL", "WHOAMI")
    other.same("HELLO", "2", "AUTH", "alice", "wrong")
    acl.same("ACL", "SETUSER", "alice", "off")
    other.same("AUTH", "alice", "secret")
    acl.same("ACL", "SETUSER", "bob", "on", "nopass", "+@all")
    other.same("AUTH", "bob", "anything")
    other.same("ACL", "WHOAMI")
    other.close()


def test_noperm_commands_keys_channels(acl):
    acl.same("ACL", "SETUSER", "carol", "on", ">pw", "~a*", "&news", "+get", "+@hash", "+publish")
    carol = as_user(acl, "carol", "pw")
    carol.same("GET", "abc")
    carol.same("GET", "b")
    carol.same("SET", "a", "1")
    carol.same("HSET", "ah", "f", "v")
    carol.same("HSET", "bh", "f", "v")
    carol.same("CONFIG", "GET", "maxmemory")
    carol.same("ACL", "WHOAMI")
    carol.same("PUBLISH", "news", "x")
    carol.same("PUBLISH", "sports", "x")
    carol.same("PING")
    carol.same("MULTI")
    carol.same("GET", "b")
    carol.same("EXEC")
    carol.same("SHUTDOWN", "NOSAVE")  # flagged no-auth in the store, still checked
    carol.same("PING")
    carol.close()


def test_changes_apply_to_connected_clients(acl):
    acl.same("ACL", "SETUSER", "dave", "on", ">pw", "~*", "+@all")
    dave = as_user(acl, "dave", "pw")
    dave.same("SET", "k", "v")
    acl.same("ACL", "SETUSER", "dave", "-set")
    dave.same("SET", "k", "v")
    dave.same("GET", "k")
    dave.close()


def test_deluser_closes_its_connections(acl):
    acl.same("ACL", "SETUSER", "dave", "on", ">pw", "~*", "+@all")
    dave = as_user(acl, "dave", "pw")
    acl.same("ACL", "DELUSER", "dave")
    for client in (dave.store, dave.redis):
        try:  # the server closed the connection: no reply (or a reset for the PING)
            client.send("PING")
            assert client.read_all() == b""
        except ConnectionResetError:
            pass
    dave.close()


def test_script_commands_are_checked(acl):
    acl.same("ACL", "SETUSER", "dave", "on", ">pw", "~a*", "+@all", "-set")
    dave = as_user(acl, "dave", "pw")
    dave.same("EVAL", "return redis.call('set','a','1')", "0")
    dave.same("EVAL", "return redis.call('get',KEYS[1])", "1", "a")
    dave.same("EVAL", "return redis.call('get',KEYS[1])", "1", "b")
    dave.same("EVAL", "return redis.call('get','b')", "0")
    dave.same("EVAL", "return redis.pcall('get','b')", "0")
    dave.close()


def test_dryrun_cat_genpass(acl):
    acl.same("ACL", "SETUSER", "carol", "on", "nopass", "~a*", "+get")
    acl.same("ACL", "DRYRUN", "carol", "get", "a")
    acl.same("ACL", "DRYRUN", "carol", "get", "b")
    acl.same("ACL", "DRYRUN", "carol", "set", "a", "1")
    acl.same("ACL", "DRYRUN", "nobody", "get", "a")
    acl.same("ACL", "DRYRUN", "carol", "nosuch", "a")
    acl.same("ACL", "CAT", "nosuch")
    acl.same("ACL", "GENPASS", "0")
    acl.same("ACL", "GENPASS", "5000")
    for bits, length in ((None, 64), ("5", 2), ("128", 32)):
        args = ["ACL", "GENPASS"] + ([bits] if bits else [])
        ours, theirs = acl.call(*args)
        assert len(ours) == len(theirs) == len(f"${length}\r\n") + length + 2


def test_cat_lists_redis_categories_and_commands(acl):
    """ACL CAT names Redis's categories, and each lists the commands and subcommands Redis
    lists under it (those both servers have; CLIENT SETINFO/NO-TOUCH are 7.2's)."""
    acl.same("ACL", "CAT")
    categories = acl.store.call("ACL", "CAT").split(b"\r\n")[2::2]
    lists = {
        c: [set(r.split(b"\r\n")[2::2]) for r in acl.call("ACL", "CAT", c)] for c in categories
    }
    known_to_redis = set().union(*(theirs for _, theirs in lists.values()))
    store = RawClient(acl.store_port)
    have = set(store.call("COMMAND", "LIST").split(b"\r\n")[2::2])
    store.close()
    load_all()
    have |= {f"{c}|{s.decode()}".encode() for c, subs in SUBCOMMANDS.items() for s in subs}
    mismatches = {}
    for category, (mine, theirs) in lists.items():
        mine &= known_to_redis
        theirs &= have
        if mine != theirs:
            mismatches[category] = (sorted(mine - theirs), sorted(theirs - mine))
    assert mismatches == {}


def test_refused_when_queued_in_multi(acl):
    acl.same("ACL", "SETUSER", "carol", "on", ">pw", "~a*", "+get", "+multi", "+exec")
    carol = as_user(acl, "carol", "pw")
    carol.same("MULTI")
    carol.same("GET", "a")
    carol.same("GET", "b")
    carol.same("SET", "a", "1")
    carol.same("EXEC")
    carol.same("GET", "a")
    carol.close()


def test_subcommand_rules(acl):
    acl.same("ACL", "SETUSER", "carol", "on", ">pw", "+config|get", "+client", "-client|kill")
    acl.same("ACL", "SETUSER", "carol", "+config|nosuch")
    carol = as_user(acl, "carol", "pw")
    carol.same("CONFIG", "GET", "maxmemory")
    carol.same("CONFIG", "SET", "maxmemory", "0")
    carol.same("CLIENT", "GETNAME")
    carol.same("CLIENT", "KILL", "ID", "999999")
    carol.close()


def test_requirepass_is_the_default_users_password(acl):
    try:
        acl.same("CONFIG", "SET", "requirepass", "s3cret")
        acl.same("ACL", "GETUSER", "default")
        other = Pair(acl.store_port, acl.redis_port)
        other.same("AUTH", "default", "wrong")
        other.same("AUTH", "default", "s3cret")
        other.same("ACL", "WHOAMI")
        other.close()
    finally:
        acl.same("CONFIG", "SET", "requirepass", "")
    acl.same("ACL", "GETUSER", "default")


def test_script_acl_check_cmd(acl):
    acl.same("ACL", "SETUSER", "dave", "on", ">pw", "~a*", "+@all", "-set")
    dave = as_user(acl, "dave", "pw")
    dave.same("EVAL", "return redis.acl_check_cmd('set','a','1')", "0")
    dave.same("EVAL", "return redis.acl_check_cmd('get','a')", "0")
    dave.same("EVAL", "return redis.acl_check_cmd('get','b')", "0")
    dave.same("EVAL", "return redis.acl_check_cmd('nosuch')", "0")
    dave.close()


def test_client_list_and_kill_by_user(acl):
    acl.same("ACL", "SETUSER", "dave", "on", ">pw", "~*", "+@all")
    dave = as_user(acl, "dave", "pw")
    for client in (dave.store, dave.redis):
        assert b" user=dave " in client.call("CLIENT", "INFO")
    acl.same("CLIENT", "KILL", "USER", "nobody")
    acl.same("CLIENT", "KILL", "USER", "dave")
    dave.close()


def parse(lines: list[bytes], i: int = 0):
    """One RESP2 value from `lines` at `i`: (value, next index)."""
    head = lines[i]
    if head[:1] == b"*":
        items = []
        i += 1
        for _ in range(int(head[1:])):
            item, i = parse(lines, i)
            items.append(item)
        return items, i
    if head[:1] == b"$":
        return lines[i + 1], i + 2
    return head, i + 1


def log_entries(raw: bytes) -> list[dict]:
    """ACL LOG's entries (RESP2), without age-seconds, and client-info's cmd/user only."""
    entries = []
    for flat in parse(raw.split(b"\r\n"))[0]:
        entry = dict(zip(flat[::2], flat[1::2], strict=True))
        entry[b"age-seconds"] = b"?"
        entry[b"client-info"] = b" ".join(
            w for w in entry[b"client-info"].split() if w.split(b"=")[0] in (b"cmd", b"user")
        )
        entries.append(entry)
    return entries


def test_acl_log(acl):
    acl.same("ACL", "LOG", "RESET")
    acl.same("ACL", "SETUSER", "carol", "on", ">pw", "~a*", "+get", "+eval")
    carol = as_user(acl, "carol", "pw")
    carol.same("GET", "b")
    carol.same("SET", "a", "1")
    carol.same("GET", "b")
    carol.same("EVAL", "return redis.call('get','zz')", "0")
    carol.same("AUTH", "nobody", "x")
    ours, theirs = acl.call("ACL", "LOG")
    assert log_entries(ours) == log_entries(theirs)
    assert len(log_entries(ours)) == 4
    ours, theirs = acl.call("ACL", "LOG", "2")
    assert log_entries(ours) == log_entries(theirs)
    acl.same("ACL", "LOG", "-1")
    acl.same("ACL", "LOG", "x")
    acl.same("ACL", "LOG", "RESET")
    acl.same("ACL", "LOG")
    carol.close()


def test_default_user_with_a_password_needs_auth(acl):
    try:
        acl.same("ACL", "SETUSER", "default", ">pw")
        acl.same("ACL", "SETUSER", "default", "resetpass", ">pw")
        other = Pair(acl.store_port, acl.redis_port)
        other.same("GET", "a")
        other.same("AUTH", "pw")
        other.same("GET", "a")
        other.close()
    finally:
        acl.same("ACL", "SETUSER", "default", "nopass")


def rules(line: bytes) -> tuple[list[bytes], list[bytes]]:
    """An ACL LIST line (or GETUSER's commands) as (the words up to the last category rule,
    the single-command rules sorted): Redis 7.0 emits those in its command dict's order,
    which changes from one redis-server process to the next."""
    words = line.split()
    singles = [w for w in words if w[:1] in (b"+", b"-") and w[1:2] != b"@"]
    return [w for w in words if w not in singles], sorted(singles)


def user_line(client: RawClient, name: bytes) -> bytes:
    lines = client.call("ACL", "LIST").split(b"\r\n")
    return next(line for line in lines if line.startswith(b"user " + name + b" "))


def getuser_fields(client: RawClient, name: str) -> list:
    """ACL GETUSER's reply (RESP2) with its command rules made order-free (see `rules`)."""
    flat, _ = parse(client.call("ACL", "GETUSER", name).split(b"\r\n"))
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    fields[b"commands"] = rules(fields[b"commands"])
    return list(fields.items())


@pytest.mark.parametrize(
    "given",
    [
        ["+get", "+@hash", "-hget", "+config|get"],
        ["+@all", "-get"],
        ["+@all", "-@string", "+get"],
        ["-@all", "+@read", "-@hash"],
        ["+@read", "+@write"],
        ["+@all", "-@dangerous"],
        ["+@all", "-@admin", "+config|get"],
        ["+config", "-config|set"],
        ["+client", "-@dangerous"],
        ["+select|0", "+select|1"],
        ["+@all", "-select", "+select|0"],
        ["+@slow", "-config"],
        ["+@fast", "+@pubsub", "-publish"],
        ["+@scripting", "+@transaction", "+@connection"],
        ["+@keyspace", "-@keyspace", "+del"],
        ["+@list", "+@sortedset", "+@set", "-sort"],
        ["allcommands", "-@write", "+set"],
        ["+@all", "-@all", "+acl|whoami"],
        ["+@geo", "-geoadd", "+xinfo|stream"],  # commands the store lacks count as in Redis
        ["%R~r*", "%W~w*", "~b*", "%RW~x*", "%R~b*", "%W~r*"],
        ["~a*", "~a*", "&c", "&c", "%rw~z", "%wR~y"],
    ],
)
def test_list_and_getuser_rebuild_rules_as_redis_7_0(acl, given):
    """ACL LIST and GETUSER show the rules Redis 7.0 rebuilds from a user's command bits
    (+@all or -@all, the categories that fit best, then single commands), not the rules as
    given; key patterns with their permissions, duplicates merged."""
    acl.same("ACL", "SETUSER", "alice", "on", "nopass", *given)
    ours, theirs = user_line(acl.store, b"alice"), user_line(acl.redis, b"alice")
    assert rules(ours) == rules(theirs)
    assert getuser_fields(acl.store, "alice") == getuser_fields(acl.redis, "alice")
    # what the store prints means the same to redis-server: the same bits come back
    acl.same("ACL", "SETUSER", "bob", "reset", *ours.split()[2:])
    assert rules(user_line(acl.redis, b"bob"))[1] == rules(theirs)[1]


def test_getuser_flags_are_a_set_in_resp3(acl):
    acl.call("HELLO", "3")
    acl.same("ACL", "SETUSER", "alice", "on", "nopass", "%R~r*", "+get", "&x")
    acl.same("ACL", "GETUSER", "alice")
    acl.same("ACL", "GETUSER", "default")
    acl.call("HELLO", "2")


@pytest.mark.parametrize(
    "rule",
    ["%X~a", "%~a", "%R", "%RR~a", "~a b", "&a b", "+select|", "+config|get|x", "+nosuch|x",
     "-select|0", "+config|nosuch", "+xadd", "-xinfo|stream", "+xinfo|nosuch"],
)  # fmt: skip
def test_setuser_rule_errors_and_odd_rules(acl, rule):
    acl.same("ACL", "SETUSER", "alice", "on")
    acl.same("ACL", "SETUSER", "alice", rule)
    ours, theirs = user_line(acl.store, b"alice"), user_line(acl.redis, b"alice")
    assert rules(ours) == rules(theirs)


def test_users_are_listed_in_redis_order(acl):
    names = ["bob", "Alice", "alice", "al", "carol-1", "Carol", "dave_", "DAVE"]
    try:
        for name in names:
            acl.same("ACL", "SETUSER", name, "on", "nopass")
        acl.same("ACL", "USERS")
        acl.same("ACL", "LIST")
    finally:
        acl.same("ACL", "DELUSER", *names)


def test_key_permissions_follow_the_key_specs(acl):
    """%R~ allows keys a command reads, %W~ keys it writes, by the key specs' flags (RO
    access, OW update, RW insert...), for keynum commands too."""
    acl.same("ACL", "SETUSER", "carol", "on", ">pw", "%R~r*", "%W~w*", "~b*", "+@all")
    acl.same("MSET", "r1", "1", "w1", "2", "b1", "3")
    acl.same("RPUSH", "rl", "3", "1", "2")
    carol = as_user(acl, "carol", "pw")
    for command in [
        ("GET", "r1"),
        ("GET", "w1"),
        ("SET", "w1", "x"),
        ("SET", "r1", "x"),
        ("SET", "w1", "x", "GET"),  # SET ... GET reads too
        ("APPEND", "w1", "x"),  # RW insert
        ("APPEND", "b1", "x"),
        ("COPY", "r1", "w2"),
        ("COPY", "w1", "r2"),
        ("DEL", "w2"),
        ("EXISTS", "w1"),  # RO without access: any pattern
        ("LPUSH", "w3", "x"),
        ("LPOP", "w3"),  # RW access delete: needs both
        ("EVAL", "return 1", "1", "r1"),
        ("EVAL", "return 1", "1", "b1"),
        ("EVAL_RO", "return 1", "1", "r1"),
        ("EVAL_RO", "return 1", "1", "w1"),
        ("ZUNIONSTORE", "w4", "2", "r1", "r2"),
        ("ZUNIONSTORE", "r4", "1", "r1"),
        ("ZUNIONSTORE", "w4", "2", "r1", "w1"),
        ("ZINTERCARD", "2", "r1", "r2"),
        ("SINTERCARD", "2", "r1", "w1"),
        ("LMPOP", "1", "rl", "LEFT"),
        ("LMPOP", "1", "bl", "LEFT"),
        ("SORT", "rl", "STORE", "w5"),
        ("SORT", "rl", "STORE", "r5"),
        ("SORT_RO", "rl"),
        ("OBJECT", "ENCODING", "r1"),
        ("OBJECT", "ENCODING", "x1"),
        ("MEMORY", "USAGE", "x1"),
    ]:
        carol.same(*command)
    for command in [("GET", "w1"), ("LPOP", "w3"), ("ZUNIONSTORE", "r4", "1", "r1")]:
        acl.same("ACL", "DRYRUN", "carol", *command)
    carol.close()
    acl.same("DEL", "r1", "w1", "b1", "rl", "w4", "w5")


def test_keynum_commands_check_their_keys(acl):
    """EVAL, FCALL and the other commands whose keys follow a count are checked by their key
    specs: a key outside the user's patterns is NOPERM before the command runs."""
    acl.same("ACL", "SETUSER", "dave", "on", ">pw", "~a*", "+@all")
    dave = as_user(acl, "dave", "pw")
    for command in [
        ("EVAL", "return 1", "1", "b"),
        ("EVAL", "return 1", "1", "a"),
        ("EVAL", "return 1", "2", "a", "b"),
        ("EVAL", "return 1", "0", "b"),  # b is an argument, not a key
        ("EVAL", "return 1", "5", "a"),  # a bad count: no keys found, the command's error
        ("EVALSHA", "0" * 40, "1", "b"),
        ("EVAL_RO", "return 1", "1", "b"),
        ("FCALL", "nosuch", "1", "b"),
        ("FCALL", "nosuch", "1", "a"),
        ("FCALL_RO", "nosuch", "1", "b"),
        ("ZUNION", "2", "a", "b"),
        ("ZINTER", "1", "a"),
        ("ZDIFF", "2", "a", "b"),
        ("ZDIFFSTORE", "b", "1", "a"),
        ("ZINTERSTORE", "a2", "2", "a", "b"),
        ("ZINTERCARD", "2", "a", "b"),
        ("SINTERCARD", "1", "b"),
        ("LMPOP", "2", "a", "b", "LEFT"),
        ("BLMPOP", "0.01", "2", "a", "b", "LEFT"),
        ("ZMPOP", "1", "b", "MIN"),
        ("BZMPOP", "0.01", "1", "b", "MIN"),
        ("SORT", "a", "STORE", "b"),
        ("SORT", "a", "BY", "b*"),  # BY with a pattern, GET: only for a user of every key
        ("SORT", "a", "BY", "nosort"),
        ("SORT", "a", "GET", "#"),
        ("SORT", "a", "LIMIT", "x", "1", "GET", "#"),
        ("EVAL", "return redis.pcall('sort', KEYS[1], 'get', '#')", "1", "a"),
        ("SORT_RO", "b"),
    ]:
        dave.same(*command)
    ours, theirs = acl.call("ACL", "LOG", "1")
    assert log_entries(ours) == log_entries(theirs)
    dave.close()


@pytest.mark.parametrize("keys", [["%R~*"], ["%W~*"], ["~*"], ["%R~*", "%W~w*"], ["~a*", "~*x"]])
def test_sort_by_and_get_need_every_key_readable(acl, keys):
    acl.same("ACL", "SETUSER", "dave", "on", ">pw", "+@all", *keys)
    acl.same("RPUSH", "sl", "2", "1")
    dave = as_user(acl, "dave", "pw")
    dave.same("SORT", "sl", "BY", "w_*")
    dave.same("SORT", "sl", "GET", "#")
    dave.same("SORT_RO", "sl", "BY", "w_*", "GET", "#")
    dave.close()
    acl.same("DEL", "sl")


def test_redis_only_table_names_no_command_the_store_has():
    """A command the store gained leaves presence/store/redisonly.py, or ACL's bit counts see
    it twice and ACL LIST rebuilds other rules than Redis's."""
    load_all()
    have = {cmd.name for cmd in COMMANDS.values()} | {
        sub.name for subs in SUBCOMMANDS.values() for sub in subs.values()
    }
    assert not have & set(REDIS_ONLY)
