"""The hot paths of the own HTTP engine (presence.web.engine): GET `/channels/<c>/poll`
and `/channels/<c>/heartbeat` without a body, served without a Tornado request, handler or
coroutine per held poll.

A request takes a hot path only when every parameter is valid (the names, the cursor, the
callback, the token with --secret, the Host header): those checks have no side effect, and
a request that fails one goes to the same Tornado handler as on the Tornado engine
(presence.web.lean), which answers the error. Past the checks, a poll is one task until the
domain holds it (presence.service.feed.Hold), then nothing but a callback on the Hold's
future: when a wake-up answers the channel's held polls, each callback writes the answer's
bytes, head and body encoded once for every poll given the same answer. An error raised by
the domain (store unavailable, a limit reached) is answered by the Tornado handler's own
error path (send_error), so the answers are the same on both engines, byte for byte (the
Date header aside: tests/web/test_lean.py).
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
import urllib.parse
from typing import Any

import tornado.web
from tornado import httputil
from tornado.escape import url_unescape

from presence.service import names
from presence.service.feed import Hold
from presence.service.records import StoreUnavailable
from presence.web import auth
from presence.web.base import _SERVER, encode_answer, http_date, jsonp
from presence.web.engine import Connection, Request

ROUTE = re.compile(rb"/channels/([^/]+)/(poll|heartbeat)")
_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # what Tornado refuses in a header value
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f]")  # what get_argument turns into spaces
# What Tornado checks of a request itself, from 6.5 on (6.4 checks neither): the Host
# header (required with HTTP/1.1, valid, one), and at most this many query fields.
_ABNF = getattr(httputil, "_ABNF", None)
_HOST = None if _ABNF is None else _ABNF.host
_PARSE_CONFIG = getattr(httputil, "_DEFAULT_PARSE_BODY_CONFIG", None)
_MAX_FIELDS = 1 << 62 if _PARSE_CONFIG is None else _PARSE_CONFIG.urlencoded.max_arguments
_PROXY = (b"x-forwarded-for", b"x-real-ip", b"x-scheme", b"x-forwarded-proto")

_HEAD_JSON = (
    b"HTTP/1.1 200 OK\r\nServer: " + _SERVER.encode() + b"\r\n"
    b"Content-Type: application/json; charset=UTF-8\r\nDate: "
)
_HEAD_JSONP = (
    b"HTTP/1.1 200 OK\r\nServer: " + _SERVER.encode() + b"\r\n"
    b"Content-Type: text/javascript; charset=UTF-8\r\nDate: "
)
_AFTER_DATE_JSON = (
    b"\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
    b"Access-Control-Allow-Origin: *\r\nContent-Length: "
)
_AFTER_DATE_JSONP = (
    b"\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nContent-Length: "
)


class _Logged:
    """What the Application's log function reads of a handler, for a hot answer."""

    __slots__ = ("request", "status")

    def __init__(self, request: Any, status: int) -> None:
        self.request = request
        self.status = status

    def get_status(self) -> int:
        return self.status


class _LoggedRequest:
    __slots__ = ("method", "uri", "remote_ip", "start")

    def __init__(self, method: str, uri: str, remote_ip: str, start: float) -> None:
        self.method = method
        self.uri = uri
        self.remote_ip = remote_ip
        self.start = start

    def request_time(self) -> float:
        return time.time() - self.start


