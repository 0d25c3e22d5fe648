"""The node's own HTTP/1.1 server (`presence serve --http-engine own`, the default).

One `Connection` (an asyncio Protocol, parsing with httptools) per client connection, no
IOStream, no coroutine per connection or per request. Each complete request is either
served by a hot path (presence.web.hot: GET polls and heartbeats, answered from pre-encoded
bytes) or handed to the Tornado Application as Tornado's own HTTP server would hand it: the
connection implements Tornado's `HTTPConnection` (write_headers, write, finish), so every
handler, error answer, static file and access-log line is the Application's, unchanged.

The network limits are the same as on the Tornado engine (presence.web.limits, the same
answers): 414 and 431 for a request line or header block over its limit, 413 for a body
over it (decided from Content-Length before the body is read, or from a chunk's declared
size before the chunk is read), then a lingering close; 400 in JSON for a request that
cannot be parsed; the header timeout (also the longest a kept-alive connection idles) and
the body timeout close the connection without an answer; connections over the cap are
answered 503 and closed, and accepting pauses when descriptors run out (limits.Acceptor).

Requests on one connection are answered in order: requests pipelined behind one being
answered wait, parsed (reading pauses once PIPELINE of them wait).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import httptools
import tornado.web
from tornado import httputil
from tornado.httpserver import _HTTPRequestContext
from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError
from tornado.log import app_log, gen_log
from tornado.netutil import bind_sockets

from presence.web.base import callback_of
from presence.web.lean import LeanDelegate, lean_target
from presence.web.limits import (
    LINGER,
    MALFORMED,
    TOO_MANY_CONNECTIONS,
    Acceptor,
    Limits,
    _throttled,
    answer_before_close,
    refusal,
)

log = logging.getLogger("presence.web")

_PROXY_HEADERS = ("X-Forwarded-For", "X-Real-Ip", "X-Scheme", "X-Forwarded-Proto")
PIPELINE = 16  # parsed requests waiting behind the one answered before reading pauses


class Context(_HTTPRequestContext):
    """Tornado's per-connection request context (remote_ip, protocol, xheaders), built
    from an address instead of an IOStream."""

    def __init__(self, address: Any, family: socket.AddressFamily) -> None:
        self.address = address
        self.address_family = family
        inet = family in (socket.AF_INET, socket.AF_INET6) and address is not None
        self.remote_ip = address[0] if inet else "0.0.0.0"
        self.protocol = "http"
        self._orig_remote_ip = self.remote_ip
        self._orig_protocol = self.protocol
        self.trusted_downstream: set[str] = set()

    def _apply_xheaders(self, headers: httputil.HTTPHeaders) -> None:
        if any(name in headers for name in _PROXY_HEADERS):  # (else nothing would change)
            super()._apply_xheaders(headers)


class Request:
    """One parsed request: its start line's parts, raw headers, body, and the
    connection-level facts Tornado derives from them."""

    __slots__ = ("method", "url", "version", "headers", "body", "chunked", "length")

    def __init__(self) -> None:
        self.method = ""
        self.url = b""
        self.version = "HTTP/1.1"
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.chunked = False
        self.length: int | None = None  # the declared Content-Length

    def header(self, name: bytes) -> bytes | None:
        """The last value of header `name` (lowercase), or None."""
        found = None
        for key, value in self.headers:
            if key.lower() == name:
                found = value
        return found


class ChunkScan:
    """Reads the declared sizes of a chunked body from its raw bytes, so that a chunk that
    takes the body past the limit is refused before it is read (as Tornado does). httptools
    decodes the body itself; this only adds the sizes up. It stops at the last chunk or at
    anything it does not understand (the parser then answers 400)."""

    __slots__ = ("state", "size", "skip", "total", "done")

    def __init__(self) -> None:
        self.state = 0  # 0: size digits, 1: rest of the size line, 2: data (skip), 3: done
        self.size = 0
        self.skip = 0
        self.total = 0
        self.done = False

    def feed(self, data: bytes) -> int:
        """Scan `data`; the declared total so far."""
        i, n = 0, len(data)
        while i < n and not self.done:
            if self.state == 2:
                step = min(self.skip, n - i)
                self.skip -= step
                i += step
                if not self.skip:
                    self.state = 0
                continue
            c = data[i]
            i += 1
            if self.state == 0:
                digit = _HEX.get(c)
                if digit is not None and self.size < 1 << 60:
                    self.size = self.size * 16 + digit
                    continue
                if c in b"\r\n;\t ":
                    self.state = 1
                else:
                    self.done = True
                    break
            if self.state == 1 and c == 0x0A:
                if self.size == 0:
                    self.done = True  # the last chunk (trailers follow)
                    break
                self.total += self.size
                self.skip = self.size + 2  # the data and its CRLF
                self.size = 0
                self.state = 2
        return self.total


_HEX = {ord(c): int(c, 16) for c in "0123456789abcdefABCDEF"}


class _Stop(Exception):
    """Raised from a parser callback to stop parsing (the connection is being refused)."""


# What a request waiting in a connection's pipeline can be besides a Request: an answer
# after which the connection closes (a refusal over a limit, or a malformed request).
_Final = tuple  # (answer bytes, linger: bool)


class Connection(asyncio.Protocol, httputil.HTTPConnection):
    """One client connection: httptools parses, complete requests are answered in order.

    It is also the Tornado `HTTPConnection` of the request it answers (write_headers,
    write, finish, set_close_callback), when that request goes to the Application.
    """

    def __init__(self, server: HTTPEngine, address: Any, family: socket.AddressFamily) -> None:
        self.server = server
        self.limits = server.limits
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.context = Context(address, family)
        self.closed = False
        self.lost = server.loop.create_future()
        self.pipeline: deque[Request | _Final] = deque()
        self.active: Request | None = None  # the request being answered
        self.refusing = False  # a final answer is queued or written: parse no more
        # parsing state of the request being read
        self.reading: Request | None = None
        self.in_head = False
        self.head_size = 0
        self.head_raw = 0
        self.body_size = 0
        self.scan: ChunkScan | None = None
        self.scan_pending = False  # the scan begins in the segment being fed
        self.completed_in_segment = 0
        self.tail = b""  # the last bytes of the previous segment (for the scan's start)
        # timeouts: one loop timer, re-armed lazily to `deadline`
        self.deadline: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        # the answer under way
        self.keep_alive = True
        self.close_callback: Callable[[], None] | None = None
        self.chunking = False
        self.remaining: int | None = None
        self.paused_writing = False
        self.drained: list[asyncio.Future] = []
        self.good_host: bytes | None = None  # the last Host header found valid (hot.py)
        self.parsing = False  # inside parser.feed_data

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.closed:  # (closed by close_all_connections before it was made)
            transport.close()
            return
        self.wait_for(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.parser = None  # type: ignore[assignment]  # (it holds our callbacks: a cycle)
        if hasattr(self.transport, "_read_ready_cb"):
            # asyncio's own selector transport keeps a bound method of itself (a cycle per
            # connection, left for the cyclic collector: see presence.runtime); uvloop's
            # transports have none. It is never called once the connection is lost.
            self.transport._read_ready_cb = None  # type: ignore[union-attr]
        self.server._connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        callback, self.close_callback = self.close_callback, None
        if callback is not None:
            try:
                callback()
            except Exception:
                app_log.exception("Exception in callback %r", callback)
        for waiter in self.drained:
            if not waiter.done():
                waiter.set_result(None)
        self.drained = []
        self.pipeline.clear()
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        waiters, self.drained = self.drained, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.refusing or self.parser is None:
            return  # (a refused connection's input is read and dropped until it closes)
        if self.in_head:
            self.head_raw += len(data)
        self.completed_in_segment = 0
        tail, self.tail = self.tail, data[-3:]
        self.parsing = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.keep_alive = False  # served as a plain request; nothing more is read
            self.refusing = True
        except httptools.HttpParserCallbackError:
            if not self.refusing:
                raise
        except httptools.HttpParserError as exc:
            if not self.refusing:
                gen_log.info("Malformed HTTP message from %s: %s", self.context, exc)
                self.parsing = False
                self.final(MALFORMED, linger=True)
        finally:
            self.parsing = False
        if self.refusing:
            return
        if self.in_head and self.head_raw > self.limits.max_header_size + 65536:
            self.oversized()  # (one header line that never ends: httptools buffers it)
            return
        scan = self.scan
        if scan is not None:
            if self.scan_pending:
                self.scan_pending = False
                segment = tail + data
                end = segment.find(b"\r\n\r\n")
                if end < 0 or self.completed_in_segment:
                    self.scan = None  # (cannot tell where the body begins: sums bodies only)
                    return
                total = scan.feed(segment[end + 4 :])
            else:
                total = scan.feed(data)
            if scan.done:
                self.scan = None
            if total > self.limits.max_body_size and self.reading is not None:
                self.refuse_body()

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        self.reading = Request()
        self.in_head = True
        self.head_size = 0
        self.head_raw = 0
        self.body_size = 0

    def on_url(self, url: bytes) -> None:
        request = self.reading
        assert request is not None
        request.url += url
        self.head_size += len(url)
        if self.head_size > self.limits.max_header_size:
            self.oversized()

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self.reading
        assert request is not None
        request.headers.append((name, value))
        self.head_size += len(name) + len(value) + 4
        if self.head_size > self.limits.max_header_size:
            self.oversized()

    def on_headers_complete(self) -> None:
        request = self.reading
        assert request is not None
        parser = self.parser
        request.method = parser.get_method().decode("latin-1")
        version = parser.get_http_version()
        self.in_head = False
        if version not in ("1.0", "1.1"):  # (Tornado's HTTP/1.x only: no HTTP/0.9 line)
            gen_log.info("Malformed HTTP message from %s: HTTP/%s", self.context, version)
            return self.final(MALFORMED, linger=True)
        request.version = "HTTP/" + version
        limits = self.limits
        if len(request.url) > limits.max_url_length:
            return self.refuse(414, "URI Too Long", "the URL is too long", "url")
        body_expected = False
        for name, value in request.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                request.length = int(value)  # (httptools checked it: digits only)
                body_expected = request.length > 0
            elif lowered == b"transfer-encoding":
                request.chunked = True
                body_expected = True
        if request.length is not None and request.length > limits.max_body_size:
            return self.refuse_body()
        if request.chunked:
            self.scan = ChunkScan()
            self.scan_pending = True
        if body_expected:
            if self.active is None and not self.pipeline:
                self.wait_for(limits.body_timeout)
                expect = request.header(b"expect")
                if expect == b"100-continue" and request.version == "HTTP/1.1":
                    self.write(b"HTTP/1.1 100 (Continue)\r\n\r\n")
        elif self.active is None and not self.pipeline:
            self.deadline = None

    def on_body(self, body: bytes) -> None:
        request = self.reading
        if request is None:
            return
        self.body_size += len(body)
        if self.body_size > self.limits.max_body_size:
            self.refuse_body()
            return
        request.body.append(body)

    def on_message_complete(self) -> None:
        request, self.reading = self.reading, None
        if request is None or self.refusing:
            return
        self.completed_in_segment += 1
        self.scan = None
        if self.active is None and not self.pipeline:
            self.deadline = None
            self.dispatch(request)
        else:
            self.pipeline.append(request)
            if len(self.pipeline) >= PIPELINE and self.transport is not None:
                # Enough waiting: read no more until they are answered. (Until then the
                # connection is still read, so a client that closes it is noticed and its
                # held poll released, as Tornado notices it.)
                self.transport.pause_reading()

    # -- limits ------------------------------------------------------------------------

    def oversized(self) -> None:
        """The request line and headers passed max_header_size: 414 when the line had
        not ended within the URL limit, else 431 (see limits.LimitedIOStream)."""
        request = self.reading
        assert request is not None
        line_limit = self.limits.max_url_length + len(b"OPTIONS  HTTP/1.1\r")
        line = len(request.url) + 16
        if not request.headers or line > line_limit:
            answer = refusal(414, "URI Too Long", "the URL is too long", "url")
        else:
            answer = refusal(
                431,
                "Request Header Fields Too Large",
                "the headers are too large",
                "headers",
                callback_of(request.url),
            )
        self.final(answer, linger=True)

    def refuse_body(self) -> None:
        message = f"the body must be at most {self.limits.max_body_size} bytes"
        self.refuse(413, "Content Too Large", message, "body")

    def refuse(self, status: int, reason: str, message: str, param: str) -> None:
        request = self.reading
        target = request.url if request is not None else b""
        self.final(refusal(status, reason, message, param, callback_of(target)), linger=True)
        _throttled.warning("refused a request: %d %s", status, message)

    def final(self, answer: bytes, linger: bool) -> None:
        """Answer `answer` after the requests before it, then close (lingering: reading
        and dropping the peer's input for a while, so the answer is not lost to a reset).
        Nothing more is parsed."""
        if self.refusing:
            return
        self.refusing = True
        self.reading = None
        self.scan = None
        if self.active is None and not self.pipeline:
            self.write_final((answer, linger))
        else:
            self.pipeline.append((answer, linger))
        if self.parsing:
            raise _Stop  # (out of httptools: nothing more of this input is parsed)

    def write_final(self, final: _Final) -> None:
        answer, linger = final
        transport = self.transport
        self.deadline = None
        if transport is None or self.closed:
            return
        transport.write(answer)
        if not linger or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        transport.resume_reading()
        self.server.loop.call_later(LINGER, transport.close)

    # -- timeouts ----------------------------------------------------------------------

    def wait_for(self, seconds: float) -> None:
        """Close the connection unless the current phase (headers, body) ends within
        `seconds`."""
        loop = self.server.loop
        deadline = self.deadline = loop.time() + seconds
        timer = self.timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self.timer = loop.call_at(deadline, self._timed_out)

    def _timed_out(self) -> None:
        self.timer = None
        deadline = self.deadline
        if deadline is None or self.closed:
            return
        loop = self.server.loop
        if loop.time() < deadline:
            self.timer = loop.call_at(deadline, self._timed_out)
            return
        if not self.in_head and self.reading is not None:
            gen_log.info("Timeout reading body from %s", self.context)
        self.close()

    # -- answering ---------------------------------------------------------------------

    def dispatch(self, request: Request) -> None:
        """Answer `request` (it is the connection's turn): a hot path, or the Application."""
        self.active = request
        self.keep_alive = _can_keep_alive(request)
        self.chunking = False
        self.remaining = None
        hot = self.server.hot
        if hot is not None and hot(self, request):
            return
        self.to_application(request)

    def to_application(self, request: Request) -> None:
        """Hand `request` to the Tornado Application (GET polls and heartbeats straight to
        their handler, as presence.web.app.HTTPServer does)."""
        context = self.context
        try:
            headers = httputil.HTTPHeaders()
            for name, value in request.headers:
                headers.add(name.decode("latin-1"), value.decode("latin-1").strip(" \t"))
            start_line = httputil.RequestStartLine(
                request.method, request.url.decode("latin-1"), request.version
            )
            if self.server.xheaders:
                context._apply_xheaders(headers)
            app = self.server.app
            target = lean_target(app, start_line, headers)
            delegate: httputil.HTTPMessageDelegate
            if target is None:
                delegate = app.start_request(self, self)
                delegate.headers_received(start_line, headers)
            else:
                http_request = httputil.HTTPServerRequest(
                    connection=self, server_connection=self, start_line=start_line, headers=headers
                )
                delegate = LeanDelegate(app, http_request, target, None)
        except httputil.HTTPInputError as exc:
            gen_log.info("Malformed HTTP message from %s: %s", context, exc)
            context._unapply_xheaders()
            self.active = None
            self.refusing = True
            self.write_final((MALFORMED, True))
            return
        if request.body:
            delegate.data_received(b"".join(request.body))
        delegate.finish()
        context._unapply_xheaders()

    # Tornado's HTTPConnection, for the request the Application answers

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        self.close_callback = callback

    def write_headers(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
        chunk: bytes | None = None,
    ) -> asyncio.Future:
        """As tornado.http1connection.HTTP1Connection.write_headers, server side."""
        assert isinstance(start_line, httputil.ResponseStartLine)
        request = self.active
        assert request is not None
        code = start_line.code
        self.chunking = (
            request.version == "HTTP/1.1"
            and request.method != "HEAD"
            and code not in (204, 304)
            and (code < 100 or code >= 200)
            and "Content-Length" not in headers
        )
        if request.version == "HTTP/1.1" and not self.keep_alive:
            headers["Connection"] = "close"
        if request.version == "HTTP/1.0":
            connection = request.header(b"connection")
            if connection is not None and connection.lower() == b"keep-alive":
                headers["Connection"] = "Keep-Alive"
        if self.chunking:
            headers["Transfer-Encoding"] = "chunked"
        if request.method == "HEAD" or code == 304:
            self.remaining = 0
        elif "Content-Length" in headers:
            self.remaining = int(headers["Content-Length"])
        else:
            self.remaining = None
        lines = [b"HTTP/1.1 %d %s" % (code, start_line.reason.encode("latin-1"))]
        lines.extend(f"{n}: {v}".encode("latin-1") for n, v in headers.get_all())
        for line in lines:
            if b"\r" in line or b"\n" in line:
                raise ValueError("Illegal characters (CR or LF) in header: %r" % line)
        data = b"\r\n".join(lines) + b"\r\n\r\n"
        if chunk:
            data += self._format_chunk(chunk)
        return self._written(data)

    def write(self, chunk: bytes) -> asyncio.Future:
        """HTTPConnection.write (and the raw write of the hot paths' answers)."""
        return self._written(self._format_chunk(chunk))

    def _format_chunk(self, chunk: bytes) -> bytes:
        if self.remaining is not None:
            self.remaining -= len(chunk)
            if self.remaining < 0:
                self.close()
                raise httputil.HTTPOutputError("Tried to write more data than Content-Length")
        if self.chunking and chunk:
            return b"%x\r\n%s\r\n" % (len(chunk), chunk)
        return chunk

    def _written(self, data: bytes) -> asyncio.Future:
        future = self.server.loop.create_future()
        if self.closed or self.transport is None:
            future.set_exception(StreamClosedError())
            future.exception()
            return future
        self.transport.write(data)
        if self.paused_writing:
            self.drained.append(future)
        else:
            future.set_result(None)
        return future

    def finish(self) -> None:
        """HTTPConnection.finish: the answer is complete; on to the next request."""
        if self.remaining and not self.closed:
            self.close()
            raise httputil.HTTPOutputError(
                "Tried to write %d bytes less than Content-Length" % self.remaining
            )
        if self.chunking and not self.closed and self.transport is not None:
            self.transport.write(b"0\r\n\r\n")
        self.done()

    def send(self, data: bytes) -> None:
        """Write a whole answer (head and body) of the active request and finish it."""
        if not self.closed:
            self.transport.write(data)  # type: ignore[union-attr]
        self.done()

    def done(self) -> None:
        """The active request is answered: close, or serve the next one."""
        self.close_callback = None
        self.active = None
        if self.closed:
            return
        if not self.keep_alive:
            self.close()
            return
        pipeline = self.pipeline
        while pipeline and self.active is None and not self.closed:
            item = pipeline.popleft()
            if isinstance(item, Request):
                self.dispatch(item)
            else:
                self.write_final(item)
                return
        if self.active is None and not self.closed:
            transport = self.transport
            if transport is not None:
                transport.resume_reading()
            if self.reading is not None and not self.in_head:
                self.wait_for(self.limits.body_timeout)
            else:
                self.wait_for(self.limits.header_timeout)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.closed = True
        self.server._connections.discard(self)


def _can_keep_alive(request: Request) -> bool:
    """tornado.http1connection.HTTP1Connection._can_keep_alive, server side."""
    connection = request.header(b"connection")
    header = connection.lower() if connection is not None else None
    if request.version == "HTTP/1.1":
        return header != b"close"
    if request.length is not None or request.chunked or request.method in ("HEAD", "GET"):
        return header == b"keep-alive"
    return False


HotPath = Callable[[Connection, Request], bool]


class HTTPEngine:
    """The own engine's server: the same interface as presence.web.app.HTTPServer where
    the node and its tests use it (add_sockets, listen, stop, close_all_connections,
    request_callback, refused_connections, _connections)."""

    def __init__(
        self,
        app: tornado.web.Application,
        limits: Limits | None = None,
        xheaders: bool = True,
        hot: HotPath | None = None,
    ) -> None:
        self.app = self.request_callback = app
        self.limits = limits or Limits()
        self.xheaders = xheaders
        self.hot = hot
        self.loop = IOLoop.current().asyncio_loop  # type: ignore[attr-defined]
        self._connections: set[Connection] = set()
        self._sockets: dict[int, socket.socket] = {}
        self._acceptors: dict[int, Acceptor] = {}
        self.refused_connections = 0

    def listen(self, port: int, address: str | None = None) -> None:
        self.add_sockets(bind_sockets(port, address))

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._acceptors[sock.fileno()] = Acceptor(sock, self._accepted)

    def _accepted(self, sock: socket.socket, address: Any) -> None:
        if len(self._connections) >= self.limits.max_connections:
            self.refused_connections += 1
            answer_before_close(sock, TOO_MANY_CONNECTIONS)
            sock.close()
            return
        connection = Connection(self, address, sock.family)
        self._connections.add(connection)
        task = self.loop.create_task(self.loop.connect_accepted_socket(lambda: connection, sock))
        task.add_done_callback(lambda t: self._made(t, connection, sock))

    def _made(self, task: asyncio.Task, connection: Connection, sock: socket.socket) -> None:
        if task.cancelled() or task.exception() is not None:
            self._connections.discard(connection)
            sock.close()

    def stop(self) -> None:
        """Stop accepting (the listening sockets are closed)."""
        for fd, sock in list(self._sockets.items()):
            self._acceptors.pop(fd)()
            sock.close()
        self._sockets.clear()

    async def close_all_connections(self) -> None:
        """Close every connection, and wait until each is closed."""
        while self._connections:
            connection = next(iter(self._connections))
            connection.close()
            if connection.transport is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(connection.lost), 5)
                except TimeoutError:
                    pass
