"""The bundled store as a child process of `presence serve` (the embedded default)."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile

from presence.service.keys import EXPIRY_CHANNEL

LOAD_EXPIRE_DELAY_MS = 3000  # the node's subscriber retries a lost connection every 2 s at most


class StoreStartError(RuntimeError):
    """The bundled store did not come up; the message says why (with its log's tail)."""


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM us if `presence serve` dies without stopping us."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class EmbeddedStore:
    """Starts `python -m presence.store` on a loopback port and stops it again.

    The store announces every expired key on presence.service.keys.EXPIRY_CHANNEL.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", data_dir: str | None = None) -> None:
        """`data_dir`: keep the data there in an append-only file (None: memory only)."""
        self.host = host
        self.data_dir = data_dir
        self.port = port or _free_port(host)
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (the store log, read on failure)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    async def start(self, timeout: float = 15) -> str:
        """Spawn the store and wait until it accepts connections; returns its URL.

        Raises StoreStartError when it exits early or does not listen within `timeout`.
        """
        cmd = [
            sys.executable,
            "-m",
            "presence.store",
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--keys-expire-notify",
            EXPIRY_CHANNEL,
            *self._persistence_args(),
        ]
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if os.name == "posix" else None,
            )
        except OSError as exc:
            raise StoreStartError(f"cannot run the bundled store ({' '.join(cmd)}): {exc}") from exc
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.proc.poll() is not None:
                raise StoreStartError(
                    f"the bundled store exited with status {self.proc.returncode}"
                    f" on port {self.port}:\n{self.log_tail()}"
                )
            if await self._answers_ping():
                if self.proc.poll() is None:
                    return self.url
            else:
                await asyncio.sleep(0.05)
        self.stop()
        raise StoreStartError(
            f"the bundled store did not listen on {self.host}:{self.port} "
            f"within {timeout:g}s:\n{self.log_tail()}"
        )

    def _persistence_args(self) -> list[str]:
        """appendonly in `data_dir`; keys that expired while the store was down are announced
        LOAD_EXPIRE_DELAY_MS after it starts, once the node's subscriber is back."""
        if not self.data_dir:
            return []
        os.makedirs(self.data_dir, exist_ok=True)
        return [
            "--appendonly",
            "yes",
            "--dir",
            os.path.abspath(self.data_dir),
            "--aof-load-expire-delay",
            str(LOAD_EXPIRE_DELAY_MS),
        ]

    async def _answers_ping(self) -> bool:
        """True when something on our port answers PING like a Redis (not just any listener)."""
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            return await asyncio.wait_for(reader.readline(), 1) == b"+PONG\r\n"
        except (TimeoutError, OSError):
            return False
        finally:
            writer.close()

    def log_tail(self, size: int = 2000) -> str:
        self._log.seek(0, os.SEEK_END)
        self._log.seek(max(self._log.tell() - size, 0))
        return self._log.read().decode("utf-8", "replace").strip()

    def stop(self) -> None:
        """Terminate the store (kill it after 5 s); safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
