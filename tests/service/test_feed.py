"""The node-local feed: merging store reads into its tail, and waking waiters."""
import asyncio

import pytest

from presence.service.feed import Feed, Hold
from presence.service.gateway import LogSlice


def events(*ids):
    return [{"id": i, "type": "message"} for i in ids]


def feed_with(cursor, seq, ids):
    feed = Feed(fetch=None)
    feed.observe(LogSlice(cursor, seq, 0, events(*ids)))
    return feed


def test_tail_answers_cursors_it_covers_and_defers_the_rest():
    feed = feed_with(2, 5, [3, 4, 5])
    assert [e["id"] for e in feed.events_after(3)] == [4, 5]
    assert feed.events_after(5) == []
    assert feed.events_after(1) is None  # older than the tail: read the store
    assert feed.events_after(6) is None  # newer than this node knows


def test_reads_extend_the_tail_and_late_reads_are_ignored():
    feed = feed_with(2, 5, [3, 4, 5])
    feed.observe(LogSlice(4, 7, 0, events(5, 6, 7)))
    assert [e["id"] for e in feed.tail] == [3, 4, 5, 6, 7]
    feed.observe(LogSlice(2, 4, 0, events(3, 4)))  # started before the last one, ended after
    assert feed.seq == 7 and len(feed.tail) == 5
    feed.observe(LogSlice(9, 10, 0, events(10)))  # beyond a gap
    assert [e["id"] for e in feed.tail] == [10] and feed.events_after(8) is None


def test_a_reset_read_sends_readers_to_the_store():
    feed = feed_with(2, 5, [3, 4, 5])
    feed.observe(LogSlice(5, 1, 0, reset=True))
    assert feed.seq is None and feed.events_after(5) is None


@pytest.mark.gen_test
async def test_poke_refreshes_once_then_wakes_every_waiter():
    reads = []

    async def fetch(cursor, epoch):
        reads.append(cursor)
        return LogSlice(cursor, 6, 0, events(6))

    feed = Feed(fetch)
    feed.observe(LogSlice(5, 5, 0, []))
    waiters = [asyncio.ensure_future(feed.wait(5)) for _ in range(10)]
    await asyncio.sleep(0)
    feed.poke()
    feed.poke()
    assert await asyncio.gather(*waiters) == [True] * 10
    assert reads in ([5], [5, 6]) and feed.events_after(5) == events(6)
    assert feed.waiting == 0 and feed.covered == feed.pokes


@pytest.mark.gen_test
async def test_wait_times_out_and_a_hold_cancels_it():
    feed = Feed(fetch=None)
    assert await feed.wait(0.01) is False
    hold = Hold()
    waiting = asyncio.ensure_future(feed.wait(5, hold))
    await asyncio.sleep(0)
    hold.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert feed.waiting == 0
