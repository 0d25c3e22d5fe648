"""Signed client tokens (`--secret`): proof that the site's backend vouches for a user id.

A token is `<expires>.<signature>`: `expires` is a Unix time in seconds and `signature`
is the unpadded base64url HMAC-SHA256, keyed by the secret, of `<user>\\n<expires>`.
Any backend can mint one (see `sign`, or `presence token`):

    python -c "import hmac,hashlib,base64,time; e=int(time.time())+86400; \\
      print(f'{e}.' + base64.urlsafe_b64encode(hmac.new(b'SECRET', f'alice\\n{e}'.encode(), \\
      hashlib.sha256).digest()).rstrip(b'=').decode())"
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


def _signature(secret: str, user: str, expires: int) -> str:
    digest = hmac.new(secret.encode(), f"{user}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(secret: str, user: str, ttl: float = 86400, now: float | None = None) -> str:
    """A token for `user`, valid for `ttl` seconds."""
    expires = int((time.time() if now is None else now) + ttl)
    return f"{expires}.{_signature(secret, user, expires)}"


def check(secret: str, user: str, token: str, now: float | None = None) -> str | None:
    """None when `token` is a valid, unexpired token for `user`; otherwise why not."""
    expires, _, signature = token.partition(".")
    if not token.isascii() or not expires.isdigit() or not signature or len(token) > 200:
        return "token is malformed"
    if not hmac.compare_digest(signature, _signature(secret, user, int(expires))):
        return "token is not valid for this user"
    if int(expires) < (time.time() if now is None else now):
        return "token has expired"
    return None
