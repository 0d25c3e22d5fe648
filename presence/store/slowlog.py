"""What operators watch commands with: the slow log (SLOWLOG) and MONITOR's lines.

Both are fed from the one place a command handler runs (`Server.run_command`), which
times every call; nothing here is looked at unless a command was slow enough or a
MONITOR client is connected.
"""

from __future__ import annotations

import time
from collections import deque

MAX_ARGS = 32  # SLOWLOG_ENTRY_MAX_ARGC: the rest is summarised in one last argument
MAX_ARG_BYTES = 128  # SLOWLOG_ENTRY_MAX_STRING: a longer argument is cut and summarised
_REDACTED = b"(redacted)"


class SlowLog:
    """The newest `slowlog-max-len` commands that took `slowlog-log-slower-than` or longer."""

    __slots__ = ("entries", "next_id")

    def __init__(self) -> None:
        self.entries: deque[list] = deque()  # newest first, as SLOWLOG GET answers
        self.next_id = 0

    def record(self, client, argv: list[bytes], micros: int, max_len: int) -> None:
        """Add one entry as Redis's slowlogCreateEntry shapes it, and keep at most `max_len`."""
        self.entries.appendleft(
            [
                self.next_id,
                int(time.time()),
                micros,
                _shown_args(argv),
                client.addr.encode(),
                client.name,
            ]
        )
        self.next_id += 1
        while len(self.entries) > max_len:
            self.entries.pop()

    def newest(self, count: int) -> list[list]:
        """The `count` newest entries (all of them for -1)."""
        if count < 0:
            return list(self.entries)
        return [entry for entry, _ in zip(self.entries, range(count), strict=False)]

    def reset(self) -> None:
        self.entries.clear()


def redact(argv: list[bytes]) -> list[bytes]:
    """AUTH's and HELLO ... AUTH's secrets replaced, as Redis does in its logs and MONITOR."""
    name = argv[0].lower()
    if name == b"auth":
        return argv[:1] + [_REDACTED] * (len(argv) - 1)
    if name == b"hello":
        shown = list(argv)
        for i in range(2, len(argv) - 2):
            if argv[i].lower() == b"auth":
                shown[i + 1] = shown[i + 2] = _REDACTED
        return shown
    return argv


def _shown_args(argv: list[bytes]) -> list[bytes]:
    argv = redact(argv)
    count = min(len(argv), MAX_ARGS)
    shown = []
    for i in range(count):
        if i == count - 1 and count < len(argv):
            shown.append(b"... (%d more arguments)" % (len(argv) - count + 1))
            break
        arg = argv[i]
        if len(arg) > MAX_ARG_BYTES:
            arg = arg[:MAX_ARG_BYTES] + b"... (%d more bytes)" % (len(arg) - MAX_ARG_BYTES)
        shown.append(arg)
    return shown


def monitor_line(client, db_index: int, argv: list[bytes]) -> bytes:
    """One MONITOR line: `+<secs.micros> [<db> <addr>] "arg" ...` with Redis's quoting."""
    now = time.time()
    if not client.addr:  # a script's own client
        where = "lua"
    elif client.addr.endswith(":0"):
        where = f"unix:{client.addr[:-2]}"
    else:
        where = client.addr
    args = b" ".join(quote(arg) for arg in redact(argv))
    head = "+%d.%06d [%d %s] " % (int(now), int(now * 1_000_000) % 1_000_000, db_index, where)
    return head.encode() + args + b"\r\n"


_ESCAPES = {34: b'\\"', 92: b"\\\\", 10: b"\\n", 13: b"\\r", 9: b"\\t", 7: b"\\a", 8: b"\\b"}


def quote(arg: bytes) -> bytes:
    """An argument as Redis's sdscatrepr writes it: in double quotes, escaped, \\xHH else."""
    out = bytearray(b'"')
    for byte in arg:
        escaped = _ESCAPES.get(byte)
        if escaped is not None:
            out += escaped
        elif 32 <= byte < 127:
            out.append(byte)
        else:
            out += b"\\x%02x" % byte
    out += b'"'
    return bytes(out)
