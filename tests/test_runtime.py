"""presence.runtime: giving freed memory back (malloc_trim) and when a node does it."""

from __future__ import annotations

import subprocess
import sys
import time

from presence import allocator
from presence.runtime import TRIM_DROP, TRIM_IDLE, MemoryTrimmer, Recycler, start_time


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_trims_when_a_burst_is_over_not_while_it_lasts():
    trims: list[int] = []
    clock = Clock()
    trimmer = MemoryTrimmer(lambda: trims.append(1) or True, clock)
    for load in (0, 2000, 8000, 7000):  # growing, then a small fall
        assert not trimmer.observe(load)
    assert trimmer.observe(8000 - TRIM_DROP - 1500)  # a quarter and TRIM_DROP below the peak
    assert trims == [1]
    assert not trimmer.observe(5000)  # the peak started again at the trim
    assert trimmer.observe(0)
    assert not trimmer.observe(0) and len(trims) == 2


def test_a_load_that_is_not_rising_trims_every_trim_idle_seconds():
    clock = Clock()
    trimmer = MemoryTrimmer(lambda: True, clock)
    trimmer.observe(500)
    clock.now += TRIM_IDLE / 2
    assert not trimmer.observe(400)  # too soon, too small for a burst
    clock.now += TRIM_IDLE / 2
    assert trimmer.observe(300)  # a slow decline
    clock.now += TRIM_IDLE * 2
    assert trimmer.observe(300)  # steady: what requests freed meanwhile goes back
    clock.now += TRIM_IDLE / 2
    assert not trimmer.observe(300)  # at most every TRIM_IDLE seconds
    clock.now += TRIM_IDLE
    assert not trimmer.observe(900)  # rising: the memory is being used
    clock.now += TRIM_IDLE
    assert trimmer.observe(900)


def test_a_worker_asks_once_to_be_replaced_when_quiet_after_a_peak():
    asked: list[int] = []
    recycler = Recycler(100, lambda: asked.append(1))
    for held in (0, 40, 99, 5, 3, 0):  # no peak of 100 yet: however quiet, nothing
        assert not recycler.observe(held)
    assert not recycler.observe(100)  # the peak
    assert not recycler.observe(60)  # not quiet
    assert not recycler.observe(10)  # a tenth: quiet once
    assert not recycler.observe(11)  # more again: the count starts over
    assert not recycler.observe(10)
    assert recycler.observe(0)  # quiet at two observations in a row: it asks
    assert asked == [1]
    for held in (500, 0, 0, 0):  # once in its life: the replacement is a new process
        assert not recycler.observe(held)
    assert asked == [1]


def test_recycle_after_peak_zero_never_asks():
    asked: list[int] = []
    recycler = Recycler(0, lambda: asked.append(1))
    for held in (0, 10_000, 0, 0, 0):
        assert not recycler.observe(held)
    assert asked == []


def test_start_time_is_when_the_process_started():
    """A process started now says now (to the kernel's tick), one started earlier earlier:
    what process_start_time_seconds in /metrics reports for each worker."""
    before = time.time()
    child = subprocess.Popen(["sleep", "5"])
    try:
        started = start_time(child.pid)
        assert before - 0.05 <= started <= time.time() + 0.05
        assert start_time() < started  # this test's own process began before it
    finally:
        child.kill()
        child.wait()
    assert start_time(child.pid) == 0.0  # gone: no /proc entry


def test_trim_memory_gives_freed_heap_back():
    """A process that freed 150 MB of strings gets its RSS back with trim_memory()."""
    code = """
import sys
from presence.runtime import trim_memory
def rss():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS"))
keep, junk = [], []
for i in range(250_000):
    junk.append("x" * 600 + str(i))
    if i % 100 == 0:
        keep.append("y" * 600 + str(i))  # live among the freed ones: the heap cannot shrink
del junk
before = rss()
assert trim_memory()
print(before, rss())
"""
    if not allocator.purge():
        return  # not glibc: trim_memory() is a no-op there
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = map(int, out.stdout.split())
    assert before - after > 100_000  # KiB
