"""CLIENT subcommands (commands/client.py) against real redis-server."""

import pytest
from redis._parsers.helpers import parse_client_list

from tests.store.rawclient import RawClient


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def both(pair, request):
    if request.param == 3:
        pair.call("HELLO", "3")
    return pair


def _text(reply: bytes) -> str:
    """The payload of a bulk (RESP2) or verbatim (RESP3) reply."""
    body = reply.split(b"\r\n", 1)[1][:-2]
    return (body[4:] if reply.startswith(b"=") else body).decode()


def _clients(raw: RawClient, *args) -> list[dict]:
    return parse_client_list(_text(raw.call("CLIENT", "LIST", *args)))


def _closed(raw: RawClient) -> bool:
    raw.sock.settimeout(2)
    try:
        return raw.sock.recv(100) == b""
    except (TimeoutError, ConnectionResetError):
        return False


ERRORS = [
    ("CLIENT",),
    ("CLIENT", "FOO"),
    ("CLIENT", "ID", "x"),
    ("CLIENT", "GETNAME", "x"),
    ("CLIENT", "SETNAME"),
    ("CLIENT", "SETNAME", "a b"),
    ("CLIENT", "SETNAME", "a\nb"),
    ("CLIENT", "SETNAME", "caf\xe9"),
    ("CLIENT", "KILL"),
    ("CLIENT", "KILL", "1.2.3.4:5"),
    ("CLIENT", "KILL", "ID", "abc"),
    ("CLIENT", "KILL", "ID", "0"),
    ("CLIENT", "KILL", "ID", "999999"),
    ("CLIENT", "KILL", "FOO", "bar"),
    ("CLIENT", "KILL", "ADDR", "1.2.3.4:5"),
    ("CLIENT", "KILL", "ADDR", "1.2.3.4:5", "ID"),
    ("CLIENT", "KILL", "TYPE", "foo"),
    ("CLIENT", "KILL", "SKIPME", "maybe"),
    ("CLIENT", "KILL", "USER", "nobody"),
    ("CLIENT", "KILL", "LADDR", "1.2.3.4:5"),
    ("CLIENT", "KILL", "TYPE", "master"),
    ("CLIENT", "NO-EVICT"),
    ("CLIENT", "NO-EVICT", "maybe"),
    ("CLIENT", "NO-EVICT", "on"),
    ("CLIENT", "NO-EVICT", "OFF"),
    ("CLIENT", "GETREDIR"),
    ("CLIENT", "UNPAUSE"),
    ("CLIENT", "LIST", "TYPE", "foo"),
    ("CLIENT", "LIST", "ID"),
    ("CLIENT", "LIST", "ID", "abc"),
    ("CLIENT", "LIST", "ID", "0"),
    ("CLIENT", "LIST", "ID", "-5", "99999"),
    ("CLIENT", "LIST", "foo"),
    ("CLIENT", "LIST", "TYPE", "master"),
    ("CLIENT", "INFO", "x"),
]


@pytest.mark.parametrize("args", ERRORS, ids=lambda a: " ".join(a))
def test_client_replies_match_redis(both, args):
    both.same(*args)


def test_setname_getname_match_redis(both):
    for args in [
        ("CLIENT", "GETNAME"),
        ("CLIENT", "SETNAME", "worker-1"),
        ("CLIENT", "GETNAME"),
        ("CLIENT", "SETNAME", ""),
        ("CLIENT", "GETNAME"),
    ]:
        both.same(*args)


def test_client_id_is_hellos_id(store):
    reply = store.call("HELLO", "3")
    client_id = int(store.call("CLIENT", "ID")[1:-2])
    assert b"$2\r\nid\r\n:%d\r\n" % client_id in reply


def test_client_list_has_redis_fields_in_order(pair):
    ours, theirs = _clients(pair.store), _clients(pair.redis)
    assert list(ours[0]) == list(theirs[0])


def test_client_info_has_redis_fields_and_verbatim_type(both):
    ours, theirs = both.call("CLIENT", "INFO")
    assert ours[:1] == theirs[:1]
    assert _text(ours).endswith("\n") and _text(ours).count("\n") == 1
    mine, real = parse_client_list(_text(ours))[0], parse_client_list(_text(theirs))[0]
    assert list(mine) == list(real)
    assert mine["cmd"] == real["cmd"] == "client|info"
    assert mine["resp"] == real["resp"]


