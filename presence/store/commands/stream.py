"""Stream commands: XADD, XRANGE, XREAD, consumer groups (XGROUP, XREADGROUP, XACK, XPENDING,
XCLAIM, XAUTOCLAIM), XINFO, with Redis 7.0's replies and errors (t_stream.c).

The value is `presence.store.stream.Stream`. Blocking XREAD/XREADGROUP park in
presence/store/blocking.py like BLPOP; their waiter decides itself whether the key serves it
(a stream past the ID it waits for), and an XREADGROUP waiter is answered with an error when
its key stops being a stream or its group goes, as in Redis 7.0.

Writes whose replay would differ (generated IDs, approximate trims, deliveries, claims) leave
the commands Redis would propagate in `presence.store.stream.EFFECTS`; the append-only file
records those instead (presence/store/aoffile.py).
"""

from __future__ import annotations

from presence.store import notify as ev
from presence.store import replies
from presence.store.blocking import KEEP, block, serve_ready
from presence.store.commands import (
    CommandError,
    KeySpec,
    command,
    run_subcommand,
    subcommand,
)
from presence.store.commands.generic import read_key
from presence.store.commands.server import help_for
from presence.store.keyspace import wall_clock_ms
from presence.store.numbers import as_int64, parse_int, string2ull
from presence.store.resp import NIL_ARRAY, OK, Error, Raw, encode
from presence.store.stream import (
    EFFECTS,
    INVALID_READ,
    MAX64,
    MAX_ID,
    Consumer,
    Group,
    Nack,
    Stream,
    format_id,
)

# name          arity  flags
# xadd           -5    write denyoom fast       xlen 2 readonly fast
# xrange         -4    readonly                 xrevrange -4 readonly
# xdel           -3    write fast               xtrim -4 write
# xsetid         -3    write denyoom fast
# xread          -4    readonly blocking movablekeys
# xreadgroup     -7    write blocking movablekeys
# xgroup         -2    (create, setid, destroy, createconsumer, delconsumer, help)
# xack           -4    write fast               xpending -3 readonly
# xclaim         -6    write fast               xautoclaim -6 write fast
# xinfo          -2    (stream, groups, consumers, help)

INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
BLOCKED_DEFAULT_COUNT = 1000


# ------------------------------------------------------------ IDs


def parse_id(raw: bytes, missing_seq: int = 0, strict: bool = False, seq_star: bool = False):
    """Redis's streamGenericParseIDOrReply: `ms-seq`, `ms` (seq `missing_seq`), `-`, `+`
    (refused when `strict`), `ms-*` when `seq_star`. Returns (id, seq_given)."""
    if len(raw) > 127:
        raise CommandError(INVALID_ID)
    if raw in (b"-", b"+"):
        if strict:
            raise CommandError(INVALID_ID)
        return (0 if raw == b"-" else MAX_ID), True
    raw = raw.split(b"\0", 1)[0]
    ms_part, dash, seq_part = raw.partition(b"-")
    ms = string2ull(ms_part)
    if ms is None:
        raise CommandError(INVALID_ID)
    if not dash:
        return ms << 64 | missing_seq, True
    if seq_star and seq_part == b"*":
        return ms << 64, False
    seq = string2ull(seq_part)
    if seq is None:
        raise CommandError(INVALID_ID)
    return ms << 64 | seq, True


def parse_strict(raw: bytes) -> int:
    return parse_id(raw, strict=True)[0]


def parse_interval(raw: bytes, missing_seq: int, start: bool) -> int:
    """A range bound: inclusive, or exclusive with `(` (the next or previous ID)."""
    if len(raw) > 1 and raw[:1] == b"(":
        sid = parse_id(raw[1:], missing_seq, strict=True)[0]
        if start:
            if sid == MAX_ID:
                raise CommandError("ERR invalid start ID for the interval")
            return sid + 1
        if sid == 0:
            raise CommandError("ERR invalid end ID for the interval")
        return sid - 1
    return parse_id(raw, missing_seq)[0]


def _id(sid: int) -> bytes:
    return format_id(sid)


def _entry(sid: int, items: tuple) -> list:
    return [format_id(sid), list(items)]


def _error(text: str, *names: bytes) -> Error:
    """An error naming keys or groups, as addReplyErrorFormat prints them (CR/LF as spaces)."""
    shown = [n.decode(errors="surrogateescape").replace("\r", " ").replace("\n", " ")
             for n in names]  # fmt: skip
    return Error(text.format(*shown))


def _nogroup(key: bytes, group: bytes) -> CommandError:
    return CommandError(_error("NOGROUP No such key '{}' or consumer group '{}'", key, group))


def _now(client) -> int:
    """The wall clock in ms, read afresh as Redis's mstime() (auto IDs, delivery and seen
    times): not the keyspace's clock, which stands at 0 while the append-only file loads."""
    return wall_clock_ms()


def _lookup_write(db, key: bytes) -> Stream | None:
    return db.get_typed(key, Stream)


# ------------------------------------------------------------ XADD, XTRIM


class _TrimArgs:
    __slots__ = ("maxlen", "minid", "approx", "limit", "idpos", "sid", "id_given", "seq_given",
                 "nomkstream", "arg_at", "strategy")  # fmt: skip

    def __init__(self) -> None:
        self.maxlen: int | None = None
        self.minid = 0
        self.approx = False
        self.limit = 0
        self.idpos = 0
        self.sid = 0
        self.id_given = self.seq_given = self.nomkstream = False
        self.arg_at = 0
        self.strategy = ""


