"""A minimal RESP client that returns replies as the exact bytes the server sent.

Differential tests compare these bytes between the bundled store and real redis-server:
same command, same reply, down to the error text.
"""

from __future__ import annotations

import socket


class RawClient:
    """Blocking RESP client over TCP; `call()` returns one whole reply as raw bytes."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, *args) -> None:
        self.sock.sendall(encode_command(args))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def call(self, *args) -> bytes:
        """Send one command and return its reply's raw bytes."""
        self.send(*args)
        return self.read_reply()

    def read_reply(self) -> bytes:
        """Read exactly one reply (including nested aggregates) and return its bytes."""
        end = self._reply_end(0)
        while end is None:
            self._recv()
            end = self._reply_end(0)
        reply, self.buf = self.buf[:end], self.buf[end:]
        return reply

    def read_until_set_event(self) -> list[bytes]:
        """Pushed messages up to a `__keyevent@0__:set` one (tests end a script with a SET marker)."""
        messages = []
        while not messages or b"__keyevent@0__:set" not in messages[-1]:
            messages.append(self.read_reply())
        return messages

    def read_all(self) -> bytes:
        """Everything until the server closes the connection."""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                data, self.buf = self.buf, b""
                return data
            self.buf += chunk

    def _recv(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed; buffered {self.buf!r}")
        self.buf += chunk

    def _reply_end(self, pos: int) -> int | None:
        """Offset just past the reply starting at `pos`, or None if incomplete."""
        buf = self.buf
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        kind, header = buf[pos : pos + 1], buf[pos + 1 : eol]
        after = eol + 2
        if kind in b"+-:_,#(":
            return after
        if kind in b"$=!":
            n = int(header)
            if n < 0:
                return after
            return after + n + 2 if len(buf) >= after + n + 2 else None
        if kind in b"*~>%|":
            n = int(header)
            if n < 0:
                return after
            items = n * 2 if kind in b"%|" else n
            for _ in range(items):
                after = self._reply_end(after)
                if after is None:
                    return None
            return after
        raise ValueError(f"not RESP at {pos}: {buf[pos : pos + 40]!r}")


def encode_command(args) -> bytes:
    """Encode a command as a RESP multibulk; str and int arguments are converted to bytes."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)
