"""A fast soak (presence.soak): two nodes, tabs coming and going, a store SIGKILL, a node
SIGKILL and a node SIGTERM; every end event reaches every listener exactly once."""

from __future__ import annotations

import asyncio

import pytest

from presence.soak import Session, Soak, options, passed


def fast(*flags: str):
    return options(["--users", "30", "--channels", "3", "--duration", "14", "--warmup", "3",
                    "--fault-every", "3", "--timeout", "2", "--poll-timeout", "1.5",
                    "--min-life", "1", "--max-life", "5", *flags])  # fmt: skip


@pytest.mark.parametrize("store", ["bundled", "redis"])
def test_soak_delivers_every_end_once_through_faults(store, request):
    if store == "redis":
        request.getfixturevalue("redis_port")  # skips (or fails under REQUIRE_ALL) without it
    report = asyncio.run(Soak(fast("--store", store)).run())
    verdict, nodes = report["verdict"], report["nodes"]
    assert report["faults"] == {"store-kill": 1, "node-kill": 1, "node-term": 1}
    assert verdict["expected"] > 0
    assert verdict["delivered_once"] == verdict["expected"]
    assert (verdict["missing"], verdict["duplicates"], verdict["wrong_type"]) == (0, 0, 0)
    assert verdict["spurious_offline"] == 0 and verdict["spurious_rejoin"] == 0
    assert verdict["ends"]["vanished"] > 0  # the store restart was felt (and forgave nobody)
    assert nodes["peak"]["http_connections"] > 0
    assert nodes["after"]["http_connections"] == 0  # nothing held open after the load

    # every descriptor but sockets (files, pipes, epoll) back to the level before the load;
    # the store connections a node's pool opened under load stay open (at most 64 a node)
    def not_sockets(usage):
        return usage["fds"] - usage["sockets"]

    assert not_sockets(nodes["after"]) == not_sockets(nodes["baseline"])
    assert nodes["after"]["sockets"] - nodes["after"]["http_connections"] <= 3 * 64 + 8
    assert passed(report)


def test_the_verdict_counts_missing_duplicate_and_spurious_deliveries():
    soak = Soak(fast())
    listener = Session("o", "c", joined_at=0, segments=[[0.0, 100.0]])
    left = Session("l", "c", joined_at=1, end="leave", end_from=10, end_until=11)
    silent = Session("s", "c", joined_at=1, end="silent", end_from=20, end_until=30)
    late = Session("x", "c", joined_at=1, end="leave", end_from=99, end_until=99.5)
    still = Session("p", "c", joined_at=1, segments=[[1.0, 100.0]])
    soak.sessions = [listener, left, silent, late, still]
    listener.seen.update({("leave", "l"): 2, ("offline", "p"): 1})  # s missing, l twice
    verdict = soak.verdict()
    # listener and still must each hear l and s (x ended too close to their end of stream)
    assert verdict["expected"] == 4
    assert verdict["duplicates"] == 1
    assert verdict["missing"] == 3  # s to listener, l and s to still
    assert verdict["spurious_offline"] == 1  # p never went silent
    soak.store_kills = [20.5]  # the store died while s (and x) were joined: not expected
    verdict = soak.verdict()
    assert verdict["expected"] == 2 and verdict["ends_lost_with_the_store"] == 2


def test_tabs_the_soak_let_expire_expect_their_offline_and_late_leaves_either_event():
    """A tab whose own poll or leave went out after its deadline (the soak was late) is
    expected `offline`; a leave sent in time but answered after the deadline may be
    reported either way, once."""
    soak = Soak(fast())
    listener = Session("o", "c", joined_at=0, segments=[[0.0, 100.0]])
    late = Session("l", "c", joined_at=1, end="late", end_from=10, end_until=31)
    either = Session("e", "c", joined_at=1, end="leave", end_from=40, end_until=42, either=True)
    strict = Session("s", "c", joined_at=1, end="leave", end_from=50, end_until=52)
    soak.sessions = [listener, late, either, strict]
    listener.seen.update({("offline", "l"): 1, ("offline", "e"): 1, ("offline", "s"): 1})
    verdict = soak.verdict()
    assert (verdict["expected"], verdict["delivered_once"]) == (3, 2)
    assert verdict["spurious_offline"] == 1 and verdict["wrong_type"] == 1  # only s's
    listener.seen[("leave", "e")] = 1  # both: a duplicate
    assert soak.verdict()["duplicates"] == 1
