"""Operator endpoints: /api/channels, /api/channels/<c>, kick, /api/events, /api/stats,
/api/nodes, /api/history, health, metrics.

Reads are JSON with CORS (JSONP too when `callback` is given). With --admin-token, every
endpoint here but /healthz and /readyz needs `Authorization: Bearer <token>` (reads are
opened by --public-api); private channels (`private-...`) are shown to token holders only.
"""

from __future__ import annotations

from collections.abc import Callable

from presence.service import names
from presence.service.model import NotMember, UnknownChannel
from presence.web import auth
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

    def prefix_arg(self, check: Callable[[str], bool]) -> str:
        """The optional `prefix` of the names to list ("" for all): a valid name's start."""
        return self.optional_name_arg("prefix", lambda value: value == "" or check(value)) or ""


class ChannelsHandler(ApiHandler):
    async def get(self) -> None:
        see_private = self.require_reader()
        after, limit = self.page_args(names.is_channel)
        prefix = self.prefix_arg(names.is_channel)
        history = self.optional_int_arg("all", high=1) == 1  # also channels with 0 users
        rows, following = await self.presence.channels(after, limit, history, prefix)
        if not see_private:  # (a page may then hold fewer than `limit` rows)
            rows = [row for row in rows if not auth.is_private(row[0])]
        self.reply(
            {
                "channels": [{"channel": c, "users": u, "connections": n} for c, u, n in rows],
                "next": following,
            }
        )


class ChannelHandler(ApiHandler):
    async def get(self, channel: str) -> None:
        see_private = self.require_reader()
        channel = self.name_arg("channel", names.is_channel, channel)
        if auth.is_private(channel) and not see_private:
            raise BadParam("channel", "a private channel is shown to admin tokens only", 403)
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
        by = self.require_admin()
        channel = self.name_arg("channel", names.is_channel, channel)
        user = self.name_arg("user", names.is_user, user)
        try:
            self.reply(await self.presence.kick(channel, user, by))
        except UnknownChannel:
            raise NotFound("channel", "no such channel") from None
        except NotMember:
            raise NotFound("user", "user is not a member of this channel") from None

    post = delete  # for clients that cannot send DELETE


class StatsHandler(ApiHandler):
    """Totals across channels: distinct users online, channels, connections."""

    async def get(self) -> None:
        self.require_reader()
        self.reply(await self.presence.totals())


class NodesHandler(ApiHandler):
    """The service nodes that announced themselves lately, with what each holds."""

    async def get(self) -> None:
        self.require_reader()
        self.reply({"nodes": await self.presence.nodes()})


class HistoryHandler(ApiHandler):
    """Points of the last `minutes` (default 60): events, offline lag, users."""

    async def get(self) -> None:
        self.require_reader()
        minutes = self.optional_int_arg("minutes", low=1, high=MAX_HISTORY_MINUTES) or 60
        self.reply(
            {
                "interval": self.presence.history_interval,
                "points": await self.presence.history(minutes),
            }
        )


class EventsHandler(LongPollHandler, ApiHandler):
    """Long-poll over the global feed of all channels' events (for the dashboard)."""

    see_private = False

    async def get(self) -> None:
        self.see_private = self.require_reader()
        cursor = self.optional_name_arg("cursor", names.is_cursor)
        await self.answer_held(lambda hold: self.presence.start_global_events(cursor, hold))

    def reply(self, value: object, status: int = 200) -> None:
        """The answer, without the events of private channels unless they may be seen."""
        answer = value if isinstance(value, dict) else {}
        events = answer.get("events")
        if events and not self.see_private:
            shown = [e for e in events if not auth.is_private(e.get("channel", ""))]
            if len(shown) < len(events):
                value = {**answer, "events": shown}
        super().reply(value, status)


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

        self.require_reader()
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(await render_metrics(self.presence, self.app_settings.node_id))
