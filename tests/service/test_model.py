"""The presence model on a fake clock: events, cursors, exactly-once, waiting.

Every test runs against real redis-server and the bundled store (the `store_url` fixture).
Expiry is simulated by deleting the presence key and delivering the notice by hand, so
nothing here sleeps for a timeout.
"""

import asyncio
import random

import pytest

from presence.service import model
from presence.service.keys import REGISTRY
from presence.service.model import NotMember
from tests.helpers import wait_until_async
from tests.service.helpers import client_for, expire, flush, ident, make_presence


def types(events):
    return [(e["type"], e["user"]) for e in events]


@pytest.mark.gen_test
async def test_join_emits_join_once_per_user_and_counts_tabs(node, monkeypatch):
    monkeypatch.setattr("presence.service.model.SNAPSHOT_AGE", -1)  # a fresh snapshot each join
    first = await node.join("room", "alice", "tab1", '{"name":"Alice"}')
    second = await node.join("room", "alice", "tab2", None)
    got = await node.poll("room", "alice", "tab1", 0)
    assert types(got["events"]) == [("join", "alice")]
    assert got["events"][0]["info"] == {"name": "Alice"}
    assert first["cursor"] == second["cursor"] and ident(first["cursor"]) == 1
    assert second["members"] == [
        {
            "user": "alice",
            "info": {"name": "Alice"},
            "since": first["members"][0]["since"],
            "connections": 2,
        }
    ]


@pytest.mark.gen_test
async def test_closing_one_of_two_tabs_is_not_a_leave(node):
    await node.join("room", "alice", "tab1", None)
    await node.join("room", "alice", "tab2", None)
    await node.leave("room", "alice", "tab1")
    got = await node.poll("room", "alice", "tab2", 1)
    assert (ident(got["cursor"]), got["events"]) == (1, [])
    await node.leave("room", "alice", "tab2")
    got = await node.gateway.read_channel("room", 1)
    assert types(got.events) == [("leave", "alice")]


@pytest.mark.gen_test
async def test_a_silent_tab_does_not_keep_its_user_from_leaving(node, clock):
    await node.join("room", "alice", "tab1", None)
    await node.join("room", "alice", "tab2", None)
    clock.advance(31)  # tab2 went silent; tab1 comes back, then leaves
    await node.heartbeat("room", "alice", "tab1")
    await node.leave("room", "alice", "tab1")
    got = await node.gateway.read_channel("room", 1)
    assert types(got.events) == [("leave", "alice")]


@pytest.mark.gen_test
async def test_expiry_heard_by_two_nodes_records_one_offline(node, other_node):
    await node.join("room", "alice", "tab1", '{"n":1}')
    await node.join("room", "bob", "tab1", None)
    await expire(node, "room", "bob")
    key = node.gateway.keys("room").online("bob")
    await asyncio.gather(*[n.expired(key) for n in (node, other_node) for _ in range(3)])
    got = await node.poll("room", "alice", "tab1", 2)
    assert types(got["events"]) == [("offline", "bob")]
    assert node.stats.events["offline"] + other_node.stats.events["offline"] == 1
    page = await node.channel("room", None, 10)
    assert [m.user for m in page.members] == ["alice"] and page.users == 1


@pytest.mark.gen_test
async def test_expiry_of_a_key_that_came_back_records_nothing(node):
    await node.join("room", "bob", "tab1", None)
    await node.expired(node.gateway.keys("room").online("bob"))  # key still there: refreshed
    await node.expired("some:other:key")
    got = await node.gateway.read_channel("room", 1)
    assert got.events == []


@pytest.mark.gen_test
async def test_poll_returns_every_event_after_the_cursor_in_order(node):
    await node.join("room", "alice", "a", None)
    for i in range(5):
        await node.send("room", "alice", f"m{i}")
    got = await node.poll("room", "alice", "a", 2)
    assert [e["id"] for e in got["events"]] == [3, 4, 5, 6]
    assert [e["data"] for e in got["events"]] == ["m1", "m2", "m3", "m4"]
    assert ident(got["cursor"]) == 6
    assert (await node.poll("room", "alice", "a", 6))["events"] == []


