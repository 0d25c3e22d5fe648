"""Operator endpoints: /api/channels, /api/channels/<c>, kick, /api/events, /api/stats,
/api/nodes, /api/history, health, metrics.

Reads are JSON with CORS (JSONP too when `callback` is given); writes (kick) need
`Authorization: Bearer <--admin-token>` when an admin token is configured.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from presence.service import names
from presence.service.model import NotMember, UnknownChannel
from presence.web.base import BadParam, BaseHandler, NotFound
from presence.web.client import LongPollHandler

MAX_LIMIT = 1000
MAX_HISTORY_MINUTES = 1440  # the history keeps one day (presence.service.nodes.HISTORY_KEPT)


class ApiHandler(BaseHandler):
    def page_args(self, check: Callable[[str], bool]) -> tuple[str | None, int]:
        """(cursor, limit): cursor is the last name of the previous page."""
        cursor = self.optional_name_arg("cursor", check)
        limit = self.optional_int_arg("limit", low=1, high=MAX_LIMIT)
        return cursor, limit or 100

    def require_admin(self) -> None:
        token = self.app_settings.admin_token
        if not token:
            return
        given = self.request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            self.set_header("WWW-Authenticate", 'Bearer realm="presence"')
            raise BadParam("Authorization", "a valid admin bearer token is required", 401)

    def prefix_arg(self, check: Callable[[str], bool]) -> str:
        """The optional `prefix` of the names to list ("" for all): a valid name's start."""
        return self.optional_name_arg("prefix", lambda value: value == "" or check(value)) or ""


class ChannelsHandler(ApiHandler):
    async def get(self) -> None:
        after, limit = self.page_args(names.is_channel)
        prefix = self.prefix_arg(names.is_channel)
        history = self.optional_int_arg("all", high=1) == 1  # also channels with 0 users
        rows, following = await self.presence.channels(after, limit, history, prefix)
        self.reply(
            {
                "channels": [{"channel": c, "users": u, "connections": n} for c, u, n in rows],
                "next": following,
            }
        )


class ChannelHandler(ApiHandler):
    async def get(self, channel: str) -> None:
        channel = self.name_arg("channel", names.is_channel, channel)
        after, limit = self.page_args(names.is_user)
        prefix = self.prefix_arg(names.is_user)
        page = await self.presence.channel(channel, after, limit, prefix)
        if page is None:
            raise NotFound("channel", "no such channel")
        self.reply(
            {
                "channel": channel,
                "users": page.users,
                "connections": page.connections,
                "cursor": page.cursor,
                "next": page.next,
                "members": [
                    {"user": m.user, "info": m.info, "since": m.since, "connections": m.connections}
                    for m in page.members
                ],
            }
        )


class MemberHandler(ApiHandler):
    async def delete(self, channel: str, user: str) -> None:
        self.require_admin()
        channel = self.name_arg("channel", names.is_channel, channel)
        user = self.name_arg("user", names.is_user, user)
        try:
            self.reply(await self.presence.kick(channel, user))
        except UnknownChannel:
            raise NotFound("channel", "no such channel") from None
        except NotMember:
            raise NotFound("user", "user is not a member of this channel") from None

    post = delete  # for clients that cannot send DELETE


class StatsHandler(ApiHandler):
    """Totals across channels: distinct users online, channels, connections."""

    async def get(self) -> None:
        self.reply(await self.presence.totals())


class NodesHandler(ApiHandler):
    """The service nodes that announced themselves lately, with what each holds."""

    async def get(self) -> None:
        self.reply({"nodes": await self.presence.nodes()})


class HistoryHandler(ApiHandler):
    """Points of the last `minutes` (default 60): events, offline lag, users."""

    async def get(self) -> None:
        minutes = self.optional_int_arg("minutes", low=1, high=MAX_HISTORY_MINUTES) or 60
        self.reply(
            {
                "interval": self.presence.history_interval,
                "points": await self.presence.history(minutes),
            }
        )


class EventsHandler(LongPollHandler, ApiHandler):
    """Long-poll over the global feed of all channels' events (for the dashboard)."""

    async def get(self) -> None:
        cursor = self.optional_name_arg("cursor", names.is_cursor)
        await self.answer_held(lambda hold: self.presence.start_global_events(cursor, hold))


class HealthHandler(BaseHandler):
    def get(self) -> None:
        self.reply({"ok": True, "node": self.app_settings.node_id})


class ReadyHandler(BaseHandler):
    async def get(self) -> None:
        state = await self.presence.readiness()
        self.reply(state, 200 if state["ready"] else 503)


class MetricsHandler(BaseHandler):
    async def get(self) -> None:
        from presence.web.metrics import render_metrics

        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(await render_metrics(self.presence, self.app_settings.node_id))
