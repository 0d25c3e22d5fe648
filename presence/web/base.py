"""Request parsing and JSON/JSONP rendering shared by every handler.

A handler reads its parameters through `arg`/`name_arg`/`int_arg`, which raise BadParam
(a 400 naming the parameter) before anything reaches the domain. Replies go through
`reply`, which writes JSONP when a valid `callback` was given and JSON with CORS otherwise.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import tornado
import tornado.log
import tornado.web
from tornado import httputil
from tornado.escape import parse_qs_bytes
from tornado.http1connection import HTTP1Connection

from presence.service import names
from presence.service.outage import OutageLog
from presence.service.quotas import LimitReached
from presence.service.records import Event, StoreUnavailable
from presence.web import auth, strict_json

if TYPE_CHECKING:  # (app.py imports this module)
    from presence.service.model import Presence
    from presence.web.app import WebSettings

log = logging.getLogger("presence.web")
STORE_ERRORS = OutageLog(log, "store unavailable (answered 503)")  # not a line per request


class BadParam(tornado.web.HTTPError):
    """A request parameter is missing or invalid: 400 with {"error", "param"}."""

    def __init__(self, param: str, message: str, status: int = 400) -> None:
        super().__init__(status, reason=None)
        self.param = param
        self.message = message


class NotFound(BadParam):
    """The named channel or user does not exist: 404 with {"error", "param"}."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(param, message, 404)


# json.dumps would make one per call; NaN and Infinity are not JSON: ValueError, never text
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def encode_json(value: object) -> str:
    """Compact JSON that is also safe inside a <script> (no `</`, no raw U+2028/9).

    A poll's answer {"cursor", "events"} of events read from a log is assembled from the
    events' ready JSON (records.Event.json): the same text, without encoding them again.
    """
    answer = cast(dict, value)  # (checked: the class is tested first)
    events = answer.get("events") if value.__class__ is dict and len(answer) == 2 else None
    if events and "cursor" in answer and all(e.__class__ is Event for e in events):
        text = "".join(
            (
                '{"cursor":',
                _ENCODER.encode(answer["cursor"]),
                ',"events":[',
                ",".join([e.json for e in events]),
                "]}",
            )
        )
    else:
        text = _ENCODER.encode(value)
    return text.replace("</", "<\\/")


# The last poll answer encoded: (its events list, its cursor, its JSON as bytes). The polls
# one wake-up answers usually share their cursor, and then their events list (see
# presence.service.feed.Feed.events_after): their answer is encoded once for all.
_last_answer: tuple = (None, None, b"")


def encode_answer(value: object) -> bytes:
    """encode_json(value) as UTF-8, reused for the same poll answer as the previous call."""
    global _last_answer
    if value.__class__ is dict and len(value) == 2:
        events = value.get("events")
        if events:
            last = _last_answer
            cursor = value.get("cursor")
            if last[0] is events and last[1] == cursor:
                return last[2]
            body = encode_json(value).encode()
            _last_answer = (events, cursor, body)
            return body
    return encode_json(value).encode()


_SERVER = "TornadoServer/%s" % tornado.version
_date: tuple[int, str] = (0, "")


