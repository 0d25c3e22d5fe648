"""The Tornado application factory: routes, static pages, settings."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tornado.httpserver
import tornado.web
from tornado.http1connection import HTTP1ServerConnection
from tornado.httputil import HTTPHeaders
from tornado.iostream import IOStream
from tornado.log import access_log

import presence
from presence.service.model import Presence
from presence.web import api, client
from presence.web.base import NotFoundHandler


def default_static_dir() -> Path:
    """The repository's static/ folder (editable install), unless PRESENCE_STATIC_DIR says otherwise."""
    override = os.environ.get("PRESENCE_STATIC_DIR")
    return Path(override) if override else Path(presence.__file__).resolve().parents[1] / "static"


@dataclass
class WebSettings:
    """What the handlers need besides the presence domain."""

    admin_token: str | None = None
    node_id: str = field(default_factory=socket.gethostname)
    static_dir: Path = field(default_factory=default_static_dir)
    secret: str | None = None  # when set, client endpoints need a signed `token`


class PageHandler(tornado.web.StaticFileHandler):
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
    """Tornado's access log line, formatted only when the log level lets it through."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    if access_log.isEnabledFor(level):
        access_log.log(
            level,
            "%d %s %.2fms",
            status,
            handler._request_summary(),
            1000.0 * handler.request.request_time(),
        )


class HTTPServer(tornado.httpserver.HTTPServer):
    """Tornado's HTTP server, minus the reference cycle of every reset connection.

    When a peer resets a connection (a closed browser tab), Tornado keeps the error on
    the stream (`stream.error`) with its traceback, whose frames hold the stream: a cycle
    per dropped connection, left for the cyclic garbage collector (see presence.runtime).
    Dropping the traceback once the connection is closed lets reference counting free it.
    Connections get a _RequestContext (cheaper `xheaders`).
    """

    def handle_stream(self, stream: IOStream, address: tuple) -> None:
        context = _RequestContext(stream, address, self.protocol, self.trusted_downstream)
        conn = HTTP1ServerConnection(stream, self.conn_params, context)
        self._connections.add(conn)
        conn.start_serving(self)

    def on_close(self, server_conn: object) -> None:
        stream = getattr(server_conn, "stream", None)
        error = getattr(stream, "error", None)
        if error is not None:
            error.__traceback__ = None
        super().on_close(server_conn)


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
        (r"/static/(.*)", tornado.web.StaticFileHandler, {"path": static}),
    ]
    tornado_settings.setdefault("log_function", log_request)
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args=common,
        **tornado_settings,
    )
