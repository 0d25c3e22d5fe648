"""COMMAND's metadata (key specs, GETKEYSANDFLAGS) and MEMORY STATS's fields against
redis-server: for every command the store has, its key specs are Redis 7.0's."""

import pytest
import redis

from presence.store.commands import SUBCOMMANDS, find_keys, load_all
from tests.store.helpers import array_items, canonical, split_aggregate


def _connect(port: int, protocol: int = 2) -> redis.Connection:
    conn = redis.Connection(port=port, protocol=protocol)
    conn.connect()
    return conn


def _call(conn, *args):
    conn.send_command(*args)
    return conn.read_response()


def _pairs(value) -> dict:
    return value if isinstance(value, dict) else dict(zip(value[::2], value[1::2], strict=True))


@pytest.fixture(scope="module")
def conns(store_port, redis_port):
    store, server = _connect(store_port), _connect(redis_port)
    yield store, server
    store.disconnect()
    server.disconnect()


def _key_specs_field(reply: bytes) -> bytes:
    """The raw key-spec field (the 9th) of a one-command COMMAND INFO reply."""
    _, (entry,) = split_aggregate(reply)
    return split_aggregate(entry)[1][8]


def _redis_has(pair, name: str) -> bool:
    return pair.redis.call("COMMAND", "INFO", name) != b"*1\r\n$-1\r\n"


def test_key_specs_of_every_command(pair):
    """COMMAND INFO's key specs, byte for byte (notes, flags, begin_search, find_keys, in
    Redis's order), for every command and subcommand the store has, keynum ones included."""
    names = [n.decode() for n in array_items(pair.store.call("COMMAND", "LIST"))]
    differ = {}
    for name in names:
        if not _redis_has(pair, name):
            continue  # CLIENT SETINFO and NO-TOUCH are 7.2's
        for protocol in ("2", "3"):
            pair.call("HELLO", protocol)
            ours, theirs = (_key_specs_field(c.call("COMMAND", "INFO", name)) for c in
                            (pair.store, pair.redis))  # fmt: skip
            if ours != theirs:
                differ[(name, protocol)] = (ours, theirs)
        pair.call("HELLO", "2")
    assert not differ
    assert len(names) > 250


def _fields(reply: bytes) -> list[bytes]:
    """The ten raw fields of a one-command COMMAND INFO reply."""
    _, (entry,) = split_aggregate(reply)
    return split_aggregate(entry)[1]


# Containers whose subcommand lists differ: CLIENT has 7.2's SETINFO and NO-TOUCH and lacks
# TRACKING, CACHING and TRACKINGINFO; SCRIPT's EXISTS has the `stale` flag (see FLAG_GAPS).
SUBCOMMAND_GAPS = {"client", "script"}


def test_command_info_of_every_command(pair):
    """Each command's whole COMMAND INFO entry, RESP2 and RESP3: name, arity, flags, legacy
    key positions, ACL categories, tips, key specs byte for byte; subcommands order-free
    (Redis lists them in its dict's order, which changes from one process to the next)."""
    names = [n.decode() for n in array_items(pair.store.call("COMMAND", "LIST"))]
    differ = []
    for protocol in ("2", "3"):
        pair.call("HELLO", protocol)
        for name in names:
            ours, theirs = pair.call("COMMAND", "INFO", name)
            if theirs in (b"*1\r\n$-1\r\n", b"*1\r\n_\r\n"):
                continue
            ours_f, theirs_f = _fields(ours), _fields(theirs)
            for i in range(10):
                if (i == 2 and name in FLAG_GAPS) or (i == 9 and name in SUBCOMMAND_GAPS):
                    continue
                mine, other = ours_f[i], theirs_f[i]
                if i == 9:
                    mine, other = canonical(mine), canonical(other)
                if mine != other:
                    differ.append((protocol, name, i, mine, other))
    pair.call("HELLO", "2")
    assert differ == []