@pytest.mark.gen_test
async def test_cursor_older_than_history_gets_reset_with_members(store_url, clock):
    node = make_presence(store_url, clock, history=3)
    await node.join("room", "alice", "a", '{"x":1}')
    for i in range(5):
        await node.send("room", "alice", f"m{i}")
    got = await node.poll("room", "alice", "a", 1)
    assert got["reset"] is True and ident(got["cursor"]) == 6
    assert [m["user"] for m in got["members"]] == ["alice"]
    got = await node.poll("room", "alice", "a", 3)
    assert [e["id"] for e in got["events"]] == [4, 5, 6]
    await node.gateway.close()


@pytest.mark.gen_test
async def test_cursor_beyond_the_log_gets_reset(node):
    await node.join("room", "alice", "a", None)
    got = await node.poll("room", "alice", "a", 99)
    assert got["reset"] is True and ident(got["cursor"]) == 1


@pytest.mark.gen_test
async def test_old_events_are_trimmed_by_age(store_url, clock):
    node = make_presence(store_url, clock, history_age=60)
    await node.join("room", "alice", "a", None)
    await node.send("room", "alice", "old")
    clock.advance(30)
    await node.heartbeat("room", "alice", "a")
    await node.send("room", "alice", "new")
    clock.advance(40)
    await node.heartbeat("room", "alice", "a")
    await node.reconcile()
    assert (await node.poll("room", "alice", "a", 0))["reset"] is True
    got = await node.poll("room", "alice", "a", 2)
    assert [e["data"] for e in got["events"]] == ["new"]
    await node.gateway.close()


@pytest.mark.gen_test
async def test_reconcile_finds_keys_that_vanished_unannounced(node, other_node, clock):
    await node.join("room", "alice", "a", None)
    await node.join("room", "bob", "b", None)
    clock.advance(31)
    await node.heartbeat("room", "alice", "a")
    await expire(node, "room", "bob")
    assert await asyncio.gather(node.reconcile(), other_node.reconcile()) in ([1, 0], [0, 1])
    got = await node.gateway.read_channel("room", 2)
    assert types(got.events) == [("offline", "bob")]


@pytest.mark.gen_test
async def test_kick_emits_leave_kicked_and_unknown_user_raises(node):
    await node.join("room", "alice", "a", None)
    await node.join("room", "alice", "b", None)
    answer = await node.kick("room", "alice")
    got = await node.gateway.read_channel("room", 1)
    assert got.events == [
        {
            "id": answer["id"],
            "type": "leave",
            "user": "alice",
            "info": None,
            "ts": node.now(),
            "reason": "kicked",
        }
    ]
    with pytest.raises(NotMember):
        await node.kick("room", "alice")
    assert (await node.channel("room", None, 10)).connections == 0


@pytest.mark.gen_test
async def test_send_needs_membership(node):
    with pytest.raises(NotMember):
        await node.send("room", "alice", "hi")
    await node.join("room", "alice", "a", None)
    assert await node.send("room", "alice", "hi") == {"ok": True, "id": 2}


@pytest.mark.gen_test
async def test_held_poll_wakes_when_another_node_records_an_event(node, other_node):
    await node.join("room", "alice", "a", None)
    node.poll_timeout = 10
    held = asyncio.ensure_future(node.poll("room", "alice", "a", 1))
    await wait_until_async(lambda: node.pending == 1, message="the poll is held")
    assert not held.done()
    await other_node.join("room", "bob", "b", None)
    node.woken("room")  # what the subscriber does when the store announces the event
    got = await asyncio.wait_for(held, 5)
    assert types(got["events"]) == [("join", "bob")]


@pytest.mark.gen_test
async def test_held_poll_times_out_with_no_events(node):
    await node.join("room", "alice", "a", None)
    got = await node.poll("room", "alice", "a", 1)
    assert (ident(got["cursor"]), got["events"]) == (1, [])
    assert node.pending == 0


