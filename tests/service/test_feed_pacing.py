"""A feed's turns (Feed.pace) and the answers one wake-up shares (events list, encoding)."""

import asyncio

import pytest

from presence.service.feed import Feed, Hold
from presence.service.records import Event, LogSlice
from presence.web.base import encode_answer, encode_json

PACE = 0.05  # what a busy deployment sets with --answer-pace


def at(cursor):
    """A poll waiting after `cursor` (of a log before epochs: None)."""
    hold = Hold()
    hold.cursor = cursor or 0
    return hold


def events(*ids):
    return [{"id": i, "type": "message"} for i in ids]


def growing_log():
    """A fetch whose log grows by one event per read, and the reads it served."""
    reads = []

    async def fetch(cursor, epoch):
        reads.append(cursor)
        return LogSlice(cursor, cursor + 1, 0, events(cursor + 1))

    return fetch, reads


@pytest.mark.gen_test
async def test_an_event_into_a_quiet_feed_is_answered_at_once():
    fetch, _ = growing_log()
    feed = Feed(fetch, pace=PACE)
    feed.observe(LogSlice(5, 5, 0, []))
    loop = asyncio.get_running_loop()
    assert feed.pace() is None
    hold = feed.hold(at(feed.seq))
    start = loop.time()
    feed.poke()
    assert (await hold)["events"]
    assert loop.time() - start < PACE


@pytest.mark.gen_test
async def test_after_a_wake_up_the_next_answers_wait_for_the_feeds_next_turn():
    fetch, reads = growing_log()
    feed = Feed(fetch, pace=PACE)
    feed.observe(LogSlice(5, 5, 0, []))
    loop = asyncio.get_running_loop()
    first = feed.hold(at(feed.seq))
    feed.poke()
    assert (await first)["events"]
    woken = loop.time()
    # a poll that comes back now waits for the turn, and so does the next wake-up
    turn = feed.pace()
    assert turn is not None and feed.pace() is turn  # one shared future per turn
    second = feed.hold(at(feed.seq))
    feed.poke()
    feed.poke()
    await asyncio.sleep(0.01)
    assert not second.future.done() and reads == [5]
    assert (await second)["events"]
    assert turn.done() and loop.time() - woken >= PACE * 0.9
    assert reads == [5, 6]  # the pokes of the whole turn: one read


@pytest.mark.gen_test
async def test_a_waiter_cancelled_during_a_turn_leaves_the_others_waiting():
    fetch, _ = growing_log()
    feed = Feed(fetch, pace=PACE)
    feed.observe(LogSlice(5, 5, 0, []))
    hold = feed.hold(at(feed.seq))
    feed.poke()
    await hold
    turn = feed.pace()
    assert turn is not None
    gone = asyncio.ensure_future(asyncio.shield(turn))
    staying = asyncio.ensure_future(asyncio.shield(turn))
    await asyncio.sleep(0)
    gone.cancel()
    await staying
    assert turn.done() and not turn.cancelled()


@pytest.mark.gen_test
async def test_a_turn_with_nothing_to_answer_leaves_the_feed_quiet():
    fetch, _ = growing_log()
    feed = Feed(fetch, pace=PACE)
    feed.observe(LogSlice(5, 5, 0, []))
    hold = feed.hold(at(feed.seq))
    feed.poke()
    await hold
    await feed.pace()
    await asyncio.sleep(PACE * 1.2)
    assert feed.pace() is None  # the next event is answered at once again


def test_polls_at_one_cursor_share_their_answer():
    feed = Feed(fetch=None)
    feed.observe(LogSlice(2, 5, 0, events(3, 4, 5)))
    shared = feed.events_after(3)
    assert [e["id"] for e in shared] == [4, 5]
    assert feed.events_after(3) is shared  # the same list for every poll at that cursor
    assert [e["id"] for e in feed.events_after(2)] == [3, 4, 5]
    feed.observe(LogSlice(5, 6, 0, events(6)))
    assert [e["id"] for e in feed.events_after(3)] == [4, 5, 6]  # a new tail, a new answer


def test_an_answer_is_encoded_once_per_events_list_and_cursor():
    shared = [Event(4, '{"type":"message","data":"</script>"}')]
    first = encode_answer({"cursor": "e:4", "events": shared})
    assert first == encode_json({"cursor": "e:4", "events": shared}).encode()
    assert b"</" not in first
    assert encode_answer({"cursor": "e:4", "events": shared}) is first
    other = encode_answer({"cursor": "e:4", "events": list(shared)})
    assert other == first and other is not first  # another list: encoded again
    assert encode_answer({"cursor": "f:4", "events": shared}) != first


@pytest.mark.gen_test
async def test_a_pace_of_zero_answers_every_wake_up_at_once():
    feed = Feed(lambda cursor, epoch: None, pace=0)
    feed.paced_until = asyncio.get_running_loop().time() + 60  # as after a turn
    assert feed.pace() is None


@pytest.mark.gen_test
async def test_a_presence_event_is_never_paced():
    feed = Feed(lambda cursor, epoch: None, pace=60)
    feed.paced_until = asyncio.get_running_loop().time() + 60  # a stream of messages went by
    turn = feed.pace()
    assert turn is not None and not turn.done()  # the next poll would wait a minute
    feed.poke(urgent=True)  # a join, leave or offline
    assert turn.done() and feed.pace() is None  # the waiting polls go now, and the next
