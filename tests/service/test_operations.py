"""What operators read: prefix pages, distinct users, nodes, history (every store kind).

On a fake clock: the history's intervals and the nodes' announcements follow it.
"""

import pytest

from presence.service.keys import USERS
from presence.service.nodes import NodeReporter
from tests.service.helpers import client_for, expire, make_presence


async def names_of_pages(fetch, limit):
    """Every page of `fetch(after, limit)` -> (names, next): the pages' names."""
    pages, after = [], None
    while True:
        names, after = await fetch(after, limit)
        pages.append(names)
        if after is None:
            return pages


@pytest.mark.gen_test
async def test_channels_by_prefix_in_pages(node):
    for channel in ("a1", "a2", "a3", "ab", "b1", "a"):
        await node.join(channel, "u", "t", None)

    async def fetch(after, limit):
        rows, following = await node.channels(after, limit, prefix="a")
        return [row[0] for row in rows], following

    assert await names_of_pages(fetch, 2) == [["a", "a1"], ["a2", "a3"], ["ab"]]
    rows, following = await node.channels(None, 10, prefix="b1")
    assert (rows, following) == ([("b1", 1, 1)], None)
    assert await node.channels(None, 10, prefix="c") == ([], None)


@pytest.mark.gen_test
async def test_members_by_prefix_in_pages(node):
    for user in ("al", "alice", "alfred", "bob", "albert"):
        await node.join("room", user, "t", None)

    async def fetch(after, limit):
        page = await node.channel("room", after, limit, prefix="al")
        assert page is not None and page.users == 5  # the counts stay the channel's
        return [m.user for m in page.members], page.next

    assert await names_of_pages(fetch, 2) == [["al", "albert"], ["alfred", "alice"], []]
    page = await node.channel("room", "albert", 10, prefix="ali")
    assert [m.user for m in page.members] == ["alice"]


@pytest.mark.gen_test
async def test_distinct_users_across_channels(node, other_node):
    await node.join("one", "alice", "t1", None)
    await node.join("one", "alice", "t2", None)
    await other_node.join("two", "alice", "t3", None)
    await node.join("two", "bob", "t1", None)
    totals = await node.totals()
    assert (totals["users"], totals["channels"], totals["connections"]) == (2, 2, 4)
    await node.leave("one", "alice", "t1")
    await node.leave("one", "alice", "t2")
    assert (await node.totals())["users"] == 2  # still in "two"
    await other_node.kick("two", "alice")
    assert (await node.totals())["users"] == 1
    await expire(node, "two", "bob")
    key = node.gateway.keys("two").online("bob")
    await node.expired(key)
    await other_node.expired(key)  # the claim is once: so is the count
    totals = await node.totals()
    assert (totals["users"], totals["channels"], totals["connections"]) == (0, 0, 0)
    assert await client_for(node, USERS).zcard(USERS) == 0


@pytest.mark.gen_test
async def test_the_repair_mends_a_drifted_users_count(node):
    await node.join("one", "alice", "t1", None)
    await node.join("two", "alice", "t1", None)
    await node.join("two", "bob", "t1", None)
    users = client_for(node, USERS)
    await users.zadd(USERS, {"ghost": 1, "alice": 5})  # as if nodes died between writes
    await users.zrem(USERS, "bob")
    assert await node.repair_users() == 3
    assert await node.gateway.user_counts() == {"alice": 2, "bob": 1}
    assert (await node.totals())["users"] == 2
    assert await node.repair_users() == 0


@pytest.mark.gen_test
async def test_nodes_announce_themselves_until_their_ttl_runs_out(node, other_node, clock):
    a = NodeReporter(node, "n1", "10.0.0.1:8080")
    b = NodeReporter(other_node, "n2", "10.0.0.2:8080")
    node.stats.requests += 5
    await a.report()
    await b.report()
    nodes = await node.nodes()
    assert [(n["id"], n["address"]) for n in nodes] == [
        ("n1", "10.0.0.1:8080"),
        ("n2", "10.0.0.2:8080"),
    ]
    assert set(nodes[0]) == {"id", "address", "held_polls", "requests_per_s", "version",
                             "started", "seen"}  # fmt: skip
    assert nodes[0]["seen"] == node.now() and nodes[0]["requests_per_s"] > 0
    clock.advance(11)  # n2 stopped announcing; n1 goes on
    await a.report()
    assert [n["id"] for n in await node.nodes()] == ["n1"]


@pytest.mark.gen_test
async def test_history_has_one_point_per_interval_from_all_nodes(store_url, clock):
    clock.now = 1_800_000_000.0
    made = [make_presence(store_url, clock) for _ in range(2)]
    reporters = [NodeReporter(m, f"n{i}", "-") for i, m in enumerate(made)]
    a, b = made
    try:
        await a.join("room", "bob", "t1", None)
        clock.advance(31.5)  # bob went silent 1.5 s ago
        await expire(a, "room", "bob")
        await b.expired(a.gateway.keys("room").online("bob"))  # an offline lag of 1.5 s
        for _ in range(2):
            for reporter in reporters:
                await reporter.report()  # both offer; one writes (interval 1, events unknown)
            await a.join("room", "alice", "t1", None)
            await a.send("room", "alice", "hi")
            await b.send("room", "alice", "hi")
            clock.advance(10)
        for reporter in reporters:
            await reporter.report()
        points = await a.history(60)
        base = 1_800_000_000_000
        assert [p["ts"] - base for p in points] == [10_000, 20_000, 30_000]
        assert [p["events"] for p in points] == [None, 3, 2]  # from the global feed
        assert [p["offline_lag_p50_ms"] for p in points] == [None, None, 1500]
        assert [p["offline_lag_p99_ms"] for p in points] == [None, None, 1500]
        assert [p["users"] for p in points] == [0, 1, 1]
        clock.advance(3600)
        assert await a.history(60) == []  # older than the window asked for
        assert len(await a.history(120)) == 3
    finally:
        for m in made:
            await m.gateway.close()