@pytest.mark.gen_test
async def test_cancelled_poll_leaves_no_waiter(node):
    await node.join("room", "alice", "a", None)
    node.poll_timeout = 10
    held = asyncio.ensure_future(node.poll("room", "alice", "a", 1))
    await wait_until_async(lambda: node.pending == 1, message="the poll is held")
    assert node.pending == 1 and node.feeds["room"].waiting == 1
    held.cancel()
    await asyncio.gather(held, return_exceptions=True)
    assert node.pending == 0 and node.feeds["room"].waiting == 0


@pytest.mark.gen_test
async def test_shutdown_answers_held_polls_with_reconnect(node):
    await node.join("room", "alice", "a", None)
    node.poll_timeout = 10
    held = asyncio.ensure_future(node.poll("room", "alice", "a", 1))
    await wait_until_async(lambda: node.pending == 1, message="the poll is held")
    node.shutdown()
    got = await asyncio.wait_for(held, 5)
    assert (ident(got["cursor"]), got["events"], got["reconnect"]) == (1, [], True)


@pytest.mark.gen_test
async def test_drain_refreshes_held_tabs_before_answering_reconnect(node, clock):
    """A drained tab gets a whole --timeout from the drain, not from its poll: a slow
    takeover by another node cannot let its key expire."""
    await node.join("room", "alice", "a", None)
    await node.join("room", "bob", "b", None)
    node.poll_timeout = 30
    held = asyncio.ensure_future(node.poll("room", "alice", "a", 2))
    await wait_until_async(lambda: node.pending == 1, message="the poll is held")
    k = node.gateway.keys("room")
    deadlines = client_for(node, k.seq)
    polled = await deadlines.zscore(k.deadlines, "alice")
    clock.advance(20)
    assert await node.drain() == 1
    got = await asyncio.wait_for(held, 5)
    assert got["reconnect"] is True
    assert await deadlines.zscore(k.deadlines, "alice") == polled + 20_000
    assert await deadlines.zscore(k.deadlines, "bob") == polled  # not held here: untouched


@pytest.mark.gen_test
async def test_global_feed_carries_every_channel(node):
    start = await node.global_events(None)
    await node.join("one", "alice", "a", None)
    await node.join("two", "bob", "b", None)
    got = await node.global_events(start["cursor"])
    assert [(e["channel"], e["type"], e["user"]) for e in got["events"]] == [
        ("one", "join", "alice"),
        ("two", "join", "bob"),
    ]


@pytest.mark.gen_test
async def test_members_pages_and_counts(node):
    for i in range(5):
        await node.join("big", f"u{i}", "c", None)
    await node.join("big", "u0", "d", None)
    page = await node.channel("big", None, 2)
    assert (page.users, page.connections, page.next) == (5, 6, "u1")
    assert [(m.user, m.connections) for m in page.members] == [("u0", 2), ("u1", 1)]
    page = await node.channel("big", "u3", 2)
    assert [m.user for m in page.members] == ["u4"] and page.next is None
    assert await node.channel("nowhere", None, 2) is None
    rows, following = await node.channels(None, 10)
    assert rows == [("big", 5, 6)] and following is None


@pytest.mark.gen_test
async def test_an_empty_channel_is_forgotten_once_its_events_age_out(store_url, clock):
    node = make_presence(store_url, clock, history_age=60)
    await node.join("gone", "alice", "a", None)
    await node.leave("gone", "alice", "a")
    await node.reconcile()
    assert (await node.channels(None, 10))[0] == []  # no users: not listed
    assert (await node.channels(None, 10, history=True))[0] == [("gone", 0, 0)]  # events kept
    clock.advance(61)
    await node.reconcile()
    assert (await node.channels(None, 10, history=True))[0] == []
    assert await node.channel("gone", None, 10) is None
    await node.gateway.close()


