"""Process-wide settings of a long-running server: the cyclic garbage collector.

A busy node holds a large heap (one handler, stream and held poll per connection, the
store's keyspace); with CPython's default thresholds (700, 10, 10) a full collection
runs every few seconds and walks the whole heap, freezing the event loop for up to a
second with 10,000 connections (bench/README.md). Requests and store commands create no
reference cycles (tests/service/test_gc.py and tests/store/test_gc.py check it), so
nearly all memory is freed by reference counting and the collector can run rarely.
"""
from __future__ import annotations

import gc

# Young collections every 50,000 net allocations of container objects (instead of 700),
# middle ones every 50 young ones; a full collection only once the objects that survived
# into the old generation since the last one reach 100,000 (CPython also waits until they
# are a quarter of the old generation, so full passes stay proportional to the heap's
# growth, not to the request rate).
THRESHOLDS = (50_000, 50, 100_000)


def tune_gc(thresholds: tuple[int, int, int] = THRESHOLDS) -> None:
    """Call once start-up is done: collect, freeze the survivors, raise the thresholds.

    gc.freeze() moves every object alive now (modules, classes, functions, the
    application's routes and settings) into a permanent generation that collections
    never scan again, so a full pass only walks what was allocated while serving.
    Raising the thresholds cuts how often the collector runs; that costs little memory
    because the service does not create cyclic garbage, and what cycles do appear
    (a rare error path) are still collected, just later.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
