"""HyperLogLog commands (presence/store/commands/hyperloglog.py, presence/store/hll.py),
differential against redis-server: replies and the values' bytes (GET, DUMP)."""

import random

import pytest

from presence.store import hll
from tests.store.helpers import run


def _elements(rng: random.Random, n: int, prefix: str = "e") -> list[str]:
    return [f"{prefix}{rng.random()}" for _ in range(n)]


def test_murmurhash64a_and_pattern():
    # values computed by Redis's MurmurHash64A (hyperloglog.c) for these inputs
    assert hll.murmurhash64a(b"") == hll.murmurhash64a(b"", hll.SEED)
    for data in (b"", b"a", b"abcdefgh", b"abcdefghi", bytes(range(37))):
        index, count = hll.pattern(data)
        assert 0 <= index < hll.REGISTERS and 1 <= count <= hll.Q + 1


def test_pack_unpack_and_maximum():
    rng = random.Random(1)
    registers = bytes(rng.randrange(64) for _ in range(hll.REGISTERS))
    assert bytes(hll.unpack(hll.pack(registers))) == registers
    other = bytes(rng.randrange(64) for _ in range(hll.REGISTERS))
    assert hll.maximum(registers, other) == bytes(map(max, registers, other))


def test_pfadd_pfcount_basics(pair, proto):
    run(
        pair,
        "PFADD h",
        "EXISTS h",
        "GET h",
        "PFCOUNT h",
        "GET h",
        "PFADD h a b c",
        "PFADD h a b c",
        "GET h",
        "PFCOUNT h",
        "GET h",
        ["PFADD", "h", ""],
        "PFCOUNT nokey",
        "PFCOUNT nokey h",
        "PFADD",
        "PFCOUNT",
        "PFMERGE",
        "PFDEBUG ENCODING",
        "PFDEBUG ENCODING h x",
        "PFDEBUG DECODE h",
        "PFDEBUG ENCODING h",
        "PFDEBUG NOSUCH h",
        "PFDEBUG ENCODING nokey",
        "PFDEBUG NOSUCH nokey",
    )


def test_bytes_match_through_sparse_and_dense(pair):
    """The same elements in the same order give the same bytes in both encodings, across
    the promotion to dense, with the cached-cardinality bit as Redis sets it."""
    rng = random.Random(7)
    for n in range(60):
        batch = _elements(rng, rng.choice([1, 3, 10, 50]))
        pair.same("PFADD", "h", *batch)
        pair.same("GET", "h")
        if n % 5 == 0:
            pair.same("PFCOUNT", "h")
            pair.same("GET", "h")
            pair.same("PFDEBUG", "ENCODING", "h")
    pair.same("PFDEBUG", "DECODE", "h")
    pair.same("DUMP", "h")


@pytest.mark.parametrize("max_bytes", ["0", "200", "3000", "10000"])
def test_hll_sparse_max_bytes(pair, max_bytes):
    run(pair, f"CONFIG SET hll-sparse-max-bytes {max_bytes}")
    try:
        rng = random.Random(int(max_bytes))
        for _ in range(40):
            pair.same("PFADD", "h", *_elements(rng, 20))
            pair.same("PFDEBUG", "ENCODING", "h")
        pair.same("GET", "h")
        pair.same("PFCOUNT", "h")
        run(pair, "CONFIG GET hll-sparse-max-bytes")
    finally:
        run(pair, "CONFIG SET hll-sparse-max-bytes 3000")


def test_pfdebug(pair):
    rng = random.Random(3)
    pair.same("PFADD", "h", *_elements(rng, 30))
    run(pair, "PFDEBUG DECODE h", "PFDEBUG ENCODING h", "PFDEBUG GETREG h", "GET h")
    pair.same("PFADD", "h2", *_elements(rng, 30))
    run(pair, "PFDEBUG TODENSE h2", "PFDEBUG TODENSE h2", "PFDEBUG ENCODING h2", "GET h2")
    run(pair, "PFDEBUG DECODE h2", "PFDEBUG GETREG h2", "PFCOUNT h2", "GET h2")
    run(pair, "SET s x", "PFDEBUG ENCODING s", "LPUSH l x", "PFDEBUG GETREG l")