class HotPaths:
    """Called by the engine with each complete request: True when a hot path took it."""

    def __init__(self, app: tornado.web.Application) -> None:
        self.app = app
        routes = app.settings["lean_routes"]
        self.routes = routes
        poll_class, common = routes["poll"]
        self.poll_class = poll_class
        self.heartbeat_class = routes["heartbeat"][0]
        self.kwargs = common
        self.presence = common["presence"]
        self.settings = common["settings"]
        self.log_function = app.settings.get("log_function")
        self.log_all = self.settings.access_log in ("all", "sample")
        self.dropped: set[asyncio.Task] = set()
        self.running: set[asyncio.Future] = set()
        self._date: tuple[str, bytes] = ("", b"")
        self._last: tuple[bytes | None, bytes, bytes] = (None, b"", b"")  # body, date, answer

    def __call__(self, conn: Connection, request: Request) -> bool:
        if request.method != "GET" or request.length is not None or request.chunked:
            return False
        if self.app.settings.get("lean_routes") is not self.routes:
            return False  # (switched off: tests compare with the routed answers)
        path, _, query = request.url.partition(b"?")
        match = ROUTE.fullmatch(path)
        if match is None:
            return False
        host = None
        connection = None
        for name, value in request.headers:
            if _CTL.search(value):
                return False
            lowered = name.lower()
            if lowered == b"host":
                if host is not None and _HOST is not None:
                    return False
                host = value
            elif lowered == b"connection":
                connection = value
            elif lowered in _PROXY and self.log_all:
                pass
        if _HOST is None:
            pass
        elif host is None:
            if request.version != "HTTP/1.0":
                return False
        elif host != conn.good_host:
            text = host.decode("latin-1").strip(" \t")
            if not _HOST.fullmatch(text) or "," in text:
                return False
            conn.good_host = host
        args = _query(query)
        if args is None:
            return False
        quoted = match.group(1)
        try:
            if b"%" in quoted:
                quoted = url_unescape(quoted, encoding=None, plus=False)
            channel = quoted.decode("utf-8")
        except UnicodeDecodeError:
            return False
        user, tab, callback = args.get("user"), args.get("conn"), args.get("callback")
        if user is None or tab is None or not names.is_channel(channel):
            return False
        if not names.is_user(user) or not names.is_conn(tab):
            return False
        if callback is not None and not names.is_callback(callback):
            return False
        secret = self.settings.secret
        if secret:
            token = args.get("token")
            if token is None or _CONTROL.search(token) or auth.check(secret, user, token, channel):
                return False
        elif auth.is_private(channel):
            return False
        poll = match.group(2) == b"poll"
        cursor = args.get("cursor", "")
        if poll and not names.is_cursor(cursor):
            return False
        extra = b""
        if request.version == "HTTP/1.1":
            if not conn.keep_alive:
                extra = b"Connection: close\r\n"
        elif connection is not None and connection.lower() == b"keep-alive":
            extra = b"Connection: Keep-Alive\r\n"
        start = time.time() if self.log_all else 0.0
        answer = _Answer(self, conn, request, callback, extra, start)
        presence = self.presence
        if poll:
            hold = Hold()
            tab_key = (channel, user, tab)
            conn.close_callback = functools.partial(self._dropped, hold, tab_key)
            turn = presence.poll_turn(channel)
            task = conn.server.loop.create_task(self._poll(answer, tab_key, cursor, hold, turn))
        else:
            task = conn.server.loop.create_task(self._heartbeat(answer, channel, user, tab))
        self.running.add(task)  # (referenced until done: the loop keeps tasks weakly)
        task.add_done_callback(self.running.discard)
        return True

    async def _heartbeat(self, answer: _Answer, channel: str, user: str, tab: str) -> None:
        try:
            value = await self.presence.heartbeat(channel, user, tab)
        except Exception as exc:
            answer.failed(exc, self.heartbeat_class)
            return
        answer.reply(value)

    async def _poll(
        self,
        answer: _Answer,
        tab: tuple[str, str, str],
        cursor: str,
        hold: Hold,
        turn: asyncio.Future | None,
    ) -> None:
        """PollHandler.get, up to the wait: then a callback of the Hold's future."""
        try:
            if turn is not None:
                await asyncio.shield(turn)  # (shared: cancelling one waiter must not end it)
                if hold.gone:
                    return
            value = await self.presence.start_poll(*tab, cursor, hold)
        except asyncio.CancelledError:
            if hold.gone:
                return  # the client left: nobody to answer
            hold.cancel()
            raise
        except Exception as exc:
            answer.failed(exc, self.poll_class)
            return
        if isinstance(value, Hold):
            assert value.future is not None
            value.future.add_done_callback(answer.held)
        else:
            answer.reply(value)

    def _dropped(self, hold: Hold, tab: tuple[str, str, str]) -> None:
        """A poll's connection closed before its answer (PollHandler.on_connection_close)."""
        hold.cancel()
        task = asyncio.ensure_future(self._drop_tab(tab, hold))
        self.dropped.add(task)
        task.add_done_callback(self.dropped.discard)

    async def _drop_tab(self, tab: tuple[str, str, str], hold: Hold) -> None:
        try:
            await self.presence.tab_dropped(*tab, hold)
        except StoreUnavailable:
            pass  # the tab's presence key then expires after the full timeout

    def date(self) -> bytes:
        text = http_date()
        cached = self._date
        if cached[0] is not text:
            cached = self._date = (text, text.encode())
        return cached[1]

    def json_answer(self, body: bytes, extra: bytes) -> bytes:
        """The whole 200 answer of JSON `body`; the same bytes for the same body object
        within a second (the polls a wake-up answers with one answer)."""
        date = self.date()
        last = self._last
        if last[0] is body and last[1] is date and not extra:
            return last[2]
        data = b"".join(
            (_HEAD_JSON, date, _AFTER_DATE_JSON, b"%d\r\n" % len(body), extra, b"\r\n", body)
        )
        if not extra:
            self._last = (body, date, data)
        return data


