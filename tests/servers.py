"""Start and stop real server processes on free loopback ports, for tests and benchmarks.

Every test run starts its own redis-server and bundled store, so runs never touch the
machine's Redis on 6379 and never interfere with each other.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def require_all() -> bool:
    """True when a missing tool must fail the run instead of skipping (CI sets REQUIRE_ALL=1)."""
    return os.environ.get("REQUIRE_ALL", "") not in ("", "0")


def need_tool(name: str) -> str:
    """Return the path of executable `name`; skip the test without it (fail under REQUIRE_ALL)."""
    path = shutil.which(name)
    if path is None:
        if require_all():
            pytest.fail(f"{name} is required (REQUIRE_ALL=1) but not on PATH")
        pytest.skip(f"{name} not installed")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def stop(proc: subprocess.Popen) -> None:
    """Terminate `proc`, killing it if it does not exit within 5 seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def redis_server(*extra: str):
    """Run a throwaway redis-server on a free port; yield its port."""
    exe = need_tool("redis-server")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="presence-redis-")  # where a SAVE would write dump.rdb
    proc = subprocess.Popen(
        [
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
            "--loglevel",
            "warning",
            "--dir",
            workdir,
            *extra,
        ],
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
def bundled_store(*extra: str):
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
