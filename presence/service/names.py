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
