"""The leave grace and the disconnect grace, with real expiry and real subscribers.

Two nodes on one store (redis-server, the bundled store, a Redis Cluster), --timeout 30 s:
every `leave` or `offline` seen here comes from a grace, not from the timeout. On Redis the
nodes claim on deadline timers; the bundled store announces the expiry at the deadline.
"""

import asyncio
import time

import pytest

from presence.service import model
from presence.service.feed import Hold
from presence.service.subscriber import Subscriber
from tests.helpers import wait_until_async
from tests.service.helpers import make_presence

LEAVE_GRACE = 0.4
DISCONNECT_GRACE = 0.4


def two_nodes(io_loop, store_url, **settings):
    """Two nodes on the store with these settings, subscribed; stopped after the test."""
    made = [make_presence(store_url, **settings) for _ in range(2)]
    subscribers = [Subscriber(n, sweep_interval=30) for n in made]
    io_loop.run_sync(lambda: asyncio.gather(*(s.start() for s in subscribers)))
    yield made
    for s, n in zip(subscribers, made, strict=True):
        io_loop.run_sync(s.stop)
        io_loop.run_sync(n.gateway.close)


@pytest.fixture
def nodes(store_url, io_loop):
    yield from two_nodes(
        io_loop, store_url, leave_grace=LEAVE_GRACE, disconnect_grace=DISCONNECT_GRACE
    )


async def events_of(node, after=0):
    return [(e["type"], e["user"]) for e in (await node.gateway.read_channel("room", after)).events]


async def members(node):
    return [m.user for m in (await node.channel("room", None, 100)).members]


async def held_poll(node, user, conn, cursor):
    """A poll of `conn` held by `node` (nothing to answer yet): its Hold."""
    hold = Hold()
    answer = await node.start_poll("room", user, conn, cursor, hold)
    assert answer is hold
    return hold


@pytest.mark.gen_test(timeout=20)
async def test_a_reload_within_the_leave_grace_is_silent(nodes):
    a, b = nodes
    await a.join("room", "watcher", "w", None)
    await a.join("room", "alice", "tab1", None)
    await a.leave("room", "alice", "tab1")  # the page unloads...
    await b.join("room", "alice", "tab1", None)  # ...and the reloaded page joins again
    await a.leave("room", "alice", "tab1")
    await b.join("room", "alice", "tab2", None)  # a new connection id comes back as well
    await asyncio.sleep(LEAVE_GRACE * 3)
    assert await events_of(a) == [("join", "watcher"), ("join", "alice")]
    assert await members(a) == ["alice", "watcher"]
    assert (await b.poll("room", "alice", "tab2", 2))["events"] == []


@pytest.mark.gen_test(timeout=20)
async def test_a_leave_without_return_is_one_leave_after_the_grace(nodes):
    a, b = nodes
    await a.join("room", "watcher", "w", None)
    await b.join("room", "alice", "tab1", None)
    await b.leave("room", "alice", "tab1")
    assert await events_of(a, 2) == []  # not yet: alice may come back
    await wait_until_async(lambda: a.stats.events["leave"] + b.stats.events["leave"] == 1)
    await asyncio.sleep(0.2)
    assert await events_of(a, 2) == [("leave", "alice")]  # a leave, not an offline
    assert a.stats.events["offline"] + b.stats.events["offline"] == 0
    assert await members(a) == ["watcher"]
    got = await a.poll("room", "alice", "tab1", 3)
    assert (got["rejoin"], got["reason"]) == (True, "left")


@pytest.mark.gen_test(timeout=20)
async def test_a_second_tab_alive_makes_a_leave_silent(nodes):
    a, b = nodes
    await a.join("room", "alice", "tab1", None)
    await b.join("room", "alice", "tab2", None)
    await a.leave("room", "alice", "tab1")
    await asyncio.sleep(LEAVE_GRACE * 3)
    assert await events_of(a) == [("join", "alice")]
    assert await members(a) == ["alice"]