def test_client_list_describes_each_connection(store, store_port):
    store.call("CLIENT", "SETNAME", "lister")
    store.call("SELECT", "2")
    sub = RawClient(store_port)
    sub.call("HELLO", "3")
    sub.call("SUBSCRIBE", "a", "b")
    sub.read_reply()
    multi = RawClient(store_port)
    multi.call("MULTI")
    multi.call("SET", "x", "1")
    me_id = int(store.call("CLIENT", "ID")[1:-2])
    rows = {int(row["id"]): row for row in _clients(store)}
    me = rows[me_id]
    assert me["name"] == "lister" and me["db"] == "2" and me["flags"] == "N"
    assert me["cmd"] == "client|list" and me["resp"] == "2" and me["multi"] == "-1"
    assert me["addr"] == "%s:%d" % store.sock.getsockname()
    assert me["laddr"] == "%s:%d" % store.sock.getpeername()
    assert int(me["fd"]) > 0 and me["user"] == "default"
    subscriber = next(r for r in rows.values() if r["sub"] == "2")
    assert subscriber["flags"] == "P" and subscriber["resp"] == "3"
    queued = next(r for r in rows.values() if r["multi"] == "1")
    assert queued["flags"] == "x"
    pubsub = _clients(store, "TYPE", "pubsub")
    assert [r["id"] for r in pubsub] == [subscriber["id"]]
    assert subscriber["id"] not in {r["id"] for r in _clients(store, "TYPE", "normal")}
    assert [r["id"] for r in _clients(store, "ID", str(me_id), "999999")] == [str(me_id)]
    sub.close()
    multi.close()


def test_client_kill_old_style_closes_the_other_connection(both, store_port, redis_port):
    victims = [RawClient(p) for p in (store_port, redis_port)]
    for victim in victims:
        victim.call("PING")  # the server has accepted it before we look it up
    addrs = ["%s:%d" % v.sock.getsockname() for v in victims]
    assert both.store.call("CLIENT", "KILL", addrs[0]) == both.redis.call(
        "CLIENT", "KILL", addrs[1]
    )
    assert all(_closed(v) for v in victims)


def test_client_kill_filters_count_and_close(pair, store_port, redis_port):
    victims = [RawClient(p) for p in (store_port, redis_port)]
    ids = [int(v.call("CLIENT", "ID")[1:-2]) for v in victims]  # also: accepted by now
    ours = pair.store.call("CLIENT", "KILL", "ID", ids[0])
    assert ours == pair.redis.call("CLIENT", "KILL", "ID", ids[1]) == b":1\r\n"
    assert all(_closed(v) for v in victims)
    subs = []
    for port in (store_port, redis_port):
        sub = RawClient(port)
        sub.call("SUBSCRIBE", "kill-me")
        subs.append(sub)
    pair.same("CLIENT", "KILL", "TYPE", "pubsub", "SKIPME", "yes")
    assert all(_closed(s) for s in subs)
    pair.same("CLIENT", "KILL", "ID", "999999", "SKIPME", "no")


def test_client_kill_skipme_no_closes_the_caller_after_its_reply(store):
    me = store.call("CLIENT", "ID")[1:-2]
    assert store.call("CLIENT", "KILL", "ID", me, "SKIPME", "no") == b":1\r\n"
    assert _closed(store)


def test_client_kill_self_by_id_is_skipped(store):
    me = store.call("CLIENT", "ID")[1:-2]
    assert store.call("CLIENT", "KILL", "ID", me) == b":0\r\n"
    assert store.call("PING") == b"+PONG\r\n"


def test_client_setinfo_like_redis_7_2(store):
    """redis-py 8 sends SETINFO at connect; Redis 7.0 refuses it, 7.2 accepts it."""
    assert store.call("CLIENT", "SETINFO", "LIB-NAME", "redis-py") == b"+OK\r\n"
    assert store.call("CLIENT", "SETINFO", "lib-ver", "8.1.0") == b"+OK\r\n"
    assert store.call("CLIENT", "SETINFO", "lib-name", "a b") == (
        b"-ERR lib-name cannot contain spaces, newlines or special characters.\r\n"
    )
    assert store.call("CLIENT", "SETINFO", "LIB-VER", "1\n2") == (
        b"-ERR LIB-VER cannot contain spaces, newlines or special characters.\r\n"
    )
    assert (
        store.call("CLIENT", "SETINFO", "color", "red") == b"-ERR Unrecognized option 'color'\r\n"
    )
    assert store.call("CLIENT", "SETINFO", "lib-name") == (
        b"-ERR wrong number of arguments for 'client|setinfo' command\r\n"
    )


def test_client_no_touch_like_redis_7_2(store):
    assert store.call("CLIENT", "NO-TOUCH", "on") == b"+OK\r\n"
    me = store.call("CLIENT", "ID")[1:-2].decode()
    assert next(r for r in _clients(store) if r["id"] == me)["flags"] == "T"
    assert store.call("CLIENT", "NO-TOUCH", "off") == b"+OK\r\n"
    assert store.call("CLIENT", "NO-TOUCH", "maybe") == b"-ERR syntax error\r\n"


def test_client_help_is_status_lines(store):
    reply = store.call("CLIENT", "HELP")
    assert reply.startswith(b"*")
    assert b"+CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n" in reply
    for line in (b"+SETNAME <name>\r\n", b"+KILL <ip:port>\r\n", b"+SETINFO <option> <value>\r\n"):
        assert line in reply
