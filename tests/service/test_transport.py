"""The transport: routing, shared transactions per slot, the retry policy, and the contract
with the redis-py and Tornado internals the code relies on (these fail loudly on upgrade)."""

import asyncio

import pytest
import redis
import tornado.httpserver
from redis.crc import key_slot

from presence.service import transport
from presence.service.gateway import Gateway
from presence.service.keys import ChannelKeys, pack
from presence.service.records import StoreBusy
from presence.service.transport import Batcher, Packed


@pytest.mark.gen_test
async def test_redis_py_still_keeps_the_hiredis_reader_where_the_fast_path_reads_it(redis_port):
    """If this fails after a redis-py upgrade, transport._hiredis_reader must follow the
    new internals (replies are still read correctly, through redis-py's slower path)."""
    gateway = Gateway.from_url(f"redis://127.0.0.1:{redis_port}/0")
    try:
        await gateway.redis.ping()
        assert await transport.fast_path_available(gateway.redis)
    finally:
        await gateway.close()


def test_tornado_still_has_the_internals_the_http_server_subclasses():
    """presence.web.app subclasses these to skip per-request work (see its docstrings); a
    Tornado upgrade that renames them must be met by a change there."""
    context = tornado.httpserver._HTTPRequestContext
    assert callable(context._apply_xheaders)
    server = tornado.httpserver.HTTPServer(lambda request: None)
    assert isinstance(server._connections, set)
    assert hasattr(server, "conn_params") and hasattr(server, "trusted_downstream")


def test_tornado_still_has_the_internals_the_network_limits_rely_on():
    """presence.web.app.HTTPServer accepts with its own Acceptor (stored where TCPServer.stop
    looks) and builds LimitedIOStream itself; LimitedIOStream reads the buffered request
    line to tell 414 from 431. tests/web/test_limits.py checks the behaviour end to end."""
    import socket

    from tornado.iostream import IOStream

    server = tornado.httpserver.HTTPServer(lambda request: None)
    assert isinstance(server._sockets, dict) and isinstance(server._handlers, dict)
    assert callable(server._handle_connection) and callable(server.start_request)
    assert hasattr(server, "max_buffer_size") and hasattr(server, "read_chunk_size")
    left, right = socket.socketpair()
    stream = IOStream(left)
    assert isinstance(stream._read_buffer, bytearray)
    stream.close()
    right.close()


def refresh_queue(k: ChannelKeys, user: str):
    def queue(pipe: Packed):
        pipe.raw(pack(b"SET", k.online(user), "1", b"PX", 30000), 1)
        return 1, None

    return queue


@pytest.mark.gen_test
async def test_calls_of_one_cluster_slot_share_a_transaction_and_others_get_their_own(
    redis_cluster,
):
    gateway = await Gateway.connect(redis_cluster.url)
    batcher = Batcher(gateway.router)
    sent: list[tuple[object, list[int]]] = []
    real = transport.transactions

    async def spy(client, blocks):
        sent.append((client, [b.count for b in blocks]))
        return await real(client, blocks)

    transport.transactions = spy
    try:
        channels = ["a", "b", "c", "d", "e", "f"]
        calls = [
            batcher.call(gateway.keys(c).seq, refresh_queue(gateway.keys(c), f"u{i}"))
            for c in channels
            for i in range(3)
        ]
        replies = await asyncio.gather(*calls)
        assert all(r == (["OK"], None) for r in replies)
    finally:
        transport.transactions = real
        await gateway.close()
    slots = {key_slot(gateway.keys(c).seq.encode()) for c in channels}
    assert sum(len(blocks) for _, blocks in sent) == len(slots)  # one MULTI/EXEC per slot
    assert sorted(n for _, blocks in sent for n in blocks) == sorted(
        3 * sum(1 for c in channels if key_slot(gateway.keys(c).seq.encode()) == s) for s in slots
    )
    assert len(sent) <= 3  # one write per primary


@pytest.mark.gen_test
async def test_a_call_to_a_moved_slot_follows_it(redis_cluster):
    gateway = await Gateway.connect(redis_cluster.url)
    try:
        k = gateway.keys("moving")
        right = gateway.router.slots[key_slot(k.seq.encode())]
        wrong = next(a for a in set(gateway.router.slots) if a != right)
        gateway.router.slots = [wrong] * 16384  # a stale map: every slot on one node
        replies, _ = await gateway._batcher.call(k.seq, refresh_queue(k, "u"))
        assert replies == ["OK"]
        assert gateway.router.slots[key_slot(k.seq.encode())] == right  # read again
    finally:
        await gateway.close()


@pytest.mark.gen_test
async def test_a_transaction_that_always_loses_its_race_ends_in_store_busy(redis_port):
    gateway = Gateway.from_url(f"redis://127.0.0.1:{redis_port}/0")
    attempts = 0

    async def always_loses(pipe):
        nonlocal attempts
        attempts += 1
        await pipe.watch("contended")
        with redis.Redis(port=redis_port) as other:
            other.incr("contended")
        pipe.multi()
        pipe.incr("contended")
        return await pipe.execute()

    try:
        with pytest.raises(StoreBusy):
            await transport.watched(gateway.router, "contended", always_loses)
        assert attempts == transport.WATCH_RETRIES
    finally:
        await gateway.close()
