"""The margin between --poll-timeout and --timeout under a node's own load.

A held poll answered late (the node's event loop stalled), then a next refresh that is slow
too, must not let the tab's presence key run out while the tab polls all along; a tab that
really goes silent must still go offline at about its last request + --timeout. Real
expiry, real subscribers, short timeouts (--timeout 3, --poll-timeout 2); every test runs on
redis-server and the bundled store.
"""

import asyncio
import time

import pytest

from presence.service.feed import Hold
from presence.service.subscriber import Subscriber
from tests.helpers import wait_until_async
from tests.service.helpers import make_presence

TIMEOUT = 3.0
POLL_TIMEOUT = 2.0


@pytest.fixture
def node(standalone_url, io_loop):
    made = make_presence(standalone_url, timeout=TIMEOUT, poll_timeout=POLL_TIMEOUT)
    subscriber = Subscriber(made, sweep_interval=30)
    io_loop.run_sync(subscriber.start)
    yield made
    io_loop.run_sync(subscriber.stop)
    io_loop.run_sync(made.gateway.close)


async def events_of(node):
    return [(e["type"], e["user"]) for e in (await node.gateway.read_channel("room", 0)).events]


@pytest.mark.gen_test(timeout=30)
async def test_a_late_answer_and_a_slow_next_refresh_do_not_make_a_false_offline(node, monkeypatch):
    joined = await node.join("room", "alice", "tab", None)
    hold = Hold()
    answer = await node.start_poll("room", "alice", "tab", joined["cursor"], hold)
    assert answer is hold
    await asyncio.sleep(POLL_TIMEOUT - 0.3)
    time.sleep(1.0)  # the node stalls: the poll is answered 0.7 s after its poll timeout
    got = await hold
    assert got["events"] == []
    refresh = node.gateway.refresh

    async def slow(*args, **kwargs):  # the next poll's refresh reaches the store 0.6 s late
        if "cursor" in kwargs:
            await asyncio.sleep(0.6)
        return await refresh(*args, **kwargs)

    monkeypatch.setattr(node.gateway, "refresh", slow)
    got = await node.poll("room", "alice", "tab", got["cursor"])  # refreshed > 3 s after
    assert "rejoin" not in got, got
    await asyncio.sleep(0.3)
    assert await events_of(node) == [("join", "alice")]
    assert node.stats.late_answers == 1


@pytest.mark.gen_test(timeout=30)
async def test_an_on_time_answer_costs_no_extra_refresh(node, monkeypatch):
    joined = await node.join("room", "alice", "tab", None)
    calls = []
    refresh = node.gateway.refresh

    async def counted(*args, **kwargs):
        calls.append(args)
        return await refresh(*args, **kwargs)

    monkeypatch.setattr(node.gateway, "refresh", counted)
    got = await node.poll("room", "alice", "tab", joined["cursor"])
    assert got["events"] == []
    await asyncio.sleep(0.2)
    assert len(calls) == 1 and node.stats.late_answers == 0


@pytest.mark.gen_test(timeout=30)
async def test_a_silent_tab_still_goes_offline_at_its_last_request_plus_the_timeout(node):
    await node.join("room", "watcher", "w", None)
    joined = await node.join("room", "alice", "tab", None)
    last = time.monotonic()  # the tab's last request (its poll's refresh)
    got = await node.poll("room", "alice", "tab", joined["cursor"])
    # the tab goes silent: no more requests

    async def offline():
        return ("offline", "alice") in await events_of(node)

    await wait_until_async(offline, timeout=TIMEOUT + 3)
    took = time.monotonic() - last
    assert TIMEOUT - 0.2 <= took <= TIMEOUT + 1.0, (took, node.stats.late_answers)
    assert "rejoin" not in got
