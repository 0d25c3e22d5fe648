"""Slow clients against a running node: N sockets that send part of a request and stop.

    .venv/bin/python bench/slow_clients.py PORT N NODE_PID NODE_LOG

Meanwhile probes /healthz once a second and samples the node's CPU; prints how many
sockets were answered 503 (over --max-connections), the node's CPU share, its open file
descriptors, the probes' statuses and how many lines the node logged. Raise this
process's own open-file limit first (ulimit -n) when N is large.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import urllib.request


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def slow_client(port: int, opened: list, counts: dict) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and nothing more
        opened.append(writer)
        if (await reader.read(200)).startswith(b"HTTP/1.1 503"):
            counts["503"] += 1
    except OSError:
        counts["failed"] += 1


def probe(port: int) -> int | str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return answer.status
    except Exception as exc:
        return getattr(exc, "code", type(exc).__name__)


async def main(port: int, n: int, pid: int, log: str) -> None:
    opened: list = []
    counts = {"503": 0, "failed": 0}
    cpu0, t0 = cpu_seconds(pid), time.time()
    tasks = [asyncio.create_task(slow_client(port, opened, counts)) for _ in range(n)]
    loop = asyncio.get_running_loop()
    probes = []
    for _ in range(12):
        await asyncio.sleep(1)
        probes.append(await loop.run_in_executor(None, probe, port))
    cpu1, t1 = cpu_seconds(pid), time.time()
    print(f"slow clients {n}: connected {len(opened)}, answered 503 {counts['503']}, "
          f"failed {counts['failed']}")  # fmt: skip
    print(f"node CPU {100 * (cpu1 - cpu0) / (t1 - t0):.0f}% over {t1 - t0:.0f} s, "
          f"open fds {len(os.listdir(f'/proc/{pid}/fd'))}")  # fmt: skip
    print("/healthz probes, one a second:", probes)
    with open(log, "rb") as f:
        print("node log lines:", sum(1 for _ in f))
    for writer in opened:
        writer.close()
    for task in tasks:
        task.cancel()


if __name__ == "__main__":
    port, n, pid = (int(a) for a in sys.argv[1:4])
    asyncio.run(main(port, n, pid, sys.argv[4]))