def test_pfmerge_and_union(pair):
    rng = random.Random(11)
    sizes = {"a": 5, "b": 40, "c": 400, "d": 3000}
    for key, size in sizes.items():
        pair.same("PFADD", key, *_elements(rng, size, key))
    run(
        pair,
        "PFCOUNT a b",
        "PFCOUNT a b c d",
        "PFCOUNT a nokey",
        "PFMERGE m1 a b",
        "GET m1",
        "PFDEBUG ENCODING m1",
        "PFMERGE m2 a b c",
        "GET m2",
        "PFMERGE m3 a d",
        "GET m3",
        "PFDEBUG ENCODING m3",
        "PFMERGE a c",
        "GET a",
        "PFMERGE empty",
        "GET empty",
        "PFMERGE empty2 nokey",
        "GET empty2",
        "PFCOUNT m1 m2 m3",
    )
    # a sparse destination merged with many registers is promoted on the way
    pair.same("PFADD", "big", *_elements(rng, 1200, "big"))
    run(pair, "PFMERGE b big", "GET b", "PFDEBUG ENCODING b")


def test_type_and_corruption_errors(pair):
    run(
        pair,
        "SET foo bar",
        "PFADD foo 1",
        "PFCOUNT foo",
        "PFCOUNT foo nokey",
        "PFMERGE bar foo",
        "PFMERGE foo bar",
        "LPUSH lst a",
        "PFADD lst 1",
        "PFCOUNT lst",
        "PFADD h a b c",
        "APPEND h hello",
        "PFCOUNT h",
        "PFCOUNT h h",
        "PFMERGE m h",
        "PFADD h x y z",
        "PFADD h2 a b c",
        "SETRANGE h2 0 0123",
        "PFCOUNT h2",
        "PFADD h3 a b c",
        "SETRANGE h3 4 x",
        "PFCOUNT h3",
    )
    pair.same("PFADD", "h4", "a", "b", "c")
    pair.same("SETRANGE", "h4", "4", "\x00")
    pair.same("PFCOUNT", "h4")


def test_fuzzed_values(pair):
    """Randomly corrupted bytes: the same error or count on both servers."""
    rng = random.Random(5)
    for _ in range(150):
        pair.same("DEL", "h")
        pair.same("PFADD", "h", *_elements(rng, rng.randrange(3000)))
        length = int(pair.same("STRLEN", "h")[1:-2])
        for _ in range(rng.randrange(1, 4)):
            pair.same("SETRANGE", "h", str(rng.randrange(length)), bytes([rng.randrange(256)]))
        pair.same("PFCOUNT", "h")
        pair.same("PFADD", "h", *_elements(rng, 5))
        pair.same("GET", "h")
        pair.same("PFCOUNT", "h", "nokey")


def test_cache_bit_and_ttl(pair):
    run(
        pair,
        "PFADD h a b c",
        "EXPIRE h 100",
        "PFCOUNT h",
        "GETRANGE h 15 15",
        "PFADD h a b c",
        "GETRANGE h 15 15",
        "PFADD h 1 2 3",
        "GETRANGE h 15 15",
        "TTL h",
        "PFMERGE h h",
        "TTL h",
    )


def test_dump_restore_across_servers(pair):
    """A HyperLogLog dumped by redis-server restores on the store and counts the same."""
    rng = random.Random(9)
    for key, n in (("s", 50), ("d", 5000)):
        pair.same("PFADD", key, *_elements(rng, n))
        payload = pair.redis.call("DUMP", key)
        body = payload.split(b"\r\n", 1)[1][:-2]
        pair.store.call("DEL", key)
        assert pair.store.call("RESTORE", key, "0", body) == b"+OK\r\n"
        pair.same("PFCOUNT", key)
        pair.same("GET", key)


def test_keyspace_events(pair, events):
    run(pair, "PFADD h a", "PFADD h a", "PFMERGE h2 h", "PFCOUNT h2", "PFDEBUG TODENSE h")
    events.assert_same()


def test_pfselftest(pair):
    assert pair.store.call("PFSELFTEST") == b"+OK\r\n"


