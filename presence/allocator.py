"""Which memory allocator a node runs on (`presence serve --allocator`), and giving its
free memory back to the system.

CPython puts objects of up to 512 bytes in pymalloc's 1 MiB arenas and unmaps an arena
only once every object in it is gone. After a peak (a worker that served every tab alone
while its sibling restarted) the few objects that outlive it (a cache entry, a channel's
keys) pin arenas that are otherwise free: RSS stays 5-10% above where it was before the
peak, for good (README "Memory" has the soak's figures). A leak-free node whose RSS
does not come back looks like a leaking one to its operator.

jemalloc (the allocator Redis ships with, for the same reason) keeps small objects in
page-sized slabs and returns every free page on a purge. So a node, by default, runs
with `PYTHONMALLOC=malloc` over jemalloc when the system has it (Debian's `libjemalloc2`):
measured on the fan-out benchmark, 3% more CPU per delivered message than pymalloc,
where glibc's malloc costs 12-16% (bench figures in docs/benchmarks.md). Both must be
chosen before the interpreter starts, so `presence serve` re-executes itself once with
the environment set (see `reexec_for`); a process started with the environment already
set (a systemd unit, a container) runs as it is.

`purge()` gives the free pages back: jemalloc's `arena.<all>.purge`, or glibc's
`malloc_trim(0)` (which also covers a pymalloc node's C heap: Python objects over 512
bytes).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os
import subprocess
import sys
from collections.abc import Callable

CHOICES = ("auto", "jemalloc", "malloc", "pymalloc")
_EXEC_MARK = "PRESENCE_ALLOCATOR_EXEC"  # set across the re-exec: never loop
_ARENAS_ALL = 4096  # jemalloc's MALLCTL_ARENAS_ALL: "arena.4096.purge" purges them all
_SEARCH = ("/usr/lib/*/libjemalloc.so.2", "/usr/lib*/libjemalloc.so.2",
           "/usr/local/lib*/libjemalloc.so.2", "/opt/homebrew/lib/libjemalloc.2.dylib")  # fmt: skip


@functools.cache
def find_jemalloc() -> str | None:
    """The path of the system's jemalloc shared library, or None (looked up once)."""
    try:
        listing = subprocess.run(
            ["ldconfig", "-p"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        listing = ""
    for line in listing.splitlines():
        name, _, path = line.partition("=>")
        if name.strip().startswith("libjemalloc.so.2") and os.path.exists(path.strip()):
            return path.strip()
    for pattern in _SEARCH:
        for path in sorted(glob.glob(pattern)):
            return path
    return None


def _mallctl() -> Callable[..., int] | None:
    """jemalloc's mallctl when jemalloc is this process's malloc (preloaded), or None."""
    try:
        ctl = ctypes.CDLL(None).mallctl
    except (OSError, AttributeError, TypeError):
        return None
    ctl.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                    ctypes.c_size_t]  # fmt: skip
    ctl.restype = ctypes.c_int
    return ctl


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None (musl, macOS, Windows: nothing to call)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_MALLCTL = _mallctl()
_TRIM = None if _MALLCTL else _malloc_trim()


def current() -> str:
    """The allocator of Python's objects in this process: "jemalloc" (PYTHONMALLOC=malloc
    over a preloaded jemalloc), "malloc" (the C library's) or "pymalloc"."""
    env = {} if sys.flags.ignore_environment else os.environ
    if env.get("PYTHONMALLOC", "").startswith("malloc"):
        return "jemalloc" if _MALLCTL else "malloc"
    return "pymalloc"


def wanted(choice: str) -> str:
    """What `--allocator choice` means on this system: auto is jemalloc when the system
    has it, pymalloc otherwise."""
    if choice == "auto":
        return "jemalloc" if _MALLCTL or find_jemalloc() else "pymalloc"
    return choice


def reexec_for(choice: str) -> tuple[str, dict[str, str]] | None:
    """The environment to re-execute this process with so that it runs on `choice`
    (with its reason), or None when it already does, cannot (-E, no jemalloc), or
    already tried once."""
    want = wanted(choice)
    if want == current() or os.environ.get(_EXEC_MARK) or sys.flags.ignore_environment:
        return None
    env = dict(os.environ, **{_EXEC_MARK: "1"})
    env.pop("PYTHONMALLOC", None)
    if want in ("jemalloc", "malloc"):
        env["PYTHONMALLOC"] = "malloc"
    if want == "jemalloc":
        path = find_jemalloc()
        if path is None:
            return None
        env["LD_PRELOAD"] = " ".join(x for x in (path, env.get("LD_PRELOAD", "")) if x)
    return want, env


def reexec(choice: str) -> None:
    """Replace this process by itself on the allocator `choice` (see the module
    docstring); returns only when nothing needs doing or it cannot be done."""
    plan = reexec_for(choice)
    if plan is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, plan[1])
    except OSError:
        return  # run on what is there: the node says which in its start-up line


def without_choice(env: dict[str, str]) -> dict[str, str]:
    """`env` without what reexec() added (for child processes that choose their own:
    the bundled store keeps CPython's default)."""
    if not env.pop(_EXEC_MARK, None):
        return env
    env.pop("PYTHONMALLOC", None)
    path = find_jemalloc() or ""
    rest = [x for x in env.get("LD_PRELOAD", "").split() if x != path]
    if rest:
        env["LD_PRELOAD"] = " ".join(rest)
    else:
        env.pop("LD_PRELOAD", None)
    return env


def purge() -> bool:
    """Give the allocator's free pages back to the system now; False where there is
    nothing to call (then nothing is done). jemalloc: empty this thread's cache, then
    purge every arena; glibc:
    malloc_trim(0), which returns the free pages anywhere in its heap (madvise)."""
    if _MALLCTL is not None:
        _MALLCTL(b"thread.tcache.flush", None, None, None, 0)  # its cached blocks, freed
        return _MALLCTL(f"arena.{_ARENAS_ALL}.purge".encode(), None, None, None, 0) == 0
    if _TRIM is not None:
        _TRIM(0)
        return True
    return False


def jemalloc_stats() -> dict[str, int]:
    """jemalloc's allocated, active, resident and retained bytes (KiB); {} without it."""
    if _MALLCTL is None:
        return {}
    epoch = ctypes.c_uint64(1)
    _MALLCTL(b"epoch", None, None, ctypes.byref(epoch), ctypes.sizeof(epoch))
    stats = {}
    for name in ("allocated", "active", "resident", "retained"):
        value, size = ctypes.c_size_t(0), ctypes.c_size_t(ctypes.sizeof(ctypes.c_size_t))
        if _MALLCTL(f"stats.{name}".encode(), ctypes.byref(value), ctypes.byref(size),
                    None, 0) == 0:  # fmt: skip
            stats[f"jemalloc_{name}"] = value.value // 1024
    return stats
