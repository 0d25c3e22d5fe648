"""Process-wide settings of a long-running server: the cyclic garbage collector.

A busy node holds a large heap (one handler, stream and held poll per connection, the
store's keyspace); with CPython's default thresholds (700, 10, 10) a full collection
runs every few seconds and walks the whole heap, freezing the event loop for up to a
second with 10,000 connections (bench/README.md). Requests and store commands create no
reference cycles (tests/web/test_gc.py and tests/store/test_gc.py check it), so nearly
all memory is freed by reference counting and the collector can run rarely.
"""

from __future__ import annotations

import gc

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
