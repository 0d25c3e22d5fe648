"""Deadlines on a fake clock (presence/store/keyspace.py), without sockets.

The clock only moves when a test advances it, so "exactly at the deadline" is checkable:
a key is alive at deadline - 1 ms and gone at the deadline.
"""

import pytest

from presence.store import notify as ev
from presence.store.keyspace import FakeClock, Keyspace
from presence.store.notify import Notifier


class Recorder:
    """Collects what the notifier publishes."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes, bytes]] = []

    def __call__(self, channel: bytes, message: bytes) -> int:
        self.messages.append((channel, message))
        return 1


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def published():
    return Recorder()


@pytest.fixture
def ks(clock, published):
    notifier = Notifier(published)
    notifier.keys_expire_notify = b"expired-keys"
    return Keyspace(clock, notifier)


def at(ks, clock, ms: int) -> None:
    """Advance the fake clock by `ms` and let the keyspace read it, as the server does."""
    clock.advance(ms)
    ks.tick()


def put(ks, key: bytes, ttl_ms: int | None = None, db: int = 0):
    d = ks.dbs[db]
    d.store(key, b"v")
    if ttl_ms is not None:
        d.set_deadline(key, ks.now + ttl_ms)
    return d


def test_key_expires_exactly_at_its_deadline(ks, clock, published):
    db = put(ks, b"k", 1000)
    at(ks, clock, 999)
    assert ks.expire_due() == 0
    assert db.get(b"k") == b"v"
    assert db.ttl_ms(b"k") == 1
    at(ks, clock, 1)
    assert ks.expire_due() == 1
    assert b"k" not in db.data
    assert published.messages == [(b"expired-keys", b"k")]


def test_lazy_expiry_on_read_between_ticks(ks, clock, published):
    db = put(ks, b"k", 50)
    at(ks, clock, 50)
    assert db.get(b"k") is None  # no expire_due() yet: the read expires it
    assert published.messages == [(b"expired-keys", b"k")]
    assert ks.expire_due() == 0  # the heap entry is now stale
    assert published.messages == [(b"expired-keys", b"k")]
    assert db.ttl_ms(b"k") == -2


def test_exists_and_ttl_expire_lazily(ks, clock):
    db = put(ks, b"k", 10)
    at(ks, clock, 10)
    assert not db.exists(b"k")
    assert ks.expired_count == 1


def test_live_keys_hide_due_keys_without_deleting(ks, clock):
    db = put(ks, b"a", 10)
    put(ks, b"b")
    at(ks, clock, 10)
    assert list(db.live_keys()) == [b"b"]
    assert b"a" in db.data


def test_refreshed_ttl_leaves_a_stale_entry_that_is_ignored(ks, clock, published):
    db = put(ks, b"k", 100)
    db.set_deadline(b"k", ks.now + 500)
    at(ks, clock, 100)
    assert ks.expire_due() == 0
    assert db.get(b"k") == b"v"
    assert published.messages == []
    at(ks, clock, 400)
    assert ks.expire_due() == 1
    assert published.messages == [(b"expired-keys", b"k")]


def test_shortened_ttl_fires_at_the_new_deadline(ks, clock):
    db = put(ks, b"k", 1000)
    db.set_deadline(b"k", ks.now + 10)
    at(ks, clock, 10)
    assert ks.expire_due() == 1
    at(ks, clock, 1000)
    assert ks.expire_due() == 0


def test_persist_and_overwrite_cancel_expiry(ks, clock, published):
    db = put(ks, b"p", 10)
    put(ks, b"o", 10)
    db.persist(b"p")
    db.store(b"o", b"new")  # a plain SET clears the deadline
    at(ks, clock, 100)
    assert ks.expire_due() == 0
    assert db.get(b"p") == b"v" and db.get(b"o") == b"new"
    assert published.messages == []


def test_deleted_then_recreated_key_is_not_expired_by_the_old_entry(ks, clock):
    db = put(ks, b"k", 10)
    db.delete(b"k")
    put(ks, b"k")
    at(ks, clock, 10)
    assert ks.expire_due() == 0
    assert db.get(b"k") == b"v"


def test_recreated_key_with_the_same_deadline_expires_once(ks, clock, published):
    db = put(ks, b"k", 10)
    db.delete(b"k")
    put(ks, b"k", 10)
    at(ks, clock, 10)
    assert ks.expire_due() == 1
    assert published.messages == [(b"expired-keys", b"k")]


def test_keys_in_different_databases(ks, clock, published):
    put(ks, b"k", 10, db=0)
    put(ks, b"k", 20, db=5)
    at(ks, clock, 10)
    assert ks.expire_due() == 1
    assert ks.dbs[5].get(b"k") == b"v"
    at(ks, clock, 10)
    assert ks.expire_due() == 1
    assert published.messages == [(b"expired-keys", b"k")] * 2


def test_next_deadline(ks, clock):
    assert ks.next_deadline() is None
    put(ks, b"a", 300)
    put(ks, b"b", 100)
    assert ks.next_deadline() == ks.now + 100


def test_earlier_deadline_callback(ks):
    seen = []
    ks.on_earlier_deadline = seen.append
    put(ks, b"a", 300)
    put(ks, b"b", 500)
    put(ks, b"c", 100)
    assert seen == [ks.now + 300, ks.now + 100]


def test_many_keys_expire_in_deadline_order_each_at_its_time(ks, clock, published):
    n = 5000
    due_at = {}
    for i in range(n):
        ttl = 1 + (i * 7919) % 1000  # deadlines 1..1000 ms, shuffled
        put(ks, b"k%d" % i, ttl)
        due_at[ttl] = due_at.get(ttl, 0) + 1
    expired = 0
    for step in range(1, 1001):
        at(ks, clock, 1)
        got = ks.expire_due()
        assert got == due_at.get(step, 0)
        expired += got
    assert expired == n
    assert len(ks.dbs[0]) == 0
    names = [m for _, m in published.messages]
    deadlines = [1 + (int(k[1:]) * 7919) % 1000 for k in names]
    assert deadlines == sorted(deadlines)


def test_expire_due_limit_leaves_the_rest_for_the_next_call(ks, clock):
    for i in range(10):
        put(ks, b"k%d" % i, 5)
    at(ks, clock, 5)
    assert ks.expire_due(limit=4) == 4
    assert ks.expire_due(limit=4) == 4
    assert ks.expire_due() == 2


def test_heap_is_rebuilt_when_stale_entries_dominate(ks, clock):
    db = put(ks, b"k", 10_000)
    for i in range(5000):
        db.set_deadline(b"k", ks.now + 10_000 + i)
    assert ks._entries < 3 * 1024  # rebuilt instead of holding 5001 entries
    at(ks, clock, 10_000 + 4998)
    assert ks.expire_due() == 0
    at(ks, clock, 1)
    assert ks.expire_due() == 1


def test_keys_due_in_one_millisecond_share_a_bucket_and_expire_in_slices(ks, clock, published):
    deadline = ks.now + 50
    for i in range(10):
        ks.dbs[i % 3].store(b"k%d" % i, b"v")
        ks.dbs[i % 3].set_deadline(b"k%d" % i, deadline)
    ks.dbs[0].set_deadline(b"k0", deadline + 1)  # refreshed: its first entry is stale
    shared = {id(ks.dbs[i % 3].expires[b"k%d" % i]) for i in range(1, 10)}
    assert len(shared) == 1  # one int object for the nine deadlines
    assert ks.next_deadline() == deadline
    at(ks, clock, 50)
    assert ks.expire_due(limit=4) == 4
    assert ks.expire_due(limit=100) == 5
    assert sorted(m[1] for m in published.messages) == sorted(b"k%d" % i for i in range(1, 10))
    assert ks.next_deadline() == deadline + 1
    at(ks, clock, 1)
    assert ks.expire_due() == 1


def test_flush_all_clears_deadlines(ks, clock, published):
    put(ks, b"a", 10)
    put(ks, b"b", 10, db=3)
    ks.flush_all()
    at(ks, clock, 10)
    assert ks.expire_due() == 0
    assert ks.next_deadline() is None or ks.expire_due() == 0
    assert published.messages == []


def test_expired_keyspace_events(ks, clock, published):
    ks.notifier.flags = ev.parse_flags("KEx")
    put(ks, b"k", 10, db=2)
    at(ks, clock, 10)
    ks.expire_due()
    assert published.messages == [
        (b"expired-keys", b"k"),
        (b"__keyspace@2__:k", b"expired"),
        (b"__keyevent@2__:expired", b"k"),
    ]


@pytest.mark.parametrize(
    "flags, expected",
    [
        ("Ex", [(b"__keyevent@0__:expired", b"k")]),
        ("Kx", [(b"__keyspace@0__:k", b"expired")]),
        ("KEA", [(b"__keyspace@0__:k", b"expired"), (b"__keyevent@0__:expired", b"k")]),
        ("x", []),
        ("KEg", []),
        ("", []),
    ],
)
def test_expired_event_flags(ks, clock, published, flags, expected):
    ks.notifier.keys_expire_notify = b""
    ks.notifier.flags = ev.parse_flags(flags)
    put(ks, b"k", 10)
    at(ks, clock, 10)
    ks.expire_due()
    assert published.messages == expected


def test_keys_expire_notify_disabled_when_empty(ks, clock, published):
    ks.notifier.keys_expire_notify = b""
    put(ks, b"k", 10)
    at(ks, clock, 10)
    assert ks.expire_due() == 1
    assert published.messages == []


def test_watchers_are_signalled_by_expiry(ks, clock):
    class Watcher:
        watch_dirty = False

    w = Watcher()
    db = put(ks, b"k", 10)
    db.watchers[b"k"] = {w}
    at(ks, clock, 10)
    ks.expire_due()
    assert w.watch_dirty


def test_one_command_sees_one_instant(ks, clock):
    db = put(ks, b"k", 10)
    clock.advance(10)  # the clock moved, but no tick(): still the old instant
    assert db.get(b"k") == b"v"
    ks.tick()
    assert db.get(b"k") is None


def test_overwriting_a_due_key_announces_its_expiry_first(ks, clock, published):
    db = put(ks, b"k", 10)
    at(ks, clock, 10)  # due, but the timer has not run yet
    db.store(b"k", b"again")  # what a plain SET does
    assert published.messages == [(b"expired-keys", b"k")]
    assert ks.expire_due() == 0


def test_next_deadline_skips_deadlines_that_a_refresh_made_stale(ks, clock):
    db = put(ks, b"a", 100)
    put(ks, b"b", 300)
    db.set_deadline(b"a", ks.now + 200)  # refreshed: its 100 ms entry is stale
    assert ks.next_deadline() == ks.now + 200
    db.set_deadline(b"a", ks.now + 500)
    assert ks.next_deadline() == ks.now + 300
    at(ks, clock, 300)
    assert ks.expire_due() == 1  # b
    assert ks.next_deadline() == ks.now + 200  # a, refreshed to 500 ms after the start
