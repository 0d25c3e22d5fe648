"""Instructions the store's read path costs per command, counted by callgrind.

    .venv/bin/python bench/store_instructions.py            # one GET per read, and 16
    .venv/bin/python bench/store_instructions.py --pipeline 16

Counted instructions do not depend on the machine's other load, so two commits can be
compared one after the other. The harness drives `Client.data_received` for 50
connections per uvloop turn, each read carrying `--pipeline` GETs of one key, with the
end-of-turn write, over a transport that discards what it is given (no sockets). The run
is made twice, with 100 and 400 turns, and the difference is divided by the commands of
the extra 300 turns, so start-up and imports cancel out. Needs valgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys

CLIENTS = 50


class DiscardingTransport:
    """Just enough of a transport for `Client`: writes go nowhere."""

    def write(self, data) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 50000)

    def get_write_buffer_size(self) -> int:
        return 0


async def drive(pipeline: int, turns: int) -> None:
    from presence.store.server import Client, Server

    server = Server()
    clients = [Client(server) for _ in range(CLIENTS)]
    for client in clients:
        client.connection_made(DiscardingTransport())
    server.keyspace.dbs[0].data[b"key:__rand_int__"] = b"xxx"
    chunk = b"*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n" * pipeline
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    left = [turns]

    def turn() -> None:
        for client in clients:
            client.data_received(chunk)
        left[0] -= 1
        if left[0]:
            loop.call_soon(turn)
        else:
            done.set_result(None)

    loop.call_soon(turn)
    await done


def counted(pipeline: int, turns: int) -> int:
    """Instructions of a whole run under callgrind."""
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--inner",
            "--pipeline",
            str(pipeline),
            "--turns",
            str(turns),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pipeline", type=int, action="append", help="GETs per read (default 1 and 16)"
    )
    parser.add_argument("--turns", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        try:
            import uvloop

            uvloop.run(drive(args.pipeline[0], args.turns))
        except ImportError:
            asyncio.run(drive(args.pipeline[0], args.turns))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed")
    for pipeline in args.pipeline or [1, 16]:
        extra = counted(pipeline, 400) - counted(pipeline, 100)
        print(
            f"{pipeline} GET per read: {extra / (300 * CLIENTS * pipeline):,.0f} instructions per GET"
        )


if __name__ == "__main__":
    main()