class _Answer:
    """The answer to one hot request, written once."""

    __slots__ = ("hot", "conn", "request", "callback", "extra", "start")

    def __init__(
        self,
        hot: HotPaths,
        conn: Connection,
        request: Request,
        callback: str | None,
        extra: bytes,
        start: float,
    ) -> None:
        self.hot = hot
        self.conn = conn
        self.request = request
        self.callback = callback
        self.extra = extra
        self.start = start

    def held(self, future: asyncio.Future) -> None:
        """The Hold's future is done: its answer (nothing when the poll was cancelled)."""
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self.failed(exc, self.hot.poll_class)
            return
        self.reply(future.result())

    def reply(self, value: object) -> None:
        hot = self.hot
        body = encode_answer(value)
        if self.callback is None:
            data = hot.json_answer(body, self.extra)
        else:
            body = jsonp(self.callback, body)
            data = b"".join(
                (
                    _HEAD_JSONP,
                    hot.date(),
                    _AFTER_DATE_JSONP,
                    b"%d\r\n" % len(body),
                    self.extra,
                    b"\r\n",
                    body,
                )
            )
        self.conn.send(data)
        hot.presence.stats.requests += 1
        if hot.log_all and hot.log_function is not None:
            request = self.request
            uri = request.url.decode("latin-1")
            logged = _LoggedRequest(request.method, uri, self.remote_ip(), self.start)
            hot.log_function(_Logged(logged, 200))

    def remote_ip(self) -> str:
        context = self.conn.context
        proxied = [(n, v) for n, v in self.request.headers if n.lower() in _PROXY]
        if not proxied or not self.conn.server.xheaders:
            return context.remote_ip
        headers = httputil.HTTPHeaders()
        for name, value in proxied:
            headers.add(name.decode("latin-1"), value.decode("latin-1").strip(" \t"))
        context._apply_xheaders(headers)
        ip = context.remote_ip
        context._unapply_xheaders()
        return ip

    def failed(self, exc: BaseException, handler_class: type) -> None:
        """The domain raised `exc`: the Tornado handler answers and logs it, as on the
        Tornado engine (send_error and log_exception)."""
        conn = self.conn
        if conn.closed:
            conn.done()
            return
        request = self.request
        headers = httputil.HTTPHeaders()
        for name, value in request.headers:
            headers.add(name.decode("latin-1"), value.decode("latin-1").strip(" \t"))
        start_line = httputil.RequestStartLine(
            request.method, request.url.decode("latin-1"), request.version
        )
        context = conn.context
        if conn.server.xheaders:
            context._apply_xheaders(headers)
        try:
            http_request = httputil.HTTPServerRequest(
                connection=conn, server_connection=conn, start_line=start_line, headers=headers
            )
            http_request.body = b""
            handler = handler_class(self.hot.app, http_request, **self.hot.kwargs)
            handler.callback = self.callback
            handler._transforms = []
            handler.path_args = []
            try:
                raise exc
            except BaseException as raised:
                handler._handle_request_exception(raised)
        finally:
            context._unapply_xheaders()


def _query(query: bytes) -> dict[str, str] | None:
    """The last value of each query parameter as Tornado reads it (parse_qs_bytes, then
    UTF-8), or None when a value is not UTF-8 or the query has too many fields (Tornado
    answers those itself)."""
    if not query:
        return {}
    if query.isascii() and b"%" not in query and b"+" not in query:  # (the usual query)
        if query.count(b"&") >= _MAX_FIELDS:
            return None
        plain: dict[str, str] = {}
        for field in query.decode().split("&"):
            if field:
                key, _, text = field.partition("=")
                plain[key] = text
        return plain
    parts = query.split(b"&")
    if len(parts) > _MAX_FIELDS:
        return None
    found: dict[str, str] = {}
    for part in parts:
        if not part:
            continue
        name, _, value = part.partition(b"=")
        if b"%" in part or b"+" in part or not part.isascii():
            key = urllib.parse.unquote_plus(name.decode("latin-1"), encoding="latin-1")
            raw = urllib.parse.unquote_plus(value.decode("latin-1"), encoding="latin-1")
            try:
                found[key] = raw.encode("latin-1").decode("utf-8")
            except UnicodeDecodeError:
                if key in ("user", "conn", "cursor", "callback", "token"):
                    return None
        else:
            found[name.decode()] = value.decode()
    return found
