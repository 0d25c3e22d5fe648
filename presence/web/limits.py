"""What one node accepts from the network, and the clear answer when a request passes it.

Tornado enforces some limits by closing the connection without a word (a header block
over `max_header_size`) or with a bare 400 (a Content-Length over `max_body_size`), and its
accept loop spins when the process runs out of file descriptors. Here every limit gets
an HTTP answer in JSON (JSONP when the request line arrived whole and carries a valid
`callback`, as every other error of the service), decided as early as possible:

- the request line and headers: 414 (URL too long) or 431 (headers too large), answered
  by `LimitedIOStream` when the header block passes the limit while it is being read;
- the body: 413, decided from Content-Length by `RequestLimits` before the body is read,
  or for a chunked body as soon as a chunk's size takes it past the limit (before that
  chunk is read), then a lingering close;
- a request Tornado cannot parse: 400 in JSON (`LimitedIOStream.write`), not a bare 400;
- connections: `Acceptor` accepts without spinning when descriptors run out, and the
  server (presence.web.app.HTTPServer) answers 503 and closes a connection over the cap.

These are the Tornado engine's mechanisms; the own engine (presence.web.engine) enforces
the same limits with the same answers (`refusal`, `Acceptor`, `answer_before_close`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tornado import httputil
from tornado.http1connection import HTTP1Connection, _QuietException
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError, UnsatisfiableReadError
from tornado.netutil import bind_sockets

from presence.web import strict_json
from presence.web.base import callback_of, encode_json, jsonp

DEFAULT_LISTEN_BACKLOG = 4096  # --listen-backlog (Tornado's default is 128)


def listen_sockets(
    port: int, host: str | None, backlog: int = DEFAULT_LISTEN_BACKLOG
) -> list[socket.socket]:
    """The node's listening sockets (every address of `host`), with a listen backlog of
    `backlog` connections (the kernel caps it at net.core.somaxconn): the tabs of a node
    that died reconnect to the others at once, and a connection that finds the queue
    full is dropped and retried a second later."""
    return bind_sockets(port, host, backlog=backlog)


log = logging.getLogger("presence.web")


@dataclass(frozen=True)
class Limits:
    """The network limits of one node (each a `presence serve` flag, see README)."""

    max_body_size: int = 64 * 1024  # bytes of a request body (413)
    max_header_size: int = 32 * 1024  # bytes of the request line and headers (431)
    max_url_length: int = 16 * 1024  # bytes of the request line's target (414)
    header_timeout: float = 10.0  # seconds to receive a request's headers (or idle between)
    body_timeout: float = 10.0  # seconds to receive a request's body
    max_connections: int = 20_000  # open HTTP connections (more: 503 and closed)
    max_json_depth: int = strict_json.MAX_DEPTH  # nesting of a JSON body or `info` (400)

    def server_options(self) -> dict[str, Any]:
        """The keyword arguments of Tornado's HTTPServer that enforce part of these."""
        return {
            "max_header_size": self.max_header_size,
            "max_body_size": self.max_body_size,
            "idle_connection_timeout": self.header_timeout,  # Tornado's header timeout
            "body_timeout": self.body_timeout,
        }


