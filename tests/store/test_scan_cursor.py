"""SCAN, HSCAN and SSCAN return every element that stays, even when others are deleted mid-way.

(The regression Redis's suite checks as "SCAN regression test for issue #4906"; a plain
position cursor over a Python dict would skip elements here.)
"""

import hiredis
import pytest

from presence.store.scan import ScanCursors


def parse(reply: bytes):
    reader = hiredis.Reader()
    reader.feed(reply)
    return reader.gets()


def scan_all(client, *command_and_key):
    """Yield what the first call returned, then everything the full iteration returned."""
    cursor, seen, calls = b"0", [], 0
    while True:
        cursor, items = parse(client.call(*command_and_key, cursor, "COUNT", "10"))
        seen += items
        calls += 1
        if calls == 1:
            yield list(seen)
        if cursor == b"0":
            break
    yield seen


@pytest.mark.parametrize("kind", ["keys", "hash", "set"])
def test_survivors_are_returned_once_when_others_are_deleted(store, kind):
    names = [b"m%d" % i for i in range(1000)]
    if kind == "keys":
        store.call("MSET", *[x for n in names for x in (n, b"v")])
        command, delete = ("SCAN",), lambda gone: store.call("DEL", *gone)
    elif kind == "hash":
        store.call("HSET", "h", *[x for n in names for x in (n, b"v")])
        command, delete = ("HSCAN", "h"), lambda gone: store.call("HDEL", "h", *gone)
    else:
        store.call("SADD", "s", *names)
        command, delete = ("SSCAN", "s"), lambda gone: store.call("SREM", "s", *gone)
    steps = scan_all(store, *command)
    first = list(next(steps))
    gone = [n for n in names[:300] if n not in first]
    delete(gone)
    seen = next(steps)
    if kind == "hash":
        seen = seen[::2]  # field, value pairs
    survivors = set(names) - set(gone)
    assert survivors <= set(seen)
    assert len(seen) == len(set(seen))


def test_snapshots_are_bounded_and_evicted_cursors_still_progress():
    cursors = ScanCursors()
    data = {b"k%d" % i: 1 for i in range(50)}
    started = [cursors.step(data, 0, 10)[0] for _ in range(100)]  # 100 unfinished iterations
    assert len(cursors._snapshots) <= 64
    nxt, window = cursors.step(data, started[0], 10)  # the oldest was evicted
    assert window and nxt != 0
    nxt, window = cursors.step(data, started[-1], 10)
    assert window == [b"k%d" % i for i in range(10, 20)]