@pytest.mark.gen_test(timeout=20)
async def test_a_dropped_held_poll_is_offline_after_the_disconnect_grace(nodes):
    a, b = nodes
    await a.join("room", "watcher", "w", None)
    joined = await b.join("room", "alice", "tab1", None)
    hold = await held_poll(b, "alice", "tab1", joined["cursor"])
    hold.cancel()  # what the handler does when the connection closes
    await b.tab_dropped("room", "alice", "tab1", hold)
    await wait_until_async(lambda: a.stats.events["offline"] + b.stats.events["offline"] == 1)
    await asyncio.sleep(0.2)
    assert await events_of(a, 2) == [("offline", "alice")]
    got = await b.poll("room", "alice", "tab1", 2)
    assert (got["rejoin"], got["reason"]) == (True, "expired")


@pytest.mark.gen_test(timeout=20)
async def test_a_new_request_within_the_disconnect_grace_keeps_the_tab(nodes):
    a, b = nodes
    joined = await a.join("room", "alice", "tab1", None)
    hold = await held_poll(a, "alice", "tab1", joined["cursor"])
    hold.cancel()
    await a.tab_dropped("room", "alice", "tab1", hold)
    await b.heartbeat("room", "alice", "tab1")  # the tab is back (through the other node)
    await asyncio.sleep(DISCONNECT_GRACE * 3)
    assert await events_of(a) == [("join", "alice")]
    assert await members(a) == ["alice"]


@pytest.mark.gen_test(timeout=20)
async def test_a_drop_reported_after_a_newer_request_changes_nothing(nodes):
    a = nodes[0]
    joined = await a.join("room", "alice", "tab1", None)
    old = await held_poll(a, "alice", "tab1", joined["cursor"])
    a.clock = lambda: 1.0 + time.time()  # the next refresh is a newer one
    newer = await held_poll(a, "alice", "tab1", joined["cursor"])
    old.cancel()
    await a.tab_dropped("room", "alice", "tab1", old)  # the close of the older poll, late
    key = a.gateway.keys("room").online("alice")
    assert await a.gateway.router.client_for(key).pttl(key) > 20_000
    newer.cancel()
    await asyncio.sleep(DISCONNECT_GRACE * 2)
    assert await members(a) == ["alice"]


@pytest.mark.gen_test(timeout=20)
async def test_dropping_one_of_two_tabs_keeps_the_user(nodes):
    a, b = nodes
    joined = await a.join("room", "alice", "tab1", None)
    await b.join("room", "alice", "tab2", None)
    hold = await held_poll(a, "alice", "tab1", joined["cursor"])
    hold.cancel()
    await a.tab_dropped("room", "alice", "tab1", hold)
    await asyncio.sleep(DISCONNECT_GRACE * 3)
    assert await events_of(a) == [("join", "alice")]
    page = await a.channel("room", None, 10)
    assert page.users == 1


@pytest.mark.gen_test(timeout=20)
async def test_graces_off_keep_the_old_behaviour(store_url):
    node = make_presence(store_url)  # leave_grace = disconnect_grace = 0
    try:
        joined = await node.join("room", "alice", "tab1", None)
        hold = await held_poll(node, "alice", "tab1", joined["cursor"])
        hold.cancel()
        await node.tab_dropped("room", "alice", "tab1", hold)
        key = node.gateway.keys("room").online("alice")
        assert await node.gateway.router.client_for(key).pttl(key) > 20_000
        await node.leave("room", "alice", "tab1")
        assert await events_of(node) == [("join", "alice"), ("leave", "alice")]
    finally:
        await node.gateway.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_stray_poll_after_the_leave_does_not_stretch_the_grace(nodes):
    """A poll that was in flight when the page closed arrives after the leave: it is told
    to rejoin, and the user's key keeps the grace's deadline (the leave comes after the
    grace, not after --timeout)."""
    a, b = nodes
    await a.join("room", "watcher", "w", None)
    await b.join("room", "alice", "tab1", None)
    await b.leave("room", "alice", "tab1")
    got = await a.poll("room", "alice", "tab1", 2)  # the stray poll
    assert (got["rejoin"], got["reason"]) == (True, "left")
    remaining = await a.gateway.presence_ttl("room", "alice")
    assert remaining == -2 or remaining <= LEAVE_GRACE * 1000
    await wait_until_async(lambda: a.stats.events["leave"] + b.stats.events["leave"] == 1)
    assert await events_of(a, 2) == [("leave", "alice")]


