"""The lean refresh (poll, heartbeat) and what it must never do: bring a removed tab back.

A joined tab's refresh is four XX writes whose replies say it was joined; anything else
(the tab or the key missing, the same deadline written twice in one millisecond) is
refreshed again in the exact form. Every test runs against real redis-server and the
bundled store (the `store_url` fixture), on a fake clock.
"""

import asyncio
import random

import pytest

from tests.service.helpers import client_for, expire


def count_exact(node, monkeypatch) -> list:
    """Record every refresh that had to take the exact (full) form."""
    calls = []
    exact = node.gateway._refresh_exactly

    async def counted(k, user, conn, *args):
        calls.append((user, conn))
        return await exact(k, user, conn, *args)

    monkeypatch.setattr(node.gateway, "_refresh_exactly", counted)
    return calls


async def state(node, channel: str, user: str) -> dict:
    """Everything the store holds about `user` in `channel`."""
    await node.gateway.refresh_topology()
    k = node.gateway.keys(channel)
    redis = client_for(node, k.seq)
    return {
        "online": await redis.pttl(k.online(user)),
        "member": await redis.exists(k.member(user)),
        "conns": dict(await redis.zrange(k.conns(user), 0, -1, withscores=True)),
        "connections": {
            entry.split("/", 1)[1]: score
            for entry, score in await redis.zrange(k.connections, 0, -1, withscores=True)
            if entry.split("/", 1)[0] == user
        },
        "members": await redis.zscore(k.members, user),
        "deadlines": await redis.zscore(k.deadlines, user),
    }


async def assert_consistent(node, channel: str, users) -> None:
    """The invariants the refresh must keep, whatever raced with it."""
    for user in users:
        got = await state(node, channel, user)
        assert got["conns"] == got["connections"], (user, got)  # same tabs, same deadlines
        member = bool(got["member"])
        assert (got["members"] is not None) == member, (user, got)
        assert (got["deadlines"] is not None) == member, (user, got)
        if not member:  # nothing of a removed user comes back
            assert got["online"] == -2 and got["conns"] == {}, (user, got)


@pytest.mark.gen_test
async def test_a_joined_tab_takes_the_lean_path_and_moves_every_deadline(node, clock, monkeypatch):
    exact = count_exact(node, monkeypatch)
    await node.join("room", "alice", "a", None)
    clock.advance(5)
    assert await node.heartbeat("room", "alice", "a") == {"ok": True}
    clock.advance(5)
    got = await node.poll("room", "alice", "a", 0)
    assert [e["type"] for e in got["events"]] == ["join"]
    assert exact == []
    deadline = node.now() + 30_000
    got = await state(node, "room", "alice")
    assert got["conns"] == got["connections"] == {"a": deadline}
    assert got["deadlines"] == deadline and 29_000 < got["online"] <= 30_000


@pytest.mark.gen_test
async def test_refreshes_in_the_same_millisecond_stay_joined(node, clock, monkeypatch):
    exact = count_exact(node, monkeypatch)
    await node.join("room", "alice", "a", None)
    clock.advance(1)
    answers = await asyncio.gather(
        node.heartbeat("room", "alice", "a"),
        node.poll("room", "alice", "a", 1),
        node.heartbeat("room", "alice", "a"),
    )
    assert answers[0] == answers[2] == {"ok": True} and "rejoin" not in answers[1]
    assert exact  # the same deadline twice: ZADD CH says 0, the exact form says joined
    assert await node.heartbeat("room", "alice", "a") == {"ok": True}