def refusal(
    status: int,
    reason: str,
    message: str,
    param: str | None = None,
    callback: str | None = None,
) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection (for answers written below
    the application: no handler exists for the request). JSON with CORS, or JSONP when a
    `callback` (already checked by callback_of) is given, as BaseHandler.reply writes."""
    error: dict[str, str] = {"error": message}
    if param is not None:
        error["param"] = param
    body = encode_json(error).encode()
    if callback is not None:
        body = jsonp(callback, body)
        kind = "Content-Type: text/javascript; charset=UTF-8\r\n"
    else:
        kind = "Content-Type: application/json; charset=UTF-8\r\nAccess-Control-Allow-Origin: *\r\n"
    retry = "Retry-After: 1\r\n" if status == 503 else ""
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        f"{kind}"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"{retry}\r\n"
    )
    return head.encode() + body


TOO_MANY_CONNECTIONS = refusal(503, "Service Unavailable", "too many connections")
# What Tornado writes, bare, for a request it cannot parse (a bad request line, header,
# Content-Length or chunk), before it closes the connection; LimitedIOStream answers
# MALFORMED in JSON instead (no JSONP: the request may not even have a parsable URL).
TORNADO_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\n\r\n"
MALFORMED = refusal(400, "Bad Request", "malformed HTTP request", "http")


def answer_before_close(connection: socket.socket, answer: bytes) -> None:
    """Best effort, never blocking: drain what the peer sent, send `answer`, shut down
    the sending side; the caller closes the socket.

    Draining first spares the answer: closing a socket with unread input resets the
    connection, and a peer that gets the reset may drop the answer it had not read yet.
    """
    try:
        connection.setblocking(False)
        for _ in range(16):
            if not connection.recv(65536):
                break
    except OSError:
        pass  # nothing more to read now (BlockingIOError), or the peer is gone
    try:
        connection.send(answer)
        connection.shutdown(socket.SHUT_WR)
    except OSError:
        pass


class LimitedIOStream(IOStream):
    """An IOStream that answers a header block over the limit instead of closing silently.

    Tornado reads a request's line and headers with read_until_regex(max_bytes=...), and
    only them; when they pass max_bytes the stream closes itself with an
    UnsatisfiableReadError. Before that close, this one answers 414 when the request
    line alone passes `max_url_length` (or has not ended yet), else 431.
    """

    max_url_length = Limits.max_url_length
    reading_headers = False

    def read_until_regex(self, regex: bytes, max_bytes: int | None = None) -> Any:
        self.reading_headers = True
        return super().read_until_regex(regex, max_bytes)

    def read_until(self, delimiter: bytes, max_bytes: int | None = None) -> Any:
        self.reading_headers = False
        return super().read_until(delimiter, max_bytes)

    def read_bytes(self, num_bytes: int, partial: bool = False) -> Any:
        self.reading_headers = False
        return super().read_bytes(num_bytes, partial)

    def write(self, data: bytes | memoryview) -> Any:
        if data == TORNADO_BAD_REQUEST:  # (Tornado's answer to a malformed request)
            data = MALFORMED
        return super().write(data)

    def close(self, exc_info: Any = False) -> None:
        if self.reading_headers and isinstance(exc_info, UnsatisfiableReadError):
            self.reading_headers = False
            if not self.closed():
                answer_before_close(self.socket, self._oversized_answer())
        super().close(exc_info)

    def _oversized_answer(self) -> bytes:
        """414 when the request line has not ended within the URL limit, else 431 (JSONP
        when the request line, read whole, asks for it)."""
        line_limit = self.max_url_length + len(b"OPTIONS  HTTP/1.1\r")
        end = self._read_buffer.find(b"\n", 0, line_limit + 1)
        if end < 0:
            return refusal(414, "URI Too Long", "the URL is too long", "url")
        words = bytes(self._read_buffer[:end]).split(b" ")
        callback = callback_of(words[1]) if len(words) == 3 else None
        return refusal(
            431,
            "Request Header Fields Too Large",
            "the headers are too large",
            "headers",
            callback,
        )


class RequestLimits(httputil.HTTPMessageDelegate):
    """Passes a request on to `delegate`, unless its headers already say it is too large:
    then answers 414 (URL) or 413 (declared body), reads no body, and closes. A chunked
    body is answered 413 as soon as a chunk's size takes it past the limit (before that
    chunk is read): Tornado would answer a bare 400."""

    __slots__ = ("delegate", "connection", "limits", "target")

    def __init__(
        self, delegate: httputil.HTTPMessageDelegate, connection: Any, limits: Limits
    ) -> None:
        self.delegate = delegate
        self.connection = connection
        self.limits = limits
        self.target = ""

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Any:
        self.target = target = getattr(start_line, "path", "")
        if len(target) > self.limits.max_url_length:
            return self._refuse(414, "URI Too Long", "the URL is too long", "url")
        length = headers.get("Content-Length")
        if length is not None and _declared_length(length) > self.limits.max_body_size:
            return self._refuse_body()
        if "Transfer-Encoding" in headers and isinstance(self.connection, HTTP1Connection):
            self._limit_chunked_body(self.connection)
        return self.accepted(start_line, headers)

    def accepted(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Any:
        """The request is within the limits: on to the delegate."""
        return self.delegate.headers_received(start_line, headers)

    def _limit_chunked_body(self, connection: HTTP1Connection) -> None:
        """Make this request's connection answer 413 instead of Tornado's bare 400 when
        its chunked body passes the limit (Tornado checks each chunk's declared size
        against max_body_size before reading the chunk)."""
        read_chunked_body = connection._read_chunked_body

        async def limited(delegate: httputil.HTTPMessageDelegate) -> None:
            try:
                await read_chunked_body(delegate)
            except httputil.HTTPInputError as exc:
                if str(exc) != "chunked body too large" or connection.stream is None:
                    raise
                self._refuse_body()  # (detaches the stream: Tornado reads no more of it)
                # Out of Tornado's reading loop without finishing the request: the
                # delegate is told the connection closed, and nothing more is logged.
                raise _QuietException from None

        connection._read_chunked_body = limited  # type: ignore[method-assign]  # (this request only)

    def data_received(self, chunk: bytes) -> Any:
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.delegate.finish()

    def on_connection_close(self) -> None:
        self.delegate.on_connection_close()

    def _refuse_body(self) -> None:
        message = f"the body must be at most {self.limits.max_body_size} bytes"
        self._refuse(413, "Content Too Large", message, "body")

    def _refuse(self, status: int, reason: str, message: str, param: str) -> None:
        # The connection leaves Tornado (which then reads nothing more from it): the answer
        # and a lingering close are all that happens.
        stream = self.connection.detach()
        answer = refusal(status, reason, message, param, callback_of(self.target))
        task = asyncio.ensure_future(answer_and_linger(stream, answer))
        _lingering.add(task)
        task.add_done_callback(_lingering.discard)
        _throttled.warning("refused a request: %d %s", status, message)


LINGER = 2.0  # seconds a refused connection is still read (and dropped) after its answer
_lingering: set[asyncio.Future] = set()


async def answer_and_linger(stream: IOStream, answer: bytes, seconds: float = LINGER) -> None:
    """Write `answer`, then read and drop what the peer still sends for up to `seconds`
    (its body), then close: closing with unread input resets the connection, and a peer
    that gets the reset may lose the answer before reading it (nginx's lingering close)."""
    try:
        await stream.write(answer)
        stream.socket.shutdown(socket.SHUT_WR)
        async with asyncio.timeout(seconds):
            while True:
                await stream.read_bytes(65536, partial=True)
    except (StreamClosedError, OSError, TimeoutError):
        pass
    finally:
        stream.close()


def _declared_length(value: str) -> int:
    """The Content-Length's value (the largest of repeated ones); 0 when it is not a
    number (Tornado answers that 400 itself)."""
    lengths = [part.strip() for part in value.split(",")]
    return max((int(n) for n in lengths if n.isascii() and n.isdigit()), default=0)


class Acceptor:
    """Accepts connections on a listening socket like tornado.netutil.add_accept_handler,
    except that running out of file descriptors or memory pauses accepting on it for
    `pause` seconds, with a rate-limited warning, instead of spinning: the listening
    socket stays readable, so retrying at once would fail again at once.

    Calling the acceptor stops it (what TCPServer.stop expects of its handlers).
    """

    BATCH = 128  # connections accepted per readiness event (Tornado's backlog)
    EXHAUSTED = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))

    def __init__(
        self,
        sock: socket.socket,
        on_accept: Callable[[socket.socket, Any], None],
        pause: float = 0.5,
    ) -> None:
        self.sock = sock
        self.on_accept = on_accept
        self.pause = pause
        self.io_loop = IOLoop.current()
        self.stopped = False
        self.paused: object | None = None
        self.io_loop.add_handler(sock, self._accept, IOLoop.READ)

    def __call__(self) -> None:
        self.stopped = True
        if self.paused is not None:
            self.io_loop.remove_timeout(self.paused)
            self.paused = None
        else:
            self.io_loop.remove_handler(self.sock)

    def _accept(self, fd: object, events: int) -> None:
        for _ in range(self.BATCH):
            if self.stopped:
                return
            try:
                connection, address = self.sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in self.EXHAUSTED:
                    raise
                _throttled.warning(
                    "cannot accept connections (%s): pausing for %gs", exc.strerror, self.pause
                )
                self.io_loop.remove_handler(self.sock)
                self.paused = self.io_loop.call_later(self.pause, self._resume)
                return
            self.on_accept(connection, address)

    def _resume(self) -> None:
        self.paused = None
        if not self.stopped:
            self.io_loop.add_handler(self.sock, self._accept, IOLoop.READ)