@pytest.mark.gen_test(timeout=20)
async def test_a_stray_poll_of_a_left_tab_keeps_the_other_tabs_deadline(nodes):
    """The leak the README used to accept: a tab that left while another tab of its user
    lives no longer extends the user's key by a full --timeout."""
    a, b = nodes
    await a.join("room", "alice", "tab1", None)
    await a.join("room", "alice", "tab2", None)
    before = await a.gateway.presence_ttl("room", "alice")
    await a.leave("room", "alice", "tab1")
    await asyncio.sleep(0.3)
    got = await b.poll("room", "alice", "tab1", 1)  # the stray poll of the tab that left
    assert (got["rejoin"], got["reason"]) == (True, "left")
    after = await a.gateway.presence_ttl("room", "alice")
    assert after < before - 150  # tab2's deadline, 0.3 s nearer; not one from tab1's poll


@pytest.mark.gen_test(timeout=30)
async def test_a_drain_does_not_refresh_a_tab_answered_and_left_before_its_turn(nodes, monkeypatch):
    """483f720: the drain lists the held polls at its start and refreshes them a few at a
    time. A poll answered before its turn, whose tab then left, is not refreshed (it
    would be a stray refresh, see the test below): its user's leave stays one `leave`."""
    a, b = nodes
    monkeypatch.setattr(model, "CLAIM_CONCURRENCY", 1)  # the drain refreshes 8 at a time
    b.poll_timeout = 30
    blockers = [f"u{i}" for i in range(8)]
    for user in blockers:
        await b.join("lobby", user, "c", None)
    polls = [asyncio.ensure_future(b.poll("lobby", user, "c", 8)) for user in blockers]
    await a.join("room", "watcher", "w", None)
    joined = await b.join("room", "alice", "tab1", None)
    alice = asyncio.ensure_future(b.poll("room", "alice", "tab1", joined["cursor"]))
    await wait_until_async(lambda: b.pending == 9, message="the polls are held")
    refresh, release, blocked, refreshed = b.gateway.refresh, asyncio.Event(), [], []

    async def slow_refresh(channel, user, conn, *args, **kwargs):
        refreshed.append((channel, user, conn))
        if channel == "lobby":
            blocked.append(user)
            await release.wait()
        return await refresh(channel, user, conn, *args, **kwargs)

    b.gateway.refresh = slow_refresh
    drain = asyncio.ensure_future(b.drain())
    await wait_until_async(lambda: len(blocked) == 8, message="the drain's first turns")
    await b.send("room", "watcher", "hi")
    got = await asyncio.wait_for(alice, 5)  # answered before its turn...
    assert [e["type"] for e in got["events"]] == ["message"]
    await b.leave("room", "alice", "tab1")  # ...and its tab left
    release.set()
    done = await drain
    assert ("room", "alice", "tab1") not in refreshed
    assert done == 8
    remaining = await a.gateway.presence_ttl("room", "alice")
    assert remaining == -2 or remaining <= LEAVE_GRACE * 1000
    await wait_until_async(lambda: a.stats.events["leave"] + b.stats.events["leave"] == 1)
    await asyncio.sleep(0.2)
    assert await events_of(a, 3) == [("leave", "alice")]
    assert a.stats.events["offline"] + b.stats.events["offline"] == 0
    for poll in polls:
        assert (await poll)["reconnect"] is True


