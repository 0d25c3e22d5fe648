"""Name rules from the contract: what a channel, user, connection id and callback may be.

The web layer validates every request parameter with these before anything reaches the
domain; the domain and the gateway rely on names being valid (in particular that they
contain no `{`, `}`, `:` or `/`, which the key layout uses as separators).
"""

from __future__ import annotations

import re

CHANNEL = re.compile(r"[A-Za-z0-9_.-]{1,64}")
USER = re.compile(r"[A-Za-z0-9_.@-]{1,128}")
CONN = re.compile(r"[A-Za-z0-9_-]{1,64}")
CALLBACK = re.compile(r"[A-Za-z_$][\w$]{0,127}(\.[A-Za-z_$][\w$]{0,127})*", re.ASCII)

CURSOR = re.compile(r"(?:([0-9a-z]{1,32}):)?([0-9]{1,16})")  # "<epoch>:<id>", or a bare id

MAX_INFO_BYTES = 1024
MAX_DATA_BYTES = 4096


def is_channel(value: str) -> bool:
    """True when `value` is a valid channel name."""
    return CHANNEL.fullmatch(value) is not None


def is_user(value: str) -> bool:
    """True when `value` is a valid user id."""
    return USER.fullmatch(value) is not None


def is_conn(value: str) -> bool:
    """True when `value` is a valid connection id."""
    return CONN.fullmatch(value) is not None


def is_callback(value: str) -> bool:
    """True when `value` is a JSONP callback name that is safe to echo into JavaScript."""
    return CALLBACK.fullmatch(value) is not None


def is_cursor(value: str) -> bool:
    """True when `value` is a log cursor: "<epoch>:<id>", or a bare "<id>"."""
    return CURSOR.fullmatch(value) is not None


def parse_cursor(value: str | int) -> tuple[str | None, int]:
    """(epoch, id) of a valid cursor; a bare id (or an int) has epoch None. ValueError if invalid.

    Clients treat cursors as opaque strings; the epoch names the log the id counts in,
    so a cursor into a log the store has lost is recognised.
    """
    match = CURSOR.fullmatch(str(value))
    if match is None:
        raise ValueError(f"invalid cursor {value!r}")
    return match.group(1), int(match.group(2))


def format_cursor(epoch: str | None, ident: int) -> str:
    """The cursor string for event id `ident` of the log of `epoch` (None: no epoch yet)."""
    return f"{epoch}:{ident}" if epoch else str(ident)
