"""CLUSTER, ASKING, READONLY, READWRITE and MODULE against a redis-server 7.0 started
without cluster-enabled: the same replies, byte for byte, in and out of MULTI, and the
same COMMAND INFO and COMMAND DOCS groups."""

import pytest

from presence.store.commands import SUBCOMMANDS, load_all
from presence.testing import bundled_store, redis_server
from tests.store.helpers import Pair, array_items, run, split_aggregate
from tests.store.rawclient import RawClient

load_all()
CLUSTER_SUBCOMMANDS = sorted(name.decode() for name in SUBCOMMANDS["cluster"])


def _args_for(arity: int) -> list[str]:
    """Arguments making a subcommand of this arity well-formed (the minimum for -N)."""
    return ["1"] * (abs(arity) - 2)


def test_there_are_redis_70s_27_cluster_subcommands(pair):
    theirs = pair.redis.call("COMMAND", "INFO", "cluster")
    _, (entry,) = split_aggregate(theirs)
    subs = split_aggregate(split_aggregate(entry)[1][9])[1]
    names = sorted(split_aggregate(s)[1][0].split(b"\r\n")[1].decode() for s in subs)
    assert names == [f"cluster|{n}" for n in CLUSTER_SUBCOMMANDS]
    assert len(names) == 27


@pytest.mark.parametrize("sub", CLUSTER_SUBCOMMANDS)
def test_each_cluster_subcommand_is_disabled(pair, sub):
    """Well-formed: cluster support disabled; one argument too many (or too few): the arity
    error naming cluster|sub; upper and mixed case alike."""
    arity = SUBCOMMANDS["cluster"][sub.encode()].arity
    args = _args_for(arity)
    assert pair.same("CLUSTER", sub, *args) == (
        b"-ERR This instance has cluster support disabled\r\n"
    )
    pair.same("cluster", sub.upper(), *args, "x", "y")
    if arity > 0:
        pair.same("CLUSTER", sub, *args, "extra")
    if abs(arity) > 2:
        pair.same("CLUSTER", sub.title(), *args[:-1])


@pytest.mark.parametrize(
    "command",
    [
        ("CLUSTER",),
        ("CLUSTER", "nosuch"),
        ("CLUSTER", "nosuch", "a", "b"),
        ("CLUSTER", "KEYSLOT", "key"),
        ("CLUSTER", "HELP"),
        ("CLUSTER", "INFO"),
        ("CLUSTER", "SLOTS"),
        ("CLUSTER", "SHARDS"),
        ("CLUSTER", "COUNTKEYSINSLOT", "notanumber"),
        ("CLUSTER", "GETKEYSINSLOT", "1", "-1"),
        ("CLUSTER", "SETSLOT", "1", "NODE"),
        ("CLUSTER", "RESET", "HARD"),
        ("ASKING",),
        ("ASKING", "x"),
        ("READONLY",),
        ("READONLY", "x"),
        ("READWRITE",),
        ("READWRITE", "x"),
    ],
)
def test_cluster_family_replies(pair, proto, command):
    pair.same(*command)


def test_in_multi_queued_then_refused_at_exec(pair):
    """Well-formed ones are queued and fail in EXEC; a bad arity aborts the transaction."""
    run(pair, "MULTI", "CLUSTER INFO", "ASKING", "READONLY", "SET k v", "CLUSTER KEYSLOT k", "EXEC")
    run(pair, "MULTI", "CLUSTER INFO x", "SET k v", "EXEC", "GET k")
    run(pair, "MULTI", "CLUSTER nosuch", "EXEC")


def test_from_a_script(pair):
    """redis.call raises Redis's error, pcall returns it (READONLY, CLUSTER)."""
    for script in (
        "return redis.pcall('cluster', 'info')",
        "return redis.pcall('readonly')",
        "return redis.pcall('asking')",
        "return redis.call('cluster', 'keyslot', 'a')",
        "return redis.pcall('cluster', 'reset')",
        "return redis.pcall('module', 'list')",
        "return redis.pcall('module', 'load', '/nonexistent.so')",
    ):
        ours, theirs = pair.call("EVAL", script, "0")
        # Redis names the script's SHA in redis.call's error: same on both
        assert ours == theirs, (script, ours, theirs)