@pytest.mark.parametrize(
    "command",
    [
        ("LMOVE", "src", "dst", "LEFT", "RIGHT"),
        ("BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"),
        ("RPOPLPUSH", "src", "dst"),
        ("SMOVE", "src", "dst", "m"),
        ("RENAME", "a", "b"),
        ("COPY", "a", "b"),
        ("MSET", "a", "1", "b", "2"),
        ("SET", "a", "1"),
        ("SET", "a", "1", "GET"),
        ("SET", "a", "1", "NX", "get"),
        ("BITFIELD", "b", "GET", "u8", "0"),
        ("BITFIELD", "b", "GET", "u8", "0", "OVERFLOW", "SAT", "GET", "i4", "0"),
        ("BITFIELD", "b", "SET", "u8", "0", "1"),
        ("BITFIELD", "b", "GET", "u8"),
        ("BITFIELD", "b"),
        ("DEL", "a", "b"),
        ("LPUSH", "l", "x"),
        ("EXISTS", "a"),
        ("BITOP", "AND", "d", "a", "b"),
        ("ZRANGESTORE", "d", "z", "0", "-1"),
    ],
)
def test_getkeysandflags(pair, command):
    pair.same("COMMAND", "GETKEYSANDFLAGS", *command)
    pair.same("COMMAND", "GETKEYS", *command)


@pytest.mark.parametrize("protocol", [2, 3])
def test_memory_stats_fields(store_port, redis_port, protocol):
    """The same fields in the same order, each of the same reply type (the values are each
    server's own), with a key in db 0 so that `db.0` is there."""
    replies = []
    for port in (store_port, redis_port):
        conn = _connect(port, protocol)
        try:
            _call(conn, "SET", "memory-stats-key", "v")
            stats = _pairs(_call(conn, "MEMORY", "STATS"))
            # other tests' databases may hold keys on one server only
            replies.append(
                {k: v for k, v in stats.items() if not k.startswith(b"db.") or k == b"db.0"}
            )
        finally:
            _call(conn, "DEL", "memory-stats-key")
            conn.disconnect()
    ours, theirs = replies
    assert list(ours) == list(theirs)
    assert {k: type(v) for k, v in ours.items()} == {k: type(v) for k, v in theirs.items()}
    assert list(_pairs(ours[b"db.0"])) == list(_pairs(theirs[b"db.0"]))
    assert 0 <= float(ours[b"dataset.percentage"]) <= 100


def test_acl_categories_of_every_command(conns):
    """COMMAND INFO's categories come from the table ACL CAT reads: Redis 7.0's, in its order."""
    store, server = conns
    names = sorted(name.decode() for name in _call(store, "COMMAND", "LIST"))
    differ = {}
    for name in names:
        theirs = _call(server, "COMMAND", "INFO", name)[0]
        if theirs is None:
            continue
        ours = _call(store, "COMMAND", "INFO", name)[0]
        if ours[6] != theirs[6]:
            differ[name] = (ours[6], theirs[6])
    assert not differ


@pytest.mark.parametrize("category", ["keyspace", "dangerous", "scripting", "connection", "list"])
def test_command_list_by_aclcat(pair, category):
    """Every command the store lists in a category, Redis 7.0 lists there too (CLIENT SETINFO
    and NO-TOUCH, from 7.2, aside)."""
    ours, theirs = pair.call("COMMAND", "LIST", "FILTERBY", "ACLCAT", category)
    ours_names = set(ours.split(b"\r\n")[2::2]) - {b"client|setinfo", b"client|no-touch"}
    assert ours_names <= set(theirs.split(b"\r\n")[2::2])


# Flags the store has beyond Redis 7.0's, left as they are: BGREWRITEAOF no_async_deletion,
# SHUTDOWN no_auth, SCRIPT EXISTS stale.
FLAG_GAPS = {"bgrewriteaof", "shutdown", "script|exists"}


def test_flags_and_arity_of_every_command(conns):
    """COMMAND INFO's arity, flags (in Redis's order) and legacy key positions."""
    store, server = conns
    names = sorted(name.decode() for name in _call(store, "COMMAND", "LIST"))
    differ = {}
    for name in names:
        theirs = _call(server, "COMMAND", "INFO", name)[0]
        if theirs is None or name in FLAG_GAPS:
            continue
        ours = _call(store, "COMMAND", "INFO", name)[0]
        fields = (1, 2, 3, 4, 5)
        if [ours[i] for i in fields] != [theirs[i] for i in fields]:
            differ[name] = ([ours[i] for i in fields], [theirs[i] for i in fields])
    assert not differ


def test_categories_are_declared_with_each_registration():
    """No separate table: each command's categories come from its registration (`acl=`) and
    its flags, as Redis derives @write, @read, @admin, @dangerous, @fast/@slow..."""
    table = load_all()
    assert table[b"get"].categories == ("read", "string", "fast")
    assert table[b"config"].categories == ("slow",)
    assert SUBCOMMANDS["config"][b"get"].categories == ("admin", "slow", "dangerous")
    assert table[b"eval_ro"].categories == ("slow", "scripting")  # no @read for scripting