def _parse_add_or_trim(client, argv, xadd: bool) -> _TrimArgs:
    """Redis's streamParseAddOrTrimArgsOrReply."""
    args = _TrimArgs()
    limit_given = False
    i = 2
    argc = len(argv)
    while i < argc:
        more = argc - 1 - i
        opt = argv[i]
        lowered = opt.lower()
        if xadd and opt == b"*":
            break
        if lowered in (b"maxlen", b"minid") and more:
            if args.strategy:
                raise CommandError(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
                )
            args.approx = False
            nxt = argv[i + 1]
            if more >= 2 and nxt in (b"~", b"="):
                args.approx = nxt == b"~"
                i += 1
            if lowered == b"maxlen":
                args.maxlen = parse_int(argv[i + 1])
                if args.maxlen < 0:
                    raise CommandError("ERR The MAXLEN argument must be >= 0.")
            else:
                args.minid = parse_strict(argv[i + 1])
            i += 1
            args.strategy = lowered.decode()
            args.arg_at = i
        elif lowered == b"limit" and more:
            args.limit = parse_int(argv[i + 1])
            if args.limit < 0:
                raise CommandError("ERR The LIMIT argument must be >= 0.")
            limit_given = True
            i += 1
        elif xadd and lowered == b"nomkstream":
            args.nomkstream = True
        elif xadd:
            args.sid, args.seq_given = parse_id(opt, strict=True, seq_star=True)
            args.id_given = True
            break
        else:
            raise CommandError(replies.SYNTAX)
        i += 1
    if args.limit and not args.strategy:
        raise CommandError(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
        )
    if not xadd and not args.strategy:
        raise CommandError("ERR syntax error, XTRIM must be called with a trimming strategy")
    if limit_given:
        if not args.approx:
            raise CommandError(
                "ERR syntax error, LIMIT cannot be used without the special ~ option"
            )
    elif args.approx:
        entries = client.server.config["stream-node-max-entries"]
        args.limit = min(max(100 * entries, 0) or 10000, 1000000)
        if 100 * entries <= 0:
            args.limit = 10000
    else:
        args.limit = 0
    args.idpos = i
    return args


def _trim(stream: Stream, args: _TrimArgs) -> int:
    return stream.trim(args.maxlen, args.minid, args.approx, args.limit)


def _rewrite_trim(argv: list[bytes], stream: Stream, args: _TrimArgs) -> None:
    """An approximate trim propagates as an exact one to what it left (streamRewriteTrimArgument)."""
    argv[args.arg_at - 1] = b"="
    if args.strategy == "maxlen":
        argv[args.arg_at] = b"%d" % stream.length
    else:
        argv[args.arg_at] = _id(stream.first_valid())


def _node_limits(client) -> tuple[int, int]:
    config = client.server.config
    return config["stream-node-max-entries"], config["stream-node-max-bytes"]


@command(
    "xadd",
    -5,
    "write denyoom fast",
    specs=(
        KeySpec(
            ("RW", "update"),
            1,
            notes="UPDATE instead of INSERT because of the optional trimming feature",
        ),
    ),
    acl="stream",
    tips="nondeterministic_output",
)
def xadd(client, argv):
    """XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT n]] *|id field value ..."""
    EFFECTS.clear()
    args = _parse_add_or_trim(client, argv, xadd=True)
    fields_at = args.idpos + 1
    if len(argv) - fields_at < 2 or (len(argv) - fields_at) % 2:
        raise CommandError(replies.wrong_arity("xadd"))
    if args.id_given and args.seq_given and args.sid == 0:
        raise CommandError("ERR The ID specified in XADD must be greater than 0-0")
    db, key = client.db, argv[1]
    stream = _lookup_write(db, key)
    if stream is None:
        if args.nomkstream:
            return None
        stream = Stream()
        db.store(key, stream)
    if stream.last_id == MAX_ID:
        raise CommandError(
            "ERR The stream has exhausted the last possible ID, unable to add more items"
        )
    sid = _next_id(client, stream, args)
    if sid is None or sid <= stream.last_id:
        raise CommandError(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item"
        )
    if sum(map(len, argv[fields_at:])) > 1 << 30:
        raise CommandError("ERR Elements are too large to be stored")
    stream.append(sid, argv[fields_at:], *_node_limits(client))
    db.touch(key)
    db.notify(ev.STREAM, b"xadd", key)
    effect = list(argv)
    if args.strategy:
        if _trim(stream, args):
            db.notify(ev.STREAM, b"xtrim", key)
        if args.approx:
            _rewrite_trim(effect, stream, args)
    effect[args.idpos] = _id(sid)
    _signal(client, db, key)  # a served XREADGROUP records its own effects meanwhile
    EFFECTS[:] = [effect]
    return _id(sid)


def _next_id(client, stream: Stream, args: _TrimArgs) -> int | None:
    """The ID XADD gives the entry: the one given, `ms-*` completed, or a new one from the clock."""
    last = stream.last_id
    if args.id_given:
        if args.seq_given:
            return args.sid
        if last >> 64 == args.sid >> 64:
            return None if last & MAX64 == MAX64 else last + 1
        return args.sid
    ms = _now(client)
    if ms > last >> 64:
        return ms << 64
    return None if last == MAX_ID else last + 1


@command("xtrim", -4, "write", specs=(("RW delete", 1, 0, 1),), acl="stream",
         tips="nondeterministic_output")  # fmt: skip
