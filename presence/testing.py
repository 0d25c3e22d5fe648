"""Dev tools: start and stop real server processes on free loopback ports.

Used by the test suite and the benchmarks, and usable from any script:

    from presence.testing import redis_server, bundled_store

    with redis_server() as port: ...          # a throwaway redis-server
    with bundled_store() as port: ...         # `python -m presence.store`

Every launcher picks its own free ports and a temporary directory, so runs never touch
the machine's Redis on 6379 and never interfere with each other. Nothing here imports
pytest: a missing executable raises `ToolMissing`, which the test suite turns into a skip
(or a failure under REQUIRE_ALL=1).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

# The source checkout (the directory holding pyproject.toml) when run from one.
ROOT = Path(__file__).resolve().parents[1]


class ToolMissing(RuntimeError):
    """An executable a launcher needs is not on PATH."""

    def __init__(self, tool: str) -> None:
        super().__init__(f"{tool} not installed (not on PATH)")
        self.tool = tool


def require_all() -> bool:
    """True when a missing tool must fail the run instead of skipping (CI sets REQUIRE_ALL=1)."""
    return os.environ.get("REQUIRE_ALL", "") not in ("", "0")


def find_tool(name: str) -> str:
    """The path of executable `name`; raise ToolMissing without it."""
    path = shutil.which(name)
    if path is None:
        raise ToolMissing(name)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that nothing listens on right now."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))  # all held open until the end: no port twice
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 15.0) -> None:
    """Block until something accepts on 127.0.0.1:port; raise if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


def stop(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Terminate `proc`, killing it if it does not exit within `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _redis_command(exe: str, port: int, workdir: str, extra: Sequence[str]) -> list[str]:
    return [
        exe,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        workdir,
        *extra,
    ]


@contextmanager
def redis_server(*extra: str) -> Iterator[int]:
    """Run a throwaway redis-server on a free port; yield its port.

    `extra` are more redis-server arguments ("--notify-keyspace-events", "Ex", ...).
    """
    exe = find_tool("redis-server")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="presence-redis-")  # where a SAVE would write dump.rdb
    proc = subprocess.Popen(
        _redis_command(exe, port, workdir, ("--loglevel", "warning", *extra)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def bundled_store(*extra: str) -> Iterator[int]:
    """Run the bundled store (`python -m presence.store`) on a free port; yield its port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "presence.store", "--port", str(port), *extra],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        stop(proc)
