"""`presence-store` as a process: flags, config file, unix socket, errors, shutdown."""

import os
import subprocess
import sys
import time

import pytest

from presence.testing import ROOT, free_port, stop, wait_for_port
from tests.store.rawclient import RawClient


def start(*args, cwd=ROOT):
    return subprocess.Popen(
        [sys.executable, "-m", "presence.store", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_config_file_then_flags_override(tmp_path):
    port = free_port()
    conf = tmp_path / "presence.conf"
    conf.write_text('# comment\nport 1\nkeys-expire-notify "gone"\nnotify-keyspace-events Ex\n')
    proc = start(str(conf), "--port", str(port))
    try:
        wait_for_port(port, proc)
        client = RawClient(port)
        assert (
            client.call("CONFIG", "GET", "keys-expire-notify")
            == b"*2\r\n$18\r\nkeys-expire-notify\r\n$4\r\ngone\r\n"
        )
        assert (
            client.call("CONFIG", "GET", "notify-keyspace-events")
            == b"*2\r\n$22\r\nnotify-keyspace-events\r\n$2\r\nxE\r\n"
        )
        client.close()
    finally:
        stop(proc)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--no-such-directive", "1"], "unknown directive 'no-such-directive'"),
        (["--port", "abc"], "bad value for 'port'"),
        (["--notify-keyspace-events", "Q"], "Invalid event class character"),
        (["/nonexistent/presence.conf"], "cannot read config file"),
    ],
)
def test_bad_configuration_exits_with_a_clear_message(args, message):
    proc = start(*args)
    _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 2
    assert message in err


def test_unix_socket_and_shutdown(tmp_path):
    import socket

    path = str(tmp_path / "store.sock")
    port = free_port()
    proc = start("--port", str(port), "--unixsocket", path)
    try:
        wait_for_port(port, proc)
        deadline = time.monotonic() + 10
        while not os.path.exists(path) and time.monotonic() < deadline:  # bound after TCP
            time.sleep(0.02)
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            s.sendall(b"PING\r\n")
            assert s.recv(100) == b"+PONG\r\n"
        client = RawClient(port)
        client.send("SHUTDOWN")
        assert client.read_all() == b""  # no reply: the server closes the connection
        assert proc.wait(10) == 0
    finally:
        stop(proc)


def test_port_in_use_is_reported():
    port = free_port()
    first = start("--port", str(port))
    try:
        wait_for_port(port, first)
        second = start("--port", str(port))
        _out, err = second.communicate(timeout=10)
        assert second.returncode == 1
        assert "cannot listen" in err
    finally:
        stop(first)
