"""Two nodes on one store, with real expiry and real subscribers (timeout 1 s).

A watcher polls alternately through node A and node B while other users go silent:
it must see exactly one `offline` per silent user, and every event id exactly once.
"""

import asyncio

import pytest

from presence.service.subscriber import Subscriber
from tests.helpers import wait_until_async
from tests.service.helpers import ident, make_presence

TIMEOUT = 1.0


@pytest.fixture
def nodes(store_url, io_loop):
    made = [make_presence(store_url, timeout=TIMEOUT, poll_timeout=0.4) for _ in range(2)]
    subscribers = [Subscriber(n, sweep_interval=30) for n in made]
    io_loop.run_sync(lambda: asyncio.gather(*(s.start() for s in subscribers)))
    yield made
    for s, n in zip(subscribers, made, strict=False):
        io_loop.run_sync(s.stop)
        io_loop.run_sync(n.gateway.close)


async def watch(nodes, until, cursor=0, limit=8.0):
    """Poll alternately through `nodes` as user "watcher" until `until(events)` holds."""
    seen, i = [], 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not until(seen) and loop.time() < deadline:
        got = await nodes[i % 2].poll("room", "watcher", "w", cursor)
        assert "reset" not in got
        seen += got["events"]
        cursor = got["cursor"]
        i += 1
    return seen


@pytest.mark.gen_test(timeout=20)
async def test_one_offline_per_silent_user_across_two_nodes(nodes):
    a, b = nodes
    await a.join("room", "watcher", "w", None)
    silent = [f"user{i}" for i in range(6)]
    for i, user in enumerate(silent):
        await nodes[i % 2].join("room", user, f"c{i}", None)
    await b.send("room", "user0", "hello")

    def all_offline(events):
        return {e["user"] for e in events if e["type"] == "offline"} == set(silent)

    events = await watch(nodes, all_offline)
    ids = [e["id"] for e in events]
    assert ids == list(range(1, len(ids) + 1))  # nothing lost, nothing twice, in order
    offline = [e["user"] for e in events if e["type"] == "offline"]
    assert sorted(offline) == sorted(silent)
    assert [e["type"] for e in events[:8]] == ["join"] * 7 + ["message"]
    await wait_until_async(  # a node counts its claim just after the store has it
        lambda: a.stats.events["offline"] + b.stats.events["offline"] == len(silent)
    )


@pytest.mark.gen_test(timeout=20)
async def test_second_tab_keeps_user_online_across_nodes(nodes):
    a, b = nodes
    await a.join("room", "watcher", "w", None)
    await a.join("room", "alice", "tab1", None)
    await b.join("room", "alice", "tab2", None)
    await b.leave("room", "alice", "tab1")

    async def keep_tab2_alive():
        for _ in range(8):
            await b.heartbeat("room", "alice", "tab2")
            await asyncio.sleep(TIMEOUT / 4)

    keeper = asyncio.ensure_future(keep_tab2_alive())
    events = await watch(nodes, lambda ev: False, limit=1.8)
    await keeper
    assert [(e["type"], e["user"]) for e in events] == [("join", "watcher"), ("join", "alice")]


@pytest.mark.gen_test(timeout=20)
async def test_subscriber_reconnects_and_reconciles(store_url):
    """Offline still arrives for a key that expired while the node was not subscribed."""
    node = make_presence(store_url, timeout=TIMEOUT, poll_timeout=0.4)
    subscriber = Subscriber(node, sweep_interval=30)
    await subscriber.start()
    try:
        await node.join("room", "watcher", "w", None)
        await node.join("room", "ghost", "g", None)
        await subscriber.stop()  # deaf while ghost's key expires
        await asyncio.sleep(TIMEOUT + 0.3)
        beat = await node.heartbeat("room", "watcher", "w")  # its key expired too
        assert (beat["rejoin"], beat["reason"], ident(beat["cursor"])) == (True, "expired", 2)
        await node.join("room", "watcher", "w", None)
        await subscriber.start()
        events = await watch([node, node], lambda ev: any(e["type"] == "offline" for e in ev), 2)
        assert [(e["type"], e["user"]) for e in events if e["type"] == "offline"] == [
            ("offline", "ghost")
        ]
        killed = 0
        for client in node.gateway.primaries():  # one listener per primary (one, standalone)
            killed += await client.client_kill_filter(_type="pubsub")
        assert killed == len(node.gateway.primaries())
        await node.join("room", "late", "l", None)  # expires after the reconnection
        events = await watch(
            [node, node],
            lambda ev: any(e["user"] == "late" and e["type"] == "offline" for e in ev),
            events[-1]["id"],
            3,
        )
        assert ("offline", "late") in [(e["type"], e["user"]) for e in events]
        assert subscriber.live
    finally:
        await subscriber.stop()
        await node.gateway.close()
