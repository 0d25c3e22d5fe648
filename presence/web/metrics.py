"""Prometheus text exposition of one node's view: online users, connections, polls, events, lag."""

from __future__ import annotations

from presence import allocator, runtime
from presence.service.model import Presence
from presence.service.records import StoreUnavailable

MAX_CHANNELS = 10_000  # channels summed per scrape; beyond this the totals are partial


async def totals(presence: Presence) -> tuple[int, int, int]:
    """(channels, users, connections) summed over the registry (at most MAX_CHANNELS)."""
    channels = users = connections = 0
    after = None
    while channels < MAX_CHANNELS:
        rows, after = await presence.channels(after, 1000)
        for _, u, n in rows:
            channels, users, connections = channels + 1, users + u, connections + n
        if after is None:
            break
    return channels, users, connections


async def render_metrics(presence: Presence, node: str) -> str:
    """The /metrics body; without the store-wide totals while the store does not answer."""
    stats = presence.stats
    label = f'node="{node}"'
    try:
        channels, users, connections = await totals(presence)
    except StoreUnavailable:  # the node's own figures below are still worth a scrape
        lines = []
    else:
        lines = [
            "# HELP presence_channels Channels with at least one user online.",
            "# TYPE presence_channels gauge",
            f"presence_channels {channels}",
            "# HELP presence_online_users Users online, summed over channels.",
            "# TYPE presence_online_users gauge",
            f"presence_online_users {users}",
            "# HELP presence_connections Live connections (tabs), summed over channels.",
            "# TYPE presence_connections gauge",
            f"presence_connections {connections}",
        ]
    lines += [
        "# HELP presence_pending_polls Long-polls held by this node.",
        "# TYPE presence_pending_polls gauge",
        f"presence_pending_polls{{{label}}} {presence.pending}",
        "# HELP presence_kept Entries this node keeps in memory about users, tabs, channels "
        "and events, by kind (back to 0 when no one is left).",
        "# TYPE presence_kept gauge",
    ]
    lines += [f'presence_kept{{{label},kind="{k}"}} {n}' for k, n in presence.kept().items()]
    lines += [
        "# HELP presence_allocator_info The allocator of this node's Python objects "
        "(serve --allocator).",
        "# TYPE presence_allocator_info gauge",
        f'presence_allocator_info{{{label},allocator="{allocator.current()}"}} 1',
    ]
    lines += [
        "# HELP process_resident_memory_bytes Resident memory of this node's process.",
        "# TYPE process_resident_memory_bytes gauge",
        f"process_resident_memory_bytes{{{label}}} {runtime.rss_kib() * 1024}",
        "# HELP process_start_time_seconds When this node's process started (a worker "
        "replaced by serve --recycle-after-peak or restarted after a death starts anew).",
        "# TYPE process_start_time_seconds gauge",
        f"process_start_time_seconds{{{label}}} {runtime.own_start_time():.2f}",
    ]
    lines += [
        "# HELP presence_events_total Events recorded by this node, by type.",
        "# TYPE presence_events_total counter",
    ]
    lines += [f'presence_events_total{{{label},type="{t}"}} {n}' for t, n in stats.events.items()]
    lines += [
        "# HELP presence_expiries_heard_total Presence-key expiry notices this node received.",
        "# TYPE presence_expiries_heard_total counter",
        f"presence_expiries_heard_total{{{label}}} {stats.expiries_heard}",
        "# HELP presence_expiry_lag_seconds From a silent user's deadline (its last refresh as "
        "issued + timeout) to its offline being recorded by this node.",
        "# TYPE presence_expiry_lag_seconds summary",
        f"presence_expiry_lag_seconds_sum{{{label}}} {stats.lag_sum_ms / 1000:.3f}",
        f"presence_expiry_lag_seconds_count{{{label}}} {stats.lag_count}",
        "# HELP presence_expiry_lag_max_seconds Largest expiry lag seen by this node.",
        "# TYPE presence_expiry_lag_max_seconds gauge",
        f"presence_expiry_lag_max_seconds{{{label}}} {stats.lag_max_ms / 1000:.3f}",
        "# HELP presence_sweeps_total Reconciliation sweeps run by this node.",
        "# TYPE presence_sweeps_total counter",
        f"presence_sweeps_total{{{label}}} {stats.sweeps}",
        "# HELP presence_late_answers_total Polls answered late, whose tab was refreshed again.",
        "# TYPE presence_late_answers_total counter",
        f"presence_late_answers_total{{{label}}} {stats.late_answers}",
    ]
    bundled = presence.bundled_store
    if bundled is not None:
        lines += [
            "# HELP presence_store_up Whether the bundled store this node supervises is running.",
            "# TYPE presence_store_up gauge",
            f"presence_store_up{{{label}}} {int(bundled.up)}",
            "# HELP presence_store_restarts_total Restarts of the bundled store after it died.",
            "# TYPE presence_store_restarts_total counter",
            f"presence_store_restarts_total{{{label}}} {bundled.restarts}",
        ]
    return "\n".join(lines) + "\n"