def test_command_info(pair):
    for name in ("pfadd", "pfcount", "pfmerge", "pfdebug", "pfselftest"):
        pair.same("COMMAND", "INFO", name)
        _, theirs = pair.call("COMMAND", "DOCS", name)
        assert b"hyperloglog" in theirs and b"hyperloglog" in pair.store.call(
            "COMMAND", "DOCS", name
        )


@pytest.mark.parametrize("seed", range(21, 29))
def test_corrupted_values_everywhere(pair, seed):
    """Corrupted sparse values through every command that reads them, and a last opcode cut
    in half (Redis reads the string's terminating zero byte as its second byte)."""
    rng = random.Random(seed)
    for i in range(60):
        pair.same("DEL", "h", "m")
        pair.same("PFADD", "h", *_elements(rng, rng.choice([3, 30, 300])))
        length = int(pair.same("STRLEN", "h")[1:-2])
        if i % 3 == 0:
            pair.same("SETRANGE", "h", str(length - 1), bytes([0x40 | rng.randrange(64)]))
        elif i % 3 == 1:
            pair.same("APPEND", "h", bytes([rng.randrange(256)]))
        else:
            pair.same("SETRANGE", "h", str(rng.randrange(16, length)), bytes([rng.randrange(256)]))
        for command in (
            ["PFDEBUG", "DECODE", "h"],
            ["PFADD", "h", *_elements(rng, 3)],
            ["GET", "h"],
            ["PFCOUNT", "h"],
            ["PFMERGE", "m", "h"],
            ["PFMERGE", "h", "h"],
            ["PFDEBUG", "TODENSE", "h"],
            ["GET", "h"],
            ["PFDEBUG", "GETREG", "h"],
        ):
            pair.same(*command)


def _hitting(register: int, n: int) -> list[bytes]:
    """The first n elements (decimal numbers) that fall in `register`."""
    found, i = [], 0
    while len(found) < n:
        if hll.pattern(b"%d" % i)[0] == register:
            found.append(b"%d" % i)
        i += 1
    return found


def test_split_of_an_xzero_cut_at_the_end(pair):
    """A last opcode cut to its first byte, then split by PFADD: Redis loses the last byte
    of the new opcodes (written past the string's end); the store does the same."""
    last, near = _hitting(16383, 3), _hitting(16380, 1)
    for first, second in ((last[0], last[1]), (last[0], near[0]), (b"a", near[0])):
        pair.same("DEL", "h")
        pair.same("PFADD", "h", "a", first)
        length = len(pair.redis.call("GET", "h").split(b"\r\n", 1)[1]) - 2
        run(pair, ["SETRANGE", "h", str(length - 1), "\x40"], "PFDEBUG DECODE h")
        run(pair, ["PFADD", "h", second], "GET h", "PFDEBUG DECODE h", ["PFADD", "h", last[2]])
        run(pair, "GET h", "PFADD h x y z", "GET h", "PFCOUNT h")


def test_corrupted_value_promoted_by_its_size(pair):
    """A corrupted sparse value that PFADD grows past hll-sparse-max-bytes: the promotion
    fails (INVALIDOBJ) and the elements added before it stay, as in Redis."""
    rng = random.Random(31)
    pair.same("PFADD", "h", *_elements(rng, 200))
    pair.same("APPEND", "h", "\x00")  # one more ZERO opcode: 16385 registers
    run(pair, "CONFIG SET hll-sparse-max-bytes 700")
    try:
        for _ in range(10):
            pair.same("PFADD", "h", *_elements(rng, 40))
            pair.same("GET", "h")
    finally:
        run(pair, "CONFIG SET hll-sparse-max-bytes 3000")


def test_encoding_and_error_stats(pair):
    rng = random.Random(41)
    run(pair, "CONFIG RESETSTAT", "PFADD s a", "OBJECT ENCODING s")
    pair.same("PFADD", "d", *_elements(rng, 3000))
    run(pair, "OBJECT ENCODING d", "SET x 1", "PFADD x a", "APPEND s zz", "PFCOUNT s")
    ours, theirs = (c.call("INFO", "errorstats") for c in (pair.store, pair.redis))
    assert ours.split(b"\r\n")[2:] == theirs.split(b"\r\n")[2:]
