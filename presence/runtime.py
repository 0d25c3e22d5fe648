"""Process-wide settings of a long-running server: the cyclic garbage collector, giving
freed memory back to the system, the open-file limit.

A busy node holds a large heap (one handler, stream and held poll per connection, the
store's keyspace); with CPython's default thresholds (700, 10, 10) a full collection
runs every few seconds and walks the whole heap, freezing the event loop for up to a
second with 10,000 connections (bench/README.md). Requests and store commands create no
reference cycles (tests/web/test_gc.py and tests/store/test_gc.py check it), so nearly
all memory is freed by reference counting and the collector can run rarely.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import signal
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from typing import Any

from presence import allocator

# CPython counts container allocations minus deallocations: a young collection after
# 50,000 more live containers (default 700), a middle one every 50 young ones, a full
# one after 100,000 middle ones and only once the objects promoted since the last full
# pass are a quarter of the old generation. So a node whose heap is steady hardly ever
# collects, and never walks its whole heap on its own: what would leak is cyclic garbage
# that outlives two young collections, which the tests above keep at zero per request.
THRESHOLDS = (50_000, 50, 100_000)


def tune_gc(thresholds: tuple[int, int, int] = THRESHOLDS) -> None:
    """Call once start-up is done: collect, freeze the survivors, raise the thresholds.

    gc.freeze() moves every object alive now (modules, classes, functions, the
    application's routes and settings) into a permanent generation that collections
    never scan again, so a full pass only walks what was allocated while serving.
    Raising the thresholds cuts how often the collector runs; that costs little memory
    because the service does not create cyclic garbage; a cycle that does appear (a
    rare error path) is still freed by a young or middle collection if it dies young.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft limit of open files towards `wanted` (not above the
    hard limit); returns the soft limit now in force.

    Each HTTP connection is a file descriptor, and the usual soft limit (1024) is far
    below what a node serves; the hard limit (often 524288 under systemd) is what an
    unprivileged process may raise it to.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # (a platform that refuses: keep the soft limit)
    return soft


def trim_memory() -> bool:
    """Give the allocator's free pages back to the system now (presence.allocator.purge);
    False where there is nothing to call (then nothing is done).

    Freed memory stays with the allocator: jemalloc's dirty pages until they decay,
    glibc's heap when some live object sits above them (on pymalloc, CPython allocates
    objects over 512 bytes there: event texts, request buffers, big dict tables). Then RSS
    stays at its peak after a burst of polls or events is gone. A purge costs about 10 ms
    per 200 MB of heap (measured on this project's machine), so it is called after large
    frees only (see MemoryTrimmer).
    """
    return allocator.purge()


TRIM_DROP = 1000  # a fall of the load by this much (and a quarter) since its peak trims
TRIM_IDLE = 15.0  # seconds: a node whose load is not rising trims this long after its last trim


class MemoryTrimmer:
    """Decides when to call trim_memory(), from a measure of what the process holds (held
    polls, cached entries: any count that grows with the memory in use), given now and
    then (the periodic sweep does, see presence.service.subscriber).

    It trims when the load fell by TRIM_DROP and a quarter since its peak (a burst is
    over: its memory is free), and when the load did not rise since the previous
    observation and TRIM_IDLE seconds passed since the last trim (a slow decline, or a
    steady load: what was freed meanwhile, requests and events that are gone, does not
    show in the load). The peak starts again at each trim. A trim with little to give
    back costs well under a millisecond.
    """

    def __init__(self, trim: Callable[[], bool] = trim_memory,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.trim = trim
        self.clock = clock
        self.peak = 0
        self.previous = 0  # the load at the previous observation
        self.last = clock()
        self.trims = 0
        self.freed_kib = 0  # RSS the trims gave back, in all

    def observe(self, load: int) -> bool:
        """Note the current load; True when it trimmed."""
        self.peak = max(self.peak, load)
        drop = self.peak - load
        burst_over = drop >= TRIM_DROP and drop * 4 >= self.peak
        rising, self.previous = load > self.previous, load
        idle = not rising and self.clock() - self.last >= TRIM_IDLE
        if not (burst_over or idle):
            return False
        before = rss_kib()
        self.trim()
        self.trims += 1
        self.freed_kib += max(before - rss_kib(), 0)
        self.peak = load
        self.last = self.clock()
        return True


RECYCLE_QUIET = (
    10  # a worker is quiet when it holds at most 1/RECYCLE_QUIET of --recycle-after-peak
)
RECYCLE_QUIET_SWEEPS = 2  # ... at this many sweeps in a row


class Recycler:
    """Decides when a worker of `presence serve --workers N` asks its parent to replace it
    with a fresh process (--recycle-after-peak; presence.workers does the replacing).

    A peak leaves a long-lived heap fragmented: the objects that outlive it (caches,
    interned strings, grown tables) pin pages all over it, so no allocator can give those
    back (the soak: 2-4% of RSS after the load, on every allocator). A process started
    anew has none of it. So a worker that has held `peak` polls at once asks, once in its
    life, to be replaced when it holds no more than a tenth of that at RECYCLE_QUIET_SWEEPS
    observations in a row (the periodic sweep observes, see presence.service.subscriber).
    The few polls it holds then are answered `reconnect: true` by its drain, and their
    tabs poll again on the other workers or on its replacement.
    """

    def __init__(self, peak: int, ask: Callable[[], object]) -> None:
        self.needed = peak  # 0: never
        self.ask = ask
        self.peak = 0
        self.quiet = 0  # quiet observations in a row since the peak was reached
        self.asked = False

    def observe(self, held: int) -> bool:
        """Note the polls held now; True when this call asked to be replaced."""
        if self.asked or self.needed <= 0:
            return False
        self.peak = max(self.peak, held)
        if self.peak < self.needed:
            return False
        self.quiet = self.quiet + 1 if held * RECYCLE_QUIET <= self.needed else 0
        if self.quiet < RECYCLE_QUIET_SWEEPS:
            return False
        self.asked = True
        self.ask()
        return True


def rss_kib() -> int:
    """This process's resident set size in KiB (0 where /proc is not there)."""
    return proc_status().get("VmRSS", 0)


def proc_stat(pid: int | str = "self") -> list[str]:
    """The fields of /proc/<pid>/stat after the command name ([0] the state, "Z" for a
    process exited but not reaped; [11], [12] user and system CPU ticks; [19] the start,
    in ticks since boot), or [] when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return []


def start_time(pid: int | str = "self") -> float:
    """When the process started, in seconds since the epoch (0.0 where /proc is not
    there): Prometheus's process_start_time_seconds, which shows a worker replaced."""
    try:
        ticks = int(proc_stat(pid)[19])
        with open("/proc/uptime") as fh:  # to the hundredth (/proc/stat's btime: the second)
            boot = time.time() - float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return boot + ticks / os.sysconf("SC_CLK_TCK")


_started: dict[int, float] = {}  # by pid: a forked worker has its own


def own_start_time() -> float:
    """start_time() of this process, read once: the same figure on every scrape (read
    again, the boot time estimated from /proc/uptime moves by a few milliseconds)."""
    pid = os.getpid()
    if pid not in _started:
        _started[pid] = start_time(pid)
    return _started[pid]


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """The sizes (KiB) of /proc/<pid>/status: VmRSS, RssAnon (the heaps: what a leak
    grows), RssFile (code and files mapped, shared with other processes), RssShmem..."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                name, _, value = line.partition(":")
                if value.strip().endswith(" kB"):
                    found[name] = int(value.split()[0])
    except OSError:
        pass
    return found


_MALLINFO2 = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO2.split()]


def heap_usage() -> dict[str, int]:
    """What the allocators hold (KiB): glibc's heap in use and free (mallinfo2: C objects
    and Python objects over 512 bytes), and pymalloc's arenas (Python's small objects):
    arenas held, blocks in use. Empty where unavailable."""
    usage: dict[str, int] = {}
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallinfo2 = libc.mallinfo2
        mallinfo2.restype = _MallInfo2
        info = mallinfo2()
        usage.update(
            malloc_in_use=info.uordblks // 1024,
            malloc_free=info.fordblks // 1024,
            malloc_mmapped=info.hblkhd // 1024,
        )
    except (OSError, AttributeError, TypeError):
        pass
    usage.update(_pymalloc_stats())
    usage.update(allocator.jemalloc_stats())
    return usage


def _pymalloc_stats() -> dict[str, int]:
    """pymalloc's arenas and blocks (KiB), from sys._debugmallocstats (written to fd 2)."""
    if not hasattr(sys, "_debugmallocstats"):
        return {}
    with tempfile.TemporaryFile() as out:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode("ascii", "replace")
    stats = {}
    for line in text.splitlines():
        name, _, value = line.partition("=")
        value = value.strip().replace(",", "")
        if name.startswith("# arenas allocated current"):
            stats["pymalloc_arenas"] = int(value)
        elif name.startswith("# bytes in allocated blocks"):
            stats["pymalloc_in_use"] = int(value) // 1024
        elif name.startswith("# bytes in available blocks"):
            stats["pymalloc_free_blocks"] = int(value) // 1024
        elif name.startswith("Total"):  # the arenas' (the next Total is the arena map's)
            stats["pymalloc_held"] = int(value) // 1024
            break
    return stats


