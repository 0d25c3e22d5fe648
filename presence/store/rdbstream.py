"""Streams in DUMP payloads (RDB_TYPE_STREAM_LISTPACKS and _2): nodes as Redis's listpacks,
the stream's counters, consumer groups with their pending entries and consumers.

A node is written as Redis writes it (master entry, then entries with the same-fields
flag where they share the master's field names), so a stream built by XADD has Redis's
bytes. Entries deleted from a node are not kept by the store: their node is written with
its live entries only. Loading checks what the store relies on (IDs in order, counts that
add up, every pending entry owned by a consumer) and raises BadData otherwise.
"""

from __future__ import annotations

import struct

from presence.store.rdbcodec import (
    BadData,
    Reader,
    encode_len,
    encode_string,
    lp_entry,
    lp_int_entry,
    lp_items,
    lp_pack,
)
from presence.store.stream import INVALID_READ, MAX64, Consumer, Group, Nack, Node, Stream

_DELETED, _SAME_FIELDS = 1, 2


def _id_len(sid: int) -> bytes:
    return encode_len(sid >> 64) + encode_len(sid & MAX64)


def _node_listpack(node: Node) -> bytes:
    """The listpack Redis holds for this node (without its deleted entries)."""
    fields = node.fields
    out = [lp_int_entry(len(node.ids)), lp_int_entry(0), lp_int_entry(len(fields))]
    out.extend(map(lp_entry, fields))
    out.append(lp_int_entry(0))
    master_ms, master_seq = node.master >> 64, node.master & MAX64
    for sid, entry in zip(node.ids, node.entries, strict=True):
        names = entry[0::2]
        same = tuple(names) == fields
        out.append(lp_int_entry(_SAME_FIELDS if same else 0))
        out.append(lp_int_entry((sid >> 64) - master_ms))
        out.append(lp_int_entry((sid & MAX64) - master_seq))
        if same:
            out.extend(map(lp_entry, entry[1::2]))
            pieces = len(names) + 3
        else:
            out.append(lp_int_entry(len(names)))
            out.extend(map(lp_entry, entry))
            pieces = 2 * len(names) + 4
        out.append(lp_int_entry(pieces))
    return lp_pack(out)


def dump_stream(stream: Stream, compress: bool) -> bytes:
    """rdbSaveObject's stream part (after the type byte)."""
    nodes = [node for node in stream.nodes if node.ids]
    out = [encode_len(len(nodes))]
    for node in nodes:
        out.append(encode_string(node.master.to_bytes(16, "big"), compress))
        out.append(encode_string(_node_listpack(node), compress))
    out.append(encode_len(stream.length))
    out += [_id_len(stream.last_id), _id_len(stream.first_id), _id_len(stream.max_deleted)]
    out.append(encode_len(stream.entries_added))
    out.append(encode_len(len(stream.groups)))
    for name in sorted(stream.groups):
        group = stream.groups[name]
        out += [encode_string(name, compress), _id_len(group.last_id)]
        out.append(encode_len(group.entries_read & MAX64))
        out.append(encode_len(len(group.order)))
        for sid in group.order:
            nack = group.pel[sid]
            out.append(sid.to_bytes(16, "big") + struct.pack("<q", nack.time))
            out.append(encode_len(nack.count))
        out.append(encode_len(len(group.consumers)))
        for consumer in group.sorted_consumers():
            out += [encode_string(consumer.name, compress), struct.pack("<q", consumer.seen)]
            out.append(encode_len(len(consumer.pel)))
            out.extend(sid.to_bytes(16, "big") for sid in sorted(consumer.pel))
    return b"".join(out)


def _read_id(reader: Reader) -> int:
    ms, seq = reader.plain_len(), reader.plain_len()
    if ms > MAX64 or seq > MAX64:
        raise BadData("stream ID")
    return ms << 64 | seq


def _ints(items: list, start: int, count: int) -> list[int]:
    values = items[start : start + count]
    if len(values) != count or any(type(v) is not int for v in values):
        raise BadData("Stream listpack integrity check failed.")
    return values


