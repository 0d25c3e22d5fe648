"""DUMP payloads: a stored value in Redis 7.0's RDB object format, and back.

`dump_payload` writes what redis-server 7.0.15 writes for the same value under the same
configuration: the RDB type and encoding Redis would hold it in (listpack, intset,
quicklist, skiplist, hashtable, stream listpacks), RDB version 10 and the CRC-64 footer.
Byte identity holds where Redis's bytes depend only on the value: strings, lists built by
pushes at the tail, intsets, listpack hashes and sorted sets, skiplist sorted sets and
streams without deleted entries. Hashtable sets and hashes come out in the store's order
(Redis's is its dict's, seeded at random per process), and a stream node's deleted entries,
which the store does not keep, are left out.

`load_payload` reads any object an RDB version <= 10 may hold (zipmap, ziplist, intset,
quicklist 1 and 2, listpack, LZF strings, streams 1 and 2), checking the footer first.
Module values and anything malformed raise `BadData`; nothing is changed before a
payload has been read whole.
"""

from __future__ import annotations

import math
import struct
from collections import deque

from presence.store.rdbcodec import (
    _INT,
    INT64_MAX,
    INT64_MIN,
    BadData,
    Reader,
    as_bytes,
    crc64,
    encode_len,
    encode_string,
    intset,
    intset_values,
    listpack,
    lp_entry,
    lp_int_entry,
    lp_items,
    lp_pack,
    ziplist_items,
    zipmap_pairs,
)
from presence.store.rdbstream import dump_stream, load_stream
from presence.store.stream import Stream
from presence.store.zset import ZSet

