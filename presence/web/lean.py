"""The lean path of the client's most frequent requests: GET `/channels/<c>/poll` and
`/channels/<c>/heartbeat` without a body.

Such a request skips Tornado's routing (the Application's rule table, its _RoutingDelegate
and _HandlerDelegate): the HTTP server hands it straight to its handler class, which runs
exactly as it does when routed (the same PollHandler or HeartbeatHandler, the same
`_execute`, parameter checks, error answers, access log and close callback). Every other
request, and these with a body or another method, goes through the Application as before.
So there is no second implementation of the endpoints: this is a shortcut to the
handler, taken when the route is known from the start line alone.
"""

from __future__ import annotations

import re
from typing import Any

import tornado.web
from tornado import gen, httputil
from tornado.escape import url_unescape

# The routes of presence.web.app.make_app that may take the shortcut (the same patterns)
LEAN_ROUTE = re.compile(r"/channels/([^/]+)/(poll|heartbeat)")


def lean_target(
    application: object, start_line: httputil.RequestStartLine, headers: httputil.HTTPHeaders
) -> tuple[type[tornado.web.RequestHandler], dict, bytes] | None:
    """(handler class, its kwargs, the channel path part unquoted) when this request may
    take the lean path, else None."""
    if start_line.method != "GET" or "Content-Length" in headers:
        return None
    if "Transfer-Encoding" in headers:
        return None
    settings = getattr(application, "settings", None)
    routes = settings.get("lean_routes") if settings else None
    if not routes:
        return None
    match = LEAN_ROUTE.fullmatch(start_line.path.partition("?")[0])
    if match is None:
        return None
    handler_class, kwargs = routes[match.group(2)]
    return handler_class, kwargs, url_unescape(match.group(1), encoding=None, plus=False)


class LeanDelegate(httputil.HTTPMessageDelegate):
    """Runs one request's handler as Tornado's _HandlerDelegate would, without routing."""

    __slots__ = ("application", "request", "target", "context")

    def __init__(
        self,
        application: tornado.web.Application,
        request: httputil.HTTPServerRequest,
        target: tuple[type[tornado.web.RequestHandler], dict, bytes],
        context: Any,
    ) -> None:
        self.application = application
        self.request = request
        self.target = target
        self.context = context  # the connection's context when xheaders were applied

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        return None

    def data_received(self, chunk: bytes) -> None:
        return None  # (never called: no body)

    def finish(self) -> None:
        handler_class, kwargs, channel = self.target
        request = self.request
        request.body = b""
        handler = handler_class(self.application, request, **kwargs)
        transforms = [t(request) for t in self.application.transforms]
        future = gen.convert_yielded(handler._execute(transforms, channel))
        future.add_done_callback(_raise_unless_cancelled)
        if self.context is not None:
            self.context._unapply_xheaders()  # (as Tornado's _ProxyAdapter does on finish)

    def on_connection_close(self) -> None:
        if self.context is not None:
            self.context._unapply_xheaders()


def _raise_unless_cancelled(future: Any) -> None:
    if not future.cancelled():
        future.result()
