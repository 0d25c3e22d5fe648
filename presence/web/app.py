"""The Tornado application factory: routes, static pages, settings."""

from __future__ import annotations

import itertools
import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import tornado.httpserver
import tornado.web
from tornado import httputil
from tornado.http1connection import HTTP1ServerConnection
from tornado.httputil import HTTPHeaders
from tornado.iostream import IOStream
from tornado.log import access_log

import presence
from presence.service.model import Presence
from presence.web import api, auth, client
from presence.web.base import (
    NotFoundHandler,
    encode_json,
    log_redacted_exception,
    request_summary,
)
from presence.web.engine import HTTPEngine
from presence.web.hot import HotPaths
from presence.web.lean import LeanDelegate, lean_target
from presence.web.limits import (
    TOO_MANY_CONNECTIONS,
    Acceptor,
    LimitedIOStream,
    Limits,
    RequestLimits,
    answer_before_close,
)


def default_static_dir() -> Path:
    """The repository's static/ folder (editable install), unless PRESENCE_STATIC_DIR says otherwise."""
    override = os.environ.get("PRESENCE_STATIC_DIR")
    return Path(override) if override else Path(presence.__file__).resolve().parents[1] / "static"


ACCESS_LOG_MODES = ("off", "errors", "sample", "all")


@dataclass
class WebSettings:
    """What the handlers need besides the presence domain.

    `admin_token` is the --admin-token text (`TOKEN` or `NAME=TOKEN`, comma-separated);
    ValueError when it is malformed (see auth.parse_admin_tokens).
    """

    admin_token: str | None = None
    node_id: str = field(default_factory=socket.gethostname)
    static_dir: Path = field(default_factory=default_static_dir)
    secret: str | None = None  # when set, client endpoints need a signed `token`
    limits: Limits = field(default_factory=Limits)
    public_api: bool = False  # operator reads open even with admin tokens configured
    access_log: str = "errors"  # one of ACCESS_LOG_MODES
    access_log_sample: int = 100  # "sample" logs one in this many answers below 400
    admin_tokens: dict[str, str] = field(init=False, repr=False)  # token -> name

    def __post_init__(self) -> None:
        if self.access_log not in ACCESS_LOG_MODES:
            raise ValueError(f"access_log must be one of {', '.join(ACCESS_LOG_MODES)}")
        self.admin_tokens = auth.parse_admin_tokens(self.admin_token)


class StaticHandler(tornado.web.StaticFileHandler):
    """Tornado's static files, with error answers in JSON like every other answer of the
    service, a path with a control character (a NUL, which the file system calls would
    refuse with an exception) not found, and log lines that never show a request's tokens."""

    async def get(self, path: str, include_body: bool = True) -> None:
        if not path.isprintable():
            raise tornado.web.HTTPError(404)
        await super().get(path, include_body)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.clear_header("Content-Disposition")
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(encode_json({"error": self._reason}))

    def _request_summary(self) -> str:
        return request_summary(self.request)

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        log_redacted_exception(self, typ, value, tb)


class PageHandler(StaticHandler):
    """Serves one fixed file of static/ (the demo page, the dashboard)."""

    def initialize(self, path: str, page: str) -> None:  # type: ignore[override]
        super().initialize(path)
        self.page = page

    async def get(self, path: str = "", include_body: bool = True) -> None:
        await super().get(self.page, include_body)


class _RequestContext(tornado.httpserver._HTTPRequestContext):
    """Tornado's per-connection context, minus the work of `xheaders` when there are none.

    With xheaders (behind nginx) Tornado validates the client address of every request
    (netutil.is_valid_ip, a getaddrinfo call), even when no proxy header is present and
    the address stays the connection's own. That case is skipped; the rest is Tornado's.
    """

    def _apply_xheaders(self, headers: HTTPHeaders) -> None:
        if any(name in headers for name in _PROXY_HEADERS):
            super()._apply_xheaders(headers)


class FaviconHandler(PageHandler):
    """/favicon.ico, which browsers ask for by themselves: static/favicon.svg."""

    def get_content_type(self) -> str:
        return "image/svg+xml"