class Throttle(logging.Filter):
    """Lets through at most `burst` records per `period` seconds for each message (its
    format string); the first record let through after some were dropped says how many.
    For log lines an attacker can cause at will (refused connections, malformed requests).
    """

    def __init__(
        self, burst: int = 10, period: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.burst = burst
        self.period = period
        self.clock = clock
        self.windows: dict[object, list] = {}  # message -> [window start, passed, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        key = (record.name, record.msg)
        window = self.windows.get(key)
        if window is None or now - window[0] >= self.period:
            if len(self.windows) > 1000:
                self.windows.clear()
            dropped = window[2] if window is not None else 0
            window = self.windows[key] = [now, 0, 0]
            if dropped:
                record.msg = f"{record.msg} ({dropped} similar lines dropped)"
        if window[1] >= self.burst:
            window[2] += 1
            return False
        window[1] += 1
        return True


THROTTLED_LOGGERS = ("presence.web.limits", "tornado.general", "tornado.application")

_throttled = logging.getLogger("presence.web.limits")


def throttle_logs(burst: int = 10, period: float = 60.0) -> Throttle:
    """Rate-limit the loggers that network input can make talk (THROTTLED_LOGGERS)."""
    throttle = Throttle(burst, period)
    for name in THROTTLED_LOGGERS:
        logging.getLogger(name).addFilter(throttle)
    return throttle