@pytest.mark.gen_test
async def test_join_and_reset_return_the_first_members_the_user_count_and_say_there_are_more(
    node, monkeypatch
):
    from presence.service import model

    monkeypatch.setattr(model, "JOIN_MEMBERS", 10)
    monkeypatch.setattr(model, "SNAPSHOT_AGE", -1)
    await asyncio.gather(*(node.join("big", f"user{i:02}", "c", None) for i in range(25)))
    answer = await node.join("big", "zed", "c", None)
    assert len(answer["members"]) == 10 and answer["more"] is True
    assert answer["users"] == 26  # every user, not only those listed
    assert answer["members"][0]["user"] == "user00"
    reset = await node.poll("big", "zed", "c", 999)
    assert reset["reset"] is True and reset["more"] is True and ident(reset["cursor"]) == 26
    assert reset["users"] == 26
    page = await node.channel("big", "user09", 1000)
    assert (page.users, len(page.members), page.next) == (26, 16, None)


@pytest.mark.gen_test
async def test_cancelling_a_hold_ends_its_wait_and_leaves_no_waiter(node):
    from presence.service.feed import Hold

    await node.join("room", "alice", "a", None)
    node.poll_timeout = 10
    hold = Hold()
    held = asyncio.ensure_future(node.poll("room", "alice", "a", 1, hold))
    await wait_until_async(lambda: node.pending == 1, message="the poll is held")
    assert node.feeds["room"].waiting == 1
    hold.cancel()
    with pytest.raises(asyncio.CancelledError):
        await held
    assert node.pending == 0 and node.feeds["room"].waiting == 0
    gone = Hold()
    gone.cancel()  # the client left before the poll got to wait
    with pytest.raises(asyncio.CancelledError):
        await node.poll("room", "alice", "a", 1, gone)


@pytest.mark.gen_test
async def test_joins_close_together_share_a_snapshot_and_catch_up_by_events(node, monkeypatch):
    reads = []
    members_page = node.gateway.members_page

    async def counted(*args):
        reads.append(args[0])
        return await members_page(*args)

    monkeypatch.setattr(node.gateway, "members_page", counted)
    answers = await asyncio.gather(*(node.join("room", f"u{i}", "c", None) for i in range(5)))
    assert len(reads) == 1
    for i, answer in enumerate(answers):  # whatever the snapshot, it plus the events is exact
        members = {m["user"] for m in answer["members"]}
        got = await node.poll("room", f"u{i}", "c", answer["cursor"])
        members |= {e["user"] for e in got["events"] if e["type"] == "join"}
        assert members == {f"u{j}" for j in range(5)}


@pytest.mark.gen_test
async def test_a_poll_never_registers_and_says_why_the_tab_is_not_joined(node, other_node):
    assert await node.poll("room", "carol", "c", 0) == {
        "rejoin": True,
        "reason": "unknown",
        "cursor": "0",
    }
    assert await node.heartbeat("room", "carol", "c") == {
        "rejoin": True,
        "reason": "unknown",
        "cursor": "0",
    }
    assert (await node.channel("room", None, 10)) is None  # nothing was registered
    await node.join("room", "alice", "a1", '{"name":"Alice"}')
    await node.join("room", "alice", "a2", None)
    await node.join("room", "bob", "b", '{"name":"Bob"}')
    await node.leave("room", "alice", "a1")
    assert await node.poll("room", "alice", "a1", 2) == {
        "rejoin": True,
        "reason": "left",
        "cursor": "2",
    }
    await node.kick("room", "alice")
    for tab in ("a1", "a2"):  # a tab that had left before the kick still says left
        got = await other_node.poll("room", "alice", tab, 2)
        assert got["rejoin"] and got["reason"] == ("left" if tab == "a1" else "kicked")
    await expire(node, "room", "bob")
    assert (await node.heartbeat("room", "bob", "b"))["reason"] == "expired"  # not yet claimed
    await node.expired(node.gateway.keys("room").online("bob"))
    assert (await node.poll("room", "bob", "b", 2))["reason"] == "expired"
    page = await node.channel("room", None, 10)
    assert (page.users, page.connections, page.members) == (0, 0, [])
    got = await node.gateway.read_channel("room", 2)
    assert [(e["type"], e["user"]) for e in got.events] == [("leave", "alice"), ("offline", "bob")]


