"""Request parsing and JSON/JSONP rendering shared by every handler.

A handler reads its parameters through `arg`/`name_arg`/`int_arg`, which raise BadParam
(a 400 naming the parameter) before anything reaches the domain. Replies go through
`reply`, which writes JSONP when a valid `callback` was given and JSON with CORS otherwise.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import tornado
import tornado.web
from tornado import httputil
from tornado.http1connection import HTTP1Connection

from presence.service import names
from presence.service.outage import OutageLog
from presence.service.records import Event, StoreUnavailable

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


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # json.dumps would make one per call


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
            name = callback.encode()  # ASCII: names.is_callback
            body = b"/**/ typeof %s === 'function' && %s(%s);" % (name, name, body)
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
        if isinstance(exc, BadParam):
            self.reply({"error": exc.message, "param": exc.param}, status_code)
        elif isinstance(exc, StoreUnavailable):
            self.reply({"error": "store unavailable"}, 503)
        else:
            self.reply({"error": self._reason}, status_code)

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(value, BadParam):
            return
        if isinstance(value, StoreUnavailable):
            STORE_ERRORS.failed(f"{self.request.path}: {value!r}")
            return
        super().log_exception(typ, value, tb)

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
                value = json.dumps(value) if name == "info" else str(value)
        return value

    def _json_body(self) -> dict:
        if self._body_args is None:
            self._body_args = {}
            if self.request.headers.get("Content-Type", "").startswith("application/json"):
                try:
                    body = json.loads(self.request.body or b"{}")
                except ValueError:
                    raise BadParam("body", "the body is not valid JSON") from None
                if not isinstance(body, dict):
                    raise BadParam("body", "the body must be a JSON object")
                self._body_args = body
        return self._body_args

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


_NO_CONTENT = frozenset((*range(100, 200), 204, 304))  # statuses whose answers have no body


class NotFoundHandler(BaseHandler):
    """Any unknown path: 404 in JSON."""

    def prepare(self) -> None:
        super().prepare()
        raise tornado.web.HTTPError(404)