def _load_node(master: int, blob: bytes, after: int) -> tuple[Node | None, int]:
    """A node from its listpack; its entries must follow ID `after`. Returns the node (None
    when every entry is deleted) and its last ID."""
    items = lp_items(blob)
    live, dead, nfields = _ints(items, 0, 3)
    fields = tuple(map(_text, items[3 : 3 + nfields]))
    if len(fields) != nfields:
        raise BadData("Stream listpack integrity check failed.")
    pos = 3 + nfields
    if _ints(items, pos, 1) != [0]:
        raise BadData("Stream listpack integrity check failed.")
    pos += 1
    node = Node(master, fields)
    seen_live = seen_dead = 0
    while pos < len(items):
        flags, ms_diff, seq_diff = _ints(items, pos, 3)
        pos += 3
        if flags & _SAME_FIELDS:
            names = fields
        else:
            (count,) = _ints(items, pos, 1)
            pos += 1
            names = tuple(_text(x) for x in items[pos : pos + count])
            if len(names) != count:
                raise BadData("Stream listpack integrity check failed.")
            pos += count
        values = [_text(x) for x in items[pos : pos + len(names)]]
        pos += len(names)
        if len(values) != len(names) or not names:
            raise BadData("Stream listpack integrity check failed.")
        _ints(items, pos, 1)  # lp-count
        pos += 1
        sid = (((master >> 64) + ms_diff) & MAX64) << 64 | (((master & MAX64) + seq_diff) & MAX64)
        if sid <= after:
            raise BadData("stream IDs out of order")
        after = node.last = sid
        if flags & _DELETED:
            seen_dead += 1
            continue
        seen_live += 1
        entry = [x for pair in zip(names, values, strict=True) for x in pair]
        node.ids.append(sid)
        node.entries.append(tuple(entry))
    if seen_live != live or seen_dead != dead:
        raise BadData("Stream listpack integrity check failed.")
    node.dead, node.size = dead, len(blob)
    return (node if node.ids else None), after


def _text(item) -> bytes:
    return b"%d" % item if type(item) is int else item


def load_stream(reader: Reader, v2: bool) -> Stream:
    """rdbLoadObject's stream part (after the type byte)."""
    stream = Stream()
    after = -1
    for _ in range(reader.plain_len()):
        key = reader.string()
        if len(key) != 16:
            raise BadData("Stream node key entry is not the size of a stream ID")
        master = int.from_bytes(key, "big")
        node, after = _load_node(master, reader.string(), after)
        if node is not None:
            stream.nodes.append(node)
            stream.masters.append(master)
    stream.length = reader.plain_len()
    if stream.length != sum(len(n.ids) for n in stream.nodes):
        raise BadData("Stream length inconsistent with rax entries")
    stream.last_id = _read_id(reader)
    if after > stream.last_id:
        raise BadData("stream last ID below its entries")
    if v2:
        stream.first_id, stream.max_deleted = _read_id(reader), _read_id(reader)
        stream.entries_added = reader.plain_len()
    else:
        stream.entries_added = stream.length
        stream.first_id = stream.first_valid()
    for _ in range(reader.plain_len()):
        name = reader.string()
        if name in stream.groups:
            raise BadData("Duplicated consumer group name")
        last_id = _read_id(reader)
        if v2:
            read = reader.plain_len()
            entries_read = INVALID_READ if read == MAX64 else read
        else:
            entries_read = stream.distance(last_id)
        stream.groups[name] = _load_group(reader, last_id, entries_read)
    return stream


def _load_group(reader: Reader, last_id: int, entries_read: int) -> Group:
    group = Group(last_id, entries_read)
    for _ in range(reader.plain_len()):
        sid = int.from_bytes(reader.read(16), "big")
        time = struct.unpack("<q", reader.read(8))[0]
        count = reader.plain_len()
        if sid in group.pel:
            raise BadData("Duplicated global PEL entry loading stream consumer group")
        group.add_pending(sid, Nack(None, time, count))
    for _ in range(reader.plain_len()):
        name = reader.string()
        if name in group.consumers:
            raise BadData("Duplicate stream consumer detected.")
        consumer = group.consumers[name] = Consumer(name, struct.unpack("<q", reader.read(8))[0])
        for _ in range(reader.plain_len()):
            sid = int.from_bytes(reader.read(16), "big")
            nack = group.pel.get(sid)
            if nack is None or nack.consumer is not None:
                raise BadData("Consumer entry not found in group global PEL")
            nack.consumer = consumer
            consumer.pel[sid] = nack
    if any(nack.consumer is None for nack in group.pel.values()):
        raise BadData("Stream CG PEL entry without consumer")
    return group
