"""The values the store layer hands to the domain: events, log slices, refresh outcomes,
member pages, removals, and the domain's store errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from presence.service.names import format_cursor


class StoreUnavailable(RuntimeError):
    """The store did not answer (down, unreachable, failing over): try again later (503)."""


class StoreBusy(StoreUnavailable):
    """A transaction kept losing its WATCH race or the cluster kept moving: try again (503)."""


class StoreSetupError(RuntimeError):
    """The store cannot serve this service as configured; the message says what to do."""


class Event(dict):
    """An event as read from a log: {"id", **stored fields}, with its JSON text ready.

    `json` is the stored JSON with the id put first, exactly what encoding the dict
    gives (the store keeps what json.dumps wrote, compactly), so answers can be rendered
    without encoding their events again (presence.web.base.encode_json).
    """

    __slots__ = ("json",)

    def __init__(self, ident: int, raw: str) -> None:
        super().__init__(id=ident)
        self.update(json.loads(raw))
        if "id" in self or not raw.startswith('{"'):
            self["id"] = ident  # (cannot happen with what record() writes)
            self.json = json.dumps(self, separators=(",", ":"))
        else:
            self.json = f'{{"id":{ident},{raw[1:]}'


@dataclass(slots=True)
class LogSlice:
    """What a read of an event log found: the events after the cursor, or a reset.

    `reset` is true when the cursor is older than the retained history, newer than the
    log, or of another epoch (the store lost the log it pointed into); `events` then is
    empty and `seq` is where to resume. `epoch` is the log's (None before its first event).
    """

    cursor: int
    seq: int
    base: int  # id just before the oldest retained event
    events: list[Event] = field(default_factory=list)
    reset: bool = False
    epoch: str | None = None


@dataclass(slots=True)
class Refresh:
    """What a poll's or heartbeat's refresh found: whether the tab is joined, else why not.

    `reason` (when not joined) is "kicked", "expired", "left" or "unknown"; `seq` is the
    channel's newest event id (and `epoch` its log's epoch) when asked for. `undone`: the
    deadline (ms) the user's presence key got back after this refresh of a tab no longer
    joined lengthened it (see Gateway._undo_stray_refresh); None when it did not.
    """

    joined: bool
    reason: str | None = None
    seq: int = 0
    epoch: str | None = None
    undone: int | None = None


@dataclass(slots=True)
class Member:
    user: str
    info: object
    since: int
    connections: int

    def as_json(self) -> dict:
        return {"user": self.user, "info": self.info, "since": self.since,
                "connections": self.connections}  # fmt: skip


@dataclass(slots=True)
class ChannelPage:
    """Counts of one channel plus one page of its members and the log position they match."""

    channel: str
    users: int
    connections: int
    seq: int
    members: list[Member]
    next: str | None
    epoch: str | None = None

    @property
    def cursor(self) -> str:
        """The log position this page matches, as a client cursor."""
        return format_cursor(self.epoch, self.seq)


@dataclass(slots=True)
class Removal:
    """A user removed by remove_user: the event recorded for it and its former deadline."""

    event: dict
    deadline: int | None


@dataclass(slots=True)
class SweepRow:
    """What a sweep found in one channel (see Gateway.sweep_candidates)."""

    channel: str
    overdue: list[str]  # members whose deadline has passed (at most 1000)
    old: bool  # its oldest event is older than the cutoff
    no_log: bool  # its log is empty
    dead: list[str]  # tabs whose deadline passed, as "<user>/<conn>"


def load_info(info: str | None) -> object:
    """A member's info from its stored JSON text (None when it has none)."""
    return None if info is None else json.loads(info)