def http_date() -> str:
    """The Date header's value for now (formatted once per second)."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, httputil.format_timestamp(now))
    return _date[1]


class BaseHandler(tornado.web.RequestHandler):
    """JSON/JSONP rendering, CORS, parameter parsing and error bodies."""

    def initialize(self, presence: Presence, settings: WebSettings) -> None:
        self.presence = presence
        self.app_settings = settings
        self.callback: str | None = None
        self._body_args: dict | None = None

    def prepare(self) -> None:
        values = self.request.query_arguments.get("callback")
        if values:
            raw = self.decode_argument(values[-1], "callback")
            if not names.is_callback(raw):
                raise BadParam("callback", "callback must be a JavaScript identifier path")
            self.callback = raw

    def on_finish(self) -> None:
        self.presence.stats.requests += 1  # for the node's requests/s (presence.service.nodes)

    def compute_etag(self) -> None:
        return None  # answers are live state, never revalidated

    def check_etag_header(self) -> bool:
        return False  # what Tornado's answers without an Etag (compute_etag gives none)

    def clear(self) -> None:
        """Tornado's clear() (Server, Content-Type, Date) plus Cache-Control: no-store and
        X-Content-Type-Options: nosniff, each header written as is: these values need
        none of set_header's checks, and the date is formatted once per second."""
        headers = httputil.HTTPHeaders()
        headers["Server"] = _SERVER
        headers["Content-Type"] = "text/html; charset=UTF-8"
        headers["Date"] = http_date()
        headers["Cache-Control"] = "no-store"
        headers["X-Content-Type-Options"] = "nosniff"
        self._headers = headers
        self._write_buffer = []
        self._status_code = 200
        self._reason = "OK"

    def _request_summary(self) -> str:
        return request_summary(self.request)  # (Tornado's own names the token in the URI)

    # -- operator access ----------------------------------------------------------------

    def require_admin(self) -> str | None:
        """The name of the admin token the request carries (None when no --admin-token is
        configured); 401 when tokens are configured and it carries none of them."""
        tokens = self.app_settings.admin_tokens
        if not tokens:
            return None
        name = auth.admin_name(tokens, self.request.headers.get("Authorization", ""))
        if name is None:
            raise BadParam("Authorization", "a valid admin bearer token is required", 401)
        return name

    def require_reader(self) -> bool:
        """Let the request read operator data; True when it may also see private channels.

        With admin tokens configured, reads need one of them unless --public-api opens
        them; an open read that carries an Authorization header is checked all the same.
        Private channels are shown to admin-token holders only.
        """
        settings = self.app_settings
        if not settings.admin_tokens:
            return False
        if settings.public_api and "Authorization" not in self.request.headers:
            return False
        self.require_admin()
        return True

    def options(self, *args: str) -> None:
        """CORS preflight for JSON clients (POST with a JSON body, DELETE with a token)."""
        self._cors()
        self.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", "Content-Type, Authorization")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)

    def _cors(self) -> None:
        self.set_header("Access-Control-Allow-Origin", "*")

    def reply(self, value: object, status: int = 200) -> None:
        """Finish with `value` as JSONP (when a callback was given) or JSON."""
        self.set_status(status)
        body = encode_answer(value)
        headers = self._headers
        callback = self.callback
        if callback is not None:
            headers["Content-Type"] = "text/javascript; charset=UTF-8"
            body = jsonp(callback, body)
        else:
            headers["Access-Control-Allow-Origin"] = "*"
            headers["Content-Type"] = "application/json; charset=UTF-8"
        self.finish_body(body)

    def finish_body(self, body: bytes) -> None:
        """finish(body) for a response that is all of `body`: what Tornado's finish() does
        for it, minus the steps that cannot apply here (no Etag, no output transform, no
        cookie, nothing written before). Anything else goes through finish()."""
        if (
            self._headers_written
            or self._write_buffer
            or self._transforms
            or self._finished
            or self._status_code in _NO_CONTENT
            or self.request.method == "HEAD"
            or hasattr(self, "_new_cookie")
        ):
            self.finish(body)
            return
        self._headers["Content-Length"] = str(len(body))
        connection = cast(HTTP1Connection, self.request.connection)
        connection.set_close_callback(None)
        self._headers_written = True
        connection.write_headers(
            httputil.ResponseStartLine("", self._status_code, self._reason), self._headers, body
        )
        connection.finish()
        self._log()
        self._finished = True
        self.on_finish()
        self._break_cycles()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if self.callback is None:  # an error before prepare() read it (405, a bad path)
            self.callback = callback_of(self.request.uri or "")
        if status_code == 401:  # (send_error cleared the headers set before the error)
            self.set_header("WWW-Authenticate", 'Bearer realm="presence"')
        if isinstance(exc, BadParam):
            self.reply({"error": exc.message, "param": exc.param}, status_code)
        elif isinstance(exc, StoreUnavailable):
            self.reply({"error": "store unavailable"}, 503)
        elif isinstance(exc, LimitReached):
            self.set_header("Retry-After", str(exc.retry_after))
            status = 503 if exc.limit == "held_polls" else 429  # the node's limit, or yours
            self.reply({"error": exc.message, "limit": exc.limit}, status)
        else:
            self.reply({"error": self._reason}, status_code)

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(value, BadParam | LimitReached):
            return
        if isinstance(value, StoreUnavailable):
            STORE_ERRORS.failed(f"{self.request.path}: {value!r}")
            return
        log_redacted_exception(self, typ, value, tb)

    # -- parameters -------------------------------------------------------------------

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise BadParam(name or "path", f"{name or 'path'} is not UTF-8") from None

    def arg(self, name: str) -> str:
        """A required parameter from the query, a form body, or a JSON object body."""
        value = self.optional_arg(name)
        if value is None:
            raise BadParam(name, f"{name} is required")
        return value

    def optional_arg(self, name: str) -> str | None:
        """A parameter (see arg), or None when it is not given."""
        value = self.get_argument(name, None, strip=False)
        if value is None and self.request.method == "POST":
            value = self._json_body().get(name)
            if value is not None and not isinstance(value, str):
                value = strict_json.dumps(value) if name == "info" else str(value)
        return value

    def _json_body(self) -> dict:
        if self._body_args is None:
            self._body_args = {}
            if self.request.headers.get("Content-Type", "").startswith("application/json"):
                try:
                    body = strict_json.loads(self.request.body or b"{}", self.max_json_depth)
                except strict_json.StrictJSONError as exc:
                    raise BadParam("body", f"the body is not strict JSON: {exc}") from None
                if not isinstance(body, dict):
                    raise BadParam("body", "the body must be a JSON object")
                self._body_args = body
        return self._body_args

    @property
    def max_json_depth(self) -> int:
        """How deep arrays and objects may nest in a JSON body or `info` (--max-json-depth)."""
        return self.app_settings.limits.max_json_depth

    def name_arg(self, name: str, check: Callable[[str], bool], value: str | None = None) -> str:
        """A required parameter (or path part `value`) that must satisfy a name rule."""
        found = self.optional_name_arg(name, check, value)
        if found is None:
            raise BadParam(name, f"{name} is required")
        return found

    def optional_name_arg(
        self, name: str, check: Callable[[str], bool], value: str | None = None
    ) -> str | None:
        """A parameter (or path part `value`) that must satisfy a name rule, if given."""
        if value is None:
            # The query or form value as get_argument would give it, without its machinery:
            # its one rewrite (control characters to spaces) cannot matter, as no name rule
            # accepts either.
            values = self.request.arguments.get(name)
            value = self.decode_argument(values[-1], name) if values else self.optional_arg(name)
            if value is None:
                return None
        if not check(value):
            raise BadParam(name, f"invalid {name}")
        return value

    def optional_int_arg(self, name: str, low: int = 0, high: int = 2**53) -> int | None:
        """A decimal integer parameter within [low, high], if given."""
        raw = self.optional_arg(name)
        if raw is None:
            return None
        if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
            raise BadParam(name, f"{name} must be an integer from {low} to {high}")
        return int(raw)


