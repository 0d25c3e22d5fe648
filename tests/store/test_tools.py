"""The tools people point at a Redis work against the store unchanged: redis-cli,
redis-py 8's default asyncio client (RESP3), and redis-benchmark."""

import asyncio
import re
import subprocess

import pytest
import redis.asyncio as aioredis

from tests.helpers import need_tool


def cli(port: int, *args: str, stdin: str | None = None) -> str:
    """Run redis-cli against 127.0.0.1:port and return its stdout (fails on a non-zero exit)."""
    exe = need_tool("redis-cli")
    done = subprocess.run(
        [exe, "-p", str(port), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


# ---------------------------------------------------------------- redis-cli


def test_redis_cli_runs_commands(store, store_port):
    assert cli(store_port, "SET", "greeting", "hello world") == "OK\n"
    assert cli(store_port, "GET", "greeting") == "hello world\n"
    assert cli(store_port, "INCR", "n") == "1\n"
    assert cli(store_port, "GET", "missing") == "\n"
    assert cli(store_port, "--no-raw", "GET", "missing") == "(nil)\n"
    assert cli(store_port, "RPUSH", "l", "a", "b") == "2\n"
    assert cli(store_port, "DBSIZE") == "3\n"
    assert "ERR unknown command 'NOPE'" in cli(store_port, "NOPE")


def test_redis_cli_info_and_client_list(store, store_port):
    cli(store_port, "SET", "k", "v")
    info = cli(store_port, "INFO")
    assert "redis_version:7.0.15" in info and "# Keyspace" in info
    assert re.search(r"^db0:keys=1,expires=0,avg_ttl=0\r?$", info, re.M)
    assert cli(store_port, "INFO", "replication").splitlines()[1].strip() == "role:master"
    listing = cli(store_port, "CLIENT", "LIST")
    assert re.search(r"^id=\d+ addr=127\.0\.0\.1:\d+ .* cmd=client\|list ", listing, re.M)
    assert cli(store_port, "CONFIG", "GET", "maxmemory-policy") == "maxmemory-policy\nnoeviction\n"


def test_redis_cli_resp3(store, store_port):
    cli(store_port, "HSET", "h", "f", "v")
    assert cli(store_port, "-3", "--no-raw", "HGETALL", "h") == '1# "f" => "v"\n'
    assert cli(store_port, "-3", "--no-raw", "GET", "missing") == "(nil)\n"
    assert "db0:keys=1" in cli(store_port, "-3", "INFO", "keyspace")
    assert cli(store_port, "-3", "CLIENT", "INFO").rstrip().endswith("resp=3")


def test_redis_cli_pipes_the_last_argument(store, store_port):
    assert cli(store_port, "-x", "SET", "piped", stdin="line one\nline two\n") == "OK\n"
    assert cli(store_port, "STRLEN", "piped") == "18\n"
    assert cli(store_port, "GET", "piped") == "line one\nline two\n\n"


def test_redis_cli_scan(store, store_port):
    store.call("MSET", *[arg for i in range(30) for arg in (f"user:{i}", "x")])
    store.call("SET", "other", "1")
    keys = cli(store_port, "--scan", "--pattern", "user:*").split()
    assert sorted(keys) == sorted(f"user:{i}" for i in range(30))
    assert len(cli(store_port, "--scan").split()) == 31


def test_redis_cli_pipe_mode_feeds_raw_protocol(store, store_port):
    commands = "".join(f"SET pipe:{i} {i}\r\n" for i in range(100))
    out = cli(store_port, "--pipe", stdin=commands)
    assert "errors: 0, replies: 100" in out
    assert store.call("GET", "pipe:99") == b"$2\r\n99\r\n"


# ---------------------------------------------------------------- redis-py asyncio


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_redis_py_default_async_client_speaks_resp3(store, store_port):
    async def scenario():
        r = aioredis.Redis(port=store_port, decode_responses=True)
        try:
            assert await r.ping() is True
            info = await r.client_info()
            assert info["resp"] == "3" and info["cmd"] == "client|info"
            await r.set("k", "v", ex=100)
            assert await r.get("k") == "v"
            assert 0 < await r.ttl("k") <= 100
            await r.hset("h", mapping={"a": "1", "b": "2"})
            assert await r.hgetall("h") == {"a": "1", "b": "2"}
            assert (await r.info("server"))["redis_version"] == "7.0.15"
            assert (await r.info())["db0"]["keys"] == 2
            assert await r.config_get("maxmemory") == {"maxmemory": "0"}
            await r.client_setname("async-test")
            assert await r.client_getname() == "async-test"
            names = [c["name"] for c in await r.client_list()]
            assert "async-test" in names
            assert await r.dbsize() == 2
            assert (await r.object("encoding", "k")) == "embstr"
            assert await r.memory_usage("k") > 0
        finally:
            await r.aclose()

    run(scenario())


def test_redis_py_pipeline_and_transaction_with_watch(store, store_port):
    async def scenario():
        r = aioredis.Redis(port=store_port, decode_responses=True)
        other = aioredis.Redis(port=store_port, decode_responses=True)
        try:
            async with r.pipeline(transaction=False) as pipe:
                pipe.set("a", 1).incr("a").get("a").hgetall("nokey")
                assert await pipe.execute() == [True, 2, "2", {}]
            async with r.pipeline(transaction=True) as pipe:
                pipe.incr("a").incr("a")
                assert await pipe.execute() == [3, 4]
            async with r.pipeline() as pipe:
                await pipe.watch("a")
                assert await pipe.get("a") == "4"
                pipe.multi()
                pipe.set("a", 100)
                await other.set("a", "changed")
                with pytest.raises(aioredis.WatchError):
                    await pipe.execute()
            assert await r.get("a") == "changed"
            async with r.pipeline() as pipe:
                await pipe.watch("a")
                pipe.multi()
                pipe.set("a", 100)
                assert await pipe.execute() == [True]
            assert await r.get("a") == "100"
        finally:
            await r.aclose()
            await other.aclose()

    run(scenario())


def test_redis_py_pubsub_get_message(store, store_port):
    async def scenario():
        r = aioredis.Redis(port=store_port, decode_responses=True)
        pubsub = r.pubsub()
        try:
            await pubsub.subscribe("news")
            await pubsub.psubscribe("n*")
            seen = []
            while len(seen) < 2:
                msg = await pubsub.get_message(timeout=2)
                assert msg is not None
                seen.append(msg["type"])
            assert seen == ["subscribe", "psubscribe"]
            assert await r.publish("news", "hello") == 2
            got = []
            while len(got) < 2:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
                assert msg is not None
                got.append((msg["type"], msg["channel"], msg["data"]))
            assert sorted(got) == [("message", "news", "hello"), ("pmessage", "news", "hello")]
            assert (await r.info("stats"))["pubsub_channels"] >= 1
        finally:
            await pubsub.aclose()
            await r.aclose()

    run(scenario())


# ---------------------------------------------------------------- redis-benchmark


def test_redis_benchmark_short_run_completes(store, store_port):
    exe = need_tool("redis-benchmark")
    done = subprocess.run(
        [exe, "-p", str(store_port), "-t", "get,set,ping", "-n", "2000", "-c", "10", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # -q prints progress lines separated by \r, then one final line per test
    finals = [line.rsplit("\r", 1)[-1].strip() for line in done.stdout.splitlines()]
    rates = dict(re.findall(r"^(\w+): ([\d.]+) requests per second", "\n".join(finals), re.M))
    assert set(rates) == {"PING_INLINE", "PING_MBULK", "SET", "GET"}, done.stdout
    assert all(float(rate) > 0 for rate in rates.values())
    assert store.call("EXISTS", "key:__rand_int__") == b":1\r\n"
