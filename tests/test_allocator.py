"""presence.allocator: which allocator a node runs on, and that its memory goes back to
the system after a peak (README "Memory")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from presence import allocator
from presence.testing import (
    ROOT,
    child_pids,
    cmdline,
    free_port,
    require_all,
    stop,
    wait_for_port,
)
from tests.helpers import wait_until

PEAK = """
import gc, sys
from presence.runtime import trim_memory
from presence.allocator import current
def rss():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS"))
gc.collect(); trim_memory()
base = rss()
# a peak of small objects (the size of a held poll's), one in 500 outliving it, spread
peak = [{"user": "u%d" % i, "tab": ("c%d" % i, float(i)), "s": "x" * (i % 300)}
        for i in range(300_000)]
top = rss()
survivors = peak[::500]
del peak
gc.collect(); trim_memory()
print(current(), base, top, rss())
"""


def jemalloc_path() -> str:
    path = allocator.find_jemalloc()
    if path is None:
        if require_all():
            pytest.fail(
                "libjemalloc.so.2 is required (REQUIRE_ALL=1): apt-get install libjemalloc2"
            )
        pytest.skip("libjemalloc.so.2 not installed")
    return path


def environment(kind: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONMALLOC", "LD_PRELOAD")}
    if kind != "pymalloc":
        env["PYTHONMALLOC"] = "malloc"
    if kind == "jemalloc":
        env["LD_PRELOAD"] = jemalloc_path()
    return env


@pytest.mark.parametrize("kind", ["jemalloc", "malloc"])
def test_memory_of_a_peak_goes_back_to_the_system(kind):
    """After a peak of small objects, a few of which stay alive, the process's RSS comes
    back to within a fifth of the peak's growth once trim_memory() ran."""
    out = subprocess.run([sys.executable, "-c", PEAK], env=environment(kind), cwd=ROOT,
                         capture_output=True, text=True, check=True)  # fmt: skip
    name, base, top, after = out.stdout.split()
    base, top, after = int(base), int(top), int(after)
    assert name == kind
    assert top - base > 100_000  # KiB: a real peak
    assert after - base < (top - base) / 5, out.stdout


def test_pymalloc_keeps_the_arenas_a_few_survivors_pin():
    """Why pymalloc is not the default: the same peak stays resident (its arenas are
    returned only when wholly empty)."""
    out = subprocess.run([sys.executable, "-c", PEAK], env=environment("pymalloc"), cwd=ROOT,
                         capture_output=True, text=True, check=True)  # fmt: skip
    name, base, top, after = out.stdout.split()
    assert name == "pymalloc"
    assert int(after) - int(base) > (int(top) - int(base)) / 2


def test_reexec_plans():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONMALLOC", "LD_PRELOAD")}
    path = jemalloc_path()
    plan = _plan(env, "jemalloc")
    assert plan is not None and plan[0] == "jemalloc"
    assert plan[1]["PYTHONMALLOC"] == "malloc" and plan[1]["LD_PRELOAD"] == path
    assert _plan(env, "auto")[0] == "jemalloc"  # type: ignore[index]
    assert _plan(env, "pymalloc") is None  # this test process already runs on it
    assert _plan({**env, "PRESENCE_ALLOCATOR_EXEC": "1"}, "jemalloc") is None  # tried once
    kept = allocator.without_choice(dict(plan[1], LD_PRELOAD=f"{path} /other.so"))
    assert "PYTHONMALLOC" not in kept and kept["LD_PRELOAD"] == "/other.so"
    assert "PRESENCE_ALLOCATOR_EXEC" not in kept
    assert allocator.without_choice({"LD_PRELOAD": path}) == {"LD_PRELOAD": path}  # not ours


def _plan(env: dict[str, str], choice: str):
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return allocator.reexec_for(choice)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def metrics_allocator(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    line = next(x for x in text.splitlines() if x.startswith("presence_allocator_info"))
    return line.split('allocator="')[1].split('"')[0]


def maps_jemalloc(pid: int) -> bool:
    with open(f"/proc/{pid}/maps") as fh:
        return "libjemalloc" in fh.read()


@pytest.mark.parametrize(
    ("choice", "workers", "expected"),
    [
        ("auto", "1", "jemalloc"),
        ("jemalloc", "2", "jemalloc"),
        ("malloc", "1", "malloc"),
        ("pymalloc", "1", "pymalloc"),
    ],
)
def test_serve_runs_on_the_allocator_it_was_given(choice, workers, expected, tmp_path):
    """`presence serve --allocator X` re-executes itself (same pid) onto X, its workers
    inherit it, and the bundled store keeps CPython's default."""
    if expected == "jemalloc":
        jemalloc_path()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONMALLOC", "LD_PRELOAD")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "presence.cli", "serve", "--port", str(port), "--allocator",
         choice, "--workers", workers, "--node-id", "a", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=(tmp_path / "out").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    banner = f"memory:     {expected} (--allocator {choice})"
    try:
        wait_for_port(port, proc)
        assert metrics_allocator(port) == expected
        assert maps_jemalloc(proc.pid) == (expected == "jemalloc")
        wait_until(lambda: len(child_pids(proc.pid)) == int(workers) + (workers != "1"))
        children = child_pids(proc.pid)
        stores = [c for c in children if b"presence.store" in cmdline(c)]
        assert len(stores) == 1
        assert not maps_jemalloc(stores[0])
        assert "PYTHONMALLOC" not in _environ(stores[0])
        for worker in set(children) - set(stores):
            assert maps_jemalloc(worker) == (expected == "jemalloc")
        wait_until(lambda: banner in (tmp_path / "out").read_text())
    finally:
        stop(proc)


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as fh:
        pairs = [x.decode().partition("=") for x in fh.read().split(b"\0") if x]
    return {k: v for k, _, v in pairs}


def test_memory_probe_names_the_allocator(tmp_path):
    """The --memory-probe report says which allocator, with jemalloc's own figures."""
    jemalloc_path()
    code = (
        "import json, sys\n"
        "from presence.runtime import MemoryProbe\n"
        f"print(open(MemoryProbe({str(tmp_path)!r}).write() + '.json').read())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=environment("jemalloc"), cwd=ROOT,
                         capture_output=True, text=True, check=True)  # fmt: skip
    report = json.loads(out.stdout)
    assert report["allocator"] == "jemalloc"
    assert report["heap"]["jemalloc_resident"] > 0