def test_errorstats_count_them(pair):
    """INFO errorstats alike; commandstats of ASKING and READONLY (the store counts a
    subcommand under its container, not as cmdstat_cluster|info: a gap of its own)."""
    pair.call("CONFIG", "RESETSTAT")
    run(pair, "CLUSTER INFO", "READONLY", "ASKING", "CLUSTER nosuch", "CLUSTER")
    ours, theirs = (c.call("INFO", "errorstats") for c in (pair.store, pair.redis))
    assert ours.split(b"\r\n")[2:] == theirs.split(b"\r\n")[2:]
    for name in ("readonly", "asking"):
        ours, theirs = (
            [
                line
                for line in c.call("INFO", "commandstats").split(b"\r\n")
                if name.encode() in line
            ]
            for c in (pair.store, pair.redis)
        )
        assert [line.split(b",usec")[0] for line in ours] == [
            line.split(b",usec")[0] for line in theirs
        ]
        assert [line.split(b"rejected_calls")[1] for line in ours] == [
            line.split(b"rejected_calls")[1] for line in theirs
        ]


@pytest.mark.parametrize(
    "command",
    [
        ("MODULE",),
        ("MODULE", "LIST"),
        ("MODULE", "list", "x"),
        ("MODULE", "HELP"),
        ("MODULE", "help", "x"),
        ("MODULE", "LOAD"),
        ("MODULE", "LOAD", "/nonexistent/module.so"),
        ("MODULE", "LOAD", "/nonexistent/module.so", "arg"),
        ("MODULE", "LOADEX", "/nonexistent/module.so", "CONFIG", "a", "b"),
        ("MODULE", "UNLOAD", "nosuch"),
        ("MODULE", "UNLOAD"),
        ("MODULE", "UNLOAD", "a", "b"),
        ("MODULE", "nosuch"),
    ],
)
def test_module_replies(pair, proto, command):
    pair.same(*command)


@pytest.mark.parametrize("setting", ["yes", "local"])
def test_module_commands_when_enabled(setting):
    """With enable-module-command yes (or local, from loopback) the store loads and unloads
    nothing: Redis's errors for a library it cannot load and a module it does not have."""
    with (
        bundled_store("--enable-module-command", setting) as store_port,
        redis_server("--enable-module-command", setting) as redis_port,
    ):
        pair = Pair(store_port, redis_port)
        try:
            for command in (
                ("MODULE", "LOAD", "/nonexistent/module.so"),
                ("MODULE", "LOADEX", "/nonexistent/module.so", "CONFIG", "a", "b"),
                ("MODULE", "LOADEX", "/nonexistent/module.so", "ARGS", "x"),
                ("MODULE", "UNLOAD", "nosuch"),
                ("MODULE", "LIST"),
                ("CONFIG", "GET", "enable-module-command"),
                ("CONFIG", "SET", "enable-module-command", "no"),
            ):
                pair.same(*command)
        finally:
            pair.close()


def test_command_info_and_docs_groups(pair):
    """COMMAND INFO of the family, whole (subcommands order-free); COMMAND DOCS's group."""
    for name in ("cluster", "asking", "readonly", "readwrite", "module"):
        ours, theirs = pair.call("COMMAND", "INFO", name)
        (o,), (t,) = split_aggregate(ours)[1], split_aggregate(theirs)[1]
        o_fields, t_fields = split_aggregate(o)[1], split_aggregate(t)[1]
        assert o_fields[:9] == t_fields[:9], name
        assert sorted(split_aggregate(o_fields[9])[1]) == sorted(split_aggregate(t_fields[9])[1])
        for client in (pair.store, pair.redis):
            docs = client.call("COMMAND", "DOCS", name)
            expected = b"server" if name == "module" else b"cluster"
            assert b"$5\r\ngroup\r\n$%d\r\n%s\r\n" % (len(expected), expected) in docs, name
    for sub in ("cluster|info", "module|list"):
        ours, theirs = pair.call("COMMAND", "INFO", sub)
        assert ours == theirs


def test_acl_categories_take_the_family_in(pair):
    """ACL rules count the family's commands as Redis does (no longer Redis-only names)."""
    for category in ("admin", "dangerous", "connection", "slow"):
        ours, theirs = pair.call("COMMAND", "LIST", "FILTERBY", "ACLCAT", category)
        family = {
            name
            for name in array_items(theirs)
            if name.startswith((b"cluster", b"module", b"asking", b"readonly", b"readwrite"))
        }
        assert family <= set(array_items(ours)), category
    with RawClient(pair.store_port) as store, RawClient(pair.redis_port) as redis:
        for client in (store, redis):
            client.call("ACL", "SETUSER", "clusteruser", "on", "nopass", "+@all", "-cluster")
        assert (
            store.call("ACL", "GETUSER", "clusteruser").split(b"commands")[1][:80]
            == (redis.call("ACL", "GETUSER", "clusteruser").split(b"commands")[1][:80])
        )
        for client in (store, redis):
            client.call("ACL", "DELUSER", "clusteruser")