def jsonp(callback: str, body: bytes) -> bytes:
    """`body` (JSON) wrapped in a call of `callback` (already checked: names.is_callback),
    guarded so that a page without that function gets no error."""
    name = callback.encode()  # ASCII: names.is_callback
    return b"/**/ typeof %s === 'function' && %s(%s);" % (name, name, body)


def callback_of(target: str | bytes) -> str | None:
    """The JSONP callback a request target asks for, as BaseHandler.prepare reads it (the
    last `callback` query parameter), or None when it has none or an invalid one (an
    invalid callback is answered in JSON, as the handlers do)."""
    if isinstance(target, bytes):
        target = target.decode("latin-1")  # (Tornado's reading of a request line)
    _, question, query = target.partition("?")
    if not question or "callback" not in query:
        return None
    values = parse_qs_bytes(query, keep_blank_values=True).get("callback")
    if not values:
        return None
    try:
        value = values[-1].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return value if names.is_callback(value) else None


_SECRET_PARAMS = frozenset(("token",))  # query parameters whose values never reach a log


def redacted(uri: str) -> str:
    """`uri` with the values of its `token` parameters replaced by `***` (however the
    parameter's name is percent-encoded: Tornado decodes names as it parses them)."""
    path, question, query = uri.partition("?")
    if not question or ("token" not in query.lower() and "%" not in query):
        return uri
    parts = query.split("&")
    for i, part in enumerate(parts):
        name, equals, _ = part.partition("=")
        if equals and urllib.parse.unquote_plus(name) in _SECRET_PARAMS:
            parts[i] = f"{name}=***"
    return f"{path}?{'&'.join(parts)}"


