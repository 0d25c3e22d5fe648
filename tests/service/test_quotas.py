"""Client limits of the presence domain: each refuses before anything changes.

The tab count is read from the store (redis-server, the bundled store and a Redis Cluster:
`store_url`); the rest is node memory, tested on a fake clock.
"""

import asyncio

import pytest

from presence.service.quotas import ClientLimits, LimitReached, TabQuotas
from tests.helpers import wait_until_async
from tests.service.helpers import make_presence


@pytest.fixture
def limited(store_url, clock, io_loop):
    """A node with small limits: 1 held poll, 2 tabs, 3 channels per tab, 2 messages/s."""
    presence = make_presence(store_url, clock, poll_timeout=5, limits=ClientLimits(1, 2, 3, 2.0))
    yield presence
    io_loop.run_sync(presence.gateway.close)


async def tabs_of(node, channel, user):
    page = await node.channel(channel, None, 10)
    return {m.user: m.connections for m in page.members}.get(user)


@pytest.mark.gen_test
async def test_a_tab_over_max_tabs_is_refused_and_not_registered(limited, clock):
    await limited.join("room", "alice", "t1", None)
    await limited.join("room", "alice", "t2", None)
    with pytest.raises(LimitReached) as refused:
        await limited.join("room", "alice", "t3", None)
    assert refused.value.limit == "tabs" and refused.value.retry_after == 30
    assert await tabs_of(limited, "room", "alice") == 2
    await limited.join("room", "alice", "t2", '{"again":1}')  # a joined tab may join again
    await limited.join("room", "bob", "t3", None)  # the limit is per user
    await limited.leave("room", "alice", "t1")
    await limited.join("room", "alice", "t3", None)  # a tab left: room for another
    assert await tabs_of(limited, "room", "alice") == 2


@pytest.mark.gen_test
async def test_a_silent_tab_stops_counting_once_its_deadline_passed(limited, clock):
    await limited.join("room", "alice", "t1", None)
    await limited.join("room", "alice", "t2", None)
    clock.advance(31)  # both tabs are past their deadline (timeout 30 s)
    await limited.join("room", "alice", "t3", None)


@pytest.mark.gen_test
async def test_a_tab_in_max_channels_is_refused_a_fourth_until_it_leaves_one(limited, clock):
    for channel in ("a", "b", "c"):
        await limited.join(channel, "alice", "t1", None)
    with pytest.raises(LimitReached) as refused:
        await limited.join("d", "alice", "t1", None)
    assert refused.value.limit == "channels_per_tab"
    assert await limited.channel("d", None, 10) is None  # nothing was written
    await limited.join("a", "alice", "t1", None)  # a channel it is in already
    await limited.leave("c", "alice", "t1")
    await limited.join("d", "alice", "t1", None)


@pytest.mark.gen_test
async def test_messages_over_the_rate_are_refused_with_the_wait_until_the_next(limited, clock):
    await limited.join("room", "alice", "t1", None)
    await limited.send("room", "alice", "1", "t1")
    await limited.send("room", "alice", "2", "t1")
    with pytest.raises(LimitReached) as refused:
        await limited.send("room", "alice", "3", "t1")
    assert refused.value.limit == "messages_per_second" and refused.value.retry_after == 1
    await limited.send("room", "alice", "other tab", "t2")  # the budget is per tab
    clock.advance(0.5)  # one message's worth at 2/s
    await limited.send("room", "alice", "4", "t1")
    got = await limited.poll("room", "alice", "t1", 0)
    assert [e.get("data") for e in got["events"]] == [None, "1", "2", "other tab", "4"]


@pytest.mark.gen_test
async def test_a_poll_over_max_held_polls_is_refused_without_refreshing(limited, clock):
    await limited.join("room", "alice", "t1", None)
    await limited.join("room", "bob", "t1", None)
    cursor = (await limited.poll("room", "alice", "t1", 0))["cursor"]
    held = asyncio.ensure_future(limited.poll("room", "alice", "t1", cursor))
    await wait_until_async(lambda: limited.pending == 1)
    with pytest.raises(LimitReached) as refused:
        await limited.poll("room", "bob", "t1", cursor)
    assert refused.value.limit == "held_polls" and refused.value.retry_after == 2
    with pytest.raises(LimitReached):
        await limited.global_events(cursor)
    await limited.send("room", "bob", "hi", "t1")  # answers the held poll: room again
    assert [e["data"] for e in (await held)["events"]] == ["hi"]
    assert (await limited.poll("room", "bob", "t1", cursor))["events"]


def test_tab_quotas_forget_silent_tabs_and_full_budgets():
    quotas = TabQuotas(ClientLimits(max_channels_per_tab=1, max_messages_per_second=1), 30)
    quotas.admit_join("t1", "a", 0)
    with pytest.raises(LimitReached) as refused:
        quotas.admit_join("t1", "b", 10)
    assert refused.value.retry_after == 20  # when "a" will have been silent for 30 s
    quotas.seen("t1", "a", 20)  # a poll keeps it counted
    with pytest.raises(LimitReached):
        quotas.admit_join("t1", "b", 40)
    quotas.admit_join("t1", "b", 51)  # "a" silent for 31 s: no longer counted
    quotas.spend_message("t1", 51)
    quotas.forget_idle(100)
    assert quotas.channels == {} and quotas.buckets == {}
