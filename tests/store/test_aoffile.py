"""The AOF's contents (presence/store/aoffile.py): commands in and out, manifests."""

import pytest

from presence.store.aoffile import AofError, Manifest, Truncated, encode_command, read_commands

COMMANDS = [[b"SELECT", b"0"], [b"SET", b"k", b"v\r\nwith crlf"], [b"RPUSH", b"l", b"", b"x"]]
DATA = b"".join(encode_command(argv) for argv in COMMANDS)


def test_commands_round_trip_with_their_end_offsets():
    read = list(read_commands(DATA, "f"))
    assert [argv for argv, _ in read] == COMMANDS
    assert read[-1][1] == len(DATA)


def test_every_cut_is_truncated_at_the_start_of_the_cut_command():
    ends = [0] + [end for _, end in read_commands(DATA, "f")]
    for size in range(len(DATA)):
        if size in ends:
            continue
        with pytest.raises(Truncated) as cut:
            list(read_commands(DATA[:size], "f"))
        assert cut.value.offset == max(e for e in ends if e <= size)


def test_annotations_are_skipped_and_garbage_refused():
    assert [a for a, _ in read_commands(b"#TS:1700000000\r\n" + DATA, "f")] == COMMANDS
    with pytest.raises(AofError, match="Bad file format reading the append only file f"):
        list(read_commands(DATA + b"SET k v\r\n", "f"))
    with pytest.raises(AofError):
        list(read_commands(b"*1\r\n$x\r\nabc\r\n", "f"))


def test_manifest_round_trip_ignores_history_files():
    text = (
        "file appendonly.aof.2.base.aof seq 2 type b\n"
        "file appendonly.aof.1.incr.aof seq 1 type h\n"
        "file appendonly.aof.3.incr.aof seq 3 type i\n"
        "file appendonly.aof.4.incr.aof seq 4 type i\n"
    )
    manifest = Manifest.parse(text, "m")
    assert manifest.files() == [
        "appendonly.aof.2.base.aof",
        "appendonly.aof.3.incr.aof",
        "appendonly.aof.4.incr.aof",
    ]
    assert manifest.incr_seq == 4
    assert Manifest.parse(manifest.render().decode(), "m") == manifest
    with pytest.raises(AofError, match="Invalid AOF manifest file format"):
        Manifest.parse("file x seq 1\n", "m")
    for bad in ("file x seq one type i\n", "file ../x seq 1 type i\n"):
        with pytest.raises(AofError):
            Manifest.parse(bad, "m")