def xtrim(client, argv):
    """XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]: how many entries were removed."""
    EFFECTS.clear()
    args = _parse_add_or_trim(client, argv, xadd=False)
    db, key = client.db, argv[1]
    stream = _lookup_write(db, key)
    if stream is None:
        return 0
    deleted = _trim(stream, args)
    if deleted:
        db.notify(ev.STREAM, b"xtrim", key)
        effect = list(argv)
        if args.approx:
            _rewrite_trim(effect, stream, args)
        EFFECTS.append(effect)
        db.touch(key)
    return deleted


@command("xdel", -3, "write fast", specs=(("RW delete", 1, 0, 1),), acl="stream")
def xdel(client, argv):
    """XDEL key id [id ...]: how many entries were deleted."""
    EFFECTS.clear()
    db, key = client.db, argv[1]
    stream = _lookup_write(db, key)
    if stream is None:
        return 0
    ids = [parse_strict(raw) for raw in argv[2:]]
    deleted, first = 0, False
    for sid in ids:
        if stream.delete(sid):
            if sid == stream.first_id:
                first = True
            if sid > stream.max_deleted:
                stream.max_deleted = sid
            deleted += 1
    if deleted:
        if stream.length == 0:
            stream.first_id = 0
        elif first:
            stream.first_id = stream.first_valid()
        db.touch(key)
        db.notify(ev.STREAM, b"xdel", key)
        EFFECTS.append(list(argv))
    return deleted


@command("xsetid", -3, "write denyoom fast", specs=(("RW update", 1, 0, 1),), acl="stream")
def xsetid(client, argv):
    """XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id]."""
    EFFECTS.clear()
    sid = parse_strict(argv[2])
    entries_added, max_deleted = -1, 0
    i = 3
    while i < len(argv):
        more = len(argv) - 1 - i
        opt = argv[i].lower()
        if opt == b"entriesadded" and more:
            entries_added = parse_int(argv[i + 1])
            if entries_added < 0:
                raise CommandError("ERR entries_added must be positive")
        elif opt == b"maxdeletedid" and more:
            max_deleted = parse_strict(argv[i + 1])
            if sid < max_deleted:
                raise CommandError(
                    "ERR The ID specified in XSETID is smaller than the provided "
                    "max_deleted_entry_id"
                )
        else:
            raise CommandError(replies.SYNTAX)
        i += 2
    db, key = client.db, argv[1]
    stream = _lookup_write(db, key)
    if stream is None:
        raise CommandError(replies.NO_SUCH_KEY)
    if stream.length:
        if sid < stream.last_valid():
            raise CommandError(
                "ERR The ID specified in XSETID is smaller than the target stream top item"
            )
        if entries_added != -1 and stream.length > entries_added:
            raise CommandError(
                "ERR The entries_added specified in XSETID is smaller than the target stream length"
            )
    stream.last_id = sid
    if entries_added != -1:
        stream.entries_added = entries_added
    if max_deleted:
        stream.max_deleted = max_deleted
    db.notify(ev.STREAM, b"xsetid", key)
    EFFECTS.append(list(argv))
    return OK


# ------------------------------------------------------------ reads


@command("xlen", 2, "readonly fast", specs=(("RO", 1, 0, 1),), acl="stream")
def xlen(client, argv):
    stream = read_key(client.db, argv[1], Stream)
    return 0 if stream is None else stream.length


@command("xrange", -4, "readonly", acl="stream")
def xrange(client, argv):
    """XRANGE key start end [COUNT n]."""
    return _range(client, argv, rev=False)


@command("xrevrange", -4, "readonly", acl="stream")
def xrevrange(client, argv):
    """XREVRANGE key end start [COUNT n]."""
    return _range(client, argv, rev=True)


def _range(client, argv, rev: bool):
    start_raw, end_raw = (argv[3], argv[2]) if rev else (argv[2], argv[3])
    start = parse_interval(start_raw, 0, start=True)
    end = parse_interval(end_raw, MAX64, start=False)
    count = -1
    j = 4
    while j < len(argv):
        if argv[j].lower() == b"count" and len(argv) - j - 1 >= 1:
            count = max(parse_int(argv[j + 1]), 0)
            j += 2
        else:
            raise CommandError(replies.SYNTAX)
    stream = read_key(client.db, argv[1], Stream)
    if stream is None:
        return []
    if count == 0:
        return NIL_ARRAY
    out = []
    for sid, items in stream.range(start, end, rev):
        out.append(_entry(sid, items))
        if len(out) == count:
            break
    return out


# ------------------------------------------------------------ XREAD, XREADGROUP