def request_summary(request: httputil.HTTPServerRequest) -> str:
    """What a log line names a request by: `METHOD URI (client address)`, tokens redacted."""
    return f"{request.method} {redacted(request.uri or '')} ({request.remote_ip})"


_SECRETS_IN_TEXT = re.compile(r"(Bearer\s+|token=)[^\s&'\"]+", re.IGNORECASE)
# Tornado's line for a malformed header quotes the header's value, whatever header it is
# (Authorization: Basic ..., a cookie): the value is never written.
_BAD_HEADER_VALUE = re.compile(r"(Invalid header value ).*", re.DOTALL)


def redact_text(text: str) -> str:
    """`text` with `Bearer <x>` and `token=<x>` values, and the value quoted by Tornado's
    "Invalid header value" message, written `***`."""
    if "oken" in text or "earer" in text:
        text = _SECRETS_IN_TEXT.sub(r"\1***", text)
    if "Invalid header value" in text:
        text = _BAD_HEADER_VALUE.sub(r"\1***", text)
    return text


class RedactTokens(logging.Filter):
    """Rewrites a log record's message, and its traceback, with `Bearer <x>` and
    `token=<x>` values as `***`: for the lines Tornado writes itself, such as "Malformed
    HTTP message ...: Invalid header value '...'" (whose value is not written at all), and
    exceptions whose text holds a URL (the service's own lines name requests by
    request_summary)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted_message = redact_text(message)
        if redacted_message != message:
            record.msg, record.args = redacted_message, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


def install_log_redaction() -> None:
    """Put a RedactTokens filter on Tornado's loggers (once)."""
    for name in ("tornado.general", "tornado.application", "tornado.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


def log_redacted_exception(
    handler: tornado.web.RequestHandler,
    typ: type[BaseException] | None,
    value: BaseException | None,
    tb: TracebackType | None,
) -> None:
    """RequestHandler.log_exception without the request's URI in clear (Tornado's line for
    an uncaught exception prints repr(request), which holds the query and its tokens)."""
    if isinstance(value, tornado.web.HTTPError):
        tornado.web.RequestHandler.log_exception(handler, typ, value, tb)  # (_request_summary)
        return
    tornado.log.app_log.error(
        "Uncaught exception %s", request_summary(handler.request), exc_info=value
    )


_NO_CONTENT = frozenset((*range(100, 200), 204, 304))  # statuses whose answers have no body


class NotFoundHandler(BaseHandler):
    """Any unknown path: 404 in JSON."""

    def prepare(self) -> None:
        super().prepare()
        raise tornado.web.HTTPError(404)