@pytest.mark.gen_test
async def test_joining_again_after_rejoin_restores_the_tab_with_its_info(node):
    await node.join("room", "alice", "a", '{"name":"Alice"}')
    await node.kick("room", "alice")
    assert (await node.poll("room", "alice", "a", 1))["reason"] == "kicked"
    await node.join("room", "alice", "a", '{"name":"Alice"}')  # a kick is not a ban
    got = await node.poll("room", "alice", "a", 1)
    assert [(e["type"], e["info"]) for e in got["events"]] == [
        ("leave", {"name": "Alice"}),
        ("join", {"name": "Alice"}),
    ]
    assert "rejoin" not in await node.heartbeat("room", "alice", "a")


async def listed(node):
    return [row[0] for row in (await node.channels(None, 100))[0]]


@pytest.mark.gen_test
async def test_a_channel_is_listed_exactly_while_it_has_a_member(node, other_node):
    for channel, user in [
        ("left", "a"),
        ("kicked", "b"),
        ("expired", "c"),
        ("kept", "d"),
        ("kept", "e"),
    ]:
        await node.join(channel, user, "t", None)
    assert await listed(node) == ["expired", "kept", "kicked", "left"]
    await node.leave("left", "a", "t")
    await node.kick("kicked", "b")
    await expire(node, "expired", "c")
    await node.expired(node.gateway.keys("expired").online("c"))
    await node.leave("kept", "d", "t")
    assert await listed(node) == ["kept"]
    registry = await client_for(node, REGISTRY).zrange(REGISTRY, 0, -1)
    assert registry == ["kept"]  # removed right after the removal, not by a sweep
    await node.join("left", "a", "t", None)
    assert await listed(node) == ["kept", "left"]
    rows, _ = await node.channels(None, 100, history=True)
    assert rows == [("expired", 0, 0), ("kept", 1, 1), ("kicked", 0, 0), ("left", 1, 1)]


@pytest.mark.gen_test
async def test_the_last_members_removed_at_once_still_unlist_the_channel(node, other_node):
    await node.join("pair", "x", "t", None)
    await node.join("pair", "y", "t", None)
    await asyncio.gather(node.kick("pair", "x"), other_node.kick("pair", "y"))
    assert "pair" not in await listed(node)


@pytest.mark.gen_test
async def test_a_join_racing_the_last_removal_keeps_the_channel_listed(node, other_node):
    await node.join("pair", "x", "t", None)
    unregister = node.gateway._unregister_if_empty

    async def join_first(channel):  # the join lands between the removal and the unlisting
        await other_node.join("pair", "y", "t", None)
        await unregister(channel)

    node.gateway._unregister_if_empty = join_first
    await node.kick("pair", "x")
    assert "pair" in await listed(node)


