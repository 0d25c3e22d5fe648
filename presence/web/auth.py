"""Signed client tokens (`--secret`) and named admin tokens (`--admin-token`).

A client token proves that the site's backend vouches for a user id, and may limit the
channels that user may be in. Two forms, both signed with HMAC-SHA256 keyed by the secret
(the signature is unpadded base64url):

- `<expires>.<signature>` of `<user>\\n<expires>`: any channel except `private-*` ones;
- `<expires>.<channels>.<signature>` of `<user>\\n<expires>\\n<channels>`: only the
  channels listed, `channels` being comma-separated names or prefixes ending in `*`
  (`lobby,team-*`; `*` alone allows every channel, private ones included).

`expires` is a Unix time in seconds. Any backend can mint one (see `sign`, or
`presence token`):

    python -c "import hmac,hashlib,base64,time; e=int(time.time())+86400; c='lobby,team-*'; \\
      print(f'{e}.{c}.' + base64.urlsafe_b64encode(hmac.new(b'SECRET', f'alice\\n{e}\\n{c}'.encode(), \\
      hashlib.sha256).digest()).rstrip(b'=').decode())"

A channel whose name starts with `private-` needs a scoped token that lists it (or a
prefix of it); without `--secret` such channels are refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping

PRIVATE_PREFIX = "private-"
MAX_TOKEN_CHARS = 2048  # a scope of about thirty channel names
UNNAMED_ADMIN = "admin"  # the name of an --admin-token given without NAME=

_SCOPE_ENTRY = re.compile(r"[A-Za-z0-9_.-]{1,64}|[A-Za-z0-9_.-]{0,63}\*")
_ADMIN_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def is_private(channel: str) -> bool:
    """True for a channel only scoped tokens may enter (`private-...`)."""
    return channel.startswith(PRIVATE_PREFIX)


def _signature(secret: str, user: str, expires: int, scope: str | None) -> str:
    message = f"{user}\n{expires}" if scope is None else f"{user}\n{expires}\n{scope}"
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(
    secret: str,
    user: str,
    ttl: float = 86400,
    now: float | None = None,
    channels: Iterable[str] | None = None,
) -> str:
    """A token for `user`, valid for `ttl` seconds; with `channels` (names or prefixes
    ending in `*`), valid in those channels only. ValueError for an invalid entry."""
    expires = int((time.time() if now is None else now) + ttl)
    if channels is None:
        return f"{expires}.{_signature(secret, user, expires, None)}"
    entries = list(channels)
    for entry in entries:
        if not _SCOPE_ENTRY.fullmatch(entry):
            raise ValueError(
                f"invalid channel or prefix {entry!r}: [A-Za-z0-9_.-]{{1,64}}, or a prefix ending in *"
            )
    if not entries:
        raise ValueError("a scoped token needs at least one channel")
    scope = ",".join(entries)
    return f"{expires}.{scope}.{_signature(secret, user, expires, scope)}"


def check(
    secret: str, user: str, token: str, channel: str | None = None, now: float | None = None
) -> str | None:
    """None when `token` is a valid, unexpired token for `user` that allows `channel`
    (None: any channel it allows); otherwise why not. Never raises, whatever `token` is."""
    if len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return "token is malformed"
    expires, _, rest = token.partition(".")
    scope: str | None
    scope, dot, signature = rest.rpartition(".")
    if not dot:
        scope = None
    elif not all(_SCOPE_ENTRY.fullmatch(entry) for entry in scope.split(",")):
        return "token is malformed"
    if not expires.isdigit() or not signature or len(expires) > 16:
        return "token is malformed"
    expected = _signature(secret, user, int(expires), scope)
    if not hmac.compare_digest(signature.encode(), expected.encode()):  # (both ASCII)
        return "token is not valid for this user"
    if int(expires) < (time.time() if now is None else now):
        return "token has expired"
    if channel is not None and not allows(scope, channel):
        return f"token does not allow channel {channel}"
    return None


def allows(scope: str | None, channel: str) -> bool:
    """True when a token of `scope` (None: unscoped) may be used in `channel`."""
    if scope is None:
        return not is_private(channel)
    return any(
        entry == channel or (entry.endswith("*") and channel.startswith(entry[:-1]))
        for entry in scope.split(",")
    )


# -- admin tokens -------------------------------------------------------------------------


def parse_admin_tokens(spec: str | None) -> dict[str, str]:
    """{token: name} from an --admin-token value: comma-separated `TOKEN` or `NAME=TOKEN`
    (the first `=` separates them; an unnamed token is called "admin").

    ValueError for an empty entry, an invalid name or a token given twice; its message
    never contains a token.
    """
    tokens: dict[str, str] = {}
    if not spec:
        return tokens
    for position, entry in enumerate(spec.split(","), 1):
        entry = entry.strip()
        name, equals, token = entry.partition("=")
        if not equals:
            name, token = UNNAMED_ADMIN, entry
        if not _ADMIN_NAME.fullmatch(name):
            raise ValueError(f"entry {position}: a name is [A-Za-z0-9_.@-]{{1,64}}")
        if not token or not token.isascii() or not token.isprintable() or " " in token:
            raise ValueError(f"entry {position}: the token is empty or not printable ASCII")
        if token in tokens:
            raise ValueError(f"entry {position}: this token is given twice")
        tokens[token] = name
    return tokens


def admin_name(tokens: Mapping[str, str], authorization: str) -> str | None:
    """The name of the admin token an Authorization header value (`Bearer <token>`)
    carries, or None. Every configured token is compared, each in constant time."""
    given = authorization.encode("utf-8", "surrogatepass")
    found = None
    for token, name in tokens.items():
        if hmac.compare_digest(given, b"Bearer " + token.encode()):
            found = name
    return found