@pytest.mark.gen_test(timeout=30)
async def test_an_undo_later_than_the_grace_claims_the_leave_itself(nodes):
    """A stray refresh in the grace lengthens the user's key by --timeout; its undo comes
    after the grace, gives the key its past deadline back, and the store deletes it with
    no expiry notice (`del`): the node that undid it claims the `leave` at once, instead
    of leaving it to the sweep (--timeout / 2 later; 30 s here)."""
    a, b = nodes
    release = asyncio.Event()
    undo = a.gateway._undo_stray_refresh

    async def late_undo(*args):
        await release.wait()
        return await undo(*args)

    a.gateway._undo_stray_refresh = late_undo
    await a.join("room", "watcher", "w", None)
    await b.join("room", "alice", "tab1", None)
    await b.leave("room", "alice", "tab1")
    stray = asyncio.ensure_future(a.poll("room", "alice", "tab1", 2))

    async def lengthened():
        return await a.gateway.presence_ttl("room", "alice") > LEAVE_GRACE * 1000

    await wait_until_async(lengthened, message="the stray refresh in the grace")
    await asyncio.sleep(LEAVE_GRACE * 2)  # past the grace: the key is still there
    assert await a.gateway.presence_ttl("room", "alice") > 20_000
    release.set()
    got = await stray
    assert (got["rejoin"], got["reason"]) == (True, "left")
    await wait_until_async(
        lambda: a.stats.events["leave"] + b.stats.events["leave"] == 1, timeout=5
    )
    await asyncio.sleep(0.2)
    assert await events_of(a, 2) == [("leave", "alice")]
    assert a.stats.events["offline"] + b.stats.events["offline"] == 0


@pytest.fixture
def short_nodes(store_url, io_loop):
    """Two nodes with --timeout 2 s and a 1 s leave grace (a stray refresh lengthens the
    user's key by the timeout: short, so that the test sees it expire)."""
    yield from two_nodes(io_loop, store_url, timeout=2, leave_grace=1)


@pytest.mark.gen_test(timeout=30)
async def test_a_leave_stays_a_leave_however_late_the_stray_refresh_undo(short_nodes):
    """Polls in flight when the tab left refresh the user's key (SET XX) and their undo is
    late (here: held until the end): the second comes after the grace, so the key outlives
    the grace and the leave's first deadline by far. The user still gets one `leave`,
    never `offline`, and the late undos change nothing after it."""
    a, b = short_nodes
    release = asyncio.Event()
    undo = a.gateway._undo_stray_refresh

    async def late_undo(*args):
        await release.wait()
        await undo(*args)

    a.gateway._undo_stray_refresh = late_undo
    await b.join("room", "alice", "tab1", None)
    await b.leave("room", "alice", "tab1")
    first = asyncio.ensure_future(a.poll("room", "alice", "tab1", 1))  # stray, in the grace

    async def lengthened():  # past the grace: the stray refresh landed
        return await a.gateway.presence_ttl("room", "alice") > 1000

    await wait_until_async(lengthened, timeout=0.9, message="the stray refresh in the grace")
    await asyncio.sleep(1.5)  # past the grace
    second = asyncio.ensure_future(a.poll("room", "alice", "tab1", 1))  # stray, after it
    await wait_until_async(
        lambda: (
            a.stats.events["leave"] + b.stats.events["leave"] >= 1
            or a.stats.events["offline"] + b.stats.events["offline"] >= 1
        ),
        timeout=10,
    )
    release.set()
    for got in await asyncio.gather(first, second):
        assert (got["rejoin"], got["reason"]) == (True, "left")
    await asyncio.sleep(0.5)
    assert await events_of(a) == [("join", "alice"), ("leave", "alice")]
    assert a.stats.events["offline"] + b.stats.events["offline"] == 0
    assert await members(a) == []