class MemoryProbe:
    """`presence serve --memory-probe DIR`: on SIGUSR2, a node writes what holds its memory
    to DIR, for finding leaks (presence bench --soak compares the reports of its workers).

    Each report is <pid>-<n>.json: RSS before and after a full collection and
    trim_memory(), RSS by kind, the allocators' heaps (heap_usage), the collector's objects
    by type, and `extra()` (the node's own counts). When tracemalloc traces (PYTHONTRACEMALLOC=1
    in the node's environment: slower, a diagnosis), also <pid>-<n>.tracemalloc, a snapshot
    to compare with tracemalloc.Snapshot.load(...).compare_to(...).
    """

    def __init__(self, directory: str, extra: Callable[[], dict] = dict) -> None:
        self.directory = directory
        self.extra = extra
        self.count = 0

    def install(self, loop: Any) -> None:
        """Write a report on each SIGUSR2 to this process (`loop`: its asyncio loop)."""
        loop.add_signal_handler(signal.SIGUSR2, self.write)

    def write(self) -> str:
        """Write one report now; returns its path without the suffix."""
        self.count += 1
        base = os.path.join(self.directory, f"{os.getpid()}-{self.count}")
        untrimmed = rss_kib()
        gc.collect()
        trim_memory()
        types = Counter(type(o).__name__ for o in gc.get_objects())
        traced = tracemalloc.is_tracing()
        if traced:
            tracemalloc.take_snapshot().dump(base + ".tracemalloc")
        report = {
            "pid": os.getpid(),
            "allocator": allocator.current(),
            "rss_kib_untrimmed": untrimmed,
            "rss_kib": rss_kib(),
            "status": {k: v for k, v in proc_status().items() if k.startswith("Rss")},
            "heap": heap_usage(),
            "traced_kib": tracemalloc.get_traced_memory()[0] // 1024 if traced else None,
            "gc_objects": sum(types.values()),
            "gc_frozen": gc.get_freeze_count(),
            "types": dict(types.most_common(40)),
            **self.extra(),
        }
        with open(base + ".json.part", "w") as fh:
            json.dump(report, fh)
        os.replace(base + ".json.part", base + ".json")  # complete when it appears
        return base