RDB_VERSION = 10
T_STRING, T_LIST, T_SET, T_ZSET, T_HASH, T_ZSET_2 = 0, 1, 2, 3, 4, 5
T_MODULE, T_MODULE_2 = 6, 7
T_HASH_ZIPMAP, T_LIST_ZIPLIST, T_SET_INTSET, T_ZSET_ZIPLIST, T_HASH_ZIPLIST = 9, 10, 11, 12, 13
T_LIST_QUICKLIST, T_STREAM, T_HASH_LISTPACK, T_ZSET_LISTPACK = 14, 15, 16, 17
T_LIST_QUICKLIST_2, T_STREAM_2 = 18, 19
_SIZE_SAFETY_LIMIT, _SIZE_ESTIMATE_OVERHEAD = 8192, 8
_OPTIMIZATION_LEVEL = (4096, 8192, 16384, 32768, 65536)
_LLONG_HALF = float(INT64_MAX // 2)


def is_int64_text(raw: bytes) -> bool:
    """Redis's string2ll accepts `raw` and prints it back the same (intset members)."""
    return len(raw) <= 20 and _INT.fullmatch(raw) is not None and INT64_MIN <= int(raw) <= INT64_MAX


# ---------------------------------------------------------------- DUMP


def dump_payload(value, config) -> bytes:
    """The DUMP payload of a stored value: RDB object, version 10, CRC-64 (little-endian)."""
    body = dump_object(value, config) + struct.pack("<H", RDB_VERSION)
    return body + struct.pack("<Q", crc64(body))


def verify_payload(payload: bytes) -> bool:
    """verifyDumpPayload: a footer of an RDB version <= 10 and a matching CRC-64."""
    if len(payload) < 10:
        return False
    version = payload[-10] | (payload[-9] << 8)
    if version > RDB_VERSION:
        return False
    return struct.unpack("<Q", payload[-8:])[0] == crc64(payload[:-8])


def dump_object(value, config) -> bytes:
    """rdbSaveObjectType + rdbSaveObject for a store value."""
    compress = config["rdbcompression"] == "yes"
    kind = type(value)
    if kind is bytes:
        return bytes((T_STRING,)) + encode_string(value, compress)
    if kind is deque:
        return _dump_list(value, config["list-max-listpack-size"], compress)
    if kind is set:
        return _dump_set(value, config, compress)
    if kind is dict:
        return _dump_hash(value, config, compress)
    if kind is ZSet:
        return _dump_zset(value, config, compress)
    if kind is Stream:
        return bytes((T_STREAM_2,)) + dump_stream(value, compress)
    raise TypeError(f"cannot dump {kind.__name__}")


def _node_allows(node_bytes: int, count: int, size: int, fill: int) -> bool:
    """quicklist's _quicklistNodeAllowInsert for an element of `size` bytes."""
    new_size = node_bytes + size + _SIZE_ESTIMATE_OVERHEAD
    if (
        fill < 0
        and -fill - 1 < len(_OPTIMIZATION_LEVEL)
        and new_size <= _OPTIMIZATION_LEVEL[-fill - 1]
    ):
        return True
    if new_size > _SIZE_SAFETY_LIMIT:
        return False
    return count < fill


def _dump_list(items: deque, fill: int, compress: bool) -> bytes:
    """A quicklist (RDB_TYPE_LIST_QUICKLIST_2) split into nodes as tail pushes split it."""
    nodes: list[list[bytes]] = []
    node: list[bytes] = []
    node_bytes = 0
    for item in items:
        if not node or not _node_allows(node_bytes, len(node), len(item), fill):
            node, node_bytes = [], 7
            nodes.append(node)
        entry = lp_entry(item)
        node.append(entry)
        node_bytes += len(entry)
    out = [bytes((T_LIST_QUICKLIST_2,)), encode_len(len(nodes))]
    for node in nodes:
        out.append(b"\x02" + encode_string(lp_pack(node), compress))
    return b"".join(out)


def _dump_set(members: set, config, compress: bool) -> bytes:
    if len(members) <= config["set-max-intset-entries"] and all(map(is_int64_text, members)):
        blob = intset(sorted(int(m) for m in members))
        return bytes((T_SET_INTSET,)) + encode_string(blob, compress)
    out = [bytes((T_SET,)), encode_len(len(members))]
    out.extend(encode_string(m, compress) for m in members)
    return b"".join(out)


def _dump_hash(fields: dict, config, compress: bool) -> bytes:
    limit = config["hash-max-listpack-value"]
    if len(fields) <= config["hash-max-listpack-entries"] and all(
        len(k) <= limit and len(v) <= limit for k, v in fields.items()
    ):
        flat = [x for pair in fields.items() for x in pair]
        return bytes((T_HASH_LISTPACK,)) + encode_string(listpack(flat), compress)
    out = [bytes((T_HASH,)), encode_len(len(fields))]
    for k, v in fields.items():
        out.append(encode_string(k, compress))
        out.append(encode_string(v, compress))
    return b"".join(out)


def _score_entry(score: float) -> bytes:
    """zzlInsertAt's score element: an integer when double2ll allows, else d2string's text."""
    if -_LLONG_HALF <= score <= _LLONG_HALF and score == int(score):
        return lp_int_entry(int(score))
    if math.isinf(score):
        return lp_entry(b"inf" if score > 0 else b"-inf")
    return lp_entry(b"%.17g" % score)


def zset_is_listpack(zset: ZSet, config) -> bool:
    """Whether Redis would hold this sorted set as a listpack (it never reverts once big)."""
    limit = config["zset-max-listpack-value"]
    return (
        not zset.skiplist
        and len(zset) <= config["zset-max-listpack-entries"]
        and all(len(m) <= limit for m in zset.scores)
    )


def _dump_zset(zset: ZSet, config, compress: bool) -> bytes:
    if zset_is_listpack(zset, config):
        entries = []
        for score, member in zset.order:
            entries.append(lp_entry(member))
            entries.append(_score_entry(score))
        return bytes((T_ZSET_LISTPACK,)) + encode_string(lp_pack(entries), compress)
    out = [bytes((T_ZSET_2,)), encode_len(len(zset))]
    pack = struct.Struct("<d").pack
    for score, member in reversed(zset.order):
        out.append(encode_string(member, compress))
        out.append(pack(score))
    return b"".join(out)


# ---------------------------------------------------------------- RESTORE


def load_payload(payload: bytes, config):
    """The value a verified DUMP payload holds; BadData if Redis could not load it."""
    reader = Reader(payload[:-10])
    kind = reader.byte()
    loader = _LOADERS.get(kind)
    if loader is None:
        raise BadData(f"unknown or module type {kind}")
    return loader(reader, kind, config)


def _load_string(reader: Reader, kind: int, config):
    return reader.string()


def _load_list(reader: Reader, kind: int, config):
    count = reader.plain_len()
    items = deque(reader.string() for _ in range(count))
    return _nonempty(items)


def _nonempty(value):
    if not value:
        raise BadData("empty key")
    return value


def _load_quicklist(reader: Reader, kind: int, config):
    nodes = reader.plain_len()
    items: deque = deque()
    for _ in range(nodes):
        container = 2
        if kind == T_LIST_QUICKLIST_2:
            container = reader.plain_len()
            if container not in (1, 2):
                raise BadData("Quicklist integrity check failed.")
        blob = reader.string()
        if not blob:
            raise BadData("empty quicklist node")
        if container == 1:
            items.append(blob)
            continue
        decoded = lp_items(blob) if kind == T_LIST_QUICKLIST_2 else ziplist_items(blob)
        items.extend(map(as_bytes, decoded))
    return _nonempty(items)


def _load_ziplist_list(reader: Reader, kind: int, config):
    return _nonempty(deque(map(as_bytes, ziplist_items(reader.string()))))


def _load_set(reader: Reader, kind: int, config):
    count = reader.plain_len()
    members: set = set()
    for _ in range(count):
        member = reader.string()
        if member in members:
            raise BadData("Duplicate set members detected")
        members.add(member)
    return _nonempty(members)


def _load_intset(reader: Reader, kind: int, config):
    return {b"%d" % v for v in intset_values(reader.string())}


def _load_zset(reader: Reader, kind: int, config):
    count = reader.plain_len()
    zset = ZSet()
    for _ in range(count):
        member = reader.string()
        if kind == T_ZSET_2:
            score = struct.unpack("<d", reader.read(8))[0]
        else:
            score = _text_double(reader)
        if math.isnan(score):
            raise BadData("Zset with NAN score detected")
        if member in zset.scores:
            raise BadData("Duplicate zset fields detected")
        zset.add(member, score)
    _nonempty(zset)
    zset.skiplist = not (
        len(zset) <= config["zset-max-listpack-entries"]
        and max(map(len, zset.scores)) <= config["zset-max-listpack-value"]
    )
    return zset


def _text_double(reader: Reader) -> float:
    """rdbLoadDoubleValue: 253 nan, 254 +inf, 255 -inf, else a length and the text."""
    n = reader.byte()
    if n == 253:
        return math.nan
    if n in (254, 255):
        return math.inf if n == 254 else -math.inf
    return _parse_double(reader.read(n))


def _parse_double(raw: bytes) -> float:
    try:
        return float(raw)
    except ValueError:
        raise BadData("bad double") from None


def _load_zset_pairs(reader: Reader, kind: int, config):
    blob = reader.string()
    items = lp_items(blob) if kind == T_ZSET_LISTPACK else ziplist_items(blob)
    if len(items) % 2:
        raise BadData("Zset listpack integrity check failed.")
    zset = ZSet()
    for member, score in zip(items[0::2], items[1::2], strict=True):
        member = as_bytes(member)
        value = float(score) if type(score) is int else _parse_double(score)
        if member in zset.scores or math.isnan(value):
            raise BadData("Zset listpack integrity check failed.")
        zset.add(member, value)
    _nonempty(zset)
    zset.skiplist = len(zset) > config["zset-max-listpack-entries"]
    return zset


def _load_hash(reader: Reader, kind: int, config):
    count = reader.plain_len()
    fields: dict = {}
    for _ in range(count):
        field, value = reader.string(), reader.string()
        if field in fields:
            raise BadData("Duplicate hash fields detected")
        fields[field] = value
    return _nonempty(fields)


def _load_hash_pairs(reader: Reader, kind: int, config):
    blob = reader.string()
    if kind == T_HASH_ZIPMAP:
        pairs = zipmap_pairs(blob)
    else:
        items = list(
            map(as_bytes, lp_items(blob) if kind == T_HASH_LISTPACK else ziplist_items(blob))
        )
        if len(items) % 2:
            raise BadData("Hash listpack integrity check failed.")
        pairs = list(zip(items[0::2], items[1::2], strict=True))
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise BadData("Hash with dup elements")
    return _nonempty(fields)


def _load_stream(reader: Reader, kind: int, config):
    return load_stream(reader, kind == T_STREAM_2)


_LOADERS = {
    T_STRING: _load_string,
    T_LIST: _load_list,
    T_SET: _load_set,
    T_ZSET: _load_zset,
    T_ZSET_2: _load_zset,
    T_HASH: _load_hash,
    T_HASH_ZIPMAP: _load_hash_pairs,
    T_LIST_ZIPLIST: _load_ziplist_list,
    T_SET_INTSET: _load_intset,
    T_ZSET_ZIPLIST: _load_zset_pairs,
    T_HASH_ZIPLIST: _load_hash_pairs,
    T_LIST_QUICKLIST: _load_quicklist,
    T_STREAM: _load_stream,
    T_HASH_LISTPACK: _load_hash_pairs,
    T_ZSET_LISTPACK: _load_zset_pairs,
    T_LIST_QUICKLIST_2: _load_quicklist,
    T_STREAM_2: _load_stream,
}