@pytest.mark.gen_test
async def test_an_unknown_left_kicked_or_expired_tab_is_told_why_and_not_registered(node, clock):
    await node.join("room", "alice", "a1", None)
    await node.join("room", "alice", "a2", None)
    await node.join("room", "bob", "b", None)
    await node.join("room", "carol", "c", None)
    await node.leave("room", "alice", "a1")
    await node.kick("room", "bob")
    await expire(node, "room", "carol")
    clock.advance(1)  # new deadlines: the lean path's ZADD CH would say 1 for carol's tab
    assert (await node.heartbeat("room", "alice", "a1"))["reason"] == "left"
    assert (await node.poll("room", "bob", "b", 0))["reason"] == "kicked"
    assert (await node.heartbeat("room", "carol", "c"))["reason"] == "expired"
    assert (await node.poll("room", "dave", "d", 0))["reason"] == "unknown"
    assert (await state(node, "room", "alice"))["conns"].keys() == {"a2"}
    await node.expired(node.gateway.keys("room").online("carol"))
    await assert_consistent(node, "room", ["alice", "bob", "carol", "dave"])
    assert (await node.poll("room", "carol", "c", 0))["reason"] == "expired"


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("removal", ["kick", "leave", "expire"])
async def test_refreshes_racing_a_removal_never_bring_the_tab_back(
    node, other_node, clock, removal
):
    for round_ in range(6):
        user = f"u{round_}"
        await node.join("room", user, "t", None)
        clock.advance(0.001 * (round_ % 2))  # odd rounds: the lean path sees new deadlines

        async def remove(user=user):
            if removal == "kick":
                await other_node.kick("room", user)
            elif removal == "leave":
                await other_node.leave("room", user, "t")
            else:
                await expire(other_node, "room", user)
                await other_node.expired(other_node.gateway.keys("room").online(user))

        refreshes = [
            node.heartbeat("room", user, "t") if i % 2 else node.poll("room", user, "t", 0)
            for i in range(6)
        ]
        split = round_ % 4
        await asyncio.gather(*refreshes[:split], remove(), *refreshes[split:])
        clock.advance(0.001)
        got = await node.heartbeat("room", user, "t")
        reason = {"kick": "kicked", "leave": "left", "expire": "expired"}[removal]
        assert got.get("reason") == reason, got
        await assert_consistent(node, "room", [user])
    page = await node.channel("room", None, 10)
    assert (page.users, page.connections) == (0, 0)


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("seed", [1, 2])
async def test_concurrent_refreshes_joins_and_removals_keep_the_indexes_in_step(
    node, other_node, clock, seed
):
    rng = random.Random(seed)
    users = [f"u{i}" for i in range(5)]
    for _ in range(60):
        ops = []
        for _ in range(rng.randrange(1, 6)):
            user, conn = rng.choice(users), f"c{rng.randrange(2)}"
            actor = rng.choice([node, other_node])
            kind = rng.choice(
                ["join", "heartbeat", "heartbeat", "poll", "poll", "leave", "kick", "expire"]
            )
            if kind == "join":
                ops.append(actor.join("room", user, conn, None))
            elif kind == "heartbeat":
                ops.append(actor.heartbeat("room", user, conn))
            elif kind == "poll":
                ops.append(actor.poll("room", user, conn, "0"))
            elif kind == "leave":
                ops.append(actor.leave("room", user, conn))
            elif kind == "kick":
                ops.append(actor.kick("room", user))
            else:

                async def gone(actor=actor, user=user):
                    await expire(actor, "room", user)
                    await actor.expired(actor.gateway.keys("room").online(user))

                ops.append(gone())
        await asyncio.gather(*ops, return_exceptions=True)  # kick of a non-member raises
        await assert_consistent(node, "room", users)
        if rng.random() < 0.5:
            clock.advance(rng.choice([0.001, 0.5]))


@pytest.mark.gen_test
async def test_a_late_refresh_never_moves_a_deadline_earlier(node, clock):
    """A refresh stamped earlier than one already applied (a late re-refresh, a poll
    answered by a draining node, two nodes racing) arrives second: every deadline keeps
    the newer, later value, else a sweep would prune the live tab as dead."""
    await node.join("room", "alice", "a", None)
    early = node.now() + 1000
    clock.advance(5)
    assert await node.heartbeat("room", "alice", "a") == {"ok": True}
    newest = node.now() + 30_000
    status, _ = await node.gateway.refresh("room", "alice", "a", early, 30_000)
    assert status.joined  # still joined: the tab is there, only its deadline stays
    got = await state(node, "room", "alice")
    assert got["conns"] == got["connections"] == {"a": newest}
    assert got["deadlines"] == newest
    dead = await node.gateway.sweep_candidates(["room"], early + 30_000 + 1, 0)
    assert dead[0].dead == [] and dead[0].overdue == []
