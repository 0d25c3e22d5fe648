"""Client endpoints under /channels/<channel>/: join, poll, heartbeat, leave, send.

Each accepts GET (JSONP script tags can only GET) and POST (form or JSON body), answers
JSONP when `callback` is given and JSON with CORS otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from presence.service import names
from presence.service.feed import Hold
from presence.service.model import NotMember
from presence.service.records import StoreUnavailable
from presence.web import auth, strict_json
from presence.web.base import BadParam, BaseHandler, NotFound


class ClientHandler(BaseHandler):
    """Parses the parameters every client endpoint shares: channel, user, conn."""

    def params(self, channel: str) -> tuple[str, str, str]:
        """(channel, user, conn), all valid; with --secret, `token` must vouch for the user
        and allow the channel. A private channel without --secret is refused (403)."""
        parsed = (
            self.name_arg("channel", names.is_channel, channel),
            self.name_arg("user", names.is_user),
            self.name_arg("conn", names.is_conn),
        )
        secret = self.app_settings.secret
        if secret:
            problem = auth.check(secret, parsed[1], self.arg("token"), parsed[0])
            if problem:
                raise BadParam("token", problem, 403)
        elif auth.is_private(parsed[0]):
            raise BadParam("channel", "private channels need a service started with --secret", 403)
        return parsed

    def info_arg(self) -> str | None:
        """The optional `info`: JSON text of at most 1 KB, returned re-encoded compactly."""
        raw = self.optional_arg("info")
        if raw is None:
            return None
        if len(raw.encode("utf-8")) > names.MAX_INFO_BYTES:
            raise BadParam("info", f"info must be at most {names.MAX_INFO_BYTES} bytes")
        try:
            return strict_json.dumps(strict_json.loads(raw, self.max_json_depth))
        except strict_json.StrictJSONError as exc:
            raise BadParam("info", f"info must be strict JSON: {exc}") from None


class JoinHandler(ClientHandler):
    async def get(self, channel: str) -> None:
        channel, user, conn = self.params(channel)
        info = self.info_arg()
        self.reply(await self.presence.join(channel, user, conn, info))

    post = get


class HeartbeatHandler(ClientHandler):
    async def get(self, channel: str) -> None:
        self.reply(await self.presence.heartbeat(*self.params(channel)))

    post = get


class LeaveHandler(ClientHandler):
    async def get(self, channel: str) -> None:
        self.reply(await self.presence.leave(*self.params(channel)))

    post = get


class SendHandler(ClientHandler):
    async def get(self, channel: str) -> None:
        channel, user, conn = self.params(channel)
        data = self.arg("data")
        if len(data.encode("utf-8")) > names.MAX_DATA_BYTES:
            raise BadParam("data", f"data must be at most {names.MAX_DATA_BYTES} bytes")
        try:
            self.reply(await self.presence.send(channel, user, data, conn))
        except NotMember:
            raise NotFound("user", "user is not a member of this channel") from None

    post = get


class LongPollHandler(BaseHandler):
    """Holds one domain wait, ended at once (through its Hold) if the client goes away.

    A held poll is the handler's own coroutine awaiting its Hold's future: the domain
    keeps no coroutine, task or timer per held poll (held polls are many).
    """

    hold: Hold | None = None

    def on_connection_close(self) -> None:
        if self.hold is not None:
            self.hold.cancel()

    def release_arguments(self) -> None:
        """Drop the parsed query of a request about to be held (read already; kept by
        Tornado for the request's lifetime otherwise, about 1 KB per held poll)."""
        request = self.request
        request.arguments, request.query_arguments = {}, {}

    async def answer_held(
        self,
        start: Callable[[Hold], Awaitable[dict | Hold]],
        turn: asyncio.Future | None = None,
    ) -> None:
        """Reply with `start(hold)`'s answer, awaiting the Hold when the domain holds it.

        `turn` (see Feed.pace) is awaited first. If the client goes away meanwhile,
        nothing is answered.
        """
        self.release_arguments()
        self.hold = hold = Hold()
        try:
            if turn is not None:
                await asyncio.shield(turn)  # (shared: cancelling one waiter must not end it)
                if hold.gone:
                    return
            answer = await start(hold)
            if isinstance(answer, Hold):
                answer = await answer
        except asyncio.CancelledError:
            if hold.gone:
                return  # the client left: nobody to answer
            hold.cancel()
            raise
        self.hold = None
        self.reply(answer)


_dropped_tabs: set[asyncio.Task] = set()  # tab_dropped calls under way (kept referenced)


class PollHandler(LongPollHandler, ClientHandler):
    tab: tuple[str, str, str] | None = None

    def on_connection_close(self) -> None:
        """A held poll's connection closed: the domain gives its tab the disconnect grace."""
        hold = self.hold
        super().on_connection_close()
        if hold is not None and self.tab is not None:
            task = asyncio.ensure_future(self._drop_tab(self.tab, hold))
            _dropped_tabs.add(task)
            task.add_done_callback(_dropped_tabs.discard)

    async def _drop_tab(self, tab: tuple[str, str, str], hold: Hold) -> None:
        try:
            await self.presence.tab_dropped(*tab, hold)
        except StoreUnavailable:
            pass  # the tab's presence key then expires after the full timeout

    async def get(self, channel: str) -> None:
        channel, user, conn = self.params(channel)
        cursor = self.name_arg("cursor", names.is_cursor)
        self.tab = (channel, user, conn)
        await self.answer_held(
            lambda hold: self.presence.start_poll(channel, user, conn, cursor, hold),
            self.presence.poll_turn(channel),
        )

    post = get
