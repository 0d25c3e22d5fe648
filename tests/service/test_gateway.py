"""The store gateway's set-up of expiry notifications, its key names and packed commands."""

import asyncio

import pytest

from presence.service.gateway import Gateway
from presence.service.keys import parse_online_key
from presence.service.records import StoreSetupError
from presence.testing import redis_server


def test_presence_keys_round_trip_and_carry_the_channel_hash_tag():
    gateway = Gateway.from_url("redis://127.0.0.1:1/0")
    key = gateway.keys("lobby.1").online("al@x-y")
    assert key.startswith("presence:{lobby.1}:")
    assert parse_online_key(key) == ("lobby.1", "al@x-y")
    assert parse_online_key("presence:{lobby}:member:al") is None
    assert parse_online_key("other") is None


@pytest.mark.gen_test
async def test_keyspace_events_are_enabled_on_a_redis_without_them(redis_port):
    gateway = Gateway.from_url(f"redis://127.0.0.1:{redis_port}/0")
    await gateway.redis.config_set("notify-keyspace-events", "")
    assert (await gateway.expiry_setup()).channel == "__keyevent@0__:expired"
    assert set("Ex") <= set(
        (await gateway.redis.config_get("notify-keyspace-events"))["notify-keyspace-events"]
    )
    await gateway.close()


@pytest.mark.gen_test
async def test_the_bundled_store_announces_on_its_expire_notify_channel(store_port):
    gateway = Gateway.from_url(f"redis://127.0.0.1:{store_port}/0")
    await gateway.redis.config_set("keys-expire-notify", "presence:expired")
    try:
        assert (await gateway.expiry_setup()).exact
    finally:
        await gateway.redis.config_set("keys-expire-notify", "")
        await gateway.close()


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("flags,works", [(["--notify-keyspace-events", "Ex"], True), ([], False)])
async def test_without_config_a_probe_decides(flags, works):
    with redis_server("--rename-command", "CONFIG", '""', *flags) as port:
        gateway = Gateway.from_url(f"redis://127.0.0.1:{port}/0")
        try:
            if works:
                assert (await gateway.expiry_setup()).channel == "__keyevent@0__:expired"
            else:
                with pytest.raises(StoreSetupError, match="notify-keyspace-events Ex"):
                    await gateway.expiry_setup()
        finally:
            await gateway.close()


def test_the_prepacked_commands_are_what_the_generic_packer_makes_of_them():
    from presence.service.keys import ChannelKeys, pack
    from presence.service.transport import Packed

    k = ChannelKeys("room.1")
    generic = [
        pack(b"SET", k.online("al@ice"), "1", b"PX", 30000, b"XX"),
        pack(b"ZADD", k.conns("al@ice"), b"XX", b"GT", b"CH", 1800000030000, "c-1"),
        pack(b"ZADD", k.connections, b"XX", b"GT", 1800000030000, "al@ice/c-1"),
        pack(b"ZADD", k.deadlines, b"XX", b"GT", 1800000030000, "al@ice"),
    ]
    assert k.refresh_commands("al@ice", "c-1", 1800000030000, 30000) == b"".join(generic)
    assert k.read_commands(12) == pack(b"MGET", k.seq, k.epoch) + pack(b"LLEN", k.events) + pack(
        b"LRANGE", k.events, -12, -1
    )
    packed = Packed()
    packed.set(k.online("al@ice"), "1", px=30000, xx=True)
    packed.zadd(k.conns("al@ice"), {"c-1": 1800000030000}, xx=True, ch=True, gt=True)
    assert packed.parts == generic[:2] and packed.count == 2


def test_a_read_event_carries_the_json_its_dict_encodes_to():
    import json

    from presence.service.records import Event
    from presence.web.base import encode_json

    raw = json.dumps(
        {
            "type": "message",
            "user": "a",
            "info": {"name": "é</b>\u2028", "n": 1.5},
            "ts": 17,
            "data": "hi",
        },
        separators=(",", ":"),
    )
    event = Event(7, raw)
    assert event == {"id": 7, **json.loads(raw)}
    assert event.json == json.dumps(event, separators=(",", ":"))
    answer = {"cursor": "ab:8", "events": [event, Event(8, raw)]}
    generic = json.dumps(answer, separators=(",", ":")).replace("</", "<\\/")
    assert encode_json(answer) == generic and "</" not in generic


@pytest.mark.gen_test
async def test_polls_share_the_events_they_read(node):
    await node.join("room", "alice", "a", None)
    await node.join("room", "bob", "b", None)
    first = await node.poll("room", "alice", "a", 0)
    again = await node.poll("room", "bob", "b", 0)
    assert [e["user"] for e in first["events"]] == ["alice", "bob"]
    assert all(a is b for a, b in zip(first["events"], again["events"], strict=False))


@pytest.mark.gen_test(timeout=15)
async def test_a_store_without_sharded_pubsub_stops_start_up():
    with redis_server("--rename-command", "SPUBLISH", '""') as port:  # as a Redis 6 would
        gateway = Gateway.from_url(f"redis://127.0.0.1:{port}/0")
        try:
            with pytest.raises(StoreSetupError, match=r"Redis 7\.0 or later"):
                await gateway.expiry_setup()
        finally:
            await gateway.close()


@pytest.mark.gen_test(timeout=30)
async def test_reads_racing_appends_at_a_full_log_answer_every_event_once(store_url, monkeypatch):
    """A log at its history length is trimmed by every append: a read that races appends
    still answers the events after its cursor, each once, in one try (reads used to
    start at a guessed index, which every trim moved: they retried, and under a stream of
    events ran out of tries, StoreBusy)."""
    from presence.service import gateway as gateway_module
    from tests.service.helpers import make_presence

    monkeypatch.setattr(gateway_module, "_READ_RETRIES", 1)
    gateway = make_presence(store_url, history=20).gateway
    event = {"type": "message", "user": "a", "info": None, "ts": 1}
    try:
        for _ in range(30):
            await gateway.record("full", event)

        async def appends():
            for _ in range(100):
                await gateway.record("full", event)

        writers = asyncio.gather(appends(), appends())
        cursor, got = 30, []
        while not writers.done() or cursor < 230:
            reads = await asyncio.gather(*(gateway.read_channel("full", cursor) for _ in range(5)))
            for log in reads:
                assert not log.reset
                assert [e["id"] for e in log.events] == list(range(cursor + 1, log.seq + 1))
            got.extend(reads[0].events)
            cursor = reads[0].seq
        await writers
        assert [e["id"] for e in got] == list(range(31, 231))
    finally:
        await gateway.close()