_PROXY_HEADERS = ("X-Forwarded-For", "X-Real-Ip", "X-Scheme", "X-Forwarded-Proto")


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log line (tokens redacted), formatted only when the log level
    lets it through."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    if access_log.isEnabledFor(level):
        access_log.log(
            level,
            "%d %s %.2fms",
            status,
            request_summary(handler.request),
            1000.0 * handler.request.request_time(),
        )


def access_logger(mode: str, sample: int = 100) -> Callable[[tornado.web.RequestHandler], None]:
    """The log function of an --access-log mode: "all" logs every answer, "errors" those
    of status 400 and above, "sample" those and one in `sample` of the others, "off" none."""
    if mode == "all":
        return log_request
    if mode == "off":
        return lambda handler: None
    if mode == "errors":

        def log_errors(handler: tornado.web.RequestHandler) -> None:
            if handler.get_status() >= 400:
                log_request(handler)

        return log_errors
    counter = itertools.count()

    def log_sample(handler: tornado.web.RequestHandler) -> None:
        if handler.get_status() >= 400 or next(counter) % sample == 0:
            log_request(handler)

    return log_sample


class HTTPServer(tornado.httpserver.HTTPServer):
    """Tornado's HTTP server, with the node's network limits and minus the reference cycle
    of every reset connection.

    `limits` (presence.web.limits) are enforced with answers: 414/431 for a request line
    or header block over the limit, 413 for a declared body over it (decided before the
    body is read), 503 and closed for a connection over `max_connections`; accepting
    pauses instead of spinning when the process runs out of file descriptors.

    When a peer resets a connection (a closed browser tab), Tornado keeps the error on
    the stream (`stream.error`) with its traceback, whose frames hold the stream: a cycle
    per dropped connection, left for the cyclic garbage collector (see presence.runtime).
    Dropping the traceback once the connection is closed lets reference counting free it.
    Connections get a _RequestContext (cheaper `xheaders`).
    """

    def initialize(
        self, request_callback: Any, *args: Any, limits: Limits | None = None, **kwargs: Any
    ) -> None:
        self.limits = limits or Limits()
        self.refused_connections = 0
        for name, value in self.limits.server_options().items():
            kwargs.setdefault(name, value)
        super().initialize(request_callback, *args, **kwargs)

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = Acceptor(sock, self._accepted)

    def _accepted(self, connection: socket.socket, address: Any) -> None:
        """A new connection: refused (503, closed) over the cap, else served."""
        if self.ssl_options is not None:  # (never set by `presence serve`: TLS ends at a proxy)
            self._handle_connection(connection, address)
            return
        if len(self._connections) >= self.limits.max_connections:
            self.refused_connections += 1
            answer_before_close(connection, TOO_MANY_CONNECTIONS)
            connection.close()
            return
        stream = LimitedIOStream(
            connection, max_buffer_size=self.max_buffer_size, read_chunk_size=self.read_chunk_size
        )
        stream.max_url_length = self.limits.max_url_length
        self.handle_stream(stream, address)

    def handle_stream(self, stream: IOStream, address: tuple) -> None:
        context = _RequestContext(stream, address, self.protocol, self.trusted_downstream)
        conn = HTTP1ServerConnection(stream, self.conn_params, context)
        self._connections.add(conn)
        conn.start_serving(self)

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        return _Dispatch(self, server_conn, request_conn)

    def application_delegate(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        """Tornado's delegate for a request: routed by the Application."""
        return super().start_request(server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        stream = getattr(server_conn, "stream", None)
        error = getattr(stream, "error", None)
        if error is not None:
            error.__traceback__ = None
        super().on_close(server_conn)


class _Dispatch(RequestLimits):
    """One request: refused when over the limits (RequestLimits), else routed at the
    start line: a GET poll or heartbeat straight to its handler (presence.web.lean), any
    other request through the Application."""

    __slots__ = ("server", "server_conn")

    def __init__(
        self, server: HTTPServer, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> None:
        super().__init__(cast(httputil.HTTPMessageDelegate, None), request_conn, server.limits)
        self.server = server
        self.server_conn = server_conn

    def accepted(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Any:
        server = self.server
        app = server.request_callback
        target = None
        if isinstance(start_line, httputil.RequestStartLine):
            target = lean_target(app, start_line, headers)
        if target is None:
            self.delegate = server.application_delegate(self.server_conn, self.connection)
            return self.delegate.headers_received(start_line, headers)
        context = None
        if server.xheaders:  # (what Tornado's _ProxyAdapter does)
            context = self.connection.context
            context._apply_xheaders(headers)
        request = httputil.HTTPServerRequest(
            connection=self.connection,
            server_connection=self.server_conn,
            start_line=cast(httputil.RequestStartLine, start_line),
            headers=headers,
        )
        self.delegate = LeanDelegate(cast(tornado.web.Application, app), request, target, context)
        return None

    # (no delegate when the request was refused over a limit: nothing more to pass on)
    def data_received(self, chunk: bytes) -> Any:
        return None if self.delegate is None else self.delegate.data_received(chunk)

    def finish(self) -> None:
        if self.delegate is not None:
            self.delegate.finish()

    def on_connection_close(self) -> None:
        if self.delegate is not None:
            self.delegate.on_connection_close()


HTTP_ENGINES = ("own", "tornado")


def make_server(
    app: tornado.web.Application,
    engine: str = "own",
    limits: Limits | None = None,
    xheaders: bool = True,
) -> HTTPServer | HTTPEngine:
    """The HTTP server of a node (`--http-engine`): "own" (presence.web.engine, with the
    hot paths of presence.web.hot) or "tornado" (HTTPServer above). Both serve the same
    Application with the same limits and the same answers."""
    if engine == "tornado":
        return HTTPServer(app, xheaders=xheaders, limits=limits)
    if engine != "own":
        raise ValueError(f"engine must be one of {', '.join(HTTP_ENGINES)}")
    hot = HotPaths(app) if app.settings.get("lean_routes") else None
    return HTTPEngine(app, limits, xheaders, hot)


def make_app(
    presence_model: Presence,
    settings: WebSettings | None = None,
    **tornado_settings: Any,
) -> tornado.web.Application:
    """The service's application over one presence model."""
    settings = settings or WebSettings()
    common = {"presence": presence_model, "settings": settings}
    static = str(settings.static_dir)
    channel = r"/channels/([^/]+)"
    routes: list[Any] = [
        (rf"{channel}/join", client.JoinHandler, common),
        (rf"{channel}/poll", client.PollHandler, common),
        (rf"{channel}/heartbeat", client.HeartbeatHandler, common),
        (rf"{channel}/leave", client.LeaveHandler, common),
        (rf"{channel}/send", client.SendHandler, common),
        (r"/api/channels/?", api.ChannelsHandler, common),
        (r"/api/channels/([^/]+)/?", api.ChannelHandler, common),
        (r"/api/channels/([^/]+)/members/([^/]+)/?", api.MemberHandler, common),
        (r"/api/events", api.EventsHandler, common),
        (r"/api/stats", api.StatsHandler, common),
        (r"/api/nodes", api.NodesHandler, common),
        (r"/api/history", api.HistoryHandler, common),
        (r"/healthz", api.HealthHandler, common),
        (r"/readyz", api.ReadyHandler, common),
        (r"/metrics", api.MetricsHandler, common),
        (r"/()", PageHandler, {"path": static, "page": "index.html"}),
        (r"/(dashboard)/?", PageHandler, {"path": static, "page": "dashboard.html"}),
        (r"/(favicon\.ico)", FaviconHandler, {"path": static, "page": "favicon.svg"}),
        (r"/static/(.*)", StaticHandler, {"path": static}),
    ]
    # GET poll and heartbeat requests skip the routing (presence.web.lean): same handlers
    tornado_settings.setdefault(
        "lean_routes",
        {"poll": (client.PollHandler, common), "heartbeat": (client.HeartbeatHandler, common)},
    )
    tornado_settings.setdefault(
        "log_function", access_logger(settings.access_log, settings.access_log_sample)
    )
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args=common,
        **tornado_settings,
    )