async def recount(node, channel):
    """(users, tabs) counted the slow way: every member hash and every user's tab zset."""
    await node.gateway.refresh_topology()
    k = node.gateway.keys(channel)
    redis = client_for(node, k.seq)
    users = [key async for key in redis.scan_iter(match=k.member("*"))]
    tabs = 0
    for key in [key async for key in redis.scan_iter(match=k.conns("*"))]:
        tabs += await redis.zcard(key)
    return len(users), tabs


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("seed", [7, 8, 9])
async def test_counts_match_a_recount_after_random_joins_leaves_expiries_kicks(node, clock, seed):
    rng = random.Random(seed)
    tabs: dict[str, dict[str, float]] = {}  # what should be registered: user -> conn -> deadline
    for step in range(400):
        user, conn = f"u{rng.randrange(8)}", f"c{rng.randrange(3)}"
        action = rng.choice(
            ["join", "join", "poll", "leave", "leave", "kick", "expire", "silence", "sweep"]
        )
        if action == "join":
            await node.join("room", user, conn, None)
            tabs.setdefault(user, {})[conn] = clock() + 30
        elif action == "poll":
            got = await node.heartbeat("room", user, conn)
            assert ("rejoin" not in got) == (conn in tabs.get(user, {}))
            if conn in tabs.get(user, {}):
                tabs[user][conn] = clock() + 30
        elif action == "leave":
            await node.leave("room", user, conn)
            tabs.get(user, {}).pop(conn, None)
            if user in tabs and not any(d > clock() for d in tabs[user].values()):
                del tabs[user]
        elif action == "kick" and user in tabs:
            await node.kick("room", user)
            del tabs[user]
        elif action == "expire" and user in tabs:
            await expire(node, "room", user)
            await node.expired(node.gateway.keys("room").online(user))
            del tabs[user]
        elif action == "silence":
            clock.advance(rng.choice([1, 10, 25]))  # some tabs' deadlines pass
        elif action == "sweep":
            await node.reconcile()
            for user in tabs:
                tabs[user] = {c: d for c, d in tabs[user].items() if d > clock()}
        page = await node.channel("room", None, 1000)
        counts = (page.users, page.connections) if page else (0, 0)
        assert counts == await recount(node, "room"), (step, action)
        assert counts == (len(tabs), sum(map(len, tabs.values()))), (step, action)
        assert sum(m.connections for m in page.members) == page.connections if page else True


@pytest.mark.gen_test
async def test_a_cursor_into_a_log_the_store_lost_gets_reset(node, monkeypatch):
    monkeypatch.setattr("presence.service.model.SNAPSHOT_AGE", -1)
    await node.join("room", "alice", "a", None)
    for i in range(3):
        await node.send("room", "alice", f"before {i}")
    old = (await node.poll("room", "alice", "a", 0))["cursor"]
    held = asyncio.ensure_future(node.poll("room", "alice", "a", old))
    await wait_until_async(lambda: node.pending == 1, message="the poll is held")
    await flush(node)  # the store restarted empty
    assert (await node.poll("room", "alice", "a", old))["reason"] == "unknown"
    await node.join("room", "alice", "a", None)
    await node.join("room", "bob", "b", None)
    for i in range(4):  # ids start at 1 again and pass the old cursor's
        await node.send("room", "bob", f"after {i}")
    got = await asyncio.wait_for(held, 5)  # woken by alice's join in the new log
    assert got["reset"] is True and got["cursor"].split(":")[0] != old.split(":")[0]
    got = await node.poll("room", "alice", "a", old)
    assert [m["user"] for m in got["members"]] == ["alice", "bob"]
    assert got["reset"] is True and ident(got["cursor"]) == 6 > ident(old)
    assert got["cursor"].split(":")[0] != old.split(":")[0]  # a new epoch
    assert await node.poll("room", "alice", "a", got["cursor"]) == {
        "cursor": got["cursor"],
        "events": [],
    }
    got = await node.poll("room", "alice", "a", ident(got["cursor"]) - 1)  # bare: this log's
    assert [e["data"] for e in got["events"]] == ["after 3"]
    feed = await node.global_events(old)
    assert feed["reset"] is True


@pytest.mark.gen_test
async def test_a_log_forgotten_and_begun_again_has_a_new_epoch(store_url, clock):
    node = make_presence(store_url, clock, history_age=60)
    await node.join("gone", "alice", "a", None)
    old = (await node.join("gone", "bob", "b", None))["cursor"]
    for user, conn in [("alice", "a"), ("bob", "b")]:
        await node.leave("gone", user, conn)
    clock.advance(61)
    await node.reconcile()  # events aged out, no members: the log is forgotten
    for user in ("carol", "dave", "erin"):
        await node.join("gone", user, "c", None)
    got = await node.poll("gone", "carol", "c", old)
    assert got["reset"] is True  # not the events after id 2 of another log
    await node.gateway.close()


