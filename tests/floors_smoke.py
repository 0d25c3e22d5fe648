"""Smoke test of an installed `presence`, for the declared dependency floors (see .ci/run).

Run with the interpreter of a venv holding `presence` and its dependencies:
`python tests/floors_smoke.py`. It prints the versions it ran with, starts `presence serve`
with its bundled store on a free port (admin token, secret), and checks a session: join,
poll, send, a long-poll woken by a message, kick (named in the leave event), the operator
reads, then SIGTERM and a clean exit; and that redis-py hands replies to hiredis (the
store transport's fast path). Exit status 0 when all held. Standard library only,
so the venv needs nothing but what `presence` declares.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from importlib import metadata

SECRET, ADMIN = "smoke-secret", "smoke-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, path: str, admin: bool = False, **params: str) -> dict:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else base + path
    headers = {"Authorization": f"Bearer {ADMIN}"} if admin else {}
    method = "DELETE" if "/members/" in path else "GET"
    with urllib.request.urlopen(urllib.request.Request(url, None, headers, method=method)) as r:
        return json.load(r)


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"presence serve exited with {proc.returncode} at start-up")
        try:
            if call(base, "/readyz").get("ready"):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise SystemExit("presence serve never became ready")


def session(base: str) -> None:
    from presence.web import auth

    alice = {"user": "alice", "conn": "a", "token": auth.sign(SECRET, "alice")}
    bob = {"user": "bob", "conn": "b", "token": auth.sign(SECRET, "bob", channels=["room"])}
    joined = call(base, "/channels/room/join", **alice, info='{"name":"Alice"}')
    call(base, "/channels/room/join", **bob)
    cursor = joined["cursor"]
    polled = call(base, "/channels/room/poll", **alice, cursor=cursor)
    assert [e["type"] for e in polled["events"]] == ["join"], polled
    cursor = polled["cursor"]

    woken: dict = {}
    waiter = threading.Thread(
        target=lambda: woken.update(call(base, "/channels/room/poll", **alice, cursor=cursor))
    )
    waiter.start()
    time.sleep(0.3)  # the poll is held
    call(base, "/channels/room/send", **bob, data="hello")
    waiter.join(10)
    assert [(e["type"], e.get("data")) for e in woken["events"]] == [("message", "hello")], woken

    channel = call(base, "/api/channels/room", admin=True)
    assert (channel["users"], [m["user"] for m in channel["members"]]) == (2, ["alice", "bob"])
    call(base, "/api/channels/room/members/bob", admin=True)
    kicked = call(base, "/channels/room/poll", **alice, cursor=woken["cursor"])["events"]
    assert [(e["type"], e["reason"], e["by"]) for e in kicked] == [("leave", "kicked", "admin")]
    try:
        call(base, "/api/channels")
        raise AssertionError("the operator read was open without the admin token")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401


def check_fast_path() -> None:
    """The hiredis fast path of presence.service.transport is in use with these versions."""
    import asyncio

    from presence.service import transport
    from presence.service.gateway import Gateway
    from presence.testing import bundled_store

    async def check(port: int) -> bool:
        gateway = await Gateway.connect(f"redis://127.0.0.1:{port}/0", 100, "auto")
        try:
            return await transport.fast_path_available(gateway.router.client)
        finally:
            await gateway.close()

    async def lua(port: int) -> object:
        import redis.asyncio

        client = redis.asyncio.Redis(port=port)
        try:
            return await client.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, "n", 5)
        finally:
            await client.aclose()

    with bundled_store() as port:
        assert asyncio.run(check(port)), "redis-py reads replies without hiredis"
        assert asyncio.run(lua(port)) == 5, "the store's Lua (lupa) does not run a script"


def main() -> int:
    versions = {
        name: metadata.version(name)
        for name in ("tornado", "redis", "hiredis", "lupa", "httptools")
    }
    try:
        versions["uvloop"] = metadata.version("uvloop")
    except metadata.PackageNotFoundError:
        pass
    print("smoke test with", ", ".join(f"{k} {v}" for k, v in versions.items()), flush=True)
    port = free_port()
    command = [sys.executable, "-m", "presence.cli", "serve", "--port", str(port)]
    command += ["--secret", SECRET, "--admin-token", ADMIN, "--poll-timeout", "5"]
    proc = subprocess.Popen(command)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proc)
        session(base)
        check_fast_path()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
        assert code == 0, f"presence serve exited with {code} after SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print("smoke test passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
