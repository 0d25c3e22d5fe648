"""Parsers of SCAN's cursor and options, shared by SCAN, HSCAN, SSCAN and ZSCAN.

The integer and float argument parsers (`parse_int`, `parse_c_int`, `parse_float`) are in
`presence.store.commands`, next to CommandError; the long-double ones stay with the
arithmetic they feed (hash.py's HINCRBYFLOAT, string.py's INCRBYFLOAT).
"""

from __future__ import annotations

import re

from presence.store import replies
from presence.store.commands import CommandError, parse_int

_CURSOR = re.compile(rb"([+-]?)([0-9]*)")
INVALID_CURSOR = "ERR invalid cursor"


def parse_cursor(raw: bytes) -> int:
    """A cursor read the way Redis's parseScanCursorOrReply reads it (strtoul, no leading
    space): "" is 0, "-1" wraps to 2**64-1, a sign alone or 2**64 is invalid."""
    m = _CURSOR.fullmatch(raw)
    if m is None or (m[1] and not m[2]):
        raise CommandError(INVALID_CURSOR)
    value = int(m[2] or b"0")
    if value >= 1 << 64:
        raise CommandError(INVALID_CURSOR)
    return -value % (1 << 64) if m[1] == b"-" else value


def scan_options(options: list[bytes], with_type: bool = False):
    """(match, count, type) from MATCH/COUNT/TYPE pairs; match is None for `*`.

    Without `with_type` (HSCAN, SSCAN, ZSCAN) TYPE is a syntax error, reported after a bad
    option before it, in Redis's order.
    """
    match, count, kind = None, 10, None
    i = 0
    while i < len(options):
        option = options[i].lower()
        if i + 1 >= len(options):
            raise CommandError(replies.SYNTAX)
        value = options[i + 1]
        if option == b"match":
            match = None if value == b"*" else value
        elif option == b"count":
            count = parse_int(value)
            if count < 1:
                raise CommandError(replies.SYNTAX)
        elif option == b"type" and with_type:
            kind = value.decode(errors="replace").lower()
        else:
            raise CommandError(replies.SYNTAX)
        i += 2
    return match, count, kind