@pytest.mark.gen_test
async def test_a_held_poll_is_one_hold_answered_by_the_timer_wheel_at_poll_timeout(node):
    from presence.service.feed import Hold

    await node.join("room", "alice", "a", None)
    node.poll_timeout = 0.2
    loop = asyncio.get_running_loop()
    start = loop.time()
    held = await node.start_poll("room", "alice", "a", 1)
    assert isinstance(held, Hold) and node.pending == 1 and len(node.waits.wheel) == 1
    got = await held
    waited = loop.time() - start
    assert (ident(got["cursor"]), got["events"]) == (1, [])
    assert 0.2 <= waited < 0.2 + node.waits.wheel.tick + 0.2
    assert node.pending == 0 and node.feeds["room"].waiting == 0 and len(node.waits.wheel) == 0


@pytest.mark.gen_test
async def test_a_cancelled_hold_leaves_the_feed_and_the_timer_wheel(node):
    await node.join("room", "alice", "a", None)
    node.poll_timeout = 10
    held = await node.start_poll("room", "alice", "a", 1)
    assert node.feeds["room"].waiting == 1 and len(node.waits.wheel) == 1
    held.cancel()
    assert node.pending == 0 and node.feeds["room"].waiting == 0 and len(node.waits.wheel) == 0
    with pytest.raises(asyncio.CancelledError):
        await held
    await node.join("room", "bob", "b", None)  # a later wake-up finds nothing to answer
    await wait_until_async(lambda: node.pending == 0 and node.feeds["room"].users == 0)


@pytest.mark.gen_test
async def test_snapshots_too_old_to_reuse_are_forgotten(node, monkeypatch):
    from presence.service import model

    monkeypatch.setattr(model, "SNAPSHOT_AGE", 0.05)
    await node.join("one", "alice", "a", None)
    await node.join("two", "bob", "b", None)
    assert list(node._snapshots) == ["one", "two"]
    await asyncio.sleep(0.1)
    await node.join("three", "carol", "c", None)
    assert list(node._snapshots) == ["three"]
    answer = await node.join("one", "dave", "d", None)  # taken again, exact as before
    assert {m["user"] for m in answer["members"]} == {"alice", "dave"}
    assert list(node._snapshots) == ["three", "one"]


@pytest.mark.gen_test
async def test_nothing_is_kept_once_everyone_left_or_expired(store_url, clock, monkeypatch):
    """Feeds, tails, quotas, snapshots and the gateway's caches of channels and events all
    empty out once the users are gone and their logs aged out (two sweeps)."""
    node = make_presence(store_url, clock, history_age=60)
    watcher = make_presence(store_url, clock, history_age=60)
    feed = await watcher.global_events(None)
    for c in range(3):
        for u in range(4):
            await node.join(f"room{c}", f"u{u}", f"tab{u}", '{"n": 1}')
        await node.send(f"room{c}", "u0", "hello", conn="tab0")
        got = await node.poll(f"room{c}", "u1", "tab1", 0)
        assert got["events"]
    await node.join("room0", "u0", "tab0b", None)
    kept = node.kept()
    assert kept["feeds"] == 3 and kept["events"] > 0 and kept["tabs"] == 5
    assert kept["channel_keys"] == 3 and kept["message_budgets"] == 1
    await watcher.global_events(feed["cursor"])
    assert watcher.kept()["events"] > 0
    for c in range(3):  # half leave, the others go silent
        for u in range(2):
            await node.leave(f"room{c}", f"u{u}", f"tab{u}")
    await node.leave("room0", "u0", "tab0b")
    clock.advance(31)
    for c in range(3):
        for u in range(2, 4):
            await expire(node, f"room{c}", f"u{u}")
    assert await node.reconcile() == 6
    clock.advance(61)  # their events age out; the channels are forgotten
    monkeypatch.setattr(model, "SNAPSHOT_AGE", 0)  # (a second of the loop's time)
    for n in (node, watcher):
        await n.reconcile()
        await n.reconcile()
    assert (await node.channels(None, 10, history=True))[0] == []
    assert node.kept() == dict.fromkeys(node.kept(), 0)
    assert watcher.kept() == dict.fromkeys(watcher.kept(), 0)
    await watcher.gateway.close()
    await node.gateway.close()
