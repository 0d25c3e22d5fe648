"""ACL LOAD / ACL SAVE and the aclfile directive, against redis-server started the same way.

Each server gets its own copy of the same file; replies that name the file are compared with
the path replaced by `<file>`.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from presence.testing import ROOT, bundled_store, redis_server
from tests.store.rawclient import RawClient

FIRST = (
    b"user alice on >secret ~app:* &app:* resetchannels -@all +get\n"
    b"user default on nopass ~* &* +@all\n"
)


@pytest.fixture
def servers(tmp_path):
    """(store client, redis client, store file, redis file), both loaded from FIRST."""
    files = []
    for side in ("store", "redis"):
        path = tmp_path / f"{side}.acl"
        path.write_bytes(FIRST)
        files.append(path)
    with (
        bundled_store("--aclfile", str(files[0])) as store_port,
        redis_server("--aclfile", str(files[1])) as redis_port,
    ):
        store, redis = RawClient(store_port), RawClient(redis_port)
        try:
            yield store, redis, files[0], files[1]
        finally:
            store.close()
            redis.close()


def same(servers, *args) -> bytes:
    store, redis, store_file, redis_file = servers
    ours = store.call(*args).replace(str(store_file).encode(), b"<file>")
    theirs = redis.call(*args).replace(str(redis_file).encode(), b"<file>")
    assert ours == theirs, f"{args!r}: store {ours!r} != redis {theirs!r}"
    return ours


def both_files(servers, content: bytes) -> None:
    servers[2].write_bytes(content)
    servers[3].write_bytes(content)


def test_loaded_at_start_and_config_get(servers):
    listed = same(servers, "ACL", "LIST")
    assert b"user alice on #" in listed
    same(servers, "ACL", "WHOAMI")
    assert b"<file>" in same(servers, "CONFIG", "GET", "aclfile")


def test_load_replaces_users_and_adds_default(servers):
    both_files(servers, b"user bob on nopass ~b* +ping\r\n\n   \n")
    assert same(servers, "ACL", "LOAD") == b"+OK\r\n"
    listed = same(servers, "ACL", "LIST")
    assert b"alice" not in listed and b"user default on nopass" in listed


def test_bad_file_changes_nothing_and_reports_every_line(servers):
    before = same(servers, "ACL", "LIST")
    both_files(
        servers,
        b"user carol on >pw ~k* +get\n"
        b"user bob on +nosuch -@nocat\n"
        b"user dave on bogus also-bogus\n"
        b"foo bar\n"
        b"user\n"
        b"user carol off\n"
        b'user erin on nopass "a b"\n',
    )
    error = same(servers, "ACL", "LOAD")
    assert error.startswith(b"-ERR <file>:2: Error in applying operation '+nosuch'")
    assert b"WARNING: ACL errors detected, no change" in error
    assert same(servers, "ACL", "LIST") == before


def test_missing_file(servers):
    servers[2].unlink()
    servers[3].unlink()
    assert b"opening file '<file>'" in same(servers, "ACL", "LOAD")


def test_save_writes_acl_list_lines(servers):
    same(servers, "ACL", "SETUSER", "zed", "on", ">pw", "~z:*", "+@read")
    same(servers, "ACL", "DELUSER", "alice")
    assert same(servers, "ACL", "SAVE") == b"+OK\r\n"
    assert servers[2].read_bytes() == servers[3].read_bytes()
    assert servers[2].read_bytes().startswith(b"user default on nopass ~* &* +@all\nuser zed on #")
    same(servers, "ACL", "SETUSER", "zed", "off")
    same(servers, "ACL", "LOAD")
    assert b"user zed on #" in same(servers, "ACL", "LIST")  # back to what was saved


def test_load_disconnects_other_users_clients(servers):
    store, redis = servers[0], servers[1]
    ports = [c.sock.getpeername()[1] for c in (store, redis)]
    for client in (store, redis):
        assert client.call("AUTH", "alice", "secret") == b"+OK\r\n"
    # alice may not run ACL LOAD; a second, default connection does
    assert same(servers, "ACL", "LOAD").startswith(b"-NOPERM")
    for port in ports:
        other = RawClient(port)
        assert other.call("ACL", "LOAD") == b"+OK\r\n"
        other.close()
    for client in (store, redis):
        with pytest.raises((ConnectionError, OSError, EOFError)):
            client.call("PING")


def test_without_aclfile(pair):
    for sub in ("LOAD", "SAVE"):
        assert pair.same("ACL", sub).startswith(b"-ERR This Redis instance is not configured")
    pair.same("CONFIG", "GET", "aclfile")
    pair.same("CONFIG", "SET", "aclfile", "/tmp/x")


def test_start_up_with_a_bad_file_stops(tmp_path):
    path = tmp_path / "bad.acl"
    path.write_bytes(b"user alice on\nuser alice off\n")
    done = subprocess.run(
        [sys.executable, "-m", "presence.store", "--port", "0", "--aclfile", str(path)],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert b"Aborting startup because of ACL errors: WARNING: Duplicate user 'alice'" in done.stderr
