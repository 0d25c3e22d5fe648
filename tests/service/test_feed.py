"""The node-local feed: merging store reads into its tail, and waking waiters."""

import asyncio

import pytest

from presence.service.feed import Feed, Hold, TimerWheel
from presence.service.records import LogSlice


def at(cursor):
    """A poll waiting after `cursor` (of a log before epochs: None)."""
    hold = Hold()
    hold.cursor = cursor or 0
    return hold


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
async def test_poke_refreshes_once_then_settles_every_held_poll():
    reads = []

    async def fetch(cursor, epoch):
        reads.append(cursor)
        return LogSlice(cursor, 6, 0, events(6))

    feed = Feed(fetch)
    feed.observe(LogSlice(5, 5, 0, []))
    holds = [feed.hold(at(feed.seq)) for _ in range(10)]
    assert feed.waiting == 10 and feed.held == 10
    feed.poke()
    feed.poke()
    answers = await asyncio.gather(*holds)  # one read answers all ten, from the tail
    assert answers == [{"cursor": "6", "events": events(6)}] * 10
    assert reads in ([5], [5, 6]) and feed.events_after(5) == events(6)
    assert feed.waiting == 0 and feed.held == 0 and feed.users == 0
    assert feed.covered == feed.pokes


@pytest.mark.gen_test
async def test_a_cancelled_hold_leaves_its_feed_and_cannot_be_held_again():
    feed = Feed(fetch=None)
    hold = feed.hold(at(feed.seq))
    waiting = asyncio.ensure_future(hold.future)
    await asyncio.sleep(0)
    hold.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert feed.waiting == 0 and feed.held == 0 and feed.users == 0
    with pytest.raises(asyncio.CancelledError):
        feed.hold(hold)
    assert feed.waiting == 0 and feed.held == 0


@pytest.mark.gen_test
async def test_the_timer_wheel_expires_holds_by_bucket_and_forgets_released_ones():
    expired = []
    loop = asyncio.get_running_loop()
    wheel = TimerWheel(expired.append, tick=0.05)
    start = loop.time()
    holds = [Hold() for _ in range(5)]
    for hold in holds:
        hold.due = wheel.due(start + 0.1)
        wheel.add(hold)
    late = Hold()
    late.due = wheel.due(start + 0.3)
    wheel.add(late)
    assert len(wheel.buckets) == 2 and len(wheel) == 6  # one loop timer per bucket
    holds[0].cancel()  # a client that went away leaves the wheel at once
    assert len(wheel) == 5
    while len(expired) < 4:
        await asyncio.sleep(0.01)
    assert loop.time() - start >= 0.1 and set(expired) == set(holds[1:])
    assert all(h.slot is None for h in holds) and len(wheel) == 1
    await asyncio.sleep(0.3)
    assert expired[-1] is late and not wheel.buckets