def _xread_getkeys(argv: list[bytes]) -> list[tuple[int, tuple[str, ...]]]:
    """Redis's xreadGetKeys: the keys after STREAMS, options skipped (none when unbalanced)."""
    i, streams_at = 1, -1
    while i < len(argv):
        arg = argv[i].lower()
        if arg in (b"block", b"count"):
            i += 1
        elif arg == b"group":
            i += 2
        elif arg == b"streams":
            streams_at = i
            break
        elif arg != b"noack":
            break
        i += 1
    num = len(argv) - streams_at - 1
    if streams_at == -1 or num == 0 or num % 2:
        return []
    return [(streams_at + 1 + k, ()) for k in range(num // 2)]


@command(
    "xread",
    -4,
    "readonly blocking movablekeys",
    keys=(0, 0, 0),
    specs=(KeySpec(("RO", "access"), 1, last=-1, limit=2, keyword="STREAMS"),),
    getkeys=_xread_getkeys,
    acl="stream",
)
def xread(client, argv):
    """XREAD [COUNT n] [BLOCK ms] STREAMS key ... id ..."""
    return _xread(client, argv, group_mode=False)


@command(
    "xreadgroup",
    -7,
    "write blocking movablekeys",
    keys=(0, 0, 0),
    specs=(KeySpec(("RO", "access"), 4, last=-1, limit=2, keyword="STREAMS"),),
    getkeys=_xread_getkeys,
    acl="stream",
)
def xreadgroup(client, argv):
    """XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key ... id ..."""
    return _xread(client, argv, group_mode=True)


def _xread(client, argv, group_mode: bool):
    EFFECTS.clear()
    timeout = -1
    count = 0
    streams_at = 0
    noack = False
    group_name = consumer_name = None
    argc = len(argv)
    i = 1
    while i < argc:
        more = argc - i - 1
        opt = argv[i].lower()
        if opt == b"block" and more:
            if getattr(client, "in_script", False):
                raise CommandError(
                    f"ERR {argv[0].decode(errors='replace')} command is not allowed with "
                    "BLOCK option from scripts"
                )
            i += 1
            timeout = parse_int(argv[i], "ERR timeout is not an integer or out of range")
            if timeout < 0:
                raise CommandError(replies.TIMEOUT_NEGATIVE)
        elif opt == b"count" and more:
            i += 1
            count = max(parse_int(argv[i]), 0)
        elif opt == b"streams" and more:
            streams_at = i + 1
            if (argc - streams_at) % 2:
                raise CommandError(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' "
                    "must be specified."
                )
            break
        elif opt == b"group" and more >= 2:
            if not group_mode:
                raise CommandError(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD "
                    "instead."
                )
            group_name, consumer_name = argv[i + 1], argv[i + 2]
            i += 2
        elif opt == b"noack":
            if not group_mode:
                raise CommandError(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD "
                    "instead."
                )
            noack = True
        else:
            raise CommandError(replies.SYNTAX)
        i += 1
    if not streams_at:
        raise CommandError(replies.SYNTAX)
    if group_mode and group_name is None:
        raise CommandError("ERR Missing GROUP option for XREADGROUP")
    n = (argc - streams_at) // 2
    keys = argv[streams_at : streams_at + n]
    db = client.db
    ids: list[int] = []
    groups: list[Group | None] = []
    for key, raw in zip(keys, argv[streams_at + n :], strict=True):
        stream = read_key(db, key, Stream)
        group = None
        if group_name is not None:
            group = stream.groups.get(group_name) if stream is not None else None
            if group is None:
                raise CommandError(
                    _error(
                        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with "
                        "GROUP option",
                        key,
                        group_name,
                    )
                )
        groups.append(group)
        if raw == b"$":
            if group_mode:
                raise CommandError(
                    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read "
                    "the history of this consumer by specifying a proper ID, or use the > ID to "
                    "get new messages. The $ ID would just return an empty result set."
                )
            ids.append(stream.last_id if stream is not None else 0)
            continue
        if raw == b">":
            if not group_mode:
                raise CommandError(
                    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP "
                    "<group> <consumer> option."
                )
            ids.append(MAX_ID)
            continue
        ids.append(parse_strict(raw))
    served = []
    now = _now(client)
    for key, gt, group in zip(keys, ids, groups, strict=True):
        stream = read_key(db, key)  # a second counted lookup, as in Redis
        if stream is None:
            continue
        history = False
        if group is not None:
            if gt != MAX_ID:
                history = True
            elif stream.length and stream.last_valid() > group.last_id:
                gt = group.last_id
            else:
                continue
        elif not (stream.length and stream.last_valid() > gt):
            continue
        consumer = None
        if group is not None:
            consumer, created = _consumer(db, key, group, consumer_name, now)
            if noack and created:
                EFFECTS.append([b"XGROUP", b"CREATECONSUMER", key, group_name, consumer_name])
        if history:
            entries = _history(stream, gt + 1, count, consumer, now)
        else:
            entries = _deliver(stream, gt + 1, count, group, consumer, noack, now, key,
                               group_name)  # fmt: skip
        served.append((key, entries))
    if served:
        return _streams_reply(client, served)
    if timeout != -1:
        if client.last_command not in ("xread", "xreadgroup"):
            return NIL_ARRAY  # inside MULTI/EXEC or a script: never blocks
        waits = dict(zip(keys, ids, strict=True))
        serve = _serve_blocked(client, waits, count or BLOCKED_DEFAULT_COUNT, group_name,
                               consumer_name, noack)  # fmt: skip
        return block(client, list(keys), timeout / 1000, NIL_ARRAY, serve, kind=None)
    return NIL_ARRAY


def _consumer(db, key: bytes, group: Group, name: bytes, now: int) -> tuple[Consumer, bool]:
    """The named consumer, its seen-time refreshed, or a new one (`xgroup-createconsumer`);
    and whether it is new."""
    consumer = group.consumers.get(name)
    if consumer is not None:
        consumer.seen = now
        return consumer, False
    consumer = group.consumers[name] = Consumer(name, now)
    db.notify(ev.STREAM, b"xgroup-createconsumer", key)
    return consumer, True


def _streams_reply(client, served: list[tuple[bytes, list]]):
    """XREAD's reply: [[key, entries] ...] in RESP2, a map (keys may repeat) in RESP3."""
    if client.protocol == 2:
        return [[key, entries] for key, entries in served]
    if len({key for key, _ in served}) == len(served):
        return dict(served)  # (a script under RESP3 gets a map table)
    return Raw(
        b"%%%d\r\n" % len(served)
        + b"".join(encode(key, 3) + encode(entries, 3) for key, entries in served)
    )


def _deliver(stream: Stream, start: int, count: int, group: Group | None,
             consumer: Consumer | None, noack: bool, now: int, key: bytes,
             group_name: bytes | None) -> list:  # fmt: skip
    """Redis's streamReplyWithRange for XREAD(GROUP): entries from `start`, moving the group's
    last ID and read counter, adding each entry to the consumer's pending list unless NOACK."""
    out = []
    moved = False
    for sid, items in stream.range(start, MAX_ID):
        if group is not None and sid > group.last_id:
            if group.entries_read != INVALID_READ and not stream.has_tombstones_in(sid):
                group.entries_read += 1
            elif stream.entries_added:
                group.entries_read = stream.distance(sid)
            group.last_id = sid
            moved = noack
        out.append(_entry(sid, items))
        if group is not None and consumer is not None and not noack:
            nack = group.pel.get(sid)
            if nack is None:
                nack = Nack(consumer, now)
                group.add_pending(sid, nack)
            else:
                if nack.consumer is not None:
                    nack.consumer.pel.pop(sid, None)
                nack.consumer, nack.time, nack.count = consumer, now, 1
            consumer.pel[sid] = nack
            EFFECTS.append(_xclaim_effect(key, group, group_name, sid, nack))
        if count and len(out) == count:
            break
    if moved and group is not None:
        EFFECTS.append(_setid_effect(key, group, group_name))
    return out


def _history(stream: Stream, start: int, count: int, consumer: Consumer, now: int) -> list:
    """Redis's streamReplyWithRangeFromConsumerPEL: the consumer's pending entries from
    `start`, a deleted one as [id, nil]; each served one counts a delivery."""
    out = []
    for sid in sorted(s for s in consumer.pel if s >= start):
        if count and len(out) >= count:
            break
        items = stream.get(sid)
        if items is None:
            out.append([_id(sid), NIL_ARRAY])
        else:
            nack = consumer.pel[sid]
            nack.time = now
            nack.count += 1
            out.append(_entry(sid, items))
    return out


def _xclaim_effect(key, group: Group, group_name, sid: int, nack: Nack) -> list[bytes]:
    """The XCLAIM Redis propagates for a pending entry (streamPropagateXCLAIM)."""
    name = nack.consumer.name if nack.consumer is not None else b""
    return [b"XCLAIM", key, group_name, name, b"0", _id(sid), b"TIME", b"%d" % nack.time,
            b"RETRYCOUNT", b"%d" % nack.count, b"FORCE", b"JUSTID", b"LASTID",
            _id(group.last_id)]  # fmt: skip


def _setid_effect(key, group: Group, group_name) -> list[bytes]:
    return [b"XGROUP", b"SETID", key, group_name, _id(group.last_id), b"ENTRIESREAD",
            b"%d" % group.entries_read]  # fmt: skip


def _serve_blocked(client, waits: dict, count: int, group_name, consumer_name, noack: bool):
    """The waiter of a blocked XREAD/XREADGROUP: serves one key once its stream is past the
    ID waited for; an XREADGROUP whose key or group is gone gets Redis's error."""

    def serve(db, key: bytes, stream):
        if group_name is not None:
            if type(stream) is not Stream:
                return Error("UNBLOCKED the stream key no longer exists")
            group = stream.groups.get(group_name)
            if group is None:
                return Error(
                    "NOGROUP the consumer group this client was blocked on no longer exists"
                )
            gt = group.last_id
        else:
            if type(stream) is not Stream:
                return KEEP
            group, gt = None, waits[key]
        if stream.last_id <= gt:
            return KEEP
        EFFECTS.clear()
        now = _now(client)
        consumer = None
        if group is not None:
            consumer, created = _consumer(db, key, group, consumer_name, now)
            if noack and created:
                EFFECTS.append([b"XGROUP", b"CREATECONSUMER", key, group_name, consumer_name])
        entries = _deliver(stream, gt + 1, count, group, consumer, noack, now, key, group_name)
        return _streams_reply(client, [(key, entries)])

    return serve


# ------------------------------------------------------------ XGROUP


@command("xgroup", -2, "", keys=(0, 0, 0))
def xgroup(client, argv):
    """XGROUP CREATE | SETID | DESTROY | CREATECONSUMER | DELCONSUMER | HELP."""
    return run_subcommand("xgroup", client, argv)


def _syntax(argv) -> CommandError:
    """Redis's addReplySubcommandSyntaxError."""
    sub = argv[1].decode(errors="surrogateescape")[:128]
    return CommandError(
        f"ERR unknown subcommand or wrong number of arguments for '{sub}'. "
        f"Try {argv[0].decode(errors='replace').upper()} HELP."
    )


def _group_prelude(client, argv):
    """xgroupCommand's common part: options, the key, the group. Returns
    (stream, group, mkstream, entries_read)."""
    sub = argv[1].lower()
    mkstream, entries_read = False, INVALID_READ
    i = 5
    while i < len(argv):
        opt = argv[i].lower()
        if sub == b"create" and opt == b"mkstream":
            mkstream = True
            i += 1
        elif sub in (b"create", b"setid") and opt == b"entriesread" and i + 1 < len(argv):
            entries_read = parse_int(argv[i + 1])
            if entries_read < 0 and entries_read != INVALID_READ:
                raise CommandError("ERR value for ENTRIESREAD must be positive or -1")
            i += 2
        else:
            raise _syntax(argv)
    stream = _lookup_write(client.db, argv[2])
    group = None
    if not mkstream:
        if stream is None:
            raise CommandError(
                "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you "
                "may want to use the MKSTREAM option to create an empty stream automatically."
            )
        group = stream.groups.get(argv[3])
        if group is None and sub in (b"setid", b"createconsumer", b"delconsumer"):
            raise CommandError(
                _error("NOGROUP No such consumer group '{}' for key name '{}'", argv[3], argv[2])
            )
    elif stream is not None:
        group = stream.groups.get(argv[3])
    return stream, group, mkstream, entries_read


@subcommand("xgroup", "create", -5, "write denyoom", keys=(2, 2, 1),
            specs=(("RW insert", 2, 0, 1),), acl="stream")  # fmt: skip
def xgroup_create(client, argv):
    stream, _group, _mkstream, entries_read = _group_prelude(client, argv)
    if len(argv) > 8:
        raise _syntax(argv)
    if argv[4] == b"$":
        sid = stream.last_id if stream is not None else 0
    else:
        sid = parse_strict(argv[4])
    db, key = client.db, argv[2]
    if stream is None:
        stream = Stream()
        db.store(key, stream)
    if argv[3] in stream.groups:
        raise CommandError("BUSYGROUP Consumer Group name already exists")
    stream.groups[argv[3]] = Group(sid, entries_read)
    db.notify(ev.STREAM, b"xgroup-create", key)
    return OK


@subcommand("xgroup", "setid", -5, "write", keys=(2, 2, 1), specs=(("RW update", 2, 0, 1),),
            acl="stream")  # fmt: skip
def xgroup_setid(client, argv):
    stream, group, _mk, entries_read = _group_prelude(client, argv)
    if len(argv) not in (5, 7):
        raise _syntax(argv)
    sid = stream.last_id if argv[4] == b"$" else parse_id(argv[4])[0]
    group.last_id, group.entries_read = sid, entries_read
    client.db.notify(ev.STREAM, b"xgroup-setid", argv[2])
    return OK


@subcommand("xgroup", "destroy", 4, "write", keys=(2, 2, 1), specs=(("RW delete", 2, 0, 1),),
            acl="stream")  # fmt: skip
def xgroup_destroy(client, argv):
    stream, group, _mk, _er = _group_prelude(client, argv)
    if group is None:
        return 0
    del stream.groups[argv[3]]
    db = client.db
    db.notify(ev.STREAM, b"xgroup-destroy", argv[2])
    _signal(client, db, argv[2])
    return 1


@subcommand("xgroup", "createconsumer", 5, "write denyoom", keys=(2, 2, 1),
            specs=(("RW insert", 2, 0, 1),), acl="stream")  # fmt: skip
def xgroup_createconsumer(client, argv):
    _stream, group, _mk, _er = _group_prelude(client, argv)
    if argv[4] in group.consumers:
        return 0
    group.consumers[argv[4]] = Consumer(argv[4], _now(client))
    client.db.notify(ev.STREAM, b"xgroup-createconsumer", argv[2])
    return 1


@subcommand("xgroup", "delconsumer", 5, "write", keys=(2, 2, 1),
            specs=(("RW delete", 2, 0, 1),), acl="stream")  # fmt: skip
def xgroup_delconsumer(client, argv):
    _stream, group, _mk, _er = _group_prelude(client, argv)
    consumer = group.consumers.get(argv[4])
    if consumer is None:
        return 0
    pending = len(consumer.pel)
    for sid in list(consumer.pel):
        group.drop_pending(sid)
    del group.consumers[argv[4]]
    client.db.notify(ev.STREAM, b"xgroup-delconsumer", argv[2])
    return pending


subcommand("xgroup", "help", 2, "loading stale", acl="stream")(
    help_for(
        "xgroup",
        [
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    )
)


# ------------------------------------------------------------ XACK, XPENDING


@command("xack", -4, "write fast", specs=(("RW update", 1, 0, 1),), acl="stream")
def xack(client, argv):
    """XACK key group id [id ...]: how many pending entries were acknowledged."""
    EFFECTS.clear()
    stream = read_key(client.db, argv[1], Stream)
    group = stream.groups.get(argv[2]) if stream is not None else None
    if group is None:
        return 0
    ids = [parse_strict(raw) for raw in argv[3:]]
    acknowledged = 0
    for sid in ids:
        if group.drop_pending(sid) is not None:
            acknowledged += 1
    if acknowledged:
        EFFECTS.append(list(argv))
    return acknowledged


@command("xpending", -3, "readonly", acl="stream", tips="nondeterministic_output")
def xpending(client, argv):
    """XPENDING key group [[IDLE ms] start end count [consumer]]."""
    argc = len(argv)
    if argc != 3 and not 6 <= argc <= 9:
        raise CommandError(replies.SYNTAX)
    min_idle = count = 0
    start = end = 0
    consumer_name = None
    if argc >= 6:
        at = 3
        if argv[3].lower() == b"idle":
            min_idle = parse_int(argv[4])
            if argc < 8:
                raise CommandError(replies.SYNTAX)
            at += 2
        count = max(parse_int(argv[at + 2]), 0)
        start = parse_interval(argv[at], 0, start=True)
        end = parse_interval(argv[at + 1], MAX64, start=False)
        if at + 3 < argc:
            consumer_name = argv[at + 3]
    stream = read_key(client.db, argv[1], Stream)
    group = stream.groups.get(argv[2]) if stream is not None else None
    if group is None:
        raise _nogroup(argv[1], argv[2])
    if argc == 3:
        if not group.pel:
            return [0, None, None, NIL_ARRAY]
        owners = [[c.name, b"%d" % len(c.pel)] for c in group.sorted_consumers() if c.pel]
        return [len(group.pel), _id(group.order[0]), _id(group.order[-1]), owners]
    now = _now(client)
    if consumer_name is not None:
        consumer = group.consumers.get(consumer_name)
        if consumer is None:
            return []
        pel = consumer.pel
        ids = sorted(s for s in pel if s >= start)
    else:
        pel = group.pel
        ids = group.iter_pending(start)
    out = []
    for sid in ids:
        if not count or sid > end:
            break
        nack = pel[sid]
        if min_idle and now - nack.time < min_idle:
            continue
        count -= 1
        name = nack.consumer.name if nack.consumer is not None else b""
        out.append([_id(sid), name, max(0, now - nack.time), nack.count])
    return out


# ------------------------------------------------------------ XCLAIM, XAUTOCLAIM


@command("xclaim", -6, "write fast", specs=(("RW update", 1, 0, 1),), acl="stream",
         tips="nondeterministic_output")  # fmt: skip
def xclaim(client, argv):
    """XCLAIM key group consumer min-idle id [id ...] [IDLE ms] [TIME ms] [RETRYCOUNT n]
    [FORCE] [JUSTID] [LASTID id]."""
    EFFECTS.clear()
    db, key = client.db, argv[1]
    stream = read_key(db, key, Stream)
    group = stream.groups.get(argv[2]) if stream is not None else None
    if group is None:
        raise _nogroup(key, argv[2])
    min_idle = max(parse_int(argv[4], "ERR Invalid min-idle-time argument for XCLAIM"), 0)
    ids = []
    j = 5
    while j < len(argv):
        try:
            ids.append(parse_strict(argv[j]))
        except CommandError:
            break
        j += 1
    now = _now(client)
    retrycount = delivery = -1
    force = justid = False
    last_id = 0
    while j < len(argv):
        more = len(argv) - 1 - j
        opt = argv[j].lower()
        if opt == b"force":
            force = True
        elif opt == b"justid":
            justid = True
        elif opt == b"idle" and more:
            j += 1
            delivery = now - parse_int(argv[j], "ERR Invalid IDLE option argument for XCLAIM")
        elif opt == b"time" and more:
            j += 1
            delivery = parse_int(argv[j], "ERR Invalid TIME option argument for XCLAIM")
        elif opt == b"retrycount" and more:
            j += 1
            retrycount = parse_int(argv[j], "ERR Invalid RETRYCOUNT option argument for XCLAIM")
        elif opt == b"lastid" and more:
            j += 1
            last_id = parse_strict(argv[j])
        else:
            raise CommandError(
                _error("ERR Unrecognized XCLAIM option '{}'", argv[j].split(b"\0", 1)[0])
            )
        j += 1
    propagate_last = False
    if last_id > group.last_id:
        group.last_id = last_id
        propagate_last = True
    if delivery == -1 or delivery < 0 or delivery > now:
        delivery = now
    consumer = None
    out = []
    for sid in ids:
        nack = group.pel.get(sid)
        if stream.get(sid) is None:
            if nack is not None:
                EFFECTS.append(_xclaim_effect(key, group, argv[2], sid, nack))
                propagate_last = False
                group.drop_pending(sid)
            continue
        if force and nack is None:
            nack = Nack(None, now)
            group.add_pending(sid, nack)
        if nack is None:
            continue
        if nack.consumer is not None and min_idle and now - nack.time < min_idle:
            continue
        if consumer is None:
            consumer = _consumer(db, key, group, argv[3], now)[0]
        if nack.consumer is not consumer and nack.consumer is not None:
            nack.consumer.pel.pop(sid, None)
        nack.time = delivery
        if retrycount >= 0:
            nack.count = retrycount
        elif not justid:
            nack.count += 1
        if nack.consumer is not consumer:
            consumer.pel[sid] = nack
            nack.consumer = consumer
        out.append(_id(sid) if justid else _entry(sid, stream.get(sid)))
        EFFECTS.append(_xclaim_effect(key, group, argv[2], sid, nack))
        propagate_last = False
    if propagate_last:
        EFFECTS.append(_setid_effect(key, group, argv[2]))
    return out


@command("xautoclaim", -6, "write fast", specs=(("RW delete", 1, 0, 1),), acl="stream",
         tips="nondeterministic_output")  # fmt: skip
def xautoclaim(client, argv):
    """XAUTOCLAIM key group consumer min-idle start [COUNT n] [JUSTID]: [cursor, claimed,
    deleted IDs]."""
    EFFECTS.clear()
    min_idle = max(parse_int(argv[4], "ERR Invalid min-idle-time argument for XAUTOCLAIM"), 0)
    start = parse_interval(argv[5], 0, start=True)
    count, justid = 100, False
    j = 6
    while j < len(argv):
        more = len(argv) - 1 - j
        opt = argv[j].lower()
        if opt == b"count" and more:
            count = as_int64(argv[j + 1])
            if count is None or not 1 <= count <= (1 << 63) // 16:
                raise CommandError("ERR COUNT must be > 0")
            j += 1
        elif opt == b"justid":
            justid = True
        else:
            raise CommandError(replies.SYNTAX)
        j += 1
    db, key = client.db, argv[1]
    stream = read_key(db, key, Stream)
    group = stream.groups.get(argv[2]) if stream is not None else None
    if group is None:
        raise _nogroup(key, argv[2])
    attempts = count * 10
    now = _now(client)
    consumer = None
    claimed: list = []
    deleted: list[bytes] = []
    pending = group.pending_from(start, attempts + 1)
    at = 0
    while attempts and count and at < len(pending):
        attempts -= 1
        sid = pending[at]
        at += 1
        nack = group.pel[sid]
        if stream.get(sid) is None:
            EFFECTS.append(_xclaim_effect(key, group, argv[2], sid, nack))
            group.drop_pending(sid)
            deleted.append(_id(sid))
            count -= 1
            continue
        if min_idle and now - nack.time < min_idle:
            continue
        if consumer is None:
            consumer = _consumer(db, key, group, argv[3], now)[0]
        if nack.consumer is not consumer and nack.consumer is not None:
            nack.consumer.pel.pop(sid, None)
        nack.time = now
        if not justid:
            nack.count += 1
        if nack.consumer is not consumer:
            consumer.pel[sid] = nack
            nack.consumer = consumer
        claimed.append(_id(sid) if justid else _entry(sid, stream.get(sid)))
        count -= 1
        EFFECTS.append(_xclaim_effect(key, group, argv[2], sid, nack))
    cursor = _id(pending[at]) if at < len(pending) else b"0-0"
    return [cursor, claimed, deleted]


# ------------------------------------------------------------ XINFO


@command("xinfo", -2, "", keys=(0, 0, 0))
def xinfo(client, argv):
    """XINFO STREAM | GROUPS | CONSUMERS | HELP."""
    return run_subcommand("xinfo", client, argv)


def _info_stream_value(client, argv) -> Stream:
    stream = read_key(client.db, argv[2], Stream)
    if stream is None:
        raise CommandError(replies.NO_SUCH_KEY)
    return stream


@subcommand("xinfo", "stream", -3, "readonly", keys=(2, 2, 1), specs=(("RO access", 2, 0, 1),),
            acl="stream")  # fmt: skip
def xinfo_stream(client, argv):
    stream = _info_stream_value(client, argv)
    options = argv[3:]
    full, count = bool(options), 10
    if options:
        if len(options) not in (1, 3) or options[0].lower() != b"full":
            raise _syntax(argv)
        if len(options) == 3:
            if options[1].lower() != b"count":
                raise _syntax(argv)
            count = parse_int(options[2])
            if count < 0:
                count = 10
    info: dict = {
        b"length": stream.length,
        b"radix-tree-keys": len(stream.nodes),
        b"radix-tree-nodes": stream.radix_nodes(),
        b"last-generated-id": _id(stream.last_id),
        b"max-deleted-entry-id": _id(stream.max_deleted),
        b"entries-added": stream.entries_added,
        b"recorded-first-entry-id": _id(stream.first_id),
    }
    if not full:
        info[b"groups"] = len(stream.groups)
        first = next(stream.range(0, MAX_ID), None)
        last = next(stream.range(0, MAX_ID, rev=True), None)
        info[b"first-entry"] = None if first is None else _entry(*first)
        info[b"last-entry"] = None if last is None else _entry(*last)
        return info
    entries = []
    for sid, items in stream.range(0, MAX_ID):
        if count and len(entries) == count:
            break
        entries.append(_entry(sid, items))
    info[b"entries"] = entries
    groups = []
    for name in sorted(stream.groups):
        group = stream.groups[name]
        pel = [[_id(sid), group.pel[sid].consumer.name, group.pel[sid].time, group.pel[sid].count]
               for sid in (group.order[:count] if count else group.order)]  # fmt: skip
        consumers = []
        for consumer in group.sorted_consumers():
            mine = sorted(consumer.pel)
            mine = mine[:count] if count else mine
            consumers.append({
                b"name": consumer.name,
                b"seen-time": consumer.seen,
                b"pel-count": len(consumer.pel),
                b"pending": [[_id(s), consumer.pel[s].time, consumer.pel[s].count] for s in mine],
            })  # fmt: skip
        groups.append({
            b"name": name,
            b"last-delivered-id": _id(group.last_id),
            b"entries-read": None if group.entries_read == INVALID_READ else group.entries_read,
            b"lag": stream.lag(group),
            b"pel-count": len(group.pel),
            b"pending": pel,
            b"consumers": consumers,
        })  # fmt: skip
    info[b"groups"] = groups
    return info


@subcommand("xinfo", "groups", 3, "readonly", keys=(2, 2, 1), specs=(("RO access", 2, 0, 1),),
            acl="stream")  # fmt: skip
def xinfo_groups(client, argv):
    stream = _info_stream_value(client, argv)
    return [
        {
            b"name": name,
            b"consumers": len(group.consumers),
            b"pending": len(group.pel),
            b"last-delivered-id": _id(group.last_id),
            b"entries-read": None if group.entries_read == INVALID_READ else group.entries_read,
            b"lag": stream.lag(group),
        }
        for name, group in sorted(stream.groups.items())
    ]


@subcommand("xinfo", "consumers", 4, "readonly", keys=(2, 2, 1),
            specs=(("RO access", 2, 0, 1),), acl="stream",
            tips="nondeterministic_output")  # fmt: skip
def xinfo_consumers(client, argv):
    stream = _info_stream_value(client, argv)
    group = stream.groups.get(argv[3])
    if group is None:
        raise CommandError(
            _error("NOGROUP No such consumer group '{}' for key name '{}'", argv[3], argv[2])
        )
    now = _now(client)
    return [
        {b"name": c.name, b"pending": len(c.pel), b"idle": max(0, now - c.seen)}
        for c in group.sorted_consumers()
    ]


subcommand("xinfo", "help", 2, "loading stale", acl="stream")(
    help_for(
        "xinfo",
        [
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    )
)


# ------------------------------------------------------------ blocking


def _signal(client, db, key: bytes) -> None:
    """New data (or a destroyed group) on `key`: serve the XREAD/XREADGROUP blocked on it."""
    if db.blocked and key in db.blocked:
        serve_ready(client, db, key)