# Argument lines for COMMAND GETKEYS: counts, words, zeros, negative and atoi-only counts,
# and STORE/GET/LIMIT keywords (SORT), at every length around each command's arity.
_ARG_PATTERNS = [
    lambda n: [str(i + 1) for i in range(n)],
    lambda n: ["1"] * n,
    lambda n: [f"a{i}" for i in range(n)],
    lambda n: (["2", "x", "y", "STORE", "d", "GET", "LIMIT"] + ["z"] * n)[:n],
    lambda n: ["0"] * n,
    lambda n: (["-1", "a", "b", "c"] + ["z"] * n)[:n],
    lambda n: ([" 2x", "a", "b", "c"] + ["z"] * n)[:n],
    lambda n: (["4294967297", "a", "b"] + ["z"] * n)[:n],
]


def test_getkeys_of_every_command(pair):
    """COMMAND GETKEYS and GETKEYSANDFLAGS of every command and subcommand the store has, on
    argument lines of every length around its arity: the same keys, flags and errors
    (no key arguments, wrong number of arguments, a key count out of range...)."""
    names = [n.decode() for n in array_items(pair.store.call("COMMAND", "LIST"))]
    differ, checked = [], 0
    for name in names:
        if not _redis_has(pair, name):
            continue
        head = name.split("|")
        arity = abs(load_all()[head[0].encode()].arity)
        if len(head) == 2:
            arity = abs(SUBCOMMANDS[head[0]][head[1].encode()].arity)
        base = arity - len(head)
        for n in range(max(base - 1, 0), base + 4):
            for pattern in _ARG_PATTERNS:
                for sub in ("GETKEYS", "GETKEYSANDFLAGS"):
                    ours, theirs = pair.call("COMMAND", sub, *head, *pattern(n))
                    checked += 1
                    if ours != theirs:
                        differ.append((sub, head, pattern(n), ours, theirs))
    assert differ == []
    assert checked > 15000


@pytest.mark.parametrize(
    "command",
    [
        ("NOSUCH", "a"),
        ("CONFIG", "NOSUCH", "a"),
        ("config", "get", "x"),
        ("CONFIG",),
        ("PING",),
        ("PUBLISH", "ch", "m"),
        ("SPUBLISH", "ch", "m"),
        ("GET",),
        ("GET", "a", "b"),
        ("EVAL", "return 1", "0"),
        ("EVAL", "return 1", "3", "a"),
        ("EVAL", "return 1", "2", "a", "b", "c"),
        ("EVAL", "return 1", "-1"),
        ("EVAL", "return 1", "x"),
        ("EVAL", "return 1", "1x", "a"),
        ("FCALL", "f", "2", "a", "b"),
        ("ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"),
        ("ZUNIONSTORE", "d", "3", "a", "b"),
        ("ZUNIONSTORE", "d", "0", "a"),
        ("ZINTERCARD", "2", "a", "b", "LIMIT", "1"),
        ("SINTERCARD", "1", "a"),
        ("LMPOP", "2", "a", "b", "LEFT"),
        ("BLMPOP", "0", "2", "a", "b", "LEFT"),
        ("ZMPOP", "1", "z", "MIN"),
        ("BZMPOP", "0", "1", "z", "MIN"),
        ("SORT", "l", "BY", "w_*", "GET", "#", "LIMIT", "0", "1", "STORE", "d"),
        ("SORT", "l", "STORE", "d1", "STORE", "d2"),
        ("SORT", "l", "STORE"),
        ("SORT_RO", "l", "BY", "w_*"),
        ("OBJECT", "ENCODING", "k"),
        ("MEMORY", "USAGE", "k"),
    ],
)
def test_getkeys_errors_and_movable_keys(pair, command):
    pair.same("COMMAND", "GETKEYS", *command)
    pair.same("COMMAND", "GETKEYSANDFLAGS", *command)


def test_find_keys_falls_back_on_the_getkeys_procedure():
    """A key count C's atoi reads but Redis's string2ll does not: the key specs cannot say,
    the registered procedure finds the keys (without flags), as in Redis."""
    table = load_all()
    assert find_keys(table[b"eval"], [b"eval", b"s", b"1x", b"k"]) == [(3, ())]
    assert find_keys(table[b"eval"], [b"eval", b"s", b"1", b"k"]) == [
        (3, ("RW", "access", "update"))
    ]
